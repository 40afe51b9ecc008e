/**
 * `npm run bench`: synth time of each app against an empty CDK app on the same path (compiled JS, a fresh
 * process, built-in validation and every nag pack on, as `npm run synth`), measured interleaved in the same
 * run so machine noise hits all alike. Prints medians, the ratio to the empty app, peak memory and
 * resources per stack.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const KINDS = ['empty', 'customer-plane', 'control-plane', 'customer-plane-60'];

interface Sample { kind: string; ms: number; maxRssMiB: number; resources: Record<string, number> }

function run(kind: string): Sample {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${kind}-`));
  const child = spawnSync(process.execPath, [path.join(__dirname, 'synth-child.js'), kind, outdir], { encoding: 'utf8', env: { ...process.env } });
  fs.rmSync(outdir, { recursive: true, force: true });
  if (child.status !== 0) throw new Error(`${kind} failed:\n${child.stderr.slice(-2000)}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const samples: Record<string, Sample[]> = Object.fromEntries(KINDS.map((k) => [k, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const kind of KINDS) samples[kind].push(run(kind));
}

const baseline = median(samples.empty.map((s) => s.ms));
console.log(`synth benchmark: ${ROUNDS} rounds, medians, validation on, ${os.cpus().length} cores`);
console.log('app                    time (s)  x empty  peak RSS (MiB)  stacks  resources per stack (max)');
for (const kind of KINDS) {
  const s = samples[kind];
  const ms = median(s.map((x) => x.ms));
  const rss = Math.max(...s.map((x) => x.maxRssMiB));
  const counts = Object.values(s[0].resources);
  console.log(`${kind.padEnd(22)} ${(ms / 1000).toFixed(2).padStart(8)}  ${(ms / baseline).toFixed(2).padStart(7)}  ${rss.toFixed(0).padStart(14)}  ${String(counts.length).padStart(6)}  ${Math.max(...counts)}`);
}
for (const kind of KINDS.filter((k) => k !== 'empty')) {
  console.log(`\n${kind}: resources per stack`);
  for (const [file, n] of Object.entries(samples[kind][0].resources)) console.log(`  ${String(n).padStart(4)}  ${file}`);
}
