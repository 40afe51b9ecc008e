#!/usr/bin/env node
/**
 * `npm run rehearse`: synthesizes the customer plane (the example configuration, or `--config FILE`) with
 * the vendor hub's CA replaced by a rehearsal CA, then runs it from its templates in private network, mount
 * and PID namespaces (see rehearsal/rehearse.ts). Needs root (the containers' root filesystems are overlay
 * mounts). Exits 0 only when every check passes; prints what it started, skipped and substituted.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { createApp, projectRoot } from '../lib/app';
import { loadCustomerPlaneConfig } from '../customer-plane/config';
import { CustomerPlaneStack } from '../customer-plane/stack';
import { parseImageRef } from '../customer-plane/props';
import { endToEnd } from '../rehearsal/end-to-end';
import { rehearse, RehearsalReport } from '../rehearsal/rehearse';
import { LocalImage } from '../rehearsal/sandbox';
import { testCertificates } from '../test/servers/nats';
import { CUSTOMER_PLANE_STACK } from './customer-plane';

interface InnerOptions {
  readonly assembly: string;
  readonly customerId: string;
  readonly shareLearning: boolean;
  readonly region: string;
  readonly hub: { host: string; port: number; certFile: string; keyFile: string };
  readonly images: Record<string, LocalImage>;
  readonly workDir: string;
  readonly graceSeconds: number;
  readonly allAgents: boolean;
  /** The end-to-end run: the vendor registers, synthesizes, signs and revokes inside the namespaces (`rehearsal/end-to-end.ts`). */
  readonly endToEnd?: { readonly account: string; readonly releaseImages: string[] };
}

/** The agent runtime image as its Dockerfile builds it: the files it COPYs from this checkout, its ENV and CMD. */
export function runtimeImageFromDockerfile(root = projectRoot()): LocalImage {
  const dockerfile = fs.readFileSync(path.join(root, 'agents', 'runtime', 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const files: Array<{ source: string; target: string }> = [];
  const env: Record<string, string> = {};
  let cmd: string[] | undefined;
  for (const line of dockerfile.split('\n').map((l) => l.trim())) {
    const [instruction, ...rest] = line.split(/\s+/);
    if (instruction === 'COPY') {
      const args = rest.filter((a) => !a.startsWith('--'));
      const dest = args.pop()!;
      for (const src of args) files.push({ source: path.join(root, src), target: dest.endsWith('/') ? path.posix.join(dest, path.basename(src)) : dest });
    } else if (instruction === 'ENV') {
      for (const kv of rest) {
        const [k, ...v] = kv.split('=');
        env[k] = v.join('=');
      }
    } else if (instruction === 'CMD') {
      cmd = JSON.parse(rest.join(' '));
    }
  }
  for (const f of files) {
    if (!fs.existsSync(f.source)) throw new Error(`the runtime image copies ${path.relative(root, f.source)}, which is missing: run npm run build first`);
  }
  return { description: `agents/runtime/Dockerfile's files from this checkout on this machine's Node.js ${process.version} (the image: Node.js 22 or 24)`, files, env, cmd };
}

function natsVersion(): string {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('nats-server is missing: apt-get install -y nats-server');
  return r.stdout.trim();
}

async function outer(argv: string[]): Promise<number> {
  const cli = new Command('rehearse')
    .description('Run the customer plane from its synthesized templates on this machine and check that it would start, link and work')
    .option('--config <file>', 'customer-plane configuration', path.join(projectRoot(), 'config', 'example-customer.json'))
    .option('--grace <seconds>', 'how long every process must stay up', '15')
    .option('--all-agents', 'start every agent, not one of each trigger', false)
    .option('--report <file>', 'write the report as JSON')
    .option('--end-to-end', 'the vendor side too: the control plane\'s hub nodes from its templates, byoc customer add, sign, verify, then the plane from the bundle, then byoc customer revoke', false)
    .option('--mutate <module>', 'test hook: a module whose default export edits the synthesized templates before the run (proves the rehearsal fails on a broken plane)')
    .exitOverride();
  cli.parse(argv, { from: 'user' });
  const opts = cli.opts<{ config: string; grace: string; allAgents: boolean; report?: string; mutate?: string; endToEnd: boolean }>();
  if (process.getuid?.() !== 0) {
    console.error('rehearse: needs root (each container gets its own overlay root filesystem and mounts, in private namespaces). Run it as root, e.g. sudo npm run rehearse');
    return 2;
  }
  const hubVersion = natsVersion();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-rehearsal-'));
  fs.chmodSync(workDir, 0o755);
  try {
    const props = loadCustomerPlaneConfig(path.resolve(opts.config));
    const tls = testCertificates(workDir, `DNS:${props.vendorHub.host}`);
    const plane = { ...props, vendorHub: { ...props.vendorHub, caCertificatePem: fs.readFileSync(tls.ca, 'utf8') } };
    const assembly = path.join(workDir, 'assembly');
    process.env.CDK_VALIDATION ??= 'false';
    if (opts.endToEnd && opts.mutate) throw new Error('--mutate edits the rehearsal\'s own synthesis; the end-to-end run synthesizes what byoc customer add wrote');
    if (!opts.endToEnd) {
      const app = createApp({ outdir: assembly, compliancePacks: false });
      new CustomerPlaneStack(app, CUSTOMER_PLANE_STACK, plane);
      app.synth();
    }
    if (opts.mutate) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const edit = require(path.resolve(opts.mutate));
      (edit.default ?? edit)(assembly);
    }
    const image = (ref: string) => parseImageRef('images', ref);
    const inner: InnerOptions = {
      assembly,
      customerId: props.customerId,
      shareLearning: props.shareLearning ?? true,
      region: image(props.images.agentRuntime).region,
      hub: { host: props.vendorHub.host, port: props.vendorHub.port, certFile: tls.cert, keyFile: tls.key },
      images: {
        [image(props.images.agentRuntime).repository]: runtimeImageFromDockerfile(),
        [image(props.images.natsServer).repository]: { description: `${hubVersion} from Debian (the image: the pinned nats-server, -alpine variant)`, files: [], env: {}, cmd: ['nats-server', '--config', 'nats-server.conf'],
          // nats-server exits 1 after a clean shutdown on SIGTERM (server/signal.go), 0 on SIGINT.
          cleanStopCodes: [0, 1] },
      },
      workDir,
      graceSeconds: Number(opts.grace),
      allAgents: opts.allAgents,
      // moto's account: the plane runs in it; the release pins the configuration's images.
      endToEnd: opts.endToEnd ? { account: '123456789012', releaseImages: Object.values(props.images).filter((v): v is string => typeof v === 'string') } : undefined,
    };
    const innerFile = path.join(workDir, 'rehearsal.json');
    fs.writeFileSync(innerFile, JSON.stringify(inner));
    // Its own network (only loopback: the plane's isolated VPC), mounts and PIDs: when it ends, every process
    // and mount it made is gone with it.
    const r = spawnSync('unshare', ['--net', '--mount', '--pid', '--fork', '--kill-child', process.execPath, __filename, '--inner', innerFile], {
      stdio: 'inherit', env: { ...process.env, TMPDIR: workDir },
    });
    const reportFile = path.join(workDir, 'report.json');
    if (!fs.existsSync(reportFile)) {
      console.error(`rehearse: the rehearsal ended without a report (exit ${r.status ?? r.signal}${r.error ? `, ${r.error.message}` : ''})`);
      return 1;
    }
    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as RehearsalReport;
    if (opts.report) fs.writeFileSync(opts.report, JSON.stringify(report, null, 2));
    printSummary(report);
    if (!report.ok) {
      const logs = path.join(workDir, 'logs');
      for (const f of fs.existsSync(logs) ? fs.readdirSync(logs) : []) {
        console.error(`--- ${f} (last lines)\n${fs.readFileSync(path.join(logs, f), 'utf8').split('\n').slice(-15).join('\n')}`);
      }
    }
    return report.ok ? 0 : 1;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

function printSummary(r: RehearsalReport): void {
  const lines = [`rehearsal: ${r.ok ? 'PASSED' : 'FAILED'}`, 'started:'];
  for (const s of r.started) lines.push(`  ${s.service} (exit ${s.exit ?? '-'}): ${s.argv.join(' ').slice(0, 100)}`);
  lines.push('checks:');
  for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  lines.push('skipped:');
  for (const s of r.skipped) lines.push(`  ${s.what}: ${s.why}`);
  lines.push('substituted:');
  for (const s of r.substitutions) lines.push(`  ${s}`);
  console.log(lines.join('\n'));
}

async function innerMain(file: string): Promise<number> {
  const o = JSON.parse(fs.readFileSync(file, 'utf8')) as InnerOptions;
  spawnSync('ip', ['link', 'set', 'lo', 'up'], { stdio: 'inherit' });
  const log = process.env.BYOC_REHEARSAL_VERBOSE ? (l: string) => console.error(l) : undefined;
  const report = o.endToEnd
    ? await endToEnd({ ...o, ...o.endToEnd, log })
    : await rehearse({ ...o, stackName: CUSTOMER_PLANE_STACK, bindHosts: true, log });
  fs.writeFileSync(path.join(o.workDir, 'report.json'), JSON.stringify(report));
  return report.ok ? 0 : 1;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const run = args[0] === '--inner' ? innerMain(args[1]) : outer(args);
  run.then((code) => process.exit(code), (e) => {
    console.error(`rehearse: ${(e as Error).message}`);
    process.exit(1);
  });
}
