import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../bin/byoc';
import { projectRoot } from '../../lib/app';
import { synthCustomerPlane } from '../synth';

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`));

/** Runs the CLI in-process; returns exit code and what it printed. */
async function byoc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => { out += `${a.join(' ')}\n`; });
  const error = jest.spyOn(console, 'error').mockImplementation((...a) => { err += `${a.join(' ')}\n`; });
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((s) => { out += s; return true; });
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((s) => { err += s; return true; });
  try {
    return { code: await main(args), out, err };
  } finally {
    log.mockRestore(); error.mockRestore(); stdout.mockRestore(); stderr.mockRestore();
  }
}

let keys: string;
let bundle: string;
let state: string;

beforeAll(async () => {
  keys = tmp('keys');
  state = tmp('state');
  process.env.BYOC_STATE_DIR = state;
  expect((await byoc('keygen', '--out', keys)).code).toBe(0);
  bundle = path.join(tmp('bundle'), 'b');
  const signed = await byoc('sign', synthCustomerPlane().outdir, '--key', `${keys}/private.pem`, '--out', bundle, '--version', '1.0.0', '--hub-endpoint', 'tls://hub.vendor.example:7422');
  expect(signed).toMatchObject({ code: 0, out: expect.stringMatching(/^signed .*release 1\.0\.0, 3 images/) });
});

test.each(['keygen', 'pubkey', 'fingerprint', 'sign', 'verify', 'deploy', 'destroy'])('byoc %s --help exits 0 with usage', async (command) => {
  const r = await byoc(command, '--help');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(new RegExp(`Usage: byoc ${command}`));
});

test('verify prints what it verified and exits 0', async () => {
  const r = await byoc('verify', bundle, '--public-key', `${keys}/public.pem`);
  expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/^verified .*release 1\.0\.0, \d+ files, signed by sha256:[0-9a-f]{64}/) });
});

test('a tampered bundle exits 1 with one line naming the file', async () => {
  const copy = path.join(tmp('t'), 'b');
  fs.cpSync(bundle, copy, { recursive: true });
  fs.appendFileSync(path.join(copy, 'manifest.json'), ' ');
  const r = await byoc('verify', copy, '--public-key', `${keys}/public.pem`);
  expect(r).toEqual({ code: 1, out: '', err: 'byoc: file manifest.json was changed after signing (SHA-256 mismatch)\n' });
});

test('usage errors exit non-zero naming the missing option', async () => {
  const r = await byoc('verify', bundle);
  expect(r.code).not.toBe(0);
  expect(r.err).toMatch(/required option '--public-key <file>' not specified/);
});

test('fingerprint matches openssl over the DER public key', async () => {
  const r = await byoc('fingerprint', `${keys}/public.pem`);
  const der = spawnSync('bash', ['-c', `openssl pkey -pubin -in ${keys}/public.pem -outform DER | sha256sum`], { encoding: 'utf8' }).stdout.split(' ')[0];
  expect(r.out.trim()).toBe(`sha256:${der}`);
});

test('deploy verifies a private copy and runs cdk deploy --app on that copy, passing arguments after --', async () => {
  const dry = await byoc('deploy', bundle, '--public-key', `${keys}/public.pem`, '--dry-run', '--', '--require-approval', 'never');
  expect(dry.code).toBe(0);
  const copy = /--app (\S+) --require-approval never/.exec(dry.out)![1];
  expect(copy).not.toBe(bundle);
  expect(fs.existsSync(copy)).toBe(false); // the verified copy is removed afterwards
  // The real CDK CLI, on the verified copy (`--help` keeps it from calling AWS).
  const real = await byoc('deploy', bundle, '--public-key', `${keys}/public.pem`, '--', '--help');
  expect(real.code).toBe(0);
});

test('deploy and destroy refuse a tampered bundle before running cdk', async () => {
  const copy = path.join(tmp('t'), 'b');
  fs.cpSync(bundle, copy, { recursive: true });
  fs.writeFileSync(path.join(copy, 'ByocCustomerPlane.template.json'), '{}');
  for (const action of ['deploy', 'destroy']) {
    const r = await byoc(action, copy, '--public-key', `${keys}/public.pem`, '--dry-run');
    expect(r.code).toBe(1);
    expect(r.out).not.toMatch(/would run/);
    expect(r.err).toMatch(/ByocCustomerPlane\.template\.json was changed/);
  }
});

test('the built CLI runs as `npx byoc` from the project', () => {
  const r = spawnSync('npx', ['--no-install', 'byoc', 'verify', bundle, '--public-key', `${keys}/public.pem`], { cwd: projectRoot(), encoding: 'utf8', env: { ...process.env } });
  expect({ status: r.status, out: r.stdout }).toEqual({ status: 0, out: expect.stringMatching(/^verified /) });
});

test('nats-config writes the configurations the stacks deploy', async () => {
  const out = tmp('nc');
  const r = await byoc('nats-config', '--customer', 'acme', '--out', out, '--no-share-learning');
  expect(r.code).toBe(0);
  const { leafConfig } = await import('../../lib/nats-config');
  expect(fs.readFileSync(path.join(out, 'leaf.conf'), 'utf8')).toBe(leafConfig({ customerId: 'acme', shareLearning: false, listen: { host: '0.0.0.0', port: 4222 }, storeDir: '/data/jetstream' }));
  expect(fs.readFileSync(path.join(out, 'hub.conf'), 'utf8')).toContain('"CUSTOMER_ACME"');
  expect((await byoc('nats-config', '--customer', 'Bad Id', '--out', out)).err).toMatch(/not a valid identifier/);
});

test('audit verify names the first broken entry, exit 1', async () => {
  const { AuditLogWriter } = await import('../../lib/audit-log');
  const file = path.join(tmp('audit'), 'a.log');
  const w = new AuditLogWriter({ file, signingKeyPem: fs.readFileSync(`${keys}/private.pem`, 'utf8'), headEvery: 2 });
  for (let i = 0; i < 4; i++) w.append({ direction: 'out', kind: 'usage', subject: 's', payload: Buffer.from(String(i)) });
  await w.close();
  expect(await byoc('audit', 'verify', file, '--public-key', `${keys}/public.pem`)).toMatchObject({ code: 0, out: expect.stringMatching(/4 entries, 2 signed heads/) });
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  lines.splice(3, 1); // remove entry 3
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  expect(await byoc('audit', 'verify', file, '--public-key', `${keys}/public.pem`)).toEqual({ code: 1, out: '', err: expect.stringMatching(/^byoc: line 4: signed head names entry 3, but the chain is at entry 2\n$|^byoc: line \d+: entry 4 follows entry 2/) });
});
