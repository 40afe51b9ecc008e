import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { ByocChecks } from '../../../lib/byoc-checks';

/**
 * The ByocChecks findings of a small stack built by `build`, synthesized (CDK_VALIDATION is off in the test
 * setup) and checked as the validation plugin checks an app, as `Byoc-<rule>[finding] @ <construct path>`, sorted.
 */
export function byocFindings(build: (stack: Stack) => void, rule?: string): string[] {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-checks-'));
  try {
    const app = new App({ outdir });
    build(new Stack(app, 'Fixture', { env: { account: '111122223333', region: 'eu-west-1' } }));
    app.synth();
    return new ByocChecks().validateScope(app).violations
      .filter((v) => rule === undefined || v.ruleName === `Byoc-${rule}` || v.ruleName.startsWith(`Byoc-${rule}[`))
      .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`))
      .sort();
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/** An image reference pinned by digest. */
export const PINNED = '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/agent-runtime@sha256:' + 'ab'.repeat(32);
