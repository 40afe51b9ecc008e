import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AGENT_CATALOG, DataStore } from '../../agents/catalog';
import { dbUserOf } from '../../customer-plane/data-stores';
import { HardenedService, HardenedServiceProps } from '../../customer-plane/hardened-service';
import { INTERFACE_ENDPOINTS } from '../../customer-plane/network';
import { PropError } from '../../lib/errors';
import { allResources, synthCustomerPlane, SynthesizedPlane } from '../synth';

let plane: SynthesizedPlane;
beforeAll(() => {
  plane = synthCustomerPlane();
});

const resources = (type?: string) => allResources(plane.templates).filter((r) => !type || r.type === type);

describe('network: no path to or from the internet by default', () => {
  test('no internet gateway, NAT gateway, elastic IP or egress-only gateway anywhere', () => {
    for (const type of ['AWS::EC2::InternetGateway', 'AWS::EC2::NatGateway', 'AWS::EC2::EIP', 'AWS::EC2::EgressOnlyInternetGateway', 'AWS::EC2::VPCGatewayAttachment']) {
      expect(resources(type)).toEqual([]);
    }
  });

  test('every subnet is private: no public IPs on launch, no route to 0.0.0.0/0', () => {
    const subnets = resources('AWS::EC2::Subnet');
    expect(subnets.length).toBe(2);
    for (const s of subnets) expect(s.props.MapPublicIpOnLaunch).toBe(false);
    expect(resources('AWS::EC2::Route')).toEqual([]);
  });

  test('no security group admits traffic from 0.0.0.0/0 or ::/0', () => {
    const ingress = [
      ...resources('AWS::EC2::SecurityGroup').flatMap((r) => r.props.SecurityGroupIngress ?? []),
      ...resources('AWS::EC2::SecurityGroupIngress').map((r) => r.props),
    ];
    expect(ingress.length).toBeGreaterThan(0);
    for (const rule of ingress) {
      expect(rule.CidrIp).toBeUndefined();
      expect(rule.CidrIpv6).toBeUndefined();
      expect(rule.SourceSecurityGroupId).toBeDefined();
    }
  });

  test('every security group ingress names a single literal port', () => {
    const ingress = [
      ...resources('AWS::EC2::SecurityGroup').flatMap((r) => r.props.SecurityGroupIngress ?? []),
      ...resources('AWS::EC2::SecurityGroupIngress').map((r) => r.props),
    ];
    for (const rule of ingress) {
      expect(typeof rule.FromPort).toBe('number');
      expect(rule.FromPort).toBe(rule.ToPort);
      expect(rule.IpProtocol).toBe('tcp');
    }
  });

  test('interface endpoints for ECR, Logs, Secrets Manager, KMS and STS plus an S3 gateway, each admitting this account (network.test.ts: and ECR layers on S3)', () => {
    // Not the vendor hub's, nor EC2's (it admits only the deploy-time function: network.test.ts).
    const endpoints = resources('AWS::EC2::VPCEndpoint').filter((e) => !String(e.props.ServiceName).startsWith('com.amazonaws.vpce.') && !JSON.stringify(e.props.ServiceName).includes('.ec2"'));
    const names = endpoints.map((e) => JSON.stringify(e.props.ServiceName));
    for (const service of Object.values(INTERFACE_ENDPOINTS)) {
      expect(names.some((n) => n.includes(`.${service.shortName}`) || n.includes(service.name))).toBe(true);
    }
    expect(endpoints.filter((e) => e.props.VpcEndpointType === 'Interface')).toHaveLength(Object.keys(INTERFACE_ENDPOINTS).length);
    expect(endpoints.filter((e) => e.props.VpcEndpointType === 'Gateway')).toHaveLength(1);
    for (const e of endpoints) {
      expect(e.props.PolicyDocument.Statement[0]).toEqual(expect.objectContaining({
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Condition: { StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } },
      }));
      if (e.props.VpcEndpointType === 'Interface') expect(e.props.PrivateDnsEnabled).toBe(true);
    }
  });

  test('VPC flow logs record all traffic to a KMS-encrypted log group', () => {
    plane.root.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
  });
});

describe('IAM: least privilege', () => {
  const policies = () => [
    ...resources('AWS::IAM::ManagedPolicy').map((r) => ({ id: r.id, doc: r.props.PolicyDocument })),
    ...resources('AWS::IAM::Policy').map((r) => ({ id: r.id, doc: r.props.PolicyDocument })),
    ...resources('AWS::IAM::Role').flatMap((r) => (r.props.Policies ?? []).map((p: any) => ({ id: r.id, doc: p.PolicyDocument }))),
  ];

  test('no IAM statement grants a wildcard action (`*` or `service:*`)', () => {
    const all = policies();
    expect(all.length).toBeGreaterThan(60);
    for (const { id, doc } of all) {
      for (const st of doc.Statement) {
        for (const action of [st.Action].flat()) {
          expect({ id, action }).toEqual({ id, action: expect.not.stringMatching(/(^\*$)|(:\*$)/) });
        }
      }
    }
  });

  test('the only `Resource: *` are actions with no resource-level permissions: ecr:GetAuthorizationToken, the deploy-time function\'s EC2 Describe calls, the collector\'s xray:PutTraceSegments', () => {
    const starred = new Set<string>();
    const describe = ['ec2:DescribeManagedPrefixLists', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSecurityGroups', 'ec2:DescribeSubnets'];
    for (const { id, doc } of policies()) {
      for (const st of doc.Statement) {
        if (![st.Resource].flat().includes('*')) continue;
        const actions = [st.Action].flat();
        if (actions.includes('ec2:DescribeManagedPrefixLists')) {
          expect({ id, actions }).toEqual({ id: expect.stringMatching(/^PlaneNetworkDeployTimeRolePermissions/), actions: describe });
        } else if (actions.includes('xray:PutTraceSegments')) {
          // X-Ray has no resource type for it; only the collector's task role has it.
          expect({ id, actions }).toEqual({ id: expect.stringMatching(/^PlaneCollectorTaskRole/), actions: ['xray:PutTraceSegments'] });
        } else {
          expect(actions).toEqual(['ecr:GetAuthorizationToken']);
        }
        actions.forEach((a: string) => starred.add(a));
      }
    }
    expect([...starred].sort()).toEqual([...describe, 'ecr:GetAuthorizationToken', 'xray:PutTraceSegments']);
  });

  test('no plane-owned IAM entity is an inline policy: permissions live in one managed policy per role', () => {
    const inline = resources('AWS::IAM::Policy').filter((r) => !r.id.startsWith('CustomVpcRestrictDefaultSG'));
    expect(inline).toEqual([]);
  });

  test('every agent has its own task role granting exactly what its catalog entry declares', () => {
    const roles = new Set<string>();
    for (const spec of AGENT_CATALOG) {
      const group = plane.stack.plane.agentGroups[spec.group];
      const agent = group.agents[spec.name];
      const role = agent.workload.taskRole;
      roles.add(role.node.path);
      const resolve = (v: unknown) => Stack.of(group).resolve(v);
      const policy = role.permissions;
      const statements: any[] = resolve((policy!.node.defaultChild as iam.CfnManagedPolicy).policyDocument).Statement;
      const byAction = (a: string) => statements.filter((s) => [s.Action].flat().includes(a));

      // Database: connect as its own user only.
      const connect = byAction('rds-db:connect');
      if (spec.dataStores.includes(DataStore.POSTGRES)) {
        expect(connect).toHaveLength(1);
        expect(JSON.stringify(connect[0].Resource)).toContain(`/${dbUserOf(spec.name)}"`);
      } else {
        expect(connect).toEqual([]);
      }

      // Secrets: exactly the declared ones, its own NATS password, and its own Redis user's password for Redis users.
      const expectedSecrets = [
        resolve(plane.stack.plane.link.agentPasswords[spec.name].secretArn),
        ...spec.secrets.map((s) => resolve(plane.stack.plane.stores.agentSecrets[s].secretArn)),
        ...(spec.dataStores.includes(DataStore.REDIS) ? [resolve(plane.stack.plane.stores.redisPasswords[spec.name].secretArn)] : []),
      ];
      const secretResources = byAction('secretsmanager:GetSecretValue').flatMap((s) => [s.Resource].flat());
      expect(secretResources).toHaveLength(expectedSecrets.length);
      expect(secretResources).toEqual(expect.arrayContaining(expectedSecrets));
      for (const d of byAction('kms:Decrypt')) {
        expect(d.Condition).toEqual({ StringEquals: { 'kms:ViaService': expect.anything() } });
      }

      // Workspace: mount only through its own access point.
      const mount = byAction('elasticfilesystem:ClientMount');
      if (spec.dataStores.includes(DataStore.WORKSPACE)) {
        expect(mount).toHaveLength(1);
        expect(mount[0].Condition.StringEquals['elasticfilesystem:AccessPointArn']).toEqual(resolve(agent.accessPoint!.accessPointArn));
      } else {
        expect(mount).toEqual([]);
      }

      const allowed = new Set(['rds-db:connect', 'secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret', 'kms:Decrypt', 'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite']);
      for (const s of statements) for (const a of [s.Action].flat()) expect(allowed).toContain(a);
    }
    expect(roles.size).toBe(AGENT_CATALOG.length);
  });

  test('roles can be assumed only by their service, from this account', () => {
    for (const r of resources('AWS::IAM::Role').filter((x) => !x.id.startsWith('CustomVpcRestrictDefaultSG'))) {
      for (const st of r.props.AssumeRolePolicyDocument.Statement) {
        expect(Object.keys(st.Principal)).toEqual(['Service']);
        if (r.id.includes('Backup')) continue;
        expect(st.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } });
      }
    }
  });
});

describe('containers: hardened', () => {
  const containers = () => resources('AWS::ECS::TaskDefinition').flatMap((t) => t.props.ContainerDefinitions.map((c: any) => ({ task: t.id, ...c })));

  test('one service per agent plus the NATS leaf, the boundary gateway and the collector', () => {
    expect(resources('AWS::ECS::Service')).toHaveLength(AGENT_CATALOG.length + 3);
    expect(containers()).toHaveLength(AGENT_CATALOG.length + 3);
  });

  test('every container: read-only root filesystem, non-root user, no privilege, all capabilities dropped', () => {
    for (const c of containers()) {
      expect(c.ReadonlyRootFilesystem).toBe(true);
      expect(c.User).toBe('10001:10001');
      expect(c.Privileged ?? false).toBe(false);
      expect(c.LinuxParameters.Capabilities.Drop).toEqual(['ALL']);
      expect(c.LinuxParameters.Capabilities.Add).toBeUndefined();
    }
  });

  test('every image is pinned by digest', () => {
    for (const c of containers()) expect(JSON.stringify(c.Image)).toMatch(/@sha256:[0-9a-f]{64}"/);
  });

  test('a stack without a region carries a CloudFormation rule: it deploys only to the images\' region', () => {
    const rules = Object.values<any>(plane.root.toJSON().Rules);
    const asserts = rules.flatMap((r) => r.Assertions.map((a: any) => a.Assert));
    expect(asserts).toContainEqual({ 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'eu-west-1'] });
  });

  test('agents roll out start-before-stop (100 % / 200 %); many may run', () => {
    for (const template of Object.values(plane.groups)) {
      for (const s of Object.values<any>(template.findResources('AWS::ECS::Service'))) {
        expect(s.Properties.DeploymentConfiguration).toEqual(expect.objectContaining({ MinimumHealthyPercent: 100, MaximumPercent: 200 }));
      }
    }
  });

  test('logs go to a KMS-encrypted log group with retention; every log group of the plane is encrypted', () => {
    for (const c of containers()) expect(c.LogConfiguration.LogDriver).toBe('awslogs');
    const groups = resources('AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(AGENT_CATALOG.length + 5);
    for (const g of groups) {
      expect(g.props.KmsKeyId).toBeDefined();
      expect(g.props.RetentionInDays).toBe(365);
    }
  });

  test('no secret value in any environment: only identifiers, endpoints and secret ARNs', () => {
    for (const c of containers()) {
      for (const { Name, Value } of c.Environment ?? []) {
        // A name that speaks of a secret must hold its ARN, never its value.
        if (/PASSWORD|TOKEN|SECRET|API_KEY|PRIVATE/.test(Name)) expect(Name).toMatch(/_SECRET_ARNS?$|^BYOC_SECRET_ARNS$/);
        expect(JSON.stringify(Value)).not.toContain('{{resolve:secretsmanager');
      }
    }
  });

  test('tasks get no public IP and never run ECS Exec', () => {
    for (const s of resources('AWS::ECS::Service')) {
      expect(s.props.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
      expect(s.props.EnableExecuteCommand).toBe(false);
    }
  });

  test('each agent with a workspace mounts its own EFS access point over TLS with IAM authorization', () => {
    const withWorkspace = AGENT_CATALOG.filter((a) => a.dataStores.includes(DataStore.WORKSPACE));
    const aps = resources('AWS::EFS::AccessPoint');
    expect(aps).toHaveLength(withWorkspace.length + 2); // + the NATS leaf's JetStream store and the audit log
    const paths = aps.map((a) => a.props.RootDirectory.Path);
    for (const a of withWorkspace) expect(paths).toContain(`/agents/${a.name}`);
    for (const t of resources('AWS::ECS::TaskDefinition')) {
      for (const v of t.props.Volumes ?? []) {
        if (!v.EFSVolumeConfiguration) continue;
        expect(v.EFSVolumeConfiguration.TransitEncryption).toBe('ENABLED');
        expect(v.EFSVolumeConfiguration.AuthorizationConfig.IAM).toBe('ENABLED');
      }
    }
  });

  test('the cluster has Container Insights on', () => {
    plane.root.hasResourceProperties('AWS::ECS::Cluster', { ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }] });
  });
});

describe('data stores: encrypted with the customer-managed key, reachable only from declared agents', () => {
  const keyRef = () => ({ 'Fn::GetAtt': [Match.stringLikeRegexp('^PlaneKey'), 'Arn'] });

  test('the key rotates', () => {
    plane.root.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('PostgreSQL: encrypted, IAM authentication, TLS forced, non-default port, private, Multi-AZ, backed up, monitored', () => {
    plane.root.hasResourceProperties('AWS::RDS::DBInstance', {
      StorageEncrypted: true,
      KmsKeyId: keyRef(),
      EnableIAMDatabaseAuthentication: true,
      Port: '5433',
      PubliclyAccessible: false,
      MultiAZ: true,
      BackupRetentionPeriod: 7,
      MonitoringInterval: 60,
      ManageMasterUserPassword: true,
      MasterUserSecret: { KmsKeyId: keyRef() },
      EnableCloudwatchLogsExports: ['postgresql', 'upgrade'],
    });
    plane.root.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: Match.objectLike({ 'rds.force_ssl': '1' }) });
  });

  test('Redis: TLS required, encrypted at rest with the key, users per agent (no shared AUTH token), Multi-AZ, 15 days of snapshots', () => {
    plane.root.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      TransitEncryptionEnabled: true,
      TransitEncryptionMode: 'required',
      AtRestEncryptionEnabled: true,
      KmsKeyId: keyRef(),
      MultiAZEnabled: true,
      AutomaticFailoverEnabled: true,
      Port: 6380,
      SnapshotRetentionLimit: 15,
      UserGroupIds: Match.anyValue(),
    });
  });

  test('EFS: encrypted with the key, lifecycle policy, TLS-only and no root access by policy', () => {
    plane.root.hasResourceProperties('AWS::EFS::FileSystem', {
      Encrypted: true,
      KmsKeyId: keyRef(),
      LifecyclePolicies: Match.arrayWith([{ TransitionToIA: 'AFTER_30_DAYS' }]),
      FileSystemPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Action: 'elasticfilesystem:ClientRootAccess' }),
        ]),
      },
    });
  });

  test('every secret is encrypted with the key', () => {
    const secrets = resources('AWS::SecretsManager::Secret');
    // 6 agent secrets, 5 of the link, one NATS password per agent, one Redis password per Redis agent.
    const redisAgents = AGENT_CATALOG.filter((a) => a.dataStores.includes(DataStore.REDIS)).length;
    expect(secrets.length).toBe(6 + 5 + AGENT_CATALOG.length + redisAgents);
    for (const s of secrets) expect(s.props.KmsKeyId).toEqual(expect.objectContaining(s.file.startsWith('ByocCustomerPlane.template') ? { 'Fn::GetAtt': [expect.stringMatching(/^PlaneKey/), 'Arn'] } : { Ref: expect.stringMatching(/PlaneKey.*Arn$/) }));
  });

  test('each store admits only its client security group, which only agents declaring the store carry', () => {
    const ingress = resources('AWS::EC2::SecurityGroupIngress').map((r) => r.props);
    const into = (port: number) => ingress.filter((i) => i.FromPort === port);
    // PostgreSQL also admits the deploy-time function, which creates the agents' roles (network.test.ts).
    for (const [port, clients] of [[5433, ['PostgresClients', 'DeployTimeSecurityGroup']], [6380, ['RedisClients']], [2049, ['WorkspaceClients']]] as const) {
      expect(into(port).map((r) => JSON.stringify(r.SourceSecurityGroupId)).sort()).toEqual(clients.map((c) => expect.stringContaining(c)));
    }
    for (const spec of AGENT_CATALOG) {
      const service = plane.groups[spec.group].findResources('AWS::ECS::Service');
      const mine = Object.values<any>(service).find((s) => JSON.stringify(s.Properties.TaskDefinition).includes(spec.name.replace(/-/g, '')));
      const groups = JSON.stringify(mine.Properties.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups);
      expect(groups.includes('PostgresClients')).toBe(spec.dataStores.includes(DataStore.POSTGRES));
      expect(groups.includes('RedisClients')).toBe(spec.dataStores.includes(DataStore.REDIS));
      expect(groups.includes('WorkspaceClients')).toBe(spec.dataStores.includes(DataStore.WORKSPACE));
    }
  });
});

describe('cdk destroy removes everything by default', () => {
  test('no resource is retained or snapshotted; the database\'s deletion protection is the one step byoc destroy lifts first', () => {
    for (const r of allResources(plane.templates)) {
      expect({ id: r.id, policy: r.resource.DeletionPolicy ?? 'Delete' }).toEqual({ id: r.id, policy: 'Delete' });
    }
    plane.root.hasResourceProperties('AWS::RDS::DBInstance', { DeletionProtection: true });
  });

  test('RDS log groups are owned by the stack, so none is left behind', () => {
    plane.root.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/rds/instance/byoc-example-postgres/postgresql' });
  });

  test('Container Insights\' performance log group is owned by the stack, encrypted, and exists before the cluster', () => {
    const groups = plane.root.findResources('AWS::Logs::LogGroup', { Properties: { LogGroupName: '/aws/ecs/containerinsights/byoc-example/performance' } });
    const [id] = Object.keys(groups);
    expect(groups[id]).toEqual(expect.objectContaining({
      DeletionPolicy: 'Delete',
      Properties: expect.objectContaining({ KmsKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^PlaneKey/), 'Arn'] }, RetentionInDays: 365 }),
    }));
    plane.root.hasResource('AWS::ECS::Cluster', { Properties: Match.objectLike({ ClusterName: 'byoc-example' }), DependsOn: Match.arrayWith([id]) });
  });

  test('RDSOSMetrics, shared by every RDS instance of the account and region, is not claimed by default', () => {
    expect(plane.root.findResources('AWS::Logs::LogGroup', { Properties: { LogGroupName: 'RDSOSMetrics' } })).toEqual({});
  });
});

describe('HardenedService', () => {
  const image = (region: string) => `111122223333.dkr.ecr.${region}.amazonaws.com/byoc/nats-server@sha256:${'b'.repeat(64)}`;
  function build(props: Partial<HardenedServiceProps>, region?: string) {
    const app = new App();
    const stack = new Stack(app, 'S', { env: region ? { account: '123456789012', region } : undefined });
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-1', availabilityZones: ['a', 'b'], isolatedSubnetIds: ['subnet-a', 'subnet-b'] });
    new HardenedService(stack, 'Leaf', {
      name: 'nats-leaf', customerId: 'acme', cluster: new ecs.Cluster(stack, 'Cluster', { vpc }),
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, securityGroups: [new ec2.SecurityGroup(stack, 'Sg', { vpc })],
      image: image('eu-west-1'), imageProp: 'images.natsServer', cpu: 256, memoryMiB: 512, key: new kms.Key(stack, 'Key'),
      logRetention: logs.RetentionDays.ONE_WEEK, logRemovalPolicy: RemovalPolicy.DESTROY, ...props,
    });
    return { app, stack };
  }

  test('singleWriter: one task, stopped before its replacement starts (0 % / 100 %)', () => {
    const service = (singleWriter?: boolean) => Object.values<any>(Template.fromStack(build({ singleWriter }).stack).findResources('AWS::ECS::Service'))[0].Properties;
    expect(service(true)).toEqual(expect.objectContaining({
      DesiredCount: 1,
      DeploymentConfiguration: expect.objectContaining({ MinimumHealthyPercent: 0, MaximumPercent: 100, DeploymentCircuitBreaker: { Enable: true, Rollback: true } }),
    }));
    expect(service(false).DeploymentConfiguration).toEqual(expect.objectContaining({ MinimumHealthyPercent: 100, MaximumPercent: 200 }));
  });

  test('singleWriter with more than one task fails, naming desiredCount and the fix', () => {
    const make = () => build({ singleWriter: true, desiredCount: 2 });
    expect(make).toThrow(PropError);
    expect(make).toThrow(/^Invalid prop 'desiredCount': 2 tasks of nats-leaf, a singleWriter service.*Fix: use 1/);
    expect(() => build({ desiredCount: 2 })).not.toThrow();
  });

  test('an image from another region than the stack fails validation, naming the image prop', () => {
    expect(() => build({}, 'us-east-1').app.synth()).toThrow(/Invalid prop 'images\.natsServer'.*is in eu-west-1, but nats-leaf runs in us-east-1/);
    expect(() => build({ image: image('us-east-1') }, 'us-east-1').app.synth()).not.toThrow();
    expect(() => build({}).app.synth()).not.toThrow(); // region unknown at synth: the plane's CloudFormation rule checks it
  });
});
