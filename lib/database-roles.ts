import type { ClientBase } from 'pg';

/**
 * The PostgreSQL side of each agent's database access: one login role per agent that declares PostgreSQL,
 * authenticated only through IAM (`rds_iam`), owning its own schema and nothing else. Run by the plane's
 * deploy-time function (`Custom::DatabaseRoles`) as the database's administrator on every deploy.
 *
 * Plain SQL over a `pg` client, no AWS and no CDK: it runs the same against RDS and a local PostgreSQL.
 */

/** An agent name as the catalog allows it: lower-case letters, digits and single hyphens, 3 to 28, starting with a letter. */
export const AGENT_NAME_PATTERN = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$/;
/** What every agent role name looks like (`dbUserOf` of a valid agent name). */
export const AGENT_ROLE_PATTERN = /^agent_[a-z][a-z0-9_]{2,27}$/;
/** The RDS role whose members log in with an IAM token instead of a password. */
export const RDS_IAM_ROLE = 'rds_iam';
/**
 * The comment that marks a role as an agent role this module manages, followed by the agent's name. Roles
 * with it whose agent left the catalog are set to NOLOGIN; no other role is ever touched.
 */
export const MANAGED_ROLE_COMMENT_PREFIX = 'byoc agent role of ';
/** Serializes concurrent runs (two deploys, a retried invocation) inside one database. */
export const DATABASE_ROLES_LOCK = 7_150_422;
/** A plain SQL identifier we create: database names and role names all fit it, so quoting never has to hide anything. */
const SIMPLE_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The database user an agent connects as: its name in snake case, prefixed (`pattern-miner` →
 * `agent_pattern_miner`). Refuses anything that is not a valid agent name, so no input can become SQL.
 */
export function dbUserOf(agent: string): string {
  if (!AGENT_NAME_PATTERN.test(agent)) {
    throw new Error(`"${agent}" is not a valid agent name (3-28 lower-case letters, digits and single hyphens, starting with a letter)`);
  }
  return `agent_${agent.replace(/-/g, '_')}`;
}

/** An identifier in double quotes, embedded quotes doubled (PostgreSQL's quote_ident). */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0')) throw new Error(`invalid SQL identifier ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string literal, embedded quotes doubled (standard_conforming_strings is on, so backslashes are literal). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a SQL literal cannot hold a NUL character');
  return `'${value.replace(/'/g, "''")}'`;
}

export interface AgentRolesOptions {
  /** The database the agents use; the client must be connected to it (schemas are per database). */
  readonly database: string;
  /** Names (catalog form, `pattern-miner`) of the agents that declare PostgreSQL. */
  readonly agents: readonly string[];
  /** @default 'rds_iam' */
  readonly iamRole?: string;
}

export interface AgentRolesReport {
  /** The agents' roles, as they now are: able to log in. */
  readonly roles: string[];
  /** Managed roles whose agent is no longer in the list: present, NOLOGIN, their schema and data kept. */
  readonly disabled: string[];
  /** Every statement that changed something, in order; empty when the database already was as asked. */
  readonly changes: string[];
}

/**
 * Brings the database to the state the agent list asks for, changing only what differs (a second run with
 * the same list executes no statement), in one transaction (all or nothing) under an advisory lock:
 *
 * - the database: PUBLIC has no privilege on it (no CONNECT, no TEMP); each agent role has CONNECT;
 * - the `public` schema: PUBLIC has no privilege on it (no CREATE, no USAGE);
 * - per agent: role `agent_<name>` with LOGIN (no CREATEDB, no CREATEROLE), a member of `rds_iam` (IAM
 *   authentication only), marked as managed by a comment, with USAGE (only) on schema `agent_<name>` (on which
 *   PUBLIC has nothing, so no other agent can reach its tables), `search_path` set to that schema;
 * - per agent, for row-level security by tenant (see `TENANT_SETTING`): a NOLOGIN owner role
 *   `byoc_owner_agent_<name>` (no BYPASSRLS) that owns the schema and what is in it, the agent's role may only
 *   SELECT, INSERT, UPDATE and DELETE its tables (default privileges), and in the schema
 *   `byoc_isolation_problems()` and the owner's SECURITY DEFINER `byoc_apply_migration(version, name, sql)`,
 *   executable by the agent's role only, which applies a migration once and refuses it when it leaves a table
 *   without tenant isolation. A schema of that name owned by the agent's login role (made by an earlier version)
 *   is handed to the owner role; one owned by any other role is refused, never taken over;
 * - a managed role whose agent left the list becomes NOLOGIN; it is never dropped (its data stays).
 *
 * The client must be the database's owner or a role that administers roles (RDS's master user: CREATEROLE,
 * a member of rds_superuser, owner of the database it created).
 */
export async function ensureAgentRoles(client: ClientBase, options: AgentRolesOptions): Promise<AgentRolesReport> {
  const iamRole = options.iamRole ?? RDS_IAM_ROLE;
  for (const [what, name] of [['database', options.database], ['iamRole', iamRole]] as const) {
    if (!SIMPLE_IDENTIFIER.test(name)) throw new Error(`${what} "${name}" is not a plain SQL identifier (lower-case letters, digits, underscores)`);
  }
  const roles = options.agents.map(dbUserOf);
  const duplicate = roles.find((r, i) => roles.indexOf(r) !== i);
  if (duplicate) throw new Error(`two agents map to the database role ${duplicate}`);
  const wanted = [...roles].sort();

  const changes: string[] = [];
  const run = async (sql: string) => {
    await client.query(sql);
    changes.push(sql);
  };
  const one = async <T>(sql: string, values: unknown[] = []): Promise<T | undefined> => (await client.query(sql, values)).rows[0] as T | undefined;

  /**
   * Runs a statement that makes `role` own something, or acts as its owner. PostgreSQL lets a non-superuser do
   * that only as a member of `role`. The administrator is made one for this statement and is no longer one when the transaction
   * commits: a lasting membership would make it an indirect member of rds_iam through the agent's role, and
   * RDS would then refuse its password.
   */
  const asOwnerOf = async (role: string, superuser: boolean, statement: () => Promise<void>): Promise<void> => {
    // PostgreSQL 16 split membership into privileges: what counts is being allowed to SET ROLE.
    const check = (await one<{ member: boolean }>(
      `SELECT pg_has_role(current_user, $1, CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END) AS member`, [role]))!;
    if (superuser || check.member) return statement();
    await client.query(`GRANT ${quoteIdent(role)} TO CURRENT_USER`);
    await statement();
    await client.query(`REVOKE ${quoteIdent(role)} FROM CURRENT_USER`);
  };

  /**
   * The agent's tables belong to its owner role (NOLOGIN), never to the role the agent logs in as: the agent's
   * role gets only SELECT, INSERT, UPDATE and DELETE on them, so it cannot turn row-level security off (no ALTER,
   * no DROP POLICY: those need ownership; no TRUNCATE). Its migrations run through the owner's SECURITY DEFINER
   * function, which refuses any migration that leaves a table without tenant isolation.
   */
  /** The agent's owner role (NOLOGIN, no BYPASSRLS), marked by its comment. */
  const ensureOwnerRole = async (role: string): Promise<void> => {
    const owner = ownerRoleOf(role);
    const o = quoteIdent(owner);
    const comment = `${OWNER_ROLE_COMMENT_PREFIX}${role}`;
    const found = await one<{ rolcanlogin: boolean; rolcreatedb: boolean; rolcreaterole: boolean; rolsuper: boolean; rolbypassrls: boolean; comment: string | null }>(
      `SELECT rolcanlogin, rolcreatedb, rolcreaterole, rolsuper, rolbypassrls, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = $1`, [owner]);
    if (!found) {
      await run(`CREATE ROLE ${o} WITH NOLOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS`);
    } else {
      if (found.rolsuper) throw new Error(`role ${owner} is a superuser: refusing to use it as an agent's data owner; drop or alter it first`);
      if (found.rolcanlogin || found.rolcreatedb || found.rolcreaterole || found.rolbypassrls) await run(`ALTER ROLE ${o} WITH NOLOGIN NOCREATEDB NOCREATEROLE NOBYPASSRLS`);
    }
    if (found?.comment !== comment) await run(`COMMENT ON ROLE ${o} IS ${quoteLiteral(comment)}`);
  };

  /**
   * The agent's schema and tables belong to its owner role (NOLOGIN), never to the role the agent logs in as: the
   * agent's role gets USAGE on the schema and only SELECT, INSERT, UPDATE and DELETE on the tables, so it can
   * neither turn row-level security off (ALTER, DROP POLICY need ownership; no TRUNCATE) nor create or replace
   * anything in the schema. Its migrations run through the owner's SECURITY DEFINER function, which refuses any
   * migration that leaves a table without tenant isolation.
   */
  const ensureTenantIsolation = async (role: string, superuser: boolean): Promise<void> => {
    const owner = ownerRoleOf(role);
    const [r, o] = [quoteIdent(role), quoteIdent(owner)];
    const onSchema = (await client.query<{ privilege_type: string }>(
      `SELECT a.privilege_type FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
       WHERE n.nspname = $1 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)`, [role, role])).rows.map((x) => x.privilege_type);
    if (!onSchema.includes('USAGE') || onSchema.includes('CREATE')) {
      await asOwnerOf(owner, superuser, async () => {
        if (onSchema.includes('CREATE')) await run(`REVOKE CREATE ON SCHEMA ${r} FROM ${r}`);
        if (!onSchema.includes('USAGE')) await run(`GRANT USAGE ON SCHEMA ${r} TO ${r}`);
      });
    }
    const defaults = (await client.query<{ objtype: string }>(
      `SELECT d.defaclobjtype AS objtype FROM pg_default_acl d WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = $1)
       AND d.defaclnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2)`, [owner, role])).rows.map((x) => x.objtype);
    const functions = (await client.query<{ proname: string; src: string; owner: string; public: boolean }>(
      `SELECT p.proname, p.prosrc AS src, pg_get_userbyid(p.proowner) AS owner,
              EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE a.grantee = 0) AS public
       FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND p.proname = ANY($2)`,
      [role, [ISOLATION_CHECK_FUNCTION, MIGRATION_FUNCTION]])).rows;
    const wantedFunctions = tenantIsolationFunctions(role);
    const stale = wantedFunctions.filter((f) => {
      const have = functions.find((x) => x.proname === f.name);
      return !have || have.src !== f.body || have.owner !== owner || have.public;
    });
    if (!defaults.includes('r') || !defaults.includes('S') || stale.length > 0) {
      await asOwnerOf(owner, superuser, async () => {
        // As the owner itself: what it creates is its own, and default privileges are its to set.
        await client.query(`SET LOCAL ROLE ${o}`);
        if (!defaults.includes('r')) await run(`ALTER DEFAULT PRIVILEGES FOR ROLE ${o} IN SCHEMA ${r} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`);
        if (!defaults.includes('S')) await run(`ALTER DEFAULT PRIVILEGES FOR ROLE ${o} IN SCHEMA ${r} GRANT USAGE, SELECT ON SEQUENCES TO ${r}`);
        for (const f of stale) {
          await run(f.create);
          await run(`REVOKE ALL ON FUNCTION ${r}.${f.name}${f.signature} FROM PUBLIC`);
          await run(`GRANT EXECUTE ON FUNCTION ${r}.${f.name}${f.signature} TO ${r}`);
        }
        await client.query('RESET ROLE');
      });
    }
  };

  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [DATABASE_ROLES_LOCK]);
    const here = await one<{ db: string; me: string; superuser: boolean }>(
      'SELECT current_database() AS db, current_user AS me, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser');
    if (here!.db !== options.database) {
      throw new Error(`connected to database "${here!.db}", not "${options.database}": schemas belong to one database, connect to the agents' one`);
    }
    if (!(await one('SELECT 1 FROM pg_roles WHERE rolname = $1', [iamRole]))) {
      throw new Error(`role "${iamRole}" does not exist: IAM database authentication is not available on this instance (RDS creates ${iamRole}; enable IAM authentication)`);
    }
    const db = quoteIdent(options.database);

    // PUBLIC: nothing on the database, nothing on the public schema. A NULL ACL means the built-in defaults.
    if (await one(`SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                   WHERE d.datname = $1 AND a.grantee = 0`, [options.database])) {
      await run(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
    }
    if (await one(`SELECT 1 FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                   WHERE n.nspname = 'public' AND a.grantee = 0`)) {
      await run('REVOKE ALL ON SCHEMA public FROM PUBLIC');
    }

    for (const [i, role] of roles.entries()) {
      const r = quoteIdent(role);
      const comment = `${MANAGED_ROLE_COMMENT_PREFIX}${options.agents[i]}`;
      const found = await one<{ oid: number; rolcanlogin: boolean; rolcreatedb: boolean; rolcreaterole: boolean; rolsuper: boolean; comment: string | null }>(
        `SELECT oid, rolcanlogin, rolcreatedb, rolcreaterole, rolsuper, shobj_description(oid, 'pg_authid') AS comment
         FROM pg_roles WHERE rolname = $1`, [role]);
      if (!found) {
        await run(`CREATE ROLE ${r} WITH LOGIN NOCREATEDB NOCREATEROLE`);
      } else {
        if (found.rolsuper) throw new Error(`role ${role} is a superuser: refusing to use it as an agent's role; drop or alter it first`);
        if (!found.rolcanlogin || found.rolcreatedb || found.rolcreaterole) await run(`ALTER ROLE ${r} WITH LOGIN NOCREATEDB NOCREATEROLE`);
      }
      if (found?.comment !== comment) await run(`COMMENT ON ROLE ${r} IS ${quoteLiteral(comment)}`);
      if (!(await one(`SELECT 1 FROM pg_auth_members m WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $1)
                       AND m.member = (SELECT oid FROM pg_roles WHERE rolname = $2)`, [iamRole, role]))) {
        await run(`GRANT ${quoteIdent(iamRole)} TO ${r}`);
      }

      const schema = await one<{ owner: string; public: boolean }>(
        `SELECT pg_get_userbyid(n.nspowner) AS owner,
                EXISTS (SELECT 1 FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a WHERE a.grantee = 0) AS public
         FROM pg_namespace n WHERE n.nspname = $1`, [role]);
      const owner = ownerRoleOf(role);
      const o = quoteIdent(owner);
      await ensureOwnerRole(role);
      if (!schema) {
        await asOwnerOf(owner, here!.superuser, () => run(`CREATE SCHEMA ${r} AUTHORIZATION ${o}`));
      } else {
        if (schema.owner === role) {
          // Made by an earlier version of this module, owned by the agent's login role: handed to its owner role.
          await asOwnerOf(role, here!.superuser, () => asOwnerOf(owner, here!.superuser, () => run(`ALTER SCHEMA ${r} OWNER TO ${o}`)));
        } else if (schema.owner !== owner) {
          // Never take over a schema (and its tables) someone else made: say what to do instead.
          throw new Error(`schema ${role} exists and is owned by ${schema.owner}, not by the agent's owner role ${owner}: `
            + `ALTER SCHEMA ${role} OWNER TO ${owner} if it is the agent's, or rename it`);
        }
        // Grants on the schema are the owner's: only as the owner does the revoke take effect (anyone else gets a warning).
        if (schema.public) await asOwnerOf(owner, here!.superuser, () => run(`REVOKE ALL ON SCHEMA ${r} FROM PUBLIC`));
      }

      const setting = await one<{ setconfig: string[] | null }>(
        `SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = 0 AND setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)`, [role]);
      if (!(setting?.setconfig ?? []).includes(`search_path=${role}`)) await run(`ALTER ROLE ${r} SET search_path TO ${r}`);

      if (!(await one(`SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                       WHERE d.datname = $1 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2) AND a.privilege_type = 'CONNECT'`,
      [options.database, role]))) {
        await run(`GRANT CONNECT ON DATABASE ${db} TO ${r}`);
      }

      await ensureTenantIsolation(role, here!.superuser);
    }

    // Agents that left the catalog: no more logins, everything else kept.
    const managed = (await client.query<{ rolname: string; rolcanlogin: boolean }>(
      `SELECT rolname, rolcanlogin FROM pg_roles WHERE starts_with(coalesce(shobj_description(oid, 'pg_authid'), ''), $1) ORDER BY rolname`,
      [MANAGED_ROLE_COMMENT_PREFIX])).rows;
    const disabled: string[] = [];
    for (const m of managed) {
      if (wanted.includes(m.rolname)) continue;
      disabled.push(m.rolname);
      if (m.rolcanlogin) await run(`ALTER ROLE ${quoteIdent(m.rolname)} WITH NOLOGIN`);
    }
    await client.query('COMMIT');
    return { roles: wanted, disabled, changes };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }

}

/**
 * Row-level security by tenant. An agent's tenant-scoped table carries `tenant text NOT NULL DEFAULT
 * current_setting('byoc.tenant')`, has row-level security enabled and forced, and exactly one policy,
 * `byoc_tenant`, for every command, USING and WITH CHECK `tenant = current_setting('byoc.tenant', true)`. The
 * runtime's `TenantPool` runs every query in a transaction that first sets `byoc.tenant` to the query's tenant
 * (transaction-local), so a query sees and writes only that tenant's rows whatever its WHERE clause says; with
 * no tenant set it sees nothing.
 */
export const TENANT_SETTING = 'byoc.tenant';
export const TENANT_COLUMN = 'tenant';
export const TENANT_POLICY = 'byoc_tenant';
/** The policy's expression as PostgreSQL prints it back (`pg_get_expr`): what the isolation check compares. */
export const TENANT_POLICY_EXPRESSION = `(${TENANT_COLUMN} = current_setting('${TENANT_SETTING}'::text, true))`;
/** In each agent's schema, owned by its owner role: applies one migration (SECURITY DEFINER), executable by the agent's role only. */
export const MIGRATION_FUNCTION = 'byoc_apply_migration';
/** In each agent's schema: lists what breaks tenant isolation there (empty when every table is isolated). */
export const ISOLATION_CHECK_FUNCTION = 'byoc_isolation_problems';
/** In each agent's schema, owned by its owner role: the versions applied (the agent's role may only read it). */
export const MIGRATIONS_TABLE = 'byoc_schema_migrations';
/** The comment that marks an agent's data owner role, followed by the agent's login role. */
export const OWNER_ROLE_COMMENT_PREFIX = 'byoc data owner for ';

/**
 * The NOLOGIN role that owns an agent's tables (`agent_planner` → `byoc_owner_agent_planner`): not the role the
 * agent logs in as, so the agent cannot alter its tables' policies. No agent name maps to it.
 */
export function ownerRoleOf(role: string): string {
  if (!AGENT_ROLE_PATTERN.test(role)) throw new Error(`"${role}" is not an agent role`);
  return `byoc_owner_${role}`;
}

interface IsolationFunction { readonly name: string; readonly signature: string; readonly body: string; readonly create: string }

/** The two functions each agent schema holds, with the exact bodies `ensureAgentRoles` compares to decide whether to replace them. */
export function tenantIsolationFunctions(role: string): IsolationFunction[] {
  const s = quoteIdent(role);
  const lit = quoteLiteral(role);
  const check = `
  SELECT object, problem FROM (
    SELECT c.relname::text AS object, CASE
      WHEN c.relkind = 'm' THEN 'a materialized view cannot carry row-level security'
      WHEN NOT c.relrowsecurity THEN 'row-level security is not enabled'
      WHEN NOT c.relforcerowsecurity THEN 'row-level security is not forced'
      WHEN NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = ${quoteLiteral(TENANT_COLUMN)} AND NOT a.attisdropped
                       AND a.atttypid = 'text'::regtype AND a.attnotnull) THEN 'no column ${TENANT_COLUMN} text NOT NULL'
      WHEN (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) <> 1
        OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = ${quoteLiteral(TENANT_POLICY)} AND p.polpermissive
                       AND p.polcmd = '*' AND p.polroles = '{0}'::oid[]
                       AND pg_get_expr(p.polqual, p.polrelid) = ${quoteLiteral(TENANT_POLICY_EXPRESSION)}
                       AND pg_get_expr(p.polwithcheck, p.polrelid) = ${quoteLiteral(TENANT_POLICY_EXPRESSION)})
        THEN 'its one policy must be ${TENANT_POLICY}: ${TENANT_POLICY_EXPRESSION.replace(/'/g, "''")} for all commands, USING and WITH CHECK'
    END AS problem
    FROM pg_class c WHERE c.relnamespace = ${lit}::regnamespace AND c.relkind IN ('r', 'p', 'm') AND c.relname <> ${quoteLiteral(MIGRATIONS_TABLE)}
  ) t WHERE problem IS NOT NULL
  UNION ALL
  SELECT p.proname::text, 'a SECURITY DEFINER function (only ${MIGRATION_FUNCTION} may be one)'
  FROM pg_proc p WHERE p.pronamespace = ${lit}::regnamespace AND p.prosecdef AND p.proname <> ${quoteLiteral(MIGRATION_FUNCTION)}
`;
  const apply = `
DECLARE
  problems text;
BEGIN
  IF to_regclass(${quoteLiteral(`${role}.${MIGRATIONS_TABLE}`)}) IS NULL THEN
    CREATE TABLE ${s}.${MIGRATIONS_TABLE} (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
    REVOKE ALL ON ${s}.${MIGRATIONS_TABLE} FROM PUBLIC, ${s};
    GRANT SELECT ON ${s}.${MIGRATIONS_TABLE} TO ${s};
  ELSIF (SELECT relowner FROM pg_class WHERE oid = to_regclass(${quoteLiteral(`${role}.${MIGRATIONS_TABLE}`)})) <> (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION '${MIGRATIONS_TABLE} in schema ${role} is not owned by %: refusing to record migrations in it', current_user;
  END IF;
  IF EXISTS (SELECT 1 FROM ${s}.${MIGRATIONS_TABLE} m WHERE m.version = p_version) THEN
    RETURN false;
  END IF;
  EXECUTE p_body;
  INSERT INTO ${s}.${MIGRATIONS_TABLE} (version, name) VALUES (p_version, p_name);
  SELECT string_agg(object || ': ' || problem, '; ' ORDER BY object) INTO problems FROM ${s}.${ISOLATION_CHECK_FUNCTION}();
  IF problems IS NOT NULL THEN
    RAISE EXCEPTION 'migration % (%) leaves schema ${role} without tenant isolation: %', p_version, p_name, problems;
  END IF;
  RETURN true;
END
`;
  return [
    {
      name: ISOLATION_CHECK_FUNCTION, signature: '()', body: check,
      create: `CREATE OR REPLACE FUNCTION ${s}.${ISOLATION_CHECK_FUNCTION}() RETURNS TABLE (object text, problem text) LANGUAGE sql STABLE SET search_path = pg_catalog AS $byoc$${check}$byoc$`,
    },
    {
      name: MIGRATION_FUNCTION, signature: '(integer, text, text)', body: apply,
      create: `CREATE OR REPLACE FUNCTION ${s}.${MIGRATION_FUNCTION}(p_version integer, p_name text, p_body text) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${s}, pg_temp AS $byoc$${apply}$byoc$`,
    },
  ];
}

/**
 * TLS options for `pg` that check what libpq's `sslmode=verify-full` checks: the server's certificate chains to
 * one of `ca` (and only those: the system roots are not consulted) and names the host connected to. `pg` passes
 * the host name as the TLS server name for the hostname check.
 */
export function verifyFullTls(ca: string | readonly string[]): { ca: string[]; rejectUnauthorized: true } {
  const list = typeof ca === 'string' ? [ca] : [...ca];
  if (list.length === 0 || list.some((c) => !c.includes('-----BEGIN CERTIFICATE-----'))) {
    throw new Error('verify-full needs at least one PEM CA certificate');
  }
  return { ca: list, rejectUnauthorized: true };
}
