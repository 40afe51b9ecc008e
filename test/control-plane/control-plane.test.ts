import { Match } from 'aws-cdk-lib/assertions';
import { ECR_PULL_ACTIONS, IMAGE_REPOSITORIES, VENDOR_SERVICES_REPOSITORY } from '../../control-plane/control-plane';
import { HUB_PORTS, hubServerName } from '../../control-plane/hub-config';
import { acknowledgementsOf } from '../../lib/compliance';
import { synthControlPlane } from '../synth';
import { exampleAppProps, exampleServices, exampleVendorProps, resourcesOf, synthControl, SynthesizedControlPlane } from './synth';
import { App } from 'aws-cdk-lib';
import { ControlPlaneStack } from '../../control-plane/stack';

const EXAMPLE_ACCOUNTS = exampleVendorProps().customerAccounts!;
const ACCOUNTS = ['444455556666', '000011112222', '999988887777'];

let example: SynthesizedControlPlane;
let registered: SynthesizedControlPlane;
let internetFacing: SynthesizedControlPlane;
beforeAll(() => {
  example = synthControl();
  registered = synthControl(exampleVendorProps({ customerAccounts: ACCOUNTS }, { nodes: 5 }));
  internetFacing = synthControl(exampleVendorProps({}, { internetFacing: true }));
});

const rootOf = (account: string) => `arn:aws:iam::${account}:root`;
const principalsOf = (statement: any): string[] => [statement.Principal.AWS].flat().map((p: any) => (typeof p === 'string' ? p : JSON.stringify(p))).sort();
const nodeServices = (s: SynthesizedControlPlane) => resourcesOf(s.json, 'AWS::ECS::Service');
const containerOf = (s: SynthesizedControlPlane, serviceId: string) => {
  const taskId = s.json.Resources[serviceId].Properties.TaskDefinition.Ref;
  return s.json.Resources[taskId].Properties.ContainerDefinitions[0];
};
const envOf = (container: any, name: string) => container.Environment.find((e: any) => e.Name === name)?.Value;

test('control plane: the template matches the snapshot (asset hashes stripped)', () => {
  expect(synthControlPlane().templates).toMatchSnapshot();
});

describe('NATS hub nodes', () => {
  test.each([['the example (3 nodes)', () => example, 3], ['5 nodes', () => registered, 5]])('%s: each node is its own ECS service of one task, stopped before its successor starts', (_n, s, count) => {
    const services = nodeServices(s());
    expect(services).toHaveLength(count);
    for (const [, service] of services) {
      expect(service.Properties.DesiredCount).toBe(1);
      expect(service.Properties.DeploymentConfiguration).toMatchObject({ MinimumHealthyPercent: 0, MaximumPercent: 100 });
      expect(service.Properties.LaunchType).toBe('FARGATE');
    }
  });

  test('each node has its own server_name, its own stable route name, and routes to every other node', () => {
    const configs = nodeServices(example).map(([id]) => envOf(containerOf(example, id), 'BYOC_NATS_CONFIG') as string);
    const names = configs.map((c) => /^server_name: "([^"]+)"$/m.exec(c)![1]);
    expect(names).toEqual([0, 1, 2].map(hubServerName));
    const commands = nodeServices(example).map(([id]) => containerOf(example, id).Command[2] as string);
    configs.forEach((config, i) => {
      expect(config).toContain(`advertise: "node-${i}.hub.byoc.vendor.example:${HUB_PORTS.cluster}"`);
      const peers = [0, 1, 2].filter((j) => j !== i);
      // The route list names exactly the peers, whose URLs the start command composes with the route password.
      expect(config.match(/\$BYOC_HUB_ROUTE_\d/g)).toEqual(peers.map((j) => `$BYOC_HUB_ROUTE_${j}`));
      for (const j of peers) expect(commands[i]).toContain(`export BYOC_HUB_ROUTE_${j}="nats-route://route:$BYOC_HUB_ROUTE_PASSWORD@node-${j}.hub.byoc.vendor.example:6222"`);
      expect(commands[i]).not.toContain(`BYOC_HUB_ROUTE_${i}=`);
    });
    // Each is found at node-N in the namespace named after the hub, which its certificate names.
    example.template.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: 'hub.byoc.vendor.example' });
    expect(resourcesOf(example.json, 'AWS::ServiceDiscovery::Service').map(([, r]) => r.Properties.Name).sort()).toEqual(['node-0', 'node-1', 'node-2']);
  });

  test('each node has its own access point on the encrypted, backed-up file system, and may mount only that one', () => {
    const accessPoints = resourcesOf(example.json, 'AWS::EFS::AccessPoint');
    expect(accessPoints.map(([, a]) => a.Properties.RootDirectory.Path).sort()).toEqual(['/hub/node-0', '/hub/node-1', '/hub/node-2']);
    for (const [, a] of accessPoints) expect(a.Properties.PosixUser).toEqual({ Uid: '10001', Gid: '10001' });
    const used = nodeServices(example).map(([id]) => {
      const taskId = example.json.Resources[id].Properties.TaskDefinition.Ref;
      const task = example.json.Resources[taskId].Properties;
      const volume = task.Volumes.find((v: any) => v.EFSVolumeConfiguration);
      expect(volume.EFSVolumeConfiguration).toMatchObject({ TransitEncryption: 'ENABLED', AuthorizationConfig: { IAM: 'ENABLED' } });
      expect(task.ContainerDefinitions[0].MountPoints).toContainEqual({ ContainerPath: '/data', SourceVolume: volume.Name, ReadOnly: false });
      // The task role's only EFS permission names this node's access point.
      const policy = resourcesOf(example.json, 'AWS::IAM::ManagedPolicy').find(([, p]) => p.Properties.Roles[0].Ref === task.TaskRoleArn['Fn::GetAtt'][0])![1];
      const mount = policy.Properties.PolicyDocument.Statement;
      expect(mount).toHaveLength(1);
      expect(JSON.stringify(mount[0].Condition)).toContain(volume.EFSVolumeConfiguration.AuthorizationConfig.AccessPointId.Ref);
      return volume.EFSVolumeConfiguration.AuthorizationConfig.AccessPointId.Ref;
    });
    expect(new Set(used).size).toBe(3);
    example.template.hasResourceProperties('AWS::EFS::FileSystem', { Encrypted: true, BackupPolicy: { Status: 'ENABLED' }, KmsKeyId: Match.anyValue() });
  });

  test('nodes run ARM64, the image pinned by digest, as a non-root user on a read-only root file system, spread over the AZs', () => {
    for (const [id, service] of nodeServices(example)) {
      const c = containerOf(example, id);
      expect(JSON.stringify(c.Image)).toMatch(/\/byoc\/nats-server@sha256:[0-9a-f]{64}"\]\]\}$/);
      expect(c.ReadonlyRootFilesystem).toBe(true);
      expect(c.User).toBe('10001:10001');
      expect(c.Privileged).toBe(false);
      expect(service.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
    }
    example.template.allResourcesProperties('AWS::ECS::TaskDefinition', { RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' } });
    const subnets = nodeServices(example).map(([, s]) => JSON.stringify(s.Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets));
    expect(new Set(subnets).size).toBe(3);
  });

  test('the certificate, its key and the route password come from Secrets Manager at task start; no seed or private key is in the template', () => {
    for (const [id] of nodeServices(example)) {
      const secrets = Object.fromEntries(containerOf(example, id).Secrets.map((s: any) => [s.Name, s.ValueFrom]));
      const arn = exampleVendorProps().hub!.tls.certificateSecretArn;
      expect(secrets.BYOC_HUB_TLS_CERT).toBe(`${arn}:cert::`);
      expect(secrets.BYOC_HUB_TLS_KEY).toBe(`${arn}:key::`);
      expect(secrets.BYOC_HUB_ROUTE_PASSWORD).toEqual({ Ref: expect.stringMatching(/^HubRoutePassword/) });
    }
    // Only the execution roles read them (the task role has nothing of Secrets Manager or KMS).
    for (const [, p] of resourcesOf(example.json, 'AWS::IAM::ManagedPolicy')) {
      const readsCertificate = JSON.stringify(p).includes(exampleVendorProps().hub!.tls.certificateSecretArn);
      expect([p.Properties.Roles[0].Ref, readsCertificate]).toEqual([p.Properties.Roles[0].Ref, /ExecutionRole/.test(p.Properties.Roles[0].Ref) && /HubNode\d/.test(p.Properties.Roles[0].Ref)]);
    }
    const text = JSON.stringify(example.json);
    expect(text).not.toMatch(/S[OAUNC][A-Z2-7]{56}/);
    expect(text).not.toMatch(/PRIVATE KEY/);
    // The operator signing seed has its secret, filled by the vendor; no node may read it.
    const seed = resourcesOf(example.json, 'AWS::SecretsManager::Secret').find(([, s]) => s.Properties.Name === 'byoc/hub/operator-signing-seed')![0];
    for (const [, p] of resourcesOf(example.json, 'AWS::IAM::ManagedPolicy')) expect(JSON.stringify(p)).not.toContain(seed);
  });
});

test('a certificate secret under a customer-managed key: each execution role may decrypt with that key, through Secrets Manager only', () => {
  const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/0123abcd-0123-0123-0123-0123456789ab';
  const s = synthControl(exampleVendorProps({}, { tls: { ...exampleVendorProps().hub!.tls, certificateSecretKeyArn: keyArn } }));
  const grants = resourcesOf(s.json, 'AWS::IAM::ManagedPolicy').flatMap(([, p]) => p.Properties.PolicyDocument.Statement
    .filter((st: any) => JSON.stringify(st).includes(keyArn)).map((st: any) => ({ role: p.Properties.Roles[0].Ref, st })));
  expect(grants.map((g) => g.role).sort()).toEqual([0, 1, 2].map((i) => expect.stringMatching(new RegExp(`^HubNode${i}ExecutionRole`))));
  for (const { st } of grants) {
    expect(st).toEqual({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn, Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } } });
  }
});

describe('leaf nodes in: load balancer and endpoint service', () => {
  test('an internal Network Load Balancer listens on 7422 with TCP (TLS passes through) and forwards to each node\'s 7422', () => {
    example.template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
    example.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal', Type: 'network' });
    example.template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    example.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: HUB_PORTS.leafnode, Protocol: 'TCP' });
    example.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: HUB_PORTS.leafnode, Protocol: 'TCP', TargetType: 'ip',
      HealthCheckProtocol: 'HTTP', HealthCheckPort: String(HUB_PORTS.monitoring), HealthCheckPath: '/healthz',
    });
    // The monitoring port is open to the load balancer only; the client port to nobody yet.
    const ingress = resourcesOf(example.json, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => r.Properties)
      .filter((r) => r.GroupId['Fn::GetAtt'][0].startsWith('HubNodeSecurityGroup'))
      .map((r) => `${r.FromPort} from ${r.SourceSecurityGroupId['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')}`).sort();
    expect(ingress).toEqual([`${HUB_PORTS.cluster} from HubNodeSecurityGroup`, `${HUB_PORTS.leafnode} from HubLoadBalancerSecurityGroup`, `${HUB_PORTS.monitoring} from HubLoadBalancerSecurityGroup`]);
    for (const [, s] of nodeServices(example)) {
      expect(s.Properties.LoadBalancers).toEqual([{ ContainerName: 'main', ContainerPort: HUB_PORTS.leafnode, TargetGroupArn: expect.anything() }]);
    }
  });

  test.each([['the example', () => example, EXAMPLE_ACCOUNTS], ['three accounts', () => registered, ACCOUNTS]])('%s: the endpoint service admits exactly the registered accounts, without a second acceptance', (_n, s, accounts) => {
    s().template.hasResourceProperties('AWS::EC2::VPCEndpointService', { AcceptanceRequired: false, NetworkLoadBalancerArns: [{ Ref: Match.stringLikeRegexp('^HubLoadBalancer') }] });
    const permissions = resourcesOf(s().json, 'AWS::EC2::VPCEndpointServicePermissions');
    expect(permissions).toHaveLength(1);
    const allowed = permissions[0][1].Properties.AllowedPrincipals.map((p: any) => JSON.stringify(p));
    expect(allowed.sort()).toEqual(accounts.map((a) => JSON.stringify({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${a}:root`]] })).sort());
  });

  test('with no registered account, nobody is allowed on the endpoint service, the repositories or the image key', () => {
    const none = synthControl(exampleVendorProps({ customerAccounts: [] }));
    none.template.resourceCountIs('AWS::EC2::VPCEndpointServicePermissions', 0);
    for (const [, r] of resourcesOf(none.json, 'AWS::ECR::Repository')) expect(r.Properties.RepositoryPolicyText).toBeUndefined();
    const imageKey = resourcesOf(none.json, 'AWS::KMS::Key').find(([id]) => id.startsWith('ImageKey'))![1];
    expect(imageKey.Properties.KeyPolicy.Statement.map((s: any) => s.Sid)).not.toContain('RegisteredCustomersDecryptThroughEcr');
  });

  test('no security group admits 0.0.0.0/0 or ::/0 unless internetFacing, and then only the public load balancer on 7422', () => {
    const open = (s: SynthesizedControlPlane) => [
      ...resourcesOf(s.json, 'AWS::EC2::SecurityGroup').flatMap(([id, g]) => (g.Properties.SecurityGroupIngress ?? []).map((r: any) => ({ id, ...r }))),
      ...resourcesOf(s.json, 'AWS::EC2::SecurityGroupIngress').map(([, r]) => ({ id: r.Properties.GroupId['Fn::GetAtt']?.[0], ...r.Properties })),
    ].filter((r) => r.CidrIp === '0.0.0.0/0' || r.CidrIpv6 === '::/0');
    expect(open(example)).toEqual([]);
    expect(open(registered)).toEqual([]);
    expect(open(internetFacing)).toEqual([expect.objectContaining({
      id: expect.stringMatching(/^HubPublicLoadBalancerSecurityGroup/), CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: HUB_PORTS.leafnode, ToPort: HUB_PORTS.leafnode,
    })]);
  });

  test('internetFacing adds an internet-facing load balancer on one Elastic IP per AZ in public subnets; the nodes stay isolated', () => {
    const t = internetFacing.template;
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internet-facing', Type: 'network', SubnetMappings: Match.arrayWith([Match.objectLike({ AllocationId: Match.anyValue() })]) });
    t.resourceCountIs('AWS::EC2::EIP', 3);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.hasOutput('HubPublicAddresses', {});
    // The endpoint service still fronts only the internal one.
    t.hasResourceProperties('AWS::EC2::VPCEndpointService', { NetworkLoadBalancerArns: [{ Ref: Match.stringLikeRegexp('^HubLoadBalancer') }] });
    for (const [, s] of resourcesOf(internetFacing.json, 'AWS::ECS::Service')) {
      expect(s.Properties.LoadBalancers).toHaveLength(2);
      for (const subnet of s.Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets) expect(subnet.Ref).toMatch(/Isolated/);
    }
  });
});

describe('network', () => {
  test('isolated subnets only, no internet or NAT gateway; endpoints for ECR, Secrets Manager, Logs and EC2, S3 through a gateway; flow logs of all traffic', () => {
    const t = example.template;
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    for (const [, s] of resourcesOf(example.json, 'AWS::EC2::Subnet')) expect(s.Properties.MapPublicIpOnLaunch).toBe(false);
    const services = resourcesOf(example.json, 'AWS::EC2::VPCEndpoint').map(([, e]) => [e.Properties.VpcEndpointType, JSON.stringify(e.Properties.ServiceName)]);
    expect(services.filter(([type]) => type === 'Interface').map(([, n]) => n.match(/\.(ecr\.api|ecr\.dkr|secretsmanager|logs|ec2)"/)?.[1]).sort()).toEqual(['ec2', 'ecr.api', 'ecr.dkr', 'logs', 'secretsmanager']);
    expect(services.filter(([type]) => type === 'Gateway').map(([, n]) => n)).toEqual([expect.stringContaining('.s3')]);
    t.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
  });
});

/** The control plane's Lambda functions, the deploy-time function's role statements and security groups. */
function deployTime(s: SynthesizedControlPlane) {
  const functions = resourcesOf(s.json, 'AWS::Lambda::Function');
  expect(functions.map(([id]) => id)).toEqual([expect.stringMatching(/^HubNetworkDeployTimeFunction/)]);
  const [id, fn] = functions[0];
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  const policies = resourcesOf(s.json, 'AWS::IAM::ManagedPolicy').filter(([, p]) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]));
  expect(policies).toHaveLength(1);
  const statements = policies[0][1].Properties.PolicyDocument.Statement.map((st: any) => ({ ...st, Action: [st.Action].flat(), Resource: [st.Resource].flat() }));
  const groups = fn.Properties.VpcConfig.SecurityGroupIds.map((g: any) => g['Fn::GetAtt'][0] as string);
  return { id, fn, roleId, policyId: policies[0][0], statements, groups };
}
const ec2Arn = (resource: string, ...rest: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:${resource}`, ...rest]] });
const groupArn = (id: string) => ec2Arn('security-group/', { 'Fn::GetAtt': [id, 'GroupId'] });
const customResourcesOf = (s: SynthesizedControlPlane) => Object.entries<any>(s.json.Resources)
  .filter(([, r]) => r.Type.startsWith('Custom::') || r.Type === 'AWS::CloudFormation::CustomResource');
const isolatedSubnets = (s: SynthesizedControlPlane) => s.stack.resolve(s.stack.plane.hub!.network.vpc.isolatedSubnets.map((n) => n.subnetId));
const egressOf = (s: SynthesizedControlPlane, groupId: string) => [
  ...(s.json.Resources[groupId].Properties.SecurityGroupEgress ?? []),
  ...resourcesOf(s.json, 'AWS::EC2::SecurityGroupEgress').filter(([, r]) => r.Properties.GroupId['Fn::GetAtt']?.[0] === groupId).map(([, r]) => r.Properties),
].map(({ Description, GroupId, ...r }: any) => r)
  // CDK's placeholder on a group without egress rules: matches no traffic.
  .filter((r) => !(r.IpProtocol === 'icmp' && r.CidrIp === '255.255.255.255/32'));

describe('the deploy-time function: the control plane\'s only Lambda, in the hub\'s VPC (Control Tower CT.LAMBDA.PR.3)', () => {
  let prefixListGiven: SynthesizedControlPlane;
  beforeAll(() => {
    prefixListGiven = synthControl(exampleVendorProps({}, { s3PrefixListId: 'pl-6da54004' }));
  });

  test('every AWS::Lambda::Function of every variant has a VpcConfig in the hub\'s isolated subnets, and logs to an encrypted log group the stack owns', () => {
    for (const s of [example, registered, internetFacing, prefixListGiven]) {
      const functions = resourcesOf(s.json, 'AWS::Lambda::Function');
      expect(functions).toHaveLength(1);
      for (const [id, fn] of functions) {
        expect({ id, subnets: fn.Properties.VpcConfig?.SubnetIds }).toEqual({ id, subnets: isolatedSubnets(s) });
        expect(fn.Properties.VpcConfig.SecurityGroupIds.length).toBeGreaterThan(0);
        const group = s.json.Resources[fn.Properties.LoggingConfig.LogGroup.Ref];
        expect(group.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^HubKey/), 'Arn'] });
      }
    }
    // No CDK provider: neither restrictDefaultSecurityGroup's Lambda nor AwsCustomResource's.
    expect(customResourcesOf(example).map(([, r]) => r.Type).filter((t) => t === 'Custom::VpcRestrictDefaultSG' || t === 'Custom::AWS')).toEqual([]);
  });

  test('no Lambda finding is acknowledged: no CT.LAMBDA.PR.3 (lambda_inside_vpc_check), no LambdaInsideVPC', () => {
    for (const s of [example, internetFacing]) {
      const acks = acknowledgementsOf(s.app);
      expect(acks.filter((a) => /lambda_inside_vpc_check|CT\.LAMBDA\.PR\.3|LambdaInsideVPC/.test(`${a.finding} ${a.reason}`))).toEqual([]);
      expect(acks.length).toBeGreaterThan(0);
    }
  });

  test('it serves Custom::RestrictDefaultSecurityGroup (the VPC\'s default group) and Custom::S3PrefixList directly; no database roles here', () => {
    const { id, groups } = deployTime(example);
    const vpcId = (example.stack.resolve(example.stack.plane.hub!.network.vpc.vpcId) as { Ref: string }).Ref;
    const custom = customResourcesOf(example);
    expect(custom.map(([, r]) => r.Type).sort()).toEqual(['Custom::RestrictDefaultSecurityGroup', 'Custom::S3PrefixList']);
    for (const [rid, r] of custom) {
      expect({ rid, token: r.Properties.ServiceToken, timeout: r.Properties.ServiceTimeout }).toEqual({ rid, token: { 'Fn::GetAtt': [id, 'Arn'] }, timeout: '600' });
    }
    const byType = Object.fromEntries(custom.map(([, r]) => [r.Type, r.Properties]));
    expect(byType['Custom::RestrictDefaultSecurityGroup'].SecurityGroupId).toEqual({ 'Fn::GetAtt': [vpcId, 'DefaultSecurityGroup'] });
    expect(byType['Custom::S3PrefixList'].ResponseSecurityGroupId).toEqual({ 'Fn::GetAtt': [groups[1], 'GroupId'] });
    // With the prefix list given, no lookup: the default group is still closed.
    expect(customResourcesOf(prefixListGiven).map(([, r]) => r.Type)).toEqual(['Custom::RestrictDefaultSecurityGroup']);
  });

  test('its role: the network interfaces Lambda manages for it, its log group, and the EC2 calls of its two resources; no secret, no key', () => {
    const { fn, statements, groups } = deployTime(example);
    const [fnGroup, responseGroup] = groups;
    const vpcId = (example.stack.resolve(example.stack.plane.hub!.network.vpc.vpcId) as { Ref: string }).Ref;
    const subnets = isolatedSubnets(example) as { Ref: string }[];
    expect(statements.map((st: any) => ({ Action: st.Action, Resource: st.Resource, ...(st.Condition ? { Condition: st.Condition } : {}) }))).toEqual([
      { Action: ['ec2:DescribeManagedPrefixLists', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSecurityGroups', 'ec2:DescribeSubnets'], Resource: ['*'] },
      { Action: ['ec2:CreateNetworkInterface'], Resource: expect.arrayContaining([ec2Arn('network-interface/*'), groupArn(fnGroup), groupArn(responseGroup), ...subnets.map((n) => ec2Arn('subnet/', n))]) },
      { Action: ['ec2:AssignPrivateIpAddresses', 'ec2:DeleteNetworkInterface', 'ec2:UnassignPrivateIpAddresses'], Resource: [ec2Arn('network-interface/*')] },
      { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [{ 'Fn::GetAtt': [fn.Properties.LoggingConfig.LogGroup.Ref, 'Arn'] }] },
      { Action: ['ec2:AuthorizeSecurityGroupEgress'], Resource: [groupArn(responseGroup)] },
      { Action: ['ec2:RevokeSecurityGroupEgress', 'ec2:RevokeSecurityGroupIngress'], Resource: [ec2Arn('security-group/', { 'Fn::GetAtt': [vpcId, 'DefaultSecurityGroup'] })] },
    ]);
    expect(statements.find((st: any) => st.Action.includes('ec2:CreateNetworkInterface')).Resource).toHaveLength(1 + 2 + subnets.length);
    // With the prefix list given: no lookup, so neither DescribeManagedPrefixLists nor AuthorizeSecurityGroupEgress.
    const given = deployTime(prefixListGiven).statements.flatMap((st: any) => st.Action);
    expect(given).not.toContain('ec2:DescribeManagedPrefixLists');
    expect(given).not.toContain('ec2:AuthorizeSecurityGroupEgress');
  });

  test('the EC2 endpoint admits only the function\'s role, for exactly the EC2 calls its role holds for its resources', () => {
    const { roleId, statements } = deployTime(example);
    const ec2Endpoints = resourcesOf(example.json, 'AWS::EC2::VPCEndpoint').filter(([, e]) => /\.ec2"/.test(JSON.stringify(e.Properties.ServiceName)));
    expect(ec2Endpoints).toHaveLength(1);
    const policy = ec2Endpoints[0][1].Properties.PolicyDocument.Statement;
    for (const st of policy) expect(st).toEqual(expect.objectContaining({ Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [roleId, 'Arn'] } } }));
    const calls = policy.map((st: any) => ({ Action: [st.Action].flat(), Resource: [st.Resource].flat() }));
    expect(calls.flatMap((c: any) => c.Action).sort()).toEqual(['ec2:AuthorizeSecurityGroupEgress', 'ec2:DescribeManagedPrefixLists', 'ec2:DescribeSecurityGroups', 'ec2:RevokeSecurityGroupEgress', 'ec2:RevokeSecurityGroupIngress']);
    for (const call of calls) {
      const granted = statements.filter((st: any) => call.Action.every((a: string) => st.Action.includes(a)));
      expect({ call, granted: granted.map((g: any) => g.Resource) }).toEqual({ call, granted: expect.arrayContaining([expect.arrayContaining(call.Resource)]) });
      if (call.Resource.includes('*')) expect(call.Action.every((a: string) => a.startsWith('ec2:Describe'))).toBe(true);
      else expect(call.Resource).toHaveLength(1);
    }
  });

  test('the S3 gateway also admits CloudFormation\'s responses, writes under this account\'s stacks only', () => {
    const [[, s3]] = resourcesOf(example.json, 'AWS::EC2::VPCEndpoint').filter(([, e]) => e.Properties.VpcEndpointType === 'Gateway');
    const responses = s3.Properties.PolicyDocument.Statement.find((st: any) => st.Sid === 'CloudFormationResponses');
    expect(responses).toEqual(expect.objectContaining({ Effect: 'Allow', Action: 's3:PutObject', Principal: { AWS: '*' } }));
    expect(JSON.stringify(responses.Resource)).toMatch(/cloudformation-custom-resource-response-.*:cloudformation:.*AWS::AccountId.*:stack\/\*/);
    expect(s3.Properties.PolicyDocument.Statement.map((st: any) => st.Sid ?? 'account-only')).toEqual(['account-only', 'EcrImageLayers', 'CloudFormationResponses']);
  });

  test('its security groups reach the AWS API endpoints on 443 and S3 (a rule in the template only when the prefix list is given), nothing else', () => {
    const endpointSg = (example.stack.resolve(example.stack.plane.hub!.network.endpointSecurityGroup.securityGroupId) as any)['Fn::GetAtt'][0];
    const https = { IpProtocol: 'tcp', FromPort: 443, ToPort: 443 };
    const [fnGroup, responseGroup] = deployTime(example).groups;
    expect(egressOf(example, fnGroup)).toEqual([{ ...https, DestinationSecurityGroupId: { 'Fn::GetAtt': [endpointSg, 'GroupId'] } }]);
    // The response group's one rule is added by the lookup itself; in the template it has none.
    expect(egressOf(example, responseGroup)).toEqual([]);
    const given = deployTime(prefixListGiven);
    expect(given.groups).toHaveLength(1);
    expect(egressOf(prefixListGiven, given.groups[0])).toEqual(expect.arrayContaining([
      { ...https, DestinationSecurityGroupId: { 'Fn::GetAtt': [endpointSg, 'GroupId'] } },
      { ...https, DestinationPrefixListId: 'pl-6da54004' },
    ]));
    expect(egressOf(prefixListGiven, given.groups[0])).toHaveLength(2);
  });
});

describe('release infrastructure', () => {
  test('image repositories: immutable tags, scan on push, KMS-encrypted, retained', () => {
    const t = example.template;
    t.resourceCountIs('AWS::ECR::Repository', IMAGE_REPOSITORIES.length + 1);
    for (const name of [...IMAGE_REPOSITORIES, VENDOR_SERVICES_REPOSITORY]) {
      t.hasResource('AWS::ECR::Repository', {
        DeletionPolicy: 'Retain',
        Properties: {
          RepositoryName: name,
          ImageTagMutability: 'IMMUTABLE',
          ImageScanningConfiguration: { ScanOnPush: true },
          EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ImageKey'), 'Arn'] } },
        },
      });
    }
  });

  test('each repository policy lets exactly the registered accounts pull, and do nothing else', () => {
    for (const [, r] of resourcesOf(registered.json, 'AWS::ECR::Repository')) {
      // The vendor's own services image: no customer may pull it.
      if (r.Properties.RepositoryName === VENDOR_SERVICES_REPOSITORY) {
        expect(r.Properties.RepositoryPolicyText).toBeUndefined();
        continue;
      }
      const statements = r.Properties.RepositoryPolicyText.Statement;
      expect(statements).toHaveLength(1);
      expect(statements[0].Effect).toBe('Allow');
      expect([statements[0].Action].flat().sort()).toEqual([...ECR_PULL_ACTIONS].sort());
      expect(principalsOf(statements[0])).toEqual(ACCOUNTS.map(rootOf).sort());
      expect(statements[0].Condition).toBeUndefined();
    }
  });

  test('the image key lets exactly the registered accounts decrypt, and only through ECR', () => {
    const key = resourcesOf(registered.json, 'AWS::KMS::Key').find(([id]) => id.startsWith('ImageKey'))![1];
    const statement = key.Properties.KeyPolicy.Statement.find((s: any) => s.Sid === 'RegisteredCustomersDecryptThroughEcr');
    expect(statement).toMatchObject({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['ecr.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } } });
    expect(principalsOf(statement)).toEqual(ACCOUNTS.map(rootOf).sort());
    // No other statement names a customer account.
    const others = key.Properties.KeyPolicy.Statement.filter((s: any) => s !== statement);
    for (const a of ACCOUNTS) expect(JSON.stringify(others)).not.toContain(a);
  });

  test('the bundle signing key is an asymmetric ECDSA P-256 signing key', () => {
    example.template.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
  });

  test('only AWS services may create grants on any key (Control Tower CT.KMS.PR.3)', () => {
    const keys = resourcesOf(example.json, 'AWS::KMS::Key');
    // Image key, bundle signing key, bundle registry key, hub key.
    expect(keys).toHaveLength(4);
    for (const [, key] of keys) {
      expect(key.Properties.KeyPolicy.Statement).toContainEqual({
        Sid: 'GrantsOnlyForAwsServices',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'kms:CreateGrant',
        Resource: '*',
        Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
      });
    }
  });
});

describe('what is kept on delete', () => {
  const stateful = ['AWS::ECR::Repository', 'AWS::KMS::Key', 'AWS::S3::Bucket', 'AWS::EFS::FileSystem', 'AWS::EFS::AccessPoint', 'AWS::SecretsManager::Secret', 'AWS::Logs::LogGroup'];

  test('by default (retainReleases, retainData): every stateful resource, a backup plan into a retained vault, deletion protection', () => {
    for (const type of stateful) for (const [id, r] of resourcesOf(example.json, type)) expect([id, r.DeletionPolicy]).toEqual([id, 'Retain']);
    example.template.hasResource('AWS::Backup::BackupVault', { DeletionPolicy: 'Retain' });
    example.template.resourceCountIs('AWS::Backup::BackupSelection', 1);
    example.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'deletion_protection.enabled', Value: 'true' }]),
    });
  });

  test('retainReleases and retainData off: cdk destroy removes everything', () => {
    const gone = synthControl(exampleVendorProps({ retainReleases: false, retainData: false }));
    for (const type of stateful) for (const [id, r] of resourcesOf(gone.json, type)) expect([id, r.DeletionPolicy]).toEqual([id, 'Delete']);
    gone.template.resourceCountIs('AWS::Backup::BackupVault', 0);
    gone.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'deletion_protection.enabled', Value: 'false' }]),
    });
  });

  test('without a hub, only the release infrastructure (a first deploy before the nats-server image is pushed)', () => {
    const bare = synthControl(exampleVendorProps({ hub: undefined }));
    expect([...new Set(Object.values<any>(bare.json.Resources).map((r) => r.Type))].sort()).toEqual([
      'AWS::ECR::Repository', 'AWS::IAM::ManagedPolicy', 'AWS::IAM::Role', 'AWS::KMS::Key', 'AWS::S3::Bucket', 'AWS::S3::BucketPolicy',
    ]);
    expect(Object.keys(bare.json.Outputs).sort()).toEqual([
      'AgentRuntimeRepositoryUri', 'BundleRegistryAccessLogBucketName', 'BundleRegistryBucketName', 'BundleRegistryKeyArn', 'BundleSigningKeyArn',
      'ImageKeyArn', 'NatsServerRepositoryUri', 'OtelCollectorRepositoryUri', 'ReleaseSignerRoleArn', 'VendorServicesRepositoryUri',
    ]);
  });
});

test('outputs: what an operator needs to publish releases and register customers', () => {
  expect(Object.keys(example.json.Outputs).sort()).toEqual([
    'AgentRuntimeRepositoryUri', 'BundleRegistryAccessLogBucketName', 'BundleRegistryBucketName', 'BundleRegistryKeyArn', 'BundleSigningKeyArn',
    'HubClusterName', 'HubEndpointServiceName', 'HubKeyArn', 'HubLoadBalancerDnsName',
    'HubUrl', 'ImageKeyArn', 'NatsServerRepositoryUri', 'OperatorSigningSeedSecretArn', 'OtelCollectorRepositoryUri', 'ReleaseSignerRoleArn',
    'VendorServicesRepositoryUri',
  ]);
  expect(example.json.Outputs.HubUrl.Value).toBe(`tls://hub.byoc.vendor.example:${HUB_PORTS.leafnode}`);
  expect(example.json.Outputs.HubEndpointServiceName.Value).toEqual(expect.objectContaining({ 'Fn::Join': expect.anything() }));
});

describe('the vendor services of the example app (npm run synth): ingest, learning pool, LLM proxy', () => {
  let app: ReturnType<typeof synthControl>;
  beforeAll(() => { app = synthControl(exampleAppProps()); });

  test('ingest and the LLM proxy run beside the hub nodes in its cluster, from the vendor services image pinned by digest', () => {
    const services = resourcesOf(app.json, 'AWS::ECS::Service');
    const byId = (prefix: string) => services.filter(([id]) => id.startsWith(prefix));
    expect(byId('HubNode')).toHaveLength(3);
    expect(byId('IngestService')).toHaveLength(1);
    expect(byId('LlmProxyService')).toHaveLength(1);
    for (const [, service] of [...byId('IngestService'), ...byId('LlmProxyService')]) {
      expect(service.Properties.Cluster).toEqual({ Ref: expect.stringMatching(/^HubCluster/) });
      const container = app.json.Resources[service.Properties.TaskDefinition.Ref].Properties.ContainerDefinitions[0];
      expect(JSON.stringify(container.Image)).toMatch(/\/byoc\/vendor-services@sha256:[0-9a-f]{64}"\]\]\}$/);
      expect(container.ReadonlyRootFilesystem).toBe(true);
    }
  });

  test('the LLM proxy is reached through the hub\'s endpoint service: a TCP listener on 443 of the hub\'s internal load balancer', () => {
    const listeners = resourcesOf(app.json, 'AWS::ElasticLoadBalancingV2::Listener').map(([, l]) => l.Properties);
    expect(listeners.map((l) => [l.Port, l.Protocol, l.LoadBalancerArn.Ref]).sort()).toEqual([
      [443, 'TCP', expect.stringMatching(/^HubLoadBalancer[0-9A-F]{8}$/)], [HUB_PORTS.leafnode, 'TCP', expect.stringMatching(/^HubLoadBalancer[0-9A-F]{8}$/)],
    ]);
  });

  test('outputs name what byoc customer add needs to issue LLM proxy tokens, and where ingest writes', () => {
    expect(Object.keys(app.json.Outputs)).toEqual(expect.arrayContaining(['IngestTables', 'IngestServiceName', 'LlmProxyUrl', 'LlmProxyTokenKeyArn', 'LlmProxyTableName', 'VendorServicesRepositoryUri']));
    expect(app.json.Outputs.LlmProxyTokenKeyArn.Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^LlmProxyTokenSigningKey/), 'Arn'] });
  });

  test.each([
    ['without a hub', () => ({ ...exampleAppProps(), hub: undefined }), /Invalid prop 'services': set without hub.*Fix: add the hub settings/],
    ['an image by tag', () => ({ ...exampleAppProps(), services: { ...exampleServices(), image: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/vendor-services:1.0' } }), /Invalid prop 'services.image'/],
    ['a refresh of a day', () => ({ ...exampleAppProps(), services: { ...exampleServices(), ingestRefreshSeconds: 86400 } }), /Invalid prop 'services.ingestRefreshSeconds'.*Fix: give a whole number of seconds from 1 to 3600/],
  ])('services %s fail at synth naming the setting', (_n, props, error) => {
    expect(() => new ControlPlaneStack(new App(), 'Bad', props())).toThrow(error);
  });
});
