import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { errorLine, main } from '../../bin/byoc';
import { projectRoot } from '../../lib/app';
import { synthControlPlane, synthCustomerPlane } from '../synth';

const tmpDirs: string[] = [];
const tmp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`)); tmpDirs.push(d); return d; };
afterAll(() => { for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });
const builtCli = path.join(projectRoot(), 'dist', 'bin', 'byoc.js');

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
let assembly: string;
let bundle: string;
let state: string;

beforeAll(async () => {
  keys = tmp('keys');
  state = tmp('state');
  process.env.BYOC_STATE_DIR = state;
  expect((await byoc('keygen', '--out', keys)).code).toBe(0);
  bundle = path.join(tmp('bundle'), 'b');
  assembly = synthCustomerPlane().outdir;
  const signed = await byoc('sign', assembly, '--key', `${keys}/private.pem`, '--out', bundle, '--version', '1.0.0', '--hub-endpoint', 'tls://hub.vendor.example:7422');
  expect(signed).toMatchObject({ code: 0, out: expect.stringMatching(/^signed .*: release 1\.0\.0 of customer example's plane, 3 images, contract [0-9a-f]{12}, expires \S+, key sha256:[0-9a-f]{64} \(\d+ ms\)\n$/) });
});

test('byoc --version prints the kit\'s version (package.json) and exits 0; so does -V', async () => {
  const version = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')).version;
  expect(await byoc('--version')).toEqual({ code: 0, out: `${version}\n`, err: '' });
  expect(await byoc('-V')).toEqual({ code: 0, out: `${version}\n`, err: '' });
});

test('sign requires --version: a release\'s version is never the kit\'s own', async () => {
  const out = path.join(tmp('nov'), 'b');
  const r = await byoc('sign', assembly, '--key', `${keys}/private.pem`, '--out', out, '--hub-endpoint', 'tls://hub.vendor.example:7422');
  expect(r).toEqual({ code: 1, out: '', err: 'byoc: required option \'--version <version>\' not specified (byoc sign --help shows the usage)\n' });
  expect(fs.existsSync(out)).toBe(false);
});

test('sign refuses the control-plane assembly in one line, and writes nothing', async () => {
  const control = synthControlPlane().outdir;
  const out = path.join(tmp('cp'), 'b');
  const r = await byoc('sign', control, '--key', `${keys}/private.pem`, '--out', out, '--version', '1.0.0', '--hub-endpoint', 'tls://hub.vendor.example:7422');
  expect(r).toEqual({ code: 1, out: '', err: `byoc: ${control} is not a customer-plane assembly: its stack ByocControlPlane has no AgentSecretsPrefix output naming a customer (byoc/<customer>/), which every customer plane has. Sign the customer plane (cdk.out/customer-plane), not the control plane or another app\n` });
  expect(fs.existsSync(out)).toBe(false);
});

test.each(['keygen', 'pubkey', 'fingerprint', 'sign', 'verify', 'diff', 'deploy', 'destroy'])('byoc %s --help exits 0 with usage', async (command) => {
  const r = await byoc(command, '--help');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(new RegExp(`Usage: byoc ${command}`));
});

test('verify prints what it verified and exits 0', async () => {
  const r = await byoc('verify', bundle, '--public-key', `${keys}/public.pem`);
  expect(r).toMatchObject({ code: 0, err: '', out: expect.stringMatching(/^verified \S+: release 1\.0\.0 of customer example's plane, \d+ files, signed by sha256:[0-9a-f]{64}, expires \S+ \(\d+ ms\)\n$/) });
});

test('a tampered bundle exits 1 with one line naming the file', async () => {
  const copy = path.join(tmp('t'), 'b');
  fs.cpSync(bundle, copy, { recursive: true });
  fs.appendFileSync(path.join(copy, 'manifest.json'), ' ');
  const r = await byoc('verify', copy, '--public-key', `${keys}/public.pem`);
  expect(r).toEqual({ code: 1, out: '', err: 'byoc: file manifest.json was changed after signing (SHA-256 mismatch)\n' });
});

test('usage errors exit non-zero with one line naming the problem and where the usage is', async () => {
  expect(await byoc('verify', bundle)).toEqual({ code: 1, out: '', err: 'byoc: required option \'--public-key <file>\' not specified (byoc verify --help shows the usage)\n' });
  expect(await byoc('verify', bundle, '--public-key', `${keys}/public.pem`, '--bogus')).toEqual({ code: 1, out: '', err: 'byoc: unknown option \'--bogus\' (byoc verify --help shows the usage)\n' });
  expect(await byoc('audit', 'verify', '--public-key', `${keys}/public.pem`)).toEqual({ code: 1, out: '', err: 'byoc: missing required argument \'log\' (byoc audit verify --help shows the usage)\n' });
  expect(await byoc('nonsense')).toEqual({ code: 1, out: '', err: 'byoc: unknown command \'nonsense\' (byoc --help shows the usage)\n' });
});

test('an error is one line without a stack trace, also from the built CLI, and exits non-zero', async () => {
  expect(errorLine(new Error('first\n  second'))).toBe('byoc: first second');
  expect(errorLine(new AggregateError([new Error('connect ECONNREFUSED 127.0.0.1:9'), new Error('connect ECONNREFUSED ::1:9')]))).toBe('byoc: connect ECONNREFUSED 127.0.0.1:9; connect ECONNREFUSED ::1:9');
  expect(errorLine(new TypeError(''))).toBe('byoc: TypeError');
  const r = spawnSync(process.execPath, [builtCli, 'verify', path.join(tmp('none'), 'missing'), '--public-key', `${keys}/public.pem`], { encoding: 'utf8' });
  expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: '', stderr: expect.stringMatching(/^byoc: \S+missing is not a folder\n$/) });
});

test('keygen, fingerprint and nats-config end with one line saying what they wrote or checked', async () => {
  const dir = tmp('kg');
  const k = await byoc('keygen', '--out', dir);
  expect(k).toEqual({ code: 0, err: '', out: expect.stringMatching(new RegExp(`^wrote ${dir}/private\\.pem \\(owner-only\\) and ${dir}/public\\.pem: Ed25519, public key fingerprint: sha256:[0-9a-f]{64}\n$`)) });
  const p = await byoc('pubkey', '--key', `${dir}/private.pem`, '--out', `${dir}/again.pem`);
  expect(p).toEqual({ code: 0, err: '', out: `wrote ${dir}/again.pem: the Ed25519 public key of ${dir}/private.pem, public key fingerprint: ${/sha256:[0-9a-f]{64}/.exec(k.out)![0]}\n` });
  const n = await byoc('nats-config', '--customer', 'acme', '--out', dir);
  expect(n.out.trimEnd().split('\n').pop()).toMatch(new RegExp(`^wrote ${dir}/leaf\\.conf: the leaf configuration of customer acme \\(contract [0-9a-f]{12}, \\d+ agents, learning shared\\)$`));
});

test('fingerprint matches openssl over the DER public key', async () => {
  const r = await byoc('fingerprint', `${keys}/public.pem`);
  const der = spawnSync('bash', ['-c', `openssl pkey -pubin -in ${keys}/public.pem -outform DER | sha256sum`], { encoding: 'utf8' }).stdout.split(' ')[0];
  expect(r.out.trim()).toBe(`sha256:${der}`);
});

test('deploy verifies a private copy and runs cdk deploy --app on that copy, passing arguments after --', async () => {
  const dry = await byoc('deploy', bundle, '--public-key', `${keys}/public.pem`, '--dry-run', '--', '--require-approval', 'never');
  expect(dry.code).toBe(0);
  expect(dry.out.trimEnd().split('\n').pop()).toMatch(new RegExp(`^dry run: verified ${bundle}, release 1\\.0\\.0 of customer example's plane \\(\\d+ files, signed by sha256:[0-9a-f]{64}\\); ran nothing$`));
  const copy = /--app (\S+) --require-approval never/.exec(dry.out)![1];
  expect(copy).not.toBe(bundle);
  expect(fs.existsSync(copy)).toBe(false); // the verified copy is removed afterwards
  // The real CDK CLI, on the verified copy (`--help` keeps it from calling AWS), from the built CLI (cdk's output captured).
  const real = spawnSync(process.execPath, [builtCli, 'deploy', bundle, '--public-key', `${keys}/public.pem`, '--', '--help'], { encoding: 'utf8' });
  expect({ status: real.status, stderr: real.stderr }).toEqual({ status: 0, stderr: '' });
  expect(real.stdout).toMatch(/cdk deploy \[STACKS\.\.\]/);
  expect(real.stdout.trimEnd().split('\n').pop()).toMatch(new RegExp(`^deployed release 1\\.0\\.0 of customer example's plane \\(\\d+ files, signed by sha256:[0-9a-f]{64}\\): cdk deploy --help on a verified copy of ${bundle}$`));
});

test('destroy runs only with cdk destroy\'s --force, refusing --require-approval (cdk deploy\'s) before it verifies or runs anything', async () => {
  // Without a terminal, cdk destroy without --force refuses, after byoc has lifted the deletion protection:
  // so byoc checks first, and the plane is never left half-way.
  const approval = await byoc('destroy', bundle, '--public-key', `${keys}/public.pem`, '--', '--require-approval', 'never');
  expect(approval).toEqual({ code: 1, out: '', err: 'byoc: cdk destroy has no --require-approval (that is cdk deploy\'s); destroy without a prompt with: byoc destroy BUNDLE --public-key KEY -- --force\n' });
  const none = await byoc('destroy', bundle, '--public-key', `${keys}/public.pem`);
  expect(none).toEqual({ code: 1, out: '', err: 'byoc: destroy deletes the plane (lifting the database\'s deletion protection first) and runs only without a prompt: pass cdk destroy\'s --force after --, as in byoc destroy BUNDLE --public-key KEY -- --force\n' });
  for (const force of ['--force', '-f']) expect((await byoc('destroy', bundle, '--public-key', `${keys}/public.pem`, '--dry-run', '--', force)).code).toBe(0);
  // What the README's customer flow documents.
  const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
  expect(readme).toContain('npx byoc destroy bundle/ --public-key vendor-public.pem -- --force');
  expect(readme).not.toMatch(/byoc destroy[^\n]*--require-approval/);
  expect((await byoc('destroy', '--help')).out).toMatch(/e\.g\. -- --force/);
});

test('destroy lifts the database\'s deletion protection (the instance the verified templates name) before cdk destroy', async () => {
  const dry = await byoc('destroy', bundle, '--public-key', `${keys}/public.pem`, '--dry-run', '--', '--force');
  expect(dry.code).toBe(0);
  const lines = dry.out.split('\n').filter((l) => l.startsWith('would run: '));
  expect(lines[0]).toBe('would run: aws rds modify-db-instance --db-instance-identifier byoc-example-postgres --no-deletion-protection --apply-immediately');
  expect(lines[1]).toBe('would run: aws rds wait db-instance-available --db-instance-identifier byoc-example-postgres');
  expect(lines[2]).toMatch(/^would run: cdk destroy --app \S+ --force$/);
  expect(dry.out.trimEnd().split('\n').pop()).toMatch(/^dry run: verified \S+, release 1\.0\.0 of customer example's plane .*; ran nothing$/);
});

test('deploy and destroy refuse a tampered bundle before running cdk', async () => {
  const copy = path.join(tmp('t'), 'b');
  fs.cpSync(bundle, copy, { recursive: true });
  fs.writeFileSync(path.join(copy, 'ByocCustomerPlane.template.json'), '{}');
  for (const action of ['deploy', 'destroy']) {
    const r = await byoc(action, copy, '--public-key', `${keys}/public.pem`, '--dry-run', ...(action === 'destroy' ? ['--', '--force'] : []));
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
  const { AGENT_CATALOG } = await import('../../agents/catalog');
  const { agentIdentities } = await import('../../lib/nats-config');
  const settings = { customerId: 'acme', shareLearning: false };
  expect(fs.readFileSync(path.join(out, 'leaf.conf'), 'utf8')).toBe(leafConfig({ ...settings, agents: agentIdentities(AGENT_CATALOG, settings), listen: { host: '0.0.0.0', port: 4222 }, storeDir: '/data/jetstream',
    hubCaFile: '/tmp/hub-ca.pem', hub: { host: 'hub.byoc.vendor.example', port: 7422 }, hubCredentialsFile: '/tmp/hub.creds' }));
  expect((await byoc('nats-config', '--customer', 'acme', '--out', out, '--hub', 'nohost')).err).toMatch(/--hub nohost is not host:port/);
  expect((await byoc('nats-config', '--customer', 'Bad Id', '--out', out)).err).toMatch(/not a valid identifier/);
});

describe('audit verify', () => {
  const dirs: string[] = [];
  const auditTmp = (p: string) => { const d = tmp(p); dirs.push(d); return d; };
  afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
  let auditKeys: string;
  beforeAll(async () => {
    auditKeys = auditTmp('audit-keys');
    expect((await byoc('keygen', '--out', auditKeys, '--force')).code).toBe(0);
  });

  /**
   * A log signed with the test key, a head after every 3 messages (records 6, 13, 20, 27; 28 records in all);
   * its heads also go, as the gateway's stdout would carry them, to `anchor`.
   */
  async function auditLog(messages = 12) {
    const { AuditLogWriter, StdoutAnchor } = await import('../../lib/audit-log');
    const { signerFor } = await import('../../lib/signer');
    const dir = auditTmp('audit');
    const file = path.join(dir, 'a.log');
    const anchor = path.join(dir, 'anchor.jsonl');
    const out = fs.createWriteStream(anchor);
    const w = await AuditLogWriter.open({ file, signer: signerFor(`${auditKeys}/private.pem`), headEvery: 1000, anchor: new StdoutAnchor(out) });
    for (let i = 0; i < messages; i++) {
      const seq = w.intent({ direction: 'out', kind: 'usage', subject: 'byoc.example.out.usage', agent: 'usage-meter', msgId: `m-${i}`, payload: Buffer.from(String(i)) });
      w.outcome(seq, i === 5 ? 'failed' : 'delivered');
      if (i % 3 === 2) await w.head();
    }
    await w.close();
    await new Promise((r) => out.end(r));
    const lines = () => fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    const rewrite = (ls: string[]) => fs.writeFileSync(file, ls.length ? `${ls.join('\n')}\n` : '');
    return { file, anchor, lines, rewrite };
  }
  const verify = (file: string, ...more: string[]) => byoc('audit', 'verify', file, '--public-key', `${auditKeys}/public.pem`, ...more);

  test('exits 0 saying what it verified; a removed record exits 1 naming the line', async () => {
    const log = await auditLog();
    expect(await verify(log.file, '--anchor-file', log.anchor)).toEqual({
      code: 0, err: '',
      out: `verified ${log.file}: 28 records to record 28, 4 signed heads; 12 intents (11 delivered, 0 unconfirmed, 1 failed, 0 unknown, 0 open), 0 rejections, 0 notes; 4 anchored heads match\n`,
    });
    expect((await verify(log.file)).out).toMatch(/; no anchor given \(--anchor-file, --anchor-log-group\): a log cut at a signed head would not show\n$/);
    const ls = log.lines();
    ls.splice(2, 1);
    log.rewrite(ls);
    expect(await verify(log.file)).toEqual({ code: 1, out: '', err: 'byoc: line 3: record 4 follows record 2: records 3..3 were removed\n' });
  });

  test('requires --public-key: a log whose signatures are not checked proves nothing', async () => {
    const log = await auditLog(2);
    const r = await byoc('audit', 'verify', log.file);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/required option '--public-key <file>' not specified/);
  });

  test('a log cut at a signed head exits 0 on its own and 1 against the anchor', async () => {
    const log = await auditLog();
    const ls = log.lines();
    const heads = ls.flatMap((l, i) => (JSON.parse(l).type === 'head' ? [i] : []));
    log.rewrite(ls.slice(0, heads[heads.length - 2] + 1));
    expect((await verify(log.file)).code).toBe(0);
    const r = await verify(log.file, '--anchor-file', log.anchor);
    expect(r).toEqual({ code: 1, out: '', err: expect.stringMatching(/^byoc: the log ends at record 21 but a head anchored at \S+ names record 27: the log was truncated or rewritten\n$/) });
  });

  test('an unsigned tail exits 1 unless --accept-unsigned-tail; no signed head or an empty file exits 1', async () => {
    const log = await auditLog();
    const ls = log.lines();
    log.rewrite(ls.slice(0, 17)); // records 15..17 come after the head over record 13 (line 14)
    expect(await verify(log.file)).toEqual({ code: 1, out: '', err: expect.stringMatching(/^byoc: line 15: 3 records after record 13 \(the last one a signed head covers\) are not signed: .*pass --accept-unsigned-tail/) });
    expect(await verify(log.file, '--accept-unsigned-tail')).toMatchObject({ code: 0, out: expect.stringMatching(/; 3 records after the last signed head \(accepted\)\n$/) });
    log.rewrite(ls.slice(0, 6)); // before the first head
    expect(await verify(log.file, '--accept-unsigned-tail')).toEqual({ code: 1, out: '', err: 'byoc: no signed head: nothing in this log is signed\n' });
    log.rewrite([]);
    expect(await verify(log.file)).toEqual({ code: 1, out: '', err: `byoc: ${log.file} is empty: no record, nothing signed\n` });
    expect(await verify(log.file, '--accept-unsigned-tail')).toEqual({ code: 1, out: '', err: `byoc: ${log.file} is empty: no record, nothing signed\n` });
  });

  test('signed heads deleted after some point exit 1 even with --accept-unsigned-tail, unless the last head is recent', async () => {
    const log = await auditLog();
    // Drop every head after the first, and rebuild the chain without them (no key is needed for that).
    const { createHash } = await import('crypto');
    const canonicalize = (await import('canonicalize')).default;
    const records = log.lines().map((l) => JSON.parse(l));
    const first = records.findIndex((r) => r.type === 'head');
    const kept = [...records.slice(0, first + 1), ...records.slice(first + 1).filter((r) => r.type !== 'head')];
    const seqOf = new Map(kept.map((r, i) => [r.seq, i + 1]));
    let prev = '0'.repeat(64);
    log.rewrite(kept.map((r, i) => {
      if (i > first) {
        if (r.type === 'outcome') r.intent = seqOf.get(r.intent);
        r.seq = seqOf.get(r.seq);
        r.prev = prev;
        delete r.hash;
        r.hash = createHash('sha256').update(canonicalize(r)!).digest('hex');
      }
      prev = r.hash;
      return JSON.stringify(r);
    }));
    const headAt = records[first].head.at as string;
    const tenMinutesLater = new Date(Date.parse(headAt) + 600000).toISOString();
    const r = await verify(log.file, '--accept-unsigned-tail', '--at', tenMinutesLater);
    expect(r).toEqual({ code: 1, out: '', err: `byoc: line ${first + 2}: 18 records after record 6 (the last one a signed head covers) are not signed, and that head was signed at ${headAt}, 600 s before ${tenMinutesLater}: a running gateway signs one at least every minute while records are added, so signed heads after it were deleted (or the gateway stopped without its final head: restart it and verify after its next head). An unsigned tail is accepted only after a head at most 120 s old\n` });
    // A gateway signing every 10 minutes (BYOC_AUDIT_HEAD_SECONDS=600) gives a window of 20 minutes.
    expect(await verify(log.file, '--accept-unsigned-tail', '--at', tenMinutesLater, '--head-seconds', '600')).toMatchObject({ code: 0, out: expect.stringMatching(/; 18 records after the last signed head \(accepted\)\n$/) });
    expect((await verify(log.file, '--head-seconds', '0')).err).toBe('byoc: --head-seconds 0 is not a positive number of seconds\n');
  });

  describe('with AWS APIs (moto_server)', () => {
    const saved = { ...process.env };
    let moto: Awaited<ReturnType<typeof import('../servers/moto').startMoto>>;
    beforeAll(async () => {
      moto = await (await import('../servers/moto')).startMoto();
      // The SDK's notice that its releases after January 2027 need Node.js 22 is not about these tests (the CLI turns it off too).
      Object.assign(process.env, moto.env, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
    });
    afterAll(async () => {
      process.env = saved;
      await moto?.stop();
    });

    test('pubkey and sign use a KMS key in the region its ARN names, not the shell\'s default region', async () => {
      const { CreateKeyCommand, GetPublicKeyCommand, KMSClient } = await import('@aws-sdk/client-kms');
      const inEu = new KMSClient({ region: 'eu-west-1' });
      const arn = (await inEu.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.Arn!;
      expect(arn).toMatch(/^arn:aws:kms:eu-west-1:/);
      process.env.AWS_REGION = 'us-east-1';
      try {
        await expect(new KMSClient({}).send(new GetPublicKeyCommand({ KeyId: arn }))).rejects.toThrow(/does not exist/); // not in the default region
        const out = path.join(auditTmp('pub'), 'audit-public.pem');
        const r = await byoc('pubkey', '--key', arn, '--out', out);
        expect(r).toEqual({ code: 0, err: '', out: expect.stringMatching(new RegExp(`^wrote ${out}: the ECDSA P-256 public key of KMS key ${arn} \\(read in eu-west-1\\), public key fingerprint: sha256:[0-9a-f]{64}\n$`)) });
        const der = (await inEu.send(new GetPublicKeyCommand({ KeyId: arn }))).PublicKey!;
        expect(fs.readFileSync(out, 'utf8')).toBe(require('crypto').createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
        const signed = path.join(auditTmp('kms-bundle'), 'b');
        const s = await byoc('sign', assembly, '--key', arn, '--out', signed, '--version', '1.0.1', '--hub-endpoint', 'tls://hub.vendor.example:7422');
        expect(s).toMatchObject({ code: 0, err: '', out: expect.stringMatching(/^signed .*: release 1\.0\.1 of customer example's plane/) });
      } finally {
        process.env.AWS_REGION = moto.env.AWS_REGION;
      }
    });

    test('an AWS error from the built CLI is one line, without the SDK\'s Node.js notice or a stack', () => {
      const missing = 'arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000';
      const env = { ...process.env };
      delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
      const r = spawnSync(process.execPath, [builtCli, 'pubkey', '--key', missing, '--out', path.join(auditTmp('x'), 'k.pem')], { encoding: 'utf8', env });
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: '', stderr: expect.stringMatching(/^byoc: [^\n]*does not exist[^\n]*\n$/) });
    });

    test('--anchor-log-group reads the heads back from CloudWatch Logs', async () => {
      const { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } = await import('@aws-sdk/client-cloudwatch-logs');
      const log = await auditLog();
      const client = new CloudWatchLogsClient({});
      const logGroupName = '/byoc/example/gateway';
      await client.send(new CreateLogGroupCommand({ logGroupName }));
      await client.send(new CreateLogStreamCommand({ logGroupName, logStreamName: 'gateway/gateway/task-1' }));
      const messages = [JSON.stringify({ level: 30, msg: 'ready' }), ...fs.readFileSync(log.anchor, 'utf8').trimEnd().split('\n')];
      await client.send(new PutLogEventsCommand({ logGroupName, logStreamName: 'gateway/gateway/task-1', logEvents: messages.map((message, i) => ({ timestamp: Date.now() + i, message })) }));
      expect(await verify(log.file, '--anchor-log-group', logGroupName)).toMatchObject({ code: 0, out: expect.stringMatching(/; 4 anchored heads match\n$/) });
      const ls = log.lines();
      const heads = ls.flatMap((l, i) => (JSON.parse(l).type === 'head' ? [i] : []));
      log.rewrite(ls.slice(0, heads[heads.length - 2] + 1));
      expect(await verify(log.file, '--anchor-log-group', logGroupName)).toEqual({ code: 1, out: '', err: expect.stringMatching(/^byoc: the log ends at record 21 but a head anchored at \S+ names record 27: the log was truncated/) });
      expect(await verify(log.file, '--anchor-log-group', '/byoc/example/nothing-here')).toMatchObject({ code: 1, err: expect.stringMatching(/^byoc: /) });
    });
  });
});
