import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  App, CfnResource, IPolicyValidationContext, IPolicyValidationPlugin, NestedStack, PolicyValidationPluginReport,
  PolicyViolation, Stack, Stage, Validations,
} from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { ByocChecks } from './byoc-checks';

/**
 * The checks every app of the kit is held to: the four cdk-nag packs, the kit's own (`ByocChecks`) and the AWS
 * Control Tower proactive controls. Any unacknowledged finding fails synth, with the rule, the resource and how to acknowledge it.
 */
export function addCompliancePacks(app: App): void {
  const props = { writeSuppressionsToCloudFormation: true };
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, props),
    new HIPAASecurityChecks(app, props),
    new NIST80053R5Checks(app, props),
    new PCIDSS321Checks(app, props),
    new ByocChecks(app, props),
    new ControlTowerChecks(),
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
  acknowledge('acknowledgeFinding', resource, finding, finding, reason);
}

/**
 * Acknowledge one Control Tower proactive control (`CT.RDS.PR.1`) on one resource, with the guarantees of
 * `acknowledgeFinding`: one resource (never a stack or stage), a reason in a sentence, recorded for review.
 *
 * This only quiets the local check. In an account where the control is enabled its CloudFormation hook still
 * refuses the resource, so acknowledge only what an operator chose explicitly (a prop that turns a default
 * off) for an account without that control, and say so in the reason. Fix everything else.
 */
export function acknowledgeControlTowerFinding(resource: IConstruct, control: string, reason: string): void {
  const rule = controlTowerRules().find((r) => r.control === control);
  if (!rule) {
    throw new Error(`acknowledgeControlTowerFinding(${control}) on ${resource.node.path}: not a proactive control bundled with @cdklabs/cdk-validator-cfnguard; give its ID as in the report, such as CT.RDS.PR.1`);
  }
  acknowledge('acknowledgeControlTowerFinding', resource, control, `${CONTROL_TOWER_PLUGIN}::${rule.rule}`, reason);
}

function acknowledge(helper: string, resource: IConstruct, label: string, finding: string, reason: string): void {
  if (Stack.isStack(resource) || Stage.isStage(resource)) {
    throw new Error(`${helper}(${label}): scope ${resource.node.path} is a stack or stage; acknowledge on the one resource that has the finding`);
  }
  if (reason.trim().length < MIN_REASON_LENGTH) {
    throw new Error(`${helper}(${label}) on ${resource.node.path}: the reason must explain the exception in a sentence (at least ${MIN_REASON_LENGTH} characters)`);
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
  /** A cdk-nag rule or granular finding, or `ControlTower::<guard rule name>` for a Control Tower control. */
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

// AWS Control Tower proactive controls ----------------------------------------------------------------

/** The plugin's name in validation reports; acknowledgement IDs are `ControlTower::<guard rule name>`. */
export const CONTROL_TOWER_PLUGIN = 'ControlTower';

const GUARD_PACKAGE = path.dirname(require.resolve('@cdklabs/cdk-validator-cfnguard/package.json'));
const CONTROL_TOWER_RULES_DIR = path.join(GUARD_PACKAGE, 'rules', 'control-tower', 'cfn-guard');
/** cfn-guard's structured output for a template with many findings runs past Node's default 1 MiB buffer. */
const GUARD_MAX_BUFFER = 64 * 1024 * 1024;

/** One bundled proactive control: its guard file, the rule name reports use, its ID and the types it reads. */
export interface ControlTowerRule {
  /** Guard file name without extension (`ct-rds-pr-13`), as the plugin's `disabledRules` takes it. */
  readonly file: string;
  /** The guard rule name a report gives (`rds_instance_deletion_protection_enabled_check`). */
  readonly rule: string;
  /** The control's ID in Control Tower (`CT.RDS.PR.13`). */
  readonly control: string;
  /** Every CloudFormation resource type the rule file mentions. */
  readonly resourceTypes: readonly string[];
}

let RULES: ControlTowerRule[] | undefined;

/** The proactive controls bundled with the plugin (read once from its rule files). */
export function controlTowerRules(): readonly ControlTowerRule[] {
  if (RULES) return RULES;
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name.endsWith('.guard')) files.push(path.join(dir, e.name));
    }
  };
  walk(CONTROL_TOWER_RULES_DIR);
  RULES = files.sort().map((file) => {
    const text = fs.readFileSync(file, 'utf8');
    const rule = /^rule\s+([A-Za-z0-9_]+)\s+when\b/m.exec(text)?.[1];
    if (!rule) throw new Error(`${file}: no top-level guard rule found; the plugin's rule format changed`);
    return {
      file: path.basename(file, '.guard'),
      rule,
      control: /\[(CT\.[A-Z0-9]+\.PR\.\d+)\]/.exec(text)?.[1] ?? rule,
      resourceTypes: [...new Set(text.match(/AWS::[A-Za-z0-9]+::[A-Za-z0-9]+/g) ?? [])].sort(),
    };
  });
  return RULES;
}

/**
 * The AWS Control Tower proactive controls as a CDK validation plugin: the official
 * `@cdklabs/cdk-validator-cfnguard` (its cfn-guard binary, rules and result parser, run offline), given what
 * a Control Tower hook evaluates at deploy time rather than only the root templates CDK hands a plugin.
 *
 * - Nested stacks too: a hook sees every resource CloudFormation provisions, so an agent group's resources are
 *   checked like the root stack's (the stock plugin never sees nested templates).
 * - Resources only, each with its type and properties, as a hook's input holds them (template and resource
 *   metadata, policies and outputs are left out: no control reads them, and the Control Tower rules ignore
 *   `Metadata.guard.SuppressedRules`). The one way to quiet a control is `acknowledgeControlTowerFinding`.
 * - A nested stack's parameter is a string the parent passes; CloudFormation resolves it before any hook
 *   runs. Each `Ref` to such a parameter is replaced by the parent's literal, or by a placeholder string
 *   naming the parent's value (`resolved at deploy: PlaneKey20AD7535.Arn`), so a log group whose key ARN
 *   arrives as a parameter is judged on a string, as the hook judges it, not on an unresolvable `Ref`.
 * - Each template is checked with the rules whose files name a resource type it holds (the others cannot
 *   apply), since cfn-guard's time grows with rules times resources.
 */
export class ControlTowerChecks implements IPolicyValidationPlugin {
  public readonly name = CONTROL_TOWER_PLUGIN;
  public readonly version: string = JSON.parse(fs.readFileSync(path.join(GUARD_PACKAGE, 'package.json'), 'utf8')).version;
  public readonly ruleIds = controlTowerRules().map((r) => r.control);

  public validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const templates = [
      ...context.templatePaths.map((file) => ({ file, parameters: {} as Record<string, unknown> })),
      ...nestedTemplates(context),
    ];
    const violations = templates.flatMap(({ file, parameters }) => {
      const view = JSON.stringify(deployTimeView(JSON.parse(fs.readFileSync(file, 'utf8')), parameters));
      return this.checkView(view, context).map((v) => ({
        ...v,
        violatingResources: v.violatingResources.map((r) => ({ ...r, templatePath: file })),
      }));
    });
    return { success: violations.length === 0, violations, pluginVersion: this.version };
  }

  /**
   * The violations of one template's deploy-time view, by running cfn-guard with the rules that can apply to
   * it. cfn-guard is a pure function of rules and template, and most synths of a test run repeat templates
   * (agent groups across variants), so results are memoized by content for the life of the process.
   */
  private checkView(view: string, context: IPolicyValidationContext): PolicyViolation[] {
    const key = createHash('sha256').update(this.version).update('\0').update(view).digest('hex');
    const cached = GUARD_RESULTS.get(key);
    if (cached) return cached;
    const present = new Set(Object.values<any>(JSON.parse(view).Resources).map((r) => r.Type as string));
    const applicable = new Set(controlTowerRules()
      .filter((r) => r.resourceTypes.length === 0 || r.resourceTypes.some((t) => present.has(t))).map((r) => r.file));
    let found: PolicyViolation[] = [];
    if (applicable.size > 0) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-control-tower-'));
      try {
        const file = path.join(dir, 'template.json');
        fs.writeFileSync(file, view);
        const guard = new CfnGuardValidator({
          disabledRules: controlTowerRules().filter((r) => !applicable.has(r.file)).map((r) => r.file),
          maxBuffer: GUARD_MAX_BUFFER,
        });
        const report = guard.validate({ templatePaths: [file], appConstruct: context.appConstruct });
        // Without a severity, CDK counts a report with one acknowledged finding as passing, even with others left.
        found = report.violations.map((v) => ({ ...v, severity: 'error' }));
        if (!report.success && found.length === 0) throw new Error('cfn-guard reported a failure without a violation');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    if (GUARD_RESULTS.size >= GUARD_RESULTS_KEPT) GUARD_RESULTS.delete(GUARD_RESULTS.keys().next().value!);
    GUARD_RESULTS.set(key, found);
    return found;
  }
}

const GUARD_RESULTS = new Map<string, PolicyViolation[]>();
const GUARD_RESULTS_KEPT = 256;

/** Every nested stack's template below the stacks being validated, with the parameters its parent passes. */
function nestedTemplates(context: IPolicyValidationContext): { file: string; parameters: Record<string, unknown> }[] {
  const validated = new Set(context.templatePaths.map((p) => path.resolve(p)));
  const templateOf = (stack: Stack): string => {
    let top: Stack = stack;
    while (top.nestedStackParent) top = top.nestedStackParent;
    return path.resolve(Stage.of(top)!.outdir, stack.templateFile);
  };
  const rootOf = (stack: Stack): Stack => (stack.nestedStackParent ? rootOf(stack.nestedStackParent) : stack);
  return context.appConstruct.node.findAll()
    .filter((c): c is NestedStack => NestedStack.isNestedStack(c))
    .filter((nested) => validated.has(templateOf(rootOf(nested))))
    .map((nested) => {
      const parent = nested.nestedStackParent!;
      const resource = nested.nestedStackResource!;
      const logicalId = parent.resolve(resource.logicalId) as string;
      const parentTemplate = JSON.parse(fs.readFileSync(templateOf(parent), 'utf8'));
      const parameters = parentTemplate.Resources?.[logicalId]?.Properties?.Parameters ?? {};
      return { file: templateOf(nested), parameters };
    });
}

/** A template as a hook sees it: resource types and properties, with the parent's string parameters resolved. */
function deployTimeView(template: any, parentParameters: Record<string, unknown>): any {
  const declared: Record<string, any> = template.Parameters ?? {};
  const resolved = new Map<string, string>();
  for (const [name, value] of Object.entries(parentParameters)) {
    if (declared[name]?.Type !== 'String') continue;
    resolved.set(name, typeof value === 'string' ? value : `resolved at deploy: ${describeIntrinsic(value)}`);
  }
  const substitute = (v: any): any => {
    if (Array.isArray(v)) return v.map(substitute);
    if (v === null || typeof v !== 'object') return v;
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'Ref' && resolved.has(v.Ref)) return resolved.get(v.Ref);
    return Object.fromEntries(keys.map((k) => [k, substitute(v[k])]));
  };
  const resources = Object.fromEntries(Object.entries<any>(template.Resources ?? {})
    .map(([id, r]) => [id, { Type: r.Type, Properties: substitute(r.Properties ?? {}) }]));
  return { AWSTemplateFormatVersion: '2010-09-09', Resources: resources };
}

function describeIntrinsic(value: unknown): string {
  const v = value as any;
  if (v && typeof v === 'object') {
    if (typeof v.Ref === 'string') return v.Ref;
    if (Array.isArray(v['Fn::GetAtt'])) return v['Fn::GetAtt'].join('.');
  }
  return JSON.stringify(value);
}

/**
 * Lets only AWS services create grants on a key (Control Tower CT.KMS.PR.3): RDS, EFS, ElastiCache and AWS
 * Backup create grants for the resources they encrypt (`kms:GrantIsForAWSResource`), a service principal may
 * call directly (`aws:PrincipalIsAWSService`); no person or role can hand out use of the key with a grant.
 */
export function limitKeyGrantsToAwsServices(key: kms.Key): void {
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'GrantsOnlyForAwsServices',
    effect: iam.Effect.DENY,
    principals: [new iam.AnyPrincipal()],
    actions: ['kms:CreateGrant'],
    resources: ['*'],
    conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
  }));
}
