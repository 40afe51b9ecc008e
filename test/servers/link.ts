import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Msg, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { AGENT_CATALOG } from '../../agents/catalog';
import { provisionAgents } from '../../customer-plane/boundary-gateway/provision';
import { AgentIdentity, agentIdentities, inboxPrefix, LEAF_USERS, leafConfig, LinkSettings, secretVariables } from '../../lib/nats-config';
import { freePort, NatsServer, startNats, testCertificates } from './nats';
import { getJson, OperatorHub, startOperatorHub } from './operator-hub';

/**
 * A real vendor hub and a customer's real leaf node on loopback, configured by the generators, linked
 * over TLS. Test-only observers are appended to the generated configurations where a test needs to see
 * everything that arrives in an account; the generated parts are used as they are.
 */
export interface Link {
  readonly customerId: string;
  readonly dir: string;
  readonly leafPort: number;
  readonly hubPort: number;
  readonly leafMonitorPort: number;
  readonly secrets: Record<string, string>;
  readonly hub: NatsServer;
  readonly leaf: NatsServer;
  /** The agents of the leaf (each its own NATS user). */
  readonly agentIdentities: readonly AgentIdentity[];
  /** Connections, closed by `stop()`. */
  agent(name: string): Promise<NatsConnection>;
  provisioner(): Promise<NatsConnection>;
  /** Creates the agents' streams, consumers and buckets as the gateway does at start. */
  provision(consumer?: { ackWaitMs?: number }): Promise<void>;
  gatewayLocal(): Promise<NatsConnection>;
  gateway(): Promise<NatsConnection>;
  vendor(customerId?: string): Promise<NatsConnection>;
  /** Test-only: a user of the customer's vendor account on the hub allowed everything (a compromised vendor service). */
  rogueVendor(): Promise<NatsConnection>;
  /** Test-only: a user in the leaf's AGENTS account subscribed to everything (that account is never linked). */
  agentsObserver(): Promise<NatsConnection>;
  /** Test-only: a user in the leaf's GATEWAY account allowed everything (reads the rejection store). */
  gatewayObserver(): Promise<NatsConnection>;
  /** Test-only: a user in the leaf's BOUNDARY account allowed everything, to prove the remote's deny rules. */
  boundaryObserver(): Promise<NatsConnection>;
  /** Messages the leaf received over its leaf-node connection so far (from its monitoring endpoint). */
  leafInMsgs(): Promise<number>;
  stop(): Promise<void>;
}

export interface LinkOptions extends LinkSettings {
  /** More customers on the same hub (their leaves are not started). */
  readonly otherCustomers?: string[];
  /** @default - the product's catalog */
  readonly agents?: readonly AgentIdentity[];
  /** Test-only observers in the leaf's AGENTS and BOUNDARY accounts (BOUNDARY then admits two connections). @default true */
  readonly observers?: boolean;
  /** The hub's CA and certificate. @default - new ones for localhost */
  readonly certificates?: { dir: string; ca: string; cert: string; key: string };
  /** Test-only lines replacing the hub's `no_advertise` (e.g. the `advertise` a lying hub sends). */
  readonly hubExtra?: { leafnodes?: string };
  /** A running hub to link to (its certificates are used; `stop()` leaves it running). @default - a new hub */
  readonly hub?: OperatorHub;
}

const OBSERVER_PASSWORD = 'observer-password';

export async function startLink(options: LinkOptions): Promise<Link> {
  const { customerId } = options;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-link-'));
  const tls = options.hub?.certificates ?? options.certificates ?? testCertificates(dir);
  const [leafPort, leafMonitorPort] = await Promise.all([freePort(), freePort()]);
  const vars = secretVariables(customerId);
  const agents = options.agents ?? agentIdentities(AGENT_CATALOG, options);
  const random = (p: string) => `${p}-${Math.random().toString(36).slice(2)}`;
  const secrets: Record<string, string> = {
    [vars.gatewayLocal]: random('gateway-local'),
    [vars.gatewayRemote]: random('gateway-remote'),
    [vars.provisioner]: random('provisioner'),
    [vars.backlogReporter]: random('backlog-reporter'),
  };
  for (const a of agents) secrets[vars.agent(a.name)] = random(`agent-${a.name}`);

  // The vendor hub in operator mode, each customer registered as the control plane registers it (accounts
  // pushed to the running hub, the ingest stream created by the customer's vendor service).
  const operatorHub = options.hub ?? await startOperatorHub({ certificates: tls, leafnodesExtra: options.hubExtra?.leafnodes });
  const hubPort = operatorHub.hubPort;
  for (const c of [options, ...(options.otherCustomers ?? []).map((id) => ({ customerId: id }))]) await operatorHub.addCustomer(c);
  const credentials = await operatorHub.leafCredentials(customerId);
  const credsFile = path.join(dir, 'leaf.creds');
  fs.writeFileSync(credsFile, credentials.creds, { mode: 0o600 });

  let leaf = leafConfig({ ...options, agents, listen: { host: '127.0.0.1', port: leafPort }, storeDir: path.join(dir, 'jetstream'), hubCaFile: tls.ca,
    hub: { host: 'localhost', port: operatorHub.leafPort }, hubCredentialsFile: credsFile });
  if (options.observers ?? true) {
    leaf = leaf.replace('  AGENTS: {\n    jetstream: enabled\n    users: [\n', `  AGENTS: {\n    jetstream: enabled\n    users: [\n      { user: "agents-observer", password: "${OBSERVER_PASSWORD}" }\n`);
    leaf = leaf.replace('  GATEWAY: {\n    jetstream: enabled\n    limits: { max_connections: 1 }\n    users: [\n', `  GATEWAY: {\n    jetstream: enabled\n    limits: { max_connections: 2 }\n    users: [\n      { user: "gateway-observer", password: "${OBSERVER_PASSWORD}" }\n`);
    leaf = leaf.replace('  BOUNDARY: {\n    limits: { max_connections: 2 }\n    users: [\n', `  BOUNDARY: {\n    limits: { max_connections: 3 }\n    users: [\n      { user: "boundary-observer", password: "${OBSERVER_PASSWORD}" }\n`);
  }
  leaf += `\nhttp: "127.0.0.1:${leafMonitorPort}"\n`;
  fs.writeFileSync(path.join(dir, 'leaf.conf'), leaf);

  const leafServer = await startNats(path.join(dir, 'leaf.conf'), leafPort, secrets);
  const connections: NatsConnection[] = [];
  const open = async (port: number, user: string, pass: string, prefix = inboxPrefix(customerId)) => {
    const nc = await connect({ servers: `127.0.0.1:${port}`, user, pass, inboxPrefix: prefix, maxReconnectAttempts: 0 });
    connections.push(nc);
    return nc;
  };
  const leafInMsgs = async () => {
    const res = await getJson(`http://127.0.0.1:${leafMonitorPort}/leafz`);
    return (res.leafs ?? []).reduce((n: number, l: { in_msgs: number }) => n + l.in_msgs, 0);
  };
  const vendor = (c = customerId) => operatorHub.vendor(c);
  // Wait until the leaf is connected to the hub.
  const deadline = Date.now() + 15000;
  while (!((await getJson(`http://127.0.0.1:${leafMonitorPort}/leafz`)).leafnodes > 0)) {
    if (Date.now() > deadline) throw new Error(`leaf did not connect to the hub:\n${leafServer.log().slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  let gatewayConnection: NatsConnection | undefined;
  const provisioner = () => open(leafPort, LEAF_USERS.provisioner, secrets[vars.provisioner], inboxPrefix(customerId, LEAF_USERS.provisioner));

  return {
    customerId, dir, leafPort, hubPort, leafMonitorPort, secrets, hub: operatorHub.hub, leaf: leafServer, agentIdentities: agents,
    agent: (name: string) => open(leafPort, LEAF_USERS.agent(name), secrets[vars.agent(name)], inboxPrefix(customerId, name)),
    provisioner,
    provision: async (consumer = {}) => {
      const nc = await provisioner();
      await provisionAgents(nc, agents.map((a) => ({ name: a.name, subscribe: a.subscribe })), consumer);
    },
    gatewayLocal: () => open(leafPort, LEAF_USERS.gatewayLocal, secrets[vars.gatewayLocal], inboxPrefix(customerId, LEAF_USERS.gatewayLocal)),
    // A single-instance identity: one shared connection while it is open.
    gateway: async () => {
      if (!gatewayConnection || gatewayConnection.isClosed()) gatewayConnection = await open(leafPort, LEAF_USERS.gatewayRemote, secrets[vars.gatewayRemote], inboxPrefix(customerId, LEAF_USERS.gatewayRemote));
      return gatewayConnection!;
    },
    vendor,
    rogueVendor: () => operatorHub.observer(customerId),
    agentsObserver: () => open(leafPort, 'agents-observer', OBSERVER_PASSWORD),
    gatewayObserver: () => open(leafPort, 'gateway-observer', OBSERVER_PASSWORD),
    boundaryObserver: () => open(leafPort, 'boundary-observer', OBSERVER_PASSWORD),
    leafInMsgs,
    stop: async () => {
      await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
      await leafServer.stop();
      if (!options.hub) await operatorHub.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Collects messages of a subscription. */
export function collect(nc: NatsConnection, subjects: string | string[]): { subjects: string[]; payloads: string[]; ready: Promise<void> } {
  const got = { subjects: [] as string[], payloads: [] as string[], ready: Promise.resolve() };
  for (const subject of [subjects].flat()) {
    nc.subscribe(subject, { callback: (err: Error | null, m: Msg) => { if (!err) { got.subjects.push(m.subject); got.payloads.push(m.string()); } } });
  }
  got.ready = nc.flush();
  return got;
}

/** Resolves once `check` holds, or rejects after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Permission errors the server reported on a connection. */
export function permissionErrors(nc: NatsConnection): string[] {
  const errors: string[] = [];
  (async () => {
    for await (const s of nc.status()) {
      const text = JSON.stringify(s) + String((s as { error?: Error }).error ?? '');
      if (/Permissions Violation/i.test(text)) errors.push(text);
    }
  })().catch(() => undefined);
  return errors;
}
