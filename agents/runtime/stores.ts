/**
 * The data stores an agent declared in the catalog, opened at start from the environment the customer plane
 * gives its task (customer-plane/agent-group.ts): PostgreSQL as the agent's own database user with an IAM token,
 * the Redis cache as the agent's own user. Nothing the agent did not declare is opened.
 *
 * The runtime's entry point calls it once, after the configuration is loaded and before it takes work:
 *
 *     const stores = await openStores(process.env, { agent: config.agent, migrations: agent.migrations, readSecret: secret });
 *     // stores.postgres?.query(tenant, 'SELECT ...', [...]) / stores.cache?.get(key)
 *     // on SIGTERM, after the host has drained: await stores.close();
 *
 * A missing or bad variable throws `ConfigError` naming it (the entry point exits 2 on it).
 */
import * as fs from 'fs';
import { Signer, SignerConfig } from '@aws-sdk/rds-signer';
import { Client, ClientConfig, Pool } from 'pg';
import { verifyFullTls } from '../../lib/database-roles';
import { Cache } from './cache';
import { ConfigError } from './config';
import { isolationProblems, migrate, Migration, TenantPool } from './state';

/** The environment variables it reads (all set by the customer plane but the two caps, which have defaults). */
export const STORES_ENV = {
  /** PostgreSQL, declared: host, port, database, the agent's user (`agent_<name>`), `verify-full`, the CA bundle's path. */
  postgres: ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGSSLMODE', 'PGSSLROOTCERT'] as const,
  /** Connections of the agent's pool (default 10, 1 to 100). */
  poolMax: 'BYOC_PG_POOL_MAX',
  /** Connections one tenant may hold at once (default 2, 1 to the pool's size). */
  tenantCap: 'BYOC_PG_TENANT_CAP',
  /** The region of the database, for the IAM token (ECS sets it). */
  region: 'AWS_REGION',
  /** Redis, declared: endpoint, `true` (TLS only), the agent's own user and the ARN of its password. */
  redis: ['REDIS_HOST', 'REDIS_PORT', 'REDIS_TLS', 'REDIS_USER', 'REDIS_AUTH_SECRET_ARN'] as const,
} as const;

/** What makes IAM tokens: `@aws-sdk/rds-signer`'s `Signer`, or a wrapper around it. */
export type TokenSigner = { getAuthToken(): Promise<string> };

export interface StoresDeps {
  /** The agent's name: the cache's key prefix (its Redis user may touch only `<agent>:*`). */
  readonly agent: string;
  /** The agent's migrations, in version order: applied at start, once, under the advisory lock. */
  readonly migrations?: readonly Migration[];
  /** Reads a secret's value from Secrets Manager by ARN (the cache's AUTH password; read at connect, not kept). */
  readonly readSecret: (arn: string) => Promise<string>;
  /** Credentials that sign the IAM token. @default the SDK's provider chain (the task role) */
  readonly credentials?: SignerConfig['credentials'];
  /** Makes the token signer from its configuration. @default `new Signer(config)` */
  readonly signer?: (config: SignerConfig) => TokenSigner;
  /** CA (PEM) the cache's certificate must chain to. @default the system's roots (ElastiCache's certificates chain to them) */
  readonly cacheCa?: string;
  /** Told of errors on idle pooled connections (a database restart): the pool replaces them. */
  readonly onPoolError?: (e: Error) => void;
}

export interface Stores {
  /** With PostgreSQL declared: the agent's tenant pool (every query in its tenant's row-level security scope). */
  readonly postgres?: TenantPool;
  /** With Redis declared: the agent's cache. */
  readonly cache?: Cache;
  /** Closes what was opened. */
  close(): Promise<void>;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, dflt: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(name, `"${raw}" is not a whole number from ${min} to ${max}`);
  return n;
}

function required(env: Env, names: readonly string[], store: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = env[n];
    if (!v) throw new ConfigError(n, `is required with ${store} (the others of ${names.join(', ')} are set)`);
    out[n] = v;
  }
  return out;
}

/**
 * Opens the stores the environment declares. PostgreSQL (when `PGHOST` is set): a pool whose every new
 * connection logs in as `PGUSER` with a fresh IAM token (tokens are valid 15 minutes, for new connections),
 * over TLS that checks what `sslmode=verify-full` checks against `PGSSLROOTCERT` only; then the agent's
 * migrations through its schema owner's function, and a check that every table of its schema is tenant-isolated
 * (refusing to start otherwise). Redis (when `REDIS_HOST` is set): TLS only, as `REDIS_USER` with the password
 * read from `REDIS_AUTH_SECRET_ARN` at connect. If one fails, what was opened is closed and the error thrown.
 */
export async function openStores(env: Env, deps: StoresDeps): Promise<Stores> {
  let postgres: TenantPool | undefined;
  let cache: Cache | undefined;
  const close = async () => {
    await Promise.all([postgres?.end(), cache?.close()]);
  };
  try {
    if (env.PGHOST !== undefined) {
      postgres = await openPostgres(env, deps);
    } else if ((deps.migrations ?? []).length > 0) {
      throw new ConfigError('PGHOST', 'is required: the agent has migrations but PostgreSQL is not among its data stores');
    }
    if (env.REDIS_HOST !== undefined) cache = await openCache(env, deps);
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
  return { postgres, cache, close };
}

async function openPostgres(env: Env, deps: StoresDeps): Promise<TenantPool> {
  const pg = required(env, STORES_ENV.postgres, 'PostgreSQL');
  if (pg.PGSSLMODE !== 'verify-full') throw new ConfigError('PGSSLMODE', `"${pg.PGSSLMODE}": only verify-full is accepted (the certificate's chain and name are checked)`);
  const port = int(env, 'PGPORT', 5432, 1, 65535);
  const region = env[STORES_ENV.region];
  if (!region) throw new ConfigError(STORES_ENV.region, 'is required for the database\'s IAM token');
  let ca: string;
  try {
    ca = fs.readFileSync(pg.PGSSLROOTCERT, 'utf8');
  } catch (e) {
    throw new ConfigError('PGSSLROOTCERT', `cannot read ${pg.PGSSLROOTCERT}: ${(e as Error).message}`);
  }
  let tls;
  try {
    tls = verifyFullTls(ca);
  } catch (e) {
    throw new ConfigError('PGSSLROOTCERT', `${pg.PGSSLROOTCERT}: ${(e as Error).message}`);
  }
  const max = int(env, STORES_ENV.poolMax, 10, 1, 100);
  const perTenant = int(env, STORES_ENV.tenantCap, Math.min(2, max), 1, max);
  const signerConfig: SignerConfig = { hostname: pg.PGHOST, port, username: pg.PGUSER, region, ...(deps.credentials ? { credentials: deps.credentials } : {}) };
  const signer = (deps.signer ?? ((c: SignerConfig) => new Signer(c)))(signerConfig);
  /**
   * Every new connection signs its own token just before it opens (never one kept past its 15 minutes): the
   * token is the password of that connection only. Signing is local (no call to AWS once the credentials are
   * resolved), so it adds no round trip.
   */
  class IamTokenClient extends Client {
    constructor(config: ClientConfig) {
      super(config);
    }

    public connect(): Promise<Client>;
    public connect(callback: ((err: Error) => void) | ((err: null, c: Client) => void)): void;
    public connect(callback?: ((err: Error) => void) | ((err: null, c: Client) => void)): Promise<Client> | void {
      const opened = signer.getAuthToken().then(async (token) => {
        (this as { password?: string }).password = token;
        await super.connect();
        return this as Client;
      });
      if (!callback) return opened;
      const cb = callback as (err: Error | null, c?: Client) => void;
      opened.then((c) => cb(null, c), (e: Error) => cb(e));
    }
  }
  const pool = new Pool({
    Client: IamTokenClient as unknown as new () => Client,
    host: pg.PGHOST,
    port,
    database: pg.PGDATABASE,
    user: pg.PGUSER,
    // pg sends PGHOST as the TLS server name and Node checks the certificate names it; only `ca` is trusted.
    ssl: tls,
    max,
    connectionTimeoutMillis: 15000,
    idleTimeoutMillis: 60000,
  });
  pool.on('error', (e) => deps.onPoolError?.(e));
  try {
    if ((deps.migrations ?? []).length > 0) await migrate(pool, deps.migrations!, { asOwner: true });
    const problems = await isolationProblems(pool);
    if (problems.length > 0) {
      throw new Error(`refusing to start: tables of ${pg.PGUSER} without tenant isolation: ${problems.map((p) => `${p.object}: ${p.problem}`).join('; ')}`);
    }
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
  return new TenantPool(pool, perTenant);
}

async function openCache(env: Env, deps: StoresDeps): Promise<Cache> {
  const r = required(env, STORES_ENV.redis, 'Redis');
  if (r.REDIS_TLS !== 'true') throw new ConfigError('REDIS_TLS', `"${r.REDIS_TLS}": the cache is reached over TLS only ("true")`);
  return Cache.connect({
    host: r.REDIS_HOST,
    port: int(env, 'REDIS_PORT', 6379, 1, 65535),
    username: r.REDIS_USER,
    authToken: () => deps.readSecret(r.REDIS_AUTH_SECRET_ARN),
    ca: deps.cacheCa,
    prefix: deps.agent,
  });
}

/**
 * Reads an agent's secrets by catalog name (`llm-primary`, ...) through `BYOC_SECRET_ARNS` (name → ARN, set by
 * the customer plane): a secret the agent did not declare has no ARN and is refused.
 */
export function secretsByName(env: Env, readSecret: (arn: string) => Promise<string>): (name: string) => Promise<string> {
  let arns: Record<string, unknown> = {};
  if (env.BYOC_SECRET_ARNS !== undefined) {
    try {
      arns = JSON.parse(env.BYOC_SECRET_ARNS);
    } catch {
      throw new ConfigError('BYOC_SECRET_ARNS', 'is not JSON');
    }
    if (!arns || typeof arns !== 'object' || Array.isArray(arns) || Object.values(arns).some((v) => typeof v !== 'string')) {
      throw new ConfigError('BYOC_SECRET_ARNS', 'is not a JSON object of secret names to ARNs');
    }
  }
  return async (name: string) => {
    const arn = Object.prototype.hasOwnProperty.call(arns, name) ? arns[name] as string : undefined;
    if (!arn) throw new Error(`secret ${name} is not one of the agent's (${Object.keys(arns).join(', ') || 'none'})`);
    return readSecret(arn);
  };
}
