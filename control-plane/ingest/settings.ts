/**
 * What the ingest service's entry point (`main.ts`, bundled into the vendor's services image) and the construct
 * that deploys it (`control-plane/ingest-deployment.ts`) agree on: the tables and their key schema, where the
 * customer registry is in Secrets Manager, the environment variables, where the bundle is in the image and how
 * its health is checked. Nothing is imported here, so the construct loads neither the AWS SDK nor NATS, and the
 * bundle nothing of CDK.
 */

/**
 * The ingest tables by role (`store.ts` writes them):
 *
 * | table | partition key | sort key | one item per |
 * |---|---|---|---|
 * | usage | `customerId` | `period` = `<periodStart, 13 digits>#<agent>` | customer, period, agent (billing) |
 * | metrics | `series` = `<customerId>#<agent>` | `point` = `<windowStart>#<metric>#<statusCode or ->#<trigger or ->` | customer, agent, window, series |
 * | workflow | `customerId` | `event` = `<workflowId>#<startedAt>#<SHA-256 of the message, 32 hex>` | distinct workflow event |
 * | learning pool | `patternHash` | `variant` = SHA-256 of the message | distinct fingerprint, with NO customer identifier |
 * | rejections | `customerId` | `entry` = `seq#<stream sequence, 20 digits>` (one rejection) or `count#<reason>` (its counter) | rejection, and count per reason |
 */
export interface IngestTables {
  readonly usage: string;
  readonly metrics: string;
  readonly workflow: string;
  readonly learningPool: string;
  readonly rejections: string;
}

/** Key schema of each table (string keys), for `createIngestTables` and the control plane's construct. */
export const TABLE_KEYS: Record<keyof IngestTables, { partition: string; sort: string }> = {
  usage: { partition: 'customerId', sort: 'period' },
  metrics: { partition: 'series', sort: 'point' },
  workflow: { partition: 'customerId', sort: 'event' },
  learningPool: { partition: 'patternHash', sort: 'variant' },
  rejections: { partition: 'customerId', sort: 'entry' },
};

/** The DynamoDB actions the service uses on each table, and nothing else (it never reads). */
export const TABLE_ACTIONS: Record<keyof IngestTables, readonly string[]> = {
  usage: ['dynamodb:PutItem'],
  metrics: ['dynamodb:BatchWriteItem'],
  workflow: ['dynamodb:PutItem'],
  // Stored by ingest; scanned by the learning-pool publisher, which offers the pool back to every customer.
  learningPool: ['dynamodb:PutItem', 'dynamodb:Scan'],
  // A rejection and its counter in one TransactWriteItems: IAM checks its Put and its Update.
  rejections: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
};

/** Prefix of every secret of a registered customer: `byoc/customers/<id>/...` (`lib/customers.ts` writes them). */
export const CUSTOMER_SECRET_PREFIX = 'byoc/customers/';
/** The last part of the name of the one secret per customer the ingest service reads: `byoc/customers/<id>/ingest`. */
export const INGEST_SECRET = 'ingest';

/** Environment variables of the entry point (`main.ts`). */
export const INGEST_ENV = {
  /** Required. Comma-separated client URLs of the hub nodes, `tls://node-0.<hub host>:4222,...` (or `nats://`). */
  hubUrls: 'BYOC_INGEST_HUB_URLS',
  /** The vendor CA (PEM) the hub nodes' certificates are verified with. Without it, `tls://` URLs use the system's roots. */
  hubCa: 'BYOC_INGEST_HUB_CA',
  /** The region of the registry and the tables. Default: `AWS_REGION`. */
  region: 'BYOC_INGEST_REGION',
  /** Where the registry is. Default: `CUSTOMER_SECRET_PREFIX`. */
  registryPrefix: 'BYOC_INGEST_REGISTRY_PREFIX',
  /** Seconds between two reads of the registry (1 to 3600). Default: `INGEST_DEFAULTS.refreshSeconds`. */
  refreshSeconds: 'BYOC_INGEST_REFRESH_SECONDS',
  /** The DynamoDB endpoint URL (the VPC's interface endpoint). Default: the SDK's (`AWS_ENDPOINT_URL`, then the regional one). */
  dynamoDbEndpoint: 'BYOC_INGEST_DYNAMODB_ENDPOINT',
  /** The loopback port of the health endpoint. Default: `INGEST_DEFAULTS.healthPort`. */
  healthPort: 'BYOC_INGEST_HEALTH_PORT',
  /** The deployment mode (`DEPLOYMENT_MODES`): what `RETENTION` keeps and for how long. Default: `byoc`. */
  deploymentMode: 'BYOC_INGEST_DEPLOYMENT_MODE',
  /** Seconds between two retention sweeps (`retention.ts`), in the modes that have one. Default: `INGEST_DEFAULTS.retentionSweepSeconds`. */
  retentionSweepSeconds: 'BYOC_INGEST_RETENTION_SWEEP_SECONDS',
  /** Seconds between two publications of the learning pool to every active customer (60 to 86400). Default: `INGEST_DEFAULTS.poolPublishSeconds`. */
  poolPublishSeconds: 'BYOC_INGEST_POOL_PUBLISH_SECONDS',
} as const;

/** Required: the name of each table, one variable per role. */
export const TABLE_ENV: Record<keyof IngestTables, string> = {
  usage: 'BYOC_INGEST_TABLE_USAGE',
  metrics: 'BYOC_INGEST_TABLE_METRICS',
  workflow: 'BYOC_INGEST_TABLE_WORKFLOW',
  learningPool: 'BYOC_INGEST_TABLE_LEARNING_POOL',
  rejections: 'BYOC_INGEST_TABLE_REJECTIONS',
};

export const INGEST_DEFAULTS = { refreshSeconds: 60, healthPort: 8081, poolPublishSeconds: 3600, retentionSweepSeconds: 3600 } as const;

/** How the control plane is run: `byoc` (the vendor's own policies), or a vendor-hosted mode with fixed retention. */
export const DEPLOYMENT_MODES = ['byoc', 'trial', 'starter'] as const;
export type DeploymentMode = typeof DEPLOYMENT_MODES[number];

/** The item attribute DynamoDB's TTL deletes by (epoch seconds), in the modes that set one. */
export const TTL_ATTRIBUTE = 'expiresAt';
/** The item attribute a soft delete sets (epoch ms): the item is no longer served and goes at the hard delete. */
export const SOFT_DELETED_ATTRIBUTE = 'deletedAt';

/**
 * What each mode keeps of the customer-keyed tables (usage, metrics, workflow, rejections); the learning pool
 * carries no customer identifier and is not governed by a mode.
 *
 * - `softDeleteDays`: an item this old (by the time it was stored) is marked deleted by the sweep.
 * - `ttlDays`: the TTL written with each item (DynamoDB deletes it after, usually within days); the sweep deletes
 *   what is overdue, so the bound holds without waiting for TTL.
 * - `auditKept`: the rejections table (audit metadata: what was refused and why) gets no TTL.
 * - `cancellationGraceDays`: a cancelled customer's items are marked deleted at once and deleted this many days
 *   after the cancellation (audit metadata too, unless `auditKept`).
 */
export interface RetentionRule {
  readonly softDeleteDays?: number;
  readonly ttlDays?: number;
  readonly auditKept: boolean;
  readonly cancellationGraceDays?: number;
}

/** The customer-keyed tables the retention sweep (`retention.ts`) walks. */
export const SWEPT_TABLES = ['usage', 'metrics', 'workflow', 'rejections'] as const satisfies readonly (keyof IngestTables)[];
/** The DynamoDB actions the sweep needs on each swept table (granted only in the modes that sweep). */
export const RETENTION_ACTIONS = ['dynamodb:Scan', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] as const;

export const RETENTION: Record<DeploymentMode, RetentionRule> = {
  byoc: { auditKept: true },
  trial: { softDeleteDays: 14, ttlDays: 22, auditKept: false, cancellationGraceDays: 8 },
  starter: { ttlDays: 90, auditKept: true, cancellationGraceDays: 30 },
};

/** The bundle's file name in `dist/control-plane/` (scripts/postbuild.js) and in the image's `/app/`. */
export const INGEST_BUNDLE = 'byoc-ingest.js';
/** Where the services image (`control-plane/Dockerfile`) holds the ingest service's bundle. */
export const INGEST_ENTRY_POINT = `/app/${INGEST_BUNDLE}`;

/** The health endpoint's path (on `127.0.0.1` only). */
export const HEALTH_PATH = '/healthz';

/**
 * The container health check's command: a GET of the health endpoint on loopback by the image's own Node.js
 * (no curl or shell tools needed), exit 0 only on 200 within 4 seconds.
 */
export function healthCheckCommand(port: number = INGEST_DEFAULTS.healthPort): string[] {
  const script = `require('http').get({host:'127.0.0.1',port:${port},path:'${HEALTH_PATH}',timeout:4000},(r)=>process.exit(r.statusCode===200?0:1)).on('timeout',()=>process.exit(1)).on('error',()=>process.exit(1))`;
  return ['CMD', 'node', '-e', script];
}
