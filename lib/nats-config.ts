import { BOUNDARY_CONTRACT, BoundaryContract, contractHash, Direction, MessageKind, subjectOf } from './boundary-contract';

/**
 * NATS configurations of the narrow link, generated from the boundary contract and the agent catalog: the
 * customer's leaf node and the vendor hub's side for that customer. Secrets never appear in them: passwords
 * are references to environment variables (`$NAME`), which nats-server resolves at start and ECS fills from
 * Secrets Manager. The output runs on nats-server 2.9 (Debian's, used by the tests) and on the newer server
 * the plane pins.
 *
 * The leaf has three accounts, so that nothing an agent can make the server do reaches a boundary subject:
 * - `AGENTS`: one user per agent (permissions from its catalog entry) and the `provisioner`, the only
 *   identity that may create JetStream streams and consumers. Agents may only use their own consumer, their
 *   own processed-items bucket and publish to the streams by subject: they cannot create a stream
 *   (republish, sources, mirrors) or a consumer (deliver subjects), so no server-side publish in `AGENTS`
 *   can be made to carry their data anywhere their own permissions do not reach.
 * - `GATEWAY`: only the gateway's local identity. It receives `boundary.outbox.<agent>.<kind>` from `AGENTS`
 *   (a stream import: the subject names the agent that published it, which the agent's permissions pin) and
 *   is the only source of `boundary.inbox.<kind>`, exported to `AGENTS`. Its JetStream holds the bounded
 *   rejection store, which no agent can reach.
 * - `BOUNDARY`: only the gateway's remote identity; the one account linked to the hub.
 */

/** Local subjects where agents hand messages to the gateway: `boundary.outbox.<agent>.<kind>`. */
export const OUTBOX_PREFIX = 'boundary.outbox';
/** Where the gateway delivers validated inbound messages: `boundary.inbox.<kind>`. */
export const INBOX_PREFIX = 'boundary.inbox';
/** The gateway's rejection store (GATEWAY account): kind, size, hash and reason of each rejection, never a body. */
export const REJECTION_STREAM = 'BOUNDARY_REJECTIONS';
export const REJECTION_PREFIX = 'rejections';
/** Bounds of the rejection store. */
export const REJECTION_LIMITS = { maxBytes: 64 * 1024 * 1024, maxAgeDays: 30, maxMsgSize: 2048 } as const;

/** Streams and buckets in `AGENTS`, created by the provisioner, used by agents by name. */
export const WORK_STREAM = 'WORK';
export const AGENT_DEAD_LETTER_STREAM = 'AGENT_DEAD_LETTERS';
/** The durable consumer of an agent's work queue. */
export const durableOf = (agent: string) => `agent-${agent}`;
/** An agent's own bucket of processed item IDs (idempotency). */
export const processedBucketOf = (agent: string) => `processed-${agent}`;
/**
 * Events between agents (`events.>`, step records included): one stream, bounded in size and age, interest
 * retention (an event is kept until every agent that declared its subject has acknowledged it).
 */
export const EVENTS_STREAM = 'EVENTS';
/** Where agents publish events: every `events.*` subject an agent declares is stored by ${EVENTS_STREAM}. */
export const EVENTS_PREFIX = 'events';
/**
 * The durable consumer of one agent for one declared event subject. nats-server 2.9 has no multiple filter
 * subjects, hence one durable per (agent, subject); a subject's tokens are lower-case, so `_` (token
 * separator) and `ANY` (the `*` wildcard) cannot collide.
 */
export const eventDurableOf = (agent: string, subject: string) =>
  `${durableOf(agent)}_${subject.slice(EVENTS_PREFIX.length + 1).split('.').map((t) => (t === '*' ? 'ANY' : t)).join('_')}`;
/** The event subjects an agent consumes through JetStream (its declared `events.*` subscriptions). */
export const eventSubscriptionsOf = (subscribe: readonly string[]) => subscribe.filter((s) => s.startsWith(`${EVENTS_PREFIX}.`));
/**
 * The service subject of a request/response agent: callers send requests here (never on `work.<agent>`,
 * which ${WORK_STREAM} stores and would acknowledge in the agent's place), tasks share it as one queue group.
 */
export const requestSubjectOf = (agent: string) => `svc.${agent}`;
/** The queue group of an agent's service subject (every task of the agent). */
export const requestQueueOf = (agent: string) => `agent-${agent}`;
/** Delivery settings of every agent's durable consumer (the runtime reads the same values). */
export const CONSUMER_DEFAULTS = { ackWaitMs: 30000, maxDeliver: 5 } as const;

/** On the vendor hub, in each customer's account: the stream that receives (and acknowledges) what crosses. */
export const HUB_INGEST_STREAM = 'BYOC_INGEST';

/** Subjects the leaf remote refuses in both directions whatever else is allowed: system, JetStream, global inboxes. */
export const NEVER_CROSS = ['$SYS.>', '$JS.>', '$JSC.>', '$KV.>', '$O.>', '$G.>', '_INBOX.>', '_R_.>', '$NRG.>'];

export interface LinkSettings {
  readonly customerId: string;
  /** Share anonymised fingerprints with the vendor. Off, fingerprints are absent from every rule. @default true */
  readonly shareLearning?: boolean;
  /** The boundary contract of the link. @default BOUNDARY_CONTRACT (the kit's own) */
  readonly contract?: BoundaryContract;
}

/** The link's contract: the one its settings name, or the kit's own. */
export const contractOf = (settings: { readonly contract?: BoundaryContract }): BoundaryContract => settings.contract ?? BOUNDARY_CONTRACT;

/** The contract's kinds that cross for this customer: opt-out kinds are removed, not filtered. */
export function crossingKinds(settings: LinkSettings): MessageKind[] {
  const share = settings.shareLearning ?? true;
  return contractOf(settings).kinds.filter((k) => share || !k.optOut);
}

export const outboundKinds = (s: LinkSettings) => crossingKinds(s).filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR);
export const inboundKinds = (s: LinkSettings) => crossingKinds(s).filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER);
/** The subjects of the outbound (customer to vendor) kinds of this customer, in contract order. */
export const outboundSubjects = (s: LinkSettings) => outboundKinds(s).map((k) => subjectOf(k, s.customerId));
/** The subjects of the inbound (vendor to customer) kinds of this customer, in contract order. */
export const inboundSubjects = (s: LinkSettings) => inboundKinds(s).map((k) => subjectOf(k, s.customerId));

/** The customer-scoped inbox prefix for request/reply: never `_INBOX.>` wide open. */
export function inboxPrefix(customerId: string, identity?: string): string {
  const base = `_INBOX_${customerId.replace(/-/g, '_')}`;
  return identity ? `${base}.${identity}` : base;
}

/** What one agent may do on the leaf, from its catalog entry. */
export interface AgentIdentity {
  readonly name: string;
  /** Subjects it subscribes to (`work.<name>` is consumed through JetStream, not subscribed). */
  readonly subscribe: readonly string[];
  /** Subjects it publishes on, other than the boundary outbox. */
  readonly publish: readonly string[];
  /** Outbound kinds it may hand to the gateway. */
  readonly outbox: readonly string[];
  /** Inbound kinds it receives from the gateway. */
  readonly inbox: readonly string[];
  /** How it is started (`request` agents also serve `svc.<name>`). @default - work queue only */
  readonly trigger?: string;
  /** Its cron expression: it then publishes its own ticks on `work.<name>`. @default - none */
  readonly schedule?: string;
}

/** The shape of a catalog entry this module needs (kept structural so `lib/` does not depend on `agents/`). */
export interface CatalogEntry {
  readonly name: string;
  readonly trigger?: string;
  readonly schedule?: string;
  readonly subjects: { readonly subscribe: readonly string[]; readonly publish: readonly string[] };
}

/** Agent identities from catalog entries: `boundary.outbox.<kind>` and `boundary.inbox.<kind>` declarations become kinds. */
export function agentIdentities(catalog: readonly CatalogEntry[], settings: LinkSettings): AgentIdentity[] {
  const out = new Set(outboundKinds(settings).map((k) => k.name));
  const inn = new Set(inboundKinds(settings).map((k) => k.name));
  const kindsOf = (subjects: readonly string[], prefix: string, allowed: Set<string>) =>
    subjects.filter((s) => s.startsWith(`${prefix}.`)).map((s) => s.slice(prefix.length + 1)).filter((k) => allowed.has(k));
  return catalog.map((a) => ({
    name: a.name,
    subscribe: a.subjects.subscribe.filter((s) => s !== `work.${a.name}` && !s.startsWith('boundary.')),
    publish: a.subjects.publish.filter((s) => !s.startsWith('boundary.')),
    outbox: kindsOf(a.subjects.publish, OUTBOX_PREFIX, out),
    inbox: kindsOf(a.subjects.subscribe, INBOX_PREFIX, inn),
    ...(a.trigger !== undefined ? { trigger: a.trigger } : {}),
    ...(a.schedule !== undefined ? { schedule: a.schedule } : {}),
  }));
}

const envName = (s: string) => s.toUpperCase().replace(/-/g, '_');

/** Environment variable names for the link's secrets. */
export function secretVariables(_customerId: string) {
  return {
    /** Password of the gateway's local identity (GATEWAY account). */
    gatewayLocal: 'BYOC_GATEWAY_LOCAL_PASSWORD',
    /** Password of the gateway's remote identity (BOUNDARY account, the linked one): a different secret. */
    gatewayRemote: 'BYOC_GATEWAY_REMOTE_PASSWORD',
    /** Password of the provisioner (creates the agents' streams and consumers; used by the gateway at start). */
    provisioner: 'BYOC_PROVISIONER_PASSWORD',
    /** Password of the gateway's backlog reporter (reads its durables' consumer info; a long-lived connection of its own). */
    backlogReporter: 'BYOC_BACKLOG_REPORTER_PASSWORD',
    /** Password of one agent's user. */
    agent: (agent: string) => `BYOC_AGENT_${envName(agent)}_PASSWORD`,
    /** The leaf's credentials on the hub (a NATS `.creds` file: user JWT and seed), issued by the vendor at registration. */
    leafHubCredentials: `BYOC_LEAF_HUB_CREDENTIALS`,
  };
}

/** User names on the leaf. */
export const LEAF_USERS = { gatewayLocal: 'gateway-local', gatewayRemote: 'gateway', provisioner: 'provisioner', backlog: 'backlog-reporter', agent: (a: string) => `agent-${a}` } as const;

/**
 * What the gateway's backlog reporter may do: read the consumer info of each agent's durables (its work durable, one per
 * declared event subject), nothing else: no fetch, no acknowledgement, no stream or account information.
 */
export function backlogReaderSubjects(agents: readonly { readonly name: string; readonly subscribe: readonly string[] }[]): string[] {
  return agents.flatMap((a) => [
    `$JS.API.CONSUMER.INFO.${WORK_STREAM}.${durableOf(a.name)}`,
    ...eventSubscriptionsOf(a.subscribe).map((s) => `$JS.API.CONSUMER.INFO.${EVENTS_STREAM}.${eventDurableOf(a.name, s)}`),
  ]);
}

/** The hub the leaf connects to: its address is pinned in the configuration, never discovered. */
export interface HubAddress {
  /** DNS name the hub's certificate is issued for (the leaf verifies it against this name). */
  readonly host: string;
  readonly port: number;
}

/** The leaf's remote URL for a hub: TLS to the pinned name and port, no credentials in it. */
export function hubUrl(hub: HubAddress): string {
  return `tls://${hub.host}:${hub.port}`;
}

const q = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => `[${xs.map(q).join(', ')}]`;

export interface LeafOptions extends LinkSettings {
  /** Where agents connect. */
  readonly listen: { readonly host: string; readonly port: number };
  readonly storeDir: string;
  /** The agents, each its own NATS user. */
  readonly agents: readonly AgentIdentity[];
  /** CA bundle (PEM file) the hub's certificate must chain to: the vendor's CA, never the system's roots. */
  readonly hubCaFile: string;
  /** The vendor hub: the only address the leaf dials. */
  readonly hub: HubAddress;
  /** The leaf's `.creds` file on the hub (its user JWT, signed for this customer's hub account, and seed). */
  readonly hubCredentialsFile: string;
}

/**
 * Permissions of one agent on the leaf: its catalog entry's subjects and its own JetStream objects, nothing
 * account-wide. Each trigger path adds exactly what it uses:
 * - work (every agent): fetch, inspect and acknowledge its own durable on ${WORK_STREAM};
 * - events (each declared `events.*` subscription): the same on its own durable for that subject on
 *   ${EVENTS_STREAM}, and no core subscription to the subject (events arrive only through the durable);
 * - schedule (an agent with a cron expression): publish its own ticks on `work.<name>`;
 * - request (a request/response agent): a queue subscription to its own `svc.<name>` in its own queue group,
 *   replies through `allow_responses` (to the caller's inbox only, checked by the runtime); a caller may
 *   send requests (`svc.<x>`) where it may send work (`work.<x>`).
 */
function agentPermissions(customerId: string, a: AgentIdentity): string {
  const durable = durableOf(a.name);
  const bucket = processedBucketOf(a.name);
  const events = eventSubscriptionsOf(a.subscribe);
  const consumerOf = (stream: string, d: string) => [
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${d}`,
    `$JS.API.CONSUMER.INFO.${stream}.${d}`,
    `$JS.ACK.${stream}.${d}.>`,
  ];
  const publish = [
    ...a.publish,
    ...a.publish.filter((s) => s.startsWith('work.')).map((s) => requestSubjectOf(s.slice('work.'.length))),
    ...(a.schedule && !a.publish.includes(`work.${a.name}`) ? [`work.${a.name}`] : []),
    ...a.outbox.map((k) => `${OUTBOX_PREFIX}.${a.name}.${k}`),
    `dead.${a.name}`,
    // Its own durable consumers: fetch, acknowledge, inspect. Never create, update or delete anything.
    ...consumerOf(WORK_STREAM, durable),
    ...events.flatMap((s) => consumerOf(EVENTS_STREAM, eventDurableOf(a.name, s))),
    // Its own processed-items bucket.
    `$JS.API.STREAM.INFO.KV_${bucket}`,
    `$JS.API.DIRECT.GET.KV_${bucket}.>`,
    `$JS.API.STREAM.MSG.GET.KV_${bucket}`,
    `$KV.${bucket}.>`,
  ];
  const subscribe = [
    ...a.subscribe.filter((s) => !events.includes(s)),
    ...(a.trigger === 'request' ? [`${requestSubjectOf(a.name)} ${requestQueueOf(a.name)}`] : []),
    ...a.inbox.map((k) => `${INBOX_PREFIX}.${k}`),
    `${inboxPrefix(customerId, a.name)}.>`,
  ];
  return `permissions: {
          publish: { allow: ${list(publish)} }
          subscribe: { allow: ${list(subscribe)} }
          allow_responses: true
        }`;
}

/** The customer's leaf node. */
export function leafConfig(o: LeafOptions): string {
  const vars = secretVariables(o.customerId);
  const out = outboundSubjects(o);
  const inn = inboundSubjects(o);
  const agentUsers = o.agents.map((a) => `      {
        user: ${q(LEAF_USERS.agent(a.name))}, password: $${vars.agent(a.name)}
        ${agentPermissions(o.customerId, a)}
      }`);
  return `# BYOC leaf node of customer ${o.customerId}. Generated from boundary contract v${contractOf(o).version} (${contractHash(contractOf(o))}) and the agent catalog: do not edit.
server_name: ${q(`byoc-leaf-${o.customerId}`)}
host: ${q(o.listen.host)}
port: ${o.listen.port}
max_payload: 1048576

jetstream {
  store_dir: ${q(o.storeDir)}
  domain: ${q(`byoc-${o.customerId}`)}
}

accounts {
  # Agents and their JetStream (own domain). Nothing here reaches the hub.
  AGENTS: {
    jetstream: enabled
    users: [
${agentUsers.join('\n')}
      {
        # Creates the streams, consumers and buckets agents use; the only identity here allowed the JetStream API.
        user: ${q(LEAF_USERS.provisioner)}, password: $${vars.provisioner}
        permissions: { publish: { allow: ["$JS.API.>"] }, subscribe: { allow: [${q(`${inboxPrefix(o.customerId, LEAF_USERS.provisioner)}.>`)}] } }
      }
      {
        # The gateway's backlog reporter: reads its durables' pending counts (consumer info) and nothing else, with a
        # password of its own (the provisioner's, which may create streams, is used only at start and then closed).
        user: ${q(LEAF_USERS.backlog)}, password: $${vars.backlogReporter}
        permissions: { publish: ${backlogReaderSubjects(o.agents).length > 0 ? `{ allow: ${list(backlogReaderSubjects(o.agents))} }` : '{ deny: [">"] }'}, subscribe: { allow: [${q(`${inboxPrefix(o.customerId, LEAF_USERS.backlog)}.>`)}] } }
      }
    ]
    exports: [ { stream: ${q(`${OUTBOX_PREFIX}.>`)}, accounts: ["GATEWAY"] } ]
    imports: [ { stream: { account: "GATEWAY", subject: ${q(`${INBOX_PREFIX}.>`)} } } ]
  }
  # The gateway's local side: takes what agents hand over, delivers what was validated inbound, keeps the
  # rejection store. No agent has a user here.
  GATEWAY: {
    jetstream: enabled
    limits: { max_connections: 1 }
    users: [
      {
        user: ${q(LEAF_USERS.gatewayLocal)}, password: $${vars.gatewayLocal}
        permissions: {
          publish: { allow: [${q(`${INBOX_PREFIX}.>`)}, ${q(`${REJECTION_PREFIX}.>`)}, ${q(`$JS.API.STREAM.INFO.${REJECTION_STREAM}`)}, ${q(`$JS.API.STREAM.CREATE.${REJECTION_STREAM}`)}, ${q(`$JS.API.STREAM.UPDATE.${REJECTION_STREAM}`)}] }
          subscribe: { allow: [${q(`${OUTBOX_PREFIX}.>`)}, ${q(`${inboxPrefix(o.customerId, LEAF_USERS.gatewayLocal)}.>`)}] }
        }
      }
    ]
    imports: [ { stream: { account: "AGENTS", subject: ${q(`${OUTBOX_PREFIX}.>`)} } } ]
    exports: [ { stream: ${q(`${INBOX_PREFIX}.>`)}, accounts: ["AGENTS"] } ]
  }
  # The only account that shares anything with the hub. Its only user is the gateway's remote identity,
  # one connection at a time while the link is up (the leaf-node connection counts as the other), which may publish exactly the outbound kinds of the contract, receive exactly
  # the inbound ones, and receive the hub's acknowledgements on its own inbox.
  BOUNDARY: {
    limits: { max_connections: 2 }
    users: [
      {
        user: ${q(LEAF_USERS.gatewayRemote)}, password: $${vars.gatewayRemote}
        permissions: {
          publish: { allow: ${list(out)} }
          subscribe: { allow: ${list([...inn, `${inboxPrefix(o.customerId, LEAF_USERS.gatewayRemote)}.>`])} }
        }
      }
    ]
  }
}

leafnodes {
  remotes: [
    {
      # The host is pinned by the plane's settings; the credentials are the user JWT the vendor issued for
      # this customer's hub account (its permissions generated from the contract) and its seed, from Secrets
      # Manager. The hub's certificate must chain to the vendor's CA below and name that host; URLs the hub
      # advertises are dialed only under the same check, so the leaf proves its identity to nothing but a
      # holder of the hub's certificate.
      url: ${q(hubUrl(o.hub))}
      credentials: ${q(o.hubCredentialsFile)}
      account: "BOUNDARY"
      no_randomize: true
      deny_imports: ${list(NEVER_CROSS)}
      deny_exports: ${list(NEVER_CROSS)}
      tls: { ca_file: ${q(o.hubCaFile)}, timeout: 5 }
    }
  ]
}
`;
}

/** The ingest stream the vendor keeps in each customer's hub account: it acknowledges every crossing to the gateway. */
export function hubIngestStream(customerId: string) {
  return { name: HUB_INGEST_STREAM, subjects: [`byoc.${customerId}.out.>`], duplicate_window: 3600 * 1e9, max_age: 7 * 86400 * 1e9 };
}

/** The vendor's inbox prefix in a customer's hub account. */
export function vendorInboxPrefix(customerId: string): string {
  return `_INBOX_vendor_${envName(customerId).toLowerCase()}`;
}

/** The hub account of a customer. */
export function account(customerId: string): string {
  return `CUSTOMER_${envName(customerId)}`;
}

/** Allowed subjects of one identity on the hub, from the contract. */
export interface HubPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/**
 * What a customer's leaf connection may do on the operator-mode hub, from the leaf's point of view (the
 * way nats-server reads a leaf user's permissions): publish exactly the contract's outbound subjects of
 * this customer; receive exactly its inbound subjects and the replies to the gateway's requests (the
 * ingest stream's acknowledgements, on the gateway's remote identity's inbox). Nothing else, no wildcard
 * beyond that inbox.
 */
export function hubLeafPermissions(s: LinkSettings): HubPermissions {
  return { publish: outboundSubjects(s), subscribe: [...inboundSubjects(s), `${inboxPrefix(s.customerId, LEAF_USERS.gatewayRemote)}.>`] };
}

/**
 * The JetStream API subjects the vendor's service for one customer may use: create, inspect and read the
 * ingest stream (${HUB_INGEST_STREAM}) through consumers, acknowledge; never delete or purge it, never any
 * other stream.
 */
export function hubVendorJetStreamApi(): string[] {
  const s = HUB_INGEST_STREAM;
  return [
    '$JS.API.INFO',
    `$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`, `$JS.API.STREAM.INFO.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}`, `$JS.API.CONSUMER.CREATE.${s}.>`, `$JS.API.CONSUMER.DURABLE.CREATE.${s}.*`,
    `$JS.API.CONSUMER.INFO.${s}.*`, `$JS.API.CONSUMER.DELETE.${s}.*`, `$JS.API.CONSUMER.MSG.NEXT.${s}.*`,
    // Read one stored crossing by sequence (audits and reconciliation against the gateway's audit log).
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.ACK.${s}.>`,
  ];
}

/**
 * What the vendor's service for one customer may do on the operator-mode hub: receive the contract's
 * outbound subjects, send its inbound ones, use the ingest stream's JetStream API, and receive replies on
 * its own inbox prefix (`vendorInboxPrefix`).
 */
export function hubVendorPermissions(s: LinkSettings): HubPermissions {
  return { publish: [...inboundSubjects(s), ...hubVendorJetStreamApi()], subscribe: [...outboundSubjects(s), `${vendorInboxPrefix(s.customerId)}.>`] };
}

/** The hub account of the vendor's side of one customer (operator mode): its services and ingest stream. */
export function vendorAccount(customerId: string): string {
  return `VENDOR_${envName(customerId)}`;
}

export interface HubJwtOptions {
  /** The node's name (distinct per node of a cluster). @default "byoc-hub" */
  readonly serverName?: string;
  /** Where the vendor's services connect. */
  readonly listen: { readonly host: string; readonly port: number };
  /** Where customers' leaf nodes connect (TLS). */
  readonly leafListen: { readonly host: string; readonly port: number };
  readonly tls: { readonly certFile: string; readonly keyFile: string };
  readonly storeDir: string;
  /**
   * The operator-mode fragment: `hubAuthConfig(...)` of `lib/nats-auth.ts` (operator, system account, resolver).
   * Accounts, users and their permissions are not in the file: they are JWTs the resolver holds.
   */
  readonly auth: string;
  /** The boundary contract the hub's accounts are issued from (named in the header). @default BOUNDARY_CONTRACT */
  readonly contract?: BoundaryContract;
}

/**
 * The vendor hub in operator mode (decentralized auth): accounts and users come from operator-signed JWTs
 * (`lib/nats-auth.ts`), so the file holds no account, user or password. Leaf nodes authenticate with their
 * user JWT over TLS; what each may do is in its JWT, generated from the contract. Pings every 30 s (two
 * missed close the connection), so a leaf whose connection died silently frees its account's single
 * leaf-node slot within about a minute and a half.
 */
export function hubJwtConfig(o: HubJwtOptions): string {
  return `# BYOC vendor hub, operator mode. Generated from boundary contract v${contractOf(o).version} (${contractHash(contractOf(o))}): do not edit.
server_name: ${q(o.serverName ?? 'byoc-hub')}
host: ${q(o.listen.host)}
port: ${o.listen.port}
ping_interval: "30s"
ping_max: 2

jetstream { store_dir: ${q(o.storeDir)} }

${o.auth.trim()}

leafnodes {
  host: ${q(o.leafListen.host)}
  port: ${o.leafListen.port}
  no_advertise: true
  tls: { cert_file: ${q(o.tls.certFile)}, key_file: ${q(o.tls.keyFile)}, timeout: 5 }
}
`;
}
