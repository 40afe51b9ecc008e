/**
 * Entry point of the vendor's ingest service (bundled by esbuild into `dist/control-plane/byoc-ingest.js`, run by
 * the vendor's services image, `control-plane/Dockerfile`; deployed by `control-plane/ingest-deployment.ts`).
 *
 * - Configuration from the environment (`INGEST_ENV`, `TABLE_ENV` in `settings.ts`), checked before anything
 *   starts: a wrong setting exits with code 2 and one line naming it.
 * - Reads the customer registry from Secrets Manager (`registry.ts`) and runs a consumer per customer
 *   (`IngestService`), then reads it again every `BYOC_INGEST_REFRESH_SECONDS`: a customer registered since gets
 *   its consumer, a revoked one loses it, a changed registration (new credentials, audit key, shareLearning)
 *   restarts it, a failed consumer is started again. No restart of the service.
 * - Logs JSON lines with pino: customer IDs, states, counters, reasons. Never a message's content, never a
 *   credential: the service hands errors only, and only their message.
 * - Health: `GET /healthz` on 127.0.0.1 only (`BYOC_INGEST_HEALTH_PORT`), what the container health check asks
 *   (`healthCheckCommand`). 200 while the registry was read within three refresh intervals (at least 30 s) and the
 *   service is not stopping; 503 otherwise. The answer comes from the live event loop, so a wedged process fails
 *   it as a dead one does. A customer whose consumer failed does not make the task unhealthy (a restart would not
 *   help it and would stop every other customer's): it is logged and retried on each refresh.
 * - In `trial` and `starter`, the retention sweep (`retention.ts`) at start and every
 *   `BYOC_INGEST_RETENTION_SWEEP_SECONDS`, with the cancellations recorded by `byoc customer cancel` (the tag
 *   `byoc:cancelled-at` on each ingest secret, read fresh before each sweep). A tag that holds no time is logged
 *   and counted, and its customer swept as not cancelled.
 * - SIGTERM (ECS stopping the task) or SIGINT: no new registry read, each consumer stores and acknowledges what
 *   it holds, connections drain, exit 0; exit 1 if that takes longer than 50 s (ECS kills at 60).
 */
import * as http from 'http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pino from 'pino';
import { Registry, RegistryReader } from './registry';
import { ConsumerState, IngestService, ReconcileReport } from './service';
import {
  CUSTOMER_SECRET_PREFIX, DEPLOYMENT_MODES, DeploymentMode, HEALTH_PATH, INGEST_DEFAULTS, INGEST_ENV, IngestTables, TABLE_ENV,
} from './settings';
import { IngestStore } from './store';
import { sweepRetention } from './retention';
import { LEARNING_KIND, LearningPoolPublisher } from './pool';
import canonicalize from 'canonicalize';
import { BoundaryContract } from '../../lib/boundary-contract';
import { contractFromEnvironment } from '../../lib/contract-input';

class ConfigError extends Error {}

interface IngestConfig {
  readonly servers: string[];
  readonly tlsCa?: string;
  readonly tables: IngestTables;
  readonly region: string;
  readonly prefix: string;
  readonly refreshMs: number;
  /** Milliseconds between two publications of the learning pool. */
  readonly poolPublishMs: number;
  readonly dynamoDbEndpoint?: string;
  readonly healthPort: number;
  readonly mode: DeploymentMode;
  /** Milliseconds between two retention sweeps (modes other than byoc). */
  readonly sweepMs: number;
  /** The boundary contract the customers' crossings are checked against (`BYOC_CONTRACT`; the kit's own when unset). */
  readonly contract: BoundaryContract;
}

const HUB_URL = /^(nats|tls):\/\/([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const STOP_DEADLINE_MS = 50000;

function readConfig(env: NodeJS.ProcessEnv): IngestConfig {
  const servers = (env[INGEST_ENV.hubUrls] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (servers.length === 0) throw new ConfigError(`${INGEST_ENV.hubUrls} is missing: give the hub nodes' client URLs, tls://node-0.<hub host>:4222,...`);
  for (const url of servers) {
    if (!HUB_URL.test(url)) throw new ConfigError(`${INGEST_ENV.hubUrls}: "${url.slice(0, 100)}" is not a NATS URL (nats://HOST:PORT or tls://HOST:PORT)`);
  }
  const tlsCa = env[INGEST_ENV.hubCa] || undefined;
  if (tlsCa !== undefined && !/-----BEGIN CERTIFICATE-----/.test(tlsCa)) throw new ConfigError(`${INGEST_ENV.hubCa} is not a PEM certificate (the vendor CA)`);
  const tables = {} as Record<keyof IngestTables, string>;
  for (const [role, variable] of Object.entries(TABLE_ENV) as [keyof IngestTables, string][]) {
    const name = env[variable];
    if (!name) throw new ConfigError(`${variable} is missing: give the name of the ${role} table`);
    if (!TABLE_NAME.test(name)) throw new ConfigError(`${variable}: "${name.slice(0, 100)}" is not a DynamoDB table name`);
    tables[role] = name;
  }
  const region = env[INGEST_ENV.region] || env.AWS_REGION;
  if (!region) throw new ConfigError(`${INGEST_ENV.region} (or AWS_REGION) is missing: give the region of the registry and the tables`);
  const refreshSeconds = Number(env[INGEST_ENV.refreshSeconds] ?? INGEST_DEFAULTS.refreshSeconds);
  if (!(refreshSeconds >= 1 && refreshSeconds <= 3600)) throw new ConfigError(`${INGEST_ENV.refreshSeconds} is not a number of seconds from 1 to 3600`);
  const healthPort = Number(env[INGEST_ENV.healthPort] ?? INGEST_DEFAULTS.healthPort);
  if (!Number.isInteger(healthPort) || healthPort < 1 || healthPort > 65535) throw new ConfigError(`${INGEST_ENV.healthPort} is not a port number`);
  const endpoint = env[INGEST_ENV.dynamoDbEndpoint] || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[A-Za-z0-9.-]+(:\d+)?\/?$/.test(endpoint)) throw new ConfigError(`${INGEST_ENV.dynamoDbEndpoint} is not an endpoint URL`);
  const prefix = env[INGEST_ENV.registryPrefix] || CUSTOMER_SECRET_PREFIX;
  if (!/^[A-Za-z0-9/_+=.@-]+\/$/.test(prefix)) throw new ConfigError(`${INGEST_ENV.registryPrefix} is not a secret name prefix ending in /`);
  const poolSeconds = Number(env[INGEST_ENV.poolPublishSeconds] ?? INGEST_DEFAULTS.poolPublishSeconds);
  if (!(poolSeconds >= 1 && poolSeconds <= 86400)) throw new ConfigError(`${INGEST_ENV.poolPublishSeconds} is not a number of seconds from 1 to 86400`);
  const mode = (env[INGEST_ENV.deploymentMode] || 'byoc') as DeploymentMode;
  if (!DEPLOYMENT_MODES.includes(mode)) throw new ConfigError(`${INGEST_ENV.deploymentMode} is not one of ${DEPLOYMENT_MODES.join(', ')}`);
  const sweepSeconds = Number(env[INGEST_ENV.retentionSweepSeconds] ?? INGEST_DEFAULTS.retentionSweepSeconds);
  if (!(sweepSeconds >= 60 && sweepSeconds <= 86400)) throw new ConfigError(`${INGEST_ENV.retentionSweepSeconds} is not a number of seconds from 60 to 86400`);
  let contract: BoundaryContract;
  try {
    contract = contractFromEnvironment(env);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  return { servers, tlsCa, tables, region, prefix, refreshMs: refreshSeconds * 1000, dynamoDbEndpoint: endpoint, healthPort, poolPublishMs: poolSeconds * 1000, mode, sweepMs: sweepSeconds * 1000, contract };
}

const short = (e: unknown) => ((e as Error)?.message ?? String(e)).slice(0, 300);

async function main(): Promise<void> {
  const log = pino({ base: { service: 'byoc-ingest' } });
  let config: IngestConfig;
  try {
    config = readConfig(process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    log.fatal({ error: e.message }, 'invalid configuration');
    process.exit(2);
  }

  const sm = new SecretsManagerClient({ region: config.region });
  const ddb = new DynamoDBClient({ region: config.region, ...(config.dynamoDbEndpoint ? { endpoint: config.dynamoDbEndpoint } : {}) });
  const reader = new RegistryReader(sm, { prefix: config.prefix });
  const service = new IngestService({
    servers: config.servers,
    tlsCa: config.tlsCa,
    contract: config.contract,
    store: new IngestStore(ddb, config.tables, config.mode),
    onError: (customerId, error) => log.error({ customer: customerId, error: short(error) }, 'message not stored; the hub redelivers it'),
  });

  let stopping = false;
  let lastRead = 0;
  let registry: Registry = { customers: [], awaitingAuditKey: [], invalid: [] };
  let states: Record<string, ConsumerState> = {};
  const staleAfterMs = Math.max(3 * config.refreshMs, 30000);

  // Health, on loopback only.
  const health = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== HEALTH_PATH) {
      res.writeHead(404).end();
      return;
    }
    const age = lastRead === 0 ? undefined : Date.now() - lastRead;
    const status = stopping ? 'stopping' : age === undefined ? 'starting' : age > staleAfterMs ? 'registry-stale' : 'ok';
    res.writeHead(status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      status,
      registryReadSecondsAgo: age === undefined ? null : Math.round(age / 1000),
      customers: service.states(),
      awaitingAuditKey: registry.awaitingAuditKey,
      invalid: registry.invalid.map((i) => i.customerId),
    }));
  });
  await new Promise<void>((resolve, reject) => {
    health.once('error', reject);
    health.listen(config.healthPort, '127.0.0.1', () => resolve());
  });

  /** Logs what changed: consumers started or stopped, states, customers waiting or broken. */
  const report = (r: ReconcileReport, read: Registry, previous: Registry) => {
    for (const [what, ids] of Object.entries(r) as [keyof ReconcileReport, string[]][]) {
      for (const id of ids) log.info({ customer: id, change: what, state: service.states()[id] }, `customer ${what}`);
    }
    const now = service.states();
    for (const [id, s] of Object.entries(now)) {
      if (JSON.stringify(states[id]) !== JSON.stringify(s) && !Object.values(r).some((ids: string[]) => ids.includes(id))) {
        (s.state === 'failed' ? log.error.bind(log) : log.info.bind(log))({ customer: id, state: s }, 'consumer state changed');
      }
    }
    states = now;
    if (JSON.stringify(read.awaitingAuditKey) !== JSON.stringify(previous.awaitingAuditKey) && read.awaitingAuditKey.length > 0) {
      log.warn({ customers: read.awaitingAuditKey }, 'registered without an audit public key: not consumed until byoc customer add --audit-public-key');
    }
    for (const i of read.invalid) {
      if (!previous.invalid.some((p) => p.customerId === i.customerId && p.reason === i.reason)) log.error({ customer: i.customerId, reason: i.reason }, 'registry entry unusable: not consumed');
    }
  };

  const refresh = async () => {
    const read = await reader.load();
    lastRead = Date.now();
    const r = await service.reconcile(read.customers);
    const previous = registry;
    registry = read;
    report(r, read, previous);
  };

  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (stopping) return;
    timer = setTimeout(() => {
      inFlight = refresh().catch((e) => log.error({ error: short(e) }, 'registry not read; consumers kept as they were')).finally(schedule);
    }, config.refreshMs);
  };

  // The shared learning pool, offered back to every active customer (opted-out ones included: the opt-out is one-way).
  const pool = new LearningPoolPublisher({ servers: config.servers, tlsCa: config.tlsCa, client: ddb, table: config.tables.learningPool });
  let poolTimer: NodeJS.Timeout | undefined;
  let poolInFlight: Promise<void> = Promise.resolve();
  const publishPool = async () => {
    const r = await pool.publish(registry.customers.filter((c) => (c.status ?? 'active') === 'active'));
    log.info({ publication: r }, 'learning pool published');
  };
  // The pool speaks the kit's learning kind: a contract without that exact kind has no learning pool to offer.
  const poolKind = config.contract.kinds.find((k) => k.name === LEARNING_KIND.name && k.direction === LEARNING_KIND.direction);
  const poolEnabled = poolKind !== undefined && canonicalize(poolKind) === canonicalize(LEARNING_KIND);
  if (!poolEnabled) log.info({ kind: LEARNING_KIND.name }, 'the contract has not the kit\'s learning kind: no learning pool is published');
  const schedulePool = () => {
    if (stopping || !poolEnabled) return;
    poolTimer = setTimeout(() => {
      poolInFlight = publishPool().catch((e) => log.error({ error: short(e) }, 'learning pool not published')).finally(schedulePool);
    }, config.poolPublishMs);
  };

  // The retention sweep of the vendor-hosted modes (retention.ts), once at start and then every interval. The
  // cancellations (byoc customer cancel's tags) are read before each run; a sweep whose cancellations cannot be
  // read does not run. A recorded time that is not one is neither a cancellation nor ignored: logged, counted.
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweepInFlight: Promise<void> = Promise.resolve();
  const sweep = async () => {
    const c = await reader.cancellations();
    for (const m of c.malformed) log.error({ customer: m.customerId, reason: m.reason }, 'cancellation time unreadable: the customer is swept as not cancelled until it is repaired');
    const r = await sweepRetention(ddb, config.tables, config.mode, Date.now(), c.cancelledAt);
    log.info({ retention: r, mode: config.mode, cancelled: c.cancelledAt.size, malformedCancellations: c.malformed.length }, 'retention swept');
  };
  const runSweep = () => {
    sweepInFlight = sweep().catch((e) => log.error({ error: short(e) }, 'retention not swept')).finally(scheduleSweep);
  };
  const scheduleSweep = () => {
    if (stopping || config.mode === 'byoc') return;
    sweepTimer = setTimeout(runSweep, config.sweepMs);
  };

  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    const deadline = setTimeout(() => {
      log.fatal({ afterMs: STOP_DEADLINE_MS }, 'did not stop in time');
      process.exit(1);
    }, STOP_DEADLINE_MS);
    deadline.unref();
    clearTimeout(timer);
    clearTimeout(poolTimer);
    clearTimeout(sweepTimer);
    pool.stop();
    await sweepInFlight.catch(() => undefined);
    await inFlight.catch(() => undefined);
    await poolInFlight.catch(() => undefined);
    await service.stop();
    await new Promise<void>((resolve) => health.close(() => resolve()));
    const counters = Object.fromEntries(Object.keys(service.states()).map((id) => [id, service.counters(id)]));
    log.info({ counters }, 'stopped');
    sm.destroy();
    ddb.destroy();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  // The first read must succeed: a task that cannot read its registry (permissions, network) fails its
  // deployment at once, and ECS's circuit breaker rolls it back.
  await refresh();
  log.info({ customers: Object.keys(service.states()).length, healthPort: config.healthPort, refreshSeconds: config.refreshMs / 1000 }, 'ready');
  schedule();
  schedulePool();
  // A first sweep at once: a task replaced more often than the interval would otherwise never sweep.
  if (config.mode !== 'byoc') runSweep();
}

main().catch((e) => {
  console.error(JSON.stringify({ level: 60, service: 'byoc-ingest', msg: 'ingest service failed', error: short(e) }));
  process.exit(1);
});
