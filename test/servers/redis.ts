import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { freePort, listening, testCertificates } from './nats';

/** A real redis-server on loopback, TLS only (no plaintext port), with an AUTH password; its certificate also names `names`. */
export async function startRedisTls(password: string, names: readonly string[] = []): Promise<{ port: number; ca: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const tls = testCertificates(os.tmpdir(), ['IP:127.0.0.1', 'DNS:localhost', ...names.map((n) => `DNS:${n}`)].join(','));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-redis-'));
  const child: ChildProcess = spawn('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
    '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no',
    '--requirepass', password, '--dir', dir, '--save', '', '--appendonly', 'no',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => { log += d; });
  const deadline = Date.now() + 15000;
  while (!(await listening(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${log.slice(-800)}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`redis-server did not start: ${log.slice(-800)}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    ca: fs.readFileSync(tls.ca, 'utf8'),
    stop: async () => {
      await new Promise<void>((resolve) => { if (child.exitCode !== null) return resolve(); child.once('exit', () => resolve()); child.kill('SIGTERM'); });
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(tls.dir, { recursive: true, force: true });
    },
  };
}
