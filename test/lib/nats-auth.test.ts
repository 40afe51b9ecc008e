import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { credsAuthenticator, jwtAuthenticator, Msg, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Account, createAccount, createUser, decode, encodeAccount, encodeUser, fromSeed, parseCreds, User } from '@nats-io/jwt';
import {
  ACCOUNT_SYSTEM_SERVICES, customerAccounts, formatCreds, hubAuthConfig, hubMaxPayload, leafUser, operatorInit, pushAccountJwt, revokeAccount, revocationsOf,
  revokeUser, vendorUser,
} from '../../lib/nats-auth';
import { HUB_INGEST_STREAM, hubJwtConfig, hubLeafPermissions, hubVendorPermissions, inboundSubjects, inboxPrefix, LinkSettings, outboundSubjects } from '../../lib/nats-config';
import { CustomerLeaf, OperatorHub, startOperatorHub, waitFor } from '../servers/operator-hub';
import { permissionErrors } from '../servers/link';
import { freePort, startNats, testCertificates } from '../servers/nats';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bytes = (s: string) => new TextEncoder().encode(s);

/** Collects what a connection receives on `subjects`. */
function collect(nc: NatsConnection, subjects: string | string[]) {
  const got: { subject: string; payload: string }[] = [];
  for (const s of [subjects].flat()) nc.subscribe(s, { callback: (err: Error | null, m: Msg) => { if (!err) got.push({ subject: m.subject, payload: m.string() }); } });
  return { got, ready: nc.flush() };
}

/** The gateway inbox the leaf may receive replies on (`hubLeafPermissions`). */
const gatewayInbox = (customerId: string, token: string) => `${inboxPrefix(customerId, 'gateway')}.${token}`;

describe('generated configuration and JWTs', () => {
  test('hubAuthConfig and hubJwtConfig are valid for nats-server 2.9 (nats-server -t) and hold no seed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-hubconf-'));
    try {
      const op = await operatorInit();
      const certs = testCertificates(dir);
      fs.mkdirSync(path.join(dir, 'resolver'));
      const auth = hubAuthConfig({ operatorJwt: op.operator.jwt, systemAccountPublicKey: op.systemAccount.publicKey, resolverDir: path.join(dir, 'resolver'), systemAccountJwt: op.systemAccount.jwt });
      const conf = hubJwtConfig({ listen: { host: '127.0.0.1', port: 4222 }, leafListen: { host: '127.0.0.1', port: 7422 }, tls: { certFile: certs.cert, keyFile: certs.key }, storeDir: dir, auth });
      fs.writeFileSync(path.join(dir, 'hub.conf'), conf);
      expect(execFileSync('nats-server', ['-t', '-c', path.join(dir, 'hub.conf')], { encoding: 'utf8', stdio: 'pipe' })).toBe('');
      expect(conf).toContain('type: full');
      expect(conf).toContain(`system_account: "${op.systemAccount.publicKey}"`);
      // A seed is a whole 58-character token; a 56-character public key may contain "SA" or "SU" (it did, once in CI).
      expect(conf).not.toMatch(/(?<![A-Z2-7])S[OAU][A-Z2-7]{56}(?![A-Z2-7])/); // no seed of any kind
      expect(conf).not.toMatch(/accounts\s*\{|authorization|password/);
      expect(() => hubAuthConfig({ operatorJwt: '/etc/op.jwt', systemAccountPublicKey: op.systemAccount.publicKey, resolverDir: dir })).toThrow(/operatorJwt/);
      expect(() => hubAuthConfig({ operatorJwt: op.operator.jwt, systemAccountPublicKey: op.operator.publicKey, resolverDir: dir })).toThrow(/systemAccountPublicKey/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('permissions are generated from the contract: the leaf\'s in its user JWT (leaf-node connections only), the vendor service\'s in its scoped key\'s template in the operator-signed account JWT', async () => {
    const op = await operatorInit();
    for (const settings of [{ customerId: 'acme' }, { customerId: 'acme', shareLearning: false }] as LinkSettings[]) {
      const a = await customerAccounts(op.operator.seed, settings);
      const customer = decode<Account>(a.customer.jwt);
      const vendor = decode<Account>(a.vendor.jwt);
      expect([customer.iss, vendor.iss]).toEqual([op.operator.publicKey, op.operator.publicKey]);
      expect([customer.name, vendor.name]).toEqual(['CUSTOMER_ACME', 'VENDOR_ACME']);
      expect(customer.nats.signing_keys).toEqual([a.customer.leafSigningKey.publicKey]);
      const leaf = await leafUser(a);
      const leafClaims = decode<User>(leaf.jwt);
      expect(leafClaims.iss).toBe(a.customer.leafSigningKey.publicKey);
      expect(leafClaims.nats.issuer_account).toBe(a.customer.publicKey);
      expect(leafClaims.nats.pub?.allow).toEqual(hubLeafPermissions(settings).publish);
      expect(leafClaims.nats.sub?.allow).toEqual(hubLeafPermissions(settings).subscribe);
      expect(leafClaims.nats.pub?.allow).toEqual(outboundSubjects(settings));
      expect(leafClaims.nats.allowed_connection_types).toEqual(['LEAFNODE']);
      const serviceKey = vendor.nats.signing_keys![0] as unknown as { key: string; template: User };
      expect(serviceKey.key).toBe(a.vendor.serviceSigningKey.publicKey);
      expect(serviceKey.template.pub?.allow).toEqual(hubVendorPermissions(settings).publish);
      expect(serviceKey.template.sub?.allow).toEqual(hubVendorPermissions(settings).subscribe);
      const service = decode<User>((await vendorUser(a)).jwt);
      expect(service.iss).toBe(a.vendor.serviceSigningKey.publicKey);
      expect([service.nats.pub, service.nats.sub]).toEqual([undefined, undefined]);
      // Between the two accounts exist exactly the contract's subjects, each private to this customer's account.
      expect(customer.nats.imports!.map((i) => [i.type, i.subject, i.account])).toEqual([
        ...outboundSubjects(settings).map((s) => ['service', s, a.vendor.publicKey]),
        ...inboundSubjects(settings).map((s) => ['stream', s, a.vendor.publicKey]),
      ]);
      expect(vendor.nats.exports!.every((e) => e.token_req === true)).toBe(true);
      expect(customer.nats.exports ?? []).toEqual([]);
      expect(customer.nats.limits).toMatchObject({ leaf: 1, conn: 1, disk_storage: 0, mem_storage: 0, disallow_bearer: true });
      expect(vendor.nats.limits).toMatchObject({ leaf: 0, streams: 1, max_bytes_required: true });
      const subjects = JSON.stringify([customer.nats.imports, vendor.nats.exports, serviceKey.template, leafClaims.nats]);
      expect(subjects.includes('fingerprint')).toBe(settings.shareLearning !== false);
      // The opt-out is one-way: every inbound kind, the pool's learnings included, is exported to the customer,
      // received by its leaf and sent by the vendor's service, with shareLearning off too.
      expect(inboundSubjects(settings)).toEqual(['byoc.acme.in.control', 'byoc.acme.in.learning']);
      for (const subject of inboundSubjects(settings)) {
        expect(leafClaims.nats.sub?.allow).toContain(subject);
        expect(serviceKey.template.pub?.allow).toContain(subject);
        expect(vendor.nats.exports!.find((e) => e.subject === subject)).toMatchObject({ type: 'stream', token_req: true });
      }
      // The .creds parse back to the same JWT and seed.
      const parsed = await parseCreds(bytes(leaf.creds));
      expect([parsed.jwt, parsed.key]).toEqual([leaf.jwt, leaf.seed]);
      expect(leaf.creds).toMatch(/^-----BEGIN NATS USER JWT-----\n.+\n------END NATS USER JWT------\n[\s\S]*-----BEGIN USER NKEY SEED-----\nSU[A-Z2-7]+\n------END USER NKEY SEED------\n$/);
    }
  });
});

describe('on an operator-mode hub (nats-server 2.9, TLS), customers registered over $SYS without restart', () => {
  let hub: OperatorHub;
  /** Customer B: the victim, with its real leaf (the customer plane's generated configuration, .creds). */
  let alphaLeaf: CustomerLeaf;
  /** Customer A: the attacker, with its own leaf credentials and a leaf that ignores what the hub tells it. */
  const A = 'mallory';
  const B = 'alpha';
  beforeAll(async () => {
    hub = await startOperatorHub();
    await hub.addCustomer({ customerId: B });
    await hub.addCustomer({ customerId: A, shareLearning: false });
    alphaLeaf = await hub.leaf(B);
    await waitFor(() => alphaLeaf.connected(), 15000, 'alpha\'s leaf connected');
  });
  afterAll(async () => { await hub?.stop(); });

  /** A's rogue leaf, after the previous one (one leaf per account) is gone from the hub. */
  async function rogueOf(customerId: string) {
    const account = hub.accounts(customerId).customer.publicKey;
    await waitFor(async () => !(await hub.leafConnections()).some((l) => l.account === account), 5000, `no leaf of ${customerId} on the hub`);
    return hub.rogue(await hub.leafCredentials(customerId), `byoc-leaf-${customerId}`);
  }

  test('how nats-server reads a leaf user\'s permissions: "subscribe" is what the hub delivers to the leaf (enforced at the hub); "publish" is what the leaf may send, which before 2.14 only the leaf enforces', async () => {
    // A plain account with one leaf user with explicit permissions, and an observer beside it.
    const acct = createAccount();
    const accountJwt = await encodeAccount('SEMANTICS', acct, { limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 } }, { signer: fromSeed(bytes(hub.operator.operator.seed)) });
    await pushAccountJwt(await hub.system(), accountJwt);
    const leafKp = createUser();
    const leafJwt = await encodeUser('semantics-leaf', leafKp, acct, { pub: { allow: ['sem.leaf.publishes'] }, sub: { allow: ['sem.leaf.receives'] } });
    const obsKp = createUser();
    const observer = await connect({ servers: `127.0.0.1:${hub.hubPort}`, authenticator: jwtAuthenticator(await encodeUser('semantics-observer', obsKp, acct), obsKp.getSeed()) });
    try {
      const atObserver = collect(observer, 'sem.>');
      await atObserver.ready;
      const rogue = await hub.rogue({ publicKey: leafKp.getPublicKey(), seed: new TextDecoder().decode(leafKp.getSeed()), jwt: leafJwt, creds: '' }, 'semantics-rogue');
      // The hub tells the leaf its permissions from the leaf's side: what it may export (publish) and import (receive).
      expect(rogue.info()?.export?.allow).toEqual(['sem.leaf.publishes']);
      expect(rogue.info()?.import?.allow).toEqual(['sem.leaf.receives']);
      // Delivery to the leaf: only "subscribe" subjects, even for interest in everything.
      rogue.subscribe('>');
      await rogue.flush();
      await waitFor(async () => {
        for (const s of ['sem.leaf.publishes', 'sem.other']) observer.publish(s, 'hub-to-leaf');
        observer.publish('sem.leaf.receives', 'hub-to-leaf');
        await observer.flush();
        await sleep(50);
        return rogue.received.some((m) => m.subject === 'sem.leaf.receives');
      }, 5000, 'delivery to the leaf');
      expect([...new Set(rogue.received.map((m) => m.subject))]).toEqual(['sem.leaf.receives']);
      // From the leaf: the hub checks its messages against "publish" only from 2.14 on.
      rogue.publish('sem.other', 'leaf-to-hub');
      rogue.publish('sem.leaf.publishes', 'leaf-to-hub');
      await rogue.flush();
      await waitFor(() => atObserver.got.some((m) => m.subject === 'sem.leaf.publishes' && m.payload === 'leaf-to-hub'), 5000, 'the allowed publish');
      await sleep(100);
      const [major, minor] = String(rogue.info()?.version).split('.').map(Number);
      const hubEnforces = major > 2 || (major === 2 && minor >= 14);
      expect(atObserver.got.some((m) => m.subject === 'sem.other' && m.payload === 'leaf-to-hub')).toBe(!hubEnforces);
      rogue.close();

      // A real nats-server leaf with the same user enforces "publish" on itself, as the hub told it.
      const dir = fs.mkdtempSync(path.join(hub.dir, 'semantics-leaf-'));
      const port = await freePort();
      fs.writeFileSync(path.join(dir, 'leaf.creds'), formatCreds(leafJwt, new TextDecoder().decode(leafKp.getSeed())));
      fs.writeFileSync(path.join(dir, 'leaf.conf'), `port: ${port}\nhost: 127.0.0.1\nserver_name: semantics-leaf\nleafnodes { remotes: [ { url: "tls://localhost:${hub.leafPort}", credentials: ${JSON.stringify(path.join(dir, 'leaf.creds'))}, tls: { ca_file: ${JSON.stringify(hub.certificates.ca)} } } ] }\n`);
      const leaf = await startNats(path.join(dir, 'leaf.conf'), port);
      const local = await connect({ servers: `127.0.0.1:${port}` });
      try {
        await waitFor(async () => {
          local.publish('sem.other', 'stock-leaf');
          local.publish('sem.leaf.publishes', 'stock-leaf');
          await local.flush();
          await sleep(50);
          return atObserver.got.some((m) => m.payload === 'stock-leaf');
        }, 10000, 'the stock leaf\'s allowed publish');
        expect(atObserver.got.filter((m) => m.payload === 'stock-leaf').map((m) => m.subject)).not.toContain('sem.other');
      } finally {
        await local.close();
        await leaf.stop();
      }
    } finally {
      await observer.close();
    }
  });

  test('1. a leaf with customer A\'s credentials gets only the contract\'s outbound subjects into A\'s hub accounts: JetStream API, $SYS, inbound, opted-out, arbitrary and other customers\' subjects reach nothing', async () => {
    const atVendor = collect(await hub.observer(A), '>');
    await atVendor.ready;
    const rogue = await rogueOf(A);
    rogue.subscribe('>');
    const control = inboundSubjects({ customerId: A })[0];
    const forbidden = [
      control, `byoc.${A}.out.fingerprint` /* opted out */, `byoc.${A}.out.secrets`, `byoc.${A}.out.workflow.extra`, `byoc.${A}.in.shell`,
      'arbitrary.subject', 'work.code-generator', `byoc.${B}.out.workflow`, `byoc.${B}.in.control`,
      `_INBOX_vendor_${A}.steal`, '_INBOX.x', '_R_.abc.def', '$KV.config.x',
      '$JS.API.INFO', '$JS.API.STREAM.LIST', `$JS.API.STREAM.INFO.${HUB_INGEST_STREAM}`, `$JS.API.STREAM.PURGE.${HUB_INGEST_STREAM}`, `$JS.API.STREAM.DELETE.${HUB_INGEST_STREAM}`,
      '$JS.API.STREAM.CREATE.EVIL', `$JS.API.CONSUMER.DURABLE.CREATE.${HUB_INGEST_STREAM}.evil`,
    ];
    for (const subject of forbidden) {
      const body = subject.includes('CONSUMER') ? JSON.stringify({ stream_name: HUB_INGEST_STREAM, config: { durable_name: 'evil', deliver_subject: control } }) : '{"forbidden":true}';
      rogue.publish(subject, body, gatewayInbox(A, 'r1'));
      rogue.publish(subject, body, control);
    }
    // Positive control: each outbound kind of A crosses, and the ingest stream's acknowledgement reaches the leaf.
    const outbound = outboundSubjects({ customerId: A, shareLearning: false });
    for (const subject of outbound) rogue.publish(subject, JSON.stringify({ sentinel: subject }), gatewayInbox(A, 'ack'));
    // An outbound subject with more than the link's largest message: the ingest stream refuses to store it.
    rogue.publish(outbound[0], 'x'.repeat(hubMaxPayload({ customerId: A }) + 1), gatewayInbox(A, 'oversize'));
    await rogue.flush();
    await waitFor(() => rogue.received.some((m) => m.subject === gatewayInbox(A, 'oversize')), 5000, 'the stream\'s answer to the oversized message');
    expect(rogue.received.find((m) => m.subject === gatewayInbox(A, 'oversize'))!.payload).toMatch(/"error"/);
    await waitFor(() => outbound.every((s) => atVendor.got.some((m) => m.subject === s)), 5000, 'every outbound kind at the vendor');
    await waitFor(() => rogue.received.filter((m) => m.subject === gatewayInbox(A, 'ack')).length === outbound.length, 5000, 'the acknowledgements');
    await sleep(200);
    const seen = atVendor.got.filter((m) => !/^_R_\./.test(m.subject)); // _R_: the stream's acknowledgements on their way back
    expect([...new Set(seen.map((m) => m.subject))].sort()).toEqual([...outbound].sort());
    expect(atVendor.got.filter((m) => m.payload.includes('forbidden'))).toEqual([]);
    // No JetStream API answered the leaf, and the ingest stream holds exactly what crossed.
    expect(rogue.received.filter((m) => m.payload.includes('io.nats.jetstream.api'))).toEqual([]);
    const info = await (await jetstreamManager(await hub.vendor(A))).streams.info(HUB_INGEST_STREAM);
    expect(info.state.messages).toBe(outbound.length);
    expect(info.state.consumer_count).toBe(0);
    rogue.close();
  });

  test('2. $SYS requests from the leaf, or from anything else in the customer\'s account, get no answer', async () => {
    const rogue = await rogueOf(A);
    const customerAccount = hub.accounts(A).customer.publicKey;
    const requests = [...ACCOUNT_SYSTEM_SERVICES, '$SYS.REQ.SERVER.PING', '$SYS.REQ.SERVER.PING.VARZ', '$SYS.REQ.SERVER.PING.STATZ', `$SYS.REQ.ACCOUNT.${customerAccount}.CONNZ`, `$SYS.REQ.ACCOUNT.${customerAccount}.LEAFZ`];
    rogue.subscribe('>');
    for (const subject of requests) {
      rogue.publish(subject, '{}', gatewayInbox(A, 'sys'));
      rogue.publish(subject, '{}', inboundSubjects({ customerId: A })[0]);
    }
    // Positive control: a reply does reach the leaf on that inbox (the ingest stream's acknowledgement).
    rogue.publish(outboundSubjects({ customerId: A })[0], '{"control":1}', gatewayInbox(A, 'sys'));
    await rogue.flush();
    await waitFor(() => rogue.received.some((m) => m.payload.includes('"stream":"BYOC_INGEST"')), 5000, 'the acknowledgement');
    await sleep(300);
    expect(rogue.received.filter((m) => /"server"|server_id|connections/.test(m.payload))).toEqual([]);
    expect(rogue.received).toHaveLength(1);
    rogue.close();
    // Nothing else can be in the customer's account: its leaf credentials open no client connection.
    await expect(connect({ servers: `127.0.0.1:${hub.hubPort}`, authenticator: credsAuthenticator(bytes((await hub.leafCredentials(A)).creds)), maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization Violation/i);
    // And from the customer's side of a real leaf, the remote does not carry $SYS at all.
    const gw = await alphaLeaf.gateway();
    await expect(gw.request('$SYS.REQ.ACCOUNT.PING.CONNZ', '{}', { timeout: 1000 })).rejects.toThrow(/permission|no responders|timeout/i);
  });

  /** B's real leaf delivers both ways: an outbound kind acknowledged by the ingest stream, a control message in. */
  async function alphaDelivers() {
    const gw = await alphaLeaf.gateway();
    const ack = await jetstream(gw).publish(outboundSubjects({ customerId: B })[0], JSON.stringify({ probe: Date.now() }));
    expect(ack.stream).toBe(HUB_INGEST_STREAM);
    const atGateway = collect(gw, inboundSubjects({ customerId: B })[0]);
    await atGateway.ready;
    const vendor = await hub.vendor(B);
    await waitFor(async () => {
      vendor.publish(inboundSubjects({ customerId: B })[0], '{"probe":true}');
      await vendor.flush();
      await sleep(50);
      return atGateway.got.length > 0;
    }, 5000, 'a control message at alpha\'s gateway');
    await vendor.close();
  }

  test('3. a second leaf with the same credentials and server name does not knock the real one off: it is refused, the real one stays connected and delivering', async () => {
    const account = hub.accounts(B).customer.publicKey;
    const before = (await hub.leafConnections()).filter((l) => l.account === account);
    expect(before).toHaveLength(1);
    // The same generated configuration (server name byoc-leaf-alpha) with the same .creds, as a thief would run it.
    const twin = await hub.leaf(B);
    const rogue = await hub.rogue(await hub.leafCredentials(B), 'byoc-leaf-alpha');
    try {
      await waitFor(() => /maximum account active connections exceeded/i.test(twin.server.log()), 10000, 'the twin refused');
      await waitFor(() => rogue.closed(), 5000, 'the rogue twin refused');
      expect(rogue.errors.join(' ')).toMatch(/maximum account active connections exceeded/i);
      expect(await twin.connected()).toBe(false);
      await sleep(1500); // the twin keeps retrying
      expect((await hub.leafConnections()).filter((l) => l.account === account)).toEqual(before);
      expect(await alphaLeaf.connected()).toBe(true);
      await alphaDelivers();
    } finally {
      await twin.stop();
    }
  });

  test('4. leaf connections beyond the account\'s one are refused', async () => {
    const account = hub.accounts(B).customer.publicKey;
    const creds = await hub.leafCredentials(B);
    const extra = await Promise.all([1, 2, 3, 4, 5].map((i) => hub.rogue(creds, `extra-leaf-${i}`)));
    await waitFor(() => extra.every((r) => r.closed()), 5000, 'every extra leaf refused');
    for (const r of extra) expect(r.errors.join(' ')).toMatch(/maximum account active connections exceeded/i);
    expect((await hub.leafConnections()).filter((l) => l.account === account)).toHaveLength(1);
    await alphaDelivers();
  });

  test('6. customer A\'s credentials can neither write nor read customer B\'s subjects', async () => {
    const atB = collect(await hub.observer(B), '>');
    await atB.ready;
    const rogue = await rogueOf(A);
    rogue.subscribe('>');
    rogue.subscribe(`byoc.${B}.>`);
    await rogue.flush();
    // Write: every subject of B, outbound and inbound, from A's leaf.
    for (const subject of [...outboundSubjects({ customerId: B }), ...inboundSubjects({ customerId: B })]) rogue.publish(subject, '{"fromA":true}', gatewayInbox(B, 'x'));
    await rogue.flush();
    // Positive controls: B's own leaf reaches B's vendor side; A's own control message reaches A's leaf.
    const gw = await alphaLeaf.gateway();
    await jetstream(gw).publish(outboundSubjects({ customerId: B })[1], '{"fromB":true}');
    await waitFor(() => atB.got.some((m) => m.payload === '{"fromB":true}'), 5000, 'B\'s own message at B\'s vendor side');
    const vendorA = await hub.vendor(A);
    await waitFor(async () => {
      vendorA.publish(inboundSubjects({ customerId: A })[0], '{"toA":true}');
      await vendorA.flush();
      await sleep(50);
      return rogue.received.some((m) => m.payload === '{"toA":true}');
    }, 5000, 'A\'s control message at A\'s leaf');
    // Read: B's control messages go to B's leaf only.
    const atBGateway = collect(gw, inboundSubjects({ customerId: B })[0]);
    await atBGateway.ready;
    const vendorB = await hub.vendor(B);
    await waitFor(async () => {
      vendorB.publish(inboundSubjects({ customerId: B })[0], '{"toB":true}');
      await vendorB.flush();
      await sleep(50);
      return atBGateway.got.some((m) => m.payload === '{"toB":true}');
    }, 5000, 'B\'s control message at B\'s gateway');
    await sleep(200);
    expect(atB.got.filter((m) => m.payload.includes('fromA'))).toEqual([]);
    expect(rogue.received.filter((m) => m.subject.startsWith(`byoc.${B}.`) || m.payload.includes('toB'))).toEqual([]);
    // Asking for B's control subject by name gets A's leaf disconnected.
    rogue.subscribe(inboundSubjects({ customerId: B })[0]);
    await waitFor(() => rogue.closed(), 5000, 'the hub closing A\'s leaf');
    expect(rogue.errors.join(' ')).toMatch(/Permissions Violation for Subscription/i);
  });

  test('7. the vendor\'s service user sees only the contract\'s kinds and uses only its ingest stream', async () => {
    const vendor = await hub.vendor(B);
    const errors = permissionErrors(vendor);
    // Everything: refused. The outbound kinds: received.
    vendor.subscribe('>', { callback: () => undefined });
    vendor.subscribe(`byoc.${B}.in.>`, { callback: () => undefined });
    const outbound = outboundSubjects({ customerId: B });
    const atVendor = collect(vendor, outbound);
    await atVendor.ready;
    const gw = await alphaLeaf.gateway();
    for (const subject of outbound) await jetstream(gw).publish(subject, JSON.stringify({ kind: subject }));
    await waitFor(() => outbound.every((s) => atVendor.got.some((m) => m.subject === s)), 5000, 'every outbound kind at the vendor');
    // It may send only the inbound kinds, and use only the ingest stream, never delete or purge it.
    const atObserver = collect(await hub.observer(B), '>');
    await atObserver.ready;
    const forbidden = [`byoc.${B}.in.shell`, `byoc.${B}.out.workflow`, `byoc.${A}.in.control`, 'arbitrary.subject', '$SYS.REQ.ACCOUNT.PING.CONNZ',
      `$JS.API.STREAM.DELETE.${HUB_INGEST_STREAM}`, `$JS.API.STREAM.PURGE.${HUB_INGEST_STREAM}`, '$JS.API.STREAM.CREATE.OTHER', '$JS.API.STREAM.LIST', `$JS.API.STREAM.MSG.DELETE.${HUB_INGEST_STREAM}`];
    for (const subject of forbidden) vendor.publish(subject, '{"forbidden":true}');
    await vendor.flush();
    await waitFor(() => errors.length >= forbidden.length + 2, 5000, 'a violation for each');
    const jsm = await jetstreamManager(vendor);
    await jsm.consumers.add(HUB_INGEST_STREAM, { durable_name: 'billing', ack_policy: AckPolicy.Explicit });
    const batch = await (await jetstream(vendor).consumers.get(HUB_INGEST_STREAM, 'billing')).fetch({ max_messages: 100, expires: 1000 });
    const kinds = new Set<string>();
    for await (const m of batch) { kinds.add(m.subject); m.ack(); }
    expect([...kinds].sort()).toEqual([...outbound].sort());
    expect(atObserver.got.filter((m) => m.payload.includes('forbidden'))).toEqual([]);
    expect((await jsm.streams.info(HUB_INGEST_STREAM)).config.name).toBe(HUB_INGEST_STREAM);
    // Its credentials open no leaf-node connection.
    const asLeaf = await hub.rogue(await vendorUser(hub.accounts(B)), 'vendor-as-leaf');
    await waitFor(() => asLeaf.closed(), 5000, 'the vendor credentials refused as a leaf');
    expect(asLeaf.errors.join(' ')).toMatch(/Authorization Violation|maximum account active connections exceeded/i); // leaf limit 0
  });

  test('5. a revoked customer is cut off by a JWT pushed to the running hub and cannot reconnect; the JWT from before cannot be pushed back; revoking the account shuts out fresh credentials too', async () => {
    const C = 'gamma';
    const accounts = await hub.addCustomer({ customerId: C });
    const account = accounts.customer.publicKey;
    const creds = await hub.leafCredentials(C);
    let leaf = await hub.leaf(C);
    await waitFor(() => leaf.connected(), 15000, 'gamma\'s leaf connected');
    const ack = await jetstream(await leaf.gateway()).publish(outboundSubjects({ customerId: C })[0], '{"before":true}');
    expect(ack.stream).toBe(HUB_INGEST_STREAM);

    // Revoke the leaf user: a new account JWT, pushed over $SYS to the running hub.
    const sys = await hub.system();
    const revoked = await revokeUser(accounts.customer.jwt, creds.publicKey, hub.operator.operator.seed);
    expect(Object.keys(revocationsOf(revoked))).toEqual([creds.publicKey]);
    await pushAccountJwt(sys, revoked);
    await waitFor(async () => !(await leaf.connected()), 5000, 'gamma\'s leaf cut off');
    expect(hub.hub.log()).toMatch(new RegExp(`Leafnode connection closed: Credentials Revoked account: ${account}`));
    // It keeps trying (every second) and is refused every time.
    await waitFor(() => (leaf.server.log().match(/Authorization Violation/g) ?? []).length >= 2, 10000, 'two refused reconnections');
    expect(await leaf.connected()).toBe(false);
    expect((await hub.leafConnections()).filter((l) => l.account === account)).toEqual([]);
    expect(leaf.server.log()).toMatch(/Authorization Violation/i);
    // The JWT from before the revocation is not pushed back (a hub would take it: the guard is pushAccountJwt's).
    await expect(pushAccountJwt(sys, accounts.customer.jwt)).rejects.toThrow(/would replace a newer one/);
    expect(await leaf.connected()).toBe(false);
    await leaf.stop();

    // Revocation is per user: credentials issued after it connect...
    await sleep(1100 - (Date.now() % 1000)); // a later second than the revocation
    const fresh = await hub.leafCredentials(C, true);
    leaf = await hub.leaf(C, { credentials: fresh });
    await waitFor(() => leaf.connected(), 15000, 'gamma\'s leaf with fresh credentials');
    // ...until the whole account is revoked: cut off, and fresh credentials issued later are refused too.
    await pushAccountJwt(sys, await revokeAccount(revoked, hub.operator.operator.seed));
    await waitFor(async () => !(await leaf.connected()), 5000, 'gamma\'s leaf cut off with its account');
    await leaf.stop();
    await sleep(1100 - (Date.now() % 1000));
    const later = await hub.rogue(await hub.leafCredentials(C, true), 'byoc-leaf-gamma');
    await waitFor(() => later.closed(), 5000, 'later credentials refused');
    expect(later.errors.join(' ')).toMatch(/Authorization Violation|maximum account active connections exceeded/i);
  });
});
