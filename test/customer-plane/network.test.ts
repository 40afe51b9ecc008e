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
  if (value?.['Fn::Join']) return value['Fn::Join'][1].map(resolve).join(value['Fn::Join'][0]);
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
    expect(gateway().Statement).toHaveLength(2);
  });

  test('interface endpoints: exactly the account-only statement; the execution role\'s calls pass, another account\'s do not', () => {
    const interfaces = endpoints(plane).filter((e) => e.props.VpcEndpointType === 'Interface' && !String(e.props.ServiceName).startsWith('com.amazonaws.vpce.'));
    expect(interfaces.length).toBeGreaterThanOrEqual(6);
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
      s3 = { 'Fn::GetAtt': [lookups[0].id, 'PrefixLists.0.PrefixListId'] };
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

describe('S3 prefix list lookup: deploy time, no credentials at synth, least privilege', () => {
  test('a custom resource asks EC2 for com.amazonaws.<region>.s3 by name, with the latest SDK not downloaded', () => {
    const [lookup] = allResources(plane.templates).filter((r) => r.type === 'Custom::S3PrefixList');
    expect(lookup.props.InstallLatestAwsSdk).toBe(false);
    const call = JSON.parse(resolve(lookup.props.Create));
    expect(call).toEqual({
      service: 'EC2',
      action: 'DescribeManagedPrefixLists',
      parameters: { Filters: [{ Name: 'prefix-list-name', Values: [`com.amazonaws.${REGION}.s3`] }] },
      physicalResourceId: { responsePath: 'PrefixLists.0.PrefixListId' },
      outputPaths: ['PrefixLists.0.PrefixListId'],
    });
  });

  test('its Lambda\'s role may call ec2:DescribeManagedPrefixLists and write its own log group, nothing else', () => {
    const resources = allResources(plane.templates);
    const [lookup] = resources.filter((r) => r.type === 'Custom::S3PrefixList');
    const fn = resources.find((r) => r.id === lookup.props.ServiceToken['Fn::GetAtt'][0])!;
    const roleId = fn.props.Role['Fn::GetAtt'][0];
    const role = resources.find((r) => r.id === roleId)!;
    expect(role.props.ManagedPolicyArns).toBeUndefined();
    expect(role.props.Policies).toBeUndefined();
    expect(role.props.AssumeRolePolicyDocument.Statement).toEqual([expect.objectContaining({
      Principal: { Service: 'lambda.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    })]);
    const policies = resources.filter((r) => r.type === 'AWS::IAM::ManagedPolicy' && JSON.stringify(r.props.Roles).includes(roleId));
    expect(policies).toHaveLength(1);
    const logGroup = fn.props.LoggingConfig.LogGroup.Ref;
    const statements = policies[0].props.PolicyDocument.Statement.map((s: any) => ({ Action: s.Action, Resource: s.Resource }));
    expect(statements).toEqual([
      { Action: 'ec2:DescribeManagedPrefixLists', Resource: '*' },
      { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logGroup, 'Arn'] } },
    ]);
    expect(lookup.resource.DependsOn).toEqual(expect.arrayContaining([policies[0].id]));
  });

  test('an explicit account and region synthesize with no context lookup', () => {
    const p = synthCustomerPlane(exampleProps({ env: { account: ACCOUNT, region: REGION }, availabilityZones: ['eu-west-1a', 'eu-west-1b'] }));
    const manifest = JSON.parse(fs.readFileSync(path.join(p.outdir, 'manifest.json'), 'utf8'));
    expect(manifest.missing).toBeUndefined();
    expect(allResources(p.templates).filter((r) => r.type === 'Custom::S3PrefixList')).toHaveLength(1);
  });
});

describe('Lambda functions log only to log groups the stack owns', () => {
  test('every function (CDK\'s default-SG restriction, the prefix-list lookup) logs to an encrypted, expiring, deleted-with-the-stack log group', () => {
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
    expect(functions).toEqual(expect.arrayContaining([expect.stringMatching(/^CustomVpcRestrictDefaultSG/), expect.stringMatching(/^AWS679f53fac002430cb0da5b7982bd2287/)]));
  });
});
