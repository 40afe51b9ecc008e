import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance } from 'cdk-nag';
import { DECLARATION, declarationOf } from './declarations';

/** The resources that give a VPC a path to or from the internet. */
export const INTERNET_PATH_TYPES = [
  'AWS::EC2::InternetGateway',
  'AWS::EC2::EgressOnlyInternetGateway',
  'AWS::EC2::NatGateway',
];

/**
 * Byoc-NoInternetGateway: no internet gateway, egress-only internet gateway or NAT gateway unless egress was
 * chosen for its scope (`declareEgress`, which the customer plane makes only with `egress: nat`).
 */
export function NoInternetGateway(node: CfnResource): NagRuleCompliance {
  if (!INTERNET_PATH_TYPES.includes(node.cfnResourceType)) return NagRuleCompliance.NOT_APPLICABLE;
  return declarationOf(node, DECLARATION.egress) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
}
