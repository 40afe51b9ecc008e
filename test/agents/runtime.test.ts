import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { NatsConnection } from '@nats-io/nats-core';
import { AGENT_CATALOG } from '../../agents/catalog';
import { DEAD_LETTER_STREAM, WORK_STREAM } from '../../agents/runtime/host';
import { RESULT_PREFIX } from '../../agents/runtime/reference-agent';
import { processedBucketOf, secretVariables } from '../../lib/nats-config';
import { projectRoot } from '../../lib/app';
import { eventually, Link, startLink } from '../servers/link';
import { MotoServer, startMoto } from '../servers/moto';

const AGENT = 'code-reviewer';
let link: Link;
let moto: MotoServer;
const secretArns: Record<string, string> = {};
/** The provisioner: the only identity that may read every agent's streams (the test's observer). */
let agents: NatsConnection;

beforeAll(async () => {
  [link, moto] = await Promise.all([startLink({ customerId: 'example' }), startMoto()]);
  const sm = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  // Each agent its own NATS user and password secret, as the plane creates them.
  for (const a of link.agentIdentities) {
    secretArns[a.name] = (await sm.send(new CreateSecretCommand({ Name: `byoc/example/nats/${a.name}`, SecretString: link.secrets[secretVariables('example').agent(a.name)] }))).ARN!;
  }
  // Short ack wait: a killed runtime's items come back within seconds.
  await link.provision({ ackWaitMs: 2000 });
  agents = await link.provisioner();
});
afterAll(async () => {
  await link?.stop();
  await moto?.stop();
});

interface Runtime { child: ChildProcess; output: () => string; exited: Promise<number | null> }

function spawnRuntime(env: Record<string, string | undefined> = {}): Runtime {
  const agent = env.BYOC_AGENT ?? AGENT;
  const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'agent-runtime.js')], {
    env: {
      PATH: process.env.PATH, ...moto.env,
      BYOC_AGENT: AGENT, BYOC_AGENT_IMPL: 'reference', BYOC_TRIGGER: AGENT_CATALOG.find((a) => a.name === agent)?.trigger ?? 'event', BYOC_CUSTOMER: 'example', NATS_URL: `127.0.0.1:${link.leafPort}`, NATS_INBOX_PREFIX: `_INBOX_example.${agent}`,
      NATS_PASSWORD_SECRET_ARN: secretArns[agent] ?? secretArns[AGENT], BYOC_MAX_DELIVER: '3', BYOC_BACKOFF_MS: '50,100', BYOC_STOP_TIMEOUT_MS: '5000',
      ...env,
    } as Record<string, string>,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

async function startRuntime(env: Record<string, string> = {}): Promise<Runtime> {
  const r = spawnRuntime(env);
  await eventually(() => r.output().includes('"msg":"ready"'), 15000, `runtime ready: ${r.output()}`);
  return r;
}

/** Work is sent by the request router, whose catalog entry may publish to every agent's work subject. */
async function publishWork(items: { id: string; body: object }[], agent = AGENT): Promise<void> {
  const js = jetstream(await link.agent('request-router'));
  for (const item of items) await js.publish(`work.${agent}`, JSON.stringify(item.body), { msgID: item.id });
}

/** Results the reference agents recorded, across every agent's own bucket. */
async function resultCount(): Promise<number> {
  let n = 0;
  for (const a of ['code-reviewer', 'triage', 'workflow-orchestrator', 'planner', 'qa-assistant']) {
    const kv = await new Kvm(agents).open(processedBucketOf(a));
    for await (const _ of await kv.keys(`${RESULT_PREFIX}>`)) n++;
  }
  return n;
}

async function stream(name: string) {
  return (await (await jetstreamManager(agents)).streams.info(name)).state;
}

describe('configuration', () => {
  test.each([
    [{ BYOC_AGENT: undefined }, /BYOC_AGENT: is required/],
    [{ BYOC_AGENT: 'Not An Agent' }, /BYOC_AGENT: "Not An Agent" is not an agent name/],
    [{ NATS_PASSWORD: 'plain' }, /NATS_PASSWORD: secrets are never read from plaintext environment variables/],
    [{ NATS_PASSWORD_SECRET_ARN: 'my-password' }, /not a Secrets Manager secret ARN/],
    [{ BYOC_MAX_DELIVER: '0' }, /BYOC_MAX_DELIVER: "0" is not a whole number from 1 to 100/],
    [{ BYOC_TRIGGER: 'cron' }, /BYOC_TRIGGER: "cron" is not request, event, schedule/],
    [{ BYOC_TRIGGER: 'schedule' }, /BYOC_SCHEDULE: is required for a scheduled agent/],
    [{ BYOC_SCHEDULE: 'cron(0 3 * * MON *)' }, /BYOC_SCHEDULE: .*exactly one of day-of-month and day-of-week must be \?/],
    [{ BYOC_SCHEDULE: 'rate(5 minutes)' }, /BYOC_SCHEDULE: .*is not cron\(minutes hours day-of-month month day-of-week year\)/],
    [{ BYOC_SCHEDULE_INPUT: '[1]' }, /BYOC_SCHEDULE_INPUT: is not a JSON object/],
    [{ BYOC_SUBJECTS: '{"publish":[]}' }, /BYOC_SUBJECTS: has no "subscribe" list/],
  ])('%j fails fast with a clear message', async (env, message) => {
    const r = spawnRuntime(env);
    expect(await r.exited).toBe(2);
    const fatal = r.output().trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.level === 60);
    expect(fatal).toMatchObject({ msg: 'invalid configuration', error: expect.stringMatching(message) });
  });
});

describe('work from JetStream', () => {
  test('processes items, acks after success, survives kill -9 mid-batch: every item processed exactly once, none lost', async () => {
    const first = await startRuntime();
    const before = await resultCount();
    const items = Array.from({ length: 150 }, (_, i) => ({ id: `batch-${i}`, body: { sleepMs: 10 } }));
    await publishWork(items);
    await eventually(async () => (await resultCount()) - before >= 30, 20000, 'some items processed');
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await startRuntime();
    await eventually(async () => (await resultCount()) - before === items.length, 60000, 'all items processed');
    await eventually(async () => (await stream(WORK_STREAM)).messages === 0, 10000, 'work stream empty (all acked)');
    expect((await stream(DEAD_LETTER_STREAM)).messages).toBe(0);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // Exactly once: one result per item; a second create of the same result would have been refused.
    expect((await resultCount()) - before).toBe(items.length);
  });

  test('a poison item is retried with backoff, then dead-lettered with its reason; other items go on', async () => {
    // Each test has its own agent, hence its own durable consumer: no state crosses between tests.
    const runtime = await startRuntime({ BYOC_AGENT: 'triage' });
    const before = await resultCount();
    const deadBefore = (await stream(DEAD_LETTER_STREAM)).messages;
    await publishWork([{ id: 'poison-1', body: { poison: true } }, { id: 'fine-1', body: {} }], 'triage');
    await eventually(async () => (await stream(DEAD_LETTER_STREAM)).messages === deadBefore + 1, 15000, 'dead-lettered');
    await eventually(async () => (await resultCount()) === before + 1, 5000, 'the other item processed');
    const dead = await (await jetstreamManager(agents)).streams.getMessage(DEAD_LETTER_STREAM, { last_by_subj: 'dead.triage' });
    expect(dead!.header.get('Byoc-Dead-Reason')).toMatch(/poison payload/);
    expect(dead!.header.get('Byoc-Deliveries')).toBe('3');
    expect(runtime.output().match(/will be redelivered/g)).toHaveLength(2);
    runtime.child.kill('SIGTERM');
    expect(await runtime.exited).toBe(0);
  });

  test('the request ID travels in NATS headers to the next agent', async () => {
    const runtime = await startRuntime({ BYOC_AGENT: 'workflow-orchestrator' });
    const js = jetstream(await link.agent('request-router'));
    const { headers } = await import('@nats-io/nats-core');
    const h = headers();
    h.set('Byoc-Request-Id', 'req-7f3a');
    await js.publish('work.workflow-orchestrator', JSON.stringify({ forward: 'work.qa-assistant', poison: false }), { msgID: 'fwd-1', headers: h });
    const jsm = await jetstreamManager(agents);
    await eventually(async () => {
      try { return !!(await jsm.streams.getMessage(WORK_STREAM, { last_by_subj: 'work.qa-assistant' })); } catch { return false; }
    }, 10000, 'forwarded message');
    const forwarded = await jsm.streams.getMessage(WORK_STREAM, { last_by_subj: 'work.qa-assistant' });
    expect(forwarded!.header.get('Byoc-Request-Id')).toBe('req-7f3a');
    runtime.child.kill('SIGTERM');
    expect(await runtime.exited).toBe(0);
  });

  test('metrics reach the collector over OTLP/HTTP with the contract\'s names and only its attributes', async () => {
    const http = await import('http');
    const received: any[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => { received.push({ path: req.url, type: req.headers['content-type'], body: JSON.parse(body) }); res.end('{}'); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const runtime = await startRuntime({ BYOC_AGENT: 'qa-assistant', BYOC_TRIGGER: 'request', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_METRIC_EXPORT_INTERVAL: '60000' });
      await publishWork([{ id: 'm-1', body: {} }, { id: 'm-2', body: { poison: true } }], 'qa-assistant');
      await eventually(() => runtime.output().includes('"attempt":1'), 10000, 'the failing item tried');
      runtime.child.kill('SIGTERM');
      expect(await runtime.exited).toBe(0);
      await eventually(() => received.some((r) => r.path === '/v1/metrics'), 5000, 'metrics at the collector');
      expect(received.map((r) => r.path).filter((p) => p !== '/v1/traces').every((p) => p === '/v1/metrics')).toBe(true);
      expect(received.find((r) => r.path === '/v1/metrics')).toMatchObject({ type: expect.stringMatching(/application\/json/) });
      const metrics = received.filter((r) => r.path === '/v1/metrics').flatMap((r) => r.body.resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics)));
      const { METRIC_ATTRIBUTES, METRIC_NAMES } = await import('../../lib/boundary-contract');
      expect(metrics.length).toBeGreaterThan(0);
      for (const m of metrics) expect(METRIC_NAMES).toContain(m.name);
      for (const p of metrics.flatMap((m: any) => (m.sum ?? m.histogram).dataPoints)) {
        for (const a of p.attributes) expect(METRIC_ATTRIBUTES).toContain(a.key);
        expect(Object.fromEntries(p.attributes.map((a: any) => [a.key, a.value.stringValue ?? a.value.intValue]))).toMatchObject({ agent: 'qa-assistant', trigger: 'request' });
      }
      const errors = metrics.find((m: any) => m.name === 'agent.request.errors');
      expect(errors).toBeDefined();
    } finally {
      server.close();
    }
  });

  test('SIGTERM stops pulling, finishes the item in flight, exits 0', async () => {
    const runtime = await startRuntime({ BYOC_AGENT: 'planner' });
    const before = await resultCount();
    await publishWork([{ id: 'slow-1', body: { sleepMs: 1500 } }], 'planner');
    await new Promise((r) => setTimeout(r, 400));
    runtime.child.kill('SIGTERM');
    expect(await runtime.exited).toBe(0);
    expect(await resultCount()).toBe(before + 1);
    expect(runtime.output()).toMatch(/"msg":"stopped"/);
  });
});
