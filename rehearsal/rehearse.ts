/**
 * The rehearsal: runs the customer plane from its own synthesized templates on this machine, inside its own
 * network, mount and PID namespaces. Each ECS service the rehearsal can run starts as the process its task
 * definition describes (command, environment and secrets exactly as the template gives them, resolved the
 * way CloudFormation and ECS would), against real servers on loopback: a vendor hub from the same generator
 * the vendor uses, PostgreSQL, and `moto_server` holding the plane's KMS keys and secrets as CloudFormation
 * would create them. It then checks what ECS and a customer would: every process stays up, the link comes
 * up, a work item flows through an agent, each outbound kind crosses to the hub, the audit log verifies.
 */
import { execFileSync } from 'child_process';
import { createHash, randomBytes, verify as cryptoVerify } from 'crypto';
import * as http from 'http';
import * as fs from 'fs';
import * as path from 'path';
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateSecretCommand, GetRandomPasswordCommand, GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Msg, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { AGENT_CATALOG, AgentTrigger } from '../agents/catalog';
import { RESULT_PREFIX } from '../agents/runtime/reference-agent';
import { verifyAuditLog } from '../lib/audit-log';
import { BOUNDARY_CONTRACT, Direction, MessageKind, subjectOf } from '../lib/boundary-contract';
import { canonicalBytes, signedBody } from '../lib/contract-validator';
import { inboxPrefix, LEAF_USERS, OUTBOX_PREFIX, processedBucketOf, durableOf, WORK_STREAM, secretVariables, crossingKinds } from '../lib/nats-config';
import { startOperatorHub } from '../test/servers/operator-hub';
import { startMoto } from '../test/servers/moto';
import { listening } from '../test/servers/nats';
import { startPostgres } from '../test/servers/postgres';
import { EC2Client } from '@aws-sdk/client-ec2';
import { Client } from 'pg';
import { createHandler } from '../lib/deploy-time/handler';
import { DATABASE_ROLES } from '../lib/deploy-time/protocol';
import { dbUserOf } from '../lib/database-roles';
import { testCertificates } from '../test/servers/nats';
import { startRedisTls } from '../test/servers/redis';
import Redis from 'ioredis';
import { ContainerSpec, LocalImage, RunningContainer, startContainer } from './sandbox';
import { loadAssembly, nameValues, RehearsalError, StackTemplate } from './template';

/** moto's account: ARNs the template builds from `AWS::AccountId` then match the ones moto returns. */
const ACCOUNT = '123456789012';

export interface RehearsalOptions {
  /** The cloud assembly with the customer plane (root and nested templates). */
  readonly assembly: string;
  readonly stackName: string;
  readonly customerId: string;
  readonly shareLearning: boolean;
  readonly region: string;
  /** The vendor hub as the plane's configuration names it, and the certificate the rehearsal's hub serves for it. */
  readonly hub: { readonly host: string; readonly port: number; readonly certFile: string; readonly keyFile: string };
  /** Local stand-ins for the images, by ECR repository name (`byoc/agent-runtime`). */
  readonly images: Record<string, LocalImage>;
  /** Folder for the containers' layers, volumes and logs (removed by the caller). */
  readonly workDir: string;
  /** Seconds each process must stay up (ECS's health-check grace period): a crash on start fails the rehearsal. */
  readonly graceSeconds: number;
  /** Start every agent, not one of each trigger. */
  readonly allAgents?: boolean;
  /** Bind-mount the plane's names over /etc/hosts for this process (only inside the rehearsal's own mount namespace). */
  readonly bindHosts?: boolean;
  readonly log?: (line: string) => void;
  /**
   * The vendor side, started inside the rehearsal's namespaces with the customer already registered.
   * @default - an operator-mode hub on loopback (`test/servers/operator-hub.ts`) serving `hub`'s certificate
   */
  readonly vendor?: () => Promise<RehearsalVendor>;
}

/** What the rehearsal needs of the vendor: the customer's leaf credentials, its service user, the hub's view of the link. */
export interface RehearsalVendor {
  /** What stands in for the vendor, for the report's substitutions. */
  readonly description: string;
  /** The leaf's `.creds` as the vendor handed them over. */
  leafCredentials(): Promise<string>;
  /** A connection as the customer's vendor service user (sees each outbound kind as the vendor's services do). */
  vendorConnection(): Promise<NatsConnection>;
  /** Leaf-node connections of the customer on the hub. */
  leafLinks(): Promise<number>;
  /** Checks of the vendor's own, once every outbound kind has crossed, with the plane still running. */
  whilePlaneRuns?(ctx: {
    check: (name: string, ok: boolean, detail: string) => void;
    sent: readonly string[];
    leafRunning: () => boolean;
    /** The plane's audit key's public key (PEM): what the customer registers with the vendor for signed metrics. */
    auditPublicKeyPem: string;
    /** A connection to the leaf as an agent of the plane, with its own identity. */
    asAgent: (name: string) => Promise<NatsConnection>;
  }): Promise<void>;
  stop(): Promise<void>;
}

/** The default vendor side: an operator-mode hub on loopback, the customer registered on it. */
async function operatorHubVendor(o: RehearsalOptions): Promise<RehearsalVendor> {
  const certsDir = path.dirname(o.hub.certFile);
  const hub = await startOperatorHub({ certificates: { dir: certsDir, ca: path.join(certsDir, 'ca.pem'), cert: o.hub.certFile, key: o.hub.keyFile }, leafPort: o.hub.port });
  try {
    await hub.addCustomer({ customerId: o.customerId, shareLearning: o.shareLearning });
  } catch (e) {
    await hub.stop();
    throw e;
  }
  return {
    description: `Vendor hub: nats-server from Debian (${hubVersion()}) in operator mode (hubJwtConfig and hubAuthConfig, as the control plane configures its nodes), the customer's accounts pushed to it, its certificate for ${o.hub.host} issued by a rehearsal CA that the rehearsal's plane pins (vendorHub.caCertificatePem)`,
    leafCredentials: async () => (await hub.leafCredentials(o.customerId)).creds,
    vendorConnection: () => hub.vendor(o.customerId),
    leafLinks: async () => (await hub.leafConnections()).length,
    stop: () => hub.stop(),
  };
}

export interface RehearsalCheck { readonly name: string; readonly ok: boolean; readonly detail: string }

export interface RehearsalReport {
  readonly ok: boolean;
  readonly started: Array<{ service: string; image: string; argv: readonly string[]; exit?: number | string }>;
  readonly skipped: Array<{ what: string; why: string }>;
  readonly substitutions: string[];
  readonly checks: RehearsalCheck[];
}

interface ServiceDef {
  readonly logicalId: string;
  readonly stack: StackTemplate;
  readonly service: any;
  readonly container: any;
  readonly taskDefinition: any;
  readonly family: string;
  /** The agent the service runs, if it runs one. */
  readonly agent?: string;
}

/** A valid message of each outbound kind, as an agent would hand it to the gateway (gateway-signed fields left out). */
const SAMPLES: Record<string, (agent: string) => Record<string, unknown>> = {
  workflow: (agent) => ({ workflowId: '01JREHEARSA1000000000000AB', stepId: 1, agent, status: 'succeeded', statusCode: 200, startedAt: Date.now() - 1000, durationMs: 1000 }),
  metrics: (agent) => ({ windowStart: Date.now() - 60000, windowEnd: Date.now(), points: [{ metric: 'agent.requests', agent, value: 1 }] }),
  fingerprint: (agent) => ({ patternHash: createHash('sha256').update('rehearsal').digest('hex'), shape: [agent], occurrences: 1, outcome: 'succeeded' }),
  usage: (agent) => ({ periodStart: Date.now() - 300000, periodEnd: Date.now(), agent, invocations: 1, computeSeconds: 1, llmTokensIn: 0, llmTokensOut: 0 }),
};

/** A container exited while the rehearsal waited for it: no point waiting longer. */
class Exited extends RehearsalError {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function eventually<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (e instanceof Exited) throw e;
      last = e;
    }
    if (Date.now() > deadline) throw new RehearsalError(`${what}: not within ${ms / 1000} s${last ? ` (${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

export async function rehearse(o: RehearsalOptions): Promise<RehearsalReport> {
  const log = o.log ?? (() => undefined);
  const checks: RehearsalCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  };
  const skipped: RehearsalReport['skipped'] = [];
  const substitutions: string[] = [];
  const started: RehearsalReport['started'] = [];
  const containers: RunningContainer[] = [];
  const connections: NatsConnection[] = [];
  const cleanup: Array<() => Promise<void>> = [];
  const logsDir = path.join(o.workDir, 'logs');
  fs.mkdirSync(logsDir, { recursive: true });

  try {
    // AWS, as the plane's VPC endpoints would serve it: moto on loopback.
    const moto = await startMoto();
    cleanup.push(() => moto.stop());
    const awsEnv = { ...moto.env, AWS_REGION: o.region, AWS_DEFAULT_REGION: o.region };
    const aws = { region: o.region, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const kms = new KMSClient(aws);
    const sm = new SecretsManagerClient(aws);
    substitutions.push(`AWS APIs (Secrets Manager, KMS) through moto_server on loopback, given to each process as AWS_ENDPOINT_URL with test credentials, where the plane has its VPC endpoints and task roles (moto does not enforce IAM)`);

    const pg = await startPostgres();
    cleanup.push(() => pg.stop());
    substitutions.push(`RDS PostgreSQL: PostgreSQL from Debian on loopback port ${pg.port}`);

    // The plane's resources, "created": KMS keys and secrets in moto exactly as CloudFormation would
    // (generated placeholders included), other resources given physical IDs and the attributes services read.
    const root = loadAssembly(o.assembly, o.stackName, {
      'AWS::Region': o.region, 'AWS::AccountId': ACCOUNT, 'AWS::Partition': 'aws', 'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackName': o.stackName, 'AWS::NoValue': '',
    });
    const hosts = new Set<string>([o.hub.host]);
    const efsRoot = path.join(o.workDir, 'efs');
    const secretsCreated: string[] = [];
    const databases: Array<{ host: string; master: string; password: string; database: string }> = [];
    const create = async (t: StackTemplate) => {
      for (const [id, r] of t.ofType('AWS::KMS::Key')) {
        const p = r.Properties ?? {};
        const key = (await kms.send(new CreateKeyCommand({ Description: p.Description, KeySpec: p.KeySpec ?? 'SYMMETRIC_DEFAULT', KeyUsage: p.KeyUsage ?? 'ENCRYPT_DECRYPT' }))).KeyMetadata!;
        t.physical[id] = { ref: key.KeyId!, attributes: { Arn: key.Arn!, KeyId: key.KeyId! } };
      }
      for (const [id, r] of Object.entries(t.resources)) {
        if (t.physical[id]) continue;
        const type: string = r.Type;
        const p = r.Properties ?? {};
        if (type === 'AWS::SecretsManager::Secret') {
          const g = p.GenerateSecretString;
          let value: string | undefined = p.SecretString !== undefined ? String(t.resolve(p.SecretString)) : undefined;
          if (g) {
            const generated = await generatedPassword(sm, g);
            value = g.SecretStringTemplate ? JSON.stringify({ ...JSON.parse(g.SecretStringTemplate), [g.GenerateStringKey]: generated }) : generated;
          }
          const name = p.Name !== undefined ? String(t.resolve(p.Name)) : `${id}-${randomBytes(4).toString('hex')}`;
          const kmsKeyId = p.KmsKeyId !== undefined ? String(t.resolve(p.KmsKeyId)) : undefined;
          const arn = (await sm.send(new CreateSecretCommand({ Name: name, Description: p.Description, KmsKeyId: kmsKeyId, SecretString: value }))).ARN!;
          t.physical[id] = { ref: arn };
          secretsCreated.push(name);
        } else if (type === 'AWS::RDS::DBInstance') {
          const address = `${id.toLowerCase()}.rehearsal.${o.region}.rds.amazonaws.com`;
          hosts.add(address);
          // RDS manages the master password in its own secret (`{"username", "password"}`), as ManageMasterUserPassword asks.
          const password = (await sm.send(new GetRandomPasswordCommand({ PasswordLength: 32, ExcludeCharacters: '/@"\' \\' }))).RandomPassword!;
          const masterSecret = (await sm.send(new CreateSecretCommand({ Name: `rds!${id.toLowerCase()}`, SecretString: JSON.stringify({ username: p.MasterUsername, password }) }))).ARN!;
          databases.push({ host: address, master: p.MasterUsername, password, database: p.DBName });
          t.physical[id] = { ref: id.toLowerCase(), attributes: { 'Endpoint.Address': address, 'Endpoint.Port': String(pg.port), DbiResourceId: 'db-REHEARSAL', 'MasterUserSecret.SecretArn': masterSecret } };
        } else if (type === 'AWS::ElastiCache::ReplicationGroup') {
          const address = `master.${id.toLowerCase()}.rehearsal.${o.region}.cache.amazonaws.com`;
          hosts.add(address);
          t.physical[id] = { ref: id.toLowerCase(), attributes: { 'PrimaryEndPoint.Address': address, 'PrimaryEndPoint.Port': String(p.Port ?? 6379) } };
        } else if (type === 'AWS::ServiceDiscovery::PrivateDnsNamespace') {
          t.physical[id] = { ref: `ns-${id}`, attributes: { Id: `ns-${id}`, Name: p.Name } };
        } else if (type === 'AWS::Route53::HostedZone') {
          hosts.add(String(p.Name).replace(/\.$/, ''));
          t.physical[id] = { ref: `Z${id}` };
        } else {
          t.physical[id] = { ref: `${id}-rehearsal` };
        }
      }
      for (const [id, r] of t.ofType('AWS::CloudFormation::Stack')) {
        const child = t.nested[id];
        child.bindParameters(t.resolve(r.Properties?.Parameters ?? {}));
        await create(child);
      }
    };
    await create(root);
    // Cloud Map names: the services ECS registers.
    for (const t of root.all()) {
      for (const [, r] of t.ofType('AWS::ServiceDiscovery::Service')) {
        const nsId = r.Properties.NamespaceId?.['Fn::GetAtt']?.[0] ?? r.Properties.DnsConfig?.NamespaceId?.['Fn::GetAtt']?.[0];
        const ns = nsId && t.resources[nsId];
        if (ns) hosts.add(`${r.Properties.Name}.${ns.Properties.Name}`);
      }
    }
    log(`created ${secretsCreated.length} secrets and ${[...root.all()].reduce((n, t) => n + t.ofType('AWS::KMS::Key').length, 0)} KMS keys in moto`);
    substitutions.push(`DNS: ${[...hosts].sort().join(', ')} resolve to loopback in every container's /etc/hosts (Cloud Map, the private hosted zone, the RDS and ElastiCache endpoints)`);

    // This process resolves the plane's names as its containers do (its own mount namespace: the machine's file is untouched).
    if (o.bindHosts) {
      const hostsFile = path.join(o.workDir, 'hosts');
      fs.writeFileSync(hostsFile, ['127.0.0.1 localhost', ...[...hosts].map((h) => `127.0.0.1 ${h}`)].join('\n') + '\n');
      execFileSync('mount', ['--bind', hostsFile, '/etc/hosts']);
    }
    // The database as RDS creates it (TLS, the master user, rds_iam, the plane's database), then the plane's
    // deploy-time function creates the agents' roles from the template's Custom::DatabaseRoles, as CloudFormation
    // would invoke it.
    const databaseCa = await checkDatabaseRoles(root, databases, pg.port, o.workDir, aws, sm, check, substitutions);

    // ElastiCache's users, as the template defines them (access strings, passwords from their secrets), on a
    // real Redis over TLS: an access string Redis refuses would fail the deploy; each agent's user must reach
    // its own keys only, and the default user nothing.
    const cache = await checkRedisUsers(root, sm, check, cleanup, substitutions, o.workDir);
    // The agents open the stores they declared at start: they reach these servers, trusting their CAs.
    const REDIS_CA_IN_CONTAINER = '/run/rehearsal/redis-ca.pem';
    const storesEnv = (env: Record<string, string>): Record<string, string> => ({
      ...(env.PGHOST && databaseCa ? { PGPORT: String(pg.port) } : {}),
      ...(env.REDIS_HOST && cache ? { REDIS_PORT: String(cache.port), NODE_EXTRA_CA_CERTS: REDIS_CA_IN_CONTAINER } : {}),
    });
    const storesMounts = (env: Record<string, string>) => [
      ...(env.PGHOST && env.PGSSLROOTCERT && databaseCa ? [{ source: databaseCa, target: env.PGSSLROOTCERT, readOnly: true }] : []),
      ...(env.REDIS_HOST && cache ? [{ source: cache.ca, target: REDIS_CA_IN_CONTAINER, readOnly: true }] : []),
    ];
    substitutions.push('The agents\' stores: PGPORT and REDIS_PORT point at the loopback servers; the rehearsal CA is mounted over the image\'s RDS CA bundle (PGSSLROOTCERT), and added for the cache with NODE_EXTRA_CA_CERTS (ElastiCache\'s certificates chain to the system roots); PostgreSQL accepts the agents\' IAM tokens without checking them');

    // Services and their containers.
    const services: ServiceDef[] = [];
    for (const t of root.all()) {
      for (const [id, r] of t.ofType('AWS::ECS::Service')) {
        const tdId = r.Properties.TaskDefinition?.Ref;
        const td = t.resources[tdId];
        if (!td) throw new RehearsalError(`${t.file}: service ${id} has no task definition in its template`);
        const defs = td.Properties.ContainerDefinitions ?? [];
        if (defs.length !== 1) throw new RehearsalError(`${id}: ${defs.length} containers; the rehearsal runs one per task`);
        const env = nameValues(t.resolve(defs[0].Environment));
        services.push({ logicalId: id, stack: t, service: r, container: defs[0], taskDefinition: td, family: t.resolve(td.Properties.Family), agent: env.BYOC_AGENT });
      }
    }
    const bySuffix = (suffix: string) => {
      const s = services.find((x) => x.family.endsWith(`-${suffix}`));
      if (!s) throw new RehearsalError(`no ECS service ${suffix} in the plane`);
      return s;
    };
    const leaf = bySuffix('nats-leaf');
    const gateway = bySuffix('boundary-gateway');

    // What a container is given: its resolved environment and secrets (ECS reads each from Secrets Manager at start).
    const specOf = async (s: ServiceDef): Promise<ContainerSpec> => {
      const c = s.container;
      const image = String(s.stack.resolve(c.Image));
      const repo = /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/(.+)@sha256:[0-9a-f]{64}$/.exec(image)?.[1];
      if (!repo) throw new RehearsalError(`${s.family}: image ${image} is not an ECR image pinned by digest`);
      const local = o.images[repo];
      if (!local) throw new RehearsalError(`${s.family}: no local stand-in for ${repo}`);
      const env = nameValues(s.stack.resolve(c.Environment));
      for (const secret of (s.stack.resolve(c.Secrets ?? []) as Array<{ Name: string; ValueFrom: string }>)) {
        // `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key:version-stage:version-id]`
        const parts = secret.ValueFrom.split(':');
        const jsonKey = parts[7] || undefined;
        const value = (await sm.send(new GetSecretValueCommand({ SecretId: parts.slice(0, 7).join(':') }))).SecretString ?? '';
        env[secret.Name] = jsonKey ? JSON.parse(value)[jsonKey] : value;
      }
      const volumes: Record<string, any> = Object.fromEntries((s.stack.resolve(s.taskDefinition.Properties.Volumes ?? []) as any[]).map((v) => [v.Name, v]));
      const mounts = (c.MountPoints ?? []).map((m: any) => {
        const v = volumes[m.SourceVolume];
        if (!v) throw new RehearsalError(`${s.family}: mount point of unknown volume ${m.SourceVolume}`);
        let source: string;
        if (v.EFSVolumeConfiguration) {
          // The access point's root directory on the file system, created as EFS creates it (owner, mode).
          const apId = Object.entries(s.stack.physical).find(([, p]) => p.ref === v.EFSVolumeConfiguration.AuthorizationConfig?.AccessPointId)?.[0];
          const ap = apId && s.stack.resources[apId];
          if (!ap) throw new RehearsalError(`${s.family}: EFS volume without an access point of this stack`);
          const root = ap.Properties.RootDirectory;
          source = path.join(efsRoot, root.Path);
          if (!fs.existsSync(source)) {
            fs.mkdirSync(source, { recursive: true });
            fs.chownSync(source, Number(root.CreationInfo.OwnerUid), Number(root.CreationInfo.OwnerGid));
            fs.chmodSync(source, parseInt(root.CreationInfo.Permissions, 8));
          }
        } else {
          // A task scratch volume: empty at start, owned by root as Fargate gives it, writable by all.
          source = fs.mkdtempSync(path.join(o.workDir, `${s.family}-${v.Name}-`));
          fs.chmodSync(source, 0o1777);
        }
        return { source, target: m.ContainerPath, readOnly: m.ReadOnly === true };
      });
      return {
        name: s.family,
        image: local,
        entryPoint: c.EntryPoint,
        command: c.Command,
        env: { ...env, ...awsEnv, ...storesEnv(env) },
        user: c.User,
        readonlyRootFilesystem: c.ReadonlyRootFilesystem === true,
        mounts: [...mounts, ...storesMounts(env)],
        hosts: [...hosts],
      };
    };
    // What each service was last started with (a new task reads its secrets again: the leaf's second start sees the stored .creds).
    const specs = new Map<ServiceDef, ContainerSpec>();
    const run = async (s: ServiceDef) => {
      const spec = await specOf(s);
      specs.set(s, spec);
      const c = startContainer(spec, path.join(o.workDir, 'containers'));
      containers.push(c);
      started.push({ service: s.family, image: spec.image.description, argv: c.argv });
      log(`started ${s.family}: ${c.argv.join(' ').slice(0, 120)}`);
      return c;
    };
    const upOrFail = async (c: RunningContainer, what: string, probe: () => Promise<boolean | undefined> | boolean | undefined, ms = 20000) => {
      await eventually(`${c.name}: ${what}`, ms, async () => {
        if (!c.running()) throw new Exited(`${c.name} exited (${await c.exited}): ${c.output().slice(-1500)}`);
        return probe();
      });
    };

    // The vendor side the leaf dials: given (the end-to-end run: the control plane's own hub nodes and
    // registration), or an operator-mode hub on loopback with the customer registered as `byoc customer add` does.
    const vars = secretVariables(o.customerId);
    const vendorSide = o.vendor ? await o.vendor() : await operatorHubVendor(o);
    cleanup.push(() => vendorSide.stop());
    substitutions.push(vendorSide.description);
    const vendor = await vendorSide.vendorConnection();
    connections.push(vendor);
    const leafLinks = () => vendorSide.leafLinks();

    // First deploy: the leaf starts with the generated placeholder in place of the hub credentials. It must
    // stay up (the agents need it) and simply not link.
    const leafHubSecret = (leaf.stack.resolve(leaf.container.Secrets) as Array<{ Name: string; ValueFrom: string }>).find((x) => x.Name === vars.leafHubCredentials);
    if (!leafHubSecret) throw new RehearsalError(`the leaf's task definition does not read ${vars.leafHubCredentials}`);
    const clientPort = Number(leaf.container.PortMappings?.[0]?.ContainerPort ?? 4222);
    const firstLeaf = await run(leaf);
    await upOrFail(firstLeaf, 'NATS leaf listening on its container port (hub credentials not stored yet)', () => listening(clientPort));
    await sleep(1500);
    const unlinked = firstLeaf.running() && (await leafLinks()) === 0;
    check('leaf before credentials', unlinked, unlinked ? 'with the generated placeholder the leaf serves its clients and does not link (nats-server reports the credentials as malformed)'
      : `the leaf ${firstLeaf.running() ? 'linked without credentials' : `exited: ${firstLeaf.output().slice(-800)}`}`);
    await firstLeaf.stop(10000);
    containers.splice(containers.indexOf(firstLeaf), 1);
    started.splice(started.findIndex((x) => x.service === firstLeaf.name), 1);

    // The customer's one step after deploy: store the credentials the vendor issued, then a new leaf task.
    await sm.send(new PutSecretValueCommand({ SecretId: leafHubSecret.ValueFrom, SecretString: await vendorSide.leafCredentials() }));
    const leafC = await run(leaf);
    await upOrFail(leafC, 'NATS leaf listening on its container port', () => listening(clientPort));
    const linked = await eventually('the leaf connects to the hub', 20000, async () => {
      if (!leafC.running()) throw new Exited(`${leafC.name} exited (${await leafC.exited}): ${leafC.output().slice(-1500)}`);
      return (await leafLinks()) > 0 ? true : undefined;
    }).catch((e) => e as Error);
    check('link', !(linked instanceof Error), linked instanceof Error ? linked.message : 'with the issued .creds the leaf links to the hub over TLS, verifying the hub\'s name against the pinned CA');

    const gatewayC = await run(gateway);
    await upOrFail(gatewayC, 'boundary gateway ready', () => gatewayC.output().includes('"msg":"ready"'), 30000);
    const gatewaySpec = specs.get(gateway)!;
    // The agents the gateway accepts each outbound kind from.
    const gatewayAgents = JSON.parse(gatewaySpec.env.BYOC_AGENTS) as Record<string, string[]>;

    const agentsAll = services.filter((s) => s.agent);
    const triggerOf = (s: ServiceDef) => AGENT_CATALOG.find((a) => a.name === s.agent)?.trigger;
    const producers = new Set(Object.entries(gatewayAgents).filter(([, ks]) => ks.length > 0).map(([a]) => a));
    const chosen: ServiceDef[] = o.allAgents ? agentsAll : [];
    if (!o.allAgents) {
      // One agent of each trigger, preferring the ones that hand kinds to the gateway.
      for (const trigger of [AgentTrigger.REQUEST, AgentTrigger.EVENT, AgentTrigger.SCHEDULE]) {
        const ofTrigger = agentsAll.filter((s) => triggerOf(s) === trigger);
        const pick = ofTrigger.find((s) => producers.has(s.agent!)) ?? ofTrigger[0];
        if (pick) chosen.push(pick);
      }
      for (const s of agentsAll) if (!chosen.includes(s)) skipped.push({ what: `agent ${s.agent}`, why: 'same task shape as the agents started (pass --all-agents to start every one)' });
    }
    const agentContainers = new Map<string, RunningContainer>();
    for (const s of chosen) agentContainers.set(s.agent!, await run(s));
    for (const [, c] of agentContainers) await upOrFail(c, 'agent ready', () => c.output().includes('"msg":"ready"'), 30000);
    for (const s of services.filter((x) => x !== leaf && x !== gateway && !x.agent)) {
      skipped.push({ what: `service ${s.family}`, why: `its image (${String(s.stack.resolve(s.container.Image)).split('/').slice(1).join('/').split('@')[0]}) has no stand-in on this machine: the OpenTelemetry collector binary is not installable here` });
    }

    // A work item through an agent: sent by an agent allowed to publish on work subjects, as the catalog says.
    const agentPassword = async (name: string) => (await sm.send(new GetSecretValueCommand({ SecretId: `byoc/${o.customerId}/nats/${name}` }))).SecretString!;
    const asAgent = async (name: string) => {
      const nc = await connect({ servers: '127.0.0.1:4222', user: LEAF_USERS.agent(name), pass: await agentPassword(name), inboxPrefix: inboxPrefix(o.customerId, name), maxReconnectAttempts: 0 });
      connections.push(nc);
      return nc;
    };
    const target = chosen.find((s) => triggerOf(s) === AgentTrigger.EVENT) ?? chosen[0];
    const sender = AGENT_CATALOG.find((a) => a.subjects.publish.some((p) => p === 'work.*' || p === `work.${target.agent}`));
    if (!sender) {
      check('work item', false, `no agent of the catalog may publish work.${target.agent}`);
    } else {
      const itemId = `rehearsal-${randomBytes(6).toString('hex')}`;
      const ack = await jetstream(await asAgent(sender.name)).publish(`work.${target.agent}`, JSON.stringify({}), { msgID: itemId });
      const provisioner = await connect({ servers: '127.0.0.1:4222', user: LEAF_USERS.provisioner, pass: specs.get(leaf)!.env[vars.provisioner], inboxPrefix: inboxPrefix(o.customerId, LEAF_USERS.provisioner), maxReconnectAttempts: 0 });
      connections.push(provisioner);
      const result = await eventually(`agent ${target.agent} records the work item`, 20000, async () => {
        const kv = await new Kvm(provisioner).open(processedBucketOf(target.agent!));
        const e = await kv.get(`${RESULT_PREFIX}${createHash('sha256').update(itemId).digest('hex')}`);
        return e && e.operation === 'PUT' ? e : undefined;
      }).catch((e) => e as Error);
      // ...and acknowledges it (after the result, so a moment later).
      const jsm = await jetstreamManager(provisioner);
      const consumer = await eventually(`agent ${target.agent} acknowledges the work item`, 10000, async () => {
        const c = await jsm.consumers.info(WORK_STREAM, durableOf(target.agent!));
        return c.ack_floor.stream_seq >= ack.seq && c.num_ack_pending === 0 ? c : undefined;
      }).catch(() => undefined);
      const acked = consumer !== undefined;
      check('work item', !(result instanceof Error) && acked, result instanceof Error ? result.message
        : `${sender.name} sent work.${target.agent} (stream seq ${ack.seq}); ${target.agent} recorded its result and acknowledged it (ack floor ${consumer?.ack_floor.stream_seq})`);
    }

    // One message of each outbound kind, from the agent the catalog lets send it, must reach the vendor.
    const kinds = crossingKinds({ customerId: o.customerId, shareLearning: o.shareLearning }).filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR);
    const publicKeyPem = toPem((await kms.send(new GetPublicKeyCommand({ KeyId: gatewaySpec.env.BYOC_AUDIT_KEY }))).PublicKey!);
    const received = new Map<string, Buffer>();
    // The vendor's services listen on each outbound kind's subject (what their hub user is allowed).
    const subs = kinds.map((k) => vendor.subscribe(subjectOf(k, o.customerId), { callback: (e: Error | null, m: Msg) => { if (!e) received.set(m.subject, Buffer.from(m.data)); } }));
    await vendor.flush();
    for (const kind of kinds) {
      const producer = Object.entries(gatewayAgents).find(([, ks]) => ks.includes(kind.name))?.[0];
      const sample = SAMPLES[kind.name];
      if (!sample) { check(`crossing ${kind.name}`, false, `the rehearsal has no sample of kind ${kind.name}: add one to SAMPLES`); continue; }
      if (!producer) { check(`crossing ${kind.name}`, false, `no agent of the catalog may hand ${kind.name} to the gateway (BYOC_AGENTS)`); continue; }
      const nc = await asAgent(producer);
      nc.publish(`${OUTBOX_PREFIX}.${producer}.${kind.name}`, canonicalBytes(sample(producer)));
      await nc.flush();
    }
    for (const kind of kinds) {
      if (checks.some((c) => c.name === `crossing ${kind.name}`)) continue;
      const subject = subjectOf(kind, o.customerId);
      const got = await eventually(`${kind.name} reaches the hub`, 15000, () => received.get(subject)).catch((e) => e as Error);
      if (got instanceof Error) { check(`crossing ${kind.name}`, false, got.message); continue; }
      let detail = `${got.length} canonical bytes on ${subject}`;
      let ok = true;
      if (kind.gatewaySigned) {
        const value = JSON.parse(got.toString('utf8'));
        const sig = Buffer.from(value[kind.gatewaySigned.field], 'base64url');
        ok = cryptoVerify('sha256', signedBody(kind, value), { key: publicKeyPem, dsaEncoding: 'ieee-p1363' }, sig);
        detail += ok ? ', signature verified with the audit key\'s public key (KMS)' : ', SIGNATURE DOES NOT VERIFY';
      }
      check(`crossing ${kind.name}`, ok, detail);
    }
    for (const sub of subs) sub.unsubscribe();
    for (const k of BOUNDARY_CONTRACT.kinds as readonly MessageKind[]) {
      if (k.direction === Direction.CUSTOMER_TO_VENDOR && !kinds.includes(k)) skipped.push({ what: `crossing ${k.name}`, why: 'opted out by this configuration (shareLearning: false)' });
    }

    // The vendor side's own checks while the plane runs (the end-to-end run: stored by ingest, then revoked).
    if (vendorSide.whilePlaneRuns) await vendorSide.whilePlaneRuns({ check, sent: kinds.map((k) => k.name), leafRunning: () => leafC.running(), auditPublicKeyPem: publicKeyPem, asAgent });

    // ECS's view: every process still up once its grace period has passed.
    await sleep(Math.max(0, Math.max(...containers.map((c) => c.startedAt)) + o.graceSeconds * 1000 - Date.now()));
    for (const c of containers) check(`up ${c.name}`, c.running(), c.running() ? `running after ${o.graceSeconds} s` : `exited (${await c.exited}): ${c.output().slice(-800)}`);

    // SIGTERM as ECS stops a task: each drains and exits 0; the gateway writes its final signed head.
    for (const c of [...agentContainers.values(), gatewayC, leafC]) {
      const code = await c.stop(60000);
      const entry = started.find((s) => s.service === c.name);
      if (entry) entry.exit = code;
      const clean = c.image.cleanStopCodes ?? [0];
      check(`stop ${c.name}`, clean.includes(code as number), `exit ${code} on SIGTERM${clean.length > 1 ? ` (clean for this program: ${clean.join(' or ')})` : ''}`);
    }
    const gatewayEnv = gatewaySpec.env;
    const auditMount = gatewaySpec.mounts.find((m) => gatewayEnv.BYOC_AUDIT_LOG.startsWith(`${m.target}/`));
    const auditFile = auditMount && path.join(auditMount.source, gatewayEnv.BYOC_AUDIT_LOG.slice(auditMount.target.length + 1));
    if (!auditFile || !fs.existsSync(auditFile)) {
      check('audit log', false, `no audit log at ${gatewayEnv.BYOC_AUDIT_LOG} on the gateway's EFS access point`);
    } else {
      try {
        const v = verifyAuditLog(auditFile, { publicKeyPem });
        check('audit log', true, `${JSON.stringify(v).slice(0, 200)}`);
      } catch (e) {
        check('audit log', false, (e as Error).message);
      }
    }
    for (const c of containers) fs.writeFileSync(path.join(logsDir, `${c.name}.log`), c.output());
  } catch (e) {
    check('rehearsal', false, (e as Error).message);
    for (const c of containers) fs.writeFileSync(path.join(logsDir, `${c.name}.log`), c.output());
  } finally {
    for (const nc of connections) await nc.close().catch(() => undefined);
    for (const c of containers) await c.stop(5000).catch(() => undefined);
    for (const f of cleanup.reverse()) await f().catch(() => undefined);
  }
  skipped.push(
    { what: 'Custom::RestrictDefaultSecurityGroup and Custom::S3PrefixList', why: 'EC2 networking does not exist here (their handler is tested against moto\'s EC2 in test/customer-plane/deploy-time.test.ts); Custom::DatabaseRoles runs' },
    { what: 'ECR image pulls and the VPC endpoints', why: 'no AWS here: images are local stand-ins (listed with each started service), AWS APIs are moto' },
    { what: 'IAM (task roles, key policies, endpoint policies)', why: 'moto does not enforce IAM: the template tests and cdk-nag check those statements' },
  );
  return { ok: checks.length > 0 && checks.every((c) => c.ok), started, skipped, substitutions, checks };
}

/** A value as Secrets Manager generates it for a secret's `GenerateSecretString` (its character-set settings). */
export async function generatedPassword(sm: SecretsManagerClient, g: any): Promise<string> {
  return (await sm.send(new GetRandomPasswordCommand({
    PasswordLength: g.PasswordLength, ExcludeCharacters: g.ExcludeCharacters, ExcludeLowercase: g.ExcludeLowercase, ExcludeNumbers: g.ExcludeNumbers,
    ExcludePunctuation: g.ExcludePunctuation, ExcludeUppercase: g.ExcludeUppercase, IncludeSpace: g.IncludeSpace, RequireEachIncludedType: g.RequireEachIncludedType,
  }))).RandomPassword!;
}

function toPem(der: Uint8Array): string {
  return `-----BEGIN PUBLIC KEY-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PUBLIC KEY-----\n`;
}

function hubVersion(): string {
  try {
    return require('child_process').execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'nats-server';
  }
}

/** Secrets Manager dynamic references (`{{resolve:secretsmanager:ARN:SecretString:::}}`), as CloudFormation resolves them. */
async function resolveDynamic(value: string, sm: SecretsManagerClient): Promise<string> {
  const m = /^\{\{resolve:secretsmanager:(arn:[^:]+:secretsmanager:[^:]+:\d+:secret:[^:]+):SecretString:([^:]*):([^:]*):([^:]*)\}\}$/.exec(value);
  if (!m) return value;
  const secret = (await sm.send(new GetSecretValueCommand({ SecretId: m[1] }))).SecretString ?? '';
  return m[2] ? JSON.parse(secret)[m[2]] : secret;
}

async function checkRedisUsers(root: StackTemplate, sm: SecretsManagerClient, check: (n: string, ok: boolean, d: string) => void,
  cleanup: Array<() => Promise<void>>, substitutions: string[], workDir: string): Promise<{ port: number; ca: string } | undefined> {
  const users: Array<{ name: string; access: string; passwords: string[]; nopass: boolean }> = [];
  for (const t of root.all()) {
    for (const [, r] of t.ofType('AWS::ElastiCache::User')) {
      const p = t.resolve(r.Properties);
      users.push({ name: p.UserName, access: p.AccessString, nopass: p.NoPasswordRequired === true, passwords: await Promise.all((p.Passwords ?? []).map((x: string) => resolveDynamic(x, sm))) });
    }
  }
  if (users.length === 0) return undefined;
  const admin = randomBytes(24).toString('hex');
  // Its certificate names the replication group's endpoint, as ElastiCache's does (the agents check it).
  const endpoints = [...root.all()].flatMap((t) => t.ofType('AWS::ElastiCache::ReplicationGroup').map(([id]) => String(t.physical[id]?.attributes?.['PrimaryEndPoint.Address'] ?? ''))).filter(Boolean);
  const server = await startRedisTls(admin, endpoints);
  cleanup.push(() => server.stop());
  substitutions.push(`ElastiCache Redis: redis-server from Debian over TLS on loopback, with the template's ${users.length} users applied as ACL users`);
  const client = (username: string | undefined, password: string) => new Redis({
    host: '127.0.0.1', port: server.port, username, password, tls: { ca: server.ca, servername: 'localhost' }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null,
  });
  const bootstrap = client(undefined, admin);
  await bootstrap.connect();
  await bootstrap.call('ACL', 'SETUSER', 'rehearsal-admin', 'on', `>${admin}`, '~*', '&*', '+@all');
  bootstrap.disconnect();
  // The template's users replace the default one: apply them as an administrator of our own.
  const root_ = client('rehearsal-admin', admin);
  const problems: string[] = [];
  try {
    await root_.connect();
    for (const u of users) {
      const args = ['SETUSER', u.name, 'reset', ...u.access.split(/\s+/).filter(Boolean), ...(u.nopass ? ['nopass'] : u.passwords.map((p) => `>${p}`))];
      await root_.call('ACL', ...args).catch((e: Error) => problems.push(`user ${u.name}: Redis refuses access string "${u.access}" (${e.message})`));
    }
  } finally {
    root_.disconnect();
  }
  let agents = 0;
  for (const u of users.filter((x) => !x.nopass)) {
    const prefix = /~([^\s*]+)\*/.exec(u.access)?.[1];
    if (!prefix) { problems.push(`user ${u.name} has no key pattern of its own`); continue; }
    const c = client(u.name, u.passwords[0]);
    try {
      await c.connect();
      await c.set(`${prefix}rehearsal`, '1');
      const foreign = users.find((x) => x !== u && /~([^\s*]+)\*/.test(x.access));
      const other = foreign && /~([^\s*]+)\*/.exec(foreign.access)![1];
      if (other && await c.set(`${other}rehearsal`, '1').then(() => true, () => false)) problems.push(`user ${u.name} may write ${other}*`);
      agents += 1;
    } catch (e) {
      problems.push(`user ${u.name} cannot use its own keys: ${(e as Error).message}`);
    } finally {
      c.disconnect();
    }
  }
  const anonymous = client(undefined, 'wrong');
  const defaultRefused = await anonymous.connect().then(() => anonymous.ping().then(() => false, () => true), () => true);
  anonymous.disconnect();
  if (!defaultRefused) problems.push('the default user can run commands');
  check('redis users', problems.length === 0, problems.length ? problems.join('; ') : `${agents} agents' users each write their own keys and no other agent's; the default user is off`);
  const ca = path.join(workDir, 'rehearsal-redis-ca.pem');
  fs.writeFileSync(ca, server.ca, { mode: 0o644 });
  return { port: server.port, ca };
}

/**
 * PostgreSQL set up as RDS creates the instance (TLS with a certificate for the endpoint's name, the master
 * user with its managed password, the `rds_iam` role, the plane's database), then each `Custom::DatabaseRoles`
 * of the template sent to the plane's deploy-time handler as CloudFormation would send it; the response goes
 * to a local stand-in for the presigned URL. Checks the roles the agents' task roles connect as exist.
 */
async function checkDatabaseRoles(root: StackTemplate, databases: Array<{ host: string; master: string; password: string; database: string }>, port: number, workDir: string,
  aws: { region: string; endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } }, sm: SecretsManagerClient,
  check: (n: string, ok: boolean, d: string) => void, substitutions: string[]): Promise<string | undefined> {
  const resources = [...root.all()].flatMap((t) => t.ofType(DATABASE_ROLES).map(([id, r]) => ({ t, id, props: t.resolve(r.Properties) as Record<string, any> })));
  if (databases.length !== 1 || resources.length === 0) {
    check('database roles', false, `the plane has ${databases.length} database instances and ${resources.length} ${DATABASE_ROLES} resources; the rehearsal expects one of each`);
    return undefined;
  }
  const db = databases[0];
  const tls = testCertificates(workDir, `DNS:${db.host}`);
  execFileSync('chown', ['-R', 'postgres:postgres', tls.dir]);
  const superuser = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await superuser.connect();
  try {
    await superuser.query(`ALTER SYSTEM SET ssl_cert_file = '${tls.cert}'`);
    await superuser.query(`ALTER SYSTEM SET ssl_key_file = '${tls.key}'`);
    await superuser.query('ALTER SYSTEM SET ssl = on');
    await superuser.query('CREATE ROLE rds_iam');
    await superuser.query(`CREATE ROLE "${db.master}" WITH LOGIN CREATEROLE CREATEDB PASSWORD '${db.password.replace(/'/g, "''")}'`);
    const hba = (await superuser.query('SHOW hba_file')).rows[0].hba_file as string;
    fs.writeFileSync(hba, ['local all all trust', `hostssl all ${db.master} 127.0.0.1/32 scram-sha-256`, `host all ${db.master} 127.0.0.1/32 reject`, 'host all all 127.0.0.1/32 trust', ''].join('\n'));
    await superuser.query('SELECT pg_reload_conf()');
    for (let i = 0; (await superuser.query('SHOW ssl')).rows[0].ssl !== 'on'; i++) {
      if (i > 100) throw new RehearsalError('PostgreSQL did not turn TLS on');
      await sleep(50);
    }
    await superuser.query(`CREATE DATABASE "${db.database}" OWNER "${db.master}"`);
  } finally {
    await superuser.end();
  }
  substitutions.push(`RDS's certificate: issued for ${db.host} by a rehearsal CA, which the deploy-time handler trusts in place of the RDS CA bundle it carries`);

  const received: any[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { received.push(JSON.parse(body)); res.end(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const handler = createHandler({ ec2: new EC2Client(aws), secrets: sm, databaseCa: [fs.readFileSync(tls.ca, 'utf8')], log: () => undefined });
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const problems: string[] = [];
    for (const r of resources) {
      const { ServiceToken: _token, ...properties } = r.props;
      await handler({
        RequestType: 'Create', ResponseURL: `${url}/${r.id}`, StackId: `arn:aws:cloudformation:${aws.region}:${ACCOUNT}:stack/${root.pseudo['AWS::StackName']}/rehearsal`,
        RequestId: `rehearsal-${r.id}`, ResourceType: DATABASE_ROLES, LogicalResourceId: r.id, ResourceProperties: { ServiceToken: 'rehearsal', ...properties },
      } as any);
      const response = received.find((x) => x.LogicalResourceId === r.id);
      if (response?.Status !== 'SUCCESS') problems.push(`${r.id}: ${response ? `${response.Status}: ${response.Reason}` : 'no response'}`);
    }
    const agents: string[] = resources.flatMap((r) => r.props.Agents as string[]);
    const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: db.database });
    await c.connect();
    const roles = (await c.query(`SELECT rolname FROM pg_roles WHERE rolcanlogin AND pg_has_role(oid, 'rds_iam', 'MEMBER') AND rolname LIKE 'agent\\_%'`)).rows.map((x) => x.rolname as string);
    // Each agent's schema is owned by its NOLOGIN owner role (the agent's own role may not change its tables).
    const schemas = (await c.query(`SELECT nspname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = 'byoc_owner_' || n.nspname AND NOT r.rolcanlogin`)).rows.map((x) => x.nspname as string);
    await c.end();
    const missing = agents.filter((a) => !roles.includes(dbUserOf(a)));
    if (missing.length) problems.push(`no IAM login role for ${missing.join(', ')}`);
    const ownSchemas = roles.filter((r) => schemas.includes(r)).length;
    check('database roles', problems.length === 0, problems.length ? problems.join('; ')
      : `the deploy-time handler answered SUCCESS; ${roles.length} agents have an IAM-only login role (member of rds_iam) and ${ownSchemas} a schema of their own, owned by a role that cannot log in, over TLS verify-full as the RDS master user`);
  } finally {
    server.close();
  }
  // The agents' containers trust this CA in place of the RDS CA bundle of their image (PGSSLROOTCERT).
  const ca = path.join(workDir, 'rehearsal-rds-ca.pem');
  fs.copyFileSync(tls.ca, ca);
  fs.chmodSync(ca, 0o644);
  return ca;
}
