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

test('destroy lifts the database\'s deletion protection (the instance the verified templates name) before cdk destroy', async () => {
  const dry = await byoc('destroy', bundle, '--public-key', `${keys}/public.pem`, '--dry-run', '--', '--force');
  expect(dry.code).toBe(0);
  const lines = dry.out.split('\n').filter((l) => l.startsWith('would run: '));
  expect(lines[0]).toBe('would run: aws rds modify-db-instance --db-instance-identifier byoc-example-postgres --no-deletion-protection --apply-immediately');
  expect(lines[1]).toBe('would run: aws rds wait db-instance-available --db-instance-identifier byoc-example-postgres');
  expect(lines[2]).toMatch(/^would run: cdk destroy --app \S+ --force$/);
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
  });

  describe('with AWS APIs (moto_server)', () => {
    const saved = { ...process.env };
    let moto: Awaited<ReturnType<typeof import('../servers/moto').startMoto>>;
    beforeAll(async () => {
      moto = await (await import('../servers/moto')).startMoto();
      Object.assign(process.env, moto.env);
    });
    afterAll(async () => {
      process.env = saved;
      await moto?.stop();
    });

    test('pubkey reads a KMS key from the region its ARN names, not the shell\'s default region', async () => {
      const { CreateKeyCommand, GetPublicKeyCommand, KMSClient } = await import('@aws-sdk/client-kms');
      const { signerFor } = await import('../../lib/signer');
      const inEu = new KMSClient({ region: 'eu-west-1' });
      const arn = (await inEu.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.Arn!;
      expect(arn).toMatch(/^arn:aws:kms:eu-west-1:/);
      process.env.AWS_REGION = 'us-east-1';
      try {
        await expect(signerFor(arn).publicKeyPem()).rejects.toThrow(); // a client in the default region does not find it
        const out = path.join(auditTmp('pub'), 'audit-public.pem');
        const r = await byoc('pubkey', '--key', arn, '--out', out);
        expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/public key fingerprint: sha256:[0-9a-f]{64}/) });
        const der = (await inEu.send(new GetPublicKeyCommand({ KeyId: arn }))).PublicKey!;
        expect(fs.readFileSync(out, 'utf8')).toBe(require('crypto').createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
      } finally {
        process.env.AWS_REGION = moto.env.AWS_REGION;
      }
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
