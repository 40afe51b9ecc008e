import { CfnDeletionPolicy, CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance } from 'cdk-nag';
import { DECLARATION, declarationOf } from './declarations';

/**
 * Byoc-NoUndeclaredRetain: a `Retain` (or `RetainExceptOnCreate`) deletion or update-replace policy only below a
 * scope that keeps its data by choice (`declareRetainedData`, made with `retainData`). Otherwise `cdk destroy`
 * would leave data behind that nobody chose to keep, and that the customer pays for and must find.
 */
export function NoUndeclaredRetain(node: CfnResource): NagRuleCompliance {
  const kept = (p: CfnDeletionPolicy | undefined) => p === CfnDeletionPolicy.RETAIN || p === CfnDeletionPolicy.RETAIN_EXCEPT_ON_CREATE;
  if (!kept(node.cfnOptions.deletionPolicy) && !kept(node.cfnOptions.updateReplacePolicy)) return NagRuleCompliance.NOT_APPLICABLE;
  return declarationOf(node, DECLARATION.retainedData) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
}
