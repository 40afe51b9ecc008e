import { AckPolicy, ConsumerMessages, DeliverPolicy, JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { credsAuthenticator, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { BoundaryContract } from '../../lib/boundary-contract';
import { HUB_INGEST_STREAM, vendorInboxPrefix } from '../../lib/nats-config';
import { CustomerCheck, IngestCustomer, IngestRejectionReason, sha256Hex } from './check';
import { IngestStore, Provenance } from './store';

/**
 * The vendor's ingest service: one durable pull consumer per registered customer on that customer's
 * `BYOC_INGEST` stream (in the customer's vendor account on the hub), connected as the customer's vendor service
 * user. Every message is checked again (`CustomerCheck`), then stored (`IngestStore`) or recorded as a rejection,
 * and acknowledged only after DynamoDB has it: at-least-once, and every write idempotent, so a redelivery counts
 * once. A rejection is acknowledged too (once recorded), so it is never redelivered forever and never dropped
 * unrecorded. A message that could not be stored is not acknowledged: the stream redelivers it.
 */

/** The durable consumer's name on each customer's ingest stream. */
export const INGEST_DURABLE = 'byoc-ingest';

export interface IngestCustomerConfig extends IngestCustomer {
  /** The customer's vendor service user (`vendorUser` of `lib/nats-auth.ts`): a `.creds` file's content. Secret. */
  readonly creds: string;
  /** Registration status; a revoked customer gets no consumer. @default 'active' */
  readonly status?: 'active' | 'revoked';
}

export interface IngestServiceOptions {
  /** The hub's client URL(s) (port 4222 of the hub nodes, inside the hub's VPC). */
  readonly servers: string | string[];
  /** The vendor CA (PEM) that issued the hub nodes' certificates: the client port requires TLS. @default - no TLS unless a URL is tls:// (then the system's roots) */
  readonly tlsCa?: string;
  /** The boundary contract every customer's crossings are checked against (one a customer's config names wins). @default BOUNDARY_CONTRACT */
  readonly contract?: BoundaryContract;
  /** The customers to consume at `start` (`reconcile` changes them later). @default [] */
  readonly customers?: readonly IngestCustomerConfig[];
  readonly store: IngestStore;
  /** How long the hub waits for an acknowledgement before redelivering. @default 30000 */
  readonly ackWaitMs?: number;
  /** Messages fetched at once per customer. @default 64 */
  readonly batch?: number;
  /** Delay before a message that could not be stored is redelivered. @default 1000 */
  readonly retryDelayMs?: number;
  /** Where errors go (no payload is ever passed). @default console.error */
  readonly onError?: (customerId: string, error: Error) => void;
}

export interface CustomerCounters {
  /** Accepted and stored, per kind (a redelivery counts again here; DynamoDB does not). */
  accepted: Record<string, number>;
  /** Rejections recorded, per reason (each stream message once, redeliveries not counted). */
  rejected: Partial<Record<IngestRejectionReason, number>>;
  /** Messages left unacknowledged because storing them failed (redelivered later). */
  storeFailures: number;
  /** Deliveries that were redeliveries (the hub's delivery count above 1). */
  redeliveries: number;
}

/** The state of one customer's consumer. */
export type ConsumerState =
  | { readonly state: 'consuming' }
  | { readonly state: 'revoked' }
  | { readonly state: 'failed'; readonly error: string }
  | { readonly state: 'stopped' };

class CustomerConsumer {
  public readonly counters: CustomerCounters = { accepted: {}, rejected: {}, storeFailures: 0, redeliveries: 0 };
  public state: ConsumerState = { state: 'stopped' };
  private nc?: NatsConnection;
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private readonly check: CustomerCheck;

  constructor(public readonly config: IngestCustomerConfig, private readonly o: IngestServiceOptions) {
    this.check = new CustomerCheck({ ...config, contract: config.contract ?? o.contract });
  }

  public async start(): Promise<void> {
    const c = this.config.customerId;
    if ((this.config.status ?? 'active') === 'revoked') {
      this.state = { state: 'revoked' };
      return;
    }
    try {
      this.nc = await connect({
        servers: this.o.servers, name: `byoc-ingest-${c}`,
        authenticator: credsAuthenticator(new TextEncoder().encode(this.config.creds)),
        ...(this.o.tlsCa ? { tls: { ca: this.o.tlsCa } } : {}),
        inboxPrefix: vendorInboxPrefix(c), maxReconnectAttempts: -1, reconnectTimeWait: 1000,
      });
      const jsm = await jetstreamManager(this.nc);
      await jsm.consumers.add(HUB_INGEST_STREAM, {
        durable_name: INGEST_DURABLE, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All,
        ack_wait: (this.o.ackWaitMs ?? 30000) * 1e6, max_deliver: -1, max_ack_pending: 1000,
      });
      const consumer = await jetstream(this.nc).consumers.get(HUB_INGEST_STREAM, INGEST_DURABLE);
      this.messages = await consumer.consume({ max_messages: this.o.batch ?? 64 });
    } catch (e) {
      this.state = { state: 'failed', error: (e as Error).message.slice(0, 300) };
      await this.nc?.close().catch(() => undefined);
      this.nc = undefined;
      return;
    }
    this.state = { state: 'consuming' };
    const messages = this.messages;
    this.loop = (async () => {
      // One at a time, in stream order: a later usage report of a period replaces an earlier one.
      for await (const m of messages) await this.handle(m);
    })().catch((e: Error) => {
      this.state = { state: 'failed', error: e.message.slice(0, 300) };
      this.error(e);
    });
    void this.nc!.closed().then((e) => {
      if (e && this.state.state === 'consuming') this.state = { state: 'failed', error: e.message.slice(0, 300) };
    });
  }

  private async handle(m: JsMsg): Promise<void> {
    const from: Provenance = {
      customerId: this.config.customerId,
      streamSeq: m.info.streamSequence,
      storedAtMs: Math.floor(Number(m.info.timestampNanos) / 1e6),
    };
    if (m.info.deliveryCount > 1) this.counters.redeliveries++;
    const result = this.check.check(m.subject, m.data);
    try {
      if ('reason' in result) {
        const kind = this.check.kindOf(m.subject) ?? 'unknown';
        const recorded = await this.o.store.reject({
          kind, subject: m.subject.slice(0, 128), size: m.data.length, sha256: sha256Hex(m.data), reason: result.reason, detail: result.detail,
        }, from);
        if (recorded) this.counters.rejected[result.reason] = (this.counters.rejected[result.reason] ?? 0) + 1;
      } else {
        await this.o.store.store(result.kind, result.value, result.canonical, from);
        this.counters.accepted[result.kind.name] = (this.counters.accepted[result.kind.name] ?? 0) + 1;
      }
    } catch (e) {
      this.counters.storeFailures++;
      this.error(e as Error);
      m.nak(this.o.retryDelayMs ?? 1000);
      return;
    }
    // Acknowledged only now that DynamoDB holds the record (or the rejection); confirmed by the hub.
    await m.ackAck().catch((e: Error) => this.error(e));
  }

  private error(e: Error): void {
    (this.o.onError ?? ((c, err) => console.error(`ingest ${c}: ${err.message}`)))(this.config.customerId, e);
  }

  public async stop(): Promise<void> {
    await this.messages?.close().catch(() => undefined);
    await this.loop;
    await this.nc?.drain().catch(() => undefined);
    if (this.state.state === 'consuming') this.state = { state: 'stopped' };
  }
}

/** What a `reconcile` changed, by customer ID. */
export interface ReconcileReport {
  /** New customers whose consumer started (or failed to: see `states`). */
  readonly added: string[];
  /** Customers whose consumer was stopped because they were revoked. */
  readonly revoked: string[];
  /** Customers no longer in the list: their consumer stopped. */
  readonly removed: string[];
  /** Customers whose registration changed (credentials, audit key, shareLearning, reinstated): consumer restarted. */
  readonly changed: string[];
  /** Customers whose consumer had failed: started again. */
  readonly retried: string[];
}

/** True when two registrations of one customer configure its consumer the same way. */
const sameConfig = (a: IngestCustomerConfig, b: IngestCustomerConfig) => a.creds === b.creds && a.auditPublicKeyPem === b.auditPublicKeyPem
  && (a.shareLearning ?? true) === (b.shareLearning ?? true) && (a.status ?? 'active') === (b.status ?? 'active');

/** The ingest service: a consumer per registered customer, following the registry as it changes. */
export class IngestService {
  private readonly consumers = new Map<string, CustomerConsumer>();
  /** Start, reconcile and stop run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: IngestServiceOptions) {
    for (const c of o.customers ?? []) {
      if (this.consumers.has(c.customerId)) throw new Error(`ingest: customer ${c.customerId} is configured twice`);
      this.consumers.set(c.customerId, new CustomerConsumer(c, o));
    }
  }

  private serially<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Starts every active customer's consumer; a customer whose consumer cannot start is reported in `states`, the others run. */
  public start(): Promise<void> {
    return this.serially(async () => {
      await Promise.all([...this.consumers.values()].map((c) => c.start()));
    });
  }

  /**
   * Brings the consumers in line with `customers` (the registry as just read), without a restart: a new customer
   * gets its consumer, a revoked or removed one loses it (what it has in hand is stored and acknowledged first), a
   * changed registration restarts its consumer, and a failed consumer is started again. Customers left as they
   * were are not touched. Throws on a customer listed twice, changing nothing.
   */
  public reconcile(customers: readonly IngestCustomerConfig[]): Promise<ReconcileReport> {
    const wanted = new Map<string, IngestCustomerConfig>();
    for (const c of customers) {
      if (wanted.has(c.customerId)) return Promise.reject(new Error(`ingest: customer ${c.customerId} is configured twice`));
      wanted.set(c.customerId, c);
    }
    return this.serially(async () => {
      const report: ReconcileReport = { added: [], revoked: [], removed: [], changed: [], retried: [] };
      if (this.stopped) return report;
      // Every new consumer is made before anything changes: a registration that cannot be checked (a broken key)
      // throws here and leaves every consumer as it was.
      const replacements: [string, CustomerConsumer][] = [];
      for (const [id, config] of wanted) {
        const current = this.consumers.get(id);
        let list: string[];
        if (!current) list = report.added;
        else if (!sameConfig(current.config, config)) list = (config.status ?? 'active') === 'revoked' ? report.revoked : report.changed;
        else if (current.state.state === 'failed') list = report.retried;
        else continue;
        replacements.push([id, new CustomerConsumer(config, this.o)]);
        list.push(id);
      }
      const work: Promise<void>[] = [];
      for (const [id, consumer] of this.consumers) {
        if (wanted.has(id)) continue;
        report.removed.push(id);
        this.consumers.delete(id);
        work.push(consumer.stop());
      }
      for (const [id, next] of replacements) {
        const current = this.consumers.get(id);
        this.consumers.set(id, next);
        work.push((async () => {
          await current?.stop();
          await next.start();
        })());
      }
      await Promise.all(work);
      return report;
    });
  }

  /** Each configured customer's consumer state. */
  public states(): Record<string, ConsumerState> {
    return Object.fromEntries([...this.consumers].map(([id, c]) => [id, c.state]));
  }

  public counters(customerId: string): CustomerCounters {
    const c = this.consumers.get(customerId);
    if (!c) throw new Error(`ingest: no customer ${customerId}`);
    return c.counters;
  }

  /** Stops every consumer: the messages in hand are stored and acknowledged, then the connections drain. */
  public stop(): Promise<void> {
    return this.serially(async () => {
      this.stopped = true;
      await Promise.all([...this.consumers.values()].map((c) => c.stop()));
    });
  }
}
