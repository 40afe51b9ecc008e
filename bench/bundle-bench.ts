/**
 * Part of `npm run bench`: time to sign and to verify a bundle of the real customer plane (Ed25519 key),
 * against `sha256sum` over the same files in the same run, the floor any verifier must pay.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { signAssembly, verifyBundle } from '../lib/bundle';
import { generateDevelopmentKeys, signerFor } from '../lib/signer';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3) * 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = async (fn: () => unknown) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-bundle-'));
  const assembly = path.join(work, 'assembly');
  const synth = spawnSync(process.execPath, [path.join(__dirname, 'synth-child.js'), 'customer-plane', assembly], { encoding: 'utf8' });
  if (synth.status !== 0) throw new Error(synth.stderr.slice(-2000));
  const keys = generateDevelopmentKeys(path.join(work, 'keys'));
  const sign: number[] = [];
  const verify: number[] = [];
  const sums: number[] = [];
  let bundle = '';
  for (let i = 0; i < ROUNDS; i++) {
    bundle = path.join(work, `bundle-${i}`);
    sign.push(await time(() => signAssembly(assembly, bundle, signerFor(keys.privateKey), { version: '1.0.0', hubEndpoint: 'tls://hub.example:7422' })));
    verify.push(await time(() => verifyBundle(bundle, keys.publicKey, { stateDir: path.join(work, 'state') })));
    sums.push(await time(() => spawnSync('sha256sum', ['--check', '--quiet', 'SHA256SUMS'], { cwd: bundle })));
  }
  const files = fs.readFileSync(path.join(bundle, 'SHA256SUMS'), 'utf8').trim().split('\n').length;
  const bytes = fs.readFileSync(path.join(bundle, 'SHA256SUMS'), 'utf8').trim().split('\n')
    .reduce((n, l) => n + fs.statSync(path.join(bundle, l.slice(66))).size, 0);
  const base = median(sums);
  console.log(`\nbundle benchmark: real customer plane, ${files} files, ${(bytes / 1024 / 1024).toFixed(2)} MiB, Ed25519, ${ROUNDS} rounds, medians`);
  console.log(`  sha256sum --check (baseline) ${base.toFixed(1).padStart(7)} ms  x1.00`);
  console.log(`  byoc sign                    ${median(sign).toFixed(1).padStart(7)} ms  x${(median(sign) / base).toFixed(2)}`);
  console.log(`  byoc verify                  ${median(verify).toFixed(1).padStart(7)} ms  x${(median(verify) / base).toFixed(2)}`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
