import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../bin/byoc';
import { projectRoot } from '../../lib/app';
import { contractHash } from '../../lib/boundary-contract';
import { exampleProps, synthCustomerPlane } from '../synth';

/** `byoc review` as a customer runs it: on a synthesized plane, on a signed bundle, and its one-line errors. */
const dirs: string[] = [];
const tmp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`)); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });
const builtCli = path.join(projectRoot(), 'dist', 'bin', 'byoc.js');

async function byoc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => { out += `${a.join(' ')}\n`; });
  const error = jest.spyOn(console, 'error').mockImplementation((...a) => { err += `${a.join(' ')}\n`; });
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((s) => { err += s; return true; });
  try {
    return { code: await main(args), out, err };
  } finally {
    log.mockRestore(); error.mockRestore(); stderr.mockRestore();
  }
}

let assembly: string;
let keys: string;
let bundle: string;
let fingerprint: string;

beforeAll(async () => {
  assembly = synthCustomerPlane(exampleProps(), { 'aws:cdk:enable-path-metadata': true }).outdir;
  keys = tmp('review-keys');
  process.env.BYOC_STATE_DIR = tmp('review-state');
  const k = await byoc('keygen', '--out', keys);
  fingerprint = /fingerprint: (sha256:[0-9a-f]{64})/.exec(k.out)![1];
  bundle = path.join(tmp('review-bundle'), 'b');
  expect((await byoc('sign', assembly, '--key', `${keys}/private.pem`, '--out', bundle, '--version', '2.3.4', '--hub-endpoint', 'tls://hub.vendor.example:7422')).code).toBe(0);
});

test('byoc review writes report.html and report.md and says what it wrote where, in one line', async () => {
  const out = path.join(tmp('review-out'), 'report');
  const r = await byoc('review', assembly, '--out', out);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(new RegExp(`^wrote ${out}/report\\.html and ${out}/report\\.md: review of ${assembly} \\(8 templates, \\d+ IAM roles, \\d+ security-group rules, \\d+ workloads, \\d+ acknowledged findings\\); vendor reaches the database: No network path and no IAM permission lets the vendor reach it\\n$`));
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
  expect(md).toMatch(/^# Security review: customer plane of example\n/);
  expect(html).not.toContain('id="release"');
});

test('with --bundle and --public-key the report adds the verified release: version, signer, every image digest, contract hash', async () => {
  const out = tmp('review-release');
  const r = await byoc('review', bundle, '--out', out, '--bundle', bundle, '--public-key', `${keys}/public.pem`);
  expect(r.code).toBe(0);
  expect(r.out).toContain(', release 2.3.4);');
  const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  const release = JSON.parse(fs.readFileSync(path.join(bundle, 'byoc-release.json'), 'utf8'));
  const section = md.slice(md.indexOf('## Release'), md.indexOf('## Sources'));
  expect(section).toContain('| version | **2.3.4** |');
  expect(section).toContain(`| signer | ed25519 \`${fingerprint}\` |`);
  expect(section).toContain(`verified with the public key ${fingerprint}`);
  expect(section).toContain(`\`${contractHash()}\` (the contract of this kit)`);
  expect(release.images).toHaveLength(3);
  for (const image of release.images) expect(section).toContain(`| \`${image}\` | yes |`);
});

test('without --public-key the release is shown as not verified; a bundle that fails verification is refused in one line', async () => {
  const out = tmp('review-unverified');
  expect((await byoc('review', assembly, '--out', out, '--bundle', bundle)).code).toBe(0);
  expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toContain('| signature | **not verified here** (pass --public-key, or run byoc verify) |');
  const other = tmp('review-other-keys');
  await byoc('keygen', '--out', other);
  const wrong = await byoc('review', assembly, '--out', tmp('review-wrong'), '--bundle', bundle, '--public-key', `${other}/public.pem`);
  expect(wrong.code).toBe(1);
  expect(wrong.err).toMatch(/^byoc: [^\n]*signature[^\n]*\n$/i);
});

test('errors are one line: not an assembly, --public-key without --bundle, a missing --out', async () => {
  const empty = tmp('review-empty');
  expect(await byoc('review', empty, '--out', tmp('review-x'))).toEqual({ code: 1, out: '', err: `byoc: ${empty} is not a cloud assembly (no manifest.json): synthesize first (npm run synth writes cdk.out/customer-plane and cdk.out/control-plane)\n` });
  expect(await byoc('review', assembly, '--out', tmp('review-y'), '--public-key', `${keys}/public.pem`)).toEqual({ code: 1, out: '', err: 'byoc: --public-key verifies a bundle: give --bundle too\n' });
  expect(await byoc('review', assembly)).toEqual({ code: 1, out: '', err: 'byoc: required option \'--out <dir>\' not specified (byoc review --help shows the usage)\n' });
});

test('the built CLI runs it: npx byoc review', () => {
  const out = tmp('review-built');
  const r = spawnSync(process.execPath, [builtCli, 'review', assembly, '--out', out], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^wrote .*report\.html and .*report\.md: review of /);
  expect(fs.readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('<section id="questions">');
});
