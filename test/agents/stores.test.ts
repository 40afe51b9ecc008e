import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Signer, SignerConfig } from '@aws-sdk/rds-signer';
import Redis from 'ioredis';
import { Client } from 'pg';
import { quoteLiteral } from '../../lib/database-roles';
import { redisAccessStringOf } from '../../customer-plane/data-stores';
import { ConfigError } from '../../agents/runtime/config';
import { Migration, TENANT_COLUMN_SQL, tenantIsolationSql } from '../../agents/runtime/state';
import { openStores, secretsByName, Stores } from '../../agents/runtime/stores';
import { MotoServer, startMoto } from '../servers/moto';
import { siblingCertificate, testCertificates } from '../servers/nats';
import { agentDatabase, PostgresServer, startPostgres } from '../servers/postgres';
import { startRedisTls } from '../servers/redis';

/**
 * openStores against real servers: PostgreSQL 15 serving TLS with a test CA (the agents' logins need TLS and a
 * password, SCRAM), set up by lib/database-roles.ts as the plane's deploy-time function sets RDS up; Redis over
 * TLS with the agent's own ACL user; moto for Secrets Manager and the signer's region and credentials.
 *
 * PostgreSQL cannot verify an IAM token, so each token the real signer returns is made the agent role's password
 * before it is handed to the pool: a connection logs in only if the token the signer just made is the password
 * it sent.
 */

const HBA = [
  'local all all trust',
  'host all postgres 127.0.0.1/32 trust',
  'host all byoc_admin 127.0.0.1/32 trust',
  // Cleartext over TLS, as RDS takes an IAM token; the stored password is read after the client sent its own.
  'hostssl all all 127.0.0.1/32 password',
  'host all all 127.0.0.1/32 reject',
];
const AGENT = 'planner';
const ROLE = 'agent_planner';
const REDIS_PASSWORD = 'redis-password-of-agent-planner';

let tmp: string;
let tls: ReturnType<typeof testCertificates>;
let pg: PostgresServer;
let moto: MotoServer;
let secrets: SecretsManagerClient;
let redis: Awaited<ReturnType<typeof startRedisTls>>;
let redisSecretArn: string;
/** The superuser, on the agents' database. */
let root: Client;
const opened: Stores[] = [];

const notes: Migration[] = [
  { version: 1, name: 'notes', sql: `CREATE TABLE notes (id serial PRIMARY KEY, ${TENANT_COLUMN_SQL}, body text NOT NULL);\n${tenantIsolationSql('notes')}` },
];
const readSecret = async (arn: string) => (await secrets.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString ?? '';

function pgEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_REGION: moto.env.AWS_REGION, PGHOST: 'localhost', PGPORT: String(pg.port), PGDATABASE: 'byoc', PGUSER: ROLE,
    PGSSLMODE: 'verify-full', PGSSLROOTCERT: tls.ca, BYOC_PG_TENANT_CAP: '2', ...extra,
  };
}

/** The real signer, each of its tokens made the role's password before the pool may use it; every token and the signer's configuration kept. */
function watchedSigner() {
  const seen = { tokens: [] as string[], configs: [] as SignerConfig[] };
  const signer = (config: SignerConfig) => {
    seen.configs.push(config);
    const real = new Signer(config);
    return {
      getAuthToken: async () => {
        const token = await real.getAuthToken();
        seen.tokens.push(token);
        await root.query(`ALTER ROLE ${ROLE} PASSWORD ${quoteLiteral(token)}`);
        return token;
      },
    };
  };
  return { seen, signer };
}

async function open(env: Record<string, string>, migrations: readonly Migration[] = notes, signer = watchedSigner().signer): Promise<Stores> {
  const stores = await openStores(env, {
    agent: AGENT, migrations, readSecret, signer, cacheCa: redis.ca,
    credentials: { accessKeyId: moto.env.AWS_ACCESS_KEY_ID, secretAccessKey: moto.env.AWS_SECRET_ACCESS_KEY },
  });
  opened.push(stores);
  return stores;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-stores-'));
  tls = testCertificates(tmp, 'DNS:localhost');
  [pg, moto, redis] = await Promise.all([startPostgres({ tls, hba: HBA }), startMoto(), startRedisTls('redis-admin-password')]);
  secrets = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  redisSecretArn = (await secrets.send(new CreateSecretCommand({ Name: 'byoc/acme/redis/planner', SecretString: REDIS_PASSWORD }))).ARN!;
  // As the plane's deploy-time function does on RDS: the master user (not a superuser) sets the agents' roles up.
  await agentDatabase(pg, [AGENT, 'triage']);
  root = new Client({ connectionString: pg.url.replace(/\/postgres$/, '/byoc') });
  await root.connect();
  const redisAdmin = new Redis({ host: 'localhost', port: redis.port, password: 'redis-admin-password', tls: { ca: redis.ca } });
  await redisAdmin.call('ACL', 'SETUSER', `agent-${AGENT}`, 'reset', `>${REDIS_PASSWORD}`, ...redisAccessStringOf(AGENT).split(' '));
  await redisAdmin.quit();
}, 60_000);

afterAll(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
  await root?.end().catch(() => undefined);
  secrets?.destroy();
  await Promise.all([pg?.stop(), moto?.stop(), redis?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('PostgreSQL: the agent\'s own user, an IAM token per connection, verify-full', () => {
  test('every new connection logs in with a token the real signer made for it; an older token no longer logs in', async () => {
    const { seen, signer } = watchedSigner();
    const stores = await open(pgEnv(), notes, signer);
    const db = stores.postgres!;
    expect(seen.configs).toEqual([{ hostname: 'localhost', port: pg.port, username: ROLE, region: moto.env.AWS_REGION, credentials: expect.anything() }]);
    // Three tenants at once: the pool opens connections until it has three.
    await Promise.all(['a', 'b', 'c'].map((t) => db.query(t, 'SELECT pg_sleep(0.2)')));
    expect(db.pool.totalCount).toBeGreaterThanOrEqual(3);
    expect(seen.tokens.length).toBe(db.pool.totalCount);
    for (const token of seen.tokens) {
      const url = new URL(`https://${token}`);
      expect({ host: url.host, action: url.searchParams.get('Action'), user: url.searchParams.get('DBUser'), expires: url.searchParams.get('X-Amz-Expires') })
        .toEqual({ host: `localhost:${pg.port}`, action: 'connect', user: ROLE, expires: '900' });
      expect(url.searchParams.get('X-Amz-Credential')).toMatch(new RegExp(`^testing/\\d{8}/${moto.env.AWS_REGION}/rds-db/aws4_request$`));
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    }
    // A second later (tokens are signed to the second), one more connection: a new token, and the first no longer works.
    const first = seen.tokens[0];
    await new Promise((r) => setTimeout(r, 1100));
    await Promise.all(['a', 'b', 'c', 'd'].map((t) => db.query(t, 'SELECT pg_sleep(0.2)')));
    const latest = seen.tokens[seen.tokens.length - 1];
    expect(seen.tokens.length).toBe(db.pool.totalCount);
    expect(latest).not.toBe(first);
    const stale = new Client({ host: 'localhost', port: pg.port, database: 'byoc', user: ROLE, password: first, ssl: { ca: fs.readFileSync(tls.ca, 'utf8') } });
    await expect(stale.connect()).rejects.toThrow(/password authentication failed for user "agent_planner"/);
    expect((await db.query<{ u: string; ssl: boolean }>('a', 'SELECT current_user AS u, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')))
      .toEqual([{ u: ROLE, ssl: true }]);
  });

  test('a certificate for another name, or from another CA, is refused; only verify-full is accepted', async () => {
    const other = siblingCertificate(tls, 'elsewhere', 'DNS:db.elsewhere.example');
    const elsewhere = await startPostgres({ tls: other, hba: HBA });
    try {
      await expect(open(pgEnv({ PGPORT: String(elsewhere.port) }))).rejects.toThrow(/Hostname\/IP does not match certificate's altnames: Host: localhost/);
    } finally {
      await elsewhere.stop();
    }
    const stranger = testCertificates(tmp, 'DNS:localhost');
    await expect(open(pgEnv({ PGSSLROOTCERT: stranger.ca }))).rejects.toThrow(/unable to verify the first certificate|self.signed|unable to get local issuer/);
    await expect(open(pgEnv({ PGSSLMODE: 'require' }))).rejects.toThrow(new ConfigError('PGSSLMODE', '"require": only verify-full is accepted (the certificate\'s chain and name are checked)'));
    await expect(open(pgEnv({ PGSSLROOTCERT: path.join(tmp, 'missing.pem') }))).rejects.toThrow(/configuration PGSSLROOTCERT: cannot read/);
    await expect(open(pgEnv({ BYOC_PG_TENANT_CAP: '11' }))).rejects.toThrow(/configuration BYOC_PG_TENANT_CAP: "11" is not a whole number from 1 to 10/);
  });
});

describe('row-level security: a tenant\'s rows are invisible to another tenant', () => {
  test('SELECT without WHERE sees only its rows; UPDATE and DELETE cannot touch the other\'s; INSERT for the other is refused', async () => {
    const db = (await open(pgEnv())).postgres!;
    await db.query('tenant-a', 'INSERT INTO notes (body) VALUES ($1), ($2)', ['a1', 'a2']);
    await db.query('tenant-b', 'INSERT INTO notes (body) VALUES ($1)', ['b1']);
    expect(await db.query('tenant-a', 'SELECT tenant, body FROM notes ORDER BY body')).toEqual([{ tenant: 'tenant-a', body: 'a1' }, { tenant: 'tenant-a', body: 'a2' }]);
    expect(await db.query('tenant-b', 'SELECT body FROM notes')).toEqual([{ body: 'b1' }]);
    expect(await db.query('tenant-b', "UPDATE notes SET body = body || '!' RETURNING body")).toEqual([{ body: 'b1!' }]);
    expect(await db.query('tenant-b', 'DELETE FROM notes RETURNING body')).toEqual([{ body: 'b1!' }]);
    await expect(db.query('tenant-b', "INSERT INTO notes (tenant, body) VALUES ('tenant-a', 'planted')")).rejects.toThrow(/new row violates row-level security policy for table "notes"/);
    await expect(db.query('tenant-a', "UPDATE notes SET tenant = 'tenant-b'")).rejects.toThrow(/new row violates row-level security policy for table "notes"/);
    // Nothing of tenant-a was touched, and the refused statements left nothing behind.
    const all = await root.query('SELECT tenant, body FROM agent_planner.notes ORDER BY body');
    expect(all.rows).toEqual([{ tenant: 'tenant-a', body: 'a1' }, { tenant: 'tenant-a', body: 'a2' }]);
    // Straight on the pool, outside TenantPool (no tenant set): nothing visible, nothing writable.
    expect((await db.pool.query('SELECT count(*)::int AS n FROM notes')).rows).toEqual([{ n: 0 }]);
    await expect(db.pool.query("INSERT INTO notes (tenant, body) VALUES ('tenant-a', 'x')")).rejects.toThrow(/row-level security/);
    // The setting is transaction-local: a pooled connection does not carry tenant-a's into the next query.
    await db.transaction('tenant-a', async (q) => { expect((await q('SELECT count(*)::int AS n FROM notes'))[0].n).toBe(2); });
    expect((await db.pool.query("SELECT current_setting('byoc.tenant', true) AS t")).rows[0].t).toBeFalsy();
    await expect(db.query('', 'SELECT 1')).rejects.toThrow(/tenant "" must be 1 to 128 printable characters/);
  });

  test('the agent\'s user (no superuser, no BYPASSRLS) cannot turn it off, not even through its migration function', async () => {
    const db = (await open(pgEnv())).postgres!;
    const raw = db.pool;
    expect((await raw.query('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user')).rows).toEqual([{ rolsuper: false, rolbypassrls: false }]);
    for (const sql of ['ALTER TABLE notes DISABLE ROW LEVEL SECURITY', 'ALTER TABLE notes NO FORCE ROW LEVEL SECURITY', 'DROP POLICY byoc_tenant ON notes',
      'CREATE POLICY everyone ON notes USING (true)', 'ALTER TABLE notes OWNER TO agent_planner', 'ALTER TABLE notes DROP COLUMN tenant']) {
      await expect(raw.query(sql)).rejects.toThrow(/must be owner of (table|relation) notes/);
    }
    await expect(raw.query('TRUNCATE notes')).rejects.toThrow(/permission denied for table notes/);
    // Nothing in its schema is its own: no table it makes itself, no function of the check's replaced or dropped.
    await expect(raw.query('CREATE TABLE mine (id int)')).rejects.toThrow(/permission denied for schema agent_planner/);
    await expect(raw.query('DROP FUNCTION byoc_isolation_problems()')).rejects.toThrow(/must be owner of function byoc_isolation_problems/);
    await expect(raw.query('DROP TABLE notes')).rejects.toThrow(/must be owner of table notes/);
    await expect(raw.query('SET ROLE byoc_owner_agent_planner')).rejects.toThrow(/permission denied to set role/);
    const c = await raw.connect();
    try {
      await c.query('SET row_security = off');
      await expect(c.query('SELECT * FROM notes')).rejects.toThrow(/query would be affected by row-level security policy for table "notes"/);
    } finally {
      c.release(true);
    }
    for (const [sql, problem] of [
      ['ALTER TABLE notes DISABLE ROW LEVEL SECURITY', 'notes: row-level security is not enabled'],
      ['ALTER TABLE notes NO FORCE ROW LEVEL SECURITY', 'notes: row-level security is not forced'],
      ['CREATE POLICY everyone ON notes USING (true)', 'notes: its one policy must be byoc_tenant'],
      ["ALTER POLICY byoc_tenant ON notes USING (true)", 'notes: its one policy must be byoc_tenant'],
      ['CREATE TABLE forgotten (id int)', 'forgotten: row-level security is not enabled'],
      ['CREATE FUNCTION peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM notes $$', 'peek: a SECURITY DEFINER function'],
    ]) {
      await expect(raw.query('SELECT byoc_apply_migration(99, $1, $2)', ['sneaky', sql])).rejects.toThrow(`migration 99 (sneaky) leaves schema agent_planner without tenant isolation: ${problem}`);
    }
    expect((await root.query(`SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'agent_planner.notes'::regclass`)).rows)
      .toEqual([{ relrowsecurity: true, relforcerowsecurity: true }]);
    expect((await raw.query('SELECT version FROM byoc_schema_migrations ORDER BY version')).rows).toEqual([{ version: 1 }]);
    await expect(raw.query('DELETE FROM byoc_schema_migrations')).rejects.toThrow(/permission denied for table byoc_schema_migrations/);
    // Another agent cannot run it.
    await root.query(`ALTER ROLE agent_triage PASSWORD 'triage-password'`);
    const triage = new Client({ host: 'localhost', port: pg.port, database: 'byoc', user: 'agent_triage', password: 'triage-password', ssl: { ca: fs.readFileSync(tls.ca, 'utf8') } });
    await triage.connect();
    try {
      await expect(triage.query("SELECT agent_planner.byoc_apply_migration(98, 'x', 'SELECT 1')")).rejects.toThrow(/permission denied for schema agent_planner/);
    } finally {
      await triage.end();
    }
  });

  test('a migration or a table that forgets tenant isolation stops the start; two starts at once apply each migration once', async () => {
    const forgetful = [...notes, { version: 2, name: 'forgetful', sql: 'CREATE TABLE drafts (id int PRIMARY KEY, body text)' }];
    await expect(open(pgEnv(), forgetful)).rejects.toThrow('migration 2 (forgetful) leaves schema agent_planner without tenant isolation: drafts: row-level security is not enabled');
    // A table that got there another way (here, made by the superuser): found at the next start.
    await root.query('CREATE TABLE agent_planner.loose (id int)');
    await expect(open(pgEnv())).rejects.toThrow(`refusing to start: tables of ${ROLE} without tenant isolation: loose: row-level security is not enabled`);
    await root.query('DROP TABLE agent_planner.loose');
    const more = [...notes, { version: 2, name: 'tags', sql: `CREATE TABLE tags (name text NOT NULL, ${TENANT_COLUMN_SQL}, PRIMARY KEY (tenant, name));\n${tenantIsolationSql('tags')}` }];
    const [x, y] = await Promise.all([open(pgEnv(), more), open(pgEnv(), more)]);
    expect((await root.query('SELECT version, name FROM agent_planner.byoc_schema_migrations ORDER BY version')).rows).toEqual([{ version: 1, name: 'notes' }, { version: 2, name: 'tags' }]);
    await x.postgres!.query('t1', 'INSERT INTO tags (name) VALUES ($1)', ['urgent']);
    expect(await y.postgres!.query('t2', 'SELECT * FROM tags')).toEqual([]);
    expect(x.cache).toBeUndefined();
  });
});

describe('Redis: the agent\'s own user over TLS, its password read from Secrets Manager at connect', () => {
  const redisEnv = (extra: Record<string, string> = {}) => ({
    REDIS_HOST: 'localhost', REDIS_PORT: String(redis.port), REDIS_TLS: 'true', REDIS_USER: `agent-${AGENT}`, REDIS_AUTH_SECRET_ARN: redisSecretArn, ...extra,
  });

  test('opens only the cache when only Redis is declared, as the agent\'s user, under its prefix', async () => {
    const stores = await open(redisEnv(), []);
    expect(stores.postgres).toBeUndefined();
    await stores.cache!.set('k', 'v', 60);
    expect(await stores.cache!.get('k')).toBe('v');
    const admin = new Redis({ host: 'localhost', port: redis.port, password: 'redis-admin-password', tls: { ca: redis.ca } });
    try {
      expect(await admin.get(`${AGENT}:k`)).toBe('v');
      expect(await admin.call('ACL', 'WHOAMI')).toBe('default');
    } finally {
      await admin.quit();
    }
    await stores.close();
  });

  test('a wrong password in the secret, plaintext, or migrations without PostgreSQL are refused', async () => {
    const wrong = (await secrets.send(new CreateSecretCommand({ Name: 'byoc/acme/redis/wrong', SecretString: 'not-it' }))).ARN!;
    await expect(open(redisEnv({ REDIS_AUTH_SECRET_ARN: wrong }), [])).rejects.toThrow(/WRONGPASS/);
    await expect(open(redisEnv({ REDIS_TLS: 'false' }), [])).rejects.toThrow('configuration REDIS_TLS: "false": the cache is reached over TLS only ("true")');
    await expect(open(redisEnv({ REDIS_USER: '' }), [])).rejects.toThrow(/configuration REDIS_USER: is required with Redis/);
    await expect(open(redisEnv())).rejects.toThrow('configuration PGHOST: is required: the agent has migrations but PostgreSQL is not among its data stores');
  });
});

test('secretsByName reads only the agent\'s declared secrets, by catalog name', async () => {
  const read: string[] = [];
  const byName = secretsByName({ BYOC_SECRET_ARNS: JSON.stringify({ 'llm-primary': 'arn:primary' }) }, async (arn) => { read.push(arn); return `value of ${arn}`; });
  expect(await byName('llm-primary')).toBe('value of arn:primary');
  await expect(byName('scm-token')).rejects.toThrow('secret scm-token is not one of the agent\'s (llm-primary)');
  await expect(byName('constructor')).rejects.toThrow(/not one of the agent's/);
  expect(read).toEqual(['arn:primary']);
  expect(() => secretsByName({ BYOC_SECRET_ARNS: '[' }, async () => '')).toThrow('configuration BYOC_SECRET_ARNS: is not JSON');
});
