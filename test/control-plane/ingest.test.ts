import { generateKeyPairSync, KeyObject, sign as cryptoSign } from 'crypto';
import { DynamoDBClient, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { BOUNDARY_CONTRACT, MessageKind } from '../../lib/boundary-contract';
import { canonicalBytes, ContractValue, signedBody } from '../../lib/contract-validator';
import { revokeAccount, pushAccountJwt, vendorUser } from '../../lib/nats-auth';
import { HUB_INGEST_STREAM } from '../../lib/nats-config';
import {
  createIngestTables, CustomerCheck, INGEST_DURABLE, IngestCustomerConfig, IngestService, IngestStore, IngestTables, Provenance,
} from '../../control-plane/ingest';
import { startMoto, MotoServer } from '../servers/moto';
import { CustomerLeaf, OperatorHub, startOperatorHub } from '../servers/operator-hub';
import { eventually } from '../servers/link';

const kind = (name: string) => BOUNDARY_CONTRACT.kinds.find((k) => k.name === name)! as MessageKind;
const METRICS = kind('metrics');
const T0 = 1767225600000;
const ULID = '01HZX3K9W6Q2B7C8D9E0F1G2H3';

const usage = (o: Partial<Record<string, unknown>> = {}) => ({ periodStart: T0, periodEnd: T0 + 300000, agent: 'reviewer', invocations: 12, computeSeconds: 30, llmTokensIn: 1000, llmTokensOut: 500, ...o });
const workflow = (o: Partial<Record<string, unknown>> = {}) => ({ workflowId: ULID, stepId: 1, agent: 'reviewer', status: 'succeeded', statusCode: 200, startedAt: T0 + 1000, durationMs: 2500, ...o });
const fingerprint = { patternHash: 'ab'.repeat(32), shape: ['reviewer', 'writer'], occurrences: 5, outcome: 'succeeded' };
const metricsBody = () => ({
  windowStart: T0, windowEnd: T0 + 60000,
  points: [
    { metric: 'agent.requests', agent: 'reviewer', statusCode: 200, trigger: 'request', value: 42 },
    { metric: 'agent.request.duration', agent: 'writer', value: 0.25 },
  ],
});

/** Signs a metrics value as the gateway does: ECDSA P-256 r||s over the canonical value without its signature. */
function signed(value: ContractValue, key: KeyObject): Buffer {
  const sig = cryptoSign('sha256', signedBody(METRICS, value), { key, dsaEncoding: 'ieee-p1363' });
  return canonicalBytes({ ...value, signature: sig.toString('base64url') });
}

/** Fails the batch once for messages whose usage agent is listed, after DynamoDB has them: a crash between store and ack. */
class CrashAfterStore extends IngestStore {
  public readonly crashFor = new Set<string>();
  public override async store(...args: Parameters<IngestStore['store']>): Promise<void> {
    await super.store(...args);
    const agent = args[1].agent as string | undefined;
    if (agent && this.crashFor.delete(agent)) throw new Error('simulated crash after the write, before the acknowledgement');
  }
}

describe('vendor ingest service (operator-mode nats-server 2.9 hub, real leaves, DynamoDB on moto_server)', () => {
  let moto: MotoServer;
  let hub: OperatorHub;
  let ddb: DynamoDBClient;
  let store: CrashAfterStore;
  let service: IngestService;
  /** The registrations the service started with. */
  const registered: Record<string, IngestCustomerConfig> = {};
  const leaves: Record<string, CustomerLeaf> = {};
  const keys = { acme: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }), beta: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }), other: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) };
  const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
  const tables: IngestTables = { usage: 'usage', metrics: 'metrics', workflow: 'workflow', learningPool: 'learning-pool', rejections: 'rejections' };
  const errors: string[] = [];
  let msgId = 0;
  // One observer per customer: the vendor account admits 8 connections.
  const observers = new Map<string, Awaited<ReturnType<OperatorHub['observer']>>>();
  const observer = async (c: string) => {
    if (!observers.has(c)) observers.set(c, await hub.observer(c));
    return observers.get(c)!;
  };

  /** Publishes as the customer's gateway on its leaf, through the link, and returns the hub stream's acknowledgement. */
  async function send(customerId: string, kindName: string, payload: Uint8Array | object, id = `${customerId}:${++msgId}`): Promise<{ seq: number; duplicate?: boolean }> {
    const gw = await leaves[customerId].gateway();
    const h = natsHeaders();
    h.set('Nats-Msg-Id', id);
    const bytes = payload instanceof Uint8Array ? payload : canonicalBytes(payload);
    const reply = await gw.request(`byoc.${customerId}.out.${kindName}`, bytes, { headers: h, timeout: 5000 });
    const ack = JSON.parse(reply.string());
    if (typeof ack.seq !== 'number') throw new Error(`no stream acknowledgement: ${reply.string()}`);
    return ack;
  }
  const scan = async (table: string) => (await ddb.send(new ScanCommand({ TableName: table }))).Items ?? [];
  const query = async (table: string, customerId: string) => (await ddb.send(new QueryCommand({
    TableName: table, KeyConditionExpression: 'customerId = :c', ExpressionAttributeValues: { ':c': { S: customerId } },
  }))).Items ?? [];
  const consumerNames = async (customerId: string) => {
    const jsm = await jetstreamManager(await observer(customerId));
    const names: string[] = [];
    for await (const c of jsm.consumers.list(HUB_INGEST_STREAM)) names.push(c.name);
    return { names, messages: (await jsm.streams.info(HUB_INGEST_STREAM)).state.messages };
  };

  beforeAll(async () => {
    moto = await startMoto();
    ddb = new DynamoDBClient({ endpoint: moto.endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    await createIngestTables(ddb, tables);
    store = new CrashAfterStore(ddb, tables);
    hub = await startOperatorHub();
    // beta is registered as opted out, but its hub accounts still carry the fingerprint subject (issued before
    // it opted out): the ingest service must refuse fingerprints on its own.
    for (const c of ['acme', 'beta', 'stray', 'gone']) await hub.addCustomer({ customerId: c });
    for (const c of ['acme', 'beta', 'stray', 'gone']) leaves[c] = await hub.leaf(c);
    await eventually(async () => (await hub.leafConnections()).length === 4, 15000, 'four leaves linked');
    // gone: revoked as `byoc customer revoke` does it (its leaf's account), after one crossing.
    await send('gone', 'usage', usage());
    await pushAccountJwt(await hub.system(), await revokeAccount(hub.accounts('gone').customer.jwt, hub.operator.operator.seed));
    // stray: linked and crossing, but not registered with the ingest service.
    await send('stray', 'usage', usage());

    const config = async (customerId: string, o: Partial<IngestCustomerConfig> = {}): Promise<IngestCustomerConfig> => ({
      customerId, creds: (await vendorUser(hub.accounts(customerId))).creds, auditPublicKeyPem: o.auditPublicKeyPem ?? pem(keys[customerId as 'acme'].publicKey), ...o,
    });
    registered.acme = await config('acme');
    registered.beta = await config('beta', { shareLearning: false });
    registered.gone = { ...await config('gone', { auditPublicKeyPem: pem(keys.other.publicKey) }), status: 'revoked' };
    service = new IngestService({
      servers: `127.0.0.1:${hub.hubPort}`, store, retryDelayMs: 100,
      customers: Object.values(registered),
      onError: (c, e) => errors.push(`${c}: ${e.message}`),
    });
    await service.start();
  });

  afterAll(async () => {
    await service?.stop();
    await hub?.stop();
    ddb?.destroy();
    await moto?.stop();
  });

  test('each registered customer has a durable consumer created with its vendor service user\'s own permissions', async () => {
    expect(service.states()).toEqual({ acme: { state: 'consuming' }, beta: { state: 'consuming' }, gone: { state: 'revoked' } });
    expect((await consumerNames('acme')).names).toEqual([INGEST_DURABLE]);
  });

  test('each kind is stored: usage per customer and period, metrics per agent and window, workflow events, fingerprints in the pool', async () => {
    await send('acme', 'usage', usage());
    await send('acme', 'workflow', workflow());
    await send('acme', 'fingerprint', fingerprint);
    await send('acme', 'metrics', signed(metricsBody(), keys.acme.privateKey));
    await eventually(() => ['usage', 'workflow', 'fingerprint', 'metrics'].every((k) => (service.counters('acme').accepted[k] ?? 0) >= 1), 10000, 'four kinds stored');

    const u = await query(tables.usage, 'acme');
    expect(u).toHaveLength(1);
    expect(u[0]).toMatchObject({ period: { S: `${T0}#reviewer` }, invocations: { N: '12' }, computeSeconds: { N: '30' }, llmTokensIn: { N: '1000' }, llmTokensOut: { N: '500' }, periodEnd: { N: String(T0 + 300000) } });
    const w = await query(tables.workflow, 'acme');
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ workflowId: { S: ULID }, agent: { S: 'reviewer' }, stepId: { N: '1' }, status: { S: 'succeeded' }, durationMs: { N: '2500' } });
    const m = (await scan(tables.metrics)).filter((i) => i.customerId.S === 'acme').map((i) => [i.series.S, i.point.S, i.value.N]).sort();
    expect(m).toEqual([
      ['acme#reviewer', `${T0}#agent.requests#200#request`, '42'],
      ['acme#writer', `${T0}#agent.request.duration#-#-`, '0.25'],
    ]);
    const pool = await scan(tables.learningPool);
    expect(pool).toHaveLength(1);
    expect(pool[0]).toMatchObject({ patternHash: { S: fingerprint.patternHash }, shape: { L: [{ S: 'reviewer' }, { S: 'writer' }] }, occurrences: { N: '5' }, outcome: { S: 'succeeded' } });
  });

  test('a learning-pool item holds no customer identifier: no customer ID, account, subject, sequence or time', async () => {
    const pool = await scan(tables.learningPool);
    expect(pool.length).toBeGreaterThan(0);
    const a = hub.accounts('acme');
    for (const item of pool) {
      expect(Object.keys(item).sort()).toEqual(['occurrences', 'outcome', 'patternHash', 'shape', 'variant']);
      const text = JSON.stringify(item);
      for (const identifier of ['acme', a.customer.publicKey, a.vendor.publicKey, a.customer.name, a.vendor.name, 'byoc.', HUB_INGEST_STREAM]) expect(text).not.toContain(identifier);
    }
  });

  test('a replayed message (same content, new message ID and stream sequence) is not counted twice', async () => {
    const first = await send('acme', 'usage', usage({ agent: 'replayer', invocations: 7 }));
    const second = await send('acme', 'usage', usage({ agent: 'replayer', invocations: 7 }));
    expect(second.seq).toBeGreaterThan(first.seq);
    await send('acme', 'workflow', workflow({ workflowId: '01HZX3K9W6Q2B7C8D9E0F1G2H4' }));
    await send('acme', 'workflow', workflow({ workflowId: '01HZX3K9W6Q2B7C8D9E0F1G2H4' }));
    await eventually(async () => (await consumerInfo('acme')).pending === 0, 10000, 'acme\'s stream consumed');
    const u = (await query(tables.usage, 'acme')).filter((i) => i.agent.S === 'replayer');
    expect(u).toHaveLength(1);
    expect(u[0].invocations).toEqual({ N: '7' });
    expect((await query(tables.workflow, 'acme')).filter((i) => i.workflowId.S === '01HZX3K9W6Q2B7C8D9E0F1G2H4')).toHaveLength(1);
  });

  test('a message stored but not acknowledged (crash between write and ack) is redelivered, and stored once', async () => {
    store.crashFor.add('flaky-agent');
    const before = { ...service.counters('acme') };
    await send('acme', 'usage', usage({ agent: 'flaky-agent', invocations: 3 }));
    await eventually(async () => service.counters('acme').redeliveries === before.redeliveries + 1 && (await consumerInfo('acme')).pending === 0, 10000, 'redelivery consumed');
    expect(service.counters('acme').storeFailures).toBe(before.storeFailures + 1);
    const u = (await query(tables.usage, 'acme')).filter((i) => i.agent.S === 'flaky-agent');
    expect(u).toHaveLength(1);
    expect(u[0].invocations).toEqual({ N: '3' });
  });

  test('oversize, schema break, non-canonical, wrong signature, tampered and unsigned metrics, opted-out fingerprint: each rejected, counted per customer and reason, stored without the body, acknowledged', async () => {
    const nonCanonical = Buffer.from(JSON.stringify(usage({ agent: 'spaced' }), null, 1));
    const oversize = Buffer.from(`{"x":"${'x'.repeat(3000)}"}`);
    const tampered = JSON.parse(signed(metricsBody(), keys.acme.privateKey).toString());
    tampered.points[0].value = 43;
    await send('acme', 'workflow', oversize);
    await send('acme', 'usage', usage({ invocations: -1 }));
    await send('acme', 'usage', nonCanonical);
    await send('acme', 'metrics', signed(metricsBody(), keys.other.privateKey));
    await send('acme', 'metrics', canonicalBytes(tampered));
    await send('acme', 'metrics', metricsBody());
    await send('beta', 'fingerprint', fingerprint);
    await send('beta', 'workflow', workflow()); // beta opted out: agent and stepId are not in its published schema
    const { agent: _a, stepId: _s, ...projected } = workflow({ workflowId: '01HZX3K9W6Q2B7C8D9E0F1G2H5' });
    await send('beta', 'workflow', projected);

    const expected = { acme: { oversize: 1, schema: 1, 'not-canonical': 1, 'bad-signature': 2, unsigned: 1 }, beta: { 'opted-out': 1, schema: 1 } };
    await eventually(async () => (await consumerInfo('acme')).pending === 0 && (await consumerInfo('beta')).pending === 0
      && JSON.stringify(service.counters('beta').rejected) === JSON.stringify(expected.beta), 10000, 'rejections recorded');
    expect(service.counters('acme').rejected).toEqual(expected.acme);
    expect(service.counters('beta').rejected).toEqual(expected.beta);
    expect(service.counters('beta').accepted).toEqual({ workflow: 1 });

    for (const [customerId, counts] of Object.entries(expected)) {
      const items = await query(tables.rejections, customerId);
      const counted = Object.fromEntries(items.filter((i) => i.entry.S!.startsWith('count#')).map((i) => [i.entry.S!.slice(6), Number(i.count.N)]));
      expect(counted).toEqual(counts);
      const records = items.filter((i) => i.entry.S!.startsWith('seq#'));
      expect(records).toHaveLength(Object.values(counts).reduce((a, b) => a + b, 0));
      for (const r of records) {
        expect(Object.keys(r).sort()).toEqual(['customerId', 'detail', 'entry', 'kind', 'reason', 'sha256', 'size', 'storedAt', 'streamSeq', 'subject']);
        expect(r.sha256.S).toMatch(/^[0-9a-f]{64}$/);
      }
    }
    const byReason = (c: string, reason: string) => query(tables.rejections, c).then((items) => items.filter((i) => i.reason?.S === reason));
    const [over] = await byReason('acme', 'oversize');
    expect(over).toMatchObject({ kind: { S: 'workflow' }, size: { N: String(oversize.length) }, subject: { S: 'byoc.acme.out.workflow' } });
    expect(JSON.stringify(await query(tables.rejections, 'acme'))).not.toContain('spaced'); // the non-canonical body is nowhere
    expect(await scan(tables.learningPool)).toHaveLength(1); // beta's fingerprint was not pooled
    expect((await query(tables.workflow, 'beta')).map((i) => [i.workflowId.S, i.agent, i.stepId])).toEqual([['01HZX3K9W6Q2B7C8D9E0F1G2H5', undefined, undefined]]);
  });

  test('a rejection recorded twice (a redelivery) is stored and counted once', async () => {
    const from: Provenance = { customerId: 'acme', streamSeq: 999999, storedAtMs: T0 };
    const record = { kind: 'usage', subject: 'byoc.acme.out.usage', size: 10, sha256: '0'.repeat(64), reason: 'schema' as const, detail: '/ type' };
    const before = Number((await query(tables.rejections, 'acme')).find((i) => i.entry.S === 'count#schema')!.count.N);
    expect(await store.reject(record, from)).toBe(true);
    expect(await store.reject(record, from)).toBe(false);
    expect(Number((await query(tables.rejections, 'acme')).find((i) => i.entry.S === 'count#schema')!.count.N)).toBe(before + 1);
  });

  test('an unregistered customer and a revoked one are not consumed', async () => {
    for (const c of ['stray', 'gone']) {
      expect(await consumerNames(c)).toEqual({ names: [], messages: 1 });
      expect(await query(tables.usage, c)).toEqual([]);
    }
    expect(Object.keys(service.states())).not.toContain('stray');
    expect(service.states().gone).toEqual({ state: 'revoked' });
    expect(errors).toEqual([expect.stringMatching(/^acme: simulated crash/)]);
  });

  test('the checks alone: a customer\'s key must be a P-256 or Ed25519 public key, and a subject of another customer is refused', () => {
    expect(() => new CustomerCheck({ customerId: 'acme', auditPublicKeyPem: 'nope' })).toThrow(/auditPublicKeyPem is not a PEM public key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(() => new CustomerCheck({ customerId: 'acme', auditPublicKeyPem: pem(rsa) })).toThrow(/rsa key/);
    const check = new CustomerCheck({ customerId: 'acme', auditPublicKeyPem: pem(keys.acme.publicKey) });
    expect(check.check('byoc.beta.out.usage', canonicalBytes(usage()))).toMatchObject({ reason: 'wrong-subject' });
    expect(check.check('byoc.acme.out.control', canonicalBytes({ action: 'set-config-version', issuedAt: T0 }))).toMatchObject({ reason: 'unknown-kind' });
    const ed = generateKeyPairSync('ed25519');
    const edCheck = new CustomerCheck({ customerId: 'acme', auditPublicKeyPem: pem(ed.publicKey) });
    const body = metricsBody();
    const good = canonicalBytes({ ...body, signature: cryptoSign(null, signedBody(METRICS, body), ed.privateKey).toString('base64url') });
    expect(edCheck.check('byoc.acme.out.metrics', good)).toMatchObject({ kind: { name: 'metrics' } });
  });

  test('reconcile follows the registry without a restart: added, revoked, removed, changed and failed consumers; the same list again changes nothing', async () => {
    const creds = async (c: string) => (await vendorUser(hub.accounts(c))).creds;
    const { acme, beta } = registered;
    // stray registered with another customer's credentials: its consumer cannot start.
    const stray: IngestCustomerConfig = { customerId: 'stray', creds: await creds('acme'), auditPublicKeyPem: pem(keys.other.publicKey) };
    const first = await service.reconcile([acme, { ...beta, status: 'revoked' }, stray]);
    expect(first).toEqual({ added: ['stray'], revoked: ['beta'], removed: ['gone'], changed: [], retried: [] });
    expect(service.states()).toEqual({ acme: { state: 'consuming' }, beta: { state: 'revoked' }, stray: { state: 'failed', error: expect.any(String) } });
    // acme, unchanged, kept its consumer (its counters go on); stray is retried on each reconcile while it fails.
    expect(service.counters('acme').accepted.usage).toBeGreaterThan(0);
    expect(await service.reconcile([acme, { ...beta, status: 'revoked' }, stray])).toEqual({ added: [], revoked: [], removed: [], changed: [], retried: ['stray'] });
    // stray with its own credentials and beta reinstated: both (re)started, and stray's waiting crossing is stored.
    const strayConfig = { ...stray, creds: await creds('stray') };
    expect(await service.reconcile([acme, beta, strayConfig])).toEqual({ added: [], revoked: [], removed: [], changed: ['beta', 'stray'], retried: [] });
    expect(service.states()).toEqual({ acme: { state: 'consuming' }, beta: { state: 'consuming' }, stray: { state: 'consuming' } });
    await eventually(async () => (await query(tables.usage, 'stray')).length === 1, 10000, 'stray\'s usage stored');
    expect(await service.reconcile([acme, beta, strayConfig])).toEqual({ added: [], revoked: [], removed: [], changed: [], retried: [] });
    await expect(service.reconcile([acme, acme])).rejects.toThrow(/customer acme is configured twice/);
    await expect(service.reconcile([acme, { ...beta, auditPublicKeyPem: 'nope' }])).rejects.toThrow(/beta: auditPublicKeyPem is not a PEM public key/);
    expect(service.states().beta).toEqual({ state: 'consuming' });
  });

  async function consumerInfo(customerId: string): Promise<{ pending: number }> {
    const jsm = await jetstreamManager(await observer(customerId));
    const info = await jsm.consumers.info(HUB_INGEST_STREAM, INGEST_DURABLE);
    return { pending: info.num_pending + info.num_ack_pending };
  }
});
