import { ChildProcess, spawn } from 'child_process';
import { contractJson } from '../../lib/contract-input';
import { generateKeyPairSync, KeyObject, sign as cryptoSign } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { DynamoDBClient, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser, decode, encodeUser, fromSeed, parseCreds } from '@nats-io/jwt';
import { headers as natsHeaders, jwtAuthenticator, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { projectRoot } from '../../lib/app';
import { BOUNDARY_CONTRACT, MessageKind } from '../../lib/boundary-contract';
import { BUNDLE_FORMAT } from '../../lib/bundle';
import { canonicalBytes, signedBody } from '../../lib/contract-validator';
import { customerSecretNames, CustomerRecord, formatJson } from '../../lib/customers';
import { hubAuthConfig } from '../../lib/nats-auth';
import { HUB_INGEST_STREAM, hubJwtConfig } from '../../lib/nats-config';
import {
  createIngestTables, formatCancelledAt, INGEST_BUNDLE, INGEST_DURABLE, INGEST_ENV, IngestStore, IngestTables, REGISTRY_TAGS, TABLE_ENV,
} from '../../control-plane/ingest';
import { isServed } from '../../control-plane/ingest/retention';
import { MotoServer, startMoto } from '../servers/moto';
import { freePort, NatsServer, startNats } from '../servers/nats';
import { CustomerLeaf, OperatorHub, startOperatorHub, waitFor } from '../servers/operator-hub';

/**
 * The ingest service as ECS runs it: the built bundle (`dist/control-plane/byoc-ingest.js`) as its own process,
 * configured by environment variables only, against a real operator-mode nats-server 2.9 hub and moto_server
 * (registry in Secrets Manager, tables in DynamoDB). Customers are registered, given their audit key and revoked
 * with the real `byoc customer` commands while it runs; their leaves send through the link.
 */

const BUNDLE = path.join(projectRoot(), 'dist', 'control-plane', INGEST_BUNDLE);
const CLI = path.join(projectRoot(), 'dist', 'bin', 'byoc.js');
const ENDPOINT_SERVICE = 'com.amazonaws.vpce.eu-west-1.vpce-svc-0a1b2c3d4e5f60718';
const EXAMPLE = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8'));
const METRICS = BOUNDARY_CONTRACT.kinds.find((k) => k.name === 'metrics')! as MessageKind;
const T0 = 1767225600000;
const ACCOUNTS: Record<string, string> = { acme: '123456789012', beta: '210987654321', gamma: '111111111111' };
const tables: IngestTables = { usage: 'usage', metrics: 'metrics', workflow: 'workflow', learningPool: 'learning-pool', rejections: 'rejections' };

let moto: MotoServer;
let hub: OperatorHub;
let sm: SecretsManagerClient;
let ddb: DynamoDBClient;
let dir: string;
let vendorConfig: string;
let outputs: string;
let release: string;
let systemCreds: string;
const leaves: Record<string, CustomerLeaf> = {};
const connections: NatsConnection[] = [];
const keys = Object.fromEntries(Object.keys(ACCOUNTS).map((c) => [c, generateKeyPairSync('ec', { namedCurve: 'prime256v1' })]));
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let o = '';
    let e = '';
    child.stdout.on('data', (d) => { o += d; });
    child.stderr.on('data', (d) => { e += d; });
    child.on('close', (code) => resolve({ code: code ?? -1, out: o, err: e }));
  });
}
const awsEnv = () => ({ ...process.env, ...moto.env, NODE_NO_WARNINGS: '1' });
const byoc = (...args: string[]) => run(process.execPath, [CLI, ...args], awsEnv());
const hubFlags = () => ['--hub-url', `nats://127.0.0.1:${hub.hubPort}`, '--system-creds', systemCreds];

/** `byoc customer add` as the vendor runs it, with the customer's audit public key when given. */
async function add(customer: string, auditKey?: KeyObject): Promise<void> {
  const extra: string[] = [];
  if (auditKey) {
    const file = path.join(dir, `${customer}-audit.pem`);
    fs.writeFileSync(file, pem(auditKey));
    extra.push('--audit-public-key', file);
  }
  const r = await byoc('customer', 'add', '--customer', customer, '--account', ACCOUNTS[customer], '--vendor-config', vendorConfig, '--out', path.join(dir, 'customers'),
    '--control-plane-outputs', outputs, '--release', release, ...hubFlags(), ...extra);
  if (r.code !== 0) throw new Error(`byoc customer add ${customer} failed: ${r.err}`);
}

const secret = async (id: string) => (await sm.send(new GetSecretValueCommand({ SecretId: id }))).SecretString!;

/** The customer's leaf node with the .creds handed over at registration. */
async function leaf(customer: string): Promise<CustomerLeaf> {
  const creds = await secret(customerSecretNames(customer).leafCreds);
  const { jwt, key } = await parseCreds(new TextEncoder().encode(creds));
  const l = await hub.leaf(customer, { credentials: { creds, jwt, seed: key, publicKey: decode(jwt).sub } });
  await waitFor(() => l.connected(), 15000, `${customer}'s leaf linked`);
  leaves[customer] = l;
  return l;
}

let msgId = 0;
/** Publishes as the customer's gateway on its leaf, through the link, and waits for the hub stream's acknowledgement. */
async function send(customer: string, kind: string, payload: Uint8Array): Promise<void> {
  const h = natsHeaders();
  h.set('Nats-Msg-Id', `${customer}:${++msgId}`);
  const reply = await (await leaves[customer].gateway()).request(`byoc.${customer}.out.${kind}`, payload, { headers: h, timeout: 5000 });
  if (typeof JSON.parse(reply.string()).seq !== 'number') throw new Error(`no stream acknowledgement: ${reply.string()}`);
}
const usage = (agent: string, invocations = 1) => canonicalBytes({ periodStart: T0, periodEnd: T0 + 300000, agent, invocations, computeSeconds: 2, llmTokensIn: 3, llmTokensOut: 4 });
/** A metrics window signed as the gateway signs it with the audit KMS key (ECDSA P-256, r||s). */
function metrics(agent: string, key: KeyObject): Uint8Array {
  const body = { windowStart: T0, windowEnd: T0 + 60000, points: [{ metric: 'agent.requests', agent, value: 7 }] };
  const signature = cryptoSign('sha256', signedBody(METRICS, body), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return canonicalBytes({ ...body, signature });
}
const usageOf = async (customer: string) => ((await ddb.send(new QueryCommand({
  TableName: tables.usage, KeyConditionExpression: 'customerId = :c', ExpressionAttributeValues: { ':c': { S: customer } },
}))).Items ?? []).map((i) => [i.agent.S, Number(i.invocations.N)]);
const metricsOf = async (customer: string) => ((await ddb.send(new ScanCommand({ TableName: tables.metrics }))).Items ?? [])
  .filter((i) => i.customerId.S === customer).map((i) => [i.agent.S, Number(i.value.N)]);
const rejectionsOf = async (customer: string) => Object.fromEntries(((await ddb.send(new QueryCommand({
  TableName: tables.rejections, KeyConditionExpression: 'customerId = :c', ExpressionAttributeValues: { ':c': { S: customer } },
}))).Items ?? []).filter((i) => i.entry.S!.startsWith('count#'))
  // moto's threads apply a transaction's ADD in steps: a reader can see the counter's key before its count (0 until then).
  .map((i) => [i.entry.S!.slice(6), Number(i.count?.N ?? 0)]));

/** Test-only: a user of the customer's vendor account without the role's restrictions (signed by the account's identity key). */
async function vendorObserver(customer: string): Promise<NatsConnection> {
  const record: CustomerRecord = JSON.parse(await secret(customerSecretNames(customer).account));
  const user = createUser();
  const jwt = await encodeUser('test-observer', user, fromSeed(new TextEncoder().encode(record.keys.vendor.seed)));
  const nc = await connect({ servers: `127.0.0.1:${hub.hubPort}`, authenticator: jwtAuthenticator(jwt, user.getSeed()), maxReconnectAttempts: 0 });
  connections.push(nc);
  return nc;
}

/** The running service: its process, its log lines (JSON), its health endpoint. */
class Ingest {
  public readonly lines: any[] = [];
  public raw = '';
  public readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(public readonly healthPort: number, env: Record<string, string>) {
    this.child = spawn(process.execPath, [BUNDLE], { env: { ...awsEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    const take = (d: Buffer) => {
      this.raw += d;
      buffer += d;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.lines.push({ unparsed: line });
        }
      }
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  public health(): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: this.healthPort, path: '/healthz' }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
      }).on('error', reject);
    });
  }

  public async state(customer: string): Promise<string | undefined> {
    try {
      return (await this.health()).body.customers[customer]?.state;
    } catch {
      return undefined;
    }
  }

  public kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null) this.child.kill(signal);
  }
}

const ingestEnv = (healthPort: number): Record<string, string> => ({
  [INGEST_ENV.hubUrls]: `nats://127.0.0.1:${hub.hubPort}`,
  [INGEST_ENV.refreshSeconds]: '1',
  [INGEST_ENV.healthPort]: String(healthPort),
  ...Object.fromEntries((Object.keys(TABLE_ENV) as (keyof IngestTables)[]).map((role) => [TABLE_ENV[role], tables[role]])),
});

beforeAll(async () => {
  [moto, hub] = await Promise.all([startMoto(), startOperatorHub()]);
  const aws = { endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  sm = new SecretsManagerClient(aws);
  ddb = new DynamoDBClient(aws);
  await createIngestTables(ddb, tables);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-ingest-main-'));
  const example = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8'));
  example.hub.operatorJwt = hub.operator.operator.jwt;
  example.hub.systemAccountPublicKey = hub.operator.systemAccount.publicKey;
  example.hub.systemAccountJwt = hub.operator.systemAccount.jwt;
  example.hub.tls.caCertificateFile = hub.certificates.ca;
  vendorConfig = path.join(dir, 'vendor.json');
  fs.writeFileSync(vendorConfig, formatJson(example));
  const seedSecret = await sm.send(new CreateSecretCommand({ Name: 'byoc/hub/operator-signing-seed', SecretString: hub.operator.operator.seed }));
  outputs = path.join(dir, 'outputs.json');
  fs.writeFileSync(outputs, JSON.stringify({ ByocControlPlane: { HubEndpointServiceName: ENDPOINT_SERVICE, OperatorSigningSeedSecretArn: seedSecret.ARN } }));
  release = path.join(dir, 'byoc-release.json');
  fs.writeFileSync(release, JSON.stringify({ format: BUNDLE_FORMAT, version: '1.4.0', images: Object.values(EXAMPLE.images).sort() }));
  systemCreds = path.join(dir, 'system.creds');
  fs.writeFileSync(systemCreds, hub.operator.systemUser.creds, { mode: 0o600 });
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
  await Promise.all(Object.values(leaves).map((l) => l.stop()));
  await hub?.stop();
  sm?.destroy();
  ddb?.destroy();
  await moto?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the ingest service\'s entry point, run as a process and fed by byoc customer', () => {
  let ingest: Ingest;

  afterAll(async () => {
    ingest?.kill('SIGKILL');
    await ingest?.exited;
  });

  test('starts with the registry as it is: a registered customer is consumed, one without an audit key waits', async () => {
    await add('acme', keys.acme.publicKey);
    await add('beta');
    await Promise.all([leaf('acme'), leaf('beta')]);
    // beta crosses before its audit key is registered: the message waits in its stream.
    await send('beta', 'usage', usage('early-beta-agent', 5));

    const port = await freePort();
    ingest = new Ingest(port, ingestEnv(port));
    await waitFor(() => ingest.lines.some((l) => l.msg === 'ready'), 20000, 'the service ready');
    const h = await ingest.health();
    expect(h).toEqual({ status: 200, body: { status: 'ok', registryReadSecondsAgo: expect.any(Number), customers: { acme: { state: 'consuming' } }, awaitingAuditKey: ['beta'], invalid: [] } });
    expect(ingest.lines.find((l) => l.msg === 'ready')).toMatchObject({ customers: 1, refreshSeconds: 1 });
    expect(ingest.lines.some((l) => l.msg?.startsWith('registered without an audit public key') && l.customers?.includes('beta'))).toBe(true);
  });

  test('what a customer\'s leaf sends is stored; a metrics window must verify with the registered audit key', async () => {
    await send('acme', 'usage', usage('marker-agent-acme', 12));
    await send('acme', 'metrics', metrics('marker-agent-acme', keys.acme.privateKey));
    await send('acme', 'metrics', metrics('forged-agent', keys.gamma.privateKey));
    await waitFor(async () => (await usageOf('acme')).length === 1 && (await metricsOf('acme')).length === 1 && (await rejectionsOf('acme'))['bad-signature'] === 1, 15000, 'acme\'s crossings stored');
    expect(await usageOf('acme')).toEqual([['marker-agent-acme', 12]]);
    expect(await metricsOf('acme')).toEqual([['marker-agent-acme', 7]]);
    expect(await usageOf('beta')).toEqual([]);
  });

  test('registered while it runs, without a restart: a new customer gets its consumer, and one whose audit key arrives gets its waiting crossings stored', async () => {
    await add('gamma', keys.gamma.publicKey);
    await waitFor(async () => (await ingest.state('gamma')) === 'consuming', 15000, 'gamma consumed');
    await leaf('gamma');
    await send('gamma', 'usage', usage('marker-agent-gamma', 3));
    await waitFor(async () => (await usageOf('gamma')).length === 1, 15000, 'gamma\'s usage stored');
    expect(await usageOf('gamma')).toEqual([['marker-agent-gamma', 3]]);

    await add('beta', keys.beta.publicKey);
    await waitFor(async () => (await ingest.state('beta')) === 'consuming', 15000, 'beta consumed');
    await waitFor(async () => (await usageOf('beta')).length === 1, 15000, 'beta\'s waiting usage stored');
    expect(await usageOf('beta')).toEqual([['early-beta-agent', 5]]);
    expect((await ingest.health()).body.awaitingAuditKey).toEqual([]);
    expect(ingest.lines.filter((l) => l.msg === 'customer added').map((l) => l.customer)).toEqual(['acme', 'gamma', 'beta']);
    expect(ingest.lines.filter((l) => l.msg === 'ready')).toHaveLength(1);
  });

  test('a revoked customer loses its consumer without a restart: what reaches its stream afterwards stays there', async () => {
    const r = await byoc('customer', 'revoke', '--customer', 'acme', '--vendor-config', vendorConfig, ...hubFlags(), '--reason', 'contract ended');
    expect(r.code).toBe(0);
    await waitFor(async () => (await ingest.state('acme')) === 'revoked', 15000, 'acme\'s consumer stopped');
    expect(ingest.lines.find((l) => l.msg === 'customer revoked')).toMatchObject({ customer: 'acme', change: 'revoked', state: { state: 'revoked' } });
    // The hub already cut acme's leaf off; a message put into its stream another way is no longer consumed.
    const observer = await vendorObserver('acme');
    await jetstream(observer).publish('byoc.acme.out.usage', usage('after-revocation', 1));
    const pending = async () => (await (await jetstreamManager(observer)).consumers.info(HUB_INGEST_STREAM, INGEST_DURABLE)).num_pending;
    await new Promise((resolve) => setTimeout(resolve, 3500));
    expect(await pending()).toBe(1);
    expect(await usageOf('acme')).toEqual([['marker-agent-acme', 12]]);
    // The others go on.
    await send('gamma', 'usage', usage('marker-agent-gamma', 4));
    await waitFor(async () => JSON.stringify(await usageOf('gamma')) === JSON.stringify([['marker-agent-gamma', 4]]), 15000, 'gamma still consumed');
    expect((await ingest.health()).body.customers).toEqual({ acme: { state: 'revoked' }, beta: { state: 'consuming' }, gamma: { state: 'consuming' } });
  });

  test('SIGTERM: drains and exits 0; the log never held a payload or a credential', async () => {
    ingest.kill('SIGTERM');
    expect(await ingest.exited).toBe(0);
    const stopped = ingest.lines.find((l) => l.msg === 'stopped');
    expect(stopped.counters.gamma.accepted).toEqual({ usage: 2 });
    expect(stopped.counters.beta.accepted).toEqual({ usage: 1 });
    expect(ingest.lines.filter((l) => l.unparsed !== undefined)).toEqual([]);
    for (const marker of ['marker-agent', 'early-beta-agent', 'forged-agent', 'after-revocation', 'BEGIN NATS', 'BEGIN PUBLIC KEY']) expect(ingest.raw).not.toContain(marker);
    expect(ingest.raw).not.toMatch(/SU[A-Z2-7]{56}/);
    for (const c of Object.keys(ACCOUNTS)) {
      const ingestCreds = JSON.parse(await secret(customerSecretNames(c).ingest)).creds as string;
      expect(ingest.raw).not.toContain((await parseCreds(new TextEncoder().encode(ingestCreds))).jwt);
    }
    await expect(ingest.health()).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('over TLS to the hub\'s client port, verifying the vendor CA, as the hub nodes serve it', () => {
  let tlsHub: NatsServer;
  let port: number;
  const started: Ingest[] = [];

  beforeAll(async () => {
    // The operator-mode hub with TLS required on the client port too (what control-plane/hub-config.ts adds), same operator.
    const hubDir = fs.mkdtempSync(path.join(dir, 'tls-hub-'));
    fs.mkdirSync(path.join(hubDir, 'resolver'));
    port = await freePort();
    const { cert, key } = hub.certificates;
    const conf = hubJwtConfig({
      listen: { host: '127.0.0.1', port }, leafListen: { host: '127.0.0.1', port: await freePort() }, tls: { certFile: cert, keyFile: key },
      storeDir: path.join(hubDir, 'jetstream'),
      auth: hubAuthConfig({ operatorJwt: hub.operator.operator.jwt, systemAccountPublicKey: hub.operator.systemAccount.publicKey, resolverDir: path.join(hubDir, 'resolver'), systemAccountJwt: hub.operator.systemAccount.jwt }),
    }) + `\ntls: { cert_file: ${JSON.stringify(cert)}, key_file: ${JSON.stringify(key)}, timeout: 5 }\n`;
    fs.writeFileSync(path.join(hubDir, 'hub.conf'), conf);
    tlsHub = await startNats(path.join(hubDir, 'hub.conf'), port);
    const r = await byoc('customer', 'add', '--customer', 'delta', '--account', '222222222222', '--vendor-config', vendorConfig, '--out', path.join(dir, 'customers'),
      '--control-plane-outputs', outputs, '--release', release, '--hub-url', `tls://localhost:${port}`, '--system-creds', systemCreds,
      '--audit-public-key', (fs.writeFileSync(path.join(dir, 'delta.pem'), pem(keys.acme.publicKey)), path.join(dir, 'delta.pem')));
    if (r.code !== 0) throw new Error(r.err);
  });

  afterAll(async () => {
    for (const i of started) i.kill('SIGKILL');
    await Promise.all(started.map((i) => i.exited));
    await tlsHub?.stop();
  });

  const startIngest = async (ca?: string) => {
    const healthPort = await freePort();
    const i = new Ingest(healthPort, { ...ingestEnv(healthPort), [INGEST_ENV.hubUrls]: `tls://localhost:${port}`, ...(ca ? { [INGEST_ENV.hubCa]: ca } : {}) });
    started.push(i);
    await waitFor(() => i.lines.some((l) => l.msg === 'ready'), 20000, 'the service ready');
    return i;
  };

  test('with the vendor CA it consumes and stores; without it the certificate is refused and nothing is consumed', async () => {
    const withoutCa = await startIngest();
    const failed = (await withoutCa.health()).body.customers.delta;
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/certificate/i);
    withoutCa.kill('SIGTERM');
    expect(await withoutCa.exited).toBe(0);

    const ingest = await startIngest(fs.readFileSync(hub.certificates.ca, 'utf8'));
    expect(await ingest.state('delta')).toBe('consuming');
    // A crossing in delta's stream (put there by a test-only user of its vendor account, over TLS too).
    const record: CustomerRecord = JSON.parse(await secret(customerSecretNames('delta').account));
    const user = createUser();
    const jwt = await encodeUser('test-observer', user, fromSeed(new TextEncoder().encode(record.keys.vendor.seed)));
    const nc = await connect({ servers: `tls://localhost:${port}`, tls: { caFile: hub.certificates.ca }, authenticator: jwtAuthenticator(jwt, user.getSeed()), maxReconnectAttempts: 0 });
    connections.push(nc);
    await jetstream(nc).publish('byoc.delta.out.usage', usage('tls-agent', 9));
    await waitFor(async () => (await usageOf('delta')).length === 1, 15000, 'delta\'s usage stored');
    expect(await usageOf('delta')).toEqual([['tls-agent', 9]]);
    ingest.kill('SIGTERM');
    expect(await ingest.exited).toBe(0);
  });
});

describe('the retention sweep of a vendor-hosted mode, with the cancellations byoc customer cancel records', () => {
  const swept: IngestTables = { usage: 'swept-usage', metrics: 'swept-metrics', workflow: 'swept-workflow', learningPool: 'swept-learning-pool', rejections: 'swept-rejections' };
  let ingest: Ingest | undefined;

  afterAll(async () => {
    ingest?.kill('SIGKILL');
    await ingest?.exited;
  });

  test('starter, at start: a customer cancelled 31 days ago loses its items, one cancelled now has them marked, an un-cancelled one keeps them; a malformed time is logged and counted, its customer untouched', async () => {
    await createIngestTables(ddb, swept);
    const store = new IngestStore(ddb, swept, 'starter');
    const now = Date.now();
    let seq = 0;
    for (const customerId of ['acme', 'beta', 'gamma', 'delta']) {
      const value = { periodStart: T0, periodEnd: T0 + 300000, agent: 'swept-agent', invocations: 1, computeSeconds: 2, llmTokensIn: 3, llmTokensOut: 4 };
      await store.store(BOUNDARY_CONTRACT.kinds.find((k) => k.name === 'usage')! as MessageKind, value, Buffer.from(canonicalBytes(value)), { customerId, streamSeq: ++seq, storedAtMs: now });
    }
    // acme's cancellation as byoc customer cancel wrote it 31 days ago; beta cancelled now, with the command; delta's tag edited by hand.
    const tag = (customerId: string, value: string) => sm.send(new TagResourceCommand({ SecretId: customerSecretNames(customerId).ingest, Tags: [{ Key: REGISTRY_TAGS.cancelledAt, Value: value }] }));
    await tag('acme', formatCancelledAt(now - 31 * 86_400_000));
    const r = await byoc('customer', 'cancel', '--customer', 'beta', '--vendor-config', vendorConfig, '--reason', 'plan ended');
    expect(r.code).toBe(0);
    await tag('delta', 'last tuesday');

    const port = await freePort();
    ingest = new Ingest(port, {
      ...ingestEnv(port), ...Object.fromEntries((Object.keys(TABLE_ENV) as (keyof IngestTables)[]).map((role) => [TABLE_ENV[role], swept[role]])),
      [INGEST_ENV.deploymentMode]: 'starter',
    });
    await waitFor(() => ingest!.lines.some((l) => l.msg === 'retention swept' || l.msg === 'retention not swept'), 30000, 'the first sweep');
    expect(ingest.lines.find((l) => l.msg === 'retention swept')).toMatchObject({ retention: { softDeleted: 1, hardDeleted: 1 }, mode: 'starter', cancelled: 2, malformedCancellations: 1 });
    expect(ingest.lines.filter((l) => l.msg?.startsWith('cancellation time unreadable'))).toEqual([expect.objectContaining({
      level: 50, customer: 'delta', reason: 'the tag byoc:cancelled-at "last tuesday" is not a time as YYYY-MM-DDTHH:MM:SS.sssZ',
    })]);
    const items = (await ddb.send(new ScanCommand({ TableName: swept.usage }))).Items ?? [];
    expect(items.map((i) => [i.customerId.S, isServed(i)]).sort()).toEqual([['beta', false], ['delta', true], ['gamma', true]]);
    ingest.kill('SIGTERM');
    expect(await ingest.exited).toBe(0);
  });
});

describe('the entry point refuses a configuration it cannot run with', () => {
  test('a missing table, a bad hub URL or refresh interval: exit 2 with one line naming the variable', async () => {
    const port = await freePort();
    const base = ingestEnv(port);
    const cases: [Record<string, string | undefined>, RegExp][] = [
      [{ [TABLE_ENV.rejections]: undefined }, /^BYOC_INGEST_TABLE_REJECTIONS is missing: give the name of the rejections table$/],
      [{ [INGEST_ENV.hubUrls]: 'http://hub:4222' }, /^BYOC_INGEST_HUB_URLS: "http:\/\/hub:4222" is not a NATS URL/],
      [{ [INGEST_ENV.refreshSeconds]: '0' }, /^BYOC_INGEST_REFRESH_SECONDS is not a number of seconds from 1 to 3600$/],
      [{ [INGEST_ENV.hubCa]: 'not a certificate' }, /^BYOC_INGEST_HUB_CA is not a PEM certificate/],
      // A contract that is not the one its hash names (a task definition edited by hand, a mixed-up deployment).
      [{ BYOC_CONTRACT: contractJson(), BYOC_CONTRACT_HASH: '0'.repeat(64) }, /^BYOC_CONTRACT has hash [0-9a-f]{12}, not 000000000000 as BYOC_CONTRACT_HASH says$/],
      [{ BYOC_CONTRACT: '{"version":1,"kinds":[]}', BYOC_CONTRACT_HASH: '0'.repeat(64) }, /^Invalid setting 'BYOC_CONTRACT\.kinds': must NOT have fewer than 1 items/],
    ];
    for (const [change, message] of cases) {
      const env: NodeJS.ProcessEnv = { ...awsEnv(), ...base, ...change };
      for (const [k, v] of Object.entries(change)) if (v === undefined) delete env[k];
      const r = await run(process.execPath, [BUNDLE], env);
      expect(r.code).toBe(2);
      const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 60, msg: 'invalid configuration', error: expect.stringMatching(message) });
    }
  });

  test('a registry it cannot read at start: exit 1 (ECS\'s circuit breaker rolls the deployment back)', async () => {
    const env = { ...awsEnv(), ...ingestEnv(await freePort()), AWS_ENDPOINT_URL: `http://127.0.0.1:${await freePort()}`, AWS_MAX_ATTEMPTS: '1' };
    const r = await run(process.execPath, [BUNDLE], env);
    expect(r.code).toBe(1);
    expect(r.err + r.out).toMatch(/"msg":"ingest service failed"/);
  });
});
