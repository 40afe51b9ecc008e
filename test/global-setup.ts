import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * Jest's global setup: one private temporary folder for the run, made the temp dir (`TMPDIR`) of the workers
 * and of every process a test starts. An `App` built without an `outdir` writes its cloud assembly to a
 * `cdk.out*` folder there (aws-cdk-lib's `FileSystem.mkdtemp`, under `os.tmpdir()`), and the global teardown
 * removes them with the folder. `CDK_OUTDIR` is not the way: when it is set, every `App` also synthesizes
 * itself again when the process exits (`autoSynth`).
 */
export default function globalSetup(): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-jest-'));
  // Traversable by the postgres user, which the PostgreSQL helper runs the server as when the suite runs as root.
  fs.chmodSync(root, 0o755);
  process.env.BYOC_TEST_TMPDIR = root;
  process.env.TMPDIR = root;
}
