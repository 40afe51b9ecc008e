import { ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import * as path from 'path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { headers as natsHeaders, Msg, MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { AGENT_CATALOG } from '../../agents/catalog';
import { loadConfig } from '../../agents/runtime/config';
import { DEAD_LETTER_STREAM, DUPLICATE_HEADER, EVENTS_STREAM, RuntimeHost, SERVICE_ERROR_HEADERS, WORK_STREAM } from '../../agents/runtime/host';
import { RESULT_PREFIX } from '../../agents/runtime/reference-agent';
import { TraceHooks } from '../../agents/runtime/tracing-hooks';
import { provisionAgents } from '../../customer-plane/boundary-gateway/provision';
import { projectRoot } from '../../lib/app';
import { durableOf, eventDurableOf, inboxPrefix, processedBucketOf, requestQueueOf, requestSubjectOf, secretVariables } from '../../lib/nats-config';
import { newWorkflowId, parseStepStatus, STEP_STATUS_SUBJECT, StepStatus, ULID_PATTERN, WORKFLOW_HEADERS } from '../../lib/step-status';
import { eventually, Link, permissionErrors, startLink } from '../servers/link';
import { MotoServer, startMoto } from '../servers/moto';

/**
 * Every trigger path of the runtime on a real leaf (nats-server) with the real runtime bundle
 * (dist/agent-runtime.js) and the reference agent: events through durables on the events stream, requests on
 * the service subject, scheduled ticks through the work queue, and the step records of all of them.
 */
const C = 'example';
let link: Link;
let moto: MotoServer;
const secretArns: Record<string, string> = {};
/** The provisioner: reads every agent's streams, consumers and buckets (the test's observer of JetStream state). */
let provisioner: NatsConnection;
/** Everything published on events and work subjects, as a test-only user of the AGENTS account sees it. */
const seen: { subject: string; data: Uint8Array; headers?: MsgHdrs }[] = [];
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  [link, moto] = await Promise.all([startLink({ customerId: C }), startMoto()]);
  const sm = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  for (const a of link.agentIdentities) {
    secretArns[a.name] = (await sm.send(new CreateSecretCommand({ Name: `byoc/${C}/nats/${a.name}`, SecretString: link.secrets[secretVariables(C).agent(a.name)] }))).ARN!;
  }
  provisioner = await link.provisioner();
  // As the gateway provisions at start, from the catalog's identities (their event subscriptions included).
  // Short ack wait: a killed runtime's items come back within seconds.
  await provisionAgents(provisioner, link.agentIdentities, { ackWaitMs: 2000 });
  const observer = await link.agentsObserver();
  for (const subject of ['events.>', 'work.>']) {
    observer.subscribe(subject, { callback: (err: Error | null, m: Msg) => { if (!err) seen.push({ subject: m.subject, data: m.data, headers: m.headers }); } });
  }
  await observer.flush();
  startScheduleScenarios();
}, 60000);

afterAll(async () => {
  aborted = true;
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await Promise.all(running.map((r) => r.exited));
  await link?.stop();
  await moto?.stop();
});

interface Runtime { child: ChildProcess; output: () => string; exited: Promise<number | null> }
const running: Runtime[] = [];

/** A runtime configured as the plane configures it: trigger, subjects and schedule from the agent's catalog entry. */
function spawnRuntime(agent: string, env: Record<string, string> = {}): Runtime {
  const spec = AGENT_CATALOG.find((a) => a.name === agent)!;
  const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'agent-runtime.js')], {
    env: {
      PATH: process.env.PATH, ...moto.env,
      BYOC_AGENT: agent, BYOC_AGENT_IMPL: 'reference', BYOC_CUSTOMER: C, BYOC_TRIGGER: spec.trigger, BYOC_SUBJECTS: JSON.stringify(spec.subjects),
      ...(spec.schedule ? { BYOC_SCHEDULE: spec.schedule } : {}),
      NATS_URL: `127.0.0.1:${link.leafPort}`, NATS_INBOX_PREFIX: inboxPrefix(C, agent), NATS_PASSWORD_SECRET_ARN: secretArns[agent],
      // Node 20 here: the AWS SDK's notice about future Node versions is not the runtime's output.
      NODE_NO_WARNINGS: '1',
      BYOC_MAX_DELIVER: '3', BYOC_BACKOFF_MS: '50,100', BYOC_STOP_TIMEOUT_MS: '8000', BYOC_REQUEST_LEASE_MS: '2000',
      ...env,
    } as Record<string, string>,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const r = { child, output: () => out, exited };
  running.push(r);
  return r;
}

async function startRuntime(agent: string, env: Record<string, string> = {}): Promise<Runtime> {
  const r = spawnRuntime(agent, env);
  await eventually(() => r.output().includes('"msg":"ready"'), 30000, `runtime ready`).catch((e) => { throw new Error(`${e.message}: ${r.output()}`); });
  return r;
}

/** SIGTERM, exit 0, and the host's counters from its last log line. */
async function stopRuntime(r: Runtime): Promise<Record<string, number>> {
  r.child.kill('SIGTERM');
  expect(await r.exited).toBe(0);
  const lines = r.output().trim().split('\n');
  expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
  const stopped = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'stopped');
  return stopped.counters;
}

async function killRuntime(r: Runtime): Promise<void> {
  r.child.kill('SIGKILL');
  await r.exited;
}

/** The reference agent's result of an item (it creates one per item ID, refusing a second). */
async function hasResult(agent: string, id: string): Promise<boolean> {
  const kv = await new Kvm(provisioner).open(processedBucketOf(agent));
  return !!(await kv.get(`${RESULT_PREFIX}${sha256(id)}`));
}

async function resultCount(agent: string): Promise<number> {
  const kv = await new Kvm(provisioner).open(processedBucketOf(agent));
  let n = 0;
  for await (const _ of await kv.keys(`${RESULT_PREFIX}>`)) n++;
  return n;
}

/** Step records seen so far (parsed strictly, as their consumers parse them). */
function stepRecords(filter: Partial<StepStatus> = {}): StepStatus[] {
  return seen.filter((m) => m.subject === STEP_STATUS_SUBJECT).map((m) => parseStepStatus(m.data))
    .filter((s) => Object.entries(filter).every(([k, v]) => (s as unknown as Record<string, unknown>)[k] === v));
}

const withId = (id: string, more: Record<string, string> = {}) => {
  const h = natsHeaders();
  h.set('Nats-Msg-Id', id);
  for (const [k, v] of Object.entries(more)) h.set(k, v);
  return h;
};

// The schedule scenarios wait for real minute ticks: they run in the background from the start and are
// asserted by the last tests.
let twoRuntimes: Promise<() => void>;
/** Set when the file's tests are over: a scenario still waiting (a filtered run) stops. */
let aborted = false;
const whileRunning = (check: () => boolean | Promise<boolean>) => () => {
  if (aborted) throw new Error('aborted');
  return check();
};
let killMidTick: Promise<() => void>;
function startScheduleScenarios(): void {
  const settle = <T>(p: Promise<T>) => { p.catch(() => undefined); return p; };
  twoRuntimes = settle(scheduleTwoRuntimes());
  killMidTick = settle(scheduleKillMidItem());
}

/** Two tasks of a scheduled agent (here every minute): each publishes every tick, the work stream stores it once, it runs once. */
async function scheduleTwoRuntimes(): Promise<() => void> {
  const agent = 'license-checker';
  const env = { BYOC_SCHEDULE: 'cron(* * * * ? *)' };
  const [a, b] = await Promise.all([startRuntime(agent, env), startRuntime(agent, env)]);
  const ticks = () => seen.filter((m) => m.subject === `work.${agent}`).map((m) => m.headers?.get('Nats-Msg-Id') ?? '').filter((id) => id.startsWith('schedule:'));
  await eventually(whileRunning(() => new Set(ticks()).size >= 1 && ticks().length >= 2), 130000, 'a tick published by both tasks');
  const first = ticks()[0];
  const tickMs = Number(first.split(':')[2]);
  await eventually(whileRunning(() => hasResult(agent, first)), 20000, 'the tick processed');
  await sleep(500);
  const [ca, cb] = [await stopRuntime(a), await stopRuntime(b)];
  const published = ticks();
  const distinct = new Set(published).size;
  return () => {
    expect(first).toMatch(new RegExp(`^schedule:${agent}:\\d+$`));
    expect(tickMs % 60000).toBe(0);
    // Both tasks published the first tick, with the same ID.
    expect(published.filter((id) => id === first)).toHaveLength(2);
    // Each tick stored by exactly one task; the other's publish was a duplicate in the stream's window.
    expect(ca.ticks + cb.ticks).toBe(distinct);
    expect(ca.tickDuplicates + cb.tickDuplicates).toBe(published.length - distinct);
    // The tick ran once: one success record of its workflow (derived from the tick, the same in both tasks).
    const workflowId = newWorkflowId(tickMs, () => createHash('sha256').update(first).digest());
    expect(stepRecords({ agent, workflowId, status: 'succeeded' })).toHaveLength(1);
    expect(stepRecords({ agent, workflowId })[0]).toMatchObject({ trigger: 'schedule', stepId: 0, statusCode: 200 });
    expect(a.output() + b.output()).not.toMatch(/result already recorded/);
  };
}

/** A scheduled item (it works 5 s) whose runtime is killed mid-item: another runtime completes it exactly once. */
async function scheduleKillMidItem(): Promise<() => void> {
  const agent = 'cost-reporter';
  const env = { BYOC_SCHEDULE: 'cron(* * * * ? *)', BYOC_SCHEDULE_INPUT: '{"sleepMs":5000}' };
  const first = await startRuntime(agent, env);
  const tick = () => seen.find((m) => m.subject === `work.${agent}` && m.headers?.get('Nats-Msg-Id')?.startsWith('schedule:'))?.headers?.get('Nats-Msg-Id');
  await eventually(whileRunning(() => !!tick()), 130000, 'a tick published');
  const id = tick()!;
  const jsm = await jetstreamManager(provisioner);
  await eventually(whileRunning(async () => (await jsm.consumers.info(WORK_STREAM, durableOf(agent))).num_ack_pending === 1), 10000, 'the tick in flight');
  await sleep(1000);
  await killRuntime(first);
  const processedBefore = await (await new Kvm(provisioner).open(processedBucketOf(agent))).get(sha256(id));
  const second = await startRuntime(agent, env);
  await eventually(whileRunning(async () => !!(await (await new Kvm(provisioner).open(processedBucketOf(agent))).get(sha256(id)))), 30000, 'the tick completed by the second runtime');
  const counters = await stopRuntime(second);
  const body = JSON.parse(new TextDecoder().decode(seen.find((m) => m.headers?.get('Nats-Msg-Id') === id)!.data));
  return () => {
    expect(processedBefore).toBeNull();
    expect(body).toEqual({ sleepMs: 5000, scheduledAt: Number(id.split(':')[2]) });
    expect(counters.processed).toBeGreaterThanOrEqual(1);
    expect(second.output()).not.toMatch(/result already recorded/);
    const workflowId = newWorkflowId(Number(id.split(':')[2]), () => createHash('sha256').update(id).digest());
    expect(stepRecords({ agent, workflowId, status: 'succeeded' })).toHaveLength(1);
  };
}

describe('event path', () => {
  test('an event reaches the agent through its own durable: kept while no runtime runs, completed exactly once after a kill -9 mid-item', async () => {
    const agent = 'triage'; // declares events.ticket.opened
    const jsm = await jetstreamManager(provisioner);
    const durable = eventDurableOf(agent, 'events.ticket.opened');
    // The dependency-auditor is declared to publish events.ticket.opened.
    const js = jetstream(await link.agent('dependency-auditor'));
    const first = await startRuntime(agent);
    await js.publish('events.ticket.opened', JSON.stringify({ sleepMs: 4000 }), { msgID: 'ticket-1' });
    await eventually(async () => (await jsm.consumers.info(EVENTS_STREAM, durable)).num_ack_pending === 1, 10000, 'the event in flight');
    await sleep(500);
    await killRuntime(first);
    // Published while no runtime of the agent runs: kept by its durable.
    await js.publish('events.ticket.opened', JSON.stringify({}), { msgID: 'ticket-2' });
    // Both kept for the agent. Until the killed runtime's pulls expire the server delivers to them, reaching no
    // one: the runtime counts attempts itself, so those deliveries use nothing up.
    await eventually(async () => {
      const kept = await jsm.consumers.info(EVENTS_STREAM, durable);
      return kept.num_pending + kept.num_ack_pending === 2;
    }, 5000, 'both events kept');
    expect(await hasResult(agent, 'ticket-1')).toBe(false);
    const second = await startRuntime(agent);
    await eventually(async () => await hasResult(agent, 'ticket-1') && await hasResult(agent, 'ticket-2'), 30000, 'both events processed');
    await eventually(async () => {
      const info = await jsm.consumers.info(EVENTS_STREAM, durable);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 10000, 'both acknowledged');
    const counters = await stopRuntime(second);
    expect(counters.processed).toBe(2);
    expect(second.output()).not.toMatch(/result already recorded/);
    expect(await resultCount(agent)).toBe(2);
    // Interest retention: once the only agent that declared the subject acknowledged them, they are gone.
    expect((await jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: 'events.ticket.opened' }).catch(() => null))).toBeNull();
    expect(stepRecords({ agent, status: 'succeeded' }).map((s) => s.trigger)).toEqual(['event', 'event']);
  });
});

describe('request path', () => {
  test('a request is answered on the service subject; a retry with the same message ID gets the recorded reply without running again; a failing one is retried, dead-lettered and answered with its reason', async () => {
    const agent = 'summarizer';
    const runtime = await startRuntime(agent);
    // The request-router may send work to every agent (work.*), hence requests to every service subject.
    const caller = await link.agent('request-router');
    const reply = await caller.request(requestSubjectOf(agent), '{}', { timeout: 5000, headers: withId('rq-1') });
    expect(reply.headers?.get(SERVICE_ERROR_HEADERS.code) ?? '').toBe('');
    expect(reply.headers?.get(WORKFLOW_HEADERS.workflowId)).toMatch(ULID_PATTERN);
    expect(reply.subject.startsWith(`${inboxPrefix(C, 'request-router')}.`)).toBe(true);
    const again = await caller.request(requestSubjectOf(agent), '{}', { timeout: 5000, headers: withId('rq-1') });
    expect(again.headers?.get(DUPLICATE_HEADER)).toBe('true');
    expect(again.headers?.get(WORKFLOW_HEADERS.workflowId)).toBe(reply.headers?.get(WORKFLOW_HEADERS.workflowId));

    const failed = await caller.request(requestSubjectOf(agent), JSON.stringify({ poison: true }), { timeout: 10000, headers: withId('rq-2') });
    expect(failed.headers?.get(SERVICE_ERROR_HEADERS.code)).toBe('500');
    expect(failed.headers?.get(SERVICE_ERROR_HEADERS.error)).toMatch(/poison payload/);
    const dead = await (await jetstreamManager(provisioner)).streams.getMessage(DEAD_LETTER_STREAM, { last_by_subj: `dead.${agent}` });
    expect(dead!.header.get('Byoc-Dead-Reason')).toMatch(/poison payload/);
    expect(dead!.header.get('Byoc-Deliveries')).toBe('3');
    expect(dead!.header.get('Byoc-Trigger')).toBe('request');
    // Retried: answered from the record, not run a fourth time.
    const failedAgain = await caller.request(requestSubjectOf(agent), JSON.stringify({ poison: true }), { timeout: 5000, headers: withId('rq-2') });
    expect(failedAgain.headers?.get(SERVICE_ERROR_HEADERS.code)).toBe('500');
    const counters = await stopRuntime(runtime);
    expect(counters).toMatchObject({ requests: 1, duplicates: 2, retried: 2, deadLettered: 1 });
    expect(runtime.output().match(/will be retried/g)).toHaveLength(2);
    expect(runtime.output()).not.toMatch(/result already recorded/);
    expect(await resultCount(agent)).toBe(1);
    expect(stepRecords({ agent }).map((s) => `${s.trigger}:${s.status}:${s.statusCode}`))
      .toEqual(['request:succeeded:200', 'request:retried:500', 'request:retried:500', 'request:dead-lettered:500']);
  });

  test('kill -9 mid-request: the caller\'s retry is taken over by another task once the claim lapses, and runs exactly once', async () => {
    const agent = 'log-analyst';
    const caller = await link.agent('request-router');
    const first = await startRuntime(agent);
    await expect(caller.request(requestSubjectOf(agent), JSON.stringify({ sleepMs: 4000 }), { timeout: 1000, headers: withId('rq-kill') })).rejects.toThrow(/timeout/i);
    const kv = await new Kvm(provisioner).open(processedBucketOf(agent));
    const claim = await kv.get(`claim.${sha256('request:rq-kill')}`);
    expect(JSON.parse(claim!.string())).toMatchObject({ attempts: 1 });
    await killRuntime(first);
    const second = await startRuntime(agent);
    // The caller retries with the same ID until answered; while the dead task's claim holds, it is told 409.
    let answer: Msg | undefined;
    const codes: string[] = [];
    await eventually(async () => {
      try {
        const m = await caller.request(requestSubjectOf(agent), JSON.stringify({ sleepMs: 4000 }), { timeout: 8000, headers: withId('rq-kill') });
        const code = m.headers?.get(SERVICE_ERROR_HEADERS.code) ?? '';
        codes.push(code);
        if (code === '') answer = m;
      } catch { /* no answer yet */ }
      if (!answer) await sleep(300);
      return !!answer;
    }, 40000, 'the request answered');
    expect(codes.filter((c) => c !== '' && c !== '409')).toEqual([]);
    expect(await hasResult(agent, 'rq-kill')).toBe(true);
    const again = await caller.request(requestSubjectOf(agent), '{}', { timeout: 5000, headers: withId('rq-kill') });
    expect(again.headers?.get(DUPLICATE_HEADER)).toBe('true');
    const counters = await stopRuntime(second);
    expect(counters).toMatchObject({ requests: 1, deadLettered: 0 });
    expect(second.output()).not.toMatch(/result already recorded/);
    expect(await resultCount(agent)).toBe(1);
    // The second task's attempt is the item's second: the first task's is counted in the claim.
    expect(stepRecords({ agent }).map((s) => `${s.status}:${s.statusCode}`)).toEqual(['succeeded:200']);
    expect(await kv.get(`claim.${sha256('request:rq-kill')}`).then((e) => e?.operation ?? 'none')).not.toBe('PUT');
  });

  test('tasks share the service subject as one queue group; a reply subject outside the customer\'s inboxes gets nothing', async () => {
    const agent = 'qa-assistant';
    const [a, b] = await Promise.all([startRuntime(agent), startRuntime(agent)]);
    const caller = await link.agent('request-router');
    for (let i = 0; i < 20; i++) {
      const r = await caller.request(requestSubjectOf(agent), '{}', { timeout: 5000, headers: withId(`qa-${i}`) });
      expect(r.headers?.get(SERVICE_ERROR_HEADERS.code) ?? '').toBe('');
    }
    const atGateway = await link.gatewayObserver();
    const outbox: string[] = [];
    atGateway.subscribe('boundary.outbox.>', { callback: (_e, m) => { outbox.push(m.subject); } });
    await atGateway.flush();
    // A caller naming the agent's own outbox subject as the reply: the agent would have published there as itself.
    caller.publish(requestSubjectOf(agent), '{}', { reply: `boundary.outbox.${agent}.usage`, headers: withId('qa-forged') });
    await caller.flush();
    await eventually(() => a.output().includes('request refused') || b.output().includes('request refused'), 5000, 'the forged request refused');
    const [ca, cb] = [await stopRuntime(a), await stopRuntime(b)];
    expect(ca.requests + cb.requests).toBe(20);
    expect(Math.min(ca.requests, cb.requests)).toBeGreaterThan(0);
    expect(ca.requestsRefused + cb.requestsRefused).toBe(1);
    expect(outbox).toEqual([]);
    expect(await hasResult(agent, 'qa-forged')).toBe(false);
  });
});

describe('step records', () => {
  test('a workflow started by a request continues through an event to a second agent: same workflow ID, the next step, each path its trigger', async () => {
    const generator = await startRuntime('code-generator'); // request agent, publishes events.change.proposed
    const reviewer = await startRuntime('code-reviewer'); // event agent, declares events.change.proposed
    const caller = await link.agent('request-router');
    const reply = await caller.request(requestSubjectOf('code-generator'), JSON.stringify({ forward: 'events.change.proposed' }), { timeout: 5000, headers: withId('wf-1', { [WORKFLOW_HEADERS.requestId]: 'req-wf-1' }) });
    const workflowId = reply.headers!.get(WORKFLOW_HEADERS.workflowId);
    expect(workflowId).toMatch(ULID_PATTERN);
    await eventually(() => stepRecords({ agent: 'code-reviewer', workflowId }).length === 1, 10000, 'the reviewer\'s step record');
    // The generator's record and the reviewer's may arrive in either order.
    expect(stepRecords({ workflowId }).sort((x, y) => x.stepId - y.stepId).map((s) => [s.agent, s.stepId, s.trigger, s.status])).toEqual([
      ['code-generator', 0, 'request', 'succeeded'],
      ['code-reviewer', 1, 'event', 'succeeded'],
    ]);
    // The event itself carried the workflow, the next step and the request ID.
    const event = seen.find((m) => m.subject === 'events.change.proposed' && m.headers?.get(WORKFLOW_HEADERS.workflowId) === workflowId)!;
    expect(event.headers!.get(WORKFLOW_HEADERS.stepId)).toBe('1');
    expect(event.headers!.get(WORKFLOW_HEADERS.requestId)).toBe('req-wf-1');
    await stopRuntime(generator);
    await stopRuntime(reviewer);
  });

  test('in process: the record carries the tokens the agent counted; the item runs inside the trace hooks and every header set published is injected', async () => {
    const agent = 'estimator';
    const nc = await link.agent(agent);
    const spans: { name: string; attributes: Record<string, string | number>; parent?: string }[] = [];
    let injected = 0;
    const tracing: TraceHooks = {
      around: async (headers, span, fn) => { spans.push({ ...span, parent: headers?.get('traceparent') }); return fn(); },
      inject: (h) => { h.set('traceparent', `00-${'1'.repeat(32)}-${String(++injected).padStart(16, '0')}-01`); },
    };
    const config = loadConfig({ BYOC_AGENT: agent, BYOC_CUSTOMER: C, BYOC_TRIGGER: 'request', NATS_URL: 'x', NATS_PASSWORD_SECRET_ARN: secretArns[agent], NATS_INBOX_PREFIX: inboxPrefix(C, agent), BYOC_BACKOFF_MS: '50' });
    const quiet = { info: () => undefined, warn: () => undefined };
    const host = new RuntimeHost(nc, {
      name: 'counting',
      handle: async (_item, ctx) => { ctx.recordLlmTokens(120, 30); ctx.recordLlmTokens(5, 12); return 'answer'; },
    }, config, { log: quiet, secret: async () => '' }, () => undefined, tracing);
    await host.start();
    try {
      const caller = await link.agent('request-router');
      const h = withId('tokens-1', { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` });
      const reply = await caller.request(requestSubjectOf(agent), '{}', { timeout: 5000, headers: h });
      expect(reply.string()).toBe('answer');
      expect(reply.headers?.get('traceparent')).toMatch(/^00-1{32}-/);
      await eventually(() => stepRecords({ agent }).length === 1, 5000, 'the step record');
      expect(stepRecords({ agent })[0]).toMatchObject({ llmTokensIn: 125, llmTokensOut: 42, trigger: 'request', status: 'succeeded' });
      const record = seen.find((m) => m.subject === STEP_STATUS_SUBJECT && parseStepStatus(m.data).agent === agent)!;
      expect(record.headers!.get('traceparent')).toMatch(/^00-1{32}-/);
      expect(spans).toEqual([{ name: `request ${requestSubjectOf(agent)}`, parent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, attributes: expect.objectContaining({ agent, trigger: 'request', attempt: 1 }) }]);
      expect(injected).toBeGreaterThanOrEqual(2);
    } finally {
      await host.stop();
    }
  });
});

describe('inbound boundary kinds', () => {
  test('a control message from the gateway is handled by one task of the agent that declared it, once however often it arrives', async () => {
    // In process (the workflow-orchestrator's own implementation needs its database): two tasks of the agent
    // that declares boundary.inbox.control, each with its own connection as that agent.
    const agent = 'workflow-orchestrator';
    const spec = AGENT_CATALOG.find((x) => x.name === agent)!;
    const handled: { task: number; id: string; trigger: string }[] = [];
    const quiet = { info: () => undefined, warn: () => undefined };
    const hosts = await Promise.all([1, 2].map(async (task) => {
      const config = loadConfig({ BYOC_AGENT: agent, BYOC_CUSTOMER: C, BYOC_TRIGGER: spec.trigger, BYOC_SUBJECTS: JSON.stringify({ subscribe: spec.subjects.subscribe.filter((x) => !x.startsWith('events.')), publish: [] }),
        NATS_URL: 'x', NATS_PASSWORD_SECRET_ARN: secretArns[agent], NATS_INBOX_PREFIX: inboxPrefix(C, agent), BYOC_BACKOFF_MS: '50' });
      const host = new RuntimeHost(await link.agent(agent), { name: 'control', handle: async (item) => { handled.push({ task, id: item.id, trigger: item.trigger }); } },
        config, { log: quiet, secret: async () => '' });
      await host.start();
      return host;
    }));
    try {
      const gateway = await link.gatewayLocal(); // the only source of boundary.inbox.<kind>
      const body = JSON.stringify({ action: 'pause-workflow', probe: 'inbound-1' });
      gateway.publish('boundary.inbox.control', body);
      await gateway.flush();
      await eventually(() => handled.length === 1, 5000, 'the control message handled');
      gateway.publish('boundary.inbox.control', body);
      await gateway.flush();
      await eventually(() => hosts[0].counters.duplicates + hosts[1].counters.duplicates === 1, 5000, 'the repeat recognised');
      expect(handled).toEqual([{ task: expect.any(Number), id: `inbox:${sha256(Buffer.from(body).toString('base64'))}`, trigger: 'request' }]);
      expect(hosts[0].counters.inbound + hosts[1].counters.inbound).toBe(1);
    } finally {
      await Promise.all(hosts.map((h) => h.stop()));
    }
  });
});

describe('leaf permissions per path', () => {
  test('an agent uses only its own event durables, gets events only through them, serves only its own service subject in its queue group, publishes ticks only when scheduled', async () => {
    const reviewer = await link.agent('code-reviewer'); // event agent: events.change.proposed
    const reviewerErrors = permissionErrors(reviewer);
    const refused = async (nc: NatsConnection, subject: string) => {
      await expect(nc.request(subject, '', { timeout: 1000 })).rejects.toThrow(/permission|timeout|no responders/i);
    };
    for (const subject of [
      `$JS.API.CONSUMER.MSG.NEXT.${EVENTS_STREAM}.${eventDurableOf('triage', 'events.ticket.opened')}`,
      `$JS.API.CONSUMER.INFO.${EVENTS_STREAM}.${eventDurableOf('triage', 'events.ticket.opened')}`,
      `$JS.API.STREAM.INFO.${EVENTS_STREAM}`, `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}`, `$JS.API.CONSUMER.DURABLE.CREATE.${EVENTS_STREAM}.forge`,
      `$JS.API.CONSUMER.DELETE.${EVENTS_STREAM}.${eventDurableOf('code-reviewer', 'events.change.proposed')}`,
    ]) await refused(reviewer, subject);
    // Its own durable answers.
    const info = await reviewer.request(`$JS.API.CONSUMER.INFO.${EVENTS_STREAM}.${eventDurableOf('code-reviewer', 'events.change.proposed')}`, '', { timeout: 2000 });
    expect(JSON.parse(info.string()).name).toBe(eventDurableOf('code-reviewer', 'events.change.proposed'));
    const before = reviewerErrors.length;
    // No core subscription to its events (they come through the durable), none to another agent's service subject.
    reviewer.subscribe('events.change.proposed');
    reviewer.subscribe(requestSubjectOf('summarizer'), { queue: requestQueueOf('summarizer') });
    // A tick on its own work queue: it has no schedule.
    reviewer.publish('work.code-reviewer', '{}');
    await reviewer.flush().catch(() => undefined);
    await eventually(() => reviewerErrors.length >= before + 3, 3000, 'three violations reported');

    // A request agent: its service subject only in its own queue group.
    const summarizer = await link.agent('summarizer');
    const summarizerErrors = permissionErrors(summarizer);
    summarizer.subscribe(requestSubjectOf('summarizer'), { queue: requestQueueOf('summarizer') });
    await summarizer.flush();
    await sleep(200);
    expect(summarizerErrors).toEqual([]);
    summarizer.subscribe(requestSubjectOf('summarizer'));
    summarizer.subscribe(requestSubjectOf('summarizer'), { queue: 'elsewhere' });
    await summarizer.flush().catch(() => undefined);
    await eventually(() => summarizerErrors.length >= 2, 3000, 'subscriptions outside its queue group refused');

    // A scheduled agent publishes its own ticks.
    const meter = await link.agent('usage-meter');
    const meterErrors = permissionErrors(meter);
    meter.publish('work.usage-meter', '{"probe":true}', { headers: withId('probe-tick') });
    await meter.flush();
    await eventually(() => seen.some((m) => m.headers?.get('Nats-Msg-Id') === 'probe-tick'), 3000, 'the tick on the work queue');
    expect(meterErrors).toEqual([]);
  });
});

describe('schedule path', () => {
  test('two runtimes of a scheduled agent: each publishes every tick, the work stream keeps one, it runs exactly once', async () => {
    (await twoRuntimes)();
  }, 200000);

  test('kill -9 mid scheduled item: another runtime completes the tick exactly once', async () => {
    (await killMidTick)();
  }, 200000);
});
