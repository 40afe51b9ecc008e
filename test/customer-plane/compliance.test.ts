import * as fs from 'fs';
import { AGENT_CATALOG } from '../../agents/catalog';
import { buildCustomerPlaneApp } from '../../bin/customer-plane';
import { buildControlPlaneApp } from '../../bin/control-plane';
import { createApp } from '../../lib/app';
import { acknowledgementsOf, CONTROL_TOWER_PLUGIN, RECORD_ONLY_CONTEXT } from '../../lib/compliance';
import { EgressMode } from '../../customer-plane/props';
import { CustomerPlaneStack, CustomerPlaneStackProps } from '../../customer-plane/stack';
import { exampleProps } from '../synth';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';

const tmpdirs: string[] = [];
const tmpdir = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-nag-')); tmpdirs.push(d); return d; };
afterAll(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

/**
 * Findings of a synth with every acknowledgement recorded but not applied, as `rule @ construct path`; a
 * Control Tower finding's rule is `ControlTower::<guard rule>`, as its acknowledgement records it.
 */
function findingsWithoutAcknowledgements(build: (app: App) => void): { findings: string[]; app: App } {
  const outdir = tmpdir();
  const app = createApp({ outdir, context: { [RECORD_ONLY_CONTEXT]: true } });
  build(app);
  // CDK's own template validation on for this synth (the tests turn it off elsewhere): its findings are acknowledged too.
  const validation = process.env.CDK_VALIDATION;
  process.env.CDK_VALIDATION = 'true';
  try {
    expect(() => app.synth()).toThrow(/Acknowledge with/);
  } finally {
    process.env.CDK_VALIDATION = validation;
  }
  const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
  const findings: string[] = [];
  for (const plugin of report.pluginReports) {
    const prefix = [CONTROL_TOWER_PLUGIN, 'CloudFormation Validate'].includes(plugin.pluginName) ? `${plugin.pluginName.replace(/ /g, '-')}::` : '';
    for (const v of plugin.violations) for (const c of v.violatingConstructs) findings.push(`${prefix}${v.ruleName} @ ${c.constructPath}`);
  }
  return { findings, app };
}

function covered(finding: string, acks: { path: string; finding: string }[]): boolean {
  const [rule, at] = finding.split(' @ ');
  return acks.some((a) => a.finding === rule && (at === a.path || at.startsWith(`${a.path}/`)));
}

/**
 * Each variant with the Control Tower controls it acknowledges: an acknowledged control still blocks the deploy
 * in an account that enables it, so only an operator's explicit opt-out may acknowledge one.
 */
const variants: [string, Partial<CustomerPlaneStackProps>, string[]][] = [
  // The deploy-time function runs in the VPC: no Lambda finding to acknowledge.
  ['default', {}, []],
  ['retainData with a backup plan', { retainData: true }, []],
  ['single-AZ database', { database: { multiAz: false } }, ['ControlTower::rds_instance_multi_az_support_check']],
  ['no deletion protection', { database: { deletionProtection: false } }, ['ControlTower::rds_instance_deletion_protection_enabled_check']],
  ['NAT egress opted in', { egress: EgressMode.NAT }, []],
];

describe.each(variants)('customer plane (%s): acknowledgements are exactly the findings', (_name, overrides, controls) => {
  test('every acknowledgement hides a finding that really occurs there, and every finding is acknowledged', () => {
    const { findings, app } = findingsWithoutAcknowledgements((a) => new CustomerPlaneStack(a, 'ByocCustomerPlane', exampleProps(overrides)));
    const acks = acknowledgementsOf(app);
    expect(acks.length).toBeGreaterThan(0);
    const unused = acks.filter((a) => !findings.some((f) => covered(f, [a])));
    expect(unused).toEqual([]);
    expect(findings.filter((f) => !covered(f, acks))).toEqual([]);
    expect(acks.filter((a) => a.finding.startsWith(`${CONTROL_TOWER_PLUGIN}::`)).map((a) => a.finding)).toEqual(controls);
  });
});

test('with acknowledgements applied, both apps synthesize with all four packs and the Control Tower controls and no finding', () => {
  const customer = buildCustomerPlaneApp(createApp({ outdir: tmpdir() }));
  expect(() => customer.synth()).not.toThrow();
  const control = buildControlPlaneApp(createApp({ outdir: tmpdir() }));
  expect(() => control.synth()).not.toThrow();
  // The control plane acknowledges only the Control Tower controls its example leaves to the operator: access logs
  // of a TCP listener (hub.accessLogBucket) and the SSE-S3 bucket S3 delivers the registry's access logs to
  // (bundleRegistry.accessLogBucket); its deploy-time function runs in its VPC. test/control-plane/compliance.test.ts has each variant.
  expect(acknowledgementsOf(control).filter((a) => a.finding.startsWith(`${CONTROL_TOWER_PLUGIN}::`)).map((a) => a.finding).sort())
    .toEqual(['ControlTower::elbv2_logging_enabled_check', 'ControlTower::s3_bucket_default_encryption_kms_check']);
});

test('every acknowledgement is on a single resource with a reason a reviewer can read, and none is on a stack', () => {
  const app = createApp({ outdir: tmpdir() });
  new CustomerPlaneStack(app, 'ByocCustomerPlane', exampleProps({ retainData: true }));
  const acks = acknowledgementsOf(app);
  for (const a of acks) {
    const node = app.node.findAll().find((c) => c.node.path === a.path)!;
    expect(node).toBeDefined();
    // An L1 resource, or an L2 holding exactly one CloudFormation resource.
    const cfnResources = node.node.findAll().filter((c) => (c as any).cfnResourceType !== undefined);
    expect({ path: a.path, resources: cfnResources.length }).toEqual({ path: a.path, resources: 1 });
    expect(a.reason.length).toBeGreaterThanOrEqual(40);
  }
  // Acknowledgements scale with the catalog only where each agent truly has the finding.
  expect(acks.filter((a) => a.finding === 'AwsSolutions-IAM5[Resource::*]')).toHaveLength(AGENT_CATALOG.length + 5); // + the deploy-time function's role, the collector's xray:PutTraceSegments
});

test('a new unacknowledged finding fails synth, naming the rule and the resource', () => {
  const app = createApp({ outdir: tmpdir() });
  const stack = new CustomerPlaneStack(app, 'ByocCustomerPlane', exampleProps());
  // An unencrypted, unrotated secret outside the plane's conventions.
  new (require('aws-cdk-lib/aws-secretsmanager').Secret)(stack, 'Stray');
  // A log group without a key inside an agent group's nested stack: Control Tower checks nested stacks too.
  new logs.LogGroup(stack.plane.agentGroups.intake, 'StrayLogs');
  let message = '';
  try { app.synth(); } catch (e) { message = (e as Error).message; }
  expect(message).toMatch(/AwsSolutions-SMG4[\s\S]*ByocCustomerPlane\/Stray/);
  expect(message).toMatch(/CT\.CLOUDWATCH\.PR\.3[\s\S]*ByocCustomerPlane\/Plane\/Agents-intake\/StrayLogs\/Resource/);
});
