import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

/** A real nats-server on loopback, started from a configuration file. */
export interface NatsServer {
  readonly log: () => string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** Starts `nats-server -c FILE` with `env`, and waits until `port` accepts connections. */
export async function startNats(configFile: string, port: number, env: Record<string, string> = {}): Promise<NatsServer> {
  const child: ChildProcess = spawn('nats-server', ['-c', configFile], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d) => { log += d; });
  child.stderr?.on('data', (d) => { log += d; });
  const deadline = Date.now() + 15000;
  while (!(await listening(port))) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${log.slice(-1500)}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`nats-server did not listen on ${port}: ${log.slice(-1500)}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    log: () => log,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/**
 * A throwaway CA and a server certificate made with openssl, by default for 127.0.0.1/localhost. `parent`:
 * the folder to create it in (removed with it); `san`: the certificate's subjectAltName.
 */
export function testCertificates(parent: string = os.tmpdir(), san = 'IP:127.0.0.1,DNS:localhost'): { dir: string; ca: string; cert: string; key: string } {
  const dir = fs.mkdtempSync(path.join(parent, 'byoc-tls-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=byoc test CA');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'hub.key', '-out', 'hub.csr', '-subj', '/CN=byoc test server');
  fs.writeFileSync(path.join(dir, 'ext'), `subjectAltName=${san}\n`);
  run('x509', '-req', '-in', 'hub.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'hub.pem', '-days', '2', '-extfile', 'ext');
  return { dir, ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'hub.pem'), key: path.join(dir, 'hub.key') };
}

/** Another server certificate from the CA of `tls` (same CA, another key and name). */
export function siblingCertificate(tls: { dir: string }, name: string, san: string): { cert: string; key: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: tls.dir, stdio: 'pipe' });
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  fs.writeFileSync(path.join(tls.dir, `${name}.ext`), `subjectAltName=${san}\n`);
  run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  return { cert: path.join(tls.dir, `${name}.pem`), key: path.join(tls.dir, `${name}.key`) };
}
