import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { declareNoInternetEgress } from '../../../lib/byoc-checks';
import { byocFindings, PINNED } from './fixture';

const RULE = 'NoOpenEgress';
const REASON = 'The fixture\'s leaf dials only the hub and serves clients inside the VPC.';

/** A Fargate service in an isolated VPC with the given security groups. */
function service(s: Stack, id: string, groups: (vpc: ec2.IVpc) => ec2.ISecurityGroup[]): ecs.FargateService {
  const vpc = (s.node.tryFindChild('Vpc') as ec2.Vpc | undefined)
    ?? new ec2.Vpc(s, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  const cluster = (s.node.tryFindChild('Cluster') as ecs.Cluster | undefined) ?? new ecs.Cluster(s, 'Cluster', { vpc });
  const task = new ecs.FargateTaskDefinition(s, `${id}Task`);
  task.addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED) });
  return new ecs.FargateService(s, id, { cluster, taskDefinition: task, securityGroups: groups(vpc), vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } });
}

test('compliant: a declared workload whose groups reach named peers only; an undeclared one may reach anywhere', () => {
  expect(byocFindings((s) => {
    const leaf = service(s, 'Leaf', (vpc) => {
      const own = new ec2.SecurityGroup(s, 'LeafGroup', { vpc, allowAllOutbound: false });
      own.addEgressRule(ec2.Peer.ipv4('198.51.100.7/32'), ec2.Port.tcp(7422), 'the hub');
      const clients = new ec2.SecurityGroup(s, 'FileSystemClients', { vpc, allowAllOutbound: false });
      clients.addEgressRule(ec2.Peer.ipv4(vpc.vpcCidrBlock), ec2.Port.tcp(2049), 'EFS');
      return [own, clients];
    });
    declareNoInternetEgress(leaf, REASON);
    service(s, 'Other', (vpc) => [new ec2.SecurityGroup(s, 'OtherGroup', { vpc, allowAllOutbound: true })]);
  }, RULE)).toEqual([]);
});

test('non-compliant: any group of a declared workload open to 0.0.0.0/0 or ::/0, inline or in a separate egress rule', () => {
  expect(byocFindings((s) => {
    const leaf = service(s, 'Leaf', (vpc) => {
      const closed = new ec2.SecurityGroup(s, 'Closed', { vpc, allowAllOutbound: false });
      const allOut = new ec2.SecurityGroup(s, 'AllOut', { vpc, allowAllOutbound: true });
      const https = new ec2.SecurityGroup(s, 'Https', { vpc, allowAllOutbound: false });
      https.addEgressRule(ec2.Peer.anyIpv6(), ec2.Port.tcp(443), 'anywhere on IPv6');
      const separate = new ec2.SecurityGroup(s, 'Separate', { vpc, allowAllOutbound: false });
      new ec2.CfnSecurityGroupEgress(s, 'SeparateOut', { groupId: separate.securityGroupId, ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIp: '0.0.0.0/0' });
      return [closed, allOut, https, separate];
    });
    declareNoInternetEgress(leaf, REASON);
  }, RULE).map((f) => f.replace(/[0-9A-F]{8}\]/, ']'))).toEqual([
    'Byoc-NoOpenEgress[AllOut] @ Fixture/Leaf/Service',
    'Byoc-NoOpenEgress[Https] @ Fixture/Leaf/Service',
    'Byoc-NoOpenEgress[Separate] @ Fixture/Leaf/Service',
  ]);
});

test('non-compliant: a group the rule cannot read (imported by ID) fails closed', () => {
  expect(byocFindings((s) => {
    const leaf = service(s, 'Leaf', () => [ec2.SecurityGroup.fromSecurityGroupId(s, 'Imported', 'sg-0123456789abcdef0')]);
    declareNoInternetEgress(leaf, REASON);
  }, RULE)).toEqual(['Byoc-NoOpenEgress @ Fixture/Leaf/Service']);
});
