import { Pool, PoolClient, QueryConfig } from 'pg';
import {
  ISOLATION_CHECK_FUNCTION, MIGRATION_FUNCTION, MIGRATIONS_TABLE, TENANT_COLUMN, TENANT_POLICY, TENANT_SETTING, quoteIdent,
} from '../../lib/database-roles';

export { TENANT_SETTING };

/** A schema migration, applied once, in version order. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The advisory lock every runtime takes to migrate: one migrates at a time, the others wait, then skip. */
export const MIGRATION_LOCK = 7_150_421;
export const VERSION_TABLE = MIGRATIONS_TABLE;

export interface MigrateOptions {
  /**
   * Apply through the schema owner's `byoc_apply_migration` (created by lib/database-roles.ts): what an agent's
   * own database user must do, since it does not own its tables. Without it, the pool's user runs the SQL itself.
   */
  readonly asOwner?: boolean;
}

/**
 * Applies the migrations not yet applied, each in its own transaction with its version row, under a
 * session advisory lock: safe when several tasks start at once. Returns the versions it applied.
 */
export async function migrate(pool: Pool, migrations: readonly Migration[], options: MigrateOptions = {}): Promise<number[]> {
  const versions = migrations.map((m) => m.version);
  if (versions.some((v, i) => !Number.isInteger(v) || v < 1 || (i > 0 && v <= versions[i - 1]))) {
    throw new Error(`migrations must have whole, strictly increasing versions: ${versions.join(', ')}`);
  }
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    if (options.asOwner) {
      // The owner's function applies each migration once (in the statement's own transaction) and refuses one
      // that leaves a table without tenant isolation; the agent's role could not change the tables itself.
      for (const m of migrations) {
        const r = await client.query<{ applied: boolean }>(`SELECT ${MIGRATION_FUNCTION}($1, $2, $3) AS applied`, [m.version, m.name, m.sql]);
        if (r.rows[0].applied) applied.push(m.version);
      }
      return applied;
    }
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
 * The SQL that makes `table` tenant-scoped, for a migration: add the tenant column to the CREATE TABLE with
 * `TENANT_COLUMN_SQL`, then append `tenantIsolationSql(table)`. The column defaults to the query's tenant, so an
 * INSERT need not name it; a row for another tenant is refused by the policy's WITH CHECK.
 */
export const TENANT_COLUMN_SQL = `${TENANT_COLUMN} text NOT NULL DEFAULT current_setting('${TENANT_SETTING}')`;

export function tenantIsolationSql(table: string): string {
  const t = quoteIdent(table);
  const expr = `${TENANT_COLUMN} = current_setting('${TENANT_SETTING}', true)`;
  return `ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\n`
    + `CREATE POLICY ${TENANT_POLICY} ON ${t} FOR ALL USING (${expr}) WITH CHECK (${expr});`;
}

/** What breaks tenant isolation in the agent's schema (`byoc_isolation_problems()`): empty when every table is isolated. */
export async function isolationProblems(pool: Pool): Promise<{ object: string; problem: string }[]> {
  return (await pool.query<{ object: string; problem: string }>(`SELECT object, problem FROM ${ISOLATION_CHECK_FUNCTION}() ORDER BY object`)).rows;
}

/** A tenant identifier: the workflow's or customer's ID, 1 to 128 printable characters. */
const TENANT = /^[\x21-\x7e]{1,128}$/;

/** The extended protocol even without values (pg uses the simple one then, which runs several statements). */
const extended = (text: string, values: readonly unknown[]) => ({ text, values: [...values], queryMode: 'extended' }) as QueryConfig;

/** Runs one statement in the current tenant's transaction. */
export type TenantQuery = <R extends Record<string, unknown>>(text: string, values?: readonly unknown[]) => Promise<R[]>;

/**
 * A connection pool shared by tenants (workflows) with a cap per tenant, so one workflow cannot take every
 * connection and starve the others. Queries are parameterized only: `query(tenant, text, values)`.
 *
 * Every query runs in a transaction that first sets `byoc.tenant` to its tenant (`set_config(..., true)`:
 * transaction-local, gone at COMMIT, so a pooled connection never carries one tenant's setting into another's
 * query). With the tables' row-level security (`tenantIsolationSql`), the query sees and changes only that
 * tenant's rows: an agent's SQL cannot forget the tenant. Statements go by the extended protocol, one per call.
 */
export class TenantPool {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(public readonly pool: Pool, private readonly perTenant: number) {
    if (!Number.isInteger(perTenant) || perTenant < 1) throw new Error(`per-tenant cap ${perTenant} must be a whole number of at least 1`);
  }

  public async query<R extends Record<string, unknown>>(tenant: string, text: string, values: readonly unknown[] = []): Promise<R[]> {
    return this.transaction(tenant, (q) => q<R>(text, values));
  }

  /** Several statements in one transaction of `tenant` (committed when `fn` resolves, rolled back when it throws). */
  public async transaction<T>(tenant: string, fn: (query: TenantQuery) => Promise<T>): Promise<T> {
    if (typeof tenant !== 'string' || !TENANT.test(tenant)) throw new Error(`tenant ${JSON.stringify(tenant)} must be 1 to 128 printable characters without spaces`);
    await this.acquire(tenant);
    let client: PoolClient | undefined;
    let broken: Error | undefined;
    try {
      client = await this.pool.connect();
      const c = client;
      await c.query('BEGIN');
      try {
        await c.query('SELECT set_config($1, $2, true)', [TENANT_SETTING, tenant]);
        const out = await fn(async <R extends Record<string, unknown>>(text: string, values: readonly unknown[] = []) =>
          (await c.query<R>(extended(text, values))).rows);
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch((r: Error) => { broken = r; });
        throw e;
      }
    } finally {
      // A connection whose rollback failed is closed rather than handed to the next tenant.
      client?.release(broken);
      this.release(tenant);
    }
  }

  /** Connections a tenant holds now. */
  public inUse(tenant: string): number {
    return this.active.get(tenant) ?? 0;
  }

  /** Closes the pool's connections. */
  public async end(): Promise<void> {
    await this.pool.end();
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
