import { generateKeyPairSync, KeyObject } from 'crypto';
import { CreateSecretCommand, DeleteSecretCommand, PutSecretValueCommand, SecretsManagerClient, TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import { operatorInit } from '../../lib/nats-auth';
import {
  EARLIEST_CANCELLATION, formatCancelledAt, INGEST_RECORD_FORMAT, IngestRecord, ingestRecordJson, ingestSecretName, parseCancelledAt, RegistryReader, REGISTRY_TAGS,
} from '../../control-plane/ingest';
import { MotoServer, startMoto } from '../servers/moto';

/** The registry reader of the ingest service, against Secrets Manager on moto_server with the real AWS SDK. */

let moto: MotoServer;
let sm: SecretsManagerClient;
let creds: string;
let otherCreds: string;
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
const p256 = pem(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey);
const ed25519 = pem(generateKeyPairSync('ed25519').publicKey);
const rsa = pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);

const record = (customerId: string, o: Partial<IngestRecord> = {}): IngestRecord => ({
  format: INGEST_RECORD_FORMAT, customerId, shareLearning: true, status: 'active', auditPublicKeyPem: p256, creds, ...o,
});
const tags = (customerId: string, status = 'active') => [
  { Key: REGISTRY_TAGS.customer, Value: customerId }, { Key: REGISTRY_TAGS.status, Value: status }, { Key: REGISTRY_TAGS.role, Value: 'ingest' },
];
async function put(name: string, value: string, customerId = 'x', status = 'active'): Promise<void> {
  await sm.send(new CreateSecretCommand({ Name: name, SecretString: value, Tags: tags(customerId, status) }));
}

beforeAll(async () => {
  moto = await startMoto();
  sm = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  [creds, otherCreds] = (await Promise.all([operatorInit(), operatorInit()])).map((o) => o.systemUser.creds);
});

afterAll(async () => {
  sm?.destroy();
  await moto?.stop();
});

describe('the customer registry as the ingest service reads it (Secrets Manager on moto_server)', () => {
  const reader = () => new RegistryReader(sm);
  let shared: RegistryReader;

  beforeAll(async () => {
    await put(ingestSecretName('acme'), ingestRecordJson(record('acme')), 'acme');
    await put(ingestSecretName('beta'), ingestRecordJson(record('beta', { shareLearning: false, auditPublicKeyPem: ed25519 })), 'beta');
    await put(ingestSecretName('gone'), ingestRecordJson(record('gone', { status: 'revoked' })), 'gone', 'revoked');
    // A revocation cut short after the tag, before the value: revoked all the same.
    await put(ingestSecretName('half'), ingestRecordJson(record('half')), 'half', 'revoked');
    await put(ingestSecretName('fresh'), ingestRecordJson(record('fresh', { auditPublicKeyPem: undefined })), 'fresh');
    await put(ingestSecretName('fresh-gone'), ingestRecordJson(record('fresh-gone', { auditPublicKeyPem: undefined, status: 'revoked' })), 'fresh-gone', 'revoked');
    await put(ingestSecretName('broken'), `${creds} is not JSON`, 'broken');
    await put(ingestSecretName('swapped'), ingestRecordJson(record('acme')), 'swapped');
    await put(ingestSecretName('weak-key'), ingestRecordJson(record('weak-key', { auditPublicKeyPem: rsa })), 'weak-key');
    await put(ingestSecretName('no-creds'), JSON.stringify({ ...record('no-creds'), creds: 'nope' }), 'no-creds');
    // Not ingest secrets of a customer: other secrets of registration, other prefixes, deeper names, a bad identifier.
    await put('byoc/customers/acme/nats-account', '{"keys":"secret"}', 'acme');
    await put('byoc/customers/acme/leaf-creds', otherCreds, 'acme');
    await put('byoc/other/zeta/ingest', ingestRecordJson(record('zeta')), 'zeta');
    await put('byoc/customers/acme/extra/ingest', ingestRecordJson(record('extra')), 'extra');
    await put(ingestSecretName('Bad_Id'), ingestRecordJson(record('Bad_Id')), 'Bad_Id');
    // A deleted one (in its recovery window) is no customer.
    await put(ingestSecretName('deleted'), ingestRecordJson(record('deleted')), 'deleted');
    await sm.send(new DeleteSecretCommand({ SecretId: ingestSecretName('deleted'), RecoveryWindowInDays: 7 }));
    shared = reader();
  });

  test('active and revoked customers with their settings, key and credentials; those awaiting an audit key; unusable entries named with why', async () => {
    const r = await shared.load();
    expect(r.customers).toEqual([
      { customerId: 'acme', shareLearning: true, status: 'active', auditPublicKeyPem: p256, creds },
      { customerId: 'beta', shareLearning: false, status: 'active', auditPublicKeyPem: ed25519, creds },
      { customerId: 'gone', shareLearning: true, status: 'revoked', auditPublicKeyPem: p256, creds },
      { customerId: 'half', shareLearning: true, status: 'revoked', auditPublicKeyPem: p256, creds },
    ]);
    expect(r.awaitingAuditKey).toEqual(['fresh']);
    expect(r.invalid).toEqual([
      { customerId: 'Bad_Id', reason: 'the secret\'s name holds no customer identifier' },
      { customerId: 'broken', reason: 'the secret is not JSON' },
      { customerId: 'no-creds', reason: 'the secret holds no .creds (user JWT and seed)' },
      { customerId: 'swapped', reason: 'the secret is the record of another customer than swapped' },
      { customerId: 'weak-key', reason: expect.stringMatching(/^the secret has an audit public key that is a rsa key; the audit key is ECDSA P-256/) },
    ]);
    // Only ingest secrets were read: the registration's other secrets, other prefixes and deleted ones never.
    expect(shared.valuesRead).toBe(10);
  });

  test('a value is read again only when its secret has a new version: a registration, a revocation and a removal show at the next load', async () => {
    expect(shared.valuesRead).toBe(10);
    await shared.load();
    expect(shared.valuesRead).toBe(10);

    await sm.send(new PutSecretValueCommand({ SecretId: ingestSecretName('fresh'), SecretString: ingestRecordJson(record('fresh', { auditPublicKeyPem: ed25519 })) }));
    await sm.send(new PutSecretValueCommand({ SecretId: ingestSecretName('acme'), SecretString: ingestRecordJson(record('acme', { status: 'revoked' })) }));
    await sm.send(new TagResourceCommand({ SecretId: ingestSecretName('beta'), Tags: tags('beta', 'revoked') }));
    await sm.send(new DeleteSecretCommand({ SecretId: ingestSecretName('gone'), ForceDeleteWithoutRecovery: true }));
    const r = await shared.load();
    expect(shared.valuesRead).toBe(12);
    expect(r.customers.map((c) => [c.customerId, c.status, c.auditPublicKeyPem === ed25519 ? 'ed25519' : 'p256'])).toEqual([
      ['acme', 'revoked', 'p256'], ['beta', 'revoked', 'ed25519'], ['fresh', 'active', 'ed25519'], ['half', 'revoked', 'p256'],
    ]);
    expect(r.awaitingAuditKey).toEqual([]);
    // A new reader reads every value once.
    const fresh = reader();
    expect((await fresh.load()).customers).toEqual(r.customers);
    expect(fresh.valuesRead).toBe(9);
  });

  test('a registry longer than one page of ListSecrets (130 customers under another prefix)', async () => {
    const prefix = 'paging/customers/';
    const ids = Array.from({ length: 130 }, (_, i) => `cust-${String(i).padStart(3, '0')}`);
    for (const id of ids) await put(ingestSecretName(id, prefix), ingestRecordJson(record(id)), id);
    const r = await new RegistryReader(sm, { prefix }).load();
    expect(r.customers.map((c) => c.customerId)).toEqual(ids);
    expect(r.invalid).toEqual([]);
  });
});

describe('cancellations: the byoc:cancelled-at tag byoc customer cancel puts on an ingest secret, read without any value', () => {
  const at = Date.UTC(2026, 10, 23, 22, 7, 59, 120);

  test('one spelling is a time: ISO 8601 in UTC to the millisecond, a date that exists, not before 2020', () => {
    expect(formatCancelledAt(at)).toBe('2026-11-23T22:07:59.120Z');
    expect(parseCancelledAt('2026-11-23T22:07:59.120Z')).toBe(at);
    expect(parseCancelledAt(formatCancelledAt(Date.parse(EARLIEST_CANCELLATION)))).toBe(Date.UTC(2020, 0, 1));
    const refused: [string, RegExp][] = [
      ['1764000000000', /^"1764000000000" is not a time as YYYY-MM-DDTHH:MM:SS\.sssZ$/],
      ['2026-11-23', /is not a time as/],
      ['2026-11-23T22:07:59Z', /is not a time as/],
      ['2026-11-23T23:07:59.120+01:00', /is not a time as/],
      ['', /^"" is not a time as/],
      ['2026-02-30T00:00:00.000Z', /^"2026-02-30T00:00:00\.000Z" is not a time that exists$/],
      ['2026-11-23T24:00:00.000Z', /is not a time that exists$/],
      ['0001-01-01T00:00:00.000Z', /^"0001-01-01T00:00:00\.000Z" is before 2020-01-01, earlier than any cancellation$/],
    ];
    for (const [value, message] of refused) expect(() => parseCancelledAt(value)).toThrow(message);
  });

  test('every ingest secret\'s tag, fresh on each call: times by customer, and the malformed ones named with why; no value read', async () => {
    const prefix = 'cancel/customers/';
    const cancel = (id: string, value: string) => sm.send(new TagResourceCommand({ SecretId: ingestSecretName(id, prefix), Tags: [{ Key: REGISTRY_TAGS.cancelledAt, Value: value }] }));
    for (const id of ['acme', 'beta', 'gamma', 'delta', 'epsilon', 'Bad_Id', 'deleted']) await put(ingestSecretName(id, prefix), ingestRecordJson(record(id)), id);
    await put(`${prefix}acme/nats-account`, '{}', 'acme');
    await sm.send(new TagResourceCommand({ SecretId: `${prefix}acme/nats-account`, Tags: [{ Key: REGISTRY_TAGS.cancelledAt, Value: 'not read' }] }));
    await cancel('acme', formatCancelledAt(at));
    await cancel('gamma', '1764000000000');
    await cancel('delta', '2026-02-30T00:00:00.000Z');
    await cancel('Bad_Id', formatCancelledAt(at));
    await cancel('deleted', formatCancelledAt(at));
    await sm.send(new DeleteSecretCommand({ SecretId: ingestSecretName('deleted', prefix), RecoveryWindowInDays: 7 }));

    const reader = new RegistryReader(sm, { prefix });
    const c = await reader.cancellations();
    expect([...c.cancelledAt]).toEqual([['acme', at]]);
    expect(c.malformed).toEqual([
      { customerId: 'delta', reason: 'the tag byoc:cancelled-at "2026-02-30T00:00:00.000Z" is not a time that exists' },
      { customerId: 'gamma', reason: 'the tag byoc:cancelled-at "1764000000000" is not a time as YYYY-MM-DDTHH:MM:SS.sssZ' },
    ]);
    expect(reader.valuesRead).toBe(0);

    // A later cancellation shows at the next call, without reading a value; the registry itself is as before.
    await cancel('epsilon', formatCancelledAt(at + 1));
    expect([...(await reader.cancellations()).cancelledAt]).toEqual([['acme', at], ['epsilon', at + 1]]);
    expect(reader.valuesRead).toBe(0);
    expect((await reader.load()).customers.map((c) => [c.customerId, c.status])).toEqual([['acme', 'active'], ['beta', 'active'], ['delta', 'active'], ['epsilon', 'active'], ['gamma', 'active']]);
  });
});
