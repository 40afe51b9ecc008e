import { CfnResource, Stack } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { NagRuleCompliance, NagRuleFindings } from 'cdk-nag';

/**
 * Byoc-LogGroupRetentionAndKey: every log group has a retention (logs are not kept forever by default) and a
 * customer-managed KMS key (`KmsKeyId`; without one CloudWatch uses a key the customer does not control).
 * Findings: `[NoRetention]`, `[NoKmsKey]`.
 */
export function LogGroupRetentionAndKey(node: CfnResource): NagRuleCompliance | NagRuleFindings {
  if (!(node instanceof logs.CfnLogGroup)) return NagRuleCompliance.NOT_APPLICABLE;
  const findings: string[] = [];
  if (Stack.of(node).resolve(node.retentionInDays) === undefined) findings.push('NoRetention');
  if (Stack.of(node).resolve(node.kmsKeyId) === undefined) findings.push('NoKmsKey');
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
