import * as path from 'path';
import { BoundaryContract } from '../lib/boundary-contract';
import { hubAuthConfig } from '../lib/nats-auth';
import { hubJwtConfig } from '../lib/nats-config';

/**
 * The configuration of one node of the vendor's NATS hub cluster, generated here and nowhere else (the
 * template passes it to the container as is, the tests run it through nats-server). It holds no secret:
 * the route password is a `$VARIABLE` ECS fills from Secrets Manager, the certificate and key are files the
 * start command writes from the secret, and authentication of clients and leaf nodes is the operator's
 * (decentralized JWT auth, `hubAuthConfig` from `lib/nats-auth.ts`). Runs on nats-server 2.9 and newer.
 */

/**
 * The hub's ports: vendor services (client), node to node (cluster routes), customers' leaf nodes, and the
 * monitoring port, where only the load balancers' health checks may reach `/healthz`.
 */
export const HUB_PORTS = { client: 4222, cluster: 6222, leafnode: 7422, monitoring: 8222 } as const;
/** The health endpoint the load balancers check: the server is up and its JetStream is current. */
export const HUB_HEALTH_PATH = '/healthz';
/** The cluster's name; every node of one hub carries it. */
export const HUB_CLUSTER_NAME = 'byoc-hub';
/** The user every node presents on cluster routes (its password: `HUB_ROUTE_PASSWORD_VARIABLE`). */
export const HUB_ROUTE_USER = 'route';
/** Environment variable holding the route password (ECS injects it from Secrets Manager). */
export const HUB_ROUTE_PASSWORD_VARIABLE = 'BYOC_HUB_ROUTE_PASSWORD';
/** Where each node's own storage (its EFS access point) is mounted. */
export const HUB_DATA_DIR = '/data';
/** JetStream's store and the account resolver's folder, on the node's own storage. */
export const HUB_JETSTREAM_DIR = `${HUB_DATA_DIR}/jetstream`;
export const HUB_RESOLVER_DIR = `${HUB_DATA_DIR}/resolver`;
/** Files the start command writes on the task's scratch volume, from the certificate secret and the CA. */
export const HUB_TLS_FILES = { cert: '/tmp/tls/hub.pem', key: '/tmp/tls/hub-key.pem', ca: '/tmp/tls/ca.pem' } as const;
/** Where the start command writes this configuration. */
export const HUB_CONFIG_FILE = '/tmp/nats.conf';

/** A node's stable name in the hub's namespace: `node-<index>`, found at `node-<index>.<host>`. */
export const hubNodeName = (index: number) => `node-${index}`;
/** The variable the start command sets to the route URL of node `index` (with the route credentials). */
export const hubRouteVariable = (index: number) => `BYOC_HUB_ROUTE_${index}`;
/** A node's `server_name`: stable across restarts and task replacements, distinct per node. */
export const hubServerName = (index: number) => `byoc-hub-${index}`;

export interface HubNodeOptions {
  /** This node's index, 0-based. */
  readonly index: number;
  /** Cluster route host name of every node, in index order (`node-0.<host>`, ...); the certificate names them. */
  readonly nodeHosts: readonly string[];
  /** The operator's JWT (public). */
  readonly operatorJwt: string;
  /** The system account's public key. */
  readonly systemAccountPublicKey: string;
  /** The system account's JWT (public), preloaded into the resolver. */
  readonly systemAccountJwt?: string;
  /** The boundary contract the customers' accounts are issued from. @default BOUNDARY_CONTRACT */
  readonly contract?: BoundaryContract;
}

const q = (s: string) => JSON.stringify(s);

/**
 * The configuration of node `index` of the hub: the operator-mode hub of `hubJwtConfig` (`lib/nats-config.ts`:
 * client and leaf-node listeners, pings, JetStream, the leaf nodes' TLS) with this node's name and storage,
 * TLS on the client port, and the cluster block that joins it to the other nodes.
 */
export function hubNodeConfig(o: HubNodeOptions): string {
  if (!Number.isInteger(o.index) || o.index < 0 || o.index >= o.nodeHosts.length) {
    throw new Error(`hubNodeConfig: node ${o.index} is not one of the ${o.nodeHosts.length} nodes`);
  }
  const self = o.nodeHosts[o.index];
  // nats-server 2.9 presents on a route only the credentials in its URL; the start command composes each
  // peer's URL from its name and the route password (a variable is substituted only as a whole value).
  const routes = o.nodeHosts.map((_, i) => i).filter((i) => i !== o.index).map((i) => `$${hubRouteVariable(i)}`);
  const tls = `cert_file: ${q(HUB_TLS_FILES.cert)}, key_file: ${q(HUB_TLS_FILES.key)}, ca_file: ${q(HUB_TLS_FILES.ca)}`;
  const hub = hubJwtConfig({
    contract: o.contract,
    serverName: hubServerName(o.index),
    listen: { host: '0.0.0.0', port: HUB_PORTS.client },
    // TLS ends at nats-server: the load balancer in front of this port passes TCP through.
    leafListen: { host: '0.0.0.0', port: HUB_PORTS.leafnode },
    tls: { certFile: HUB_TLS_FILES.cert, keyFile: HUB_TLS_FILES.key },
    storeDir: HUB_JETSTREAM_DIR,
    auth: hubAuthConfig({
      operatorJwt: o.operatorJwt,
      systemAccountPublicKey: o.systemAccountPublicKey,
      systemAccountJwt: o.systemAccountJwt,
      resolverDir: HUB_RESOLVER_DIR,
    }),
  });
  return `${hub}
# Node ${o.index} of the ${o.nodeHosts.length} nodes of the hub cluster (control-plane/hub-config.ts).
# Vendor services connect with TLS too, verifying the vendor's CA; they authenticate with operator-signed user JWTs.
tls: { ${tls}, timeout: 5 }
# Health checks (${HUB_HEALTH_PATH}) of the load balancers; no one else may reach this port.
http_port: ${HUB_PORTS.monitoring}

cluster {
  name: ${q(HUB_CLUSTER_NAME)}
  host: "0.0.0.0"
  port: ${HUB_PORTS.cluster}
  # Peers and clients learn this node by its stable name (never a task IP), which its certificate names.
  advertise: ${q(`${self}:${HUB_PORTS.cluster}`)}
  no_advertise: true
  # Both ends of a route prove themselves: a certificate from the vendor's CA for the name dialed, and the password.
  authorization: { user: ${q(HUB_ROUTE_USER)}, password: $${HUB_ROUTE_PASSWORD_VARIABLE}, timeout: 5 }
  tls: { ${tls}, verify: true, timeout: 5 }
  routes: [
${routes.map((r) => `    ${r}`).join('\n')}
  ]
}
`;
}

/** Environment variables of a node's container: the configuration and CA (public), the certificate, key and route password (from secrets). */
export const HUB_ENV = {
  config: 'BYOC_NATS_CONFIG',
  ca: 'BYOC_HUB_CA',
  cert: 'BYOC_HUB_TLS_CERT',
  key: 'BYOC_HUB_TLS_KEY',
  routePassword: HUB_ROUTE_PASSWORD_VARIABLE,
} as const;

/**
 * The node's start command (`sh -c`): writes the configuration, the CA and the certificate and key from
 * the environment ECS filled to the task's scratch volume (key readable by the node's user only), drops
 * the key from the environment, composes the peers' route URLs with the route password, and runs
 * nats-server.
 */
export function hubStartCommand(o: Pick<HubNodeOptions, 'index' | 'nodeHosts'>): string {
  // `$NAME@`: the @ ends the variable name (no braces: CloudFormation would read `\${...}` as a parameter).
  const routes = o.nodeHosts.map((host, i) => ({ host, i })).filter(({ i }) => i !== o.index)
    .map(({ host, i }) => `export ${hubRouteVariable(i)}="nats-route://${HUB_ROUTE_USER}:$${HUB_ENV.routePassword}@${host}:${HUB_PORTS.cluster}"`);
  return [
    'umask 077',
    `mkdir -p ${path.posix.dirname(HUB_TLS_FILES.cert)}`,
    `printf "%s" "$${HUB_ENV.config}" > ${HUB_CONFIG_FILE}`,
    `printf "%s" "$${HUB_ENV.ca}" > ${HUB_TLS_FILES.ca}`,
    `printf "%s" "$${HUB_ENV.cert}" > ${HUB_TLS_FILES.cert}`,
    `printf "%s" "$${HUB_ENV.key}" > ${HUB_TLS_FILES.key}`,
    `unset ${HUB_ENV.key} ${HUB_ENV.cert}`,
    ...routes,
    `exec nats-server -c ${HUB_CONFIG_FILE}`,
  ].join(' && ');
}

