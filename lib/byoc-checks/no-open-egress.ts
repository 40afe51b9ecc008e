import { CfnResource, Stack } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleFindings } from 'cdk-nag';
import { DECLARATION, declarationOf } from './declarations';
import { referencedLogicalId, rendered, resourcesOfTemplate } from './template';

const ANYWHERE = (rule: any) => rule?.CidrIp === '0.0.0.0/0' || rule?.CidrIpv6 === '::/0';

/**
 * Byoc-NoOpenEgress: a workload declared never to reach the internet (`declareNoInternetEgress`: the customer
 * plane's NATS leaf, boundary gateway and collector) has no security group that allows egress to `0.0.0.0/0` or
 * `::/0`, in the group's own rules or in a separate `AWS::EC2::SecurityGroupEgress`. Checked on its ECS service,
 * over every group the service runs with, whatever the VPC's egress mode: a NAT gateway is a route, the
 * security groups are the permission. One finding per open group, `[<group's logical ID>]`. A group not defined
 * in the service's template (imported by ID, or passed in as a parameter) cannot be read, and fails the rule.
 */
export function NoOpenEgress(node: CfnResource): NagRuleCompliance | NagRuleFindings {
  if (node.cfnResourceType !== 'AWS::ECS::Service' || !declarationOf(node, DECLARATION.noInternetEgress)) return NagRuleCompliance.NOT_APPLICABLE;
  const groups: unknown[] = rendered(node).Properties.NetworkConfiguration?.AwsvpcConfiguration?.SecurityGroups ?? [];
  const resources = resourcesOfTemplate(node);
  const logicalIdOf = (r: CfnResource) => Stack.of(r).resolve(r.logicalId) as string;
  const findings: string[] = [];
  for (const group of groups) {
    const id = referencedLogicalId(group);
    const sg = id === undefined ? undefined : resources.find((r) => r.cfnResourceType === 'AWS::EC2::SecurityGroup' && logicalIdOf(r) === id);
    if (!sg) throw new Error(`security group ${JSON.stringify(group)} of ${node.node.path} is not defined in its template; its egress cannot be checked`);
    const inline: any[] = rendered(sg).Properties.SecurityGroupEgress ?? [];
    const separate = resources.filter((r) => r.cfnResourceType === 'AWS::EC2::SecurityGroupEgress')
      .map((r) => rendered(r).Properties).filter((p) => referencedLogicalId(p.GroupId) === id);
    if ([...inline, ...separate].some(ANYWHERE)) findings.push(id!);
  }
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
