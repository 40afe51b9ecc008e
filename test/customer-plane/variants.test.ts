import { Match } from 'aws-cdk-lib/assertions';
import { EgressMode } from '../../customer-plane/props';
import { allResources, exampleProps, synthCustomerPlane } from '../synth';

const existingVpc = {
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidrBlock: '10.20.0.0/16',
  availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
  privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2', 'subnet-0aaaaaaaaaaaaaaa3'],
  privateSubnetRouteTableIds: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0aaaaaaaaaaaaaaa2', 'rtb-0aaaaaaaaaaaaaaa3'],
};

describe('bring-your-own-VPC', () => {
  test('deploys into the given private subnets: no VPC or subnet is created, flow logs and endpoints still are', () => {
    const plane = synthCustomerPlane(exampleProps({ existingVpc, s3PrefixListId: 'pl-6da54004' }));
    const types = allResources(plane.templates).map((r) => r.type);
    expect(types).not.toContain('AWS::EC2::VPC');
    expect(types).not.toContain('AWS::EC2::Subnet');
    plane.root.hasResourceProperties('AWS::EC2::FlowLog', { ResourceId: existingVpc.vpcId });
    plane.root.resourceCountIs('AWS::EC2::VPCEndpoint', 9); // 7 interface, the S3 gateway, the vendor hub's
    plane.root.hasResourceProperties('AWS::RDS::DBSubnetGroup', { SubnetIds: existingVpc.privateSubnetIds });
    plane.root.hasResourceProperties('AWS::EC2::SecurityGroupEgress', { DestinationPrefixListId: 'pl-6da54004', FromPort: 443, ToPort: 443 });
    const anywhere = allResources(plane.templates).flatMap((r) => r.type === 'AWS::EC2::SecurityGroup' ? r.props.SecurityGroupEgress ?? [] : [])
      .filter((e: any) => e.CidrIp === '0.0.0.0/0');
    expect(anywhere).toEqual([]);
  });

  test('with its own endpoints (vpcEndpoints: false), tasks send HTTPS to the VPC\'s CIDR and the S3 prefix list, nowhere else outside', () => {
    const plane = synthCustomerPlane(exampleProps({ existingVpc, vpcEndpoints: false }));
    plane.root.resourceCountIs('AWS::EC2::VPCEndpoint', 1); // the vendor hub's only
    const egress = allResources(plane.templates).flatMap((r) => [
      ...(r.type === 'AWS::EC2::SecurityGroup' ? r.props.SecurityGroupEgress ?? [] : []),
      ...(r.type === 'AWS::EC2::SecurityGroupEgress' ? [r.props] : []),
    ]);
    const cidrs = [...new Set(egress.filter((e) => e.CidrIp && e.CidrIp !== '255.255.255.255/32').map((e) => `${e.CidrIp}:${e.FromPort}-${e.ToPort}`))];
    expect(cidrs).toEqual([`${existingVpc.vpcCidrBlock}:443-443`]);
    expect(egress.filter((e) => e.DestinationPrefixListId).every((e) => e.FromPort === 443 && JSON.stringify(e.DestinationPrefixListId).includes('"PrefixListId"]'))).toBe(true);
  });
});

describe('egress: nat (opt-in)', () => {
  test('adds public subnets with NAT gateways only; workloads stay in private subnets', () => {
    const plane = synthCustomerPlane(exampleProps({ egress: EgressMode.NAT }));
    plane.root.resourceCountIs('AWS::EC2::InternetGateway', 1);
    plane.root.resourceCountIs('AWS::EC2::NatGateway', 2);
    const publicSubnets = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::Subnet' && r.props.MapPublicIpOnLaunch !== false);
    expect(publicSubnets).toEqual([]);
    for (const s of allResources(plane.templates).filter((r) => r.type === 'AWS::ECS::Service')) {
      expect(JSON.stringify(s.props.NetworkConfiguration.AwsvpcConfiguration.Subnets)).toContain('PrivateSubnet');
    }
  });

  test('the NAT gateways give a route, not permission: no security group egress reaches 0.0.0.0/0', () => {
    const plane = synthCustomerPlane(exampleProps({ egress: EgressMode.NAT }));
    plane.root.resourceCountIs('AWS::EC2::NatGateway', 2);
    const egress = allResources(plane.templates).flatMap((r) => [
      ...(r.type === 'AWS::EC2::SecurityGroup' ? r.props.SecurityGroupEgress ?? [] : []),
      ...(r.type === 'AWS::EC2::SecurityGroupEgress' ? [r.props] : []),
    ]);
    expect(egress.filter((e) => e.CidrIp === '0.0.0.0/0' || e.CidrIpv6 === '::/0')).toEqual([]);
  });
});

describe('createRdsOsMetricsLogGroup: true', () => {
  test('the plane owns RDSOSMetrics: encrypted with its key, its retention, created before the database, deleted with the stack', () => {
    const plane = synthCustomerPlane(exampleProps({ createRdsOsMetricsLogGroup: true }));
    const groups = plane.root.findResources('AWS::Logs::LogGroup', { Properties: { LogGroupName: 'RDSOSMetrics' } });
    const [id] = Object.keys(groups);
    expect(groups[id]).toEqual(expect.objectContaining({
      DeletionPolicy: 'Delete',
      Properties: expect.objectContaining({ KmsKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^PlaneKey/), 'Arn'] }, RetentionInDays: 365 }),
    }));
    plane.root.hasResource('AWS::RDS::DBInstance', { DependsOn: Match.arrayWith([id]) });
  });
});

describe('retainData: true', () => {
  test('stateful resources are snapshotted or retained, deletion protection is on, and a backup plan covers RDS and EFS', () => {
    const plane = synthCustomerPlane(exampleProps({ retainData: true }));
    plane.root.hasResource('AWS::RDS::DBInstance', { DeletionPolicy: 'Snapshot', Properties: Match.objectLike({ DeletionProtection: true }) });
    plane.root.hasResource('AWS::ElastiCache::ReplicationGroup', { DeletionPolicy: 'Snapshot' });
    for (const type of ['AWS::EFS::FileSystem', 'AWS::KMS::Key', 'AWS::SecretsManager::Secret', 'AWS::Backup::BackupVault']) {
      plane.root.hasResource(type, { DeletionPolicy: 'Retain' });
    }
    const selections = Object.values<any>(plane.root.findResources('AWS::Backup::BackupSelection'));
    expect(selections).toHaveLength(1);
    const selected = JSON.stringify(selections[0].Properties.BackupSelection.Resources);
    expect(selected).toMatch(/PlaneDataPostgres/);
    expect(selected).toMatch(/PlaneDataWorkspaces/);
  });
});

test('security group egress leaves the VPC only on HTTPS, and only to the S3 prefix list', () => {
  const plane = synthCustomerPlane();
  const egress = allResources(plane.templates).flatMap((r) => [
    ...(r.type === 'AWS::EC2::SecurityGroup' ? r.props.SecurityGroupEgress ?? [] : []),
    ...(r.type === 'AWS::EC2::SecurityGroupEgress' ? [r.props] : []),
  ]);
  const outside = egress.filter((e) => e.DestinationPrefixListId);
  expect(outside.length).toBeGreaterThanOrEqual(4);
  for (const rule of outside) expect([rule.IpProtocol, rule.FromPort, rule.ToPort]).toEqual(['tcp', 443, 443]);
  // Security groups with no egress rule carry CDK's rule that matches nothing (ICMP 252-86 to 255.255.255.255/32).
  for (const rule of egress.filter((e) => e.CidrIp || e.CidrIpv6)) expect(rule.CidrIp).toBe('255.255.255.255/32');
});

test('three named AZs in an explicit environment synthesize without any AWS lookup (no credentials needed)', () => {
  const plane = synthCustomerPlane(exampleProps({
    env: { account: '123456789012', region: 'eu-west-1' },
    availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
  }));
  const manifest = JSON.parse(require('fs').readFileSync(require('path').join(plane.outdir, 'manifest.json'), 'utf8'));
  expect(manifest.missing).toBeUndefined();
  expect(allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::Subnet').map((r) => r.props.AvailabilityZone).sort())
    .toEqual(['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
});
