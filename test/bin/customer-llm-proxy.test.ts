import { spawn } from 'child_process';
import { createPublicKey } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateKeyCommand, GetPublicKeyCommand } from '@aws-sdk/client-kms';
import { GetSecretValueCommand, ListSecretVersionIdsCommand } from '@aws-sdk/client-secrets-manager';
import { decodeJwt, jwtVerify } from 'jose';
import { projectRoot } from '../../lib/app';
import { BUNDLE_FORMAT } from '../../lib/bundle';
import { formatJson } from '../../lib/customers';
import { operatorInit } from '../../lib/nats-auth';
import { llmProxyAudience } from '../../control-plane/llm-proxy/endpoint';
import { llmTokenSecretName } from '../../control-plane/llm-proxy/provision';
import { DEFAULT_LIMITS, LlmStore } from '../../control-plane/llm-proxy/store';
import { LLM_TOKEN_ALG, LLM_TOKEN_ISSUER, LLM_TOKEN_TYPE } from '../../control-plane/llm-proxy/token';
import { loadCustomerPlaneConfig } from '../../customer-plane/config';
import { resolveProps } from '../../customer-plane/props';
import { LlmBackends, startLlmBackends } from '../control-plane/llm-proxy-harness';

/**
 * `byoc customer add|revoke` with the vendor's LLM proxy (`node dist/bin/byoc.js`): the proxy's token key in KMS
 * (ECC_NIST_P256, SIGN_VERIFY) and its table in DynamoDB, the secrets in Secrets Manager, all on moto_server.
 * No hub is pushed to (the NATS side is test/bin/customer.test.ts).
 */

const CLI = path.join(projectRoot(), 'dist', 'bin', 'byoc.js');
const C = 'acme-corp';
const ACCOUNT = '123456789012';
const ENDPOINT_SERVICE = 'com.amazonaws.vpce.eu-west-1.vpce-svc-0a1b2c3d4e5f60718';
const EXAMPLE_CUSTOMER = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8'));

let aws: LlmBackends;
let store: LlmStore;
let dir: string;
let out: string;
let vendorConfig: string;
let outputs: string;
let release: string;
let seedSecretArn: string;
let hubHost: string;

function byoc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...aws.moto.env, NODE_NO_WARNINGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let o = '';
    let e = '';
    child.stdout.on('data', (d) => { o += d; });
    child.stderr.on('data', (d) => { e += d; });
    child.on('close', (code) => resolve({ code: code ?? -1, out: o, err: e }));
  });
}

const add = (customer: string, ...extra: string[]) => byoc('customer', 'add', '--customer', customer, '--account', ACCOUNT, '--vendor-config', vendorConfig, '--out', out, '--release', release, ...extra);
const revoke = (customer: string, ...extra: string[]) => byoc('customer', 'revoke', '--customer', customer, '--vendor-config', vendorConfig, '--no-push', '--reason', 'contract ended', ...extra);
const token = async (customer: string) => (await aws.secrets.send(new GetSecretValueCommand({ SecretId: llmTokenSecretName(customer) }))).SecretString!;
const versions = async (id: string) => (await aws.secrets.send(new ListSecretVersionIdsCommand({ SecretId: id, IncludeDeprecated: true }))).Versions!.map((v) => v.VersionId).sort();
const stepLines = (text: string, step: string) => text.split('\n').filter((l) => l.startsWith(`${step}: `));
/** Lines of steps that changed something. */
const changedLines = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('next: ') && !l.endsWith('(unchanged)'));

/** Verifies a token as the proxy does: ES256 against the KMS key's public key, typ, issuer and audience pinned. */
async function verify(jwt: string) {
  const der = (await aws.kms.send(new GetPublicKeyCommand({ KeyId: aws.tokenKeyArn }))).PublicKey!;
  const key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  return jwtVerify(jwt, key, { algorithms: [LLM_TOKEN_ALG], typ: LLM_TOKEN_TYPE, issuer: LLM_TOKEN_ISSUER, audience: llmProxyAudience(hubHost) });
}

beforeAll(async () => {
  aws = await startLlmBackends();
  store = new LlmStore(aws.dynamodb, aws.table);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-customer-llm-'));
  out = path.join(dir, 'customers');
  const operator = await operatorInit();
  const example = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8'));
  example.hub.operatorJwt = operator.operator.jwt;
  example.hub.systemAccountPublicKey = operator.systemAccount.publicKey;
  example.hub.systemAccountJwt = operator.systemAccount.jwt;
  example.hub.tls.caCertificateFile = path.join(projectRoot(), 'config', example.hub.tls.caCertificateFile);
  hubHost = example.hub.host;
  vendorConfig = path.join(dir, 'vendor.json');
  fs.writeFileSync(vendorConfig, formatJson(example));
  seedSecretArn = await aws.secret('byoc/hub/operator-signing-seed', operator.operator.seed);
  outputs = path.join(dir, 'outputs.json');
  fs.writeFileSync(outputs, JSON.stringify({
    ByocControlPlane: {
      HubEndpointServiceName: ENDPOINT_SERVICE, OperatorSigningSeedSecretArn: seedSecretArn, LlmProxyTokenKeyArn: aws.tokenKeyArn, LlmProxyTableName: aws.table,
    },
  }));
  release = path.join(dir, 'byoc-release.json');
  fs.writeFileSync(release, JSON.stringify({ format: BUNDLE_FORMAT, version: '1.4.0', images: Object.values(EXAMPLE_CUSTOMER.images).sort() }));
});

afterAll(async () => {
  await aws?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('add and revoke with the vendor\'s LLM proxy (outputs LlmProxyTokenKeyArn, LlmProxyTableName)', () => {
  let firstJti: string;

  test('add registers the customer in the proxy\'s table with the default limits, stores a token that verifies against the KMS key (typ, iss, aud, sub), and the plane configuration uses the proxy', async () => {
    const r = await add(C, '--control-plane-outputs', outputs);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(stepLines(r.out, 'llm proxy')).toEqual([
      expect.stringMatching(/^llm proxy: issued a token into byoc\/customers\/acme-corp\/llm-proxy-token \(expires \d{4}-\d\d-\d\d\); registered in byoc-llm-proxy with 600 requests per minute, 5000000 tokens per day$/),
    ]);
    expect(r.out).toMatch(/^next: hand the LLM proxy token to the customer .*--secret-id byoc\/customers\/acme-corp\/llm-proxy-token .* byoc\/acme-corp\/llm-primary/m);

    const jwt = await token(C);
    const { payload, protectedHeader } = await verify(jwt);
    // kid: the key as KMS names it (its ARN in AWS; moto answers the bare key ID).
    const kid = (await aws.kms.send(new GetPublicKeyCommand({ KeyId: aws.tokenKeyArn }))).KeyId;
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: LLM_TOKEN_TYPE, kid });
    expect(aws.tokenKeyArn.endsWith(kid!)).toBe(true);
    expect(payload).toMatchObject({ sub: C, aud: `https://llm.${hubHost}`, iss: LLM_TOKEN_ISSUER });
    // Another key's signature would not verify: the check above is against this key only.
    const other = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const otherKey = createPublicKey({ key: Buffer.from((await aws.kms.send(new GetPublicKeyCommand({ KeyId: other.KeyMetadata!.Arn! }))).PublicKey!), format: 'der', type: 'spki' });
    await expect(jwtVerify(jwt, otherKey, { algorithms: ['ES256'] })).rejects.toThrow(/signature verification failed/);
    firstJti = payload.jti!;

    const held = await store.customer(C);
    expect(held).toEqual({ customerId: C, status: 'active', tokenIds: [firstJti], ...DEFAULT_LIMITS });

    const planeFile = path.join(out, `${C}.json`);
    const plane = JSON.parse(fs.readFileSync(planeFile, 'utf8'));
    expect(plane.llm).toEqual({ via: 'vendor-proxy' });
    expect(plane.vendorHub.endpointService).toBe(ENDPOINT_SERVICE);
    expect(resolveProps(loadCustomerPlaneConfig(planeFile)).llm).toEqual({ via: 'vendor-proxy' });
  });

  test('add again changes nothing: the same token (no new secret version), the same table record, the same plane configuration', async () => {
    const before = { versions: await versions(llmTokenSecretName(C)), plane: fs.readFileSync(path.join(out, `${C}.json`), 'utf8'), held: await store.customer(C) };
    const r = await add(C, '--control-plane-outputs', outputs);
    expect(r.code).toBe(0);
    expect(stepLines(r.out, 'llm proxy')).toEqual([expect.stringMatching(/^llm proxy: kept the token in byoc\/customers\/acme-corp\/llm-proxy-token .*; already registered in byoc-llm-proxy .* \(unchanged\)$/)]);
    expect(changedLines(r.out)).toEqual([]);
    expect(await versions(llmTokenSecretName(C))).toEqual(before.versions);
    expect(fs.readFileSync(path.join(out, `${C}.json`), 'utf8')).toBe(before.plane);
    expect(await store.customer(C)).toEqual(before.held);
    expect(decodeJwt(await token(C)).jti).toBe(firstJti);
  });

  test('limit flags change the limits and keep the token; without them the limits stay as set', async () => {
    const r = await add(C, '--control-plane-outputs', outputs, '--llm-requests-per-minute', '120', '--llm-tokens-per-period', '900000', '--llm-budget-period', 'month');
    expect(r.code).toBe(0);
    expect(changedLines(r.out)).toEqual([expect.stringMatching(/^llm proxy: kept the token in .*; updated in byoc-llm-proxy with 120 requests per minute, 900000 tokens per month$/)]);
    expect(await store.customer(C)).toEqual({ customerId: C, status: 'active', tokenIds: [firstJti], requestsPerMinute: 120, tokensPerPeriod: 900000, period: 'month' });
    const again = await add(C, '--control-plane-outputs', outputs);
    expect(changedLines(again.out)).toEqual([]);
    expect((await store.customer(C))?.requestsPerMinute).toBe(120);
  });

  test('revoke marks the customer revoked in the proxy\'s table (no token admitted); again, nothing changes', async () => {
    const r = await revoke(C, '--control-plane-outputs', outputs);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(stepLines(r.out, 'llm proxy')).toEqual(['llm proxy: revoked acme-corp in byoc-llm-proxy (the proxy refuses its tokens; add --reinstate issues a new one)']);
    const held = await store.customer(C);
    expect(held?.status).toBe('revoked');
    expect(held?.tokenIds).toEqual([]);
    expect(await aws.tableDump()).toContain('contract ended');
    const again = await revoke(C, '--control-plane-outputs', outputs);
    expect(again.code).toBe(0);
    expect(stepLines(again.out, 'llm proxy')).toEqual([expect.stringMatching(/^llm proxy: already revoked acme-corp in byoc-llm-proxy .*\(unchanged\)$/)]);
    expect(changedLines(again.out)).toEqual([]);
  });

  test('add --reinstate issues a new token (the revoked one stays unadmitted) and activates the customer again', async () => {
    const r = await add(C, '--control-plane-outputs', outputs, '--reinstate');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(stepLines(r.out, 'llm proxy')).toEqual([expect.stringMatching(/^llm proxy: issued a token into .*; updated in byoc-llm-proxy with 120 requests per minute/)]);
    const { payload } = await verify(await token(C));
    expect(payload.sub).toBe(C);
    expect(payload.jti).not.toBe(firstJti);
    expect(await store.customer(C)).toMatchObject({ status: 'active', tokenIds: [payload.jti] });
  });
});

describe('the proxy given by flags, and what is refused', () => {
  const base = (customer: string) => ['--endpoint-service', ENDPOINT_SERVICE, '--operator-seed-secret', seedSecretArn, '--customer', customer];

  test('--llm-token-key and --llm-table without outputs provision the customer; revoke --llm-table revokes it; without the table revoke leaves the proxy alone', async () => {
    const flags = ['--llm-token-key', aws.tokenKeyArn, '--llm-table', aws.table];
    const r = await byoc('customer', 'add', '--account', ACCOUNT, '--vendor-config', vendorConfig, '--out', out, '--release', release, ...base('beta'), ...flags);
    expect(r.err).toBe('');
    expect(stepLines(r.out, 'llm proxy')).toEqual([expect.stringMatching(/^llm proxy: issued a token into byoc\/customers\/beta\/llm-proxy-token/)]);
    expect((await verify(await token('beta'))).payload.sub).toBe('beta');
    expect((await store.customer('beta'))?.status).toBe('active');

    const without = await revoke('beta', '--operator-seed-secret', seedSecretArn);
    expect(without.code).toBe(0);
    expect(stepLines(without.out, 'llm proxy')).toEqual([]);
    expect((await store.customer('beta'))?.status).toBe('active');
    const r2 = await revoke('beta', '--operator-seed-secret', seedSecretArn, '--llm-table', aws.table);
    expect(r2.code).toBe(0);
    expect(stepLines(r2.out, 'llm proxy')).toEqual([expect.stringMatching(/^llm proxy: revoked beta in byoc-llm-proxy/)]);
    expect((await store.customer('beta'))?.status).toBe('revoked');
  });

  test('without the proxy add writes no token and no llm setting', async () => {
    const r = await add('gamma', ...base('gamma').slice(0, 4));
    expect(r.err).toBe('');
    expect(stepLines(r.out, 'llm proxy')).toEqual([]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'gamma.json'), 'utf8')).llm).toBeUndefined();
    expect(await store.customer('gamma')).toBeUndefined();
    await expect(token('gamma')).rejects.toThrow(/ResourceNotFound|can't find/i);
  });

  test('a plane configuration that says own-keys keeps it when the proxy is provisioned (the token is there should the customer switch)', async () => {
    const file = path.join(out, 'gamma.json');
    fs.writeFileSync(file, formatJson({ ...JSON.parse(fs.readFileSync(file, 'utf8')), egress: 'nat', llm: { via: 'own-keys' } }));
    const r = await add('gamma', ...base('gamma').slice(0, 4), '--llm-token-key', aws.tokenKeyArn, '--llm-table', aws.table);
    expect(r.err).toBe('');
    expect(stepLines(r.out, 'llm proxy')).toEqual([expect.stringMatching(/^llm proxy: issued a token into byoc\/customers\/gamma\/llm-proxy-token/)]);
    expect(r.out).toMatch(/^next: the plane configuration .*gamma\.json has llm: \{ via: 'own-keys' \} \(kept\)/m);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).llm).toEqual({ via: 'own-keys' });
  });

  test('half a proxy, limits without a proxy, bad limits and a key that is not a P-256 signing key are refused before anything is written', async () => {
    const refused = async (args: string[], message: RegExp) => {
      const r = await add('delta', ...base('delta').slice(0, 4), ...args);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(message);
      expect(fs.existsSync(path.join(out, 'delta.json'))).toBe(false);
      expect(await store.customer('delta')).toBeUndefined();
    };
    await refused(['--llm-token-key', aws.tokenKeyArn], /--llm-table: missing: .* Fix: give --llm-table \(the control plane's LlmProxyTableName output\)/);
    await refused(['--llm-table', aws.table], /--llm-token-key: missing: .* Fix: give --llm-token-key \(the control plane's LlmProxyTokenKeyArn output\)/);
    await refused(['--llm-requests-per-minute', '10'], /--llm-requests-per-minute: given, but there is no LLM proxy to apply it to/);
    await refused(['--llm-token-key', aws.tokenKeyArn, '--llm-table', aws.table, '--llm-tokens-per-period', '1.5'], /--llm-tokens-per-period: "1.5" is not a whole number from 1 to/);
    await refused(['--llm-token-key', aws.tokenKeyArn, '--llm-table', aws.table, '--llm-budget-period', 'week'], /--llm-budget-period: "week" is neither day nor month/);
    await refused(['--llm-token-key', 'alias/llm', '--llm-table', aws.table], /--llm-token-key: "alias\/llm" is not a KMS key ARN/);
    const symmetric = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    await refused(['--llm-token-key', symmetric, '--llm-table', aws.table], /--llm-token-key: .* is a SYMMETRIC_DEFAULT( ENCRYPT_DECRYPT)? key, not the LLM proxy's token key/);
    await refused(['--llm-token-key', aws.tokenKeyArn, '--llm-table', 'no-such-table'], /--llm-table: reading customer delta from no-such-table failed \(ResourceNotFoundException/);
    await expect(aws.secrets.send(new GetSecretValueCommand({ SecretId: 'byoc/customers/delta/nats-account' }))).rejects.toThrow();
  });
});
