import { createHash } from 'crypto';
import { Consumer, ConsumerMessages, jetstream, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { Kvm, KV } from '@nats-io/kv';
import { headers as natsHeaders, NatsConnection } from '@nats-io/nats-core';
import { Agent, AgentContext } from './agent';
import { AGENT_DEAD_LETTER_STREAM, durableOf, processedBucketOf, WORK_STREAM } from '../../lib/nats-config';
import { RuntimeConfig } from './config';

export { WORK_STREAM };
export const DEAD_LETTER_STREAM = AGENT_DEAD_LETTER_STREAM;

export interface HostCounters { processed: number; duplicates: number; retried: number; deadLettered: number }

/**
 * The runtime host: a durable JetStream consumer per agent on the leaf's own domain. The consumer, the work
 * and dead-letter streams and the agent's processed-items bucket are created by the provisioner (the
 * gateway, at start); the agent's NATS user may only use them, never create one. An item is acked only
 * after the agent succeeded and its ID was recorded; a failure is redelivered with backoff; after
 * `maxDeliver` deliveries it goes to the dead-letter stream with its reason, then is terminated. Nothing is
 * dropped silently. An item whose ID is already recorded is acked without running the agent again.
 */
export class RuntimeHost {
  public readonly counters: HostCounters = { processed: 0, duplicates: 0, retried: 0, deadLettered: 0 };
  private messages?: ConsumerMessages;
  private js!: JetStreamClient;
  private processedKv!: KV;
  private inFlight?: Promise<void>;
  private stopping = false;
  private done?: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly agent: Agent,
    private readonly config: RuntimeConfig,
    private readonly ctx: Omit<AgentContext, 'publish'>,
    /** Told the outcome of every item the agent ran (telemetry). */
    private readonly onOutcome: (outcome: { ok: boolean; durationMs: number }) => void = () => undefined,
  ) {}

  /** The context of one item: what the agent publishes carries the item's request ID. */
  private contextFor(requestId: string): AgentContext {
    return {
      ...this.ctx,
      publish: async (subject, data) => {
        const h = natsHeaders();
        h.set('Byoc-Request-Id', requestId);
        if (subject.startsWith('work.')) await this.js.publish(subject, data, { headers: h });
        else this.nc.publish(subject, data, { headers: h });
      },
    };
  }

  /** Opens this agent's durable consumer and processed-items bucket (created by the provisioner), then starts pulling. */
  public async start(): Promise<void> {
    this.processedKv = await new Kvm(this.nc).open(processedBucketOf(this.config.agent));
    const durable = durableOf(this.config.agent);
    this.js = jetstream(this.nc);
    const consumer: Consumer = await this.js.consumers.get(WORK_STREAM, durable);
    // Short-lived pulls: a pull left by a crashed runtime stops taking deliveries within seconds.
    this.messages = await consumer.consume({ max_messages: 16, expires: 5000 });
    this.done = (async () => {
      for await (const m of this.messages!) {
        if (this.stopping) { m.nak(); continue; }
        this.inFlight = this.process(m);
        await this.inFlight;
        this.inFlight = undefined;
      }
    })();
  }

  private async process(m: JsMsg): Promise<void> {
    const id = m.headers?.get('Nats-Msg-Id') || `${m.info.stream}:${m.seq}`;
    const key = createHash('sha256').update(id).digest('hex');
    const requestId = m.headers?.get('Byoc-Request-Id') || id;
    const attempt = m.info.deliveryCount;
    // A redelivery may follow a success whose ack was lost (a crash between the two): then the item's ID
    // is recorded and it is acked without running the agent again. A first delivery cannot be a repeat.
    if (attempt > 1 && await this.processedKv.get(key)) {
      this.counters.duplicates++;
      m.ack();
      return;
    }
    if (attempt > this.config.maxDeliver) return this.deadLetter(m, id, `no attempt completed in ${this.config.maxDeliver} deliveries (crashed or timed out)`);
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
    try {
      await this.agent.handle({ id, subject: m.subject, data: m.data, requestId, attempt }, this.contextFor(requestId));
      this.onOutcome({ ok: true, durationMs: elapsed() });
    } catch (e) {
      this.onOutcome({ ok: false, durationMs: elapsed() });
      const reason = (e as Error).message.slice(0, 256);
      if (attempt >= this.config.maxDeliver) return this.deadLetter(m, id, reason);
      this.counters.retried++;
      this.ctx.log.warn({ agent: this.config.agent, id, requestId, attempt, reason }, 'work item failed, will be redelivered');
      m.nak(this.config.backoffMs[Math.min(attempt - 1, this.config.backoffMs.length - 1)]);
      return;
    }
    // The record, not the ack, is what keeps the item from running twice: the ack need not be confirmed.
    await this.processedKv.put(key, id);
    m.ack();
    this.counters.processed++;
  }

  private async deadLetter(m: JsMsg, id: string, reason: string): Promise<void> {
    const h = natsHeaders();
    h.set('Nats-Msg-Id', `dead:${id}`);
    h.set('Byoc-Dead-Reason', reason);
    h.set('Byoc-Original-Subject', m.subject);
    h.set('Byoc-Deliveries', String(m.info.deliveryCount));
    await this.js.publish(`dead.${this.config.agent}`, m.data, { headers: h });
    m.term(reason);
    this.counters.deadLettered++;
    this.ctx.log.warn({ agent: this.config.agent, id, reason, deliveries: m.info.deliveryCount }, 'work item dead-lettered');
  }

  /** Stops pulling, lets the item in flight finish within the stop timeout (else it is redelivered later). */
  public async stop(): Promise<void> {
    this.stopping = true;
    const inFlight = this.inFlight;
    if (inFlight) {
      await Promise.race([inFlight, new Promise((r) => setTimeout(r, this.config.stopTimeoutMs))]);
    }
    await this.messages?.close();
    await this.done;
  }
}
