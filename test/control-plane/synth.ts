import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CONTROL_PLANE_STACK } from '../../bin/control-plane';
import { loadControlPlaneConfig } from '../../control-plane/config';
import { NatsHubProps } from '../../control-plane/props';
import { ControlPlaneStack, ControlPlaneStackProps } from '../../control-plane/stack';
import { createApp, projectRoot } from '../../lib/app';
import { CONTROL_TOWER_PLUGIN, RECORD_ONLY_CONTEXT } from '../../lib/compliance';

/** The example vendor configuration as `npm run synth` deploys it: hub, release infrastructure and the vendor's services. */
export function exampleAppProps(): ControlPlaneStackProps {
  return loadControlPlaneConfig(path.join(projectRoot(), 'config', 'example-vendor.json'));
}

/** The example's vendor services (ingest, learning pool, LLM proxy). */
export function exampleServices(): NonNullable<ControlPlaneStackProps['services']> {
  return exampleAppProps().services!;
}

/**
 * The example vendor configuration the hub and release tests start from: without the vendor's services
 * unless `overrides.services` gives them (their own tests add them).
 */
export function exampleVendorProps(overrides: Partial<ControlPlaneStackProps> = {}, hub: Partial<NatsHubProps> = {}): ControlPlaneStackProps {
  const { services: _services, ...base } = exampleAppProps();
  return { ...base, ...overrides, hub: overrides.hub === undefined && 'hub' in overrides ? undefined : { ...base.hub!, ...overrides.hub, ...hub } };
}

const outdirs: string[] = [];
afterAll(() => { for (const d of outdirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

export interface SynthesizedControlPlane {
  readonly app: App;
  readonly stack: ControlPlaneStack;
  readonly outdir: string;
  readonly template: Template;
  /** The template as JSON. */
  readonly json: any;
}

/**
 * Synthesizes a control plane with every compliance pack and the Control Tower controls on (synth throws on
 * any unacknowledged finding).
 */
export function synthControl(props: ControlPlaneStackProps = exampleVendorProps(), context: Record<string, unknown> = {}): SynthesizedControlPlane {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-control-'));
  outdirs.push(outdir);
  const app = createApp({ outdir, context });
  const stack = new ControlPlaneStack(app, CONTROL_PLANE_STACK, props);
  const assembly = app.synth();
  const json = JSON.parse(fs.readFileSync(path.join(assembly.directory, stack.templateFile), 'utf8'));
  return { app, stack, outdir, template: Template.fromJSON(json), json };
}

/** Resources of one type, by logical ID. */
export function resourcesOf(json: any, type: string): [string, any][] {
  return Object.entries<any>(json.Resources).filter(([, r]) => r.Type === type);
}

/**
 * Findings of a synth with every acknowledgement recorded but not applied, as `rule @ construct path`
 * (cdk-nag's rule names carry their pack; Control Tower's and CDK's own validation are `plugin::rule`, as their
 * acknowledgements record them). CDK's CloudFormation validation is on here, as in `npm run synth`.
 */
export function findingsWithoutAcknowledgements(build: (app: App) => void): { findings: string[]; app: App } {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-control-nag-'));
  outdirs.push(outdir);
  const app = createApp({ outdir, context: { [RECORD_ONLY_CONTEXT]: true } });
  build(app);
  let failed = false;
  const validation = process.env.CDK_VALIDATION;
  process.env.CDK_VALIDATION = 'true';
  try {
    app.synth();
  } catch (e) {
    failed = /Acknowledge with/.test((e as Error).message);
    if (!failed) throw e;
  } finally {
    process.env.CDK_VALIDATION = validation;
  }
  const findings: string[] = [];
  if (failed) {
    const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
    for (const plugin of report.pluginReports) {
      const prefix = [CONTROL_TOWER_PLUGIN, 'CloudFormation Validate'].includes(plugin.pluginName) ? `${plugin.pluginName.replace(/ /g, '-')}::` : '';
      for (const v of plugin.violations) for (const c of v.violatingConstructs) findings.push(`${prefix}${v.ruleName} @ ${c.constructPath}`);
    }
  }
  return { findings, app };
}
