import { CfnResource } from 'aws-cdk-lib';
import { NagRuleCompliance, NagRuleFindings } from 'cdk-nag';
import { natsConfigOf } from './declarations';
import { render, rendered } from './template';

/**
 * Byoc-NatsFromContract: every NATS server's configuration, and so every permission in it, is what its generator
 * writes from its sources (the boundary contract and the agent catalog for the customer's leaf), byte for byte.
 *
 * - A task definition whose container runs `nats-server` must declare its configuration (`declareNatsConfig`):
 *   `[Undeclared]` otherwise.
 * - The declared variable's value in the rendered template must equal the generator run again when the pack
 *   runs: `[Edited::<variable>]` otherwise, which catches a permission added by hand, by an override or by an Aspect.
 *
 * What this cannot see: a generator that is itself wrong. The generator's output is checked against the
 * contract by running it on a real nats-server (the kit's tests); this rule proves the deployed configuration
 * is that output. Permissions a server takes from elsewhere (operator-mode JWTs on the vendor hub, issued by
 * `byoc customer add`) are not in any template.
 */
export function NatsFromContract(node: CfnResource): NagRuleCompliance | NagRuleFindings {
  if (node.cfnResourceType !== 'AWS::ECS::TaskDefinition') return NagRuleCompliance.NOT_APPLICABLE;
  const containers: any[] = rendered(node).Properties.ContainerDefinitions ?? [];
  const declared = natsConfigOf(node);
  const runsNats = containers.some((c) => [...(c.EntryPoint ?? []), ...(c.Command ?? [])].map(render).join(' ').includes('nats-server'));
  if (!declared) return runsNats ? ['Undeclared'] : NagRuleCompliance.NOT_APPLICABLE;
  const values = containers.flatMap((c) => (c.Environment ?? []).filter((e: any) => e.Name === declared.variable).map((e: any) => e.Value));
  const expected = declared.generate();
  return values.length === 1 && values[0] === expected ? NagRuleCompliance.COMPLIANT : [`Edited::${declared.variable}`];
}
