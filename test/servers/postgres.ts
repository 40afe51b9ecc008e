import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { freePort, listening } from './nats';

/** A real PostgreSQL server on loopback in a throwaway cluster (Debian's postgresql package). */
export interface PostgresServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
}

function binDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb'))).sort() : [];
  if (versions.length === 0) throw new Error('PostgreSQL server is not installed: apt-get install -y postgresql');
  return path.join(base, versions[versions.length - 1], 'bin');
}

export interface PostgresOptions {
  /** Serve TLS with this certificate and key (PEM files; copied into the cluster's folder). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** pg_hba.conf lines instead of initdb's (which trust every local connection). */
  readonly hba?: readonly string[];
}

export async function startPostgres(o: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = binDir();
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-pg-'));
  // PostgreSQL refuses to run as root: run it as the postgres user when we are root.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) => (asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]] : [path.join(bin, cmd), args]) as [string, string[]];
  execFileSync(...run('initdb', ['-D', path.join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']), { stdio: 'pipe' });
  const data = path.join(dir, 'data');
  let options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`;
  if (o.tls) {
    // PostgreSQL reads the key only when its owner alone can: copies owned by the server's user, mode 0600.
    fs.copyFileSync(o.tls.cert, path.join(data, 'server.crt'));
    fs.copyFileSync(o.tls.key, path.join(data, 'server.key'));
    fs.chmodSync(path.join(data, 'server.key'), 0o600);
    if (asRoot) execFileSync('chown', ['postgres:postgres', path.join(data, 'server.crt'), path.join(data, 'server.key')]);
    options += ' -c ssl=on';
  }
  if (o.hba) {
    fs.writeFileSync(path.join(data, 'pg_hba.conf'), `${o.hba.join('\n')}\n`);
    if (asRoot) execFileSync('chown', ['postgres:postgres', path.join(data, 'pg_hba.conf')]);
  }
  try {
    execFileSync(...run('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', '-t', '30', 'start']), { stdio: 'pipe' });
  } catch (e) {
    const log = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : '';
    throw new Error(`postgres did not start: ${(e as Error).message}\n${log.slice(-1000)}`);
  }
  if (!(await listening(port))) throw new Error(`postgres is not listening on ${port}`);
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      try {
        execFileSync(...run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']), { stdio: 'pipe' });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The agents' database as the plane's deploy-time function sets RDS up: an `rds_iam` role, a master user that is
 * not a superuser (`byoc_admin`, CREATEROLE CREATEDB), the `byoc` database, and each agent's roles made by that
 * master user (lib/database-roles.ts). Returns the URL of the `byoc` database as the superuser.
 */
export async function agentDatabase(pg: PostgresServer, agents: readonly string[]): Promise<string> {
  const { Client } = await import('pg');
  const { ensureAgentRoles } = await import('../../lib/database-roles');
  const run = async (url: string, fn: (c: InstanceType<typeof Client>) => Promise<unknown>) => {
    const c = new Client({ connectionString: url });
    await c.connect();
    try { await fn(c); } finally { await c.end(); }
  };
  const admin = pg.url.replace('postgres@', 'byoc_admin@');
  await run(pg.url, async (c) => {
    await c.query('CREATE ROLE rds_iam');
    await c.query('CREATE ROLE byoc_admin WITH LOGIN CREATEROLE CREATEDB');
  });
  await run(admin, (c) => c.query('CREATE DATABASE byoc'));
  await run(admin.replace(/\/postgres$/, '/byoc'), (c) => ensureAgentRoles(c, { database: 'byoc', agents }));
  return pg.url.replace(/\/postgres$/, '/byoc');
}
