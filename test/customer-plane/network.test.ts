import * as fs from 'fs';
import * as path from 'path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { CustomerPlane } from '../../customer-plane/customer-plane';
import { EgressMode } from '../../customer-plane/props';
import { CustomerPlaneStackProps } from '../../customer-plane/stack';
import { allResources, exampleProps, synthCustomerPlane, SynthesizedPlane } from '../synth';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const existingVpc = {
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidrBlock: '10.20.0.0/16',
  availabilityZones: ['eu-west-1a', 'eu-west-1b'],
  privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
  privateSubnetRouteTableIds: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0aaaaaaaaaaaaaaa2'],
};

/** Resolves the intrinsics an endpoint policy uses (Ref to pseudo parameters, Fn::Join) for one account and region. */
function resolve(value: any): any {
  if (typeof value === 'string') return value;
  if (value?.Ref) {
    const pseudo: Record<string, string> = { 'AWS::Partition': 'aws', 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT };
    if (!(value.Ref in pseudo)) throw new Error(`unresolvable Ref ${value.Ref}`);
    return pseudo[value.Ref];
  }
  if (value?.['Fn::Join']) {
    const [separator, list] = value['Fn::Join'];
    const parts: string[] = list?.['Fn::Split'] ? resolve(list['Fn::Split'][1]).split(list['Fn::Split'][0]) : list.map(resolve);
    return parts.join(separator);
  }
  throw new Error(`unexpected policy value ${JSON.stringify(value)}`);
}
const glob = (pattern: string, s: string) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.?+^$()[\]{}|\\/]/g, '\\$&')).join('.*')}$`).test(s);

/**
 * Whether an endpoint policy lets a request through: IAM's evaluation for the statement shapes the plane
 * uses (Allow only, principal `*`, StringEquals conditions on aws:PrincipalAccount).
 */
function endpointAllows(policy: any, request: { principalAccount: string; action: string; resource: string }): boolean {
  return policy.Statement.some((st: any) => {
    expect(st.Effect).toBe('Allow'); // a Deny would need real evaluation order; the plane has none
    expect(st.Principal).toEqual({ AWS: '*' });
    const actions = [st.Action].flat();
    const resources = [st.Resource].flat().map(resolve);
    const conditions = st.Condition ?? {};
    expect(Object.keys(conditions).every((op) => op === 'StringEquals')).toBe(true);
    const context: Record<string, string> = { 'aws:PrincipalAccount': request.principalAccount };
    const conditionsHold = Object.entries<any>(conditions.StringEquals ?? {}).every(([key, v]) => context[key] === resolve(v));
    return actions.some((a) => glob(a, request.action)) && resources.some((r) => glob(r, request.resource)) && conditionsHold;
  });
}

let plane: SynthesizedPlane;
beforeAll(() => {
  plane = synthCustomerPlane();
});

/** The endpoints to AWS services (the vendor hub's endpoint is the link's, tested in link.test.ts). */
const endpoints = (p: SynthesizedPlane) => allResources(p.templates).filter((r) => r.type === 'AWS::EC2::VPCEndpoint' && !String(r.props.ServiceName).startsWith('com.amazonaws.vpce.'));
/** Whether an endpoint is the EC2 API's (its service name is `com.amazonaws.<region>.ec2`). */
const isEc2 = (e: { props: any }) => /\.ec2$/.test(resolve(e.props.ServiceName));
/** A response URL as CloudFormation presigns it, for a resource of a stack in `account`. */
const responseUrl = (account: string, region = REGION) => `https://cloudformation-custom-resource-response-${region.replace(/-/g, '')}.s3.${region}.amazonaws.com/`
  + `${encodeURIComponent(`arn:aws:cloudformation:${region}:${account}:stack/ByocCustomerPlane/0f1e2d3c-0000-4000-8000-000000000001|PlaneDataPostgresAgentRoles907E5615|f0e0cab3-b258-4058-b56a-820c76ff30a5`)}`
  + '?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIA...&X-Amz-SignedHeaders=host&X-Amz-Signature=abc';
/** The S3 object a presigned URL writes: the bucket from the virtual host, the key from the path. */
const objectOf = (url: string) => {
  const u = new URL(url);
  return `arn:aws:s3:::${u.hostname.split('.s3.')[0]}/${decodeURIComponent(u.pathname.slice(1))}`;
};

describe('VPC endpoint policies admit what ECS on Fargate needs, and nothing of another account', () => {
  const AWS_OWNED = '999999999999'; // ECR's presigned layer URLs are signed by an AWS account, never the customer's
  const gateway = () => {
    const s3 = endpoints(plane).filter((e) => e.props.VpcEndpointType === 'Gateway');
    expect(s3).toHaveLength(1);
    return s3[0].props.PolicyDocument;
  };

  test('S3 gateway: ECR image layers (presigned by an AWS-owned principal) can be downloaded from the region\'s layer bucket', () => {
    expect(endpointAllows(gateway(), {
      principalAccount: AWS_OWNED, action: 's3:GetObject', resource: `arn:aws:s3:::prod-${REGION}-starport-layer-bucket/sha256:${'a'.repeat(64)}`,
    })).toBe(true);
  });

  test('S3 gateway: the layer-bucket exception is reads of that one bucket only', () => {
    const foreign = (action: string, resource: string) => endpointAllows(gateway(), { principalAccount: AWS_OWNED, action, resource });
    expect(foreign('s3:GetObject', 'arn:aws:s3:::attacker-exfil-bucket/x')).toBe(false);
    expect(foreign('s3:PutObject', `arn:aws:s3:::prod-${REGION}-starport-layer-bucket/x`)).toBe(false);
    expect(foreign('s3:ListBucket', `arn:aws:s3:::prod-${REGION}-starport-layer-bucket`)).toBe(false);
    expect(foreign('s3:GetObject', 'arn:aws:s3:::prod-us-east-1-starport-layer-bucket/x')).toBe(false);
  });

  test('S3 gateway: the account-only statement stays, for everything the account itself does', () => {
    expect(endpointAllows(gateway(), { principalAccount: ACCOUNT, action: 's3:PutObject', resource: 'arn:aws:s3:::any-bucket/x' })).toBe(true);
    expect(gateway().Statement.map((st: any) => st.Sid)).toEqual([undefined, 'EcrImageLayers', 'CloudFormationResponses']);
  });

  test('S3 gateway: the deploy-time function\'s responses (presigned by CloudFormation) reach the region\'s response bucket', () => {
    const object = objectOf(responseUrl(ACCOUNT));
    expect(object).toMatch(/^arn:aws:s3:::cloudformation-custom-resource-response-euwest1\/arn:aws:cloudformation:eu-west-1:123456789012:stack\//);
    expect(endpointAllows(gateway(), { principalAccount: AWS_OWNED, action: 's3:PutObject', resource: object })).toBe(true);
  });

  test('S3 gateway: the response exception is writes of this account\'s stacks\' responses only', () => {
    const foreign = (action: string, resource: string) => endpointAllows(gateway(), { principalAccount: AWS_OWNED, action, resource });
    // A URL CloudFormation presigned for another account's stack cannot carry data out through the plane's endpoint.
    expect(foreign('s3:PutObject', objectOf(responseUrl('444455556666')))).toBe(false);
    expect(foreign('s3:PutObject', objectOf(responseUrl(ACCOUNT, 'us-east-1')))).toBe(false);
    expect(foreign('s3:GetObject', objectOf(responseUrl(ACCOUNT)))).toBe(false);
    expect(foreign('s3:PutObject', 'arn:aws:s3:::cloudformation-custom-resource-response-eu-west-1/x')).toBe(false);
    expect(foreign('s3:PutObject', 'arn:aws:s3:::cloudformation-waitcondition-eu-west-1/x')).toBe(false);
  });

  test('interface endpoints: exactly the account-only statement; the execution role\'s calls pass, another account\'s do not', () => {
    const interfaces = endpoints(plane).filter((e) => e.props.VpcEndpointType === 'Interface' && !isEc2(e));
    expect(interfaces).toHaveLength(7);
    for (const e of interfaces) {
      expect(e.props.PolicyDocument.Statement).toEqual([{
        Action: '*', Effect: 'Allow', Principal: { AWS: '*' }, Resource: '*',
        Condition: { StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } },
      }]);
    }
    const policy = interfaces[0].props.PolicyDocument;
    for (const action of ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'logs:PutLogEvents', 'secretsmanager:GetSecretValue', 'kms:Decrypt']) {
      expect(endpointAllows(policy, { principalAccount: ACCOUNT, action, resource: 'arn:aws:ecr:eu-west-1:111122223333:repository/byoc/agent-runtime' })).toBe(true);
      expect(endpointAllows(policy, { principalAccount: '444455556666', action, resource: '*' })).toBe(false);
    }
  });
});

/** Egress rules of a security group: inline ones and separate AWS::EC2::SecurityGroupEgress resources. */
function egressOf(p: SynthesizedPlane, logicalId: string): any[] {
  const resources = allResources(p.templates);
  const sg = resources.find((r) => r.id === logicalId && r.type === 'AWS::EC2::SecurityGroup');
  expect(sg).toBeDefined();
  return [
    ...(sg!.props.SecurityGroupEgress ?? []),
    ...resources.filter((r) => r.type === 'AWS::EC2::SecurityGroupEgress' && JSON.stringify(r.props.GroupId) === JSON.stringify({ 'Fn::GetAtt': [logicalId, 'GroupId'] })).map((r) => r.props),
  ];
}
const allEgress = (p: SynthesizedPlane) => allResources(p.templates).flatMap((r) => [
  ...(r.type === 'AWS::EC2::SecurityGroup' ? r.props.SecurityGroupEgress ?? [] : []),
  ...(r.type === 'AWS::EC2::SecurityGroupEgress' ? [r.props] : []),
]);
const logicalIdOf = (p: SynthesizedPlane, sg: ec2.ISecurityGroup) => (p.stack.resolve(sg.securityGroupId) as any)['Fn::GetAtt'][0] as string;

/** The four workload security groups the plane's factory makes: agents, collector, NATS leaf, boundary gateway. */
function workloadGroups(p: SynthesizedPlane): Record<string, string> {
  const planeConstruct: CustomerPlane = p.stack.plane;
  const groups = planeConstruct.node.children.filter((c): c is ec2.SecurityGroup => c instanceof ec2.SecurityGroup);
  expect(groups.map((g) => g.node.id).sort()).toEqual(['AgentSecurityGroup', 'CollectorSecurityGroup', 'GatewaySecurityGroup', 'NatsLeafSecurityGroup']);
  return Object.fromEntries(groups.map((g) => [g.node.id, logicalIdOf(p, g)]));
}

const modes: [string, Partial<CustomerPlaneStackProps>, 'lookup' | string][] = [
  ['default (no egress, S3 prefix list looked up at deploy time)', {}, 'lookup'],
  ['egress: nat', { egress: EgressMode.NAT }, 'lookup'],
  ['existing VPC without s3PrefixListId', { existingVpc }, 'lookup'],
  ['existing VPC with s3PrefixListId', { existingVpc, s3PrefixListId: 'pl-6da54004' }, 'pl-6da54004'],
];

describe.each(modes)('security groups (%s): HTTPS only to the endpoints and S3, never to 0.0.0.0/0', (_name, overrides, prefixList) => {
  let p: SynthesizedPlane;
  let s3: unknown;
  beforeAll(() => {
    p = Object.keys(overrides).length === 0 ? plane : synthCustomerPlane(exampleProps(overrides));
    const lookups = allResources(p.templates).filter((r) => r.type === 'Custom::S3PrefixList');
    if (prefixList === 'lookup') {
      expect(lookups).toHaveLength(1);
      s3 = { 'Fn::GetAtt': [lookups[0].id, 'PrefixListId'] };
    } else {
      expect(lookups).toEqual([]);
      s3 = prefixList;
    }
  });

  test('no egress rule anywhere reaches 0.0.0.0/0 or ::/0', () => {
    const rules = allEgress(p);
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(rule.CidrIp).not.toBe('0.0.0.0/0');
      expect(rule.CidrIpv6).toBeUndefined();
    }
  });

  test('agents, collector, leaf and gateway each get HTTPS to the endpoint security group and to the S3 prefix list', () => {
    const endpointSg = logicalIdOf(p, p.stack.plane.network.endpointSecurityGroup);
    for (const [name, id] of Object.entries(workloadGroups(p))) {
      const rules = egressOf(p, id);
      const https = { IpProtocol: 'tcp', FromPort: 443, ToPort: 443 };
      expect({ name, rules }).toEqual({ name, rules: expect.arrayContaining([
        expect.objectContaining({ ...https, DestinationSecurityGroupId: { 'Fn::GetAtt': [endpointSg, 'GroupId'] } }),
        expect.objectContaining({ ...https, DestinationPrefixListId: s3 }),
      ]) });
      // Outside the VPC: the S3 prefix list and nothing else (CDK's placeholder matches no traffic).
      for (const r of rules) {
        if (r.DestinationPrefixListId !== undefined) expect({ name, r }).toEqual({ name, r: expect.objectContaining({ ...https, DestinationPrefixListId: s3 }) });
        if (r.CidrIp !== undefined) expect({ name, cidr: r.CidrIp }).toEqual({ name, cidr: '255.255.255.255/32' });
      }
    }
  });

  test('agents and the collector reach nothing but security groups of the plane and the S3 prefix list', () => {
    const groups = workloadGroups(p);
    for (const name of ['AgentSecurityGroup', 'CollectorSecurityGroup']) {
      for (const r of egressOf(p, groups[name])) {
        expect({ name, r }).toEqual({ name, r: expect.objectContaining(r.DestinationSecurityGroupId ? { DestinationSecurityGroupId: expect.anything() } : { DestinationPrefixListId: s3 }) });
      }
    }
  });
});


/** The plane's one Lambda function (the deploy-time function), its role's statements and its security groups. */
function deployTime(p: SynthesizedPlane) {
  const resources = allResources(p.templates);
  const functions = resources.filter((r) => r.type === 'AWS::Lambda::Function');
  expect(functions).toHaveLength(1);
  const fn = functions[0];
  const roleId = fn.props.Role['Fn::GetAtt'][0];
  const policies = resources.filter((r) => r.type === 'AWS::IAM::ManagedPolicy' && JSON.stringify(r.props.Roles) === JSON.stringify([{ Ref: roleId }]));
  expect(policies).toHaveLength(1);
  const statements = policies[0].props.PolicyDocument.Statement.map((st: any) => ({ ...st, Action: [st.Action].flat(), Resource: [st.Resource].flat() }));
  const groups = fn.props.VpcConfig.SecurityGroupIds.map((g: any) => g['Fn::GetAtt'][0] as string);
  return { fn, roleId, role: resources.find((r) => r.id === roleId)!, policy: policies[0], statements, groups, resources };
}
/** `arn:<partition>:ec2:<region>:<account>:<resource>` as the templates join it. */
const ec2Arn = (resource: string, ...rest: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:${resource}`, ...rest]] });
const groupArn = (id: string) => ec2Arn('security-group/', { 'Fn::GetAtt': [id, 'GroupId'] });
const customResources = (p: SynthesizedPlane, type: string) => allResources(p.templates).filter((r) => r.type === type);

describe('the deploy-time function: in the plane\'s VPC, serving CloudFormation directly, least privilege', () => {
  test('it runs in the plane\'s private subnets with its own security groups, and serves every custom resource directly', () => {
    const { fn, groups } = deployTime(plane);
    expect(fn.props).toEqual(expect.objectContaining({ Runtime: 'nodejs24.x', Handler: 'index.handler', Architectures: ['arm64'], Timeout: 120 }));
    expect(fn.props.VpcConfig.SubnetIds).toEqual(plane.stack.resolve(plane.stack.plane.network.vpc.isolatedSubnets.map((s) => s.subnetId)));
    expect(groups).toEqual([expect.stringMatching(/^PlaneNetworkDeployTimeSecurityGroup/), expect.stringMatching(/^PlaneNetworkDeployTimeResponseSecurityGroup/)]);
    const custom = allResources(plane.templates).filter((r) => r.type.startsWith('Custom::') || r.type === 'AWS::CloudFormation::CustomResource');
    expect(custom.map((r) => r.type).sort()).toEqual(['Custom::DatabaseRoles', 'Custom::RestrictDefaultSecurityGroup', 'Custom::S3PrefixList']);
    for (const r of custom) {
      expect({ id: r.id, token: r.props.ServiceToken, timeout: r.props.ServiceTimeout }).toEqual({ id: r.id, token: { 'Fn::GetAtt': [fn.id, 'Arn'] }, timeout: '600' });
    }
  });

  test('its role: exactly the network interfaces Lambda manages for it, its log group, and the calls of its custom resources', () => {
    const { fn, statements, role } = deployTime(plane);
    expect(role.props.ManagedPolicyArns).toBeUndefined();
    expect(role.props.Policies).toBeUndefined();
    expect(role.props.AssumeRolePolicyDocument.Statement).toEqual([expect.objectContaining({
      Principal: { Service: 'lambda.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    })]);
    const [fnGroup, responseGroup] = deployTime(plane).groups;
    const subnets = plane.stack.resolve(plane.stack.plane.network.vpc.isolatedSubnets.map((s) => s.subnetId)) as { Ref: string }[];
    const vpcId = (plane.stack.resolve(plane.stack.plane.network.vpc.vpcId) as { Ref: string }).Ref;
    const db = Object.keys(plane.root.findResources('AWS::RDS::DBInstance'))[0];
    const simplified = statements.map((st: any) => ({ Action: st.Action, Resource: st.Resource, ...(st.Condition ? { Condition: st.Condition } : {}) }));
    expect(simplified).toEqual([
      { Action: ['ec2:DescribeManagedPrefixLists', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSecurityGroups', 'ec2:DescribeSubnets'], Resource: ['*'] },
      { Action: ['ec2:CreateNetworkInterface'], Resource: expect.arrayContaining([ec2Arn('network-interface/*'), groupArn(fnGroup), groupArn(responseGroup), ...subnets.map((s) => ec2Arn('subnet/', s))]) },
      { Action: ['ec2:AssignPrivateIpAddresses', 'ec2:DeleteNetworkInterface', 'ec2:UnassignPrivateIpAddresses'], Resource: [ec2Arn('network-interface/*')] },
      { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [{ 'Fn::GetAtt': [fn.props.LoggingConfig.LogGroup.Ref, 'Arn'] }] },
      { Action: ['ec2:AuthorizeSecurityGroupEgress'], Resource: [groupArn(responseGroup)] },
      { Action: ['ec2:RevokeSecurityGroupEgress', 'ec2:RevokeSecurityGroupIngress'], Resource: [ec2Arn('security-group/', { 'Fn::GetAtt': [vpcId, 'DefaultSecurityGroup'] })] },
      { Action: ['secretsmanager:GetSecretValue'], Resource: [{ 'Fn::GetAtt': [db, 'MasterUserSecret.SecretArn'] }] },
      {
        Action: ['kms:Decrypt'], Resource: [{ 'Fn::GetAtt': ['PlaneKey20AD7535', 'Arn'] }],
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
      },
    ]);
    expect(statements.find((st: any) => st.Action.includes('ec2:CreateNetworkInterface')).Resource).toHaveLength(5);
    // Lambda checks these permissions when it creates the function.
    expect(fn.resource.DependsOn).toEqual(expect.arrayContaining([deployTime(plane).policy.id]));
  });

  test('with s3PrefixListId in the customer\'s VPC: no lookup, no default security group to close, so no EC2 call and no EC2 endpoint', () => {
    const p = synthCustomerPlane(exampleProps({ existingVpc, s3PrefixListId: 'pl-6da54004' }));
    const { statements, groups, fn } = deployTime(p);
    expect(groups).toHaveLength(1);
    expect(statements.flatMap((st: any) => st.Action).sort()).toEqual([
      'ec2:AssignPrivateIpAddresses', 'ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets',
      'ec2:UnassignPrivateIpAddresses', 'kms:Decrypt', 'logs:CreateLogStream', 'logs:PutLogEvents', 'secretsmanager:GetSecretValue',
    ]);
    expect(fn.props.VpcConfig.SubnetIds).toEqual(existingVpc.privateSubnetIds);
    expect(customResources(p, 'Custom::S3PrefixList')).toEqual([]);
    expect(customResources(p, 'Custom::RestrictDefaultSecurityGroup')).toEqual([]);
    expect(endpoints(p).filter(isEc2)).toEqual([]);
    // Its responses go to S3 by a rule in the template.
    expect(egressOf(p, groups[0])).toContainEqual(expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, DestinationPrefixListId: 'pl-6da54004' }));
  });

  test('its security group reaches the endpoints on 443 and the database on its port, nothing else; the response group nothing in the template', () => {
    const { groups } = deployTime(plane);
    const [fnGroup, responseGroup] = groups;
    const endpointSg = logicalIdOf(plane, plane.stack.plane.network.endpointSecurityGroup);
    const dbSg = (plane.stack.resolve(plane.stack.plane.stores.database.connections.securityGroups[0].securityGroupId) as any)['Fn::GetAtt'][0];
    const port = plane.stack.plane.stores.databasePort;
    const rules = egressOf(plane, fnGroup).map(({ Description, GroupId, ...r }: any) => r);
    expect(rules).toEqual(expect.arrayContaining([
      { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, DestinationSecurityGroupId: { 'Fn::GetAtt': [endpointSg, 'GroupId'] } },
      { IpProtocol: 'tcp', FromPort: port, ToPort: port, DestinationSecurityGroupId: { 'Fn::GetAtt': [dbSg, 'GroupId'] } },
    ]));
    // Besides those two, only CDK's placeholder that matches no traffic.
    expect(rules.filter((r: any) => r.CidrIp !== '255.255.255.255/32')).toHaveLength(2);
    expect(egressOf(plane, responseGroup).map((r: any) => r.CidrIp)).toEqual(['255.255.255.255/32']);
    const ingress = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroupIngress'
      && JSON.stringify(r.props.SourceSecurityGroupId) === JSON.stringify({ 'Fn::GetAtt': [fnGroup, 'GroupId'] })).map((r) => [r.props.GroupId['Fn::GetAtt'][0], r.props.FromPort]);
    expect(ingress.sort()).toEqual([[dbSg, port], [endpointSg, 443]].sort());
  });

  test('without the plane\'s endpoints (vpcEndpoints: false) it reaches the customer\'s own on 443 inside the VPC\'s CIDR', () => {
    const p = synthCustomerPlane(exampleProps({ existingVpc, vpcEndpoints: false }));
    const { groups } = deployTime(p);
    expect(egressOf(p, groups[0])).toContainEqual(expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: existingVpc.vpcCidrBlock }));
    expect(endpoints(p)).toEqual([]);
  });
});

describe('the EC2 endpoint: only the deploy-time function\'s calls', () => {
  test('in the plane\'s VPC it admits the function\'s role only, for exactly the calls its role holds', () => {
    const { roleId, statements } = deployTime(plane);
    const ec2Endpoints = endpoints(plane).filter(isEc2);
    expect(ec2Endpoints).toHaveLength(1);
    expect(ec2Endpoints[0].props).toEqual(expect.objectContaining({ VpcEndpointType: 'Interface', PrivateDnsEnabled: true }));
    const policy = ec2Endpoints[0].props.PolicyDocument.Statement;
    for (const st of policy) expect(st).toEqual(expect.objectContaining({ Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [roleId, 'Arn'] } } }));
    const endpointCalls = policy.map((st: any) => ({ Action: [st.Action].flat(), Resource: [st.Resource].flat() }));
    const roleEc2Calls = ['ec2:DescribeManagedPrefixLists', 'ec2:DescribeSecurityGroups', 'ec2:AuthorizeSecurityGroupEgress', 'ec2:RevokeSecurityGroupEgress', 'ec2:RevokeSecurityGroupIngress'];
    expect(endpointCalls.flatMap((c: any) => c.Action).sort()).toEqual([...roleEc2Calls].sort());
    for (const call of endpointCalls) {
      const granted = statements.filter((st: any) => call.Action.every((a: string) => st.Action.includes(a)));
      expect({ call, granted: granted.map((g: any) => g.Resource) }).toEqual({ call, granted: expect.arrayContaining([expect.arrayContaining(call.Resource)]) });
    }
    // Only the Describe calls (no resource-level permissions) are on '*'; the changes name one group each.
    for (const call of endpointCalls) {
      if (call.Resource.includes('*')) expect(call.Action.every((a: string) => a.startsWith('ec2:Describe'))).toBe(true);
      else expect(call.Resource).toHaveLength(1);
    }
  });

  test('in the customer\'s VPC, whose other EC2 callers its private DNS name would capture, it admits the account as the others do', () => {
    const p = synthCustomerPlane(exampleProps({ existingVpc }));
    const [e] = endpoints(p).filter(isEc2);
    expect(e.props.PolicyDocument.Statement).toEqual([{
      Action: '*', Effect: 'Allow', Principal: { AWS: '*' }, Resource: '*',
      Condition: { StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } },
    }]);
  });
});

describe('S3 prefix list lookup: at deploy time, by the deploy-time function, no credentials at synth', () => {
  test('Custom::S3PrefixList asks for com.amazonaws.<region>.s3 and names the group the function answers through', () => {
    const [lookup] = customResources(plane, 'Custom::S3PrefixList');
    const { groups } = deployTime(plane);
    expect(resolve(lookup.props.PrefixListName)).toBe(`com.amazonaws.${REGION}.s3`);
    expect(lookup.props.ResponseSecurityGroupId).toEqual({ 'Fn::GetAtt': [groups[1], 'GroupId'] });
    expect(Object.keys(lookup.props).sort()).toEqual(['PrefixListName', 'ResponseSecurityGroupId', 'ServiceTimeout', 'ServiceToken']);
  });

  test('an explicit account and region synthesize with no context lookup', () => {
    const p = synthCustomerPlane(exampleProps({ env: { account: ACCOUNT, region: REGION }, availabilityZones: ['eu-west-1a', 'eu-west-1b'] }));
    const manifest = JSON.parse(fs.readFileSync(path.join(p.outdir, 'manifest.json'), 'utf8'));
    expect(manifest.missing).toBeUndefined();
    expect(customResources(p, 'Custom::S3PrefixList')).toHaveLength(1);
    // With the region known, the response bucket of the S3 endpoint's policy is a literal.
    const s3 = endpoints(p).find((e) => e.props.VpcEndpointType === 'Gateway')!.props.PolicyDocument;
    const responses = s3.Statement.find((x: any) => x.Sid === 'CloudFormationResponses');
    expect(JSON.stringify(responses.Resource)).toContain('cloudformation-custom-resource-response-euwest1/arn:');
  });
});

describe('the custom resources wait for what their requests and responses travel through', () => {
  test('each waits for the role\'s policy, the endpoints (EC2, Secrets Manager, S3) and the function\'s rules to them; the others for the lookup', () => {
    const { policy } = deployTime(plane);
    const ids = (type: string) => endpoints(plane).filter((e) => resolve(e.props.ServiceName).endsWith(type)).map((e) => e.id);
    const rules = allResources(plane.templates).filter((r) => /^PlaneNetworkDeployTimeSecurityGroupAwsApis(Egress|Ingress)/.test(r.id)).map((r) => r.id);
    expect(rules).toHaveLength(2);
    const [lookup] = customResources(plane, 'Custom::S3PrefixList');
    for (const type of ['Custom::S3PrefixList', 'Custom::RestrictDefaultSecurityGroup', 'Custom::DatabaseRoles']) {
      const [r] = customResources(plane, type);
      expect({ type, dependsOn: r.resource.DependsOn }).toEqual({ type, dependsOn: expect.arrayContaining([policy.id, ...ids('.ec2'), ...ids('.secretsmanager'), ...ids('.s3'), ...rules]) });
      if (r.id !== lookup.id) expect(r.resource.DependsOn).toContain(lookup.id);
    }
  });

  test('the default security group of the plane\'s VPC is closed by Custom::RestrictDefaultSecurityGroup, not by CDK\'s Lambda outside the VPC', () => {
    const [restrict] = customResources(plane, 'Custom::RestrictDefaultSecurityGroup');
    const vpcId = (plane.stack.resolve(plane.stack.plane.network.vpc.vpcId) as { Ref: string }).Ref;
    expect(restrict.props.SecurityGroupId).toEqual({ 'Fn::GetAtt': [vpcId, 'DefaultSecurityGroup'] });
    expect(customResources(plane, 'Custom::VpcRestrictDefaultSG')).toEqual([]);
    for (const overrides of [{ egress: EgressMode.NAT }, {}]) {
      const p = Object.keys(overrides).length === 0 ? plane : synthCustomerPlane(exampleProps(overrides));
      expect(customResources(p, 'Custom::RestrictDefaultSecurityGroup')).toHaveLength(1);
    }
    // A customer's VPC is theirs: its default group is left as it is.
    expect(customResources(synthCustomerPlane(exampleProps({ existingVpc })), 'Custom::RestrictDefaultSecurityGroup')).toEqual([]);
  });
});

describe('Lambda functions log only to log groups the stack owns', () => {
  test('the deploy-time function (the plane\'s only one) logs to an encrypted, expiring, deleted-with-the-stack log group', () => {
    for (const [file, template] of Object.entries<any>(plane.templates)) {
      const resources = template.Resources ?? {};
      for (const [id, fn] of Object.entries<any>(resources)) {
        if (fn.Type !== 'AWS::Lambda::Function') continue;
        const ref = fn.Properties.LoggingConfig?.LogGroup?.Ref;
        expect({ file, id, ref }).toEqual({ file, id, ref: expect.any(String) });
        const group = resources[ref];
        expect(group.Type).toBe('AWS::Logs::LogGroup');
        expect(group.Properties.KmsKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^PlaneKey/), 'Arn'] });
        expect(group.Properties.RetentionInDays).toBe(365);
        expect(group.DeletionPolicy).toBe('Delete');
      }
    }
    const functions = allResources(plane.templates).filter((r) => r.type === 'AWS::Lambda::Function').map((f) => f.id);
    expect(functions).toEqual([expect.stringMatching(/^PlaneNetworkDeployTimeFunction/)]);
  });
});
