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
