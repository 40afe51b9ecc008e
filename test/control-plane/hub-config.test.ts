import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { credsAuthenticator, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { createUser, encodeUser, fromSeed } from '@nats-io/jwt';
import * as http from 'http';
import { HUB_CONFIG_FILE, HUB_ENV, HUB_HEALTH_PATH, HUB_PORTS, hubServerName } from '../../control-plane/hub-config';
import { customerAccounts, formatCreds, leafUser, operatorInit, OperatorSetup, pushAccountJwt, revokeAccount, SYSTEM_USER_INBOX } from '../../lib/nats-auth';
import { freePort, listening, testCertificates } from '../servers/nats';
import { waitFor } from '../servers/operator-hub';
import { HubNodeSpec, hubNodeEnvironment, hubNodesOf, HubPorts, HubSecrets, rewriteHubNode } from '../servers/hub-cluster';
import { exampleVendorProps, synthControl } from './synth';

/**
 * The hub nodes exactly as the synthesized template starts them: the container's command (`sh -c`) with the
 * environment the task definition gives it (the generated configuration, the CA) and what ECS injects from
 * Secrets Manager (certificate, key, route password), on Debian's nats-server 2.9. What only a test can
 * change is rewritten, nothing else: the container's paths (into a temporary folder), the node names (to
 * localhost, which the test certificate names like the real one names node-N.<host>) and the ports (three
 * nodes share one loopback).
 */

const HOST = exampleVendorProps().hub!.host;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-hub-nodes-'));
const certificates = testCertificates(tmp, `DNS:localhost,DNS:${HOST},DNS:*.${HOST}`);
const pem = (file: string) => fs.readFileSync(file, 'utf8');

let nodes: HubNodeSpec[];
beforeAll(() => {
  nodes = hubNodesOf(synthControl().json);
});

const children: ChildProcess[] = [];
const connections: NatsConnection[] = [];
afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  })));
  fs.rmSync(tmp, { recursive: true, force: true });
});

type Ports = HubPorts;
const rewrite = (text: string, dir: string, ports: Ports, clusterPorts: number[]) => rewriteHubNode(text, dir, HOST, ports, clusterPorts);

/** The HTTP status of a node's health endpoint. */
const healthz = (port: number) => new Promise<number>((resolve) => {
  http.get({ host: '127.0.0.1', port, path: HUB_HEALTH_PATH }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', () => resolve(0));
});

type Secrets = HubSecrets;
const realSecrets = (): Secrets => ({ cert: pem(certificates.cert), key: pem(certificates.key), ca: pem(certificates.ca), routePassword: 'Route0Password9From0Secrets0Manager' });
const environment = hubNodeEnvironment;

test('each node\'s start command writes its files and hands nats-server 2.9 a valid configuration', async () => {
  const clusterPorts = nodes.map((_, i) => HUB_PORTS.cluster + i);
  nodes.forEach((node, i) => {
    const dir = fs.mkdtempSync(path.join(tmp, `check-${i}-`));
    const ports = { ...HUB_PORTS };
    const command = rewrite(node.command, dir, ports, clusterPorts);
    const env = environment(rewrite(node.config, dir, ports, clusterPorts), realSecrets());
    const checked = spawnSync('sh', ['-c', command.replace(/exec nats-server -c /, 'exec nats-server -t -c ')], { env, encoding: 'utf8' });
    expect(`${checked.stdout}${checked.stderr}`).toMatch(/configuration file .*nats\.conf is valid/);
    expect(checked.status).toBe(0);
    expect(fs.statSync(path.join(dir, 'tmp/tls/hub-key.pem')).mode & 0o777).toBe(0o600);
    expect(pem(path.join(dir, HUB_CONFIG_FILE.replace('/tmp/', 'tmp/')))).toContain(`server_name: "${hubServerName(i)}"`);
    // What nats-server runs with: the key is gone from its environment, the peers' route URLs carry the password.
    const seen = spawnSync('sh', ['-c', command.replace(/exec nats-server -c .*$/, 'exec env')], { env, encoding: 'utf8' }).stdout;
    expect(seen).not.toContain(HUB_ENV.key);
    expect(seen).not.toContain(HUB_ENV.cert);
    expect(seen.match(/^BYOC_HUB_ROUTE_\d=.*$/gm)!.sort()).toEqual(nodes.map((_, j) => j).filter((j) => j !== i)
      .map((j) => `BYOC_HUB_ROUTE_${j}=nats-route://route:Route0Password9From0Secrets0Manager@localhost:${clusterPorts[j]}`));
    // Without the route password from Secrets Manager, nats-server refuses the configuration.
    const { [HUB_ENV.routePassword]: _omitted, ...withoutPassword } = env;
    const refused = spawnSync('sh', ['-c', command.replace(/exec nats-server -c /, 'exec nats-server -t -c ')], { env: withoutPassword, encoding: 'utf8' });
    expect(refused.status).not.toBe(0);
  });
});

test('the route password Secrets Manager generates is letters only: nats-server reads $VARIABLE values as configuration, and one like 1e5... breaks it', () => {
  const node = nodes[0];
  const dir = fs.mkdtempSync(path.join(tmp, 'password-'));
  const ports = { ...HUB_PORTS };
  const clusterPorts = nodes.map((_, i) => HUB_PORTS.cluster + i);
  const check = (routePassword: string) => spawnSync('sh', ['-c', rewrite(node.command, dir, ports, clusterPorts).replace(/exec nats-server -c /, 'exec nats-server -t -c ')],
    { env: environment(rewrite(node.config, dir, ports, clusterPorts), { ...realSecrets(), routePassword }), encoding: 'utf8' }).status;
  // A value of the character set with digits, as the generator could draw it, is refused; letters never are.
  expect(check('1e5ShgwQpLRmZkXvTnBfJdYcHaGsEuWoIqPlMkNjBhVgCfXd')).not.toBe(0);
  expect(check('eShgwQpLRmZkXvTnBfJdYcHaGsEuWoIqPlMkNjBhVgCfXdZa')).toBe(0);
  const secret = Object.values<any>(synthControl().json.Resources).find((r) => r.Type === 'AWS::SecretsManager::Secret' && r.Properties.Name === 'byoc/hub/route-password');
  expect(secret.Properties.GenerateSecretString).toMatchObject({ ExcludeNumbers: true, ExcludePunctuation: true, PasswordLength: 48 });
});

describe('three nodes on loopback, from the template', () => {
  let operator: OperatorSetup;
  const ports: Ports[] = [];
  const logs: string[] = [];

  /** Starts a node (or an impostor with other secrets) as the container would, and waits for its client port. */
  async function start(index: number, node: HubNodeSpec, p: Ports, clusterPorts: number[], secrets: Secrets): Promise<number> {
    const dir = fs.mkdtempSync(path.join(tmp, `node-${index}-`));
    const config = rewrite(node.config, dir, p, clusterPorts)
      .split(exampleVendorProps().hub!.operatorJwt).join(operator.operator.jwt)
      .split(exampleVendorProps().hub!.systemAccountJwt!).join(operator.systemAccount.jwt)
      .split(exampleVendorProps().hub!.systemAccountPublicKey).join(operator.systemAccount.publicKey);
    const child = spawn('sh', ['-c', rewrite(node.command, dir, p, clusterPorts)], { env: environment(config, secrets), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const at = logs.push('') - 1;
    child.stdout!.on('data', (d) => { logs[at] += d; });
    child.stderr!.on('data', (d) => { logs[at] += d; });
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`node ${index} exited: ${logs[at].slice(-1500)}`);
      return listening(p.client);
    }, 20000, `node ${index} to listen`);
    return at;
  }

  /** A user of the system account with no restrictions (test-only), over TLS to node `i`'s client port. */
  async function observer(i: number): Promise<NatsConnection> {
    const user = createUser();
    const jwt = await encodeUser('observer', user, fromSeed(new TextEncoder().encode(operator.systemAccount.seed)));
    const nc = await connect({
      servers: `tls://localhost:${ports[i].client}`, tls: { caFile: certificates.ca },
      authenticator: credsAuthenticator(new TextEncoder().encode(formatCreds(jwt, new TextDecoder().decode(user.getSeed())))), maxReconnectAttempts: 0,
    });
    connections.push(nc);
    return nc;
  }

  /** Every server that answers a ping (by server ID, so a duplicate name counts twice): its name and number of routes. */
  async function servers(nc: NatsConnection): Promise<string[]> {
    const found = new Map<string, string>();
    const inbox = `_INBOX.ping${Math.random().toString(36).slice(2)}`;
    const sub = nc.subscribe(inbox);
    nc.publish('$SYS.REQ.SERVER.PING', '', { reply: inbox });
    const timer = setTimeout(() => sub.unsubscribe(), 1500);
    for await (const m of sub) {
      const statsz = m.json<any>();
      found.set(statsz.server.id, `${statsz.server.name} routes=${(statsz.statsz.routes ?? []).length}`);
    }
    clearTimeout(timer);
    return [...found.values()].sort();
  }
  const fullMesh = () => nodes.map((_, i) => `${hubServerName(i)} routes=${nodes.length - 1}`);

  beforeAll(async () => {
    operator = await operatorInit('byoc-hub-test');
    for (let i = 0; i < nodes.length; i++) ports.push({ client: await freePort(), cluster: await freePort(), leafnode: await freePort(), monitoring: await freePort() });
    const clusterPorts = ports.map((p) => p.cluster);
    for (let i = 0; i < nodes.length; i++) await start(i, nodes[i], ports[i], clusterPorts, realSecrets());
  });

  test('the nodes form one cluster over mutual-TLS routes with the route password, and JetStream elects a leader', async () => {
    const nc = await observer(0);
    let seen: string[] = [];
    await waitFor(async () => { seen = await servers(nc); return JSON.stringify(seen) === JSON.stringify(fullMesh()); }, 30000, 'a full mesh of routes');
    expect(seen).toEqual(fullMesh());
    await waitFor(() => logs.slice(0, nodes.length).some((l) => /JetStream cluster new metadata leader/.test(l)), 20000, 'a JetStream metadata leader');
    // What the load balancers check: every node reports itself healthy, JetStream current.
    for (const p of ports) {
      await waitFor(async () => (await healthz(p.monitoring)) === 200, 20000, `${HUB_HEALTH_PATH} on port ${p.monitoring}`);
    }
  });

  test.each([
    ['a certificate from another CA', () => {
      const other = testCertificates(tmp, 'DNS:localhost');
      return { ...realSecrets(), cert: pem(other.cert), key: pem(other.key), ca: pem(other.ca) };
    }, /TLS|certificate|handshake/i],
    ['the vendor CA\'s certificate but a wrong route password', () => ({ ...realSecrets(), routePassword: 'not0the0route0password' }), /Authorization Violation|authentication error/],
  ])('an impostor node with %s cannot join', async (_n, secrets, refusal) => {
    const p = { client: await freePort(), cluster: await freePort(), leafnode: await freePort(), monitoring: await freePort() };
    // It presents itself as node 2 of the example, with routes to nodes 0 and 1.
    const at = await start(9, nodes[2], p, [ports[0].cluster, ports[1].cluster, p.cluster], secrets());
    await waitFor(() => refusal.test(logs[at]), 20000, `the impostor's routes to be refused (${refusal})`);
    // Every node still routes to exactly its two peers, and nothing else answers (the impostor calls itself byoc-hub-2 too).
    expect(await servers(await observer(0))).toEqual(fullMesh());
    children[children.length - 1].kill('SIGTERM');
  });

  test('a customer account pushed to one node reaches the others: its leaf connects to another node\'s leaf port over TLS, and revoking it there cuts the leaf off', async () => {
    const system = await connect({
      servers: `tls://localhost:${ports[0].client}`, tls: { caFile: certificates.ca }, inboxPrefix: SYSTEM_USER_INBOX,
      authenticator: credsAuthenticator(new TextEncoder().encode(operator.systemUser.creds)), maxReconnectAttempts: 0,
    });
    connections.push(system);
    const accounts = await customerAccounts(operator.operator.seed, { customerId: 'acme' });
    await pushAccountJwt(system, accounts.vendor.jwt);
    await pushAccountJwt(system, accounts.customer.jwt);

    const dir = fs.mkdtempSync(path.join(tmp, 'leaf-'));
    fs.writeFileSync(path.join(dir, 'leaf.creds'), (await leafUser(accounts)).creds);
    const leafPort = await freePort();
    const last = nodes.length - 1;
    fs.writeFileSync(path.join(dir, 'leaf.conf'), `port: ${leafPort}\nhost: 127.0.0.1\nserver_name: acme-leaf\n`
      + `leafnodes { remotes: [ { url: "tls://localhost:${ports[last].leafnode}", credentials: ${JSON.stringify(path.join(dir, 'leaf.creds'))}, tls: { ca_file: ${JSON.stringify(certificates.ca)} } } ] }\n`);
    const leaf = spawn('nats-server', ['-c', path.join(dir, 'leaf.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(leaf);
    let leafLog = '';
    leaf.stdout!.on('data', (d) => { leafLog += d; });
    leaf.stderr!.on('data', (d) => { leafLog += d; });
    await waitFor(() => /Leafnode connection created/.test(leafLog), 20000, `the leaf to connect to node ${last}`);

    await pushAccountJwt(system, await revokeAccount(accounts.customer.jwt, operator.operator.seed));
    await waitFor(() => /Leafnode connection closed/.test(leafLog), 20000, 'the revoked leaf to be cut off');
    const closedAt = leafLog.search(/Leafnode connection closed/);
    await waitFor(() => /Authorization Violation/.test(leafLog.slice(closedAt)), 20000, 'the revoked leaf\'s reconnection to be refused');
    leaf.kill('SIGTERM');
  });
});
