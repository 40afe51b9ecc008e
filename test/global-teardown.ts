import * as fs from 'fs';
import * as path from 'path';

/** What aws-cdk-lib leaves in the temp dir: the output folder of each `App` built without an `outdir`. */
const CDK_OUTPUT = /^cdk\.out/;

/**
 * Jest's global teardown: removes the run's temporary folder (see `global-setup.ts`) with the apps' `cdk.out*`
 * folders in it. Anything else a test left there is named on stderr and kept, folder and all, so
 * `scripts/test.sh` fails naming it: a test removes what it creates.
 */
export default function globalTeardown(): void {
  const root = process.env.BYOC_TEST_TMPDIR;
  if (!root || !fs.existsSync(root)) return;
  const left: string[] = [];
  for (const entry of fs.readdirSync(root)) {
    if (CDK_OUTPUT.test(entry)) fs.rmSync(path.join(root, entry), { recursive: true, force: true });
    else left.push(entry);
  }
  if (left.length === 0) {
    fs.rmdirSync(root);
  } else {
    process.stderr.write(`jest: the tests left ${left.length} entries in their temp folder ${root}: ${left.sort().join(', ')}\n`);
  }
}
