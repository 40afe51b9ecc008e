import { Pool } from 'pg';
import { BOUNDARY_CONTRACT, Direction } from '../../../lib/boundary-contract';
import { ContractValidator, isRejection } from '../../../lib/contract-validator';
import { encodeStepStatus, newWorkflowId, STEP_STATUS_SUBJECT, StepStatus } from '../../../lib/step-status';
import { METER_TENANT, metricPoints, metricsMessages, USAGE_METER_MIGRATIONS, UsageMeter } from '../../../agents/platform/usage-meter';
import { migrate, TenantPool } from '../../../agents/runtime/state';
import { AgentContext, WorkItem } from '../../../agents/runtime/agent';
import { PostgresServer, startPostgres } from '../../servers/postgres';

let pg: PostgresServer;
let pool: Pool;
const outbound = new ContractValidator(BOUNDARY_CONTRACT.kinds.filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR));

beforeAll(async () => {
  pg = await startPostgres();
  pool = new Pool({ connectionString: pg.url, max: 4 });
});
afterAll(async () => {
  await pool?.end();
  await pg?.stop();
});

let db = 0;
/** A fresh database per test: the meter's tables, migrated as the runtime does. */
async function meterOn(): Promise<{ meter: UsageMeter; pool: Pool }> {
  const name = `meter${++db}`;
  await pool.query(`CREATE DATABASE ${name}`);
  const p = new Pool({ connectionString: pg.url.replace(/\/postgres$/, `/${name}`), max: 2 });
  pools.push(p);
  await migrate(p, USAGE_METER_MIGRATIONS);
  // As the runtime gives it: every statement in the meter's tenant (row-level security).
  const tenants = new TenantPool(p, 2);
  return { meter: new UsageMeter((text, values) => tenants.query(METER_TENANT, text, values)), pool: p };
}
const pools: Pool[] = [];
afterEach(async () => { await Promise.all(pools.splice(0).map((p) => p.end())); });

function ctx(sent: { subject: string; data: Uint8Array }[], fail?: (n: number) => boolean): AgentContext {
  return {
    log: { info: () => undefined, warn: () => undefined },
    secret: async () => '',
    recordLlmTokens: () => undefined,
    publish: async (subject: string, data: string | Uint8Array) => {
      if (fail?.(sent.length)) throw new Error('connection lost');
      sent.push({ subject, data: typeof data === 'string' ? new TextEncoder().encode(data) : data });
    },
  } as unknown as AgentContext;
}

const step = (over: Partial<StepStatus> = {}): Omit<StepStatus, 'v'> => ({
  workflowId: newWorkflowId(), stepId: 0, agent: 'code-reviewer', trigger: 'event', status: 'succeeded', statusCode: 200,
  startedAt: 1_800_000_000_000, durationMs: 1500, llmTokensIn: 100, llmTokensOut: 40, ...over,
});
const item = (s: Omit<StepStatus, 'v'> | Uint8Array, i = 1): WorkItem => ({
  id: `e${i}`, subject: STEP_STATUS_SUBJECT, data: s instanceof Uint8Array ? s : encodeStepStatus(s), requestId: 'r', attempt: 1, trigger: 'event', workflowId: newWorkflowId(), stepId: 1,
});
const tick: WorkItem = { id: 'tick', subject: 'work.usage-meter', data: new Uint8Array(), requestId: 't', attempt: 1, trigger: 'schedule', workflowId: newWorkflowId(), stepId: 0 };
const decode = (d: Uint8Array) => JSON.parse(new TextDecoder().decode(d));

test('a tick turns the step records received since the last one into one metrics window and the usage of each agent, all valid for the contract', async () => {
  const { meter } = await meterOn();
  const sent: { subject: string; data: Uint8Array }[] = [];
  const records = [
    step(), step({ durationMs: 500 }), step({ status: 'failed', statusCode: 500, durationMs: 100, llmTokensIn: 7, llmTokensOut: 0 }),
    step({ agent: 'summarizer', trigger: 'request', durationMs: 2400, llmTokensIn: 1000, llmTokensOut: 300 }),
  ];
  for (const [i, r] of records.entries()) await meter.handle(item(r, i), ctx(sent));
  await meter.handle(tick, ctx(sent));
  const metrics = sent.filter((s) => s.subject === 'boundary.outbox.usage-meter.metrics');
  expect(metrics).toHaveLength(1);
  const window = decode(metrics[0].data);
  expect(window.points).toEqual([
    { metric: 'agent.requests', agent: 'code-reviewer', statusCode: 200, trigger: 'event', value: 2 },
    { metric: 'agent.requests', agent: 'code-reviewer', statusCode: 500, trigger: 'event', value: 1 },
    { metric: 'agent.request.errors', agent: 'code-reviewer', trigger: 'event', value: 1 },
    { metric: 'agent.request.duration', agent: 'code-reviewer', trigger: 'event', value: 700 },
    { metric: 'agent.requests', agent: 'summarizer', statusCode: 200, trigger: 'request', value: 1 },
    { metric: 'agent.request.errors', agent: 'summarizer', trigger: 'request', value: 0 },
    { metric: 'agent.request.duration', agent: 'summarizer', trigger: 'request', value: 2400 },
  ]);
  expect(window.windowEnd).toBeGreaterThan(window.windowStart);
  // What the gateway will check: the canonical encoding of a value valid against the sender's schema.
  for (const s of sent) expect(isRejection(outbound.check(s.subject.split('.').pop()!, s.data))).toBe(false);
});

test('usage: one message per agent and period, compute rounded up to seconds, tokens summed; records of one period are never counted in another', async () => {
  const { meter, pool: p } = await meterOn();
  const sent: { subject: string; data: Uint8Array }[] = [];
  for (const [i, r] of [step(), step({ durationMs: 500, llmTokensIn: 1, llmTokensOut: 2 }), step({ agent: 'summarizer', durationMs: 10 })].entries()) await meter.handle(item(r, i), ctx(sent));
  // The first tick closes the first usage period (everything received before it)...
  await meter.handle(tick, ctx(sent));
  await meter.handle(item(step({ agent: 'summarizer', durationMs: 2000 }), 9), ctx(sent));
  // ... the next one, within five minutes, sends no usage...
  await meter.handle(tick, ctx(sent));
  expect(sent.filter((s) => s.subject.endsWith('.usage'))).toHaveLength(2);
  // ... and once the period is five minutes old (as time passing would make it), the next period is sent.
  await p.query(`UPDATE meter_windows SET start_ms = start_ms - 300000, end_ms = end_ms - 300000 WHERE kind = 'usage'`);
  await p.query(`UPDATE meter_steps SET usage_period = usage_period - 300000 WHERE usage_period IS NOT NULL`);
  await meter.handle(tick, ctx(sent));
  const usage = sent.filter((s) => s.subject.endsWith('.usage')).map((s) => decode(s.data));
  // (The test moved the first period back in the table after it was sent: compare by the order sent.)
  expect(usage).toHaveLength(3);
  const first = usage.slice(0, 2);
  expect(first.map(({ agent, invocations, computeSeconds, llmTokensIn, llmTokensOut }) => ({ agent, invocations, computeSeconds, llmTokensIn, llmTokensOut }))).toEqual([
    { agent: 'code-reviewer', invocations: 2, computeSeconds: 2, llmTokensIn: 101, llmTokensOut: 42 },
    { agent: 'summarizer', invocations: 1, computeSeconds: 1, llmTokensIn: 100, llmTokensOut: 40 },
  ]);
  expect(usage.slice(2)).toEqual([expect.objectContaining({ agent: 'summarizer', invocations: 1, computeSeconds: 2 })]);
  for (const s of sent) expect(isRejection(outbound.check(s.subject.split('.').pop()!, s.data))).toBe(false);
});

test('a record delivered twice is stored once; a malformed record (duplicate key, unknown field, not canonical) is refused with its reason', async () => {
  const { meter } = await meterOn();
  const sent: { subject: string; data: Uint8Array }[] = [];
  const r = step();
  await meter.handle(item(r, 1), ctx(sent));
  await meter.handle(item(r, 2), ctx(sent));
  expect(meter.counters).toMatchObject({ records: 1, duplicateRecords: 1 });
  const good = new TextDecoder().decode(encodeStepStatus(r));
  const hostile = [
    [good.replace('"agent":"code-reviewer"', '"agent":"code-reviewer","agent":"summarizer"'), /canonical|unknown/],
    [good.replace('{', '{"payload":"x",'), /unknown field/],
    [good.replace(':', ': '), /canonical/],
    [good.replace('"durationMs":1500', '"durationMs":-1'), /durationMs/],
    ['\xff\xfe', /./],
  ] as const;
  for (const [text, reason] of hostile) await expect(meter.handle(item(new TextEncoder().encode(text)), ctx(sent))).rejects.toThrow(reason);
  expect(meter.counters.records).toBe(1);
});

test('a crash between sending a window and recording it sent resends the same window with the same values (the vendor stores it by its start)', async () => {
  const { meter, pool: p } = await meterOn();
  for (const [i, r] of [step(), step({ agent: 'summarizer' })].entries()) await meter.handle(item(r, i), ctx([]));
  const first: { subject: string; data: Uint8Array }[] = [];
  await expect(meter.handle(tick, ctx(first, (n) => n >= 0))).rejects.toThrow('connection lost');
  // Records arriving after the crash belong to the next window, not to the one being resent.
  await meter.handle(item(step({ agent: 'planner', trigger: 'request' }), 7), ctx([]));
  const retry: { subject: string; data: Uint8Array }[] = [];
  await meter.handle(tick, ctx(retry));
  const windows = retry.filter((s) => s.subject.endsWith('.metrics')).map((s) => decode(s.data));
  expect(windows).toHaveLength(2);
  expect(windows[0].points.map((x: { agent: string }) => x.agent)).toEqual(expect.arrayContaining(['code-reviewer', 'summarizer']));
  expect(windows[0].points.map((x: { agent: string }) => x.agent)).not.toContain('planner');
  expect(windows[1].points.map((x: { agent: string }) => x.agent)).toEqual(['planner', 'planner', 'planner']);
  expect(windows[1].windowStart).toBe(windows[0].windowEnd);
  const unsent = await p.query(`SELECT count(*)::int AS n FROM meter_windows WHERE sent_at IS NULL AND kind = 'metrics'`);
  expect(unsent.rows[0].n).toBe(0);
});

test('a window with more points than one message may carry is split into messages the contract accepts, none lost', () => {
  const agents = Array.from({ length: 120 }, (_, i) => `agent-${String(i).padStart(3, '0')}-with-a-long-name`.slice(0, 28));
  const rows = agents.flatMap((agent) => [
    { agent, trigger: 'request', status: 'succeeded', status_code: 200, duration_ms: 1000, tokens_in: '0', tokens_out: '0' },
    { agent, trigger: 'request', status: 'failed', status_code: 500, duration_ms: 10, tokens_in: '0', tokens_out: '0' },
  ]);
  const points = metricPoints(rows);
  expect(points).toHaveLength(480);
  const messages = metricsMessages(1, 2, points);
  expect(messages.length).toBeGreaterThan(3);
  const maxBytes = BOUNDARY_CONTRACT.kinds.find((k) => k.name === 'metrics')!.maxBytes;
  for (const m of messages) {
    expect(m.length + 100).toBeLessThanOrEqual(maxBytes);
    expect(isRejection(outbound.check('metrics', m))).toBe(false);
  }
  expect(messages.flatMap((m) => decode(m).points)).toEqual(points);
});
