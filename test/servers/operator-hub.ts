import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { credsAuthenticator, jwtAuthenticator, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createUser, encodeUser, fromSeed } from '@nats-io/jwt';
import {
  CustomerAccounts, customerAccounts, hubAuthConfig, hubJwtIngestStream, leafUser, OperatorSetup, operatorInit, pushAccountJwt,
  SYSTEM_USER_INBOX, UserCredentials, vendorUser,
} from '../../lib/nats-auth';
import { hubJwtConfig, inboxPrefix, LEAF_USERS, leafConfig, LinkSettings, secretVariables, vendorInboxPrefix } from '../../lib/nats-config';
import { freePort, NatsServer, startNats, testCertificates } from './nats';
import { rogueLeaf, RogueLeaf } from './rogue-leaf';

/**
 * The vendor hub in operator mode (decentralized auth) on loopback, configured by `hubJwtConfig` and
 * `hubAuthConfig`, with customers registered the way the control plane does it (`customerAccounts`, pushed
 * over `$SYS` to the running hub), and customers' leaf nodes: real nats-servers from the customer plane's
 * `leafConfig` connecting with `.creds`, or rogue leaves speaking the protocol themselves. Test-only
 * additions: the hub's monitoring port, and observers (users of a vendor account signed by its identity
 * key, so without the role's restrictions) to see everything that arrives on the vendor's side.
 */
export interface OperatorHub {
  readonly dir: string;
  readonly hubPort: number;
  readonly leafPort: number;
  readonly certificates: { dir: string; ca: string; cert: string; key: string };
  readonly operator: OperatorSetup;
  readonly hub: NatsServer;
  /** The control plane's connection as the system user (pushes account JWTs). */
  system(): Promise<NatsConnection>;
  /** Issues a customer's two accounts and pushes them to the running hub; creates its ingest stream as its vendor service. */
  addCustomer(settings: LinkSettings): Promise<CustomerAccounts>;
  accounts(customerId: string): CustomerAccounts;
  /** Credentials of the customer's leaf (issued once per customer unless `fresh`). */
  leafCredentials(customerId: string, fresh?: boolean): Promise<UserCredentials>;
  /** A connection as the vendor's service user of a customer. */
  vendor(customerId: string): Promise<NatsConnection>;
  /** Test-only: a user of the customer's vendor account without restrictions. */
  observer(customerId: string): Promise<NatsConnection>;
  /** A customer's real leaf node (its generated configuration, `.creds` in its remote). */
  leaf(customerId: string, options?: { credentials?: UserCredentials }): Promise<CustomerLeaf>;
  /** A leaf that ignores what the hub tells it, with these credentials. */
  rogue(credentials: UserCredentials, name?: string): Promise<RogueLeaf>;
  /** Leaf-node connections of the hub, per account public key (from its monitoring port). */
  leafConnections(): Promise<{ account: string; ip: string; port: number }[]>;
  stop(): Promise<void>;
}

export interface CustomerLeaf {
  readonly server: NatsServer;
  readonly port: number;
  /** The gateway's remote identity on the leaf (BOUNDARY account: the one linked to the hub). */
  gateway(): Promise<NatsConnection>;
  /** True while the leaf reports a connection to the hub. */
  connected(): Promise<boolean>;
  stop(): Promise<void>;
}

export async function getJson(url: string): Promise<any> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
    }).on('error', reject);
  });
}

export async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface OperatorHubOptions {
  /** The hub's CA and certificate. @default - new ones for localhost and 127.0.0.1 */
  readonly certificates?: { dir: string; ca: string; cert: string; key: string };
  /** The leaf-node port. @default - a free port */
  readonly leafPort?: number;
  /** Test-only lines replacing the hub's `no_advertise` (e.g. the `advertise` a lying hub sends). */
  readonly leafnodesExtra?: string;
}

export async function startOperatorHub(options: OperatorHubOptions = {}): Promise<OperatorHub> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-ophub-'));
  const certificates = options.certificates ?? testCertificates(dir);
  const [hubPort, leafPort, monitorPort] = await Promise.all([freePort(), options.leafPort ?? freePort(), freePort()]);
  const operator = await operatorInit();
  fs.mkdirSync(path.join(dir, 'resolver'));
  const conf = hubJwtConfig({
    listen: { host: '127.0.0.1', port: hubPort },
    leafListen: { host: '127.0.0.1', port: leafPort },
    tls: { certFile: certificates.cert, keyFile: certificates.key },
    storeDir: path.join(dir, 'hub-jetstream'),
    auth: hubAuthConfig({ operatorJwt: operator.operator.jwt, systemAccountPublicKey: operator.systemAccount.publicKey, resolverDir: path.join(dir, 'resolver'), systemAccountJwt: operator.systemAccount.jwt }),
  }).replace('  no_advertise: true\n', options.leafnodesExtra ? `${options.leafnodesExtra}\n` : '  no_advertise: true\n') + `\nhttp: "127.0.0.1:${monitorPort}"\n`;
  fs.writeFileSync(path.join(dir, 'hub.conf'), conf);
  const hub = await startNats(path.join(dir, 'hub.conf'), leafPort);

  const connections: NatsConnection[] = [];
  const leaves: CustomerLeaf[] = [];
  const rogues: RogueLeaf[] = [];
  const accounts = new Map<string, CustomerAccounts>();
  const leafCreds = new Map<string, UserCredentials>();
  const track = (nc: NatsConnection) => { connections.push(nc); return nc; };
  const creds = (c: UserCredentials) => credsAuthenticator(new TextEncoder().encode(c.creds));
  const url = `127.0.0.1:${hubPort}`;
  let systemConnection: NatsConnection | undefined;
  const system = async () => {
    if (!systemConnection || systemConnection.isClosed()) {
      systemConnection = track(await connect({ servers: url, authenticator: creds(operator.systemUser), inboxPrefix: SYSTEM_USER_INBOX, maxReconnectAttempts: 0 }));
    }
    return systemConnection;
  };
  const get = (customerId: string) => {
    const a = accounts.get(customerId);
    if (!a) throw new Error(`no customer ${customerId} on this hub`);
    return a;
  };
  const vendor = async (customerId: string) => track(await connect({
    servers: url, authenticator: creds(await vendorUser(get(customerId))), inboxPrefix: vendorInboxPrefix(customerId), maxReconnectAttempts: 0,
  }));
  const leafCredentials = async (customerId: string, fresh = false) => {
    if (fresh || !leafCreds.has(customerId)) leafCreds.set(customerId, await leafUser(get(customerId)));
    return leafCreds.get(customerId)!;
  };

  return {
    dir, hubPort, leafPort, certificates, operator, hub,
    system,
    addCustomer: async (settings) => {
      const a = await customerAccounts(operator.operator.seed, settings);
      accounts.set(settings.customerId, a);
      const sys = await system();
      await pushAccountJwt(sys, a.vendor.jwt);
      await pushAccountJwt(sys, a.customer.jwt);
      const nc = await vendor(settings.customerId);
      await (await jetstreamManager(nc)).streams.add(hubJwtIngestStream(settings));
      await nc.close();
      return a;
    },
    accounts: get,
    leafCredentials,
    vendor,
    observer: async (customerId) => {
      const user = createUser();
      const jwt = await encodeUser('test-observer', user, fromSeed(new TextEncoder().encode(get(customerId).vendor.seed)));
      return track(await connect({ servers: url, authenticator: jwtAuthenticator(jwt, user.getSeed()), maxReconnectAttempts: 0 }));
    },
    leaf: async (customerId, options = {}) => {
      const credentials = options.credentials ?? await leafCredentials(customerId);
      const leafDir = fs.mkdtempSync(path.join(dir, `leaf-${customerId}-`));
      const [port, monitor] = await Promise.all([freePort(), freePort()]);
      const vars = secretVariables(customerId);
      const credsFile = path.join(leafDir, 'leaf.creds');
      fs.writeFileSync(credsFile, credentials.creds, { mode: 0o600 });
      const conf = leafConfig({ customerId, agents: [], listen: { host: '127.0.0.1', port }, storeDir: path.join(leafDir, 'jetstream'), hubCaFile: certificates.ca,
        hub: { host: 'localhost', port: leafPort }, hubCredentialsFile: credsFile }) + `\nhttp: "127.0.0.1:${monitor}"\n`;
      fs.writeFileSync(path.join(leafDir, 'leaf.conf'), conf);
      const secrets = { [vars.gatewayLocal]: 'local-secret', [vars.gatewayRemote]: 'remote-secret', [vars.provisioner]: 'provisioner-secret', [vars.backlogReporter]: 'backlog-reporter-secret' };
      const server = await startNats(path.join(leafDir, 'leaf.conf'), port, secrets);
      const connected = async () => ((await getJson(`http://127.0.0.1:${monitor}/leafz`)).leafnodes ?? 0) > 0;
      let gateway: NatsConnection | undefined;
      const leaf: CustomerLeaf = {
        server, port, connected,
        gateway: async () => {
          if (!gateway || gateway.isClosed()) {
            gateway = track(await connect({ servers: `127.0.0.1:${port}`, user: LEAF_USERS.gatewayRemote, pass: 'remote-secret', inboxPrefix: inboxPrefix(customerId, LEAF_USERS.gatewayRemote), maxReconnectAttempts: 0 }));
          }
          return gateway;
        },
        stop: async () => {
          await gateway?.close().catch(() => undefined);
          await server.stop();
        },
      };
      leaves.push(leaf);
      return leaf;
    },
    rogue: async (credentials, name) => {
      const r = await rogueLeaf({ port: leafPort, ca: certificates.ca, jwt: credentials.jwt, seed: credentials.seed, name });
      rogues.push(r);
      return r;
    },
    leafConnections: async () => ((await getJson(`http://127.0.0.1:${monitorPort}/leafz`)).leafs ?? []).map((l: any) => ({ account: l.account, ip: l.ip, port: l.port })),
    stop: async () => {
      rogues.forEach((r) => r.close());
      await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
      await Promise.all(leaves.map((l) => l.stop()));
      await hub.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
