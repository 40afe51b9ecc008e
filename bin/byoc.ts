#!/usr/bin/env node
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, CommanderError, Option } from 'commander';
import { projectRoot } from '../lib/app';
import { AuditHead, AuditLogError, fetchAnchorHeads, readAnchorFile, verifyAuditLog } from '../lib/audit-log';
import { BOUNDARY_CONTRACT, contractHash, CUSTOMER_ID } from '../lib/boundary-contract';
import { loadContractFile } from '../lib/contract-input';
import { registerCostCommand } from '../lib/cost/command';
import { registerCustomerCommands } from '../lib/customers';
import { registerReleaseCommands } from '../lib/releases';
import { registerReviewCommand } from '../lib/review/cli';
import { signAssembly, verifyBundle, VerifyOptions } from '../lib/bundle';
import { diffBundles, diffSummary, formatDiff } from '../lib/bundle-diff';
import { agentIdentities, HUB_INGEST_STREAM, leafConfig, secretVariables } from '../lib/nats-config';
import { AGENT_CATALOG } from '../agents/catalog';
import { BundleError, fingerprint, generateDevelopmentKeys, kmsKeyRegion, loadPublicKey, signerFor } from '../lib/signer';

/**
 * `byoc`: sign, verify, deploy and destroy customer-plane bundles. Every command ends with one line saying
 * what it wrote where and what it checked; an error is one line, `byoc: <reason>`, and a non-zero exit.
 */
export function program(): Command {
  const cli = new Command('byoc')
    .description('BYOC deployment kit: sign, verify offline, and deploy exactly what was signed')
    .version(readPackageVersion(), '-V, --version', 'print the kit\'s version')
    // Options of byoc itself only before a command: `byoc sign --version 1.4.0` is sign's release version.
    .enablePositionalOptions()
    .exitOverride();

  cli.command('keygen')
    .description('write an Ed25519 key pair for development: DIR/private.pem (owner-only) and DIR/public.pem')
    .requiredOption('--out <dir>', 'folder to write the keys to')
    .option('--force', 'replace existing keys')
    .action((opts: { out: string; force?: boolean }) => {
      const keys = generateDevelopmentKeys(opts.out, opts.force);
      console.log(`wrote ${keys.privateKey} (owner-only) and ${keys.publicKey}: Ed25519, public key fingerprint: ${keys.fingerprint}`);
    });

  cli.command('pubkey')
    .description('export the public key of a signing key (PEM private key or KMS key ARN) as PEM')
    .requiredOption('--key <key>', 'PEM private key file or AWS KMS key ARN')
    .requiredOption('--out <file>', 'where to write the public key')
    .action(async (opts: { key: string; out: string }) => {
      // signerFor reads a KMS key in the region its ARN names, whatever the default region of this shell is.
      const signer = signerFor(opts.key);
      const pem = await signer.publicKeyPem();
      fs.writeFileSync(opts.out, pem);
      const region = kmsKeyRegion(opts.key);
      console.log(`wrote ${opts.out}: the ${signer.algorithm === 'ed25519' ? 'Ed25519' : 'ECDSA P-256'} public key of ${region ? `KMS key ${opts.key} (read in ${region})` : opts.key}, public key fingerprint: ${fingerprint(pem)}`);
    });

  cli.command('fingerprint')
    .description('print the fingerprint of a public key (sha256 of its DER form)')
    .argument('<public-key>', 'PEM public key file')
    .action((file: string) => console.log(loadPublicKey(file).fingerprint));

  cli.command('sign')
    .description('sign a synthesized customer-plane assembly into a bundle')
    .argument('<assembly>', 'synthesized cloud assembly, e.g. cdk.out/customer-plane')
    .requiredOption('--key <key>', 'PEM private key file (Ed25519 or ECDSA P-256) or AWS KMS key ARN (ECC_NIST_P256, SIGN_VERIFY)')
    .requiredOption('--out <bundle>', 'folder to write the bundle to (new or empty)')
    .requiredOption('--hub-endpoint <endpoint>', 'the vendor hub the leaf node connects to: tls://HOST:PORT or a VPC endpoint service name')
    // Required: the release's version is the vendor's decision for this customer, never the kit's own version.
    .requiredOption('--version <version>', 'release version (semantic version, e.g. 1.4.0); a customer\'s machine refuses one older than the last it verified')
    .addOption(new Option('--valid-days <days>', 'days until the release expires').default(90).argParser(Number))
    .action(async (assembly: string, opts: { key: string; out: string; hubEndpoint: string; version: string; validDays: number }) => {
      const started = process.hrtime.bigint();
      const release = await signAssembly(assembly, opts.out, signerFor(opts.key), { version: opts.version, hubEndpoint: opts.hubEndpoint, validDays: opts.validDays });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      console.log(`signed ${opts.out}: release ${release.version} of customer ${release.customerId}'s plane, ${release.images.length} images, contract ${release.contractHash.slice(0, 12)}, expires ${release.expiresAt}, key ${release.signer.publicKeyFingerprint} (${ms.toFixed(0)} ms)`);
    });

  const verifyOptions = (c: Command) => c
    .requiredOption('--public-key <file>', 'the vendor public key you pinned (PEM)')
    .option('--allow-downgrade', 'accept a version older than the last one verified on this machine')
    .option('--state-dir <dir>', 'where verified versions are remembered, per signing key and customer (default $BYOC_STATE_DIR or ~/.config/byoc)');
  const toVerifyOptions = (opts: { allowDowngrade?: boolean; stateDir?: string; at?: string }): VerifyOptions => ({
    allowDowngrade: opts.allowDowngrade,
    stateDir: opts.stateDir,
    at: opts.at ? parseDate(opts.at) : undefined,
  });

  verifyOptions(cli.command('verify'))
    .description('verify a bundle offline: signature, every file, expiry, no downgrade')
    .argument('<bundle>', 'bundle folder')
    .option('--at <time>', 'check expiry as of this ISO 8601 time instead of now')
    .action((bundle: string, opts: { publicKey: string; allowDowngrade?: boolean; stateDir?: string; at?: string }) => {
      const started = process.hrtime.bigint();
      const v = verifyBundle(bundle, opts.publicKey, toVerifyOptions(opts));
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      console.log(`verified ${bundle}: release ${v.release.version} of customer ${v.release.customerId}'s plane, ${v.files} files, signed by ${v.publicKeyFingerprint}, expires ${v.release.expiresAt} (${ms.toFixed(0)} ms)`);
    });

  cli.command('diff')
    .description('what changed between two bundles, offline: resources (root and nested stacks), IAM statements, security-group rules, image digests, the contract')
    .argument('<old>', 'the bundle folder deployed now (or the earlier release)')
    .argument('<new>', 'the bundle folder to compare with it')
    .option('--public-key <file>', 'verify both bundles against this public key first (signature, every file, expiry; the downgrade memory is left alone)')
    .option('--json', 'print the differences as JSON on stdout (the summary line goes to stderr)')
    .action((oldDir: string, newDir: string, opts: { publicKey?: string; json?: boolean }) => {
      const d = diffBundles(oldDir, newDir, { publicKeyFile: opts.publicKey });
      if (opts.json) {
        console.log(JSON.stringify(d, undefined, 2));
        console.error(diffSummary(d));
      } else {
        console.log(formatDiff(d));
        console.log(diffSummary(d));
      }
    });

  cli.command('nats-config')
    .description('write the leaf node configuration the customer plane deploys for a customer (same generator); the hub\'s nodes get theirs from the control plane')
    .requiredOption('--customer <id>', 'customer identifier')
    .requiredOption('--out <dir>', 'folder to write leaf.conf to')
    .option('--no-share-learning', 'the customer opted out of sharing fingerprints')
    .option('--hub <host:port>', 'the vendor hub the leaf dials (its certificate\'s name and leaf-node port)', 'hub.byoc.vendor.example:7422')
    .option('--leaf-port <port>', 'client port of the leaf', '4222')
    .option('--store-dir <dir>', 'JetStream store of the leaf', '/data/jetstream')
    .option('--hub-ca-file <file>', 'the vendor CA the leaf verifies the hub with (never the system roots)', '/tmp/hub-ca.pem')
    .option('--hub-credentials-file <file>', 'the leaf\'s .creds on the hub, issued by the vendor', '/tmp/hub.creds')
    .option('--contract <file>', 'the vendor\'s own boundary contract (JSON, as config/boundary-contract.json; default: the kit\'s)')
    .action((opts: { customer: string; out: string; shareLearning: boolean; hub: string; leafPort: string; storeDir: string; hubCaFile: string; hubCredentialsFile: string; contract?: string }) => {
      if (!CUSTOMER_ID.test(opts.customer)) throw new BundleError('bad-customer', `customer "${opts.customer}" is not a valid identifier`);
      const port = (name: string, v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 65535) throw new BundleError('bad-port', `${name} ${v} is not a port`);
        return n;
      };
      const [host, hubPort] = opts.hub.split(/:(?=\d+$)/);
      if (!host || hubPort === undefined) throw new BundleError('bad-hub', `--hub ${opts.hub} is not host:port`);
      fs.mkdirSync(opts.out, { recursive: true });
      const contract = opts.contract === undefined ? BOUNDARY_CONTRACT : loadContractFile(opts.contract);
      const settings = { customerId: opts.customer, shareLearning: opts.shareLearning, contract };
      const agents = agentIdentities(AGENT_CATALOG, settings);
      fs.writeFileSync(path.join(opts.out, 'leaf.conf'), leafConfig({ ...settings, agents, listen: { host: '0.0.0.0', port: port('--leaf-port', opts.leafPort) }, storeDir: opts.storeDir,
        hubCaFile: opts.hubCaFile, hub: { host, port: port('--hub', hubPort) }, hubCredentialsFile: opts.hubCredentialsFile }));
      const vars = secretVariables(opts.customer);
      console.log(`leaf needs: ${vars.gatewayLocal}, ${vars.gatewayRemote}, ${vars.provisioner}, ${vars.backlogReporter} and ${vars.agent('<agent>')} per agent, the vendor CA at ${opts.hubCaFile} and the .creds at ${opts.hubCredentialsFile}; the vendor creates the ${HUB_INGEST_STREAM} stream in the customer's vendor account (subjects byoc.${opts.customer}.out.>)`);
      console.log(`wrote ${path.join(opts.out, 'leaf.conf')}: the leaf configuration of customer ${opts.customer} (contract ${contractHash(contract).slice(0, 12)}, ${agents.length} agents, learning ${opts.shareLearning ? 'shared' : 'not shared'})`);
    });

  cli.command('audit')
    .description('the boundary audit log')
    .command('verify')
    .description('verify an audit log offline: the hash chain, every signed head, and the heads anchored in the gateway\'s log group')
    .argument('<log>', 'audit log file (JSON lines)')
    // Required: a log whose signatures are not checked proves nothing (anyone can rebuild a chain of hashes).
    .requiredOption('--public-key <file>', 'the audit signing key\'s public key (PEM; `byoc pubkey --key <kms arn>` exports it)')
    .option('--anchor-file <file>', 'heads exported from the gateway\'s log group (JSON lines, or the output of aws logs filter-log-events)')
    .option('--anchor-log-group <name>', 'read the anchored heads from this CloudWatch Logs group (AWS credentials and region from the environment)')
    .option('--accept-unsigned-tail', 'accept records after the last signed head (a log still being written) if that head is recent: signed at most twice --head-seconds ago')
    .addOption(new Option('--head-seconds <seconds>', 'how often the gateway signs a head while records are added (its BYOC_AUDIT_HEAD_SECONDS)').default(60).argParser(Number))
    .option('--at <time>', 'measure how recent the last head is as of this ISO 8601 time instead of now')
    .action(async (file: string, opts: { publicKey: string; anchorFile?: string; anchorLogGroup?: string; acceptUnsignedTail?: boolean; headSeconds: number; at?: string }) => {
      if (!(opts.headSeconds > 0)) throw new BundleError('bad-head-seconds', `--head-seconds ${opts.headSeconds} is not a positive number of seconds`);
      const anchorHeads: AuditHead[] = [];
      if (opts.anchorFile) anchorHeads.push(...readAnchorFile(opts.anchorFile));
      if (opts.anchorLogGroup) anchorHeads.push(...await fetchAnchorHeads({ logGroupName: opts.anchorLogGroup }));
      const anchored = opts.anchorFile !== undefined || opts.anchorLogGroup !== undefined;
      if (anchored && anchorHeads.length === 0) throw new AuditLogError(0, `no audit head found in ${[opts.anchorFile, opts.anchorLogGroup].filter(Boolean).join(' or ')}: the anchor cannot show truncation`);
      const v = verifyAuditLog(file, {
        publicKeyPem: loadPublicKey(opts.publicKey).pem, anchorHeads, acceptUnsignedTail: opts.acceptUnsignedTail,
        unsignedTailWindowMs: 2000 * opts.headSeconds, now: opts.at ? parseDate(opts.at) : undefined,
      });
      const o = v.outcomes;
      console.log([
        `verified ${file}: ${v.records} records to record ${v.lastSeq}, ${v.heads} signed heads`,
        `${v.intents} intents (${o.delivered} delivered, ${o.unconfirmed} unconfirmed, ${o.failed} failed, ${o.unknown} unknown, ${v.openIntents} open), ${v.rejections} rejections, ${v.notes} notes`,
        anchored ? `${v.anchoredHeadsChecked} anchored heads match` : 'no anchor given (--anchor-file, --anchor-log-group): a log cut at a signed head would not show',
        ...(v.unsignedTail ? [`${v.unsignedTail} records after the last signed head (accepted)`] : []),
        ...(v.incompleteTailBytes ? [`an incomplete last line of ${v.incompleteTailBytes} bytes (accepted)`] : []),
      ].join('; '));
    });

  for (const action of ['deploy', 'destroy'] as const) {
    const example = action === 'deploy' ? '-- --require-approval never' : '-- --force';
    verifyOptions(cli.command(action))
      .description(action === 'deploy'
        ? 'verify a bundle, then run cdk deploy on that exact copy (never re-synthesizes)'
        : 'verify a bundle, lift the database\'s deletion protection, then run cdk destroy on that exact copy; needs -- --force (cdk destroy\'s, so nothing stops at a prompt halfway)')
      .argument('<bundle>', 'bundle folder')
      .argument('[cdk-args...]', `arguments passed to cdk ${action} after --, e.g. ${example}`)
      .option('--dry-run', 'verify, then print the commands instead of running them')
      .action((bundle: string, cdkArgs: string[], opts: { publicKey: string; allowDowngrade?: boolean; stateDir?: string; dryRun?: boolean }) => {
        if (action === 'destroy') checkDestroyArgs(cdkArgs);
        // Verify a private copy and deploy that copy: the bundle cannot change between the two.
        const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-bundle-'));
        try {
          fs.cpSync(bundle, copy, { recursive: true, verbatimSymlinks: true });
          const v = verifyBundle(copy, opts.publicKey, toVerifyOptions(opts));
          const what = `release ${v.release.version} of customer ${v.release.customerId}'s plane (${v.files} files, signed by ${v.publicKeyFingerprint})`;
          console.log(`verified ${what}`);
          const cdk = require.resolve('aws-cdk/bin/cdk');
          const args = [cdk, action, '--app', copy, ...cdkArgs];
          // The database is deletion-protected (what Control Tower's CT.RDS.PR.13 requires of the signed
          // templates); destroying the plane lifts that first, on the instance the verified templates name.
          const databases = action === 'destroy' ? protectedDatabases(copy) : [];
          const unprotect = databases.flatMap((id) => [
            ['aws', 'rds', 'modify-db-instance', '--db-instance-identifier', id, '--no-deletion-protection', '--apply-immediately'],
            ['aws', 'rds', 'wait', 'db-instance-available', '--db-instance-identifier', id],
          ]);
          if (opts.dryRun) {
            for (const c of unprotect) console.log(`would run: ${c.join(' ')}`);
            console.log(`would run: cdk ${args.slice(1).join(' ')}`);
            console.log(`dry run: verified ${bundle}, ${what}; ran nothing`);
            return;
          }
          for (const c of unprotect) {
            const r = spawnSync(c[0], c.slice(1), { stdio: 'inherit' });
            if (r.error || r.status !== 0) throw new BundleError('unprotect-failed', `${c.slice(0, 3).join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): lift the database's deletion protection with: ${unprotect[0].join(' ')}`);
          }
          const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
          if (run.status !== 0) throw new BundleError('cdk-failed', `cdk ${action} exited with ${run.status ?? run.signal}${databases.length ? ` (deletion protection already lifted on ${databases.join(', ')})` : ''}`);
          const ran = ['cdk', action, ...cdkArgs].join(' ');
          console.log(action === 'deploy'
            ? `deployed ${what}: ${ran} on a verified copy of ${bundle}`
            : `destroyed the plane of ${what}: ${databases.length ? `deletion protection lifted on ${databases.join(', ')}, then ` : ''}${ran} on a verified copy of ${bundle}`);
        } finally {
          fs.rmSync(copy, { recursive: true, force: true });
        }
      });
  }

  registerCustomerCommands(cli);
  registerReleaseCommands(cli);
  registerReviewCommand(cli);
  registerCostCommand(cli);
  oneLineUsageErrors(cli);
  return cli;
}

/**
 * `byoc destroy` runs only with cdk destroy's `--force`: it lifts the database's deletion protection first,
 * so a prompt (or, without a terminal, cdk's refusal) after that would leave the plane half-way.
 */
function checkDestroyArgs(cdkArgs: string[]): void {
  if (cdkArgs.some((a) => a === '--require-approval' || a.startsWith('--require-approval='))) {
    throw new BundleError('bad-cdk-args', 'cdk destroy has no --require-approval (that is cdk deploy\'s); destroy without a prompt with: byoc destroy BUNDLE --public-key KEY -- --force');
  }
  if (!cdkArgs.some((a) => a === '--force' || a === '-f')) {
    throw new BundleError('force-required', 'destroy deletes the plane (lifting the database\'s deletion protection first) and runs only without a prompt: pass cdk destroy\'s --force after --, as in byoc destroy BUNDLE --public-key KEY -- --force');
  }
}

/** Usage errors of every command as one line, `byoc: <problem> (byoc <command> --help shows the usage)`. */
function oneLineUsageErrors(command: Command, names: string[] = []): void {
  const name = ['byoc', ...names].join(' ');
  command.configureOutput({
    outputError: (str, write) => write(`byoc: ${str.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (${name} --help shows the usage)\n`),
  });
  for (const sub of command.commands) oneLineUsageErrors(sub, [...names, sub.name()]);
}

/** DB instance identifiers with deletion protection in an assembly's templates (root and nested). */
function protectedDatabases(assembly: string): string[] {
  const ids: string[] = [];
  for (const file of fs.readdirSync(assembly).filter((f) => f.endsWith('.template.json'))) {
    const template = JSON.parse(fs.readFileSync(path.join(assembly, file), 'utf8')) as { Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
    for (const r of Object.values(template.Resources ?? {})) {
      const p = r.Properties ?? {};
      if (r.Type === 'AWS::RDS::DBInstance' && p.DeletionProtection === true && typeof p.DBInstanceIdentifier === 'string') ids.push(p.DBInstanceIdentifier);
    }
  }
  return ids;
}

function parseDate(value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new BundleError('bad-date', `"${value}" is not an ISO 8601 time`);
  return d;
}

function readPackageVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')).version;
}

/** An error as one line: its message (an AggregateError's inner messages), never a stack trace. */
export function errorLine(e: unknown): string {
  const text = (x: unknown): string => {
    if (x instanceof AggregateError && !x.message) return x.errors.map(text).join('; ');
    if (x instanceof Error) return x.message || x.name;
    return String(x);
  };
  return `byoc: ${text(e).trim().replace(/\s*\n\s*/g, ' ') || 'failed without a reason'}`;
}

/** Runs the CLI; resolves to the exit code. Errors print one line: `byoc: <reason>`. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    // Commander has printed its own (one-line) message for a usage error, and the version or help.
    if (e instanceof CommanderError) return e.exitCode;
    console.error(errorLine(e));
    return 1;
  }
}

if (require.main === module) {
  // The SDK's notice that its releases after January 2027 need Node.js 22 is not about this run (the kit pins its SDK).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const fail = (e: unknown) => { console.error(errorLine(e)); process.exit(1); };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
