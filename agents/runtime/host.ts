import { createHash } from 'crypto';
import { ConsumerMessages, jetstream, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { Kvm, KV } from '@nats-io/kv';
import { headers as natsHeaders, Msg, MsgHdrs, NatsConnection, nuid, Subscription } from '@nats-io/nats-core';
import { Agent, AgentContext, WorkItem } from './agent';
import {
  AGENT_DEAD_LETTER_STREAM, durableOf, eventDurableOf, EVENTS_STREAM, inboxPrefix, processedBucketOf, requestQueueOf, requestSubjectOf, WORK_STREAM,
} from '../../lib/nats-config';
import { encodeStepStatus, newWorkflowId, STEP_STATUS_SUBJECT, StepStatusValue, StepTrigger, ULID_PATTERN, WORKFLOW_HEADERS } from '../../lib/step-status';
import { RuntimeConfig } from './config';
import { Scheduler } from './schedule';
import { NO_TRACING, TraceHooks } from './tracing-hooks';

export { EVENTS_STREAM, WORK_STREAM };
export const DEAD_LETTER_STREAM = AGENT_DEAD_LETTER_STREAM;
/** Header of a work item published by the agent's own scheduler (the item's trigger is then `schedule`). */
export const TRIGGER_HEADER = 'Byoc-Trigger';
/** Headers of a request's error reply (the convention of NATS services). */
export const SERVICE_ERROR_HEADERS = { error: 'Nats-Service-Error', code: 'Nats-Service-Error-Code' } as const;
/** Header of a reply served from the processed-items bucket (the request had already been answered). */
export const DUPLICATE_HEADER = 'Byoc-Duplicate';
/** Key prefix, in the processed-items bucket, of an item's attempts so far (after its first). */
export const ATTEMPTS_PREFIX = 'attempts.';
/** The largest reply a request agent may return (it is kept in the processed-items bucket for retries). */
export const MAX_REPLY_BYTES = 512 * 1024;
/** Most run items whose processed records may be on their way at once (see `completing`). */
const MAX_COMPLETING = 16;

export interface HostCounters {
  processed: number; duplicates: number; retried: number; deadLettered: number;
  /** Requests answered (first time) and refused (a reply subject outside the customer's inboxes, or in progress elsewhere). */
  requests: number; requestsRefused: number;
  /** Inbound boundary messages (`boundary.inbox.<kind>`, from the gateway) handled. */
  inbound: number;
  /** Ticks this task stored on the work queue, and ticks another task had already stored (the stream's duplicate window). */
  ticks: number; tickDuplicates: number;
  stepRecords: number;
}

/** The context of the host given by `main`: what the host adds per item (publish, token counts) excluded. */
export type HostContext = Omit<AgentContext, 'publish' | 'recordLlmTokens'>;

/** One attempt of one item, whatever path it came by. */
interface Attempt {
  readonly item: WorkItem;
  /** Idempotency key (hash) in the processed-items bucket. */
  readonly key: string;
  readonly headers?: MsgHdrs;
}

interface RunResult { ok: boolean; reply?: Uint8Array; reason?: string; startedAt: number; durationMs: number; tokensIn: number; tokensOut: number }

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bytes = (v: void | string | Uint8Array) => (v === undefined ? new Uint8Array(0) : typeof v === 'string' ? new TextEncoder().encode(v) : v);

/**
 * The runtime host. Every agent consumes its work queue (`work.<agent>`, its durable on ${WORK_STREAM}); by its
 * declarations it also consumes each `events.*` subject it subscribes to (one durable per subject on
 * ${EVENTS_STREAM}), serves its service subject as a queue group (a request agent), and publishes its own
 * scheduled ticks on its work queue (an agent with a schedule). The streams, consumers and the agent's
 * processed-items bucket are created by the provisioner (the gateway, at start); the agent's NATS user may
 * only use them, never create one.
 *
 * Every path has the same guarantees. An item is acknowledged (a request answered) only after the agent
 * succeeded and its ID was recorded; a failure is retried with backoff; after `maxDeliver` attempts it goes
 * to the dead-letter stream (`dead.<agent>`) with its reason. An item whose ID is recorded is not run again
 * (a request gets its recorded reply). Nothing is dropped silently. After each attempt a step record goes
 * to `events.workflow.status` (except for step records themselves: no record about a record).
 */
export class RuntimeHost {
  public readonly counters: HostCounters = { processed: 0, duplicates: 0, retried: 0, deadLettered: 0, requests: 0, requestsRefused: 0, inbound: 0, ticks: 0, tickDuplicates: 0, stepRecords: 0 };
  private readonly consumers: ConsumerMessages[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private js!: JetStreamClient;
  private processedKv!: KV;
  private requests?: Subscription;
  private readonly inboxes: Subscription[] = [];
  private scheduler?: Scheduler;
  private stopping = false;
  /**
   * Called when a trigger path stops by itself (its consumer or subscription refused or closed by the
   * server): the agent no longer takes what that path brings, so `main` exits and the task is replaced.
   */
  public onFatal: (e: Error) => void = () => undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly agent: Agent,
    private readonly config: RuntimeConfig,
    private readonly ctx: HostContext,
    /** Told the outcome of every attempt the agent ran (telemetry). */
    private readonly onOutcome: (outcome: { ok: boolean; durationMs: number; trigger: StepTrigger }) => void = () => undefined,
    private readonly tracing: TraceHooks = NO_TRACING,
  ) {}

  /** Opens what the agent's declarations call for (all created by the provisioner), then starts. */
  public async start(): Promise<void> {
    this.processedKv = await new Kvm(this.nc).open(processedBucketOf(this.config.agent));
    this.js = jetstream(this.nc);
    await this.consume(WORK_STREAM, durableOf(this.config.agent));
    for (const subject of this.config.eventSubjects) await this.consume(EVENTS_STREAM, eventDurableOf(this.config.agent, subject));
    if (this.config.trigger === 'request') {
      this.requests = this.nc.subscribe(requestSubjectOf(this.config.agent), { queue: requestQueueOf(this.config.agent) });
      const sub = this.requests;
      this.loops.push(this.guard(async () => {
        for await (const m of sub) {
          if (this.stopping) { this.respondError(m, 503, 'the agent is stopping: retry'); continue; }
          await this.track(this.serveRequest(m));
        }
      }));
    }
    // Inbound boundary kinds the agent declared (validated by the gateway, core messages): one task of the
    // agent handles each, with the request path's idempotency (by content), retries and dead letter.
    for (const subject of this.config.inboxSubjects) {
      const sub = this.nc.subscribe(subject, { queue: requestQueueOf(this.config.agent) });
      this.inboxes.push(sub);
      this.loops.push(this.guard(async () => {
        for await (const m of sub) await this.track(this.serveRequest(m, false));
      }));
    }
    if (this.config.schedule) {
      this.scheduler = new Scheduler(this.config.schedule, (tick) => this.publishTick(tick), (e) => this.ctx.log.warn({ agent: this.config.agent, error: e.message }, 'scheduled tick not published'));
      this.scheduler.start();
    }
  }

  /**
   * Short-lived pulls: a pull left by a crashed runtime stops taking deliveries within seconds. Items are
   * prefetched and run one at a time; the one running and those waiting are kept alive (`working`) a few
   * times per ack wait, so none is redelivered to another task while this one holds it, however long the
   * item before it takes (a long LLM call must not make the next items run twice or use up their deliveries).
   */
  private async consume(stream: string, durable: string): Promise<void> {
    const consumer = await this.js.consumers.get(stream, durable);
    const ackWaitMs = Math.max(300, Number((await consumer.info(true)).config.ack_wait ?? 30e9) / 1e6);
    const messages = await consumer.consume({ max_messages: 16, expires: 5000 });
    this.consumers.push(messages);
    const held: JsMsg[] = [];
    let running: JsMsg | undefined;
    let wake: (() => void) | undefined;
    let ended = false;
    const keepAlive = setInterval(() => {
      for (const m of held) m.working();
      running?.working();
      for (const m of this.completingItems) m.working();
    }, Math.floor(ackWaitMs / 3));
    this.loops.push(this.guard(async () => {
      try {
        for await (const m of messages) {
          held.push(m);
          wake?.();
        }
      } finally {
        ended = true;
        wake?.();
      }
    }));
    this.loops.push(this.guard(async () => {
      try {
        for (;;) {
          while (held.length === 0 && !ended) await new Promise<void>((r) => { wake = r; });
          const m = held.shift();
          if (!m) break;
          if (this.stopping) { m.nak(); continue; }
          running = m;
          await this.track(this.processStored(m, durable));
          running = undefined;
        }
      } finally {
        clearInterval(keepAlive);
      }
    }));
  }

  private guard(loop: () => Promise<void>): Promise<void> {
    return loop().then(() => {
      if (!this.stopping) this.onFatal(new Error('a trigger path ended'));
    }, (e: Error) => {
      if (!this.stopping) this.onFatal(e);
    });
  }

  private async track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    try {
      return await p;
    } finally {
      this.inFlight.delete(p);
    }
  }

  /** The workflow of an item: its header's, or one derived from the item (the same for every attempt of it). */
  private workflowOf(headers: MsgHdrs | undefined, key: string, timeMs: number): { workflowId: string; stepId: number } {
    const given = headers?.get(WORKFLOW_HEADERS.workflowId) ?? '';
    const step = Number(headers?.get(WORKFLOW_HEADERS.stepId) || '0');
    return {
      workflowId: ULID_PATTERN.test(given) ? given : newWorkflowId(timeMs, () => createHash('sha256').update(key).digest()),
      stepId: Number.isInteger(step) && step >= 0 && step <= 999 ? step : 0,
    };
  }

  /** An item stored by JetStream: a work item (plain or scheduled) or an event. */
  private async processStored(m: JsMsg, durable: string): Promise<void> {
    const id = m.headers?.get('Nats-Msg-Id') || `${m.info.stream}:${m.seq}`;
    const event = m.info.stream === EVENTS_STREAM;
    // Work items keep the key they always had; an event's is its durable's (one agent may declare two subjects).
    const key = sha256(event ? `${durable}:${id}` : id);
    // A redelivery may follow a success whose ack was lost (a crash between the two): then the item's ID
    // is recorded and it is acked without running the agent again. A first delivery cannot be a repeat.
    let attempt = 1;
    if (m.info.deliveryCount > 1) {
      if (await this.processedKv.get(key)) {
        this.counters.duplicates++;
        m.ack();
        return;
      }
      // Attempts are counted here, not by the delivery count: a server delivers to the pulls a killed task
      // left behind until they expire, and those deliveries reach no one. The first delivery counts as an
      // attempt (it may have crashed before it could record anything).
      const before = await this.processedKv.get(`${ATTEMPTS_PREFIX}${key}`);
      attempt = (before?.operation === 'PUT' ? Number(before.string()) || 1 : 1) + 1;
      await this.processedKv.put(`${ATTEMPTS_PREFIX}${key}`, String(attempt));
    }
    const trigger: StepTrigger = event ? 'event' : m.headers?.get(TRIGGER_HEADER) === 'schedule' ? 'schedule' : this.config.trigger;
    const a: Attempt = {
      key, headers: m.headers,
      item: {
        id, subject: m.subject, data: m.data, requestId: m.headers?.get(WORKFLOW_HEADERS.requestId) || id, attempt, trigger,
        ...this.workflowOf(m.headers, key, Math.floor(m.info.timestampNanos / 1e6)),
      },
    };
    if (attempt > this.config.maxDeliver) {
      const reason = `no attempt completed in ${this.config.maxDeliver} deliveries (crashed or timed out)`;
      await this.deadLetter(a, reason, attempt - 1);
      await this.stepRecord(a, 'dead-lettered', 504, { startedAt: Date.now(), durationMs: 0, tokensIn: 0, tokensOut: 0 });
      m.term(reason);
      return;
    }
    const r = await this.run(a);
    if (!r.ok) {
      if (attempt >= this.config.maxDeliver) {
        await this.deadLetter(a, r.reason!, attempt);
        await this.stepRecord(a, 'dead-lettered', 500, r);
        m.term(r.reason);
        return;
      }
      this.counters.retried++;
      this.ctx.log.warn({ agent: this.config.agent, id, requestId: a.item.requestId, attempt, reason: r.reason }, 'work item failed, will be redelivered');
      await this.stepRecord(a, 'retried', 500, r);
      m.nak(this.backoff(attempt));
      return;
    }
    // The record, not the ack, is what keeps the item from running twice: the ack need not be confirmed. The
    // record's round trip overlaps the next item's run (items still run one at a time): the item is acked only
    // once its record is stored, so a crash before that runs it again, exactly as it would have without the overlap.
    await this.completing(m, this.processedKv.put(key, id).then(async () => {
      await this.stepRecord(a, 'succeeded', 200, r);
      m.ack();
      this.counters.processed++;
    }));
  }

  /**
   * Items run, whose processed records are on their way (most `MAX_COMPLETING` at once: beyond that the next item
   * waits). Each is kept alive until acked; a record that cannot be stored stops the runtime, as it did when awaited.
   */
  private readonly completingItems = new Set<JsMsg>();
  private async completing(m: JsMsg, done: Promise<void>): Promise<void> {
    this.completingItems.add(m);
    const tracked = this.track(done).then(() => undefined, (e: Error) => {
      if (!this.stopping) this.onFatal(e);
    }).finally(() => this.completingItems.delete(m));
    if (this.completingItems.size >= MAX_COMPLETING) await tracked;
  }

  private backoff(attempt: number): number {
    return this.config.backoffMs[Math.min(attempt - 1, this.config.backoffMs.length - 1)];
  }

  /** Runs the agent once on the item, inside a span, with the item's context. Never throws. */
  private async run(a: Attempt): Promise<RunResult> {
    const { item } = a;
    const tokens = { in: 0, out: 0 };
    let published = 0;
    const ctx: AgentContext = {
      ...this.ctx,
      recordLlmTokens: (tokensIn, tokensOut) => {
        tokens.in += Math.max(0, Math.round(tokensIn) || 0);
        tokens.out += Math.max(0, Math.round(tokensOut) || 0);
      },
      publish: async (subject, data) => {
        const h = this.headersOf(item, Math.min(item.stepId + 1, 999));
        if (subject.startsWith('work.') || subject.startsWith('events.')) {
          // The same ID for the same publish of every attempt of the item: the stream stores it once.
          await this.js.publish(subject, data, { headers: h, msgID: `${this.config.agent}:${a.key.slice(0, 32)}:${published++}` });
        } else {
          this.nc.publish(subject, data, { headers: h });
        }
      },
    };
    const startedAt = Date.now();
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
    const span = {
      name: `${item.trigger} ${item.subject}`,
      attributes: { agent: this.config.agent, trigger: item.trigger, 'messaging.destination.name': item.subject, 'messaging.message.id': item.id, attempt: item.attempt, 'byoc.workflow_id': item.workflowId, 'byoc.step': item.stepId },
    };
    try {
      const reply = bytes(await this.tracing.around(a.headers, span, () => this.agent.handle(item, ctx)));
      if (reply.length > MAX_REPLY_BYTES) throw new Error(`the reply is ${reply.length} bytes, more than ${MAX_REPLY_BYTES}`);
      const durationMs = elapsed();
      this.onOutcome({ ok: true, durationMs, trigger: item.trigger });
      return { ok: true, reply, startedAt, durationMs, tokensIn: tokens.in, tokensOut: tokens.out };
    } catch (e) {
      const durationMs = elapsed();
      this.onOutcome({ ok: false, durationMs, trigger: item.trigger });
      return { ok: false, reason: String((e as Error)?.message ?? e).slice(0, 256), startedAt, durationMs, tokensIn: tokens.in, tokensOut: tokens.out };
    }
  }

  /** Headers of what the host publishes for an item: request ID, workflow, step, trace context. */
  private headersOf(item: WorkItem, stepId: number): MsgHdrs {
    const h = natsHeaders();
    h.set(WORKFLOW_HEADERS.requestId, item.requestId);
    h.set(WORKFLOW_HEADERS.workflowId, item.workflowId);
    h.set(WORKFLOW_HEADERS.stepId, String(stepId));
    this.tracing.inject(h);
    return h;
  }

  /** The step record of one attempt, on events.workflow.status (stored by the events stream, once per ID). */
  private async stepRecord(a: Attempt, status: StepStatusValue, statusCode: number, r: Omit<RunResult, 'ok'>): Promise<void> {
    if (a.item.subject === STEP_STATUS_SUBJECT) return;
    const { item } = a;
    const record = encodeStepStatus({
      workflowId: item.workflowId, stepId: item.stepId, agent: this.config.agent, trigger: item.trigger, status, statusCode,
      startedAt: r.startedAt, durationMs: Math.min(r.durationMs, 86400000), llmTokensIn: r.tokensIn, llmTokensOut: r.tokensOut,
    });
    try {
      // A plain publish, stored by the events stream without a reply: it leaves before the item's ack on the
      // same connection and costs no round trip. No message ID is needed: an attempt has one record, and a
      // redelivery after a success finds the processed record and runs nothing (so records nothing).
      this.nc.publish(STEP_STATUS_SUBJECT, record, { headers: this.headersOf(item, item.stepId) });
      this.counters.stepRecords++;
    } catch (e) {
      // The item's outcome does not depend on its record: it is acked (or retried) all the same.
      this.ctx.log.warn({ agent: this.config.agent, id: item.id, error: (e as Error).message }, 'step record not stored');
    }
  }

  private async deadLetter(a: Attempt, reason: string, attempts: number): Promise<void> {
    const h = this.headersOf(a.item, a.item.stepId);
    h.set('Nats-Msg-Id', `dead:${a.item.id}`);
    h.set('Byoc-Dead-Reason', reason);
    h.set('Byoc-Original-Subject', a.item.subject);
    h.set('Byoc-Deliveries', String(attempts));
    h.set(TRIGGER_HEADER, a.item.trigger);
    await this.js.publish(`dead.${this.config.agent}`, a.item.data, { headers: h });
    this.counters.deadLettered++;
    this.ctx.log.warn({ agent: this.config.agent, id: a.item.id, trigger: a.item.trigger, reason, deliveries: attempts }, 'work item dead-lettered');
  }

  // The request path --------------------------------------------------------------------------------

  private respondError(m: Msg, code: number, reason: string, item?: WorkItem): void {
    if (!this.replyAllowed(m)) return;
    const h = item ? this.headersOf(item, item.stepId) : natsHeaders();
    if (!item) this.tracing.inject(h);
    h.set(SERVICE_ERROR_HEADERS.error, reason);
    h.set(SERVICE_ERROR_HEADERS.code, String(code));
    m.respond(new Uint8Array(0), { headers: h });
  }

  /** Replies go only to a customer-scoped inbox (`_INBOX_<customer>.<caller>.…`), never to a subject a caller names. */
  private replyAllowed(m: Msg): boolean {
    return !!m.reply && m.reply.startsWith(`${inboxPrefix(this.config.customerId)}.`);
  }

  /**
   * One request (or, with `reply` false, one inbound boundary message: the same guarantees, no reply, its
   * content as its ID when it has no `Nats-Msg-Id`). Its `Nats-Msg-Id` is its idempotency key: a request already answered gets its recorded
   * reply; one in progress in another task gets a 409 (retry later); one whose task died is taken over once
   * that task's claim has lapsed (`requestLeaseMs`). Failures are retried here with backoff; the last one is
   * dead-lettered and answered with a 500 and the reason.
   */
  private async serveRequest(m: Msg, reply = true): Promise<void> {
    const fail = (code: number, reason: string, item?: WorkItem) => { if (reply) this.respondError(m, code, reason, item); };
    const trigger: StepTrigger = reply ? 'request' : this.config.trigger;
    const answer = (data: Uint8Array, h: MsgHdrs) => { if (reply) m.respond(data, { headers: h }); };
    if (reply && !this.replyAllowed(m)) {
      this.counters.requestsRefused++;
      this.ctx.log.warn({ agent: this.config.agent }, 'request refused: its reply subject is not a customer inbox');
      return;
    }
    const given = m.headers?.get('Nats-Msg-Id');
    const id = given || (reply ? `request:${nuid.next()}` : `inbox:${sha256(Buffer.from(m.data).toString('base64'))}`);
    const key = sha256(`request:${id}`);
    const recorded = given || !reply ? await this.processedKv.get(key) : null;
    if (recorded && recorded.value.length > 0) {
      this.counters.duplicates++;
      const outcome = JSON.parse(recorded.string()) as { ok: boolean; body?: string; error?: string; workflowId: string; stepId: number };
      const item = this.requestItem(m, id, key, 0, trigger, outcome);
      if (!outcome.ok) return fail(500, outcome.error ?? 'failed', item);
      const h = this.headersOf(item, item.stepId);
      h.set(DUPLICATE_HEADER, 'true');
      answer(Buffer.from(outcome.body ?? '', 'base64'), h);
      return;
    }
    const claim = await this.claim(key);
    if (!claim) {
      this.counters.requestsRefused++;
      return fail(409, 'in progress in another task: retry later');
    }
    const renew = setInterval(() => void claim.renew().catch(() => undefined), Math.max(100, Math.floor(this.config.requestLeaseMs / 3)));
    try {
      let attempts = claim.attempts;
      const base = this.requestItem(m, id, key, attempts + 1, trigger);
      const record = async (outcome: { ok: boolean; body?: string; error?: string }) =>
        this.processedKv.put(key, JSON.stringify({ ...outcome, workflowId: base.workflowId, stepId: base.stepId }));
      if (attempts >= this.config.maxDeliver) {
        const reason = `no attempt completed in ${this.config.maxDeliver} attempts (crashed or timed out)`;
        const a: Attempt = { key, headers: m.headers, item: base };
        await this.deadLetter(a, reason, attempts);
        await record({ ok: false, error: reason });
        await this.stepRecord(a, 'dead-lettered', 504, { startedAt: Date.now(), durationMs: 0, tokensIn: 0, tokensOut: 0 });
        return fail(504, reason, base);
      }
      for (;;) {
        attempts++;
        await claim.renew(attempts);
        const a: Attempt = { key, headers: m.headers, item: { ...base, attempt: attempts } };
        const r = await this.run(a);
        if (r.ok) {
          await record({ ok: true, body: Buffer.from(r.reply!).toString('base64') });
          await this.stepRecord(a, 'succeeded', 200, r);
          answer(r.reply!, this.headersOf(a.item, a.item.stepId));
          this.counters.processed++;
          if (reply) this.counters.requests++;
          else this.counters.inbound++;
          return;
        }
        if (attempts >= this.config.maxDeliver) {
          await this.deadLetter(a, r.reason!, attempts);
          await record({ ok: false, error: r.reason });
          await this.stepRecord(a, 'dead-lettered', 500, r);
          return fail(500, r.reason!, a.item);
        }
        this.counters.retried++;
        this.ctx.log.warn({ agent: this.config.agent, id, requestId: a.item.requestId, attempt: attempts, reason: r.reason }, 'request failed, will be retried');
        await this.stepRecord(a, 'retried', 500, r);
        await sleep(this.backoff(attempts));
        if (this.stopping && reply) return fail(503, 'the agent is stopping: retry', a.item);
      }
    } finally {
      clearInterval(renew);
      await claim.release();
    }
  }

  private requestItem(m: Msg, id: string, key: string, attempt: number, trigger: StepTrigger, recorded?: { workflowId: string; stepId: number }): WorkItem {
    const workflow = recorded ?? this.workflowOf(m.headers, key, Date.now());
    return { id, subject: m.subject, data: m.data, requestId: m.headers?.get(WORKFLOW_HEADERS.requestId) || id, attempt, trigger, ...workflow };
  }

  /**
   * Claims a request in the processed-items bucket (`claim.<key>`: the attempts so far and until when the
   * claim holds), by compare-and-set: one task at a time runs a given request. A lapsed claim (its task
   * died) is taken over with its attempt count.
   */
  private async claim(key: string): Promise<{ attempts: number; renew(attempts?: number): Promise<void>; release(): Promise<void> } | undefined> {
    const k = `claim.${key}`;
    const lease = this.config.requestLeaseMs;
    const value = (attempts: number) => JSON.stringify({ attempts, until: Date.now() + lease });
    let revision: number;
    let attempts = 0;
    try {
      revision = await this.processedKv.create(k, value(0));
    } catch {
      const held = await this.processedKv.get(k);
      if (!held) return undefined;
      let current: { attempts?: number; until?: number } = {};
      try { current = held.operation === 'PUT' ? JSON.parse(held.string()) : {}; } catch { /* an unreadable claim is a lapsed one */ }
      if (held.operation === 'PUT' && (current.until ?? 0) > Date.now()) return undefined;
      attempts = held.operation === 'PUT' ? current.attempts ?? 0 : 0;
      try {
        revision = await this.processedKv.update(k, value(attempts), held.revision);
      } catch {
        return undefined; // another task took it first
      }
    }
    return {
      attempts,
      renew: async (n?: number) => {
        if (n !== undefined) attempts = n;
        revision = await this.processedKv.update(k, value(attempts), revision);
      },
      release: async () => { await this.processedKv.delete(k, { previousSeq: revision }).catch(() => undefined); },
    };
  }

  // The schedule path -------------------------------------------------------------------------------

  /**
   * Stores one tick on the work queue. Every task of the agent does so at every tick, with the same
   * message ID: the work stream's duplicate window keeps one, so the tick runs once however many tasks run.
   */
  private async publishTick(tickMs: number): Promise<void> {
    const id = `schedule:${this.config.agent}:${tickMs}`;
    const h = natsHeaders();
    h.set(TRIGGER_HEADER, 'schedule');
    h.set(WORKFLOW_HEADERS.workflowId, newWorkflowId(tickMs, () => createHash('sha256').update(id).digest()));
    h.set(WORKFLOW_HEADERS.stepId, '0');
    h.set(WORKFLOW_HEADERS.requestId, id);
    this.tracing.inject(h);
    const body = JSON.stringify({ ...this.config.scheduleInput, scheduledAt: tickMs });
    const ack = await this.js.publish(`work.${this.config.agent}`, body, { msgID: id, headers: h });
    if (ack.duplicate) this.counters.tickDuplicates++;
    else this.counters.ticks++;
  }

  /** Stops taking items and ticks, lets the items in flight finish within the stop timeout (else they come back later). */
  public async stop(): Promise<void> {
    this.stopping = true;
    this.scheduler?.stop();
    await Promise.all([this.requests, ...this.inboxes].map((sub) => sub?.drain().catch(() => undefined)));
    const inFlight = [...this.inFlight];
    if (inFlight.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled(inFlight), new Promise((r) => { timer = setTimeout(r, this.config.stopTimeoutMs); })]);
      clearTimeout(timer);
    }
    await Promise.all(this.consumers.map((c) => c.close()));
    await Promise.race([Promise.allSettled(this.loops), sleep(1000)]);
  }
}
