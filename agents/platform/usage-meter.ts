import { BOUNDARY_CONTRACT, BoundaryContract, MessageKind } from '../../lib/boundary-contract';
import { canonicalBytes } from '../../lib/contract-validator';
import { OUTBOX_PREFIX } from '../../lib/nats-config';
import { parseStepStatus, STEP_STATUS_SUBJECT } from '../../lib/step-status';
import { Agent, AgentContext, WorkItem } from '../runtime/agent';
import { Migration, TENANT_COLUMN_SQL, tenantIsolationSql } from '../runtime/state';

/**
 * Runs one parameterized statement and returns its rows: the agent's pool scoped to one tenant (the meter's
 * records are the plane's own bookkeeping: tenant `plane`, `METER_TENANT`).
 */
export type Sql = <R extends Record<string, unknown>>(text: string, values?: readonly unknown[]) => Promise<R[]>;

export const USAGE_METER = 'usage-meter';
/** The tenant the meter's rows belong to (row-level security scopes every query to one tenant). */
export const METER_TENANT = 'plane';
/** A usage period is closed once it is this old (the contract's usage kind is reported per five minutes). */
export const USAGE_PERIOD_MS = 5 * 60_000;
/** Windows and periods older than this are not sent any more (counted as expired, logged): the vendor's view is current, not archival. */
export const MAX_BACKLOG_MS = 24 * 3600_000;

const kind = (name: string, contract: BoundaryContract): MessageKind => {
  const k = contract.kinds.find((x) => x.name === name);
  if (!k) throw new Error(`the boundary contract has no ${name} kind`);
  return k;
};

/**
 * The usage-meter's tables. Each step record is stored once (its natural key: workflow, step, agent, start and
 * status), with the window and the period it is assigned to when one closes. Assignment happens before
 * anything is sent, so a crash between sending and recording that it was sent resends the same window with the
 * same values (the vendor stores a window by its start: the same values again).
 */
export const USAGE_METER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'usage meter: step records, windows and periods',
    sql: `
      CREATE TABLE meter_steps (
        id bigserial PRIMARY KEY,
        record_key text NOT NULL UNIQUE,
        agent text NOT NULL,
        trigger text NOT NULL,
        status text NOT NULL,
        status_code integer NOT NULL,
        duration_ms integer NOT NULL,
        tokens_in bigint NOT NULL,
        tokens_out bigint NOT NULL,
        received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        metrics_window bigint,
        usage_period bigint,
        ${TENANT_COLUMN_SQL}
      );
      CREATE INDEX meter_steps_unassigned_metrics ON meter_steps (id) WHERE metrics_window IS NULL;
      CREATE INDEX meter_steps_unassigned_usage ON meter_steps (id) WHERE usage_period IS NULL;
      CREATE TABLE meter_windows (
        kind text NOT NULL CHECK (kind IN ('metrics', 'usage')),
        start_ms bigint NOT NULL,
        end_ms bigint NOT NULL,
        sent_at timestamptz,
        ${TENANT_COLUMN_SQL},
        PRIMARY KEY (kind, start_ms)
      );
      ${tenantIsolationSql('meter_steps')}
      ${tenantIsolationSql('meter_windows')}`,
  },
];

interface StepRow extends Record<string, unknown> { agent: string; trigger: string; status: string; status_code: number; duration_ms: number; tokens_in: string; tokens_out: string }

/** A point of the contract's metrics kind. */
export interface MetricPoint { metric: string; agent: string; statusCode?: number; trigger?: string; value: number }

/**
 * The contract's metrics for one window, from the step records received in it: per agent and trigger, the
 * number of requests by status code, the number of errors (failed or dead-lettered attempts) and the mean
 * duration in ms. Deterministic: the same records give the same points in the same order.
 */
export function metricPoints(rows: readonly StepRow[]): MetricPoint[] {
  const groups = new Map<string, { agent: string; trigger: string; byCode: Map<number, number>; errors: number; durations: number; n: number }>();
  for (const r of rows) {
    if (r.status === 'started') continue;
    const key = `${r.agent}\u0000${r.trigger}`;
    const g = groups.get(key) ?? { agent: r.agent, trigger: r.trigger, byCode: new Map(), errors: 0, durations: 0, n: 0 };
    g.byCode.set(r.status_code, (g.byCode.get(r.status_code) ?? 0) + 1);
    if (r.status === 'failed' || r.status === 'dead-lettered' || r.status === 'retried') g.errors++;
    g.durations += r.duration_ms;
    g.n++;
    groups.set(key, g);
  }
  const points: MetricPoint[] = [];
  for (const g of [...groups.values()].sort((a, b) => (a.agent + a.trigger).localeCompare(b.agent + b.trigger))) {
    for (const [code, n] of [...g.byCode].sort((a, b) => a[0] - b[0])) points.push({ metric: 'agent.requests', agent: g.agent, statusCode: code, trigger: g.trigger, value: n });
    points.push({ metric: 'agent.request.errors', agent: g.agent, trigger: g.trigger, value: g.errors });
    points.push({ metric: 'agent.request.duration', agent: g.agent, trigger: g.trigger, value: Math.round((g.durations / g.n) * 1000) / 1000 });
  }
  return points;
}

/**
 * Splits a window's points into messages the contract accepts: at most the schema's `maxItems` points and,
 * serialized with room for the gateway's signature, at most the kind's `maxBytes`. The vendor stores each point
 * by window and series, so a window sent in two messages is the same window.
 */
export function metricsMessages(windowStart: number, windowEnd: number, points: readonly MetricPoint[], contract: BoundaryContract = BOUNDARY_CONTRACT): Uint8Array[] {
  const metrics = kind('metrics', contract);
  const pointsField = metrics.schema.fields.points;
  const maxItems = pointsField.type === 'array' ? pointsField.maxItems : 200;
  // The signature field the gateway adds: `,"signature":"<86 base64url characters>"`.
  const budget = metrics.maxBytes - 100;
  const out: Uint8Array[] = [];
  let batch: MetricPoint[] = [];
  const encode = (p: MetricPoint[]) => canonicalBytes({ windowStart, windowEnd, points: p });
  for (const p of points) {
    if (batch.length > 0 && (batch.length >= maxItems || encode([...batch, p]).length > budget)) {
      out.push(new Uint8Array(encode(batch)));
      batch = [];
    }
    batch.push(p);
  }
  if (batch.length > 0 || out.length === 0) out.push(new Uint8Array(encode(batch)));
  return out;
}

/** Usage per agent for one period, in the contract's usage shape (compute rounded up to whole seconds). */
export function usageMessages(periodStart: number, periodEnd: number, rows: readonly StepRow[]): Uint8Array[] {
  const byAgent = new Map<string, { invocations: number; ms: number; tin: number; tout: number }>();
  for (const r of rows) {
    if (r.status === 'started') continue;
    const a = byAgent.get(r.agent) ?? { invocations: 0, ms: 0, tin: 0, tout: 0 };
    a.invocations++;
    a.ms += r.duration_ms;
    a.tin += Number(r.tokens_in);
    a.tout += Number(r.tokens_out);
    byAgent.set(r.agent, a);
  }
  return [...byAgent].sort((a, b) => a[0].localeCompare(b[0])).map(([agent, a]) => new Uint8Array(canonicalBytes({
    periodStart, periodEnd, agent, invocations: a.invocations, computeSeconds: Math.ceil(a.ms / 1000), llmTokensIn: a.tin, llmTokensOut: a.tout,
  })));
}

export interface MeterCounters { records: number; duplicateRecords: number; windowsSent: number; periodsSent: number; messages: number; expired: number }

/**
 * The usage-meter: stores every step record the agents publish (`events.workflow.status`), and at each tick of its
 * schedule (a `work.usage-meter` item, once a minute) closes the current metrics window (everything received
 * since the last one) and, every five minutes, the usage period, and hands them to the gateway on
 * `boundary.outbox.usage-meter.<kind>`. The gateway signs each metrics message with the customer's audit key; the
 * vendor verifies it. Only counts, durations and token numbers leave: never a payload, never a workflow ID.
 */
export class UsageMeter implements Agent {
  public readonly name = USAGE_METER;
  public readonly counters: MeterCounters = { records: 0, duplicateRecords: 0, windowsSent: 0, periodsSent: 0, messages: 0, expired: 0 };

  constructor(private readonly sql: Sql, private readonly agentName = USAGE_METER, private readonly contract: BoundaryContract = BOUNDARY_CONTRACT) {}

  public async handle(item: WorkItem, ctx: AgentContext): Promise<void> {
    if (item.subject === STEP_STATUS_SUBJECT) return this.record(item);
    return this.tick(ctx);
  }

  private async record(item: WorkItem): Promise<void> {
    // A malformed record throws: retried, then dead-lettered with this reason (never dropped silently).
    const s = parseStepStatus(item.data);
    const key = `${s.workflowId}:${s.stepId}:${s.agent}:${s.startedAt}:${s.status}`;
    const inserted = await this.sql(
      `INSERT INTO meter_steps (record_key, agent, trigger, status, status_code, duration_ms, tokens_in, tokens_out)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (record_key) DO NOTHING RETURNING id`,
      [key, s.agent, s.trigger, s.status, s.statusCode, s.durationMs, s.llmTokensIn, s.llmTokensOut]);
    if (inserted.length === 0) this.counters.duplicateRecords++;
    else this.counters.records++;
  }

  /** Closes and sends what is due. Safe to run twice at once or again after a crash: every step is idempotent. */
  public async tick(ctx: Pick<AgentContext, 'publish' | 'log'>): Promise<void> {
    const [{ now }] = await this.sql<{ now: string }>(`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now`);
    const nowMs = Number(now);
    await this.close('metrics', nowMs, 0);
    await this.close('usage', nowMs, USAGE_PERIOD_MS);
    await this.send('metrics', ctx);
    await this.send('usage', ctx);
    // Records of windows and periods both sent, a day old: no longer needed.
    await this.sql(`DELETE FROM meter_steps s WHERE received_at < clock_timestamp() - interval '1 day'
      AND EXISTS (SELECT 1 FROM meter_windows w WHERE w.kind = 'metrics' AND w.start_ms = s.metrics_window AND w.sent_at IS NOT NULL)
      AND EXISTS (SELECT 1 FROM meter_windows w WHERE w.kind = 'usage' AND w.start_ms = s.usage_period AND w.sent_at IS NOT NULL)`);
  }

  /**
   * Opens a new window ending now (when the last one is at least `minLength` old) and assigns it every record
   * not yet in one: one statement each, so a record is in exactly one window of each kind.
   */
  private async close(k: 'metrics' | 'usage', nowMs: number, minLength: number): Promise<void> {
    const column = k === 'metrics' ? 'metrics_window' : 'usage_period';
    const [last] = await this.sql<{ end_ms: string }>(`SELECT end_ms FROM meter_windows WHERE kind = $1 ORDER BY start_ms DESC LIMIT 1`, [k]);
    const start = last ? Number(last.end_ms) : nowMs - Math.max(minLength, 60_000);
    if (nowMs - start < minLength || nowMs <= start) return;
    const created = await this.sql(`INSERT INTO meter_windows (kind, start_ms, end_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING start_ms`, [k, start, nowMs]);
    if (created.length === 0) return; // another tick closed it
    await this.sql(`UPDATE meter_steps SET ${column} = $1 WHERE ${column} IS NULL`, [start]);
  }

  private async send(k: 'metrics' | 'usage', ctx: Pick<AgentContext, 'publish' | 'log'>): Promise<void> {
    const column = k === 'metrics' ? 'metrics_window' : 'usage_period';
    const due = await this.sql<{ start_ms: string; end_ms: string }>(`SELECT start_ms, end_ms FROM meter_windows WHERE kind = $1 AND sent_at IS NULL ORDER BY start_ms`, [k]);
    for (const w of due) {
      const start = Number(w.start_ms);
      const end = Number(w.end_ms);
      if (end < Date.now() - MAX_BACKLOG_MS) {
        this.counters.expired++;
        ctx.log.warn({ kind: k, windowStart: start }, 'window too old to send: marked expired');
        await this.sql(`UPDATE meter_windows SET sent_at = clock_timestamp() WHERE kind = $1 AND start_ms = $2`, [k, start]);
        continue;
      }
      const rows = await this.sql<StepRow>(`SELECT agent, trigger, status, status_code, duration_ms, tokens_in, tokens_out FROM meter_steps WHERE ${column} = $1`, [start]);
      const messages = k === 'metrics' ? metricsMessages(start, end, metricPoints(rows), this.contract) : usageMessages(start, end, rows);
      for (const m of messages) await ctx.publish(`${OUTBOX_PREFIX}.${this.agentName}.${k}`, m);
      await this.sql(`UPDATE meter_windows SET sent_at = clock_timestamp() WHERE kind = $1 AND start_ms = $2`, [k, start]);
      this.counters.messages += messages.length;
      if (k === 'metrics') this.counters.windowsSent++;
      else this.counters.periodsSent++;
    }
  }
}
