import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { declareEgress } from '../../../lib/byoc-checks';
import { byocFindings } from './fixture';

const RULE = 'NoInternetGateway';

test('compliant: an isolated VPC has no internet or NAT gateway; a VPC whose egress was declared may have them', () => {
  expect(byocFindings((s) => new ec2.Vpc(s, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }), RULE)).toEqual([]);
  expect(byocFindings((s) => {
    const vpc = new ec2.Vpc(s, 'Vpc', { maxAzs: 2, natGateways: 1 });
    declareEgress(vpc, 'Outbound internet was opted into with egress: nat for this fixture VPC.');
  }, RULE)).toEqual([]);
});

test('non-compliant: a default VPC (internet gateway, NAT gateway) and an egress-only gateway without a declaration', () => {
  expect(byocFindings((s) => {
    new ec2.Vpc(s, 'Vpc', { maxAzs: 2, natGateways: 1 });
    new ec2.CfnEgressOnlyInternetGateway(s, 'EgressOnly', { vpcId: 'vpc-12345678' });
  }, RULE)).toEqual([
    'Byoc-NoInternetGateway @ Fixture/EgressOnly',
    'Byoc-NoInternetGateway @ Fixture/Vpc/IGW',
    'Byoc-NoInternetGateway @ Fixture/Vpc/PublicSubnet1/NATGateway',
  ]);
});

test('a declaration covers its scope only, and needs a reason', () => {
  expect(byocFindings((s) => {
    const chosen = new ec2.Vpc(s, 'Chosen', { maxAzs: 2, natGateways: 1 });
    declareEgress(chosen, 'Outbound internet was opted into with egress: nat for this fixture VPC.');
    new ec2.Vpc(s, 'Other', { maxAzs: 2, natGateways: 1 });
  }, RULE)).toEqual(['Byoc-NoInternetGateway @ Fixture/Other/IGW', 'Byoc-NoInternetGateway @ Fixture/Other/PublicSubnet1/NATGateway']);
  expect(() => byocFindings((s) => declareEgress(new ec2.Vpc(s, 'Vpc'), 'egress'))).toThrow(/declareEgress on Fixture\/Vpc: the reason must say/);
});
