import { Client } from 'pg';
import { AGENT_ROLE_PATTERN, dbUserOf, ensureAgentRoles, MANAGED_ROLE_COMMENT_PREFIX, OWNER_ROLE_COMMENT_PREFIX, quoteIdent, quoteLiteral, verifyFullTls } from '../../lib/database-roles';
import { TENANT_COLUMN_SQL, tenantIsolationSql } from '../../agents/runtime/state';
import { AGENT_CATALOG } from '../../agents/catalog';
import { PostgresServer, startPostgres } from '../servers/postgres';

/**
 * Against a real PostgreSQL set up as RDS sets one up: `rds_iam` exists, the master user `byoc_admin` is not a
 * superuser (CREATEROLE, CREATEDB) and owns the database `byoc` it created. The agents' roles are created as
 * that master user, as the deploy-time function does.
 */
let pg: PostgresServer;
const clients: Client[] = [];

async function connect(user: string, database = 'byoc'): Promise<Client> {
  const c = new Client({ host: '127.0.0.1', port: pg.port, user, database });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}
async function close(c: Client): Promise<void> {
  clients.splice(clients.indexOf(c), 1);
  await c.end();
}
/** Runs `fn` with a fresh connection as `user`, closed afterwards. */
async function as<T>(user: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = await connect(user);
  try { return await fn(c); } finally { await close(c); }
}
const admin = <T>(fn: (c: Client) => Promise<T>) => as('byoc_admin', fn);
const superuser = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
  const c = await connect('postgres');
  try { return await fn(c); } finally { await close(c); }
};

/** Everything the module manages, as the catalogs hold it: equal snapshots mean equal states. */
async function snapshot(): Promise<unknown> {
  return superuser(async (c) => ({
    roles: (await c.query(`SELECT rolname, rolcanlogin, rolcreatedb, rolcreaterole, rolsuper, shobj_description(oid, 'pg_authid') AS comment
                           FROM pg_roles WHERE rolname LIKE 'agent\\_%' ORDER BY rolname`)).rows,
    members: (await c.query(`SELECT r.rolname AS role, m.rolname AS member FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid
                             JOIN pg_roles m ON m.oid = a.member ORDER BY 1, 2`)).rows,
    schemas: (await c.query(`SELECT nspname, pg_get_userbyid(nspowner) AS owner, nspacl::text AS acl FROM pg_namespace
                             WHERE nspname LIKE 'agent\\_%' OR nspname = 'public' ORDER BY 1`)).rows,
    settings: (await c.query(`SELECT r.rolname, s.setdatabase, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole ORDER BY 1`)).rows,
    database: (await c.query(`SELECT datacl::text AS acl FROM pg_database WHERE datname = 'byoc'`)).rows,
  }));
}

async function canLogIn(user: string): Promise<true | string> {
  try {
    await as(user, async () => undefined);
    return true;
  } catch (e) {
    return (e as Error).message;
  }
}

beforeAll(async () => {
  pg = await startPostgres();
  const root = await connect('postgres', 'postgres');
  await root.query('CREATE ROLE rds_iam');
  await root.query('CREATE ROLE byoc_admin WITH LOGIN CREATEROLE CREATEDB');
  await root.query('CREATE ROLE outsider WITH LOGIN');
  await close(root);
  // RDS creates the database as the master user, who owns it.
  const master = await connect('byoc_admin', 'postgres');
  await master.query('CREATE DATABASE byoc');
  await close(master);
}, 60_000);

afterAll(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  await pg?.stop();
});

describe('names: only valid agent names become roles, and every identifier is quoted', () => {
  test('dbUserOf maps catalog names to snake case and refuses anything else', () => {
    expect(dbUserOf('pattern-miner')).toBe('agent_pattern_miner');
    for (const a of AGENT_CATALOG) expect(dbUserOf(a.name)).toMatch(AGENT_ROLE_PATTERN);
    for (const bad of ['Planner', 'ab', 'a--b', '-ab', 'ab-', 'a_b', 'x"; DROP ROLE byoc_admin; --', 'a'.repeat(29), 'plänner', '']) {
      expect(() => dbUserOf(bad)).toThrow(/not a valid agent name/);
    }
  });

  test('quoteIdent and quoteLiteral double embedded quotes and refuse NUL', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(() => quoteIdent('a\0b')).toThrow();
    expect(() => quoteIdent('')).toThrow();
  });

  test('verifyFullTls keeps rejectUnauthorized on and needs a PEM certificate', () => {
    expect(verifyFullTls('-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----')).toEqual(expect.objectContaining({ rejectUnauthorized: true }));
    expect(() => verifyFullTls([])).toThrow(/PEM/);
    expect(() => verifyFullTls('not a certificate')).toThrow(/PEM/);
  });
});

describe('ensureAgentRoles against a real PostgreSQL, as a non-superuser master user like RDS\'s', () => {
  const agents = ['planner', 'code-reviewer', 'pattern-miner'];

  test('a hostile agent name changes nothing: refused before any statement', async () => {
    const before = await snapshot();
    for (const bad of ['x"; DROP ROLE byoc_admin; --', 'planner; DROP DATABASE byoc', 'Planner']) {
      await expect(admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: ['planner', bad] }))).rejects.toThrow(/not a valid agent name/);
    }
    expect(await snapshot()).toEqual(before);
  });

  test('first run: each agent gets a LOGIN role in rds_iam, its own schema and search_path, CONNECT on the database', async () => {
    const report = await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents }));
    expect(report.roles).toEqual(['agent_code_reviewer', 'agent_pattern_miner', 'agent_planner']);
    expect(report.disabled).toEqual([]);
    expect(report.changes).toEqual(expect.arrayContaining([
      'REVOKE ALL ON DATABASE "byoc" FROM PUBLIC',
      'REVOKE ALL ON SCHEMA public FROM PUBLIC',
      'CREATE ROLE "agent_planner" WITH LOGIN NOCREATEDB NOCREATEROLE',
      'GRANT "rds_iam" TO "agent_planner"',
      'CREATE ROLE "byoc_owner_agent_planner" WITH NOLOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS',
      'CREATE SCHEMA "agent_planner" AUTHORIZATION "byoc_owner_agent_planner"',
      'GRANT USAGE ON SCHEMA "agent_planner" TO "agent_planner"',
      'ALTER ROLE "agent_planner" SET search_path TO "agent_planner"',
      'GRANT CONNECT ON DATABASE "byoc" TO "agent_planner"',
    ]));
    const state = await superuser(async (c) => (await c.query(
      `SELECT r.rolname, r.rolcanlogin, r.rolcreatedb, r.rolcreaterole, shobj_description(r.oid, 'pg_authid') AS comment,
              pg_has_role(r.oid, 'rds_iam', 'MEMBER') AS iam, n.nspname IS NOT NULL AND pg_get_userbyid(n.nspowner) = 'byoc_owner_' || r.rolname AS owns_schema,
              has_schema_privilege(r.oid, n.oid, 'USAGE') AS usage, has_schema_privilege(r.oid, n.oid, 'CREATE') AS create,
              has_database_privilege(r.oid, 'byoc', 'CONNECT') AS connect, has_database_privilege(r.oid, 'byoc', 'TEMP') AS temp
       FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = r.rolname WHERE r.rolname LIKE 'agent\\_%' ORDER BY 1`)).rows);
    expect(state).toEqual(['code-reviewer', 'pattern-miner', 'planner'].map((a) => ({
      rolname: dbUserOf(a), rolcanlogin: true, rolcreatedb: false, rolcreaterole: false, comment: `${MANAGED_ROLE_COMMENT_PREFIX}${a}`,
      iam: true, owns_schema: true, usage: true, create: false, connect: true, temp: false,
    })));
  });

  test('the master user is left a member of no agent role (RDS would then refuse its password, through rds_iam)', async () => {
    const memberships = await superuser(async (c) => (await c.query(
      `SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid WHERE a.member = (SELECT oid FROM pg_roles WHERE rolname = 'byoc_admin')`)).rows);
    expect(memberships).toEqual([]);
  });

  test('an agent works in its own schema by default, creates tables only through its migration function, and cannot create in public', async () => {
    await as('agent_planner', async (c) => {
      expect((await c.query('SELECT current_schema() AS s')).rows[0].s).toBe('agent_planner');
      await expect(c.query('CREATE TABLE plans (id int PRIMARY KEY, body text)')).rejects.toThrow(/permission denied for schema agent_planner/);
      await c.query('SELECT byoc_apply_migration(1, $1, $2)', ['plans', `CREATE TABLE plans (id int PRIMARY KEY, body text, ${TENANT_COLUMN_SQL});\n${tenantIsolationSql('plans')}`]);
      await c.query('BEGIN');
      await c.query("SELECT set_config('byoc.tenant', 'acme', true)");
      await c.query("INSERT INTO plans VALUES (1, 'kept')");
      await c.query('COMMIT');
      expect((await c.query(`SELECT schemaname, tableowner FROM pg_tables WHERE tablename = 'plans'`)).rows).toEqual([{ schemaname: 'agent_planner', tableowner: 'byoc_owner_agent_planner' }]);
      await expect(c.query('CREATE TABLE public.stray (id int)')).rejects.toThrow(/permission denied for schema public/);
      await expect(c.query('CREATE TEMP TABLE scratch (id int)')).rejects.toThrow(/permission denied to create temporary tables/);
    });
  });

  test('an agent cannot read, write or list another agent\'s schema', async () => {
    await as('agent_code_reviewer', async (c) => {
      await expect(c.query('SELECT * FROM agent_planner.plans')).rejects.toThrow(/permission denied for schema agent_planner/);
      await expect(c.query('CREATE TABLE agent_planner.intruder (id int)')).rejects.toThrow(/permission denied for schema agent_planner/);
      expect((await c.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'agent_planner'`)).rows[0].n).toBe(0);
    });
  });

  test('a role that is not an agent\'s cannot connect to the database (PUBLIC has no CONNECT)', async () => {
    expect(await canLogIn('outsider')).toMatch(/permission denied for database "byoc"/);
  });

  test('a second run with the same catalog executes no statement and leaves the same state', async () => {
    const before = await snapshot();
    const report = await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents }));
    expect(report.changes).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  test('an agent removed from the catalog gets NOLOGIN; its role, schema and data stay; adding it back restores the login', async () => {
    const report = await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: ['code-reviewer', 'pattern-miner'] }));
    expect(report.disabled).toEqual(['agent_planner']);
    expect(report.changes).toEqual(['ALTER ROLE "agent_planner" WITH NOLOGIN']);
    expect(await canLogIn('agent_planner')).toMatch(/not permitted to log in/);
    expect(await superuser(async (c) => (await c.query('SELECT body FROM agent_planner.plans')).rows)).toEqual([{ body: 'kept' }]);
    // Still disabled, and nothing else done, on the next run.
    expect((await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: ['code-reviewer', 'pattern-miner'] }))).changes).toEqual([]);

    const back = await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents }));
    expect(back.changes).toEqual(['ALTER ROLE "agent_planner" WITH LOGIN NOCREATEDB NOCREATEROLE']);
    expect(await canLogIn('agent_planner')).toBe(true);
  });

  test('roles it does not manage are never disabled', async () => {
    await superuser((c) => c.query('CREATE ROLE agent_handmade WITH LOGIN'));
    const report = await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents }));
    expect(report.disabled).toEqual([]);
    expect(report.changes).toEqual([]);
    expect(await superuser(async (c) => (await c.query(`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'agent_handmade'`)).rows)).toEqual([{ rolcanlogin: true }]);
  });

  test('an existing role of an agent\'s name is brought to the same state; its schema\'s grants to PUBLIC are revoked', async () => {
    await admin(async (c) => {
      await c.query('CREATE ROLE agent_triage WITH NOLOGIN CREATEDB');
      await c.query('GRANT agent_triage TO byoc_admin');
      await c.query('CREATE SCHEMA agent_triage AUTHORIZATION agent_triage');
      await c.query('GRANT USAGE ON SCHEMA agent_triage TO PUBLIC');
      await c.query('REVOKE agent_triage FROM byoc_admin');
    });
    const report = await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: [...agents, 'triage'] }));
    // Made by hand (or by an earlier version, owned by the login role): handed to the agent's owner role, not taken over by anyone else.
    expect(report.changes.slice(0, 10)).toEqual([
      'ALTER ROLE "agent_triage" WITH LOGIN NOCREATEDB NOCREATEROLE',
      `COMMENT ON ROLE "agent_triage" IS '${MANAGED_ROLE_COMMENT_PREFIX}triage'`,
      'GRANT "rds_iam" TO "agent_triage"',
      'CREATE ROLE "byoc_owner_agent_triage" WITH NOLOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS',
      `COMMENT ON ROLE "byoc_owner_agent_triage" IS '${OWNER_ROLE_COMMENT_PREFIX}agent_triage'`,
      'ALTER SCHEMA "agent_triage" OWNER TO "byoc_owner_agent_triage"',
      'REVOKE ALL ON SCHEMA "agent_triage" FROM PUBLIC',
      'ALTER ROLE "agent_triage" SET search_path TO "agent_triage"',
      'GRANT CONNECT ON DATABASE "byoc" TO "agent_triage"',
      'GRANT USAGE ON SCHEMA "agent_triage" TO "agent_triage"',
    ]);
    // Then the default privileges and the two functions, as for a new agent (test/agents/stores.test.ts tests what they do).
    expect(report.changes.length).toBe(10 + 2 + 2 * 3);
    expect((await admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: [...agents, 'triage'] }))).changes).toEqual([]);
    expect(await superuser(async (c) => (await c.query(`SELECT has_schema_privilege('outsider', 'agent_triage', 'USAGE') AS usage`)).rows[0].usage)).toBe(false);
  });

  test('a schema of an agent\'s name owned by another role is refused, never taken over, and nothing changes', async () => {
    await admin((c) => c.query('CREATE SCHEMA agent_estimator'));
    const before = await snapshot();
    await expect(admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: [...agents, 'estimator'] })))
      .rejects.toThrow(/schema agent_estimator exists and is owned by byoc_admin, not by the agent's owner role byoc_owner_agent_estimator/);
    expect(await snapshot()).toEqual(before);
    await admin((c) => c.query('DROP SCHEMA agent_estimator'));
  });

  test('all or nothing: a failure part-way leaves no change behind', async () => {
    await superuser((c) => c.query('CREATE ROLE agent_usage_meter WITH SUPERUSER'));
    const before = await snapshot();
    // estimator is created first, then usage-meter's role turns out to be a superuser: the whole run rolls back.
    await expect(admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: ['estimator', 'usage-meter'] })))
      .rejects.toThrow(/agent_usage_meter is a superuser/);
    expect(await snapshot()).toEqual(before);
    await superuser((c) => c.query('DROP ROLE agent_usage_meter'));
  });

  test('connected to another database it refuses before any change (schemas belong to one database)', async () => {
    const before = await snapshot();
    const c = await connect('byoc_admin', 'postgres');
    try {
      await expect(ensureAgentRoles(c, { database: 'byoc', agents: ['estimator'] })).rejects.toThrow(/connected to database "postgres", not "byoc"/);
    } finally {
      await close(c);
    }
    expect(await snapshot()).toEqual(before);
  });

  test('without rds_iam (IAM authentication off) it fails naming the role, changing nothing', async () => {
    const before = await snapshot();
    await expect(admin((c) => ensureAgentRoles(c, { database: 'byoc', agents: ['estimator'], iamRole: 'rds_iam_absent' })))
      .rejects.toThrow(/role "rds_iam_absent" does not exist/);
    expect(await snapshot()).toEqual(before);
  });
});
