import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance } from 'cdk-nag';
import { render, rendered } from './template';

/** An image reference that ends in a content digest. */
export const BY_DIGEST = /@sha256:[0-9a-f]{64}$/;

/**
 * Byoc-ImageByDigest: every container's image ends in `@sha256:<64 hex>`, so what runs is exactly the image
 * that was reviewed and signed, not whatever a tag points to at deploy time. The reference may be built with
 * intrinsics (`${AWS::AccountId}.dkr.ecr.${AWS::Region}...`), but the digest must be literal in the template.
 *
 * CDK's asset images (`ContainerImage.fromAsset`, `DockerImageAsset`) fail: the template names them by a tag in
 * the bootstrap repository, the hash of the build's inputs, not of the image that was built (a rebuild of the same
 * inputs can push different bytes). Build, push and pin them by digest instead, as the kit's release does.
 */
export function ImageByDigest(node: CfnResource): NagRuleCompliance {
  if (node.cfnResourceType !== 'AWS::ECS::TaskDefinition') return NagRuleCompliance.NOT_APPLICABLE;
  const containers: any[] = rendered(node).Properties.ContainerDefinitions ?? [];
  return containers.every((c) => BY_DIGEST.test(render(c.Image))) ? NagRuleCompliance.COMPLIANT : NagRuleCompliance.NON_COMPLIANT;
}
