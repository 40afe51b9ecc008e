import { Pool, PoolClient } from 'pg';

/** A schema migration, applied once, in version order. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The advisory lock every runtime takes to migrate: one migrates at a time, the others wait, then skip. */
export const MIGRATION_LOCK = 7_150_421;
export const VERSION_TABLE = 'byoc_schema_migrations';

/**
 * Applies the migrations not yet applied, each in its own transaction with its version row, under a
 * session advisory lock: safe when several tasks start at once. Returns the versions it applied.
 */
export async function migrate(pool: Pool, migrations: readonly Migration[]): Promise<number[]> {
  const versions = migrations.map((m) => m.version);
  if (versions.some((v, i) => !Number.isInteger(v) || v < 1 || (i > 0 && v <= versions[i - 1]))) {
    throw new Error(`migrations must have whole, strictly increasing versions: ${versions.join(', ')}`);
  }
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${VERSION_TABLE}`)).rows.map((r) => r.version));
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await inTransaction(client, async () => {
        await client.query(m.sql);
        await client.query(`INSERT INTO ${VERSION_TABLE} (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      });
      applied.push(m.version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
  return applied;
}

async function inTransaction(client: PoolClient, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  }
}

/**
 * A connection pool shared by tenants (workflows) with a cap per tenant, so one workflow cannot take every
 * connection and starve the others. Queries are parameterized only: `query(tenant, text, values)`.
 */
export class TenantPool {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(public readonly pool: Pool, private readonly perTenant: number) {
    if (!Number.isInteger(perTenant) || perTenant < 1) throw new Error(`per-tenant cap ${perTenant} must be a whole number of at least 1`);
  }

  public async query<R extends Record<string, unknown>>(tenant: string, text: string, values: readonly unknown[] = []): Promise<R[]> {
    await this.acquire(tenant);
    try {
      return (await this.pool.query<R>(text, values as unknown[])).rows;
    } finally {
      this.release(tenant);
    }
  }

  /** Connections a tenant holds now. */
  public inUse(tenant: string): number {
    return this.active.get(tenant) ?? 0;
  }

  private acquire(tenant: string): Promise<void> {
    const n = this.active.get(tenant) ?? 0;
    if (n < this.perTenant) {
      this.active.set(tenant, n + 1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(tenant) ?? [];
      queue.push(() => { this.active.set(tenant, (this.active.get(tenant) ?? 0) + 1); resolve(); });
      this.waiting.set(tenant, queue);
    });
  }

  private release(tenant: string): void {
    this.active.set(tenant, (this.active.get(tenant) ?? 1) - 1);
    const next = this.waiting.get(tenant)?.shift();
    if (next) next();
  }
}
