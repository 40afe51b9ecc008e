import * as fs from 'fs';
import * as path from 'path';
import { App, AppProps } from 'aws-cdk-lib';
import { addCompliancePacks } from './compliance';

/** The folder holding `cdk.json`, found by walking up from this file (works from `dist/` and from sources). */
export function projectRoot(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'cdk.json')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cdk.json not found above ${start}: run from a checkout of the kit`);
    dir = parent;
  }
}

/** The `context` block of the project's `cdk.json`: the feature flags every synth path must see. */
export function cdkJsonContext(): Record<string, unknown> {
  const file = path.join(projectRoot(), 'cdk.json');
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { context?: Record<string, unknown> };
  return parsed.context ?? {};
}

export interface KitAppProps extends AppProps {
  /**
   * Register the cdk-nag packs (AwsSolutions, HIPAA Security, NIST 800-53 R5, PCI DSS 3.2.1) and the AWS
   * Control Tower proactive controls (`ControlTowerChecks`, cfn-guard run offline on every template).
   * @default true
   */
  readonly compliancePacks?: boolean;
}

/**
 * An App with the project's feature flags loaded from `cdk.json` on every path (CLI, plain `node`, tests,
 * benchmarks) and every compliance pack and Control Tower control registered as validation plugins (the list
 * `policyValidationBeta1` fills), so no entry point can synthesize with fewer checks. A finding fails synth:
 * in tests `app.synth()` throws the report, under `cdk synth` the report goes to stderr and the CLI exits 1.
 */
export function createApp(props: KitAppProps = {}): App {
  const { compliancePacks = true, context, ...rest } = props;
  const app = new App({ ...rest, context: { ...cdkJsonContext(), ...context } });
  if (compliancePacks) addCompliancePacks(app);
  return app;
}
