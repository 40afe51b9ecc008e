import { ChildProcess, spawn } from 'child_process';
import { KeyObject } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../../lib/app';
import { secretVariables } from '../../lib/nats-config';
import { eventually, Link } from './link';

/** The bundled boundary gateway (the file its container runs), started against a link's leaf. */
export interface GatewayProcess {
  readonly auditLog: string;
  readonly keyFile: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Its JSON log lines. */
  records(): any[];
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface GatewayProcessOptions {
  /** The audit key (a PEM private key file is written for it in the link's folder). */
  readonly privateKey: KeyObject;
  readonly env?: Record<string, string>;
  /** @default - a new file in the link's folder */
  readonly auditLog?: string;
  /** @default true */
  readonly shareLearning?: boolean;
}

/** Starts `dist/boundary-gateway.js` for the link's customer, with its agents' outbound kinds, and waits until it is ready. */
export async function startGateway(link: Link, o: GatewayProcessOptions): Promise<GatewayProcess> {
  const bundle = path.join(projectRoot(), 'dist', 'boundary-gateway.js');
  if (!fs.existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run build`);
  const auditLog = o.auditLog ?? path.join(link.dir, `audit-${Date.now()}.log`);
  const keyFile = path.join(link.dir, 'audit-key.pem');
  fs.writeFileSync(keyFile, o.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const vars = secretVariables(link.customerId);
  const child: ChildProcess = spawn(process.execPath, [bundle], {
    env: {
      PATH: process.env.PATH!, BYOC_CUSTOMER: link.customerId, NATS_URL: `127.0.0.1:${link.leafPort}`,
      BYOC_GATEWAY_LOCAL_PASSWORD: link.secrets[vars.gatewayLocal], BYOC_GATEWAY_REMOTE_PASSWORD: link.secrets[vars.gatewayRemote], BYOC_PROVISIONER_PASSWORD: link.secrets[vars.provisioner], BYOC_BACKLOG_REPORTER_PASSWORD: link.secrets[vars.backlogReporter],
      BYOC_AUDIT_LOG: auditLog, BYOC_AUDIT_KEY: keyFile, BYOC_AUDIT_HEAD_EVERY: '50', BYOC_SHARE_LEARNING: String(o.shareLearning ?? true),
      BYOC_AGENTS: JSON.stringify(Object.fromEntries(link.agentIdentities.map((a) => [a.name, a.outbox]))),
      BYOC_AGENT_EVENTS: JSON.stringify(Object.fromEntries(link.agentIdentities.map((a) => [a.name, a.subscribe.filter((x) => x.startsWith('events.'))]))),
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await eventually(() => out.includes('"msg":"ready"') || child.exitCode !== null, 15000, 'gateway ready');
  if (!out.includes('"msg":"ready"')) throw new Error(`gateway did not start: ${out}`);
  const records = () => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const stop = async () => {
    child.kill('SIGTERM');
    return exited;
  };
  return { auditLog, keyFile, child, output: () => out, records, stop, exited };
}

/** The audit log's complete lines (a line being written while we read is left for the next read). */
export const auditRecords = (file: string): any[] => fs.readFileSync(file, 'utf8').split('\n').slice(0, -1).map((l) => JSON.parse(l));
