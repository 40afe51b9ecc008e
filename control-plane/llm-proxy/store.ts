import {
  AttributeValue, ConditionalCheckFailedException, CreateTableCommand, DynamoDBClient, GetItemCommand, ResourceInUseException,
  UpdateItemCommand, waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';

/**
 * What the LLM proxy's tasks share, in one DynamoDB table (partition key `pk`, string; `expiresAt` is its TTL
 * attribute). Every limit is enforced by a single conditional update, atomic in DynamoDB, so any number of proxy
 * tasks together admit no more than the limit. No item holds a prompt, a completion or any part of one: only
 * identifiers, limits and counts.
 *
 * | `pk` | attributes | what it is |
 * |---|---|---|
 * | `customer#<id>` | `status` (`active`/`revoked`), `requestsPerMinute`, `tokensPerPeriod`, `period` (`day`/`month`), `tokenIds` (string set), `reason`, `updatedAt` | a registered customer, its limits and the token IDs (`jti`) the proxy admits |
 * | `rate#<id>#<minute start, epoch s>` | `requests`, `expiresAt` | requests admitted in one minute (fixed window) |
 * | `budget#<id>#<period, YYYY-MM-DD or YYYY-MM>` | `tokens`, `expiresAt` | tokens reserved and used in one period |
 */
export const LLM_TABLE_KEY = 'pk';
/** The table's TTL attribute (epoch seconds): rate windows and old budget periods expire by themselves. */
export const LLM_TABLE_TTL = 'expiresAt';

export type BudgetPeriod = 'day' | 'month';

export interface CustomerLimits {
  /** Requests admitted per minute, across every proxy task. */
  readonly requestsPerMinute: number;
  /** Tokens (input and output) per period, across every proxy task. */
  readonly tokensPerPeriod: number;
  readonly period: BudgetPeriod;
}

/** Limits of a newly registered customer unless others are given. */
export const DEFAULT_LIMITS: CustomerLimits = { requestsPerMinute: 600, tokensPerPeriod: 5_000_000, period: 'day' };

export interface CustomerRecord extends CustomerLimits {
  readonly customerId: string;
  readonly status: 'active' | 'revoked';
  readonly tokenIds: readonly string[];
}

/** Why the store refused a request (429): the per-minute request limit, or the period's token budget. */
export type LimitRefusal = 'rate-limit' | 'token-budget';

export class LimitError extends Error {
  constructor(public readonly reason: LimitRefusal, message: string, public readonly retryAfterSeconds: number) {
    super(message);
    this.name = 'LimitError';
  }
}

/** A reservation of tokens in a period's budget, settled once the real count is known. */
export interface Reservation {
  readonly customerId: string;
  readonly periodKey: string;
  readonly tokens: number;
}

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });
const CUSTOMER_ID = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,19}$/;

/** The period a time falls in, and when it ends (epoch s). */
export function periodOf(period: BudgetPeriod, nowMs: number): { key: string; endsAt: number } {
  const d = new Date(nowMs);
  if (period === 'day') {
    const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
    return { key: d.toISOString().slice(0, 10), endsAt: end / 1000 };
  }
  const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return { key: d.toISOString().slice(0, 7), endsAt: end / 1000 };
}

function checkLimits(limits: CustomerLimits): void {
  const whole = (name: string, v: number, max: number) => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${name} ${v}: give a whole number from 1 to ${max}`);
  };
  whole('requestsPerMinute', limits.requestsPerMinute, 1_000_000);
  whole('tokensPerPeriod', limits.tokensPerPeriod, 1e12);
  if (limits.period !== 'day' && limits.period !== 'month') throw new Error(`period ${limits.period}: give day or month`);
}

export class LlmStore {
  constructor(private readonly client: DynamoDBClient, private readonly table: string, private readonly now: () => number = Date.now) {}

  /** A customer's record, or undefined when it was never registered. Strongly consistent: a revocation is seen at once. */
  public async customer(customerId: string): Promise<CustomerRecord | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { [LLM_TABLE_KEY]: S(`customer#${customerId}`) }, ConsistentRead: true }));
    const item = out.Item;
    if (!item) return undefined;
    return {
      customerId,
      status: item.status?.S === 'active' ? 'active' : 'revoked',
      requestsPerMinute: Number(item.requestsPerMinute?.N ?? 0),
      tokensPerPeriod: Number(item.tokensPerPeriod?.N ?? 0),
      period: item.period?.S === 'month' ? 'month' : 'day',
      tokenIds: item.tokenIds?.SS ?? [],
    };
  }

  /**
   * Registers a customer (or updates its limits) as active and admits `tokenId`, keeping the token IDs already
   * admitted. Run again with the same values it changes nothing but `updatedAt`.
   */
  public async registerCustomer(customerId: string, tokenId: string, limits: CustomerLimits = DEFAULT_LIMITS): Promise<void> {
    if (!CUSTOMER_ID.test(customerId)) throw new Error(`customer ID "${customerId}" is not 3 to 20 lower-case letters, digits and single hyphens`);
    checkLimits(limits);
    await this.client.send(new UpdateItemCommand({
      TableName: this.table,
      Key: { [LLM_TABLE_KEY]: S(`customer#${customerId}`) },
      UpdateExpression: 'SET #status = :active, requestsPerMinute = :rpm, tokensPerPeriod = :tpp, #period = :period, updatedAt = :now REMOVE reason ADD tokenIds :jti',
      ExpressionAttributeNames: { '#status': 'status', '#period': 'period' },
      ExpressionAttributeValues: {
        ':active': S('active'), ':rpm': N(limits.requestsPerMinute), ':tpp': N(limits.tokensPerPeriod), ':period': S(limits.period),
        ':now': S(new Date(this.now()).toISOString()), ':jti': { SS: [tokenId] },
      },
    }));
  }

  /** Stops admitting one token (a leaked or replaced one); the customer's other tokens stay valid. */
  public async revokeToken(customerId: string, tokenId: string): Promise<void> {
    await this.client.send(new UpdateItemCommand({
      TableName: this.table,
      Key: { [LLM_TABLE_KEY]: S(`customer#${customerId}`) },
      UpdateExpression: 'DELETE tokenIds :jti SET updatedAt = :now',
      ConditionExpression: 'attribute_exists(#pk)',
      ExpressionAttributeNames: { '#pk': LLM_TABLE_KEY },
      ExpressionAttributeValues: { ':jti': { SS: [tokenId] }, ':now': S(new Date(this.now()).toISOString()) },
    }));
  }

  /** Refuses every token of the customer from now on (`revoked-customer`), until it is registered again. */
  public async revokeCustomer(customerId: string, reason: string): Promise<void> {
    await this.client.send(new UpdateItemCommand({
      TableName: this.table,
      Key: { [LLM_TABLE_KEY]: S(`customer#${customerId}`) },
      UpdateExpression: 'SET #status = :revoked, reason = :reason, updatedAt = :now REMOVE tokenIds',
      ConditionExpression: 'attribute_exists(#pk)',
      ExpressionAttributeNames: { '#status': 'status', '#pk': LLM_TABLE_KEY },
      ExpressionAttributeValues: { ':revoked': S('revoked'), ':reason': S(reason), ':now': S(new Date(this.now()).toISOString()) },
    }));
  }

  /**
   * Counts one request in the customer's current minute, or refuses it (`rate-limit`) when the minute already
   * holds `requestsPerMinute`: one conditional `ADD`, so concurrent tasks never admit more than the limit.
   */
  public async admitRequest(customer: CustomerRecord): Promise<void> {
    const nowS = Math.floor(this.now() / 1000);
    const minute = nowS - (nowS % 60);
    try {
      await this.client.send(new UpdateItemCommand({
        TableName: this.table,
        Key: { [LLM_TABLE_KEY]: S(`rate#${customer.customerId}#${minute}`) },
        UpdateExpression: 'ADD requests :one SET #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(requests) OR requests < :limit',
        ExpressionAttributeNames: { '#ttl': LLM_TABLE_TTL },
        ExpressionAttributeValues: { ':one': N(1), ':limit': N(customer.requestsPerMinute), ':ttl': N(minute + 120) },
      }));
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) {
        throw new LimitError('rate-limit', `more than ${customer.requestsPerMinute} requests in this minute`, minute + 60 - nowS);
      }
      throw e;
    }
  }

  /**
   * Reserves `tokens` (the request's estimated input plus its `max_tokens`) in the period's budget, or refuses
   * (`token-budget`) when they do not fit in what is left: one conditional `ADD`. Settle it with `settle`.
   */
  public async reserveTokens(customer: CustomerRecord, tokens: number): Promise<Reservation> {
    const { key, endsAt } = periodOf(customer.period, this.now());
    const refuse = () => new LimitError('token-budget',
      `${tokens} tokens (estimated input and max_tokens) do not fit in what is left of ${customer.tokensPerPeriod} tokens this ${customer.period}`,
      Math.max(1, Math.ceil(endsAt - this.now() / 1000)));
    if (tokens > customer.tokensPerPeriod) throw refuse();
    try {
      await this.client.send(new UpdateItemCommand({
        TableName: this.table,
        Key: { [LLM_TABLE_KEY]: S(`budget#${customer.customerId}#${key}`) },
        UpdateExpression: 'ADD tokens :n SET #ttl = :ttl',
        ConditionExpression: 'attribute_not_exists(tokens) OR tokens <= :room',
        ExpressionAttributeNames: { '#ttl': LLM_TABLE_TTL },
        // Kept 400 days after the period ends: the usage record of the period.
        ExpressionAttributeValues: { ':n': N(tokens), ':room': N(customer.tokensPerPeriod - tokens), ':ttl': N(endsAt + 400 * 86400) },
      }));
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) throw refuse();
      throw e;
    }
    return { customerId: customer.customerId, periodKey: key, tokens };
  }

  /** Replaces a reservation by what was really used (0 when no provider answered). */
  public async settle(reservation: Reservation, usedTokens: number): Promise<void> {
    const delta = usedTokens - reservation.tokens;
    if (delta === 0) return;
    await this.client.send(new UpdateItemCommand({
      TableName: this.table,
      Key: { [LLM_TABLE_KEY]: S(`budget#${reservation.customerId}#${reservation.periodKey}`) },
      UpdateExpression: 'ADD tokens :delta',
      ExpressionAttributeValues: { ':delta': N(delta) },
    }));
  }

  /** Tokens counted in the customer's current period. */
  public async tokensUsed(customerId: string, period: BudgetPeriod): Promise<number> {
    const { key } = periodOf(period, this.now());
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { [LLM_TABLE_KEY]: S(`budget#${customerId}#${key}`) }, ConsistentRead: true }));
    return Number(out.Item?.tokens?.N ?? 0);
  }
}

/** Creates the table (on demand), waiting until it is active: development and tests; the `LlmProxy` construct creates it in AWS. */
export async function createLlmTable(client: DynamoDBClient, table: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: LLM_TABLE_KEY, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: LLM_TABLE_KEY, KeyType: 'HASH' }],
    }));
  } catch (e) {
    if (!(e instanceof ResourceInUseException)) throw e;
  }
  await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: table });
}
