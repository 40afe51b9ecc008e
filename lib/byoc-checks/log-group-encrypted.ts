import { CfnResource, Stack } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleFindings } from 'cdk-nag';
import { dataKeyOf } from './declarations';
import { rendered } from './template';

/**
 * Byoc-LogGroupRetentionAndKey: every log group has a retention (logs are not kept forever by default) and a
 * customer-managed KMS key (`KmsKeyId`; without one CloudWatch uses a key the customer does not control).
 * Below a `declareDataKey` scope (the customer plane), the key must be the declared one: `[OtherKey]` otherwise.
 * Findings: `[NoRetention]`, `[NoKmsKey]`, `[OtherKey]`. Read from the rendered template: in a nested stack the
 * key arrives as the parameter CDK made for it, which is what the declared key resolves to there.
 */
export function LogGroupRetentionAndKey(node: CfnResource): NagRuleCompliance | NagRuleFindings {
  if (node.cfnResourceType !== 'AWS::Logs::LogGroup') return NagRuleCompliance.NOT_APPLICABLE;
  const findings: string[] = [];
  const { RetentionInDays: retention, KmsKeyId: keyId } = rendered(node).Properties;
  if (retention === undefined) findings.push('NoRetention');
  const declared = dataKeyOf(node);
  if (keyId === undefined) findings.push('NoKmsKey');
  else if (declared && JSON.stringify(keyId) !== JSON.stringify(Stack.of(node).resolve(declared.keyArn))) findings.push('OtherKey');
  return findings.length > 0 ? findings : NagRuleCompliance.COMPLIANT;
}
