import { AttributeValue, ConditionalCheckFailedException, DeleteItemCommand, DynamoDBClient, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DeploymentMode, IngestTables, RETENTION, SOFT_DELETED_ATTRIBUTE, SWEPT_TABLES, TABLE_KEYS, TTL_ATTRIBUTE } from './settings';

/**
 * The retention sweep of the vendor-hosted modes (`RETENTION` in `settings.ts`): what a TTL cannot do. DynamoDB's
 * TTL (the `expiresAt` the store writes) deletes items after their time, usually within days; the sweep
 *
 * - marks items deleted (`deletedAt`) once past the mode's soft-delete age, and every item of a cancelled
 *   customer at once: readers skip marked items (`isServed`);
 * - deletes items whose TTL is overdue (so the mode's bound holds without waiting for DynamoDB), and every item
 *   of a cancelled customer once the grace period after the cancellation is over.
 *
 * The learning pool carries no customer identifier and is not swept. In `byoc` the sweep does nothing.
 *
 * The cancellations are recorded by `byoc customer cancel` as a tag on each customer's ingest secret; the service
 * (`main.ts`) reads them with `RegistryReader.cancellations` before each sweep and passes them in.
 */

const DAY_MS = 86_400_000;


/** The TTL (epoch seconds) of an item stored at `storedAtMs` in table `role`, or none. */
export function expiresAt(mode: DeploymentMode, role: keyof IngestTables, storedAtMs: number): number | undefined {
  const rule = RETENTION[mode];
  if (rule.ttlDays === undefined || role === 'learningPool' || (role === 'rejections' && rule.auditKept)) return undefined;
  return Math.floor((storedAtMs + rule.ttlDays * DAY_MS) / 1000);
}

/** Whether an item may be served (it is not soft-deleted). */
export function isServed(item: Record<string, AttributeValue>): boolean {
  return item[SOFT_DELETED_ATTRIBUTE] === undefined;
}

export interface SweepResult {
  readonly softDeleted: number;
  readonly hardDeleted: number;
}

/**
 * One sweep at `nowMs`. `cancelled`: customer ID to the time its subscription was cancelled (epoch ms).
 * Idempotent: a second sweep at the same time changes nothing.
 */
export async function sweepRetention(client: DynamoDBClient, tables: IngestTables, mode: DeploymentMode, nowMs: number,
  cancelled: ReadonlyMap<string, number> = new Map()): Promise<SweepResult> {
  const rule = RETENTION[mode];
  let softDeleted = 0;
  let hardDeleted = 0;
  if (mode === 'byoc') return { softDeleted, hardDeleted };
  for (const role of SWEPT_TABLES) {
    const { partition, sort } = TABLE_KEYS[role];
    const timed = !(role === 'rejections' && rule.auditKept);
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(new ScanCommand({ TableName: tables[role], ExclusiveStartKey: start }));
      for (const item of page.Items ?? []) {
        const key = { [partition]: item[partition], [sort]: item[sort] };
        const customerId = item.customerId?.S;
        const cancelledAt = customerId === undefined ? undefined : cancelled.get(customerId);
        const ttl = item[TTL_ATTRIBUTE]?.N === undefined ? undefined : Number(item[TTL_ATTRIBUTE].N) * 1000;
        const storedAt = item.storedAt?.N === undefined ? undefined : Number(item.storedAt.N);
        const hard = (timed && ttl !== undefined && nowMs >= ttl)
          || (cancelledAt !== undefined && rule.cancellationGraceDays !== undefined && timed && nowMs >= cancelledAt + rule.cancellationGraceDays * DAY_MS);
        if (hard) {
          await client.send(new DeleteItemCommand({ TableName: tables[role], Key: key }));
          hardDeleted++;
          continue;
        }
        const soft = (timed && rule.softDeleteDays !== undefined && storedAt !== undefined && nowMs >= storedAt + rule.softDeleteDays * DAY_MS)
          || (cancelledAt !== undefined && timed && nowMs >= cancelledAt);
        if (soft && isServed(item)) {
          try {
            await client.send(new UpdateItemCommand({
              TableName: tables[role], Key: key,
              UpdateExpression: 'SET #d = :now',
              // Only an item still there and not yet marked: never recreates one deleted meanwhile.
              ConditionExpression: `attribute_exists(#p) AND attribute_not_exists(#d)`,
              ExpressionAttributeNames: { '#d': SOFT_DELETED_ATTRIBUTE, '#p': partition },
              ExpressionAttributeValues: { ':now': { N: String(nowMs) } },
            }));
            softDeleted++;
          } catch (e) {
            if (!(e instanceof ConditionalCheckFailedException)) throw e;
          }
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
  }
  return { softDeleted, hardDeleted };
}
