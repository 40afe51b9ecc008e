import { AttributeValue, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { credsAuthenticator, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { AGENT_CATALOG } from '../../agents/catalog';
import { BOUNDARY_CONTRACT, CUSTOMER_ID, Direction, MessageKind, subjectOf } from '../../lib/boundary-contract';
import { canonicalBytes, ContractValidator, ContractValue, isRejection } from '../../lib/contract-validator';
import { vendorInboxPrefix } from '../../lib/nats-config';

/**
 * The shared learning pool offered back: the vendor's side of the contract's inbound `learning` kind. It reads the
 * learning pool (the DynamoDB table `IngestStore` fills with fingerprints, without any customer identifier),
 * aggregates it into one `learning` message per pattern, validates each against the contract, and publishes them to
 * every active registered customer on `byoc.<customer>.in.learning` through the hub, as that customer's vendor
 * service user (whose permissions, generated from the contract, allow exactly the inbound kinds). Customers who opted
 * out (`shareLearning: false`) receive it too: the opt-out stops what a customer sends, not what it receives. The
 * customer's gateway validates every message again and hands it to the agents that declare the kind.
 *
 * What a learning says. The pool holds distinct fingerprints (`patternHash`, `shape`, `occurrences`, `outcome`):
 * two customers reporting the same fingerprint are one item, and nothing tells which customer reported which. For a
 * pattern (its hash and shape) `succeeded` and `failed` are the sums of `occurrences` over the pool's distinct
 * fingerprints of that pattern with that outcome (capped at the contract's bound): a measure of how often, and how
 * well, the pattern runs across customers, not an exact count. `publishedAt` is the publication's time.
 *
 * What is never offered. A pool item that is not a valid fingerprint of the contract, or whose shape names an agent
 * the product does not have (`agents`, by default the catalog's): a customer's own fingerprint cannot carry text of
 * its choosing (an agent-name-shaped phrase) into other customers' planes.
 *
 * Delivery. Each customer's gateway enforces the kind's rate limit, so the publisher paces each customer to it (a
 * burst at once, then `perSecond`), keeping each customer's bucket across publications. Publishing is core NATS: a
 * customer whose link is down misses the publication, and the next one (the whole pool again) makes up for it.
 */

/** The contract's kind this publisher sends. */
export const LEARNING_KIND: MessageKind = (() => {
  const k = BOUNDARY_CONTRACT.kinds.find((x) => x.name === 'learning' && x.direction === Direction.VENDOR_TO_CUSTOMER);
  if (!k) throw new Error('the boundary contract has no inbound learning kind');
  return k;
})();
const FINGERPRINT_KIND: MessageKind = BOUNDARY_CONTRACT.kinds.find((x) => x.name === 'fingerprint')!;

/** A registered customer as the publisher needs it (an `IngestCustomerConfig` is one). */
export interface LearningPoolRecipient {
  readonly customerId: string;
  /** The customer's vendor service user (`vendorUser` of `lib/nats-auth.ts`): a `.creds` file's content. Secret. */
  readonly creds: string;
  /** A revoked customer receives nothing. @default 'active' */
  readonly status?: 'active' | 'revoked';
}

export interface LearningPoolPublisherOptions {
  /** The hub's client URL(s) (port 4222 of the hub nodes, inside the hub's VPC). */
  readonly servers: string | string[];
  /** The vendor CA (PEM) that issued the hub nodes' certificates. @default - no TLS unless a URL is tls:// (then the system's roots) */
  readonly tlsCa?: string;
  readonly client: DynamoDBClient;
  /** The learning pool table (`IngestTables.learningPool`): the publisher only scans it. */
  readonly table: string;
  /** Most patterns in one publication, the most-run first. @default 200 */
  readonly maxPatterns?: number;
  /** The agent names a shape may contain. @default - the names of the agent catalog */
  readonly agents?: readonly string[];
  /** Milliseconds since the epoch: the publication's time and the pacing's clock. @default Date.now */
  readonly now?: () => number;
  /** Waits between messages beyond a burst (with `now`, a test's clock). @default - a timer that `stop` cuts short */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Where errors go (never a payload). @default console.error */
  readonly onError?: (customerId: string, error: Error) => void;
}

/** The pool read and aggregated: the learnings of one publication, each the canonical bytes to publish. */
export interface Publication {
  readonly publishedAt: number;
  /** The learnings, most-run first: the values and their canonical serializations. */
  readonly learnings: readonly { readonly value: ContractValue; readonly canonical: Buffer }[];
  /** Pool items read. */
  readonly poolItems: number;
  /** Pool items never offered: not a valid fingerprint of the contract, or naming an agent the product does not have. */
  readonly refused: { readonly invalid: number; readonly unknownAgent: number };
  /** Patterns beyond `maxPatterns`, left for a later publication. */
  readonly leftOut: number;
}

export type RecipientResult =
  | { readonly state: 'published'; readonly sent: number }
  | { readonly state: 'revoked' }
  | { readonly state: 'failed'; readonly sent: number; readonly error: string }
  | { readonly state: 'stopped'; readonly sent: number };

export interface PublicationReport extends Omit<Publication, 'learnings'> {
  readonly patterns: number;
  readonly customers: Readonly<Record<string, RecipientResult>>;
}

/** One pool item as `IngestStore` writes it. */
type PoolItem = Record<string, AttributeValue>;

/** A token bucket mirroring the one the customer's gateway keeps for the kind. */
interface Bucket { tokens: number; at: number }

export class LearningPoolPublisher {
  private readonly learningValidator = new ContractValidator([LEARNING_KIND]);
  private readonly fingerprintValidator = new ContractValidator([FINGERPRINT_KIND], { schema: 'published' });
  private readonly agents: ReadonlySet<string>;
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private stopped = false;
  private readonly wakeups = new Set<() => void>();

  constructor(private readonly o: LearningPoolPublisherOptions) {
    const max = o.maxPatterns ?? 200;
    if (!Number.isInteger(max) || max < 1) throw new Error(`learning pool: maxPatterns ${max} must be a whole number of at least 1`);
    this.agents = new Set(o.agents ?? AGENT_CATALOG.map((a) => a.name));
    this.now = o.now ?? Date.now;
  }

  /** Reads the whole pool and aggregates it into this publication's learnings, each valid against the contract. */
  public async read(publishedAt = this.now()): Promise<Publication> {
    const items: PoolItem[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.o.client.send(new ScanCommand({ TableName: this.o.table, ExclusiveStartKey: start, ConsistentRead: true }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return this.aggregate(items, publishedAt);
  }

  /** The aggregation alone (pure): pool items to learnings. */
  public aggregate(items: readonly PoolItem[], publishedAt: number): Publication {
    const max = COUNT_MAX;
    const refused = { invalid: 0, unknownAgent: 0 };
    const patterns = new Map<string, { patternHash: string; shape: string[]; succeeded: number; failed: number }>();
    for (const item of items) {
      // Only the contract's fingerprint schema, exactly as the ingest service stored it, and nothing beside it.
      if (Object.keys(item).some((a) => !POOL_ATTRIBUTES.has(a))) { refused.invalid++; continue; }
      const candidate = {
        patternHash: item.patternHash?.S, shape: item.shape?.L?.map((x) => x.S), occurrences: item.occurrences?.N === undefined ? undefined : Number(item.occurrences.N), outcome: item.outcome?.S,
      };
      const checked = this.fingerprintValidator.check(FINGERPRINT_KIND.name, safeCanonical(candidate));
      if (isRejection(checked)) { refused.invalid++; continue; }
      const f = checked.value as { patternHash: string; shape: string[]; occurrences: number; outcome: 'succeeded' | 'failed' };
      if (!f.shape.every((a) => this.agents.has(a))) { refused.unknownAgent++; continue; }
      const key = `${f.patternHash} ${f.shape.join(',')}`;
      const p = patterns.get(key) ?? { patternHash: f.patternHash, shape: f.shape, succeeded: 0, failed: 0 };
      p[f.outcome] = Math.min(max, p[f.outcome] + f.occurrences);
      patterns.set(key, p);
    }
    const ordered = [...patterns.values()].sort((a, b) => (b.succeeded + b.failed) - (a.succeeded + a.failed)
      || (a.patternHash < b.patternHash ? -1 : a.patternHash > b.patternHash ? 1 : 0)
      || (a.shape.join(',') < b.shape.join(',') ? -1 : 1));
    const maxPatterns = this.o.maxPatterns ?? 200;
    const learnings: { value: ContractValue; canonical: Buffer }[] = [];
    for (const p of ordered.slice(0, maxPatterns)) {
      // Validated as the customer's gateway will validate it: what is published is the validator's canonical bytes.
      const checked = this.learningValidator.check(LEARNING_KIND.name, canonicalBytes({ ...p, publishedAt }));
      if (isRejection(checked)) throw new Error(`learning pool: an aggregated learning is not valid against the contract (${checked.reason}: ${checked.detail})`);
      learnings.push(checked);
    }
    return { publishedAt, learnings, poolItems: items.length, refused, leftOut: Math.max(0, ordered.length - maxPatterns) };
  }

  /**
   * One publication: reads the pool, then sends its learnings to every active customer in `customers` (opted-out
   * ones included), paced to the kind's rate limit per customer. Resolves when every customer has been served (or
   * failed, or `stop` was called); one customer's failure does not stop the others.
   */
  public async publish(customers: readonly LearningPoolRecipient[]): Promise<PublicationReport> {
    const seen = new Set<string>();
    for (const c of customers) {
      if (!CUSTOMER_ID.test(c.customerId)) throw new Error(`learning pool: customer ID "${c.customerId.slice(0, 40)}" must match ${CUSTOMER_ID}`);
      if (seen.has(c.customerId)) throw new Error(`learning pool: customer ${c.customerId} is listed twice`);
      seen.add(c.customerId);
    }
    const publication = await this.read();
    const results = await Promise.all(customers.map(async (c): Promise<[string, RecipientResult]> => [c.customerId, await this.send(c, publication)]));
    const { learnings, ...rest } = publication;
    return { ...rest, patterns: learnings.length, customers: Object.fromEntries(results) };
  }

  private async send(c: LearningPoolRecipient, publication: Publication): Promise<RecipientResult> {
    if ((c.status ?? 'active') === 'revoked') return { state: 'revoked' };
    let nc: NatsConnection | undefined;
    let sent = 0;
    try {
      const conn = await connect({
        servers: this.o.servers, name: `byoc-learning-pool-${c.customerId}`,
        authenticator: credsAuthenticator(new TextEncoder().encode(c.creds)),
        ...(this.o.tlsCa ? { tls: { ca: this.o.tlsCa } } : {}),
        inboxPrefix: vendorInboxPrefix(c.customerId), maxReconnectAttempts: 3, reconnectTimeWait: 1000,
      });
      nc = conn;
      // A refused publish (another customer's credentials, or an account issued before the contract had the kind)
      // does not throw: the server reports it on the connection's status.
      const refusals: string[] = [];
      void (async () => {
        for await (const s of conn.status()) {
          const text = `${JSON.stringify(s)} ${String((s as { error?: unknown }).error ?? '')}`;
          if (/permissions violation/i.test(text)) refusals.push(text);
        }
      })().catch(() => undefined);
      const subject = subjectOf(LEARNING_KIND, c.customerId);
      for (const l of publication.learnings) {
        if (!(await this.token(c.customerId))) break;
        conn.publish(subject, l.canonical);
        sent++;
      }
      // The flush's round trip comes back after the server has handled (or refused) every publish before it.
      await conn.flush();
      await conn.drain();
      if (refusals.length > 0) {
        throw new Error(`the hub refused publishing on ${subject}: the credentials are not this customer's vendor service user, or its account predates the ${LEARNING_KIND.name} kind (re-issue it with byoc customer add)`);
      }
      return this.stopped && sent < publication.learnings.length ? { state: 'stopped', sent } : { state: 'published', sent };
    } catch (e) {
      await nc?.close().catch(() => undefined);
      const error = e as Error;
      (this.o.onError ?? ((id, err) => console.error(`learning pool ${id}: ${err.message}`)))(c.customerId, error);
      return { state: 'failed', sent, error: error.message.slice(0, 300) };
    }
  }

  /** Waits for a token of the customer's bucket (the gateway's, mirrored); false once stopped. */
  private async token(customerId: string): Promise<boolean> {
    const { perSecond, burst } = LEARNING_KIND.rateLimit;
    const b = this.buckets.get(customerId) ?? { tokens: burst, at: this.now() };
    this.buckets.set(customerId, b);
    for (;;) {
      if (this.stopped) return false;
      const t = this.now();
      b.tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * perSecond);
      b.at = t;
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return true;
      }
      const ms = Math.ceil(((1 - b.tokens) / perSecond) * 1000);
      await (this.o.sleep ? this.o.sleep(ms) : this.sleep(ms));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => { clearTimeout(timer); this.wakeups.delete(wake); resolve(); };
      const timer = setTimeout(wake, ms);
      this.wakeups.add(wake);
    });
  }

  /** Stops pacing: a publication in progress sends nothing more and resolves. */
  public stop(): void {
    this.stopped = true;
    for (const wake of [...this.wakeups]) wake();
  }
}

/** The attributes of a pool item (`IngestStore`): the fingerprint's fields and the item's key, nothing else. */
const POOL_ATTRIBUTES: ReadonlySet<string> = new Set([...Object.keys(FINGERPRINT_KIND.schema.fields), 'variant']);

/** The contract's largest count. */
const COUNT_MAX = (() => {
  const f = LEARNING_KIND.schema.fields.succeeded;
  if (f.type !== 'integer') throw new Error('learning.succeeded is not an integer field of the contract');
  return f.maximum;
})();

/** Canonical bytes of a candidate value, or bytes the validator refuses when it has no JSON form. */
function safeCanonical(v: unknown): Buffer {
  try {
    return canonicalBytes(v);
  } catch {
    return Buffer.from('not json');
  }
}
