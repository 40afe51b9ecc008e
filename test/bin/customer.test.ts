import { spawn } from 'child_process';
import { generateKeyPairSync, KeyObject } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateSecretCommand, DescribeSecretCommand, GetSecretValueCommand, ListSecretVersionIdsCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { credsAuthenticator } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { decode, parseCreds, User } from '@nats-io/jwt';
import { projectRoot } from '../../lib/app';
import { BoundaryContract, contractHash } from '../../lib/boundary-contract';
import { BUNDLE_FORMAT } from '../../lib/bundle';
import { customerSecretNames, CustomerRecord, formatJson, HUB_CA_FILE } from '../../lib/customers';
import { HUB_INGEST_STREAM, outboundSubjects, vendorInboxPrefix } from '../../lib/nats-config';
import { IngestRecord, RegistryReader } from '../../control-plane/ingest/registry';
import { loadCustomerPlaneConfig } from '../../customer-plane/config';
import { MotoServer, startMoto } from '../servers/moto';
import { CustomerLeaf, OperatorHub, startOperatorHub, waitFor } from '../servers/operator-hub';
import { synthCustomerPlane } from '../synth';

/**
 * `byoc customer add|list|revoke|cancel` as a vendor runs them (`node dist/bin/byoc.js`), against Secrets Manager
 * on moto_server and a real operator-mode nats-server 2.9 hub.
 */

const CLI = path.join(projectRoot(), 'dist', 'bin', 'byoc.js');
const C = 'acme-corp';
const ACCOUNT = '123456789012';
const ENDPOINT_SERVICE = 'com.amazonaws.vpce.eu-west-1.vpce-svc-0a1b2c3d4e5f60718';
const EXAMPLE = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8'));

let moto: MotoServer;
let hub: OperatorHub;
let sm: SecretsManagerClient;
let dir: string;
let vendorConfig: string;
let outputs: string;
let release: string;
let systemCreds: string;
let out: string;
const leaves: CustomerLeaf[] = [];

/** Runs the built CLI as a vendor would, with moto as AWS. */
function byoc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...moto.env, NODE_NO_WARNINGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let o = '';
    let e = '';
    child.stdout.on('data', (d) => { o += d; });
    child.stderr.on('data', (d) => { e += d; });
    child.on('close', (code) => resolve({ code: code ?? -1, out: o, err: e }));
  });
}

const add = (...extra: string[]) => byoc('customer', 'add', '--customer', C, '--account', ACCOUNT, '--vendor-config', vendorConfig, '--out', out,
  '--control-plane-outputs', outputs, '--release', release, '--hub-url', `nats://127.0.0.1:${hub.hubPort}`, '--system-creds', systemCreds, ...extra);
const revoke = (...extra: string[]) => byoc('customer', 'revoke', '--customer', C, '--vendor-config', vendorConfig,
  '--hub-url', `nats://127.0.0.1:${hub.hubPort}`, '--system-creds', systemCreds, '--reason', 'contract ended', ...extra);

const secret = async (id: string) => (await sm.send(new GetSecretValueCommand({ SecretId: id }))).SecretString!;
const record = async (): Promise<CustomerRecord> => JSON.parse(await secret(customerSecretNames(C).account));
const ingestRecord = async (): Promise<IngestRecord> => JSON.parse(await secret(customerSecretNames(C).ingest));
const tagsOf = async (id: string) => Object.fromEntries(((await sm.send(new DescribeSecretCommand({ SecretId: id }))).Tags ?? []).map((t) => [t.Key, t.Value]));
/** The customer's audit key pair, as its plane's KMS key would be (ECDSA P-256), and its public key as byoc pubkey writes it. */
const auditKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
const versions = async (id: string) => (await sm.send(new ListSecretVersionIdsCommand({ SecretId: id, IncludeDeprecated: true }))).Versions!.map((v) => v.VersionId).sort();
const vendorAccounts = () => JSON.parse(fs.readFileSync(vendorConfig, 'utf8')).customerAccounts as string[];
/** What the running hub holds for an account. */
async function hubHolds(accountPublicKey: string): Promise<string | undefined> {
  const nc = await hub.system();
  const listed: string[] = JSON.parse((await nc.request('$SYS.REQ.CLAIMS.LIST', '', { timeout: 5000 })).string()).data;
  if (!listed.includes(accountPublicKey)) return undefined;
  return (await nc.request(`$SYS.REQ.ACCOUNT.${accountPublicKey}.CLAIMS.LOOKUP`, '', { timeout: 5000 })).string();
}
/** Everything `add` writes: the files, the secrets' versions, what the hub holds. */
async function state() {
  const r = await record();
  return {
    vendorConfig: fs.readFileSync(vendorConfig, 'utf8'),
    plane: fs.readFileSync(path.join(out, `${C}.json`), 'utf8'),
    ca: fs.readFileSync(path.join(out, HUB_CA_FILE), 'utf8'),
    accountVersions: await versions(customerSecretNames(C).account),
    leafVersions: await versions(customerSecretNames(C).leafCreds),
    ingestVersions: await versions(customerSecretNames(C).ingest),
    hubCustomer: await hubHolds(r.customerAccount.publicKey),
    hubVendor: await hubHolds(r.vendorAccount.publicKey),
  };
}
/** The customer's leaf node (the customer plane's generated configuration) with the `.creds` from the handover secret. */
async function leafWith(creds: string): Promise<CustomerLeaf> {
  const { jwt, key } = await parseCreds(new TextEncoder().encode(creds));
  const leaf = await hub.leaf(C, { credentials: { creds, jwt, seed: key, publicKey: decode(jwt).sub } });
  leaves.push(leaf);
  return leaf;
}

beforeAll(async () => {
  [moto, hub] = await Promise.all([startMoto(), startOperatorHub()]);
  sm = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-customer-'));
  out = path.join(dir, 'customers');
  // The control plane's configuration: the example's, with this hub's operator and CA.
  const example = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8'));
  example.hub.operatorJwt = hub.operator.operator.jwt;
  example.hub.systemAccountPublicKey = hub.operator.systemAccount.publicKey;
  example.hub.systemAccountJwt = hub.operator.systemAccount.jwt;
  example.hub.tls.caCertificateFile = hub.certificates.ca;
  vendorConfig = path.join(dir, 'vendor.json');
  fs.writeFileSync(vendorConfig, formatJson(example));
  // The operator signing seed, filled into the control plane's secret; the outputs of its deploy.
  const seedSecret = await sm.send(new CreateSecretCommand({ Name: 'byoc/hub/operator-signing-seed', SecretString: hub.operator.operator.seed }));
  outputs = path.join(dir, 'outputs.json');
  fs.writeFileSync(outputs, JSON.stringify({ ByocControlPlane: { HubEndpointServiceName: ENDPOINT_SERVICE, OperatorSigningSeedSecretArn: seedSecret.ARN, HubUrl: 'tls://hub.byoc.vendor.example:7422' } }));
  // A release's metadata (what byoc sign writes next to the templates): the images the plane runs.
  release = path.join(dir, 'byoc-release.json');
  fs.writeFileSync(release, JSON.stringify({ format: BUNDLE_FORMAT, version: '1.4.0', images: Object.values(EXAMPLE.images).sort() }));
  systemCreds = path.join(dir, 'system.creds');
  fs.writeFileSync(systemCreds, hub.operator.systemUser.creds, { mode: 0o600 });
});

afterAll(async () => {
  await Promise.all(leaves.map((l) => l.stop()));
  await hub?.stop();
  await moto?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('customer add, list, revoke on a running hub', () => {
  let firstLeaf: CustomerLeaf;

  test('add registers the account, mints the NATS accounts and leaf credentials into Secrets Manager, pushes them to the hub and writes the plane configuration; the leaf connects with the minted .creds and publishes a contract subject', async () => {
    const before = vendorAccounts();
    const r = await add();
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^nats accounts: created byoc\/customers\/acme-corp\/nats-account/m);
    expect(r.out).toMatch(/^leaf credentials: created byoc\/customers\/acme-corp\/leaf-creds/m);
    expect(r.out).toMatch(/^hub: pushed account VENDOR_ACME_CORP/m);
    expect(r.out).toMatch(/^hub: pushed account CUSTOMER_ACME_CORP/m);
    expect(r.out).toMatch(/^hub: created ingest stream BYOC_INGEST/m);
    expect(r.out).toMatch(/^ingest: created byoc\/customers\/acme-corp\/ingest \(vendor ingest user U[A-Z2-7]{55}, no audit public key yet\)$/m);
    expect(r.out).toMatch(/^next: redeploy the control plane/m);
    expect(r.out).toMatch(/^next: once the customer has deployed, register its audit public key .*--audit-public-key audit-public\.pem$/m);

    // The vendor configuration: the account appended, nothing else changed, the formatting stable.
    expect(vendorAccounts()).toEqual([...before, ACCOUNT]);
    const text = fs.readFileSync(vendorConfig, 'utf8');
    expect(text).toBe(formatJson(JSON.parse(text)));
    const { customerAccounts: _a, ...rest } = JSON.parse(text);
    const { customerAccounts: _b, ...restBefore } = JSON.parse(formatJson(JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8'))));
    void _a; void _b;
    expect(rest.hub.operatorJwt).toBe(hub.operator.operator.jwt);
    expect(Object.keys(rest)).toEqual(Object.keys(restBefore));

    // The record: keys, JWTs signed by the operator, status, history.
    const rec = await record();
    expect(rec).toMatchObject({ customerId: C, awsAccount: ACCOUNT, shareLearning: true, status: 'active', issuer: hub.operator.operator.publicKey });
    expect(rec.events.map((e) => e.action)).toEqual(['registered', 'leaf-issued', 'ingest-issued']);
    expect(decode(rec.customerAccount.jwt).iss).toBe(hub.operator.operator.publicKey);
    // The leaf's .creds: a leaf-node user of the customer's account, signed by its leaf signing key.
    const creds = await secret(customerSecretNames(C).leafCreds);
    const user = decode<User>((await parseCreds(new TextEncoder().encode(creds))).jwt);
    expect(user.nats.issuer_account).toBe(rec.customerAccount.publicKey);
    expect(user.nats.allowed_connection_types).toEqual(['LEAFNODE']);
    expect(user.sub).toBe(rec.leafUser);

    // The hub holds both accounts as recorded.
    expect(await hubHolds(rec.customerAccount.publicKey)).toBe(rec.customerAccount.jwt);
    expect(await hubHolds(rec.vendorAccount.publicKey)).toBe(rec.vendorAccount.jwt);

    // The customer's leaf connects with the handed-over credentials; what it publishes is acknowledged by the ingest stream.
    firstLeaf = await leafWith(creds);
    await waitFor(() => firstLeaf.connected(), 15000, 'the leaf connected to the hub');
    const ack = await jetstream(await firstLeaf.gateway()).publish(outboundSubjects({ customerId: C })[0], '{"probe":1}');
    expect(ack.stream).toBe(HUB_INGEST_STREAM);
  });

  test('add stores what the ingest service needs and nothing more: settings, status, the vendor ingest user\'s .creds (its role\'s permissions, on the hub), no audit key yet', async () => {
    const rec = await record();
    const ingest = await ingestRecord();
    expect(Object.keys(ingest)).toEqual(['format', 'customerId', 'shareLearning', 'status', 'creds']);
    expect(ingest).toMatchObject({ format: 'byoc-ingest/1', customerId: C, shareLearning: true, status: 'active' });
    // A user of the customer's vendor account, signed by its scoped service-role key: no permission of its own.
    const user = decode<User>((await parseCreds(new TextEncoder().encode(ingest.creds))).jwt);
    expect(user.nats.issuer_account).toBe(rec.vendorAccount.publicKey);
    expect(user.iss).not.toBe(rec.vendorAccount.publicKey);
    expect([user.nats.pub?.allow ?? [], user.nats.sub?.allow ?? []]).toEqual([[], []]);
    expect(user.name).toBe(`vendor-${C}-ingest`);
    expect(rec.events[2].detail).toBe(`vendor ingest user ${user.sub}`);
    // No seed of the NATS accounts, no leaf credentials.
    for (const seed of [rec.keys.customer.seed, rec.keys.vendor.seed, rec.keys.vendor.serviceSigningKeySeed, rec.keys.customer.leafSigningKeySeed]) expect(JSON.stringify(ingest)).not.toContain(seed);
    expect(await tagsOf(customerSecretNames(C).ingest)).toEqual({ 'byoc:customer': C, 'byoc:aws-account': ACCOUNT, 'byoc:status': 'active', 'byoc:role': 'ingest', 'byoc:audit-key': 'none' });
    // The credentials work on the hub: the ingest stream, with the role's own permissions.
    const nc = await connect({ servers: `127.0.0.1:${hub.hubPort}`, authenticator: credsAuthenticator(new TextEncoder().encode(ingest.creds)), inboxPrefix: vendorInboxPrefix(C), maxReconnectAttempts: 0 });
    try {
      expect((await (await jetstreamManager(nc)).streams.info(HUB_INGEST_STREAM)).state.messages).toBe(1);
    } finally {
      await nc.close();
    }
  });

  test('add --audit-public-key registers the customer\'s audit key in the ingest secret (PEM or DER, recorded with its fingerprint); again, or without the flag, changes nothing', async () => {
    const file = path.join(dir, 'audit-public.pem');
    fs.writeFileSync(file, pem(auditKey.publicKey));
    const before = await state();
    const r = await add('--audit-public-key', file);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const fingerprint = (await byoc('fingerprint', file)).out.trim();
    expect(fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.out).toMatch(new RegExp(`^ingest: updated byoc/customers/acme-corp/ingest \\(vendor ingest user U[A-Z2-7]{55}, audit public key ${fingerprint}\\)$`, 'm'));
    expect(r.out).not.toMatch(/register its audit public key/);
    const ingest = await ingestRecord();
    expect(ingest.auditPublicKeyPem).toBe(pem(auditKey.publicKey));
    expect((await tagsOf(customerSecretNames(C).ingest))['byoc:audit-key']).toBe(fingerprint);
    const rec = await record();
    expect(rec.events.slice(-1).map((e) => [e.action, e.detail])).toEqual([['audit-key-registered', `audit public key ${fingerprint}`]]);
    // Nothing else changed: same leaf credentials, same hub accounts, same ingest user.
    const after = await state();
    expect({ ...after, accountVersions: undefined, ingestVersions: undefined }).toEqual({ ...before, accountVersions: undefined, ingestVersions: undefined });
    expect(after.ingestVersions).toHaveLength(before.ingestVersions.length + 1);

    // The same key again (here as DER, what aws kms get-public-key returns), or no flag: no new version anywhere.
    const der = path.join(dir, 'audit-public.der');
    fs.writeFileSync(der, auditKey.publicKey.export({ type: 'spki', format: 'der' }));
    for (const extra of [['--audit-public-key', der], []]) {
      const again = await add(...extra);
      expect(again.code).toBe(0);
      expect(again.out.split('\n').filter((l) => l && !l.startsWith('next: ') && !l.endsWith('(unchanged)'))).toEqual([]);
      expect(await state()).toEqual(after);
    }
  });

  test('the plane configuration is what customer-plane/config.ts loads, and the plane synthesizes from it', () => {
    const file = path.join(out, `${C}.json`);
    const written = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(written).toEqual({
      customerId: C,
      account: ACCOUNT,
      images: EXAMPLE.images,
      shareLearning: true,
      vendorHub: { host: 'hub.byoc.vendor.example', port: 7422, caCertificateFile: HUB_CA_FILE, endpointService: ENDPOINT_SERVICE },
    });
    expect(fs.readFileSync(path.join(out, HUB_CA_FILE), 'utf8')).toBe(fs.readFileSync(hub.certificates.ca, 'utf8'));
    const props = loadCustomerPlaneConfig(file);
    expect(props.vendorHub?.caCertificatePem).toBe(fs.readFileSync(hub.certificates.ca, 'utf8'));
    const plane = synthCustomerPlane(props);
    expect(plane.stack.account).toBe(ACCOUNT);
    const endpoints = Object.values<any>(plane.root.findResources('AWS::EC2::VPCEndpoint')).filter((e) => e.Properties.ServiceName === ENDPOINT_SERVICE);
    expect(endpoints).toHaveLength(1);
  });

  test('running add again changes nothing: same files, no new secret version, the hub holds the same JWTs, the leaf stays connected', async () => {
    const before = await state();
    const r = await add();
    expect(r.code).toBe(0);
    const steps = r.out.split('\n').filter((l) => l && !l.startsWith('next: '));
    expect(steps.length).toBeGreaterThanOrEqual(6);
    expect(steps.filter((l) => !l.endsWith('(unchanged)'))).toEqual([]);
    expect(r.out).not.toMatch(/redeploy the control plane/);
    expect(await state()).toEqual(before);
    expect(await firstLeaf.connected()).toBe(true);
  });

  test('list shows the customer, its account, its secrets and its status', async () => {
    const r = await byoc('customer', 'list', '--vendor-config', vendorConfig, '--json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out);
    const fingerprint = (await tagsOf(customerSecretNames(C).ingest))['byoc:audit-key'];
    expect(fingerprint).toMatch(/^sha256:/);
    expect(rows).toEqual([
      { customerId: C, awsAccount: ACCOUNT, status: 'active', inVendorConfig: true, accountSecret: true, leafCredsSecret: true, ingestSecret: true, auditKeyRegistered: true, auditKeyFingerprint: fingerprint },
      // The example's account, registered by hand: no customer record.
      { awsAccount: '444455556666', status: 'unknown', inVendorConfig: true, accountSecret: false, leafCredsSecret: false, ingestSecret: false, auditKeyRegistered: false },
    ]);
    const text = await byoc('customer', 'list', '--vendor-config', vendorConfig);
    expect(text.out.split('\n')[0]).toMatch(/^customer\s+account\s+status\s+customerAccounts\s+nats-account secret\s+leaf-creds secret\s+ingest secret\s+audit key/);
    expect(text.out).toMatch(new RegExp(`^${C}\\s+${ACCOUNT}\\s+active\\s+yes\\s+yes\\s+yes\\s+yes\\s+yes$`, 'm'));
  });

  test('revoke cuts the connected leaf off without restarting the hub, it cannot reconnect, the account leaves customerAccounts and the revocation is recorded; revoking again changes nothing', async () => {
    const r = await revoke();
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^hub: pushed account CUSTOMER_ACME_CORP/m);
    expect(r.out).toMatch(/^next: redeploy the control plane/m);
    await waitFor(async () => !(await firstLeaf.connected()), 5000, 'the leaf cut off');
    await waitFor(() => (firstLeaf.server.log().match(/Authorization Violation/g) ?? []).length >= 2, 10000, 'two refused reconnections');
    expect(await firstLeaf.connected()).toBe(false);
    expect(vendorAccounts()).not.toContain(ACCOUNT);
    expect(vendorAccounts()).toEqual(['444455556666']);

    expect(r.out).toMatch(/^ingest: byoc\/customers\/acme-corp\/ingest marked revoked \(the ingest service stops the customer's consumer at its next registry read\)$/m);
    const rec = await record();
    expect(rec.status).toBe('revoked');
    expect(rec.events.map((e) => e.action)).toEqual(['registered', 'leaf-issued', 'ingest-issued', 'audit-key-registered', 'revoked']);
    expect(rec.events[4].detail).toMatch(/reason: contract ended/);
    const ingest = await ingestRecord();
    expect(ingest).toMatchObject({ status: 'revoked', auditPublicKeyPem: pem(auditKey.publicKey) });
    expect((await tagsOf(customerSecretNames(C).ingest))['byoc:status']).toBe('revoked');
    expect(await hubHolds(rec.customerAccount.publicKey)).toBe(rec.customerAccount.jwt);
    expect(decode<{ limits: { conn: number; leaf: number } }>(rec.customerAccount.jwt).nats.limits).toMatchObject({ conn: 0, leaf: 0 });

    const list = JSON.parse((await byoc('customer', 'list', '--vendor-config', vendorConfig, '--json')).out);
    expect(list[0]).toMatchObject({ customerId: C, awsAccount: ACCOUNT, status: 'revoked', inVendorConfig: false, accountSecret: true, leafCredsSecret: true, ingestSecret: true, auditKeyRegistered: true });

    const again = await revoke();
    expect(again.code).toBe(0);
    expect(again.out.split('\n').filter((l) => l && !l.endsWith('(unchanged)'))).toEqual([]);
    expect((await record()).events).toHaveLength(5);
  });

  test('add refuses a revoked customer unless --reinstate; reinstated, new credentials connect and the old ones stay refused', async () => {
    const oldCreds = await secret(customerSecretNames(C).leafCreds);
    const refused = await add();
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^byoc: --customer: customer acme-corp was revoked at \S+\. Fix: pass --reinstate/);
    expect(vendorAccounts()).not.toContain(ACCOUNT);

    const r = await add('--reinstate');
    expect(r.code).toBe(0);
    const rec = await record();
    expect(rec.status).toBe('active');
    expect(rec.events.map((e) => e.action)).toEqual(['registered', 'leaf-issued', 'ingest-issued', 'audit-key-registered', 'revoked', 'reinstated', 'leaf-issued']);
    expect(vendorAccounts()).toContain(ACCOUNT);
    // The ingest registration is active again, with the audit key registered before and the same ingest user
    // (the vendor's account was never revoked).
    const ingest = await ingestRecord();
    expect(ingest).toMatchObject({ status: 'active', auditPublicKeyPem: pem(auditKey.publicKey) });
    expect(rec.events[2].detail).toBe(`vendor ingest user ${decode((await parseCreds(new TextEncoder().encode(ingest.creds))).jwt).sub}`);
    const creds = await secret(customerSecretNames(C).leafCreds);
    expect(creds).not.toBe(oldCreds);
    // Old credentials: refused by the hub (every user issued up to the revocation stays revoked).
    await waitFor(() => (leaves[0].server.log().match(/Authorization Violation/g) ?? []).length >= 4, 10000, 'the old leaf still refused');
    expect(await leaves[0].connected()).toBe(false);
    await leaves[0].stop();
    const leaf = await leafWith(creds);
    await waitFor(() => leaf.connected(), 15000, 'the reinstated leaf connected');
    const ack = await jetstream(await leaf.gateway()).publish(outboundSubjects({ customerId: C })[1], '{"probe":2}');
    expect(ack.stream).toBe(HUB_INGEST_STREAM);
  });

  test('--share-learning false re-issues the same accounts (same public keys) without the fingerprint kind, and new leaf credentials; running it again changes nothing', async () => {
    const before = await record();
    const r = await add('--share-learning', 'false');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^nats accounts: updated /m);
    expect(r.out).toMatch(/^hub: pushed account CUSTOMER_ACME_CORP/m);
    const rec = await record();
    expect([rec.customerAccount.publicKey, rec.vendorAccount.publicKey]).toEqual([before.customerAccount.publicKey, before.vendorAccount.publicKey]);
    expect(rec.customerAccount.jwt).not.toBe(before.customerAccount.jwt);
    expect(rec.events.slice(-2).map((e) => [e.action, e.detail.replace(/U[A-Z2-7]{55}/, 'U...')])).toEqual([['reissued', 'shareLearning true -> false'], ['leaf-issued', 'leaf user U...']]);
    expect(await hubHolds(rec.customerAccount.publicKey)).toBe(rec.customerAccount.jwt);
    expect(JSON.stringify(decode(rec.customerAccount.jwt))).not.toMatch(/fingerprint/);
    expect(JSON.stringify(decode(before.customerAccount.jwt))).toMatch(/fingerprint/);
    const user = decode<User>((await parseCreds(new TextEncoder().encode(await secret(customerSecretNames(C).leafCreds)))).jwt);
    expect(user.nats.pub?.allow).toEqual(outboundSubjects({ customerId: C, shareLearning: false }));
    expect(JSON.parse(fs.readFileSync(path.join(out, `${C}.json`), 'utf8')).shareLearning).toBe(false);
    expect(await ingestRecord()).toMatchObject({ shareLearning: false, status: 'active', auditPublicKeyPem: pem(auditKey.publicKey) });

    const s = await state();
    const again = await add('--share-learning', 'false');
    expect(again.out.split('\n').filter((l) => l && !l.startsWith('next: ') && !l.endsWith('(unchanged)'))).toEqual([]);
    expect(await state()).toEqual(s);
  });

  test('a second customer in the same AWS account: added without the hub (push later), and revoking it keeps the account allowed for the first', async () => {
    const lab = 'acme-lab';
    const r = await byoc('customer', 'add', '--customer', lab, '--account', ACCOUNT, '--vendor-config', vendorConfig, '--out', out, '--control-plane-outputs', outputs, '--release', release);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^hub: not pushed \(no --hub-url\)/m);
    expect(r.out).toMatch(new RegExp(`^vendor config: account ${ACCOUNT} is also the account of ${C}`, 'm'));
    expect(r.out).toMatch(/^next: push the accounts to the hub: the same command with --hub-url/m);
    expect(vendorAccounts().filter((a) => a === ACCOUNT)).toHaveLength(1);
    const rec: CustomerRecord = JSON.parse(await secret(customerSecretNames(lab).account));
    expect(await hubHolds(rec.customerAccount.publicKey)).toBeUndefined();

    const revoked = await byoc('customer', 'revoke', '--customer', lab, '--vendor-config', vendorConfig, '--no-push');
    expect(revoked.code).toBe(0);
    expect(revoked.out).toMatch(new RegExp(`^vendor config: kept ${ACCOUNT} in customerAccounts: it is also the account of ${C}`, 'm'));
    expect(revoked.out).toMatch(/^next: push the revocation/m);
    expect(vendorAccounts()).toContain(ACCOUNT);
    const list = JSON.parse((await byoc('customer', 'list', '--vendor-config', vendorConfig, '--json')).out);
    expect(list.filter((l: { customerId?: string }) => l.customerId).map((l: { customerId: string; status: string; inVendorConfig: boolean }) => [l.customerId, l.status, l.inVendorConfig]))
      .toEqual([[C, 'active', true], [lab, 'revoked', true]]);
  });

  test('cancel records when the subscription ended on the ingest secret, where the retention sweep reads it, and in the history; again it changes nothing and keeps the first time; add keeps it', async () => {
    const lab = 'acme-lab';
    const cancel = (customer: string, ...extra: string[]) => byoc('customer', 'cancel', '--customer', customer, '--vendor-config', vendorConfig, ...extra);
    const cancelledTag = async (customer: string) => (await tagsOf(customerSecretNames(customer).ingest))['byoc:cancelled-at'];
    const before = Date.now();
    const r = await cancel(lab, '--reason', 'trial ended');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const at = await cancelledTag(lab);
    expect(at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(Date.parse(at)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(at)).toBeLessThanOrEqual(Date.now());
    // The example vendor configuration is deploymentMode byoc: recorded, and it says nothing is deleted.
    expect(r.out).toBe(`ingest: byoc/customers/${lab}/ingest tagged byoc:cancelled-at=${at}: deploymentMode byoc deletes nothing on a cancellation (the vendor's own policies apply)\n`
      + `nats accounts: recorded the cancellation in byoc/customers/${lab}/nats-account\n`);
    const labRecord: CustomerRecord = JSON.parse(await secret(customerSecretNames(lab).account));
    expect(labRecord.events.at(-1)).toEqual({ at, action: 'cancelled', awsAccount: ACCOUNT, detail: 'subscription cancelled; reason: trial ended' });
    const ingestVersions = await versions(customerSecretNames(lab).ingest);

    // Again, without or with the same --at: nothing changes, the first time is kept. A different time is refused.
    const again = await cancel(lab);
    expect(again.code).toBe(0);
    expect(again.out.split('\n').filter((l) => l && !l.endsWith('(unchanged)'))).toEqual([]);
    expect((await cancel(lab, '--at', at)).out).toMatch(/^ingest: .* already tagged byoc:cancelled-at=.*\(unchanged\)$/m);
    const moved = await cancel(lab, '--at', new Date(Date.parse(at) - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    expect(moved.code).toBe(1);
    expect(moved.err).toMatch(new RegExp(`^byoc: --at: the subscription of acme-lab was cancelled at ${at.replace(/\./g, '\\.')}, not \\S+\\. Fix: a recorded cancellation is kept`));
    expect(await cancelledTag(lab)).toBe(at);
    expect((JSON.parse(await secret(customerSecretNames(lab).account)) as CustomerRecord).events).toEqual(labRecord.events);
    expect(await versions(customerSecretNames(lab).ingest)).toEqual(ingestVersions);

    // An active customer, in a starter control plane, cancelled as of a given time: the grace's end is named, and revoke is the next step.
    const starter = path.join(dir, 'vendor-starter.json');
    fs.writeFileSync(starter, formatJson({ ...JSON.parse(fs.readFileSync(vendorConfig, 'utf8')), deploymentMode: 'starter' }));
    const registered = Date.parse((await record()).events[0].at);
    const cAt = new Date(registered + 1000).toISOString();
    const active = await byoc('customer', 'cancel', '--customer', C, '--vendor-config', starter, '--at', cAt.replace('.000Z', 'Z'));
    expect(active.code).toBe(0);
    const grace = new Date(registered + 1000 + 30 * 86_400_000).toISOString();
    expect(active.out).toMatch(new RegExp(`^ingest: byoc/customers/${C}/ingest tagged byoc:cancelled-at=${cAt.replace(/\./g, '\\.')}: in deploymentMode starter the ingest service's retention sweep stops serving the customer's data from \\S+ and deletes it from ${grace.replace(/\./g, '\\.')}, 30 days later \\(its rejection records, audit metadata, are kept\\)$`, 'm'));
    expect(active.out).toMatch(/^next: acme-corp is still registered: revoke it so its plane stops sending .*byoc customer revoke --customer acme-corp/m);
    expect((await record()).events.at(-1)).toMatchObject({ at: cAt, action: 'cancelled', detail: expect.stringMatching(/^subscription cancelled \(recorded at \S+\)$/) });

    // What the ingest service's sweep reads: both, and nothing else.
    expect([...(await new RegistryReader(sm).cancellations()).cancelledAt]).toEqual([[C, Date.parse(cAt)], [lab, Date.parse(at)]]);
    // add (the tags it writes) keeps the cancellation, and says so; list shows it.
    const readd = await add('--share-learning', 'false');
    expect(readd.code).toBe(0);
    expect(readd.out).toMatch(new RegExp(`^next: note: the subscription of acme-corp was cancelled at ${cAt.replace(/\./g, '\\.')} \\(byoc customer cancel\\), and add does not undo that: deploymentMode byoc deletes nothing`, 'm'));
    expect(await cancelledTag(C)).toBe(cAt);
    const list = JSON.parse((await byoc('customer', 'list', '--vendor-config', vendorConfig, '--json')).out);
    expect(list.filter((l: { customerId?: string }) => l.customerId).map((l: { customerId: string; cancelledAt?: string }) => [l.customerId, l.cancelledAt])).toEqual([[C, cAt], [lab, at]]);
    expect((await byoc('customer', 'list', '--vendor-config', vendorConfig)).out).toMatch(new RegExp(`^${lab}\\s.*revoked.*subscription cancelled at ${at.replace(/\./g, '\\.')}$`, 'm'));
  });
});

describe('a vendor\'s own boundary contract', () => {
  test('add --contract issues the accounts from that contract, keeps it in the record, and the customer\'s leaf may publish exactly its kinds', async () => {
    const own = 'scan-co';
    const kit = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'boundary-contract.json'), 'utf8'));
    const contract = { version: 1, kinds: kit.kinds.filter((k: { name: string }) => k.name === 'usage' || k.name === 'control') };
    const file = path.join(dir, 'scan-contract.json');
    fs.writeFileSync(file, JSON.stringify(contract));
    const r = await byoc('customer', 'add', '--customer', own, '--account', '210987654322', '--vendor-config', vendorConfig, '--out', out, '--control-plane-outputs', outputs,
      '--release', release, '--hub-url', `nats://127.0.0.1:${hub.hubPort}`, '--system-creds', systemCreds, '--contract', file);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    const rec: CustomerRecord = JSON.parse(await secret(customerSecretNames(own).account));
    expect(rec.contractHash).toBe(contractHash(contract as BoundaryContract));
    expect(rec.contractHash).not.toBe(contractHash());
    expect(JSON.parse(rec.contract!)).toEqual(contract);
    const user = decode<User>((await parseCreds(new TextEncoder().encode(await secret(customerSecretNames(own).leafCreds)))).jwt);
    expect(user.nats.pub?.allow).toEqual([`byoc.${own}.out.usage`]);
    expect(await hubHolds(rec.customerAccount.publicKey)).toBe(rec.customerAccount.jwt);
    // Without --contract, the kit's contract: the accounts are re-issued from it, and the record says why.
    const back = await byoc('customer', 'add', '--customer', own, '--account', '210987654322', '--vendor-config', vendorConfig, '--out', out, '--control-plane-outputs', outputs,
      '--release', release, '--hub-url', `nats://127.0.0.1:${hub.hubPort}`, '--system-creds', systemCreds);
    expect(back.code).toBe(0);
    const after = JSON.parse(await secret(customerSecretNames(own).account)) as CustomerRecord;
    expect({ hash: after.contractHash, contract: after.contract }).toEqual({ hash: contractHash(), contract: undefined });
    expect(after.events.find((e) => e.action === 'reissued')!.detail).toBe(`contract ${rec.contractHash.slice(0, 12)} -> ${contractHash().slice(0, 12)}`);
  });

  test('a contract file that is not one is refused, naming the flag and the path in it, and nothing is written', async () => {
    const file = path.join(dir, 'loose-contract.json');
    const kit = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'boundary-contract.json'), 'utf8'));
    kit.kinds[0].schema.fields.agent.pattern = '^.*$';
    fs.writeFileSync(file, JSON.stringify(kit));
    const before = fs.readFileSync(vendorConfig, 'utf8');
    const r = await byoc('customer', 'add', '--customer', 'loose-co', '--account', '210987654323', '--vendor-config', vendorConfig, '--out', out, '--control-plane-outputs', outputs, '--release', release, '--contract', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^byoc: --contract: .*kinds\[0\]\.schema\.fields\.agent\.pattern.*not supported for counting.*\. Fix: /);
    expect(fs.readFileSync(vendorConfig, 'utf8')).toBe(before);
    await expect(sm.send(new GetSecretValueCommand({ SecretId: customerSecretNames('loose-co').account }))).rejects.toThrow();
  });
});

describe('errors a person can act on, and nothing written', () => {
  const refused = async (args: string[], pattern: RegExp) => {
    const before = fs.readFileSync(vendorConfig, 'utf8');
    const r = await byoc(...args);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^byoc: .*\. Fix: .+\n$/);
    expect(r.err).toMatch(pattern);
    expect(fs.readFileSync(vendorConfig, 'utf8')).toBe(before);
    return r.err;
  };
  const secret_ = secret;
  const base = (customer: string, account: string) => ['customer', 'add', '--customer', customer, '--account', account, '--vendor-config', vendorConfig, '--out', out, '--release', release];

  test('bad identifiers and flags name the flag, the problem and the fix', async () => {
    await refused([...base('Acme Corp', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE], /--customer: "Acme Corp" is not a customer identifier/);
    await refused([...base('beta', '1234-5678-9012'), '--endpoint-service', ENDPOINT_SERVICE], /--account: "1234-5678-9012" is not an AWS account ID\. Fix: give the customer's 12-digit AWS account ID/);
    await refused([...base('beta', '12345678901'), '--endpoint-service', ENDPOINT_SERVICE], /--account: "12345678901" is not an AWS account ID \(11 digits\)/);
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--share-learning', 'nope'], /--share-learning: "nope" is neither true nor false/);
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--hub-url', 'nats://127.0.0.1:4222'], /--system-creds: missing/);
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--hub-url', 'http://hub:4222', '--system-creds', systemCreds], /--hub-url: "http:\/\/hub:4222" is not a NATS URL/);
    await refused([...base('beta', '210987654321'), '--endpoint-service', 'vpce-svc-0a1b2c3d4e5f60718'], /--endpoint-service: "vpce-svc-0a1b2c3d4e5f60718" is not a VPC endpoint service name/);
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE.replace('eu-west-1', 'us-east-1')], /is in us-east-1, the control plane in eu-west-1/);
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--otel-collector-image', EXAMPLE.images.otelCollector.replace(/@sha256:.*/, ':latest')], /--otel-collector-image: .* names an image by tag/);
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--agent-runtime-image', EXAMPLE.images.agentRuntime.replace('byoc/agent-runtime', 'byoc/other')], /--agent-runtime-image: .* is not in the control plane's repository 111122223333\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/byoc\/agent-runtime/);
  });

  test('--audit-public-key must be the public key of a P-256 (or Ed25519) key: RSA, P-384, a private key, a missing file are refused without writing', async () => {
    const write = (name: string, text: string | Buffer) => { const f = path.join(dir, name); fs.writeFileSync(f, text); return f; };
    const rsa = write('rsa.pem', pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey));
    const p384 = write('p384.pem', pem(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey));
    const secret = auditKey.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const priv = write('private.pem', secret);
    const junk = write('junk.pem', 'not a key');
    const flags = (file: string) => [...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--audit-public-key', file];
    const fix = /\. Fix: export the public key of the customer's audit KMS key .*npx byoc pubkey --key/;
    await refused(flags(rsa), /--audit-public-key: \S+rsa\.pem is a rsa key; the audit key is ECDSA P-256/);
    await refused(flags(p384), /--audit-public-key: \S+p384\.pem is a ec secp384r1 key/);
    const err = await refused(flags(priv), /--audit-public-key: \S+private\.pem is a private key: register the public key only/);
    expect(err).not.toContain(secret.split('\n')[1]);
    expect(await refused(flags(junk), /--audit-public-key: \S+junk\.pem is not a PEM public key/)).toMatch(fix);
    await refused(flags(path.join(dir, 'missing.pem')), /--audit-public-key: cannot read \S+missing\.pem \(ENOENT\)/);
    await expect(secret_(customerSecretNames('beta').ingest)).rejects.toThrow(/can't find|not found|ResourceNotFound/i);
  });

  test('a value known only after the control plane is deployed is missing: the endpoint service', async () => {
    const err = await refused(base('beta', '210987654321'), /--endpoint-service: missing/);
    expect(err).toMatch(/--control-plane-outputs FILE \(from cdk deploy --outputs-file FILE; output HubEndpointServiceName\)/);
    const noHub = path.join(dir, 'outputs-nohub.json');
    fs.writeFileSync(noHub, JSON.stringify({ ByocControlPlane: { BundleSigningKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/x' } }));
    await refused([...base('beta', '210987654321'), '--control-plane-outputs', noHub], /--control-plane-outputs: .* has no stack with the output HubEndpointServiceName/);
  });

  test('the operator seed secret still holding its placeholder, or another operator\'s seed, is refused without printing it', async () => {
    await sm.send(new CreateSecretCommand({ Name: 'placeholder-seed', SecretString: 'Xy7placeholderGeneratedByCdk0123456789abcdefGHIJ' }));
    const err = await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--operator-seed-secret', 'placeholder-seed'], /--operator-seed-secret: the secret placeholder-seed does not hold an operator seed .* Fix: fill it with the operator's signing seed: aws secretsmanager put-secret-value/);
    expect(err).not.toContain('Xy7placeholder');
    const { operatorInit } = await import('../../lib/nats-auth');
    const other = await operatorInit();
    await sm.send(new CreateSecretCommand({ Name: 'other-seed', SecretString: other.operator.seed }));
    const err2 = await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--operator-seed-secret', 'other-seed'], /neither the operator .* of the vendor configuration's hub\.operatorJwt nor one of its signing keys/);
    expect(err2).not.toContain(other.operator.seed);
    expect(fs.existsSync(path.join(out, 'beta.json'))).toBe(false);
  });

  test('credentials of another account than the system account are refused for --system-creds', async () => {
    const vendor = path.join(dir, 'not-system.creds');
    fs.writeFileSync(vendor, await secret(customerSecretNames(C).leafCreds));
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--hub-url', `nats://127.0.0.1:${hub.hubPort}`, '--system-creds', vendor], /--system-creds: the credentials in .* are of a user of account A[A-Z2-7]{55}, not of the system account/);
  });

  test('an unreachable hub or a broken vendor configuration is refused before anything is written', async () => {
    const { freePort } = await import('../servers/nats');
    await refused([...base('beta', '210987654321'), '--endpoint-service', ENDPOINT_SERVICE, '--hub-url', `nats://127.0.0.1:${await freePort()}`, '--system-creds', systemCreds],
      /--hub-url: cannot connect to nats:\/\/127\.0\.0\.1:\d+ .*\. Fix: give the client port of a running hub node/);
    await expect(secret(customerSecretNames('beta').account)).rejects.toThrow(/can't find|not found|ResourceNotFound/i);
    expect(fs.existsSync(path.join(out, 'beta.json'))).toBe(false);
    const broken = path.join(dir, 'broken-vendor.json');
    const config = JSON.parse(fs.readFileSync(vendorConfig, 'utf8'));
    config.hub.hots = config.hub.host;
    fs.writeFileSync(broken, formatJson(config));
    const r = await byoc('customer', 'list', '--vendor-config', broken);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^byoc: --vendor-config \S+broken-vendor\.json: Invalid setting 'hub\.hots': is not a setting of the control plane\. Fix: remove it or use one of image, host/);
    expect(fs.readFileSync(broken, 'utf8')).toBe(formatJson(config));
  });

  test('an active customer with another account, revoking an unknown customer, revoking without the hub', async () => {
    await refused([...base(C, '210987654321'), '--endpoint-service', ENDPOINT_SERVICE], /--account: customer acme-corp is registered with account 123456789012, not 210987654321\. Fix: give --account 123456789012, or move the customer/);
    await refused(['customer', 'revoke', '--customer', 'nobody', '--vendor-config', vendorConfig, '--no-push'], /--customer: there is no customer nobody \(no secret byoc\/customers\/nobody\/nats-account\)/);
    await refused(['customer', 'revoke', '--customer', C, '--vendor-config', vendorConfig], /--hub-url: missing: a revocation takes effect only when the running hub receives it\. Fix: .*--no-push/);
  });

  test('cancel: an unknown customer, a time that is not one, in the future or before the registration; nothing recorded', async () => {
    const cancel = (customer: string, ...extra: string[]) => ['customer', 'cancel', '--customer', customer, '--vendor-config', vendorConfig, ...extra];
    await refused(cancel('nobody'), /^byoc: --customer: there is no customer nobody \(no secret byoc\/customers\/nobody\/nats-account\)\. Fix: check the identifier with byoc customer list/);
    const lab = 'second-lab';
    const r = await byoc('customer', 'add', '--customer', lab, '--account', '333333333333', '--vendor-config', vendorConfig, '--out', out, '--control-plane-outputs', outputs, '--release', release);
    expect(r.code).toBe(0);
    await refused(cancel(lab, '--at', '2026-11-30'), /^byoc: --at: "2026-11-30" is not a time as YYYY-MM-DDTHH:MM:SSZ\. Fix: give when the subscription ended in UTC/);
    await refused(cancel(lab, '--at', '2026-02-30T00:00:00Z'), /^byoc: --at: "2026-02-30T00:00:00\.000Z" is not a time that exists/);
    await refused(cancel(lab, '--at', '2019-06-01T00:00:00Z'), /^byoc: --at: "2019-06-01T00:00:00\.000Z" is before 2020-01-01/);
    await refused(cancel(lab, '--at', new Date(Date.now() + 86_400_000).toISOString()), /^byoc: --at: \S+ is in the future\. Fix: record a cancellation once the subscription has ended/);
    await refused(cancel(lab, '--at', '2021-01-01T00:00:00Z'), /^byoc: --at: 2021-01-01T00:00:00Z is before second-lab was registered \(\S+\)\. Fix: give when the subscription ended/);
    await refused(cancel(lab, '--reason', 'a\nb'), /^byoc: --reason: longer than 200 characters or holds control characters/);
    expect((await tagsOf(customerSecretNames(lab).ingest))['byoc:cancelled-at']).toBeUndefined();
    expect((JSON.parse(await secret(customerSecretNames(lab).account)) as CustomerRecord).events.map((e) => e.action)).not.toContain('cancelled');
  });
});
