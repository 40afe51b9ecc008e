import { createHash } from 'crypto';
import { DiscardPolicy, jetstream, jetstreamManager, JetStreamClient, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { headers as natsHeaders, Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import { Logger } from 'pino';
import { AuditLogWriter } from '../../lib/audit-log';
import { Direction, MessageKind, subjectOf } from '../../lib/boundary-contract';
import { ContractValidator, isRejection } from '../../lib/contract-validator';
import { contractOf, crossingKinds, INBOX_PREFIX, LinkSettings, OUTBOX_PREFIX, REJECTION_LIMITS, REJECTION_PREFIX, REJECTION_STREAM } from '../../lib/nats-config';
import { Signer } from '../../lib/signer';
import { TokenBuckets } from './rate-limit';

/** Most crossings in one batch (one acknowledged barrier). */
const MAX_BATCH = 256;

export interface GatewayOptions extends LinkSettings {
  /** Connection to the leaf's GATEWAY account, as `gateway-local`. */
  readonly local: NatsConnection;
  /** Connection to the leaf's BOUNDARY account (the one linked to the hub), as `gateway`. */
  readonly boundary: NatsConnection;
  readonly audit: AuditLogWriter;
  /** Signs the metrics kind (the customer's audit key): the sender never supplies the signature. */
  readonly signer: Signer;
  readonly log: Logger;
  /** Each agent and the outbound kinds its catalog entry declares. */
  readonly agents: Readonly<Record<string, readonly string[]>>;
  /** How long the hub has to acknowledge a crossing before it is recorded as unconfirmed. @default 5000 */
  readonly confirmTimeoutMs?: number;
  /** Most crossings awaiting the hub's acknowledgement; beyond it messages are refused (`link-busy`). @default 4096 */
  readonly maxInFlight?: number;
  /** Multiplies every rate limit of the contract (benchmarks only). @default 1 */
  readonly rateScale?: number;
}

export interface GatewayCounters {
  /** Crossings the hub acknowledged. */
  delivered: number;
  /** Crossings handed to the link whose acknowledgement never came (the hub may or may not have them). */
  unconfirmed: number;
  /** Crossings the hub refused or had no receiver for. */
  failed: number;
  /** Inbound messages delivered to the agents. */
  deliveredIn: number;
  rejected: Record<string, number>;
  rejectionStoreFailures: number;
  /** Outbound messages not sent because their audit intents could not be written (the disk): never sent unrecorded. */
  auditFailures: number;
}

/** Why the gateway refused a message: a stable code and a detail that never quotes the content. */
interface Refusal { readonly reason: string; readonly detail: string }

/**
 * The boundary gateway: the only process that may publish on crossing subjects. Agents hand messages to it
 * on `boundary.outbox.<agent>.<kind>`. For each it checks that the agent declared the kind, validates the
 * bytes against the contract (only the canonical RFC 8785 encoding of a valid value is accepted), applies
 * the kind's rate limit, records the intent in the audit log, and publishes its own canonical serialization,
 * never the received bytes. The hub's ingest stream acknowledges each crossing; only then is it recorded as
 * delivered. Inbound messages from the vendor (every vendor-to-customer kind of the contract: control, the
 * learning pool's learnings) go through the same checks before they reach, on `boundary.inbox.<kind>`, the
 * agents whose catalog entry declares the kind (the leaf lets no other agent subscribe to it). A refused message leaves its kind, size, hash and reason in the audit log and the
 * bounded rejection store; its body is kept nowhere.
 */
export class BoundaryGateway {
  public readonly counters: GatewayCounters = { delivered: 0, unconfirmed: 0, failed: 0, deliveredIn: 0, rejected: {}, rejectionStoreFailures: 0, auditFailures: 0 };
  private readonly outbound: ContractValidator;
  private readonly inbound: ContractValidator;
  private readonly kinds: MessageKind[];
  /** Outbound kinds of the contract this customer opted out of: refused as such, never sent. */
  private readonly optedOut: Set<string>;
  private readonly limits: TokenBuckets;
  private readonly subs: Subscription[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private localJs?: JetStreamClient;
  private inFlight = 0;
  private readonly logBudget = new Map<string, { second: number; logged: number; suppressed: number }>();
  private pendingInbound: number[] = [];
  /** Crossings recorded as intents, waiting for the next batch. */
  private queue: { subject: string; kind: string; agent: string; canonical: Uint8Array }[] = [];
  private flushScheduled = false;
  private barriers = 0;
  /** The hub stream's sequence of the last barrier, in publication order; undefined when unknown. */
  private lastBarrier: Promise<number | undefined> = Promise.resolve(undefined);
  private inboundFlush?: Promise<void>;

  constructor(private readonly o: GatewayOptions) {
    this.kinds = crossingKinds(o);
    this.optedOut = new Set(contractOf(o).kinds.filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR && !this.kinds.includes(k)).map((k) => k.name));
    const settings = { shareLearning: o.shareLearning ?? true };
    this.outbound = new ContractValidator(this.kinds.filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR), settings);
    this.inbound = new ContractValidator(this.kinds.filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER), settings);
    this.limits = new TokenBuckets(this.kinds, o.rateScale ?? 1);
  }

  /** Ensures the bounded rejection store, then starts relaying. */
  public async start(): Promise<void> {
    const jsm = await jetstreamManager(this.o.local, { checkAPI: false });
    const config = {
      name: REJECTION_STREAM, subjects: [`${REJECTION_PREFIX}.>`], storage: StorageType.File, retention: RetentionPolicy.Limits,
      max_age: REJECTION_LIMITS.maxAgeDays * 86400 * 1e9, max_bytes: REJECTION_LIMITS.maxBytes, max_msg_size: REJECTION_LIMITS.maxMsgSize, discard: DiscardPolicy.Old,
    };
    try {
      await jsm.streams.info(REJECTION_STREAM);
      await jsm.streams.update(REJECTION_STREAM, config);
    } catch (e) {
      if (!/not found/i.test((e as Error).message)) throw e;
      await jsm.streams.add(config);
    }
    this.localJs = jetstream(this.o.local);
    this.subs.push(this.o.local.subscribe(`${OUTBOX_PREFIX}.>`, { callback: (err, m) => { if (!err) this.outboundMessage(m); } }));
    for (const kind of this.kinds.filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER)) {
      this.subs.push(this.o.boundary.subscribe(subjectOf(kind, this.o.customerId), { callback: (err, m) => { if (!err) this.inboundMessage(kind, m); } }));
    }
    await Promise.all([this.o.local.flush(), this.o.boundary.flush()]);
    this.o.log.info({ kinds: this.kinds.map((k) => `${k.direction}:${k.name}`), agents: Object.keys(this.o.agents).length }, 'boundary gateway started');
  }

  private outboundMessage(m: Msg): void {
    // boundary.outbox.<agent>.<kind>: the leaf lets each agent publish only under its own name.
    const [agent, kind, ...rest] = m.subject.slice(OUTBOX_PREFIX.length + 1).split('.');
    if (!agent || !kind || rest.length > 0) return this.refuse('out', 'unknown', m, undefined, { reason: 'unknown-kind', detail: 'the subject is not boundary.outbox.<agent>.<kind>' });
    if (this.optedOut.has(kind)) {
      return this.refuse('out', kind, m, agent, { reason: 'opted-out', detail: `the customer opted out of the ${kind} kind (shareLearning: false)` });
    }
    if (!this.o.agents[agent]?.includes(kind)) {
      const known = this.kinds.some((k) => k.name === kind && k.direction === Direction.CUSTOMER_TO_VENDOR);
      return this.refuse('out', kind, m, agent, known
        ? { reason: 'not-declared', detail: `agent ${agent.slice(0, 28)} does not declare the ${kind} kind` }
        : { reason: 'unknown-kind', detail: 'not an outbound kind of the contract for this customer' });
    }
    const checked = this.outbound.check(kind, m.data);
    if (isRejection(checked)) return this.refuse('out', kind, m, agent, checked);
    if (!this.limits.take('out', kind)) return this.refuse('out', kind, m, agent, { reason: 'rate-limit', detail: `above the ${kind} kind's rate limit` });
    if (this.inFlight >= (this.o.maxInFlight ?? 4096)) return this.refuse('out', kind, m, agent, { reason: 'link-busy', detail: 'too many crossings await the hub\'s acknowledgement' });
    const kindDef = this.kinds.find((k) => k.name === kind)!;
    if (kindDef.gatewaySigned) {
      // The accepted canonical bytes are the body the signature covers; the validator adds the field.
      this.track(this.o.signer.sign(checked.canonical)
        .then((signature) => this.cross(kind, agent, this.outbound.withSignature(kind, checked, rawSignature(signature)).canonical))
        .catch((e: Error) => this.refuse('out', kind, m, agent, { reason: 'signing-failed', detail: e.message.slice(0, 200) })));
      return;
    }
    this.cross(kind, agent, checked.canonical);
  }

  /**
   * Intent in the audit log, then the publish, then the hub's acknowledgement decides the outcome. Messages
   * arriving together go out as a batch: all but the last as plain publishes, the last (the barrier) as a
   * publish the hub's ingest stream acknowledges with its stream sequence. Only the gateway can publish on
   * the customer's outbound subjects, and one connection keeps their order, so when a barrier's sequence is
   * exactly the previous barrier's plus the batch's size, every message of the batch was stored: all are
   * `delivered`. Anything else (no earlier barrier to compare with, a gap, a timeout) records them as
   * `unconfirmed`, never as delivered.
   */
  private cross(kind: string, agent: string, canonical: Uint8Array): void {
    const subject = `byoc.${this.o.customerId}.out.${kind}`;
    this.inFlight++;
    this.queue.push({ subject, kind, agent, canonical });
    if (this.queue.length >= MAX_BATCH) this.flushBatch();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushBatch());
    }
  }

  private flushBatch(): void {
    this.flushScheduled = false;
    // The first batch is the barrier alone: it gives the sequence the next batch is checked against.
    const take = this.barriers === 0 ? 1 : this.queue.length;
    const queued = this.queue.splice(0, take);
    if (this.queue.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushBatch());
    }
    if (queued.length === 0) return;
    // The batch's intents in one write (one writeSync for the batch, not one per message), before any is published.
    let seqs: number[];
    try {
      seqs = this.o.audit.intents(queued.map((m) => ({ direction: 'out' as const, kind: m.kind, subject: m.subject, agent: m.agent, payload: m.canonical })));
    } catch (e) {
      // Nothing of the batch crosses without its intent: each is refused, counted, and its agent's message kept nowhere.
      this.inFlight -= queued.length;
      this.counters.auditFailures += queued.length;
      this.o.log.error({ messages: queued.length, error: (e as Error).message.slice(0, 200) }, 'audit intents could not be written: batch not sent');
      return;
    }
    const batch = queued.map((m, i) => ({ ...m, seq: seqs[i] }));
    this.barriers++;
    const msgId = (seq: number) => `${this.o.customerId}:${seq}`;
    for (const m of batch.slice(0, -1)) {
      const h = natsHeaders();
      h.set('Nats-Msg-Id', msgId(m.seq));
      this.o.boundary.publish(m.subject, m.canonical, { headers: h });
    }
    const last = batch[batch.length - 1];
    // A plain request, written now (in order after the batch), answered by the hub stream's acknowledgement.
    const h = natsHeaders();
    h.set('Nats-Msg-Id', msgId(last.seq));
    const ack = this.o.boundary.request(last.subject, last.canonical, { headers: h, timeout: this.o.confirmTimeoutMs ?? 5000 })
      .then((reply) => {
        const a = JSON.parse(reply.string()) as { stream?: string; seq?: number; duplicate?: boolean; error?: { description?: string } };
        if (a.error || typeof a.seq !== 'number') throw new Error(`the hub refused the crossing: ${a.error?.description ?? 'no stream sequence in its reply'}`);
        return { seq: a.seq, duplicate: a.duplicate === true };
      });
    const previous = this.lastBarrier;
    this.lastBarrier = ack.then((a) => (a.duplicate ? undefined : a.seq), () => undefined);
    this.track(Promise.allSettled([ack, previous]).then(([result, before]) => {
      const outcomes: { intentSeq: number; result: 'delivered' | 'unconfirmed' | 'failed'; detail?: string }[] = [];
      if (result.status === 'rejected') {
        const e = result.reason as Error;
        // A timeout may hide messages the hub stored: unconfirmed. No responders: nothing received the batch.
        const timeout = /timeout|timed out/i.test(e.message);
        for (const m of batch) outcomes.push({ intentSeq: m.seq, result: timeout ? 'unconfirmed' : 'failed', detail: e.message.slice(0, 200) });
        this.o.log.warn({ messages: batch.length, error: e.message.slice(0, 200) }, timeout ? 'crossings not acknowledged by the hub' : 'crossings refused by the hub');
      } else {
        const prev = before.status === 'fulfilled' ? before.value : undefined;
        const complete = prev !== undefined && !result.value.duplicate && result.value.seq - prev === batch.length;
        for (const m of batch.slice(0, -1)) {
          outcomes.push(complete ? { intentSeq: m.seq, result: 'delivered' } : { intentSeq: m.seq, result: 'unconfirmed', detail: 'the hub acknowledged the batch\'s last message, but its stream sequence does not prove this one arrived' });
        }
        outcomes.push({ intentSeq: last.seq, result: 'delivered' });
      }
      this.o.audit.outcomes(outcomes);
      for (const o of outcomes) this.counters[o.result]++;
      this.inFlight -= batch.length;
    }));
  }

  private inboundMessage(kind: MessageKind, m: Msg): void {
    const checked = this.inbound.check(kind.name, m.data);
    if (isRejection(checked)) return this.refuse('in', kind.name, m, undefined, checked);
    if (!this.limits.take('in', kind.name)) return this.refuse('in', kind.name, m, undefined, { reason: 'rate-limit', detail: `above the ${kind.name} kind's rate limit` });
    const seq = this.o.audit.intent({ direction: 'in', kind: kind.name, subject: m.subject, payload: checked.canonical });
    this.o.local.publish(`${INBOX_PREFIX}.${kind.name}`, checked.canonical);
    // Delivered once the leaf has it: one flush covers every inbound message published before it.
    this.pendingInbound.push(seq);
    this.inboundFlush ??= this.track(Promise.resolve().then(async () => {
      const seqs = this.pendingInbound;
      this.pendingInbound = [];
      this.inboundFlush = undefined;
      try {
        await this.o.local.flush();
        this.o.audit.outcomes(seqs.map((s) => ({ intentSeq: s, result: 'delivered' as const })));
        this.counters.deliveredIn += seqs.length;
      } catch (e) {
        this.o.audit.outcomes(seqs.map((s) => ({ intentSeq: s, result: 'unconfirmed' as const, detail: (e as Error).message.slice(0, 200) })));
      }
    })) as Promise<void>;
  }

  /**
   * A refused message: counted, recorded in the audit log and the bounded rejection store with its kind, size,
   * hash and reason, logged as fields (rate-limited). Its body is neither kept nor forwarded.
   */
  private refuse(direction: 'out' | 'in', kind: string, m: Msg, agent: string | undefined, r: Refusal): void {
    this.counters.rejected[r.reason] = (this.counters.rejected[r.reason] ?? 0) + 1;
    const safeKind = /^[a-z0-9-]{1,32}$/.test(kind) ? kind : 'unknown';
    const safeAgent = agent && /^[a-z0-9-]{1,28}$/.test(agent) ? agent : undefined;
    const record = { direction, kind: safeKind, agent: safeAgent, subject: m.subject.slice(0, 128), size: m.data.length, sha256: createHash('sha256').update(m.data).digest('hex'), reason: r.reason, detail: r.detail };
    this.o.audit.rejection(record);
    if (this.shouldLog(r.reason)) this.o.log.warn(record, 'boundary message rejected');
    this.track(this.localJs!.publish(`${REJECTION_PREFIX}.${direction}.${safeKind}`, JSON.stringify({ ...record, at: new Date().toISOString() }))
      .catch((e: Error) => {
        this.counters.rejectionStoreFailures++;
        if (this.shouldLog('store-failure')) this.o.log.error({ direction, kind: safeKind, reason: r.reason, error: e.message }, 'could not record a rejection in the rejection store');
      }));
  }

  /** At most 10 log lines per reason per second: a flood of refusals must not become a flood of logs. */
  private shouldLog(reason: string): boolean {
    const second = Math.floor(Date.now() / 1000);
    const b = this.logBudget.get(reason) ?? { second, logged: 0, suppressed: 0 };
    if (b.second !== second) {
      if (b.suppressed > 0) this.o.log.warn({ reason, suppressed: b.suppressed }, 'rejections not logged individually (see the audit log)');
      b.second = second; b.logged = 0; b.suppressed = 0;
    }
    this.logBudget.set(reason, b);
    if (b.logged < 10) { b.logged++; return true; }
    b.suppressed++;
    return false;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p)).catch(() => undefined);
    return p;
  }

  /** Stops taking messages, waits for every outcome, signs a final audit head. */
  public async stop(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    while (this.queue.length > 0) this.flushBatch();
    await Promise.all([this.o.local.flush(), this.o.boundary.flush()]).catch(() => undefined);
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    await this.o.audit.close();
  }
}

/** A signature as 64 raw bytes: Ed25519 already is; ECDSA P-256 (DER from KMS or OpenSSL) becomes r || s. */
export function rawSignature(signature: Buffer): Buffer {
  if (signature.length === 64 && signature[0] !== 0x30) return signature;
  // DER: 30 len 02 rlen r 02 slen s
  let i = 2;
  if (signature[0] !== 0x30) throw new Error('signature is neither raw 64 bytes nor DER ECDSA');
  if (signature[1] & 0x80) i += signature[1] & 0x7f;
  const int = () => {
    if (signature[i] !== 0x02) throw new Error('malformed DER ECDSA signature');
    const len = signature[i + 1];
    const v = signature.subarray(i + 2, i + 2 + len);
    i += 2 + len;
    const trimmed = v[0] === 0 ? v.subarray(1) : v;
    if (trimmed.length > 32) throw new Error('malformed DER ECDSA signature');
    return Buffer.concat([Buffer.alloc(32 - trimmed.length), trimmed]);
  };
  return Buffer.concat([int(), int()]);
}
