import { CfnResource, Stack } from 'aws-cdk-lib';
import { NagRuleCompliance } from 'cdk-nag';
import { rendered, resourcesOfTemplate } from './template';

/**
 * Byoc-TaskRoleSingleUse: every ECS task definition's task role is used by no other task definition, so each
 * workload (each agent) holds exactly its own permissions and a reviewer can read one role per agent. Task
 * definitions are compared within their template, by the role reference as rendered (a `Fn::GetAtt` of the role,
 * or the parameter a nested stack receives it by, or a literal ARN); a role shared across nested stacks reaches
 * each by a different parameter and is not seen. A task definition without a task role passes.
 */
export function TaskRoleSingleUse(node: CfnResource): NagRuleCompliance {
  if (node.cfnResourceType !== 'AWS::ECS::TaskDefinition') return NagRuleCompliance.NOT_APPLICABLE;
  const role = rendered(node).Properties.TaskRoleArn;
  if (role === undefined) return NagRuleCompliance.COMPLIANT;
  const key = JSON.stringify(Stack.of(node).resolve(role));
  const sharing = resourcesOfTemplate(node).filter((r) => r !== node && r.cfnResourceType === 'AWS::ECS::TaskDefinition'
    && JSON.stringify(rendered(r).Properties.TaskRoleArn) === key);
  return sharing.length > 0 ? NagRuleCompliance.NON_COMPLIANT : NagRuleCompliance.COMPLIANT;
}
