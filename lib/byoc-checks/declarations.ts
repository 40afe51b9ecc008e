import { Stack } from 'aws-cdk-lib';
import { IKey } from 'aws-cdk-lib/aws-kms';
import { IConstruct } from 'constructs';

/**
 * Declarations: what an app states about a part of itself for `ByocChecks` to hold it to. Each one is a choice
 * made by a prop (egress opted into, data kept on delete) or a fact the templates cannot show (which workload a
 * task is, which generator wrote a configuration). A declaration is construct metadata (`byoc:*`, in the stack's
 * `<stack>.metadata.json` of the cloud assembly where a reviewer reads it, never in a template) on a scope, with a reason; it covers the
 * scope and everything below it. It is not an acknowledgement: a declared scope is still checked, against the
 * declaration.
 */

/** Metadata types of the declarations. */
export const DECLARATION = {
  egress: 'byoc:egress',
  retainedData: 'byoc:retained-data',
  noInternetEgress: 'byoc:no-internet-egress',
  natsConfig: 'byoc:nats-config',
  dataKey: 'byoc:data-key',
} as const;

/** Shortest reason accepted, as for acknowledgements. */
const MIN_REASON_LENGTH = 40;

function declare(type: string, scope: IConstruct, reason: string, helper: string): void {
  if (reason.trim().length < MIN_REASON_LENGTH) {
    throw new Error(`${helper} on ${scope.node.path}: the reason must say in a sentence which setting chose this (at least ${MIN_REASON_LENGTH} characters)`);
  }
  scope.node.addMetadata(type, reason);
}

/** The reason of the nearest declaration of `type` on `construct` or a scope above it. */
export function declarationOf(construct: IConstruct, type: string): string | undefined {
  for (let c: IConstruct | undefined = construct; c; c = c.node.scope) {
    const entry = c.node.metadata.find((m) => m.type === type);
    if (entry) return entry.data as string;
  }
  return undefined;
}

/**
 * Outbound internet was chosen for this scope (`egress: nat` in the customer plane, an internet-facing hub or the
 * LLM proxy's NAT in the control plane): internet and NAT gateways below it pass `Byoc-NoInternetGateway`.
 */
export function declareEgress(scope: IConstruct, reason: string): void {
  declare(DECLARATION.egress, scope, reason, 'declareEgress');
}

/**
 * Data below this scope is kept when the stack is deleted by choice (`retainData`): a `Retain` deletion or
 * update-replace policy below it passes `Byoc-NoUndeclaredRetain`.
 */
export function declareRetainedData(scope: IConstruct, reason: string): void {
  declare(DECLARATION.retainedData, scope, reason, 'declareRetainedData');
}

/**
 * This workload (an ECS service, or a scope holding one) must never reach the internet, whatever the VPC's
 * egress: `Byoc-NoOpenEgress` fails if any security group of its service allows egress to `0.0.0.0/0` or `::/0`.
 */
export function declareNoInternetEgress(workload: IConstruct, reason: string): void {
  declare(DECLARATION.noInternetEgress, workload, reason, 'declareNoInternetEgress');
}

/** A NATS configuration a container receives in an environment variable, and how it is generated. */
export interface NatsConfigDeclaration {
  /** The environment variable holding the configuration. */
  readonly variable: string;
  /** Where the permissions come from, for the finding's message (`the boundary contract and the agent catalog`). */
  readonly source: string;
  /** Generates the configuration again from its sources (called when the pack runs, after synthesis). */
  readonly generate: () => string;
}

const NATS_CONFIGS = new WeakMap<IConstruct, NatsConfigDeclaration>();

/**
 * This task definition's NATS configuration is generated: `Byoc-NatsFromContract` requires the value in the
 * template to equal `generate()` run again from its sources, so no permission is added by hand, by an override
 * or by an Aspect after generation. Every task definition whose container runs `nats-server` needs one.
 */
export function declareNatsConfig(taskDefinition: IConstruct, declaration: NatsConfigDeclaration): void {
  declare(DECLARATION.natsConfig, taskDefinition, `${declaration.variable} is generated from ${declaration.source}`, 'declareNatsConfig');
  NATS_CONFIGS.set(taskDefinition, declaration);
}

/** The NATS configuration declared on `construct` or a scope above it (up to its stack). */
export function natsConfigOf(construct: IConstruct): NatsConfigDeclaration | undefined {
  for (let c: IConstruct | undefined = construct; c && !Stack.isStack(c); c = c.node.scope) {
    const d = NATS_CONFIGS.get(c);
    if (d) return d;
  }
  return undefined;
}

const DATA_KEYS = new WeakMap<IConstruct, IKey>();

/**
 * Everything below this scope is encrypted with `key` (the customer plane's key): `Byoc-LogGroupRetentionAndKey`
 * then requires each log group below it to use exactly this key, not merely some key.
 */
export function declareDataKey(scope: IConstruct, key: IKey): void {
  declare(DECLARATION.dataKey, scope, `every log group below is encrypted with ${key.node.path}`, 'declareDataKey');
  DATA_KEYS.set(scope, key);
}

/** The data key declared on `construct` or a scope above it. */
export function dataKeyOf(construct: IConstruct): IKey | undefined {
  for (let c: IConstruct | undefined = construct; c; c = c.node.scope) {
    const key = DATA_KEYS.get(c);
    if (key) return key;
  }
  return undefined;
}
