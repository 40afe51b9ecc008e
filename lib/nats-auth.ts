/**
 * Decentralized authentication of the vendor hub (NATS operator mode): the operator and its system account,
 * one account per customer, the customer's leaf user and the vendor's service user in it, `.creds` files,
 * and revocation pushed to running hubs. Everything here runs on nats-server 2.9 (Debian's 2.9.10, used by
 * the tests) and on newer servers.
 */

const q = (s: string) => JSON.stringify(s);

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
