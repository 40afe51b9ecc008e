import { App, CfnResource, Stack, Stage, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks } from 'cdk-nag';
import { IConstruct } from 'constructs';

/** The cdk-nag packs every app of the kit is checked against. Any unacknowledged finding fails synth. */
export function addCompliancePacks(app: App): void {
  const props = { writeSuppressionsToCloudFormation: true };
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, props),
    new HIPAASecurityChecks(app, props),
    new NIST80053R5Checks(app, props),
    new PCIDSS321Checks(app, props),
  );
}

/** Shortest reason accepted: a reviewer needs a sentence, not a word. */
const MIN_REASON_LENGTH = 40;

/**
 * Acknowledge one finding on one resource.
 *
 * `finding` is a rule ID (`AwsSolutions-IAM5`) or a granular finding (`AwsSolutions-IAM5[Resource::*]`).
 * The scope must be a single CloudFormation resource (or an L2 whose only resources are the one in question):
 * stacks and stages are refused, so an acknowledgement can never silence a rule for everything below it.
 * The reason is written into the resource's template metadata, where a reviewer reads it.
 */
export function acknowledgeFinding(resource: IConstruct, finding: string, reason: string): void {
  if (Stack.isStack(resource) || Stage.isStage(resource)) {
    throw new Error(`acknowledgeFinding(${finding}): scope ${resource.node.path} is a stack or stage; acknowledge on the one resource that has the finding`);
  }
  if (reason.trim().length < MIN_REASON_LENGTH) {
    throw new Error(`acknowledgeFinding(${finding}) on ${resource.node.path}: the reason must explain the exception in a sentence (at least ${MIN_REASON_LENGTH} characters)`);
  }
  const record: Acknowledgement = { path: resource.node.path, finding, reason };
  const app = resource.node.root;
  const list = RECORDED.get(app) ?? [];
  list.push(record);
  RECORDED.set(app, list);
  if (resource.node.tryGetContext(RECORD_ONLY_CONTEXT) === true) return;
  Validations.of(resource).acknowledge({ id: finding, reason });
}

/** One acknowledged finding: the construct it is on, the finding, and why. */
export interface Acknowledgement {
  readonly path: string;
  readonly finding: string;
  readonly reason: string;
}

const RECORDED = new WeakMap<IConstruct, Acknowledgement[]>();

/**
 * Context key: when `true`, `acknowledgeFinding` records but does not acknowledge, so a synth shows
 * every finding the acknowledgements would hide. The tests use it to prove each one is still needed.
 */
export const RECORD_ONLY_CONTEXT = 'byoc:acknowledgements-record-only';

/** Every acknowledgement made in an app, in the order they were made. */
export function acknowledgementsOf(app: IConstruct): Acknowledgement[] {
  return [...(RECORDED.get(app.node.root) ?? [])];
}

/** The single CloudFormation resource behind an L2 construct, for acknowledgements at the narrowest scope. */
export function cfnOf(construct: IConstruct): CfnResource {
  const child = construct.node.defaultChild;
  if (!(child instanceof CfnResource)) {
    throw new Error(`${construct.node.path} has no single CloudFormation resource to acknowledge on`);
  }
  return child;
}
