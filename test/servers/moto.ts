import { ChildProcess, spawn } from 'child_process';
import { freePort, listening } from './nats';

/** A real `moto_server` on loopback, for the AWS SDK to talk to instead of AWS. */
export interface MotoServer {
  readonly endpoint: string;
  /** Environment for an AWS SDK client (endpoint, fake credentials, region). */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * `serial`: serve one request at a time. DynamoDB applies each conditional update to an item atomically;
 * moto_server's threads do not (two conditional ADDs can both pass the condition), so a test of limits kept
 * by conditional updates would measure moto's races. Serving requests in turn is what DynamoDB guarantees per item.
 */
export async function startMoto(options: { readonly serial?: boolean } = {}): Promise<MotoServer> {
  const port = await freePort();
  const args = ['-H', '127.0.0.1', '-p', String(port)];
  const launcher = [
    'import werkzeug.serving as w, moto.server as s',
    'run = w.run_simple',
    's.run_simple = lambda *a, **k: run(*a, **{**k, "threaded": False})',
    's.main()',
  ].join('\n');
  const child: ChildProcess = options.serial
    ? spawn('python3', ['-c', launcher, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('moto_server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr += d; });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited (${child.exitCode}): ${stderr.slice(-500)}. It is preinstalled here; elsewhere: pip install 'moto[server]'`);
    if (await listening(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not start on ${endpoint}: ${stderr.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'eu-west-1', AWS_EC2_METADATA_DISABLED: 'true' },
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}
