import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleFindings } from 'cdk-nag';
import { rendered } from './template';

/** A user that is root: UID 0 or the name `root`, with or without a group. */
const ROOT_USER = /^(0|root)(:.*)?$/;

/**
 * Byoc-ContainerHardened: every container of every ECS task definition has a read-only root filesystem
 * (`[ReadonlyRoot]`), runs as a named non-root user (`[RootUser]`: `User` missing means the image's, often
 * root), adds no Linux capability (`[AddedCapabilities]`) and is not privileged (`[Privileged]`). Read from the
 * rendered template, so an override that relaxes one is caught.
 */
export function ContainerHardened(node: CfnResource): NagRuleCompliance | NagRuleFindings {
  if (node.cfnResourceType !== 'AWS::ECS::TaskDefinition') return NagRuleCompliance.NOT_APPLICABLE;
  const findings = new Set<string>();
  for (const c of rendered(node).Properties.ContainerDefinitions ?? []) {
    if (c.ReadonlyRootFilesystem !== true) findings.add('ReadonlyRoot');
    if (typeof c.User !== 'string' || ROOT_USER.test(c.User.trim())) findings.add('RootUser');
    if ((c.LinuxParameters?.Capabilities?.Add ?? []).length > 0) findings.add('AddedCapabilities');
    if (c.Privileged === true) findings.add('Privileged');
  }
  return findings.size > 0 ? [...findings] : NagRuleCompliance.COMPLIANT;
}
