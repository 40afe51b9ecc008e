/**
 * The end-to-end run: the vendor's control plane and one customer's plane, each from its own synthesized
 * templates, on this machine, inside the rehearsal's namespaces. What the vendor does, it does with its own
 * tools: the hub nodes start as the control plane's task definitions start them; `byoc customer add`
 * registers the customer on them and writes its plane configuration; that configuration is synthesized,
 * `byoc sign`ed with a KMS key and `byoc verify`ed with its public key. The customer's plane then runs from the
 * verified bundle (`rehearse`): its leaf links to the vendor's hub with the `.creds` the registration issued,
 * each outbound kind crosses, and `byoc customer revoke` cuts the link while the plane runs.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { INGEST_BUNDLE, INGEST_ENV, IngestTables, TABLE_ENV } from '../control-plane/ingest/settings';
import { createIngestTables } from '../control-plane/ingest/store';
import { credsAuthenticator, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { CUSTOMER_PLANE_STACK } from '../bin/customer-plane';
import { CONTROL_PLANE_STACK } from '../bin/control-plane';
import { loadControlPlaneConfig } from '../control-plane/config';
import { HUB_PORTS } from '../control-plane/hub-config';
import { ControlPlaneStack } from '../control-plane/stack';
import { loadCustomerPlaneConfig } from '../customer-plane/config';
import { CustomerPlaneStack } from '../customer-plane/stack';
import { createApp, projectRoot } from '../lib/app';
import { BUNDLE_FORMAT } from '../lib/bundle';
import { customerSecretNames, CustomerRecord, formatJson } from '../lib/customers';
import { operatorInit, vendorUser } from '../lib/nats-auth';
import { INBOX_PREFIX, vendorInboxPrefix } from '../lib/nats-config';
import { HubCluster, hubNodesOf, startHubCluster } from '../test/servers/hub-cluster';
import { MotoServer, startMoto } from '../test/servers/moto';
import { freePort, testCertificates } from '../test/servers/nats';
import { generatedPassword, rehearse, RehearsalCheck, RehearsalOptions, RehearsalReport, RehearsalVendor } from './rehearse';
import { RehearsalError } from './template';

export interface EndToEndOptions extends Pick<RehearsalOptions, 'images' | 'workDir' | 'graceSeconds' | 'allAgents' | 'log'> {
  /** The customer registered, and the AWS account its plane runs in (moto's). */
  readonly customerId: string;
  readonly account: string;
  readonly shareLearning: boolean;
  /** The images the release pins (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/byoc/...@sha256:...`), by ECR repository name. */
  readonly releaseImages: readonly string[];
}

/** One step of the vendor's, run as the vendor runs it: the built `byoc` CLI with the vendor account's AWS (moto). */
function byoc(env: Record<string, string>, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'byoc.js'), ...args], { env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

const getJson = (port: number, urlPath: string) => new Promise<any>((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path: urlPath }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
  }).on('error', reject);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The agent of the catalog that declares the inbound learning kind. */
const LEARNING_CONSUMER = 'pattern-miner';

/** The vendor's ingest service as its image runs it: the built bundle, configured by the environment. */
async function startIngest(env: Record<string, string>): Promise<{ running(): boolean; output(): string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'control-plane', INGEST_BUNDLE)], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const deadline = Date.now() + 20000;
  while (!/"msg":"ready"/.test(out)) {
    if (child.exitCode !== null) throw new RehearsalError(`the ingest service exited (${child.exitCode}): ${out.slice(-1500)}`);
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  return {
    running: () => child.exitCode === null,
    output: () => out,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

export async function endToEnd(o: EndToEndOptions): Promise<RehearsalReport> {
  const log = o.log ?? (() => undefined);
  const steps: RehearsalCheck[] = [];
  const step = (name: string, ok: boolean, detail: string) => {
    steps.push({ name, ok, detail });
    log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
    if (!ok) throw new RehearsalError(`${name}: ${detail}`);
  };
  const vendorDir = path.join(o.workDir, 'vendor');
  fs.mkdirSync(vendorDir, { recursive: true });
  const cleanup: Array<() => Promise<void>> = [];
  try {
    // The vendor's account: AWS through its own moto (another account than the customer's).
    const moto: MotoServer = await startMoto();
    cleanup.push(() => moto.stop());
    const aws = { region: moto.env.AWS_REGION, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const sm = new SecretsManagerClient(aws);
    const kms = new KMSClient(aws);

    // The vendor's configuration: the example's, with a fresh operator and a CA of this run's.
    const example = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8'));
    const host: string = example.hub.host;
    const operator = await operatorInit('byoc-end-to-end');
    const tls = testCertificates(vendorDir, `DNS:localhost,DNS:${host},DNS:*.${host}`);
    example.hub.operatorJwt = operator.operator.jwt;
    example.hub.systemAccountPublicKey = operator.systemAccount.publicKey;
    example.hub.systemAccountJwt = operator.systemAccount.jwt;
    example.hub.tls.caCertificateFile = tls.ca;
    const vendorConfig = path.join(vendorDir, 'vendor.json');
    fs.writeFileSync(vendorConfig, formatJson(example));

    // The control plane as synthesized from it; its hub nodes started as their task definitions start them.
    const controlAssembly = path.join(vendorDir, 'control-plane.out');
    const controlApp = createApp({ outdir: controlAssembly, compliancePacks: false });
    new ControlPlaneStack(controlApp, CONTROL_PLANE_STACK, loadControlPlaneConfig(vendorConfig));
    controlApp.synth();
    const controlTemplate = JSON.parse(fs.readFileSync(path.join(controlAssembly, `${CONTROL_PLANE_STACK}.template.json`), 'utf8'));
    const nodes = hubNodesOf(controlTemplate);
    // The route password as Secrets Manager generates it from the template's GenerateSecretString (a value nats-server
    // cannot parse would stop the nodes here, as on the first deploy).
    const routeSecret = Object.values<any>(controlTemplate.Resources).find((r) => r.Type === 'AWS::SecretsManager::Secret' && r.Properties.Name === 'byoc/hub/route-password');
    if (!routeSecret?.Properties.GenerateSecretString) throw new RehearsalError('the control plane has no generated route password secret byoc/hub/route-password');
    const routePassword = await generatedPassword(sm, routeSecret.Properties.GenerateSecretString);
    const hub: HubCluster = await startHubCluster({
      nodes, host, dir: vendorDir, leafPorts: { 0: HUB_PORTS.leafnode },
      secrets: { cert: fs.readFileSync(tls.cert, 'utf8'), key: fs.readFileSync(tls.key, 'utf8'), ca: fs.readFileSync(tls.ca, 'utf8'), routePassword },
    });
    cleanup.push(() => hub.stop());
    step('vendor hub', true, `${nodes.length} nodes from the control plane's synthesized task definitions (command and generated configuration), a JetStream metadata leader elected; node 0 serves the leaf-node port ${HUB_PORTS.leafnode}`);

    // What the deploy left for the operator: the seed secret filled, the stack's outputs, the system user's .creds, the release's images.
    const seedSecret = await sm.send(new CreateSecretCommand({ Name: 'byoc/hub/operator-signing-seed', SecretString: operator.operator.seed }));
    const outputs = path.join(vendorDir, 'outputs.json');
    fs.writeFileSync(outputs, JSON.stringify({ [CONTROL_PLANE_STACK]: { HubEndpointServiceName: `com.amazonaws.vpce.${moto.env.AWS_REGION}.vpce-svc-0e2e0e2e0e2e0e2e0`, OperatorSigningSeedSecretArn: seedSecret.ARN, HubUrl: `tls://${host}:${HUB_PORTS.leafnode}` } }));
    const release = path.join(vendorDir, 'byoc-release.json');
    fs.writeFileSync(release, JSON.stringify({ format: BUNDLE_FORMAT, version: '1.0.0', images: [...o.releaseImages].sort() }));
    const systemCreds = path.join(vendorDir, 'system.creds');
    fs.writeFileSync(systemCreds, operator.systemUser.creds, { mode: 0o600 });
    const hubUrl = `tls://localhost:${hub.ports[0].client}`;

    // 1. byoc customer add: the accounts issued and pushed to the running hub, the plane's configuration written.
    const customers = path.join(vendorDir, 'customers');
    const added = await byoc(moto.env, ['customer', 'add', '--customer', o.customerId, '--account', o.account, '--share-learning', String(o.shareLearning),
      '--vendor-config', vendorConfig, '--out', customers, '--control-plane-outputs', outputs, '--release', release, '--hub-url', hubUrl, '--system-creds', systemCreds]);
    step('customer add', added.code === 0, added.code === 0 ? added.output.trim().split('\n').pop()! : `exit ${added.code}: ${added.output.slice(-1500)}`);
    const planeConfig = path.join(customers, `${o.customerId}.json`);
    const record = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: customerSecretNames(o.customerId).account }))).SecretString!) as CustomerRecord;

    // 2. The customer's plane synthesized from the configuration add wrote (no edit), then signed and verified.
    const props = loadCustomerPlaneConfig(planeConfig);
    const planeAssembly = path.join(vendorDir, 'customer-plane.out');
    const planeApp = createApp({ outdir: planeAssembly, compliancePacks: false });
    new CustomerPlaneStack(planeApp, CUSTOMER_PLANE_STACK, props);
    planeApp.synth();
    const signingKey = (await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'bundle signing key (end-to-end)' }))).KeyMetadata!.Arn!;
    const bundle = path.join(vendorDir, 'bundle');
    const signed = await byoc(moto.env, ['sign', planeAssembly, '--key', signingKey, '--out', bundle, '--version', '1.0.0', '--hub-endpoint', props.vendorHub.endpointService ?? `tls://${host}:${HUB_PORTS.leafnode}`]);
    step('sign', signed.code === 0, signed.code === 0 ? signed.output.trim().split('\n').pop()! : `exit ${signed.code}: ${signed.output.slice(-1500)}`);
    const publicKey = path.join(vendorDir, 'vendor-public.pem');
    const exported = await byoc(moto.env, ['pubkey', '--key', signingKey, '--out', publicKey]);
    step('pubkey', exported.code === 0, exported.code === 0 ? `the signing key's public key exported to the customer's pin` : `exit ${exported.code}: ${exported.output.slice(-1500)}`);
    const verified = await byoc({ BYOC_STATE_DIR: path.join(o.workDir, 'customer-state') }, ['verify', bundle, '--public-key', publicKey]);
    step('verify', verified.code === 0, verified.code === 0 ? verified.output.trim().split('\n').pop()! : `exit ${verified.code}: ${verified.output.slice(-1500)}`);

    // 3. The customer's plane from the verified bundle, linked to the vendor's hub.
    const leafLinks = async () => {
      let n = 0;
      for (const p of hub.ports) {
        const leafz = await getJson(p.monitoring, '/leafz').catch(() => ({ leafs: [] }));
        n += (leafz.leafs ?? []).filter((l: any) => l.account === record.customerAccount.publicKey).length;
      }
      return n;
    };
    const connections: NatsConnection[] = [];
    const vendorSide: RehearsalVendor = {
      description: `Vendor side: the control plane's ${nodes.length} hub nodes from its synthesized task definitions on Debian's nats-server, the customer registered by byoc customer add (its own moto as the vendor's account), the bundle signed by byoc sign with a KMS key and verified by byoc verify`,
      leafCredentials: async () => (await sm.send(new GetSecretValueCommand({ SecretId: customerSecretNames(o.customerId).leafCreds }))).SecretString!,
      vendorConnection: async () => {
        const user = await vendorUser({ customerId: o.customerId, vendor: { publicKey: record.vendorAccount.publicKey, serviceSigningKey: { seed: record.keys.vendor.serviceSigningKeySeed } } } as any);
        const nc = await connect({ servers: hubUrl, tls: { caFile: tls.ca }, authenticator: credsAuthenticator(new TextEncoder().encode(user.creds)), inboxPrefix: vendorInboxPrefix(o.customerId), maxReconnectAttempts: 0 });
        connections.push(nc);
        return nc;
      },
      leafLinks,
      whilePlaneRuns: async ({ check, leafRunning, auditPublicKeyPem, asAgent }) => {
        // 4. The customer hands over its audit key's public key; the vendor registers it (add again: idempotent).
        const auditKeyFile = path.join(vendorDir, 'customer-audit-public.pem');
        fs.writeFileSync(auditKeyFile, auditPublicKeyPem);
        const registered = await byoc(moto.env, ['customer', 'add', '--customer', o.customerId, '--account', o.account, '--share-learning', String(o.shareLearning),
          '--vendor-config', vendorConfig, '--out', customers, '--control-plane-outputs', outputs, '--release', release, '--hub-url', hubUrl, '--system-creds', systemCreds,
          '--audit-public-key', auditKeyFile]);
        check('audit key registered', registered.code === 0, registered.code === 0 ? registered.output.trim().split('\n').pop()! : `exit ${registered.code}: ${registered.output.slice(-1500)}`);

        // 5. The vendor's ingest service (its built entry point, as its image runs it) consumes what crossed;
        //    its learning-pool publisher offers the pool back to the customer as the inbound learning kind.
        const learnings = await asAgent(LEARNING_CONSUMER);
        const learned: Buffer[] = [];
        learnings.subscribe(`${INBOX_PREFIX}.learning`, { callback: (e, m) => { if (!e) learned.push(Buffer.from(m.data)); } });
        await learnings.flush();
        const ddb = new DynamoDBClient(aws);
        const tables: IngestTables = { usage: 'byoc-usage', metrics: 'byoc-metrics', workflow: 'byoc-workflow', learningPool: 'byoc-learning-pool', rejections: 'byoc-rejections' };
        await createIngestTables(ddb, tables);
        const ingest = await startIngest({
          ...moto.env,
          [INGEST_ENV.hubUrls]: hubUrl,
          [INGEST_ENV.hubCa]: fs.readFileSync(tls.ca, 'utf8'),
          [INGEST_ENV.region]: moto.env.AWS_REGION,
          [INGEST_ENV.refreshSeconds]: '1',
          [INGEST_ENV.poolPublishSeconds]: '2',
          [INGEST_ENV.healthPort]: String(await freePort()),
          ...Object.fromEntries(Object.entries(TABLE_ENV).map(([role, variable]) => [variable, tables[role as keyof IngestTables]])),
        });
        cleanup.push(() => ingest.stop());
        const count = async (table: string) => (await ddb.send(new ScanCommand({ TableName: table, Select: 'COUNT', ConsistentRead: true }))).Count ?? 0;
        const stored: Record<string, number> = {};
        const deadline = Date.now() + 30000;
        for (;;) {
          for (const [kind, table] of [['usage', tables.usage], ['metrics', tables.metrics], ['workflow', tables.workflow], ['fingerprint', tables.learningPool]]) stored[kind] = await count(table);
          if (Object.values(stored).every((n) => n > 0) || Date.now() > deadline || !ingest.running()) break;
          await sleep(300);
        }
        const rejected = await count(tables.rejections);
        const allStored = Object.values(stored).every((n) => n > 0) && rejected === 0;
        check('ingest', allStored, allStored
          ? `the vendor's ingest service (dist/control-plane/byoc-ingest.js) consumed the customer's stream and stored each kind in DynamoDB (${Object.entries(stored).map(([k, n]) => `${k} ${n}`).join(', ')}), metrics verified against the registered audit key, 0 rejections`
          : `${ingest.running() ? '' : `ingest exited: ${ingest.output().slice(-800)}; `}stored ${JSON.stringify(stored)}, rejections ${rejected}`);
        const learnedOne = await (async () => {
          const until = Date.now() + 20000;
          while (learned.length === 0 && Date.now() < until) await sleep(200);
          return learned[0];
        })();
        const learning = learnedOne && JSON.parse(learnedOne.toString('utf8'));
        check('learning inbound', learning !== undefined && Array.isArray(learning.shape),
          learning ? `the learning pool came back to ${LEARNING_CONSUMER} on ${INBOX_PREFIX}.learning (${learnedOne!.length} bytes, pattern ${String(learning.patternHash).slice(0, 12)}, ${learning.succeeded} succeeded) through the hub, the leaf and the gateway`
            : 'no learning message reached the agent within 20 s');

        // 6. byoc customer revoke: the link is cut while the plane runs, and stays cut.
        const revoked = await byoc(moto.env, ['customer', 'revoke', '--customer', o.customerId, '--vendor-config', vendorConfig, '--hub-url', hubUrl, '--system-creds', systemCreds, '--reason', 'end-to-end run']);
        if (revoked.code !== 0) return check('customer revoke', false, `exit ${revoked.code}: ${revoked.output.slice(-1500)}`);
        const cutBy = Date.now() + 20000;
        while ((await leafLinks()) > 0 && Date.now() < cutBy) await sleep(200);
        const cut = (await leafLinks()) === 0;
        await sleep(3000);
        const stays = (await leafLinks()) === 0;
        check('customer revoke', cut && stays && leafRunning(), !cut ? 'the leaf is still linked 20 s after the revocation'
          : !stays ? 'the revoked leaf linked again' : !leafRunning() ? 'the leaf exited when cut off (ECS would restart it in a loop)'
            : 'the hub cut the leaf off without a restart and refuses its reconnections; the leaf stays up, unlinked');
      },
      stop: async () => {
        for (const nc of connections) await nc.close().catch(() => undefined);
      },
    };
    const report = await rehearse({
      assembly: bundle,
      stackName: CUSTOMER_PLANE_STACK,
      customerId: o.customerId,
      shareLearning: o.shareLearning,
      region: moto.env.AWS_REGION,
      hub: { host, port: HUB_PORTS.leafnode, certFile: tls.cert, keyFile: tls.key },
      images: o.images,
      workDir: path.join(o.workDir, 'customer'),
      graceSeconds: o.graceSeconds,
      allAgents: o.allAgents,
      bindHosts: true,
      log,
      vendor: async () => vendorSide,
    });
    return { ...report, checks: [...steps, ...report.checks], ok: report.ok };
  } catch (e) {
    if (!(e instanceof RehearsalError) || !steps.some((s) => !s.ok)) steps.push({ name: 'end-to-end', ok: false, detail: (e as Error).message });
    return { ok: false, started: [], skipped: [], substitutions: [], checks: steps };
  } finally {
    for (const f of cleanup.reverse()) await f().catch(() => undefined);
  }
}
