import {
  Account, createAccount, createOperator, createUser, decode, encodeAccount, encodeActivation, encodeOperator, encodeUser,
  Export, fmtCreds, fromSeed, Import, KeyPair, OperatorLimits, UserPermissionsLimits,
} from '@nats-io/jwt';
import type { NatsConnection } from '@nats-io/nats-core';
import { CUSTOMER_ID } from './boundary-contract';
import {
  account, crossingKinds, HUB_INGEST_STREAM, hubIngestStream, hubLeafPermissions, hubVendorPermissions, inboundSubjects,
  LinkSettings, outboundSubjects, vendorAccount, vendorInboxPrefix,
} from './nats-config';

/**
 * Decentralized authentication of the vendor hub (NATS operator mode): the operator and its system
 * account, the two accounts of each customer, the customer's leaf user and the vendor's service users,
 * `.creds` files, and revocation pushed to running hubs. Everything here runs on nats-server 2.9 (Debian's
 * 2.9.10, used by the tests) and on newer servers.
 *
 * **Two accounts per customer.** nats-server before 2.14 does not check a leaf connection's messages
 * against the leaf user's publish permissions on the hub: the hub sends them to the leaf, which enforces
 * them on itself. A leaf that does not (any program speaking the leaf protocol with the customer's
 * credentials) could publish anything into the account it is bound to: the JetStream API (delete the
 * ingest stream), `$SYS` account requests (the account's connections), the vendor's inboxes. So the leaf
 * lands in an account of its own, `account(customerId)`, where it is the only user and that has no
 * JetStream; the vendor's services and the ingest stream live in `vendorAccount(customerId)`. Between the
 * two, only the contract's subjects exist: each outbound subject is a private service export of the
 * vendor's account imported by the customer's (so the ingest stream's acknowledgement returns to the
 * gateway), each inbound subject a private stream export the other way. The customer's account also maps
 * the subjects of the system services nats-server imports into every account (CONNZ, STATZ, user info:
 * `ACCOUNT_SYSTEM_SERVICES`) to a subject nothing listens on, so they do not answer it. Newer servers
 * enforce the leaf's permissions at the hub as well; the layout holds on both.
 *
 * **Keys.** The operator's key signs accounts (the vendor keeps its seed offline or in KMS-encrypted
 * storage of the control plane). Users are signed by signing keys of their account, never by the
 * account's identity key, so a leaked user-signing key is retired by re-issuing the account JWT without it
 * (the hub then disconnects every user it signed) while the account, its identity and its stream stay.
 * The vendor's service users are signed by a *scoped* key: its template in the operator-signed account
 * JWT carries the permissions generated from the contract and the server applies it whatever the user JWT
 * says, so that key can mint nothing wider. The customer's leaf user carries its permissions, also
 * generated from the contract, in its own JWT (see `leafUser` for why). The accounts' identity keys sign
 * nothing after registration but the activation tokens of the private exports.
 */

/** A key pair: the public key, and the seed (a secret). */
export interface KeyMaterial {
  readonly publicKey: string;
  /** The nkey seed (`SO...`, `SA...`, `SU...`): a secret. */
  readonly seed: string;
}

/** An identity with its JWT (public). */
export interface Identity extends KeyMaterial {
  readonly jwt: string;
}

/** A user: its JWT, its seed and both as a `.creds` file (a secret, as nats-server and clients read it). */
export interface UserCredentials extends Identity {
  readonly creds: string;
}

export interface OperatorSetup {
  readonly operator: Identity;
  /** The system account: the only account allowed `$SYS`, used to push account JWTs to the hubs. */
  readonly systemAccount: Identity;
  /**
   * The vendor's control-plane user in the system account: may push account JWTs
   * (`$SYS.REQ.CLAIMS.UPDATE`), list and read them back, nothing else; replies on `SYSTEM_USER_INBOX`. A
   * secret of the control plane: whoever holds it can replace any account JWT the operator signed.
   */
  readonly systemUser: UserCredentials;
}

/** Inbox prefix of the system user (its only subscription). */
export const SYSTEM_USER_INBOX = '_INBOX_byoc_system';
/** Subjects the system user may publish: account JWT updates and lookups. */
const SYSTEM_USER_PUBLISH = ['$SYS.REQ.CLAIMS.UPDATE', '$SYS.REQ.CLAIMS.LIST', '$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP'];

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const material = (kp: KeyPair): KeyMaterial => ({ publicKey: kp.getPublicKey(), seed: text(kp.getSeed()) });
const seedOf = (seed: string) => fromSeed(new TextEncoder().encode(seed));
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Explicit limits: what is not given would read as 0 on some fields and as "unlimited" on others. */
function limits(l: { conn: number; leaf: number; subs: number; payload: number; imports: number; exports: number; jetstream?: { disk: number; streams: number; consumers: number; maxAckPending: number } }): OperatorLimits {
  const js = l.jetstream;
  return {
    subs: l.subs, data: -1, payload: l.payload, imports: l.imports, exports: l.exports, wildcards: true, conn: l.conn, leaf: l.leaf,
    disallow_bearer: true,
    mem_storage: 0, disk_storage: js?.disk ?? 0, streams: js?.streams ?? 0, consumer: js?.consumers ?? 0,
    mem_max_stream_bytes: 0, disk_max_stream_bytes: js?.disk ?? 0, max_bytes_required: js !== undefined, max_ack_pending: js?.maxAckPending ?? 0,
  };
}

/**
 * Creates the operator, its system account and the vendor's system user: done once by the vendor. The
 * seeds are secrets (the operator's signs every account); the JWTs are public and go into every hub's
 * configuration (`hubAuthConfig`).
 */
export async function operatorInit(name = 'byoc'): Promise<OperatorSetup> {
  const op = createOperator();
  const sys = createAccount();
  const operatorJwt = await encodeOperator(name, op, { system_account: sys.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', sys, {
    limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
  }, { signer: op });
  const user = createUser();
  const userJwt = await encodeUser('byoc-control-plane', user, sys, {
    pub: { allow: SYSTEM_USER_PUBLISH }, sub: { allow: [`${SYSTEM_USER_INBOX}.>`] }, allowed_connection_types: ['STANDARD'],
  });
  return {
    operator: { ...material(op), jwt: operatorJwt },
    systemAccount: { ...material(sys), jwt: systemJwt },
    systemUser: { ...material(user), jwt: userJwt, creds: formatCreds(userJwt, text(user.getSeed())) },
  };
}

/** Limits of a customer's account, where only its leaf lands. */
export const CUSTOMER_ACCOUNT_LIMITS = {
  /** One leaf-node connection: a second one (same credentials, same server name or not) is refused, never replacing the first. */
  leaf: 1,
  /** The leaf counts as a connection of the account when the hub re-applies its JWT: one, and no client connection besides. */
  conn: 1,
  /** Subscriptions the leaf may hold (it needs a handful: the inbound kinds, the gateway's inbox, loop detection). */
  subs: 32,
} as const;

/** Limits of the vendor's account for one customer. */
export const VENDOR_ACCOUNT_LIMITS = {
  /** The vendor's service connections for this customer. */
  conn: 8,
  subs: 256,
  /** JetStream: the ingest stream only, on disk, bounded. */
  jetstream: { disk: 1024 * 1024 * 1024, streams: 1, consumers: 8, maxAckPending: 10000 },
} as const;

/**
 * Largest message of the link: the contract's largest kind plus room for headers (message ID). The
 * accounts' payload limit, which the hub applies to client publishes; nats-server 2.9 does not apply it to
 * what a leaf sends, so the ingest stream's `max_msg_size` (`hubJwtIngestStream`) bounds what is stored
 * and the vendor's consumers check sizes again (as they validate everything against the contract).
 */
export function hubMaxPayload(settings: LinkSettings): number {
  return Math.max(...crossingKinds(settings).map((k) => k.maxBytes)) + 1024;
}

/**
 * How long the vendor's account keeps the route back for a reply to a message the customer's leaf sent
 * (the ingest stream's acknowledgement takes milliseconds), in nanoseconds as JWTs count.
 */
const RESPONSE_THRESHOLD_NS = 10 * 1e9;

/**
 * The system services nats-server imports into every account, each answering with the account's
 * connections (IPs, names, subscriptions) or statistics: the first three on 2.9, user info since 2.10.
 */
export const ACCOUNT_SYSTEM_SERVICES = ['$SYS.REQ.ACCOUNT.PING.CONNZ', '$SYS.REQ.SERVER.PING.CONNZ', '$SYS.REQ.ACCOUNT.PING.STATZ', '$SYS.REQ.USER.INFO'] as const;

/** Where the customer's account sends what it must never answer: nothing subscribes there. */
export const voidSubject = (customerId: string) => `_BYOC_VOID.${customerId.replace(/-/g, '_')}`;

/** The ingest stream as the vendor creates it in a customer's vendor account: bounded, as that account requires. */
export function hubJwtIngestStream(settings: LinkSettings) {
  return {
    ...hubIngestStream(settings.customerId),
    max_bytes: VENDOR_ACCOUNT_LIMITS.jetstream.disk,
    max_msg_size: hubMaxPayload(settings),
  };
}

export interface CustomerAccountKeys {
  /** The customer account's identity and its leaf-role signing key. */
  readonly customer: { readonly seed: string; readonly leafSigningKeySeed: string };
  /** The vendor account's identity and its service-role signing key. */
  readonly vendor: { readonly seed: string; readonly serviceSigningKeySeed: string };
}

export interface CustomerAccount extends Identity {
  /** The account's friendly name on the hub (`account(customerId)` or `vendorAccount(customerId)`). */
  readonly name: string;
}

export interface CustomerAccounts {
  readonly customerId: string;
  /** The settings the accounts and users are issued for. */
  readonly settings: LinkSettings;
  /** Where the customer's leaf lands (`account(customerId)`): the leaf user only, no JetStream. */
  readonly customer: CustomerAccount & {
    /** Signing key of the customer's leaf users (`leafUser`). Secret. */
    readonly leafSigningKey: KeyMaterial;
  };
  /** The vendor's side of the customer (`vendorAccount(customerId)`): its services and the ingest stream. */
  readonly vendor: CustomerAccount & {
    /** Scoped signing key of the vendor-service role: signs the vendor's service users (`vendorUser`). Secret. */
    readonly serviceSigningKey: KeyMaterial;
  };
  /** Every seed above, to re-issue the same accounts later (contract change): secrets. */
  readonly keys: CustomerAccountKeys;
}

/** The user template of a scoped signing key: the permissions and limits every user it signs gets. */
function template(perms: { publish: readonly string[]; subscribe: readonly string[] }, subs: number, payload: number, connectionType: 'LEAFNODE' | 'STANDARD'): Partial<UserPermissionsLimits> {
  return {
    pub: { allow: [...perms.publish] },
    sub: { allow: [...perms.subscribe] },
    subs, payload, data: -1,
    bearer_token: false,
    allowed_connection_types: [connectionType],
  };
}

/**
 * Issues the two accounts of one customer, signed by the operator (`operatorSeed`): new keys, or `keys`
 * to re-issue the same accounts (a changed contract or setting), keeping `revocations` (from the current
 * customer account JWT: `revocationsOf`). Push the vendor account first, then the customer's
 * (`pushAccountJwt`, which refuses a JWT not issued in a later second than the one the hub holds).
 */
export async function customerAccounts(operatorSeed: string, settings: LinkSettings, options: { keys?: CustomerAccountKeys; revocations?: Record<string, number> } = {}): Promise<CustomerAccounts> {
  const c = settings.customerId;
  if (!CUSTOMER_ID.test(c)) throw new Error(`customerAccounts: customer ID "${c}" must match ${CUSTOMER_ID}`);
  const operator = seedOf(operatorSeed);
  const cust = options.keys ? seedOf(options.keys.customer.seed) : createAccount();
  const leafSk = options.keys ? seedOf(options.keys.customer.leafSigningKeySeed) : createAccount();
  const vend = options.keys ? seedOf(options.keys.vendor.seed) : createAccount();
  const serviceSk = options.keys ? seedOf(options.keys.vendor.serviceSigningKeySeed) : createAccount();
  const payload = hubMaxPayload(settings);
  const out = outboundSubjects(settings);
  const inn = inboundSubjects(settings);

  // The vendor's account exports each contract subject to the customer's account only (token required:
  // the activation names the customer's account and is signed by the vendor account's key).
  const exportsOfVendor: Export[] = [
    ...out.map((subject): Export => ({
      name: subject, subject, type: 'service', token_req: true, response_type: 'Singleton', response_threshold: RESPONSE_THRESHOLD_NS,
      description: 'customer to vendor (boundary contract)',
    })),
    ...inn.map((subject): Export => ({ name: subject, subject, type: 'stream', token_req: true, description: 'vendor to customer (boundary contract)' })),
  ];
  const activation = (subject: string, kind: 'service' | 'stream') => encodeActivation(subject, cust, vend, kind, { subject });
  const importsOfCustomer: Import[] = [
    ...await Promise.all(out.map(async (subject): Promise<Import> => ({ name: subject, subject, account: vend.getPublicKey(), type: 'service', token: await activation(subject, 'service') }))),
    ...await Promise.all(inn.map(async (subject): Promise<Import> => ({ name: subject, subject, account: vend.getPublicKey(), type: 'stream', token: await activation(subject, 'stream') }))),
  ];
  const customerClaims: Partial<Account> & { mappings: Record<string, { subject: string; weight: number }[]> } = {
    description: `BYOC customer ${c}: its leaf node only`,
    limits: limits({ ...CUSTOMER_ACCOUNT_LIMITS, payload, imports: importsOfCustomer.length, exports: 0 }),
    imports: importsOfCustomer,
    signing_keys: [leafSk.getPublicKey()],
    // The system services the server gives every account answer nobody here: their subjects are mapped
    // to one nothing listens on (JWT mappings are literal-to-literal on 2.9: no `$SYS.>` source).
    mappings: Object.fromEntries(ACCOUNT_SYSTEM_SERVICES.map((subject) => [subject, [{ subject: voidSubject(c), weight: 100 }]])),
    ...(options.revocations && Object.keys(options.revocations).length > 0 ? { revocations: options.revocations } : {}),
  };
  const vendorClaims: Partial<Account> = {
    description: `BYOC vendor side of customer ${c}: services and the ${HUB_INGEST_STREAM} stream`,
    limits: limits({ ...VENDOR_ACCOUNT_LIMITS, leaf: 0, payload, imports: 0, exports: exportsOfVendor.length }),
    exports: exportsOfVendor,
    signing_keys: [{ kind: 'user_scope', key: serviceSk.getPublicKey(), role: 'vendor-service', template: template(hubVendorPermissions(settings), VENDOR_ACCOUNT_LIMITS.subs, payload, 'STANDARD') }],
  };
  const customerJwt = await encodeAccount(account(c), cust, customerClaims as Partial<Account>, { signer: operator });
  const vendorJwt = await encodeAccount(vendorAccount(c), vend, vendorClaims, { signer: operator });
  return {
    customerId: c,
    settings: { ...settings },
    customer: { name: account(c), ...material(cust), jwt: customerJwt, leafSigningKey: material(leafSk) },
    vendor: { name: vendorAccount(c), ...material(vend), jwt: vendorJwt, serviceSigningKey: material(serviceSk) },
    keys: {
      customer: { seed: text(cust.getSeed()), leafSigningKeySeed: text(leafSk.getSeed()) },
      vendor: { seed: text(vend.getSeed()), serviceSigningKeySeed: text(serviceSk.getSeed()) },
    },
  };
}

/**
 * The customer's leaf user, signed by the customer account's signing key: a leaf-node connection only
 * (`allowed_connection_types`), into the customer's account, with the permissions generated from the
 * contract in its JWT (`hubLeafPermissions`: publish exactly the outbound subjects, receive the inbound
 * ones and the gateway's acknowledgements). Its `.creds` go to the customer's hub secret.
 *
 * Not a scoped key, unlike the vendor's: nats-server before 2.10.19 checks a user's connection types before it
 * applies a scoped key's template, so only a user JWT can restrict the leaf's credentials to leaf-node
 * connections. A leaked leaf signing key reaches no more than a leaf does: the customer's account holds
 * nothing but the contract's subjects towards the vendor's account.
 */
export async function leafUser(accounts: Pick<CustomerAccounts, 'customerId' | 'settings' | 'customer'>): Promise<UserCredentials> {
  const user = createUser();
  const perms = hubLeafPermissions(accounts.settings);
  const jwt = await encodeUser(`leaf-${accounts.customerId}`, user, accounts.customer.publicKey, {
    pub: { allow: [...perms.publish] }, sub: { allow: [...perms.subscribe] },
    subs: CUSTOMER_ACCOUNT_LIMITS.subs, payload: hubMaxPayload(accounts.settings), data: -1,
    bearer_token: false, allowed_connection_types: ['LEAFNODE'],
  }, { signer: seedOf(accounts.customer.leafSigningKey.seed) });
  return { ...material(user), jwt, creds: formatCreds(jwt, text(user.getSeed())) };
}

/**
 * A vendor service user for one customer, signed by the vendor account's scoped signing key: the user JWT
 * carries no permission, the key's template in the operator-signed account JWT applies
 * (`hubVendorPermissions`: receive the outbound kinds, send the inbound ones, the ingest stream's JetStream
 * API), so a leaked key mints nothing wider. It must use `vendorInboxPrefix(customerId)` as its inbox
 * prefix. The vendor's account admits no leaf node (limit 0), whatever the credentials.
 */
export async function vendorUser(accounts: Pick<CustomerAccounts, 'customerId' | 'vendor'>, name = `vendor-${accounts.customerId}`): Promise<UserCredentials> {
  const user = createUser();
  const jwt = await encodeUser(name, user, accounts.vendor.publicKey, {}, { signer: seedOf(accounts.vendor.serviceSigningKey.seed), scopedUser: true });
  return { ...material(user), jwt, creds: formatCreds(jwt, text(user.getSeed())) };
}

/** The inbox prefix a vendor service user of this customer must use (its only subscription besides the outbound kinds). */
export { vendorInboxPrefix };

/** A `.creds` file: the user JWT and its seed, in the decorated format nats-server (leaf remotes' `credentials`) and clients read. */
export function formatCreds(userJwt: string, userSeed: string): string {
  return text(fmtCreds(userJwt, seedOf(userSeed)));
}

/** Decodes (and verifies the signature of) an account JWT. */
function accountClaims(accountJwt: string) {
  const claims = decode<Account>(accountJwt);
  if (claims.nats?.type !== 'account') throw new Error('not an account JWT');
  return claims;
}

/** Re-signs an account JWT with changed claims; refuses one the operator did not sign. */
async function reissue(accountJwt: string, operatorSeed: string, change: (nats: Partial<Account>) => Partial<Account>): Promise<string> {
  const claims = accountClaims(accountJwt);
  const operator = seedOf(operatorSeed);
  if (claims.iss !== operator.getPublicKey()) throw new Error(`account ${claims.name} was not issued by this operator`);
  const { type: _t, version: _v, ...nats } = claims.nats as Partial<Account> & { type?: string; version?: number };
  void _t; void _v;
  // A hub keeps the JWT with the later issue time (seconds) and takes the last one pushed on a tie: the new
  // JWT must be issued in a later second than the one it replaces, or pushing the old one could undo it.
  while (nowSeconds() <= claims.iat) await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
  return encodeAccount(claims.name, claims.sub, change(nats), { signer: operator });
}

/**
 * Revokes one user of an account: a new account JWT whose `revocations` name the user's public key with
 * the time `at` (seconds; default now). Every user JWT with that key issued at or before `at` is refused
 * from then on; a hub the JWT is pushed to (`pushAccountJwt`) disconnects it at once, leaf connections
 * included. Issue new credentials after `at` (a later second) to let the customer back in.
 */
export function revokeUser(accountJwt: string, userPublicKey: string, operatorSeed: string, at = nowSeconds()): Promise<string> {
  if (!/^U[A-Z2-7]{55}$/.test(userPublicKey)) throw new Error('revokeUser: userPublicKey must be a user public key (U..., 56 characters)');
  return reissue(accountJwt, operatorSeed, (nats) => ({ ...nats, revocations: { ...(nats.revocations ?? {}), [userPublicKey]: at } }));
}

/**
 * Revokes a whole account: every user issued up to `at` is revoked (`revocations["*"]`), and it admits no
 * connection and no leaf node at all (limits 0), so even a user signed later cannot connect. Pushed to a
 * running hub, it disconnects everything in the account. Reversed only by issuing the account again
 * (`customerAccounts` with its keys).
 */
export function revokeAccount(accountJwt: string, operatorSeed: string, at = nowSeconds()): Promise<string> {
  return reissue(accountJwt, operatorSeed, (nats) => ({
    ...nats,
    limits: { ...(nats.limits ?? {}), conn: 0, leaf: 0 },
    revocations: { ...(nats.revocations ?? {}), '*': at },
  }));
}

/** The revocations of an account JWT (user public key, or `*`, to the time before which users are refused). */
export function revocationsOf(accountJwt: string): Record<string, number> {
  return { ...(accountClaims(accountJwt).nats.revocations ?? {}) };
}

/**
 * Sends an account JWT to the running hub `nc` is connected to, as the system user (connected with
 * `inboxPrefix: SYSTEM_USER_INBOX`): `$SYS.REQ.CLAIMS.UPDATE`. The hub validates it against the operator,
 * stores it in its resolver folder, applies it at once (revoked users are disconnected) and spreads it to
 * the other nodes of its cluster.
 *
 * A hub replaces an account's JWT with any valid one pushed this way, older or not (nats-server 2.9 and
 * newer; only the nodes' periodic reconciliation prefers the later one): pushing a JWT from before a
 * revocation would undo it. So this first reads what the hub holds (`$SYS.REQ.CLAIMS.LIST`, `...LOOKUP`)
 * and refuses to push a JWT not issued after it; then reads it back to confirm.
 */
export async function pushAccountJwt(nc: NatsConnection, accountJwt: string, timeoutMs = 5000): Promise<void> {
  const claims = accountClaims(accountJwt);
  const { sub, name } = claims;
  const lookup = async () => (await nc.request(`$SYS.REQ.ACCOUNT.${sub}.CLAIMS.LOOKUP`, '', { timeout: timeoutMs })).string();
  const listed: string[] = JSON.parse((await nc.request('$SYS.REQ.CLAIMS.LIST', '', { timeout: timeoutMs })).string()).data ?? [];
  if (listed.includes(sub)) {
    const held = await lookup();
    if (held === accountJwt) return;
    const heldIat = accountClaims(held).iat;
    if (heldIat >= claims.iat) {
      throw new Error(`the hub holds a JWT for account ${name} (${sub}) issued at ${heldIat}, not before this one (${claims.iat}): pushing it would replace a newer one (a revocation, say)`);
    }
  }
  const reply = JSON.parse((await nc.request('$SYS.REQ.CLAIMS.UPDATE', accountJwt, { timeout: timeoutMs })).string());
  if (reply.error || reply.data?.code !== 200) throw new Error(`hub refused account ${name} (${sub}): ${reply.error?.description ?? JSON.stringify(reply)}`);
  if (await lookup() !== accountJwt) throw new Error(`hub holds another JWT for account ${name} (${sub}) after the update`);
}

/** What the hub needs to trust the operator and resolve accounts: no secret. */
export interface HubAuthOptions {
  /** The operator's JWT (public; from `operatorInit`). Inlined in the configuration. */
  readonly operatorJwt: string;
  /** Public key (`A...`) of the system account, the one account allowed `$SYS` (from `operatorInit`). */
  readonly systemAccountPublicKey: string;
  /**
   * Folder where the hub's `full` resolver keeps every account JWT it was given (one file per account):
   * persistent storage of the node, writable by nats-server, not shared between nodes (nodes of a cluster
   * exchange JWTs over `$SYS`).
   */
  readonly resolverDir: string;
  /**
   * The system account's JWT (public; from `operatorInit`). Given, it is preloaded into the resolver, so the
   * vendor's system user can connect to a hub whose resolver folder is still empty and push the customers'
   * accounts. Without it the folder must already hold it.
   */
  readonly systemAccountJwt?: string;
}

const q = (s: string) => JSON.stringify(s);

/**
 * The operator-mode fragment of the hub's configuration: trust the operator, name the system account, keep
 * account JWTs in a `full` resolver (nats-server 2.2 and newer, so 2.9 too). Accounts and their changes
 * (a new customer, a revoked user, a revoked account) reach every running node without a restart: the
 * vendor's system user publishes the account JWT on `$SYS.REQ.CLAIMS.UPDATE` (`pushAccountJwt`), each node
 * validates it against the operator, stores it in `resolverDir` and applies it at once, disconnecting
 * revoked users; nodes also reconcile their folders with each other every `interval`. `allow_delete` is off:
 * an account is cut off by revoking it (`revokeAccount`), never by deleting its JWT, so a stale node cannot
 * bring it back. The fragment holds no secret.
 */
export function hubAuthConfig(o: HubAuthOptions): string {
  if (!/^eyJ/.test(o.operatorJwt)) throw new Error('hubAuthConfig: operatorJwt must be the operator JWT itself (eyJ...), not a file name');
  if (!/^A[A-Z2-7]{55}$/.test(o.systemAccountPublicKey)) throw new Error('hubAuthConfig: systemAccountPublicKey must be an account public key (A..., 56 characters)');
  const preload = o.systemAccountJwt ? `\nresolver_preload: {\n  ${o.systemAccountPublicKey}: ${q(o.systemAccountJwt)}\n}\n` : '';
  return `operator: ${q(o.operatorJwt)}
system_account: ${q(o.systemAccountPublicKey)}
resolver: {
  type: full
  dir: ${q(o.resolverDir)}
  allow_delete: false
  interval: "2m"
  timeout: "1.9s"
}
${preload}`;
}
