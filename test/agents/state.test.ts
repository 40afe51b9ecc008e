import { Pool } from 'pg';
import { migrate, Migration, TenantPool, VERSION_TABLE } from '../../agents/runtime/state';
import { PostgresServer, startPostgres } from '../servers/postgres';

let pg: PostgresServer;
beforeAll(async () => { pg = await startPostgres(); });
afterAll(async () => { await pg?.stop(); });

const migrations: Migration[] = [
  // Not idempotent on purpose: applied twice, these fail or double the rows.
  { version: 1, name: 'workflows', sql: 'CREATE TABLE workflows (id text PRIMARY KEY, state text NOT NULL)' },
  { version: 2, name: 'seed', sql: "INSERT INTO workflows (id, state) VALUES ('seed', 'done')" },
  { version: 3, name: 'slow', sql: 'SELECT pg_sleep(0.3); ALTER TABLE workflows ADD COLUMN attempts integer NOT NULL DEFAULT 0' },
];

test('two runtimes migrating at once apply each migration exactly once; a third start applies nothing', async () => {
  const pools = [new Pool({ connectionString: pg.url }), new Pool({ connectionString: pg.url })];
  try {
    const [a, b] = await Promise.all(pools.map((p) => migrate(p, migrations)));
    expect([...a, ...b].sort()).toEqual([1, 2, 3]);
    expect(a.length === 0 || b.length === 0).toBe(true); // one did all the work while the other waited
    const versions = (await pools[0].query(`SELECT version FROM ${VERSION_TABLE} ORDER BY version`)).rows.map((r) => r.version);
    expect(versions).toEqual([1, 2, 3]);
    expect((await pools[0].query("SELECT count(*)::int AS n FROM workflows WHERE id = 'seed'")).rows[0].n).toBe(1);
    expect(await migrate(pools[1], migrations)).toEqual([]);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('a failing migration is rolled back with its version row, and the next start retries it', async () => {
  const pool = new Pool({ connectionString: pg.url });
  try {
    const bad = [...migrations, { version: 4, name: 'broken', sql: 'ALTER TABLE workflows ADD COLUMN x integer; SELECT 1/0' }];
    await expect(migrate(pool, bad)).rejects.toThrow(/division by zero/);
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${VERSION_TABLE} WHERE version = 4`)).rows[0].n).toBe(0);
    expect((await pool.query("SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'workflows' AND column_name = 'x'")).rows[0].n).toBe(0);
    await expect(migrate(pool, [{ version: 2, name: 'x', sql: '' }, { version: 1, name: 'y', sql: '' }])).rejects.toThrow(/strictly increasing/);
  } finally {
    await pool.end();
  }
});

test('one tenant cannot take more than its share of the pool: another tenant still gets through', async () => {
  const pool = new Pool({ connectionString: pg.url, max: 4 });
  const tenants = new TenantPool(pool, 2);
  try {
    let peak = 0;
    let greedyDone = 0;
    const slow = Array.from({ length: 8 }, () => tenants.query('greedy-workflow', 'SELECT pg_sleep($1)', [0.2]).then(() => { greedyDone++; }));
    const watch = setInterval(() => { peak = Math.max(peak, tenants.inUse('greedy-workflow')); }, 5);
    const rows = await tenants.query<{ v: number }>('other-workflow', 'SELECT $1::int AS v', [42]);
    const greedyDoneWhenOtherAnswered = greedyDone;
    await Promise.all(slow);
    clearInterval(watch);
    expect(rows).toEqual([{ v: 42 }]);
    expect(peak).toBe(2);
    // The other tenant did not queue behind the greedy one: it was answered while most greedy queries waited.
    expect(greedyDoneWhenOtherAnswered).toBeLessThan(8);
  } finally {
    await pool.end();
  }
});

test('each query runs in its tenant\'s transaction: byoc.tenant set inside, gone after; a failure rolls everything back and frees the slot', async () => {
  const pool = new Pool({ connectionString: pg.url, max: 1 });
  const tenants = new TenantPool(pool, 1);
  try {
    expect(await tenants.query('wf-1', "SELECT current_setting('byoc.tenant', true) AS t")).toEqual([{ t: 'wf-1' }]);
    // One connection only: the next query gets the same one, without the previous tenant.
    expect((await pool.query("SELECT coalesce(current_setting('byoc.tenant', true), '') AS t")).rows).toEqual([{ t: '' }]);
    await expect(tenants.transaction('wf-1', async (q) => {
      await q('CREATE TABLE tx_probe (x int)');
      await q('INSERT INTO tx_probe VALUES ($1)', [1]);
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(tenants.inUse('wf-1')).toBe(0);
    expect((await pool.query("SELECT to_regclass('tx_probe') AS t")).rows).toEqual([{ t: null }]);
    // One statement per call (extended protocol): a second one cannot ride along.
    await expect(tenants.query('wf-1', 'SELECT 1; SELECT 2')).rejects.toThrow(/cannot insert multiple commands into a prepared statement/);
    await expect(tenants.query('two words', 'SELECT 1')).rejects.toThrow(/must be 1 to 128 printable characters/);
  } finally {
    await pool.end();
  }
});
