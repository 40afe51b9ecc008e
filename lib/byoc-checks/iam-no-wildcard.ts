import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleFindings } from 'cdk-nag';
import { rendered } from './template';

/**
 * The actions that may be allowed on `Resource: "*"`, each because the service offers no resource-level
 * permission for it (the Service Authorization Reference lists no resource type), so `*` is the only resource
 * IAM accepts. Keep this list short: an action is added with its reason, never for convenience.
 */
export const RESOURCE_STAR_ACTIONS: Readonly<Record<string, string>> = {
  'ecr:GetAuthorizationToken': 'returns a registry login for the account; pulls are still limited per repository',
  'ec2:DescribeManagedPrefixLists': 'EC2 Describe calls support no resource-level permissions',
  'ec2:DescribeNetworkInterfaces': 'EC2 Describe calls support no resource-level permissions',
  'ec2:DescribeSecurityGroups': 'EC2 Describe calls support no resource-level permissions',
  'ec2:DescribeSubnets': 'EC2 Describe calls support no resource-level permissions',
  'secretsmanager:ListSecrets': 'lists names and ARNs only (never a value); it has no resource type',
  'cloudwatch:PutMetricData': 'has no resource type; limit it with the cloudwatch:namespace condition',
  'xray:PutTraceSegments': 'has no resource type',
  'xray:PutTelemetryRecords': 'has no resource type',
  'sts:GetCallerIdentity': 'has no resource type and needs no permission; listed so a role may state it',
};

const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The identity-policy documents of an IAM resource, as rendered. */
function documents(node: CfnResource): any[] {
  const p = rendered(node).Properties;
  switch (node.cfnResourceType) {
    case 'AWS::IAM::Policy':
    case 'AWS::IAM::ManagedPolicy':
      return [p.PolicyDocument];
    case 'AWS::IAM::Role':
    case 'AWS::IAM::User':
    case 'AWS::IAM::Group':
      return asList(p.Policies).map((x: any) => x.PolicyDocument);
    default:
      return [];
  }
}

/**
 * Byoc-IamNoWildcard: in every identity policy (IAM policies, managed policies, inline policies of roles, users
 * and groups), no `Allow` statement has a wildcard action (`[Action::s3:Get*]`) or a `NotAction`
 * (`[NotAction]`), and `Resource: "*"` (or `NotResource`) appears only with actions in `RESOURCE_STAR_ACTIONS`
 * (`[ResourceStar::<action>]` for each other action). Resource policies (key, bucket and endpoint policies) are
 * not identity policies: their `*` means the resource itself, and `Deny` statements only take away.
 */
export function IamNoWildcard(node: CfnResource): NagRuleCompliance | NagRuleFindings {
  const docs = documents(node);
  if (docs.length === 0) return NagRuleCompliance.NOT_APPLICABLE;
  const findings = new Set<string>();
  for (const doc of docs) {
    for (const s of asList(doc?.Statement) as any[]) {
      if (s.Effect !== 'Allow') continue;
      if (s.NotAction !== undefined) findings.add('NotAction');
      const actions = asList(s.Action).map(String);
      for (const a of actions) if (a.includes('*')) findings.add(`Action::${a}`);
      const everywhere = s.NotResource !== undefined || asList(s.Resource).includes('*');
      if (everywhere) for (const a of actions) if (!(a in RESOURCE_STAR_ACTIONS)) findings.add(`ResourceStar::${a}`);
    }
  }
  return findings.size > 0 ? [...findings] : NagRuleCompliance.COMPLIANT;
}
