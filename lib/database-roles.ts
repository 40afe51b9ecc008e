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
 *   authentication only), marked as managed by a comment, owning schema `agent_<name>` (on which PUBLIC has
 *   nothing, so no other agent can reach its tables), `search_path` set to that schema; a schema of that name
 *   owned by another role is refused, never taken over;
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
      if (!schema) {
        await asOwnerOf(role, here!.superuser, () => run(`CREATE SCHEMA ${r} AUTHORIZATION ${r}`));
      } else {
        if (schema.owner !== role) {
          // Never take over a schema (and its tables) someone else made: say what to do instead.
          throw new Error(`schema ${role} exists and is owned by ${schema.owner}, not by the agent's role: `
            + `ALTER SCHEMA ${role} OWNER TO ${role} if it is the agent's, or rename it`);
        }
        // Grants on the schema are the owner's: only as the owner does the revoke take effect (anyone else gets a warning).
        if (schema.public) await asOwnerOf(role, here!.superuser, () => run(`REVOKE ALL ON SCHEMA ${r} FROM PUBLIC`));
      }

      const setting = await one<{ setconfig: string[] | null }>(
        `SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = 0 AND setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)`, [role]);
      if (!(setting?.setconfig ?? []).includes(`search_path=${role}`)) await run(`ALTER ROLE ${r} SET search_path TO ${r}`);

      if (!(await one(`SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                       WHERE d.datname = $1 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2) AND a.privilege_type = 'CONNECT'`,
      [options.database, role]))) {
        await run(`GRANT CONNECT ON DATABASE ${db} TO ${r}`);
      }
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
