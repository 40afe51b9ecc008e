import {
  AttributeValue, BatchWriteItemCommand, ConditionalCheckFailedException, CreateTableCommand, DynamoDBClient, PutItemCommand,
  ResourceInUseException, TransactionCanceledException, TransactWriteItemsCommand, waitUntilTableExists, WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { MessageKind } from '../../lib/boundary-contract';
import { ContractValue } from '../../lib/contract-validator';
import { IngestRejectionReason, sha256Hex } from './check';
import { expiresAt } from './retention';
import { DeploymentMode, IngestTables, TABLE_KEYS, TTL_ATTRIBUTE } from './settings';

/**
 * Where the ingest service keeps what crossed, in DynamoDB (the tables and their keys: `IngestTables` in
 * `settings.ts`). Every write is idempotent: a redelivered message (the same stream sequence) or a replayed one
 * (the same content under a new sequence or message ID) writes the same item again, so nothing is counted twice.
 */

/** Creates the tables (on-demand), waiting until each is active: development and tests; the control plane's stack creates them in AWS. */
export async function createIngestTables(client: DynamoDBClient, tables: IngestTables): Promise<void> {
  for (const [role, name] of Object.entries(tables) as [keyof IngestTables, string][]) {
    const { partition, sort } = TABLE_KEYS[role];
    try {
      await client.send(new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: partition, AttributeType: 'S' }, { AttributeName: sort, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: partition, KeyType: 'HASH' }, { AttributeName: sort, KeyType: 'RANGE' }],
      }));
    } catch (e) {
      if (!(e instanceof ResourceInUseException)) throw e;
    }
    await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: name });
  }
}

/** Where a message came from on the hub: the customer and the stream's sequence and time (the same on redelivery). */
export interface Provenance {
  readonly customerId: string;
  readonly streamSeq: number;
  /** The stream's receive time of the message, ms since the epoch. */
  readonly storedAtMs: number;
}

export interface RejectionRecord {
  readonly kind: string;
  readonly subject: string;
  readonly size: number;
  readonly sha256: string;
  readonly reason: IngestRejectionReason;
  readonly detail: string;
}

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });
const pad = (n: number, width: number) => String(n).padStart(width, '0');

export class IngestStore {
  /** `mode` sets the TTL each item is written with (`RETENTION` in `settings.ts`; none in `byoc`). */
  constructor(private readonly client: DynamoDBClient, private readonly tables: IngestTables, private readonly mode: DeploymentMode = 'byoc') {}

  /** The TTL attribute of an item of table `role` stored at `storedAtMs`, when the mode has one. */
  private ttl(role: keyof IngestTables, storedAtMs: number): Record<string, AttributeValue> {
    const at = expiresAt(this.mode, role, storedAtMs);
    return at === undefined ? {} : { [TTL_ATTRIBUTE]: N(at) };
  }

  /** Stores an accepted crossing. Resolves once DynamoDB has it; throws otherwise (the caller does not acknowledge). */
  public async store(kind: MessageKind, value: ContractValue, canonical: Buffer, from: Provenance): Promise<void> {
    switch (kind.name) {
      case 'usage': return this.usage(value, from);
      case 'metrics': return this.metrics(value, from);
      case 'workflow': return this.workflow(value, canonical, from);
      case 'fingerprint': return this.fingerprint(value, canonical);
      default: throw new Error(`ingest: no store for the ${kind.name} kind`);
    }
  }

  /**
   * One item per customer, period and agent, holding that period's counters as reported: a redelivery or a
   * replay writes the same values again (never added twice). A later report of the same period (a higher stream
   * sequence) replaces an earlier one; an earlier one arriving late changes nothing.
   */
  private async usage(v: ContractValue, from: Provenance): Promise<void> {
    try {
      await this.client.send(new PutItemCommand({
        TableName: this.tables.usage,
        Item: {
          customerId: S(from.customerId),
          period: S(`${pad(v.periodStart as number, 13)}#${v.agent as string}`),
          periodStart: N(v.periodStart as number), periodEnd: N(v.periodEnd as number), agent: S(v.agent as string),
          invocations: N(v.invocations as number), computeSeconds: N(v.computeSeconds as number),
          llmTokensIn: N(v.llmTokensIn as number), llmTokensOut: N(v.llmTokensOut as number),
          streamSeq: N(from.streamSeq), storedAt: N(from.storedAtMs), ...this.ttl('usage', from.storedAtMs),
        },
        ConditionExpression: 'attribute_not_exists(customerId) OR streamSeq <= :seq',
        ExpressionAttributeValues: { ':seq': N(from.streamSeq) },
      }));
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw e;
    }
  }

  /** One item per point: customer and agent, window, metric and attributes. A redelivery overwrites it with the same value. */
  private async metrics(v: ContractValue, from: Provenance): Promise<void> {
    const points = v.points as { metric: string; agent: string; statusCode?: number; trigger?: string; value: number }[];
    const byKey = new Map<string, WriteRequest>();
    for (const p of points) {
      const series = `${from.customerId}#${p.agent}`;
      const point = `${pad(v.windowStart as number, 13)}#${p.metric}#${p.statusCode ?? '-'}#${p.trigger ?? '-'}`;
      // The same series twice in one message: the last one stands (a batch may not write one key twice).
      byKey.set(`${series} ${point}`, { PutRequest: { Item: {
        series: S(series), point: S(point), customerId: S(from.customerId), agent: S(p.agent), metric: S(p.metric),
        windowStart: N(v.windowStart as number), windowEnd: N(v.windowEnd as number), value: N(p.value),
        ...(p.statusCode !== undefined ? { statusCode: N(p.statusCode) } : {}), ...(p.trigger !== undefined ? { trigger: S(p.trigger) } : {}),
        streamSeq: N(from.streamSeq), storedAt: N(from.storedAtMs), ...this.ttl('metrics', from.storedAtMs),
      } } });
    }
    await this.batchWrite(this.tables.metrics, [...byKey.values()]);
  }

  /** One item per distinct event: its key includes the hash of its canonical bytes, so the same event is one item. */
  private async workflow(v: ContractValue, canonical: Buffer, from: Provenance): Promise<void> {
    const item: Record<string, AttributeValue> = {
      customerId: S(from.customerId),
      event: S(`${v.workflowId as string}#${pad(v.startedAt as number, 13)}#${sha256Hex(canonical).slice(0, 32)}`),
      workflowId: S(v.workflowId as string), status: S(v.status as string), statusCode: N(v.statusCode as number),
      startedAt: N(v.startedAt as number), durationMs: N(v.durationMs as number), streamSeq: N(from.streamSeq), storedAt: N(from.storedAtMs),
      ...this.ttl('workflow', from.storedAtMs),
    };
    if (v.agent !== undefined) item.agent = S(v.agent as string);
    if (v.stepId !== undefined) item.stepId = N(v.stepId as number);
    await this.client.send(new PutItemCommand({ TableName: this.tables.workflow, Item: item }));
  }

  /**
   * The shared learning pool: the fingerprint's own fields and nothing else, keyed by its content. No customer
   * ID, account, subject, stream sequence, message ID or time, so an item cannot be traced to who sent it
   * (the same fingerprint from two customers is one item).
   */
  private async fingerprint(v: ContractValue, canonical: Buffer): Promise<void> {
    await this.client.send(new PutItemCommand({
      TableName: this.tables.learningPool,
      Item: {
        patternHash: S(v.patternHash as string), variant: S(sha256Hex(canonical)),
        shape: { L: (v.shape as string[]).map(S) }, occurrences: N(v.occurrences as number), outcome: S(v.outcome as string),
      },
    }));
  }

  /**
   * Records a rejection (kind, subject, size, SHA-256, reason, detail; never the body) and counts it per customer
   * and reason, in one transaction conditional on the rejection being new: a redelivered rejection is neither
   * stored nor counted twice. Returns false when it was already recorded.
   */
  public async reject(r: RejectionRecord, from: Provenance): Promise<boolean> {
    const counterTtl = expiresAt(this.mode, 'rejections', from.storedAtMs);
    try {
      await this.client.send(new TransactWriteItemsCommand({
        TransactItems: [
          { Put: {
            TableName: this.tables.rejections,
            Item: {
              customerId: S(from.customerId), entry: S(`seq#${pad(from.streamSeq, 20)}`),
              kind: S(r.kind), subject: S(r.subject), size: N(r.size), sha256: S(r.sha256), reason: S(r.reason), detail: S(r.detail),
              streamSeq: N(from.streamSeq), storedAt: N(from.storedAtMs), ...this.ttl('rejections', from.storedAtMs),
            },
            ConditionExpression: 'attribute_not_exists(entry)',
          } },
          { Update: {
            TableName: this.tables.rejections,
            Key: { customerId: S(from.customerId), entry: S(`count#${r.reason}`) },
            // With a TTL, the counter lives as long as its latest rejection.
            ...(counterTtl === undefined
              ? { UpdateExpression: 'ADD #n :one', ExpressionAttributeNames: { '#n': 'count' }, ExpressionAttributeValues: { ':one': N(1) } }
              : { UpdateExpression: 'ADD #n :one SET #t = :ttl', ExpressionAttributeNames: { '#n': 'count', '#t': TTL_ATTRIBUTE },
                ExpressionAttributeValues: { ':one': N(1), ':ttl': N(counterTtl) } }),
          } },
        ],
      }));
      return true;
    } catch (e) {
      if (e instanceof TransactionCanceledException && e.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed') return false;
      throw e;
    }
  }

  private async batchWrite(table: string, requests: WriteRequest[]): Promise<void> {
    for (let i = 0; i < requests.length; i += 25) {
      let pending: WriteRequest[] = requests.slice(i, i + 25);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) {
          if (attempt > 8) throw new Error(`DynamoDB left ${pending.length} writes to ${table} unprocessed`);
          await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 2000)));
        }
        const out = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
        pending = out.UnprocessedItems?.[table] ?? [];
      }
    }
  }
}
