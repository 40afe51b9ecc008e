import * as fs from 'fs';
import * as path from 'path';
import { App, AppProps } from 'aws-cdk-lib';
import { addCompliancePacks } from './compliance';
import { KIT_FEATURE_FLAGS } from './feature-flags';

export { KIT_FEATURE_FLAGS };

/**
 * The kit's own folder: the nearest one above this file holding a `package.json`. In a checkout that is the
 * repository (from `lib/` and from `dist/lib/`); installed, the package's folder in `node_modules`. The
 * runtime assets the constructs use (`dist/deploy-time/`) and the example configurations (`config/`) are found
 * from here; nothing is looked up in the consumer's project.
 */
export function projectRoot(start: string = __dirname): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`package.json not found above ${start}: the kit's files are incomplete, reinstall it`);
    dir = parent;
  }
}

/** The `context` block of the checkout's `cdk.json` (a checkout only: the installed package has none). */
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
 * An App with the kit's feature flags (`KIT_FEATURE_FLAGS`) on every path (the `cdk` CLI, plain `node`, tests,
 * benchmarks, a consumer's own app with or without a `cdk.json`) and every compliance pack and Control Tower
 * control registered as validation plugins (the list `policyValidationBeta1` fills), so no entry point can
 * synthesize with fewer checks. A finding fails synth: in tests `app.synth()` throws the report, under
 * `cdk synth` the report goes to stderr and the CLI exits 1.
 *
 * The flags are applied after the CLI's context, so a `cdk.json` written by `cdk init` for another CDK version
 * cannot change a template the kit's acknowledgements were checked against; a flag given in `context` here is
 * the caller's deliberate choice and wins.
 */
export function createApp(props: KitAppProps = {}): App {
  const { compliancePacks = true, context = {}, postCliContext = {}, ...rest } = props;
  const chosenFlags = Object.fromEntries(Object.entries(context).filter(([key]) => key in KIT_FEATURE_FLAGS));
  const app = new App({ ...rest, context, postCliContext: { ...KIT_FEATURE_FLAGS, ...chosenFlags, ...postCliContext } });
  if (compliancePacks) addCompliancePacks(app);
  return app;
}
