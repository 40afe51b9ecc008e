import { BOUNDARY_CONTRACT, contractHash, Direction, MessageKind, subjectOf } from './boundary-contract';

/**
 * NATS configurations of the narrow link, generated from the boundary contract: the customer's leaf node
 * and the vendor hub's side for that customer. Secrets never appear in them: passwords are references to
 * environment variables (`$NAME`), which nats-server resolves at start and ECS fills from Secrets Manager.
 * The output runs on nats-server 2.9 (Debian's, used by the tests) and on the 2.10 server the plane pins.
 */

/** Local subjects (agents' account) where agents hand messages to the gateway, and where it delivers inbound ones. */
export const OUTBOX_PREFIX = 'boundary.outbox';
export const INBOX_PREFIX = 'boundary.inbox';
/** Where the gateway keeps rejected messages: a local stream that never crosses. */
export const REJECTED_PREFIX = 'boundary.rejected';
export const DEAD_LETTER_STREAM = 'BOUNDARY_REJECTED';

/** Subjects the leaf remote refuses in both directions whatever else is allowed: system, JetStream, global inboxes. */
export const NEVER_CROSS = ['$SYS.>', '$JS.>', '$JSC.>', '$KV.>', '$O.>', '$G.>', '_INBOX.>', '_R_.>', '$NRG.>'];

export interface LinkSettings {
  readonly customerId: string;
  /** Share anonymised fingerprints with the vendor. Off, fingerprints are absent from every rule. @default true */
  readonly shareLearning?: boolean;
}

/** The contract's kinds that cross for this customer: opt-out kinds are removed, not filtered. */
export function crossingKinds(settings: LinkSettings): MessageKind[] {
  const share = settings.shareLearning ?? true;
  return BOUNDARY_CONTRACT.kinds.filter((k) => share || !k.optOut);
}

const outbound = (s: LinkSettings) => crossingKinds(s).filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR);
const inbound = (s: LinkSettings) => crossingKinds(s).filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER);

/** The customer-scoped inbox prefix for request/reply: never `_INBOX.>` wide open. */
export function inboxPrefix(customerId: string): string {
  return `_INBOX_${customerId.replace(/-/g, '_')}`;
}

/** Environment variable names for the link's secrets. */
export function secretVariables(customerId: string) {
  const id = customerId.toUpperCase().replace(/-/g, '_');
  return {
    /** Password of the gateway's two users on the leaf. */
    gateway: 'BYOC_GATEWAY_PASSWORD',
    /** Password agents use on the leaf. */
    agents: 'BYOC_AGENTS_PASSWORD',
    /**
     * The leaf's remote URL with its credentials, `tls://leaf-<customer>:<password>@<hub host>:<port>`: one
     * secret, because nats-server substitutes a variable only as a whole value.
     */
    leafRemoteUrl: 'BYOC_LEAF_REMOTE_URL',
    /** On the hub: the same password, per customer. */
    hubLeaf: `BYOC_LEAF_${id}_PASSWORD`,
    /** On the hub: password of the vendor's services in the customer's account. */
    hubVendor: `BYOC_VENDOR_${id}_PASSWORD`,
  };
}

const q = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => `[${xs.map(q).join(', ')}]`;

export interface LeafOptions extends LinkSettings {
  /** Where agents connect. */
  readonly listen: { readonly host: string; readonly port: number };
  readonly storeDir: string;
  /** CA bundle to verify the hub's certificate. @default - the system's roots */
  readonly hubCaFile?: string;
}

/** The customer's leaf node. */
export function leafConfig(o: LeafOptions): string {
  const vars = secretVariables(o.customerId);
  const out = outbound(o).map((k) => subjectOf(k, o.customerId));
  const inn = inbound(o).map((k) => subjectOf(k, o.customerId));
  const inbox = `${inboxPrefix(o.customerId)}.>`;
  return `# BYOC leaf node of customer ${o.customerId}. Generated from boundary contract v${BOUNDARY_CONTRACT.version} (${contractHash()}): do not edit.
server_name: ${q(`byoc-leaf-${o.customerId}`)}
host: ${q(o.listen.host)}
port: ${o.listen.port}
max_payload: 1048576

jetstream {
  store_dir: ${q(o.storeDir)}
  domain: ${q(`byoc-${o.customerId}`)}
}

accounts {
  # Agents, their JetStream (own domain) and the gateway's local side. Nothing here reaches the hub:
  # the leaf remote is bound to BOUNDARY only.
  AGENTS: {
    jetstream: enabled
    users: [
      {
        user: "agents", password: $${vars.agents}
        permissions: {
          publish: { allow: ["work.>", "events.>", "dead.>", ${q(`${OUTBOX_PREFIX}.>`)}, "$JS.API.>", "$JS.ACK.>", "$KV.>", ${q(inbox)}], deny: ["byoc.>", ${q(`${INBOX_PREFIX}.>`)}, ${q(`${REJECTED_PREFIX}.>`)}] }
          subscribe: { allow: ["work.>", "events.>", ${q(`${INBOX_PREFIX}.>`)}, ${q(inbox)}], deny: ["byoc.>", ${q(`${OUTBOX_PREFIX}.>`)}] }
        }
      }
      {
        user: "gateway-local", password: $${vars.gateway}
        permissions: {
          publish: { allow: [${q(`${INBOX_PREFIX}.>`)}, ${q(`${REJECTED_PREFIX}.>`)}, "$JS.API.>", ${q(inbox)}] }
          subscribe: { allow: [${q(`${OUTBOX_PREFIX}.>`)}, ${q(inbox)}] }
        }
      }
    ]
  }
  # The only account that shares anything with the hub, and its only user is the gateway, which may
  # publish exactly the outbound kinds of the contract and receive exactly the inbound ones.
  BOUNDARY: {
    users: [
      {
        user: "gateway", password: $${vars.gateway}
        permissions: {
          publish: { allow: ${list(out)} }
          subscribe: { allow: ${list(inn)} }
        }
      }
    ]
  }
}

leafnodes {
  remotes: [
    {
      # tls://leaf-${o.customerId}:<password>@<hub>:<port>, from Secrets Manager
      url: $${vars.leafRemoteUrl}
      account: "BOUNDARY"
      deny_imports: ${list(NEVER_CROSS)}
      deny_exports: ${list(NEVER_CROSS)}
      tls: {${o.hubCaFile ? ` ca_file: ${q(o.hubCaFile)}` : ''} }
    }
  ]
}
`;
}

export interface HubOptions {
  readonly customers: readonly LinkSettings[];
  readonly listen: { readonly host: string; readonly port: number };
  readonly leafListen: { readonly host: string; readonly port: number };
  readonly tls: { readonly certFile: string; readonly keyFile: string };
}

/** The vendor hub: one account per customer, whose leaf user may send in only what the contract lets out. */
export function hubConfig(o: HubOptions): string {
  const accounts = o.customers.map((c) => {
    const vars = secretVariables(c.customerId);
    const out = outbound(c).map((k) => subjectOf(k, c.customerId));
    const inn = inbound(c).map((k) => subjectOf(k, c.customerId));
    return `  ${q(account(c.customerId))}: {
    users: [
      # The vendor's services for this customer: read what the customer sends, send control messages.
      { user: ${q(`vendor-${c.customerId}`)}, password: $${vars.hubVendor}, permissions: { publish: { allow: ${list(inn)} }, subscribe: { allow: ${list(out)} } } }
    ]
  }`;
  });
  // Each customer's leaf lands in that customer's own account: nothing it sends reaches another customer,
  // and in its account only the vendor user above listens (to the outbound kinds) or speaks (the inbound ones).
  const leafUsers = o.customers.map((c) => {
    const vars = secretVariables(c.customerId);
    return `      { user: ${q(`leaf-${c.customerId}`)}, password: $${vars.hubLeaf}, account: ${q(account(c.customerId))} }`;
  });
  return `# BYOC vendor hub. Generated from boundary contract v${BOUNDARY_CONTRACT.version} (${contractHash()}): do not edit.
server_name: "byoc-hub"
host: ${q(o.listen.host)}
port: ${o.listen.port}

accounts {
${accounts.join('\n')}
}

leafnodes {
  host: ${q(o.leafListen.host)}
  port: ${o.leafListen.port}
  tls: { cert_file: ${q(o.tls.certFile)}, key_file: ${q(o.tls.keyFile)}, timeout: 2 }
  authorization: {
    users: [
${leafUsers.join('\n')}
    ]
  }
}
`;
}

/** The hub account of a customer. */
export function account(customerId: string): string {
  return `CUSTOMER_${customerId.toUpperCase().replace(/-/g, '_')}`;
}
