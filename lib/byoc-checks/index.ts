import { CfnResource } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { NagMessageLevel, NagPack, NagPackProps, NagRuleCompliance, NagRuleFindings } from 'cdk-nag';
import { ContainerHardened } from './container-hardened';
import { IamNoWildcard } from './iam-no-wildcard';
import { ImageByDigest } from './image-by-digest';
import { LogGroupRetentionAndKey } from './log-group-encrypted';
import { NatsFromContract } from './nats-from-contract';
import { NoInternetGateway } from './no-internet-gateway';
import { NoOpenEgress } from './no-open-egress';
import { NoPlaintextSecretEnv } from './no-plaintext-secrets';
import { NoUndeclaredRetain } from './no-undeclared-retain';
import { TaskRoleSingleUse } from './task-role-single-use';

export {
  DECLARATION, declareDataKey, declareEgress, declareNatsConfig, declareNoInternetEgress, declareRetainedData, type NatsConfigDeclaration,
} from './declarations';
export { RESOURCE_STAR_ACTIONS } from './iam-no-wildcard';

/** One rule of the pack: its ID suffix (`Byoc-<id>`), the check, and what a finding says and why it matters. */
export interface ByocRule {
  readonly id: string;
  readonly rule: (node: CfnResource) => NagRuleCompliance | NagRuleFindings;
  readonly info: string;
  readonly explanation: string;
}

/** The rules of `ByocChecks`, one file each in `lib/byoc-checks/`. */
export const BYOC_RULES: readonly ByocRule[] = [
  {
    id: 'NoInternetGateway', rule: NoInternetGateway,
    info: 'An internet gateway or NAT gateway exists where no egress was chosen.',
    explanation: 'The plane has no path to or from the internet unless egress is opted into (egress: nat); declare it with declareEgress on the scope that chose it.',
  },
  {
    id: 'ContainerHardened', rule: ContainerHardened,
    info: 'A container has a writable root filesystem, runs as root, adds Linux capabilities or is privileged.',
    explanation: 'Every container runs read-only, as an unprivileged user, with no added capability, so a compromised process can change nothing but its scratch volumes.',
  },
  {
    id: 'ImageByDigest', rule: ImageByDigest,
    info: 'A container image is not pinned by digest (@sha256:...).',
    explanation: 'A tag can be moved after review; a digest names exactly the image that was signed. Asset images are named by a tag of their build inputs: push and pin them by digest.',
  },
  {
    id: 'NoPlaintextSecretEnv', rule: NoPlaintextSecretEnv,
    info: 'A container environment variable holds what looks like a secret in plaintext.',
    explanation: 'Plain environment values are readable by anyone who may describe the task definition and kept in every revision; pass secrets with `secrets` (Secrets Manager) or by ARN.',
  },
  {
    id: 'LogGroupRetentionAndKey', rule: LogGroupRetentionAndKey,
    info: 'A log group has no retention, no customer-managed KMS key, or not the key declared for its plane.',
    explanation: 'Logs are kept as long as chosen and encrypted with the key the customer controls (and can revoke).',
  },
  {
    id: 'NoUndeclaredRetain', rule: NoUndeclaredRetain,
    info: 'A resource is retained on delete where keeping data was not chosen.',
    explanation: 'Without retainData, cdk destroy removes everything the stack created; declare retained data with declareRetainedData on the scope whose setting chose it.',
  },
  {
    id: 'NoOpenEgress', rule: NoOpenEgress,
    info: 'A workload declared never to reach the internet has a security group with egress to 0.0.0.0/0 or ::/0.',
    explanation: 'The NATS leaf, the boundary gateway and the collector talk only to named peers; an open egress rule would let them reach anywhere a route allows.',
  },
  {
    id: 'IamNoWildcard', rule: IamNoWildcard,
    info: 'An IAM identity policy allows a wildcard action, NotAction, or Resource "*" for an action that supports resource-level permissions.',
    explanation: 'Every permission names its actions and resources, so each statement can be explained by a sentence; Resource "*" is only for the actions listed in RESOURCE_STAR_ACTIONS.',
  },
  {
    id: 'TaskRoleSingleUse', rule: TaskRoleSingleUse,
    info: 'A task role is used by more than one task definition.',
    explanation: 'Each workload (each agent) has its own task role, so it holds only its own permissions and a reviewer reads one role per agent.',
  },
  {
    id: 'NatsFromContract', rule: NatsFromContract,
    info: 'A NATS server configuration is not declared, or differs from what its generator writes from the contract and catalog.',
    explanation: 'Every NATS permission comes from the boundary contract and the agent catalog through the generator; a configuration edited after generation could let a subject cross that the contract does not allow.',
  },
];

/**
 * The kit's own cdk-nag pack: the rules the BYOC kit promises about a plane, as checks over the synthesized
 * resources. Register it like any pack, on your own CDK app too:
 *
 * ```ts
 * import { Validations } from 'aws-cdk-lib';
 * import { ByocChecks } from '@byoc-kit/byoc';
 * Validations.of(app).addPlugins(new ByocChecks(app));
 * ```
 *
 * Rules (IDs `Byoc-<rule>`, granular findings `Byoc-<rule>[<finding>]`): NoInternetGateway, ContainerHardened,
 * ImageByDigest, NoPlaintextSecretEnv, LogGroupRetentionAndKey, NoUndeclaredRetain, NoOpenEgress, IamNoWildcard,
 * TaskRoleSingleUse, NatsFromContract; see `BYOC_RULES` and each rule's file. Choices a template cannot show are
 * declared on the construct that makes them (`declareEgress`, `declareRetainedData`, `declareNoInternetEgress`,
 * `declareNatsConfig`, `declareDataKey`); an exception is acknowledged like any finding (`acknowledgeFinding`: one resource, one
 * finding, a reason).
 */
export class ByocChecks extends NagPack {
  public readonly name = 'Byoc';
  public readonly ruleIds = BYOC_RULES.map((r) => `Byoc-${r.id}`);

  constructor(scope?: IConstruct, props?: NagPackProps) {
    super(scope, props);
    this.packName = 'Byoc';
  }

  protected checkResource(node: CfnResource): void {
    for (const r of BYOC_RULES) {
      this.applyRule({ ruleSuffixOverride: r.id, info: r.info, explanation: r.explanation, level: NagMessageLevel.ERROR, rule: r.rule, node });
    }
  }
}
