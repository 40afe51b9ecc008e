import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, NestedStack, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildControlPlaneApp } from '../bin/control-plane';
import { createApp } from '../lib/app';
import { CustomerPlaneStack, CustomerPlaneStackProps } from '../customer-plane/stack';
import { loadCustomerPlaneConfig } from '../customer-plane/config';
import { projectRoot } from '../lib/app';

/** The example configuration every test starts from. */
export function exampleProps(overrides: Partial<CustomerPlaneStackProps> = {}): CustomerPlaneStackProps {
  return { ...loadCustomerPlaneConfig(path.join(projectRoot(), 'config', 'example-customer.json')), ...overrides };
}

export interface SynthesizedPlane {
  readonly app: App;
  readonly stack: CustomerPlaneStack;
  readonly outdir: string;
  /** Root stack template. */
  readonly root: Template;
  /** Nested agent-group templates by group name. */
  readonly groups: Record<string, Template>;
  /** Every template of the assembly (root first), as JSON, by file name. */
  readonly templates: Record<string, any>;
}

const outdirs: string[] = [];
// Assemblies stay readable for the whole test file (cfn-lint reads them after synth), then go.
afterAll(() => { for (const d of outdirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

function tempOutdir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-synth-'));
  outdirs.push(dir);
  return dir;
}

/**
 * Synthesizes a customer plane with every compliance pack and the Control Tower controls on: synth throws on
 * any unacknowledged finding, with the report (rule, construct, how to acknowledge) as its message.
 */
export function synthCustomerPlane(props: CustomerPlaneStackProps = exampleProps(), context: Record<string, unknown> = {}): SynthesizedPlane {
  const outdir = tempOutdir();
  const app = createApp({ outdir, context });
  const stack = new CustomerPlaneStack(app, 'ByocCustomerPlane', props);
  const assembly = app.synth();
  const root = Template.fromStack(stack);
  const groups: Record<string, Template> = {};
  for (const [name, group] of Object.entries(stack.plane.agentGroups)) groups[name] = Template.fromStack(group as NestedStack as Stack);
  return { app, stack, outdir, root, groups, templates: readTemplates(assembly.directory) };
}

/** Synthesizes the control-plane app. */
export function synthControlPlane(): { app: App; outdir: string; templates: Record<string, any> } {
  const outdir = tempOutdir();
  const app = buildControlPlaneApp(createApp({ outdir }));
  const assembly = app.synth();
  return { app, outdir, templates: readTemplates(assembly.directory) };
}

/** Every `*.template.json` in an assembly folder, root templates before nested ones. */
export function readTemplates(dir: string): Record<string, any> {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.template.json'))
    .sort((a, b) => Number(a.includes('.nested.')) - Number(b.includes('.nested.')) || a.localeCompare(b));
  return Object.fromEntries(files.map((f) => [f, JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))]));
}

/** All resources of all templates, with the template they are in. */
export function allResources(templates: Record<string, any>): { file: string; id: string; type: string; props: any; resource: any }[] {
  return Object.entries(templates).flatMap(([file, t]) => Object.entries<any>(t.Resources ?? {})
    .map(([id, r]) => ({ file, id, type: r.Type, props: r.Properties ?? {}, resource: r })));
}
