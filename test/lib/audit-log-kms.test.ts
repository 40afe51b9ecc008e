import { createPublicKey, generateKeyPairSync, verify as cryptoVerify } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient, VerifyCommand } from '@aws-sdk/client-kms';
import { anchorHeadsFromLines, AuditLogWriter, fetchAnchorHeads, StdoutAnchor, verifyAuditLog } from '../../lib/audit-log';
import { signerFor } from '../../lib/signer';
import { startMoto, MotoServer } from '../servers/moto';

let moto: MotoServer;
const region = 'eu-west-1';
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
let kms: () => KMSClient;
let logs: CloudWatchLogsClient;
const dirs: string[] = [];

const savedNotice = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
beforeAll(async () => {
  // The SDK's notice that its releases after January 2027 need Node.js 22 is not about this test.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  moto = await startMoto();
  kms = () => new KMSClient({ endpoint: moto.endpoint, region, credentials });
  logs = new CloudWatchLogsClient({ endpoint: moto.endpoint, region, credentials });
});
afterAll(async () => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await moto?.stop();
  if (savedNotice === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedNotice;
});

async function createSigningKey(): Promise<{ arn: string; publicKeyPem: string }> {
  const out = await kms().send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'byoc audit heads (test)' }));
  const pub = await kms().send(new GetPublicKeyCommand({ KeyId: out.KeyMetadata!.Arn! }));
  const publicKeyPem = createPublicKey({ key: Buffer.from(pub.PublicKey!), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();
  return { arn: out.KeyMetadata!.Arn!, publicKeyPem };
}

/** A log signed by a KMS key through the AWS SDK, its heads also anchored as stdout lines. */
async function kmsLog(arn: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-audit-kms-'));
  dirs.push(dir);
  const file = path.join(dir, 'audit.log');
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (d) => { text += d; });
  const w = await AuditLogWriter.open({ file, signer: signerFor(arn, kms), anchor: new StdoutAnchor(stdout), headEvery: 8 });
  for (let i = 0; i < 20; i++) {
    const seq = w.intent({ direction: 'out', kind: 'usage', subject: 'byoc.example.out.usage', agent: 'usage-meter', msgId: `m-${i}`, payload: Buffer.from(`{"n":${i}}`) });
    w.outcome(seq, 'delivered');
    await new Promise((r) => setTimeout(r, 5)); // a head started by count is signed (a KMS round trip) meanwhile
    if (i % 5 === 4) await w.head(); // and at least one head per five messages, however slow KMS is
  }
  await w.close();
  return { file, anchorLines: text.trimEnd().split('\n') };
}

test('moto signs ECDSA P-256 verifiably: the signature checks against GetPublicKey, and fails for other data or another key', async () => {
  const { arn, publicKeyPem } = await createSigningKey();
  const data = Buffer.from('{"alg":"ecdsa-p256-sha256","at":"2026-01-01T00:00:00.000Z","hash":"00","seq":1,"type":"head"}');
  const signature = await signerFor(arn, kms).sign(data);
  expect(signature[0]).toBe(0x30); // DER SEQUENCE { r, s }
  expect(cryptoVerify('sha256', data, { key: publicKeyPem, dsaEncoding: 'der' }, signature)).toBe(true);
  expect(cryptoVerify('sha256', Buffer.concat([data, Buffer.from(' ')]), { key: publicKeyPem, dsaEncoding: 'der' }, signature)).toBe(false);
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
  expect(cryptoVerify('sha256', data, { key: other, dsaEncoding: 'der' }, signature)).toBe(false);
  // KMS's own Verify agrees.
  const v = await kms().send(new VerifyCommand({ KeyId: arn, Message: data, MessageType: 'RAW', Signature: signature, SigningAlgorithm: 'ECDSA_SHA_256' }));
  expect(v.SignatureValid).toBe(true);
});

test('heads signed by a KMS key verify with the key\'s public key, and tampering still shows', async () => {
  const { arn, publicKeyPem } = await createSigningKey();
  const { file } = await kmsLog(arn);
  const v = verifyAuditLog(file, { publicKeyPem });
  expect(v).toMatchObject({ intents: 20, outcomes: { delivered: 20 }, unsignedTail: 0, signaturesChecked: true });
  expect(v.heads).toBeGreaterThanOrEqual(2);
  const heads = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'head');
  expect(heads.every((h) => h.head.alg === 'ecdsa-p256-sha256')).toBe(true);

  const other = await createSigningKey();
  expect(() => verifyAuditLog(file, { publicKeyPem: other.publicKeyPem })).toThrow(/the signature of the head at record \d+ does not verify/);
});

test('anchored heads read back from CloudWatch Logs (FilterLogEvents, every page) show a log cut at a signed head', async () => {
  const { arn, publicKeyPem } = await createSigningKey();
  const { file, anchorLines } = await kmsLog(arn);
  const inFile = anchorHeadsFromLines(anchorLines);
  expect(inFile.length).toBeGreaterThanOrEqual(3);

  // What the awslogs driver would ship: the gateway's stdout, one event per line, in its task's stream.
  const logGroupName = '/byoc/example/boundary-gateway';
  await logs.send(new CreateLogGroupCommand({ logGroupName }));
  const put = async (logStreamName: string, messages: string[]) => {
    await logs.send(new CreateLogStreamCommand({ logGroupName, logStreamName }));
    const now = Date.now();
    await logs.send(new PutLogEventsCommand({ logGroupName, logStreamName, logEvents: messages.map((message, i) => ({ timestamp: now + i, message })) }));
  };
  const noise = (i: number) => JSON.stringify({ level: 30, time: i, service: 'boundary-gateway', msg: 'relayed' });
  const half = Math.ceil(anchorLines.length / 2);
  await put('gateway/gateway/task-1', [noise(1), ...anchorLines.slice(0, half), noise(2)]);
  await put('gateway/gateway/task-2', [noise(3), ...anchorLines.slice(half), noise(4)]); // after a restart
  // Another log's head in the same group, outside the prefix asked for.
  const foreign = { ...inFile[inFile.length - 1], seq: 10_000 };
  await put('other/task-9', [JSON.stringify({ auditHead: foreign })]);

  const sort = (hs: typeof inFile) => [...hs].sort((a, b) => a.seq - b.seq);
  const counted = new CloudWatchLogsClient({ endpoint: moto.endpoint, region, credentials });
  let calls = 0;
  counted.middlewareStack.add((next, context) => async (args) => {
    if (context.commandName === 'FilterLogEventsCommand') calls++;
    return next(args);
  }, { step: 'initialize' });
  const fetched = await fetchAnchorHeads({ logGroupName, logStreamNamePrefix: 'gateway/', client: counted, pageSize: 2 });
  expect(sort(fetched)).toEqual(sort(inFile));
  expect(calls).toBeGreaterThan(Math.ceil(inFile.length / 2) - 1); // page after page of two events each
  expect(sort(await fetchAnchorHeads({ logGroupName, client: logs }))).toEqual(sort([...inFile, foreign]));
  expect(verifyAuditLog(file, { publicKeyPem, anchorHeads: fetched })).toMatchObject({ anchoredHeadsChecked: inFile.length });

  // Cut the log right after a head line, before the record the newest anchored head names. Records appended
  // while that head was being signed are an unsigned tail now (accepted here); on its own the log verifies,
  // against the anchor it does not.
  const last = sort(inFile)[inFile.length - 1];
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  const cutAt = Math.max(...lines.flatMap((l, i) => (JSON.parse(l).type === 'head' && i + 1 < last.seq ? [i] : [])));
  fs.writeFileSync(file, `${lines.slice(0, cutAt + 1).join('\n')}\n`);
  expect(verifyAuditLog(file, { publicKeyPem, acceptUnsignedTail: true }).lastSeq).toBe(cutAt + 1);
  expect(() => verifyAuditLog(file, { publicKeyPem, anchorHeads: fetched, acceptUnsignedTail: true }))
    .toThrow(new RegExp(`the log ends at record ${cutAt + 1} but a head anchored at \\S+ names record (\\d+): the log was truncated or rewritten`));
  // Whichever anchored head beyond the cut is named first, it is one the file no longer holds.
  const named = Number(/names record (\d+)/.exec((() => { try { verifyAuditLog(file, { publicKeyPem, anchorHeads: fetched, acceptUnsignedTail: true }); return ''; } catch (e) { return (e as Error).message; } })())![1]);
  expect(named).toBeGreaterThan(cutAt + 1);
  expect(named).toBeLessThanOrEqual(last.seq);
});
