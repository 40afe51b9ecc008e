import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, PutObjectCommand, PutObjectLockConfigurationCommand, S3Client,
} from '@aws-sdk/client-s3';
import { main } from '../../bin/byoc';
import { projectRoot } from '../../lib/app';
import { CONTROL_PLANE_STACK } from '../../bin/control-plane';
import { RELEASE_OUTPUTS } from '../../control-plane/stack';
import { MANIFEST, parseManifest, RELEASE, SIGNATURE, signAssembly } from '../../lib/bundle';
import { publishRelease, readReleaseOutputs, ReleaseError } from '../../lib/releases';
import { generateDevelopmentKeys, signerFor } from '../../lib/signer';
import { MotoServer, startMoto } from '../servers/moto';
import { synthCustomerPlane } from '../synth';

/**
 * `byoc release publish` as a vendor runs it, against S3 (and KMS) on moto_server: buckets with Object Lock and
 * a default retention, as the control plane's bundle registry is.
 */

const CUSTOMER = 'example';
const tmpdirs: string[] = [];
const tmp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`)); tmpdirs.push(d); return d; };

let moto: MotoServer;
let s3: S3Client;
let assembly: string;
let keys: ReturnType<typeof generateDevelopmentKeys>;
let bundle: string;
const saved = { ...process.env };

/** Runs the CLI in-process; returns exit code and what it printed. */
async function byoc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => { out += `${a.join(' ')}\n`; });
  const error = jest.spyOn(console, 'error').mockImplementation((...a) => { err += `${a.join(' ')}\n`; });
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((s) => { out += s; return true; });
  try {
    return { code: await main(args), out, err };
  } finally {
    log.mockRestore(); error.mockRestore(); stdout.mockRestore();
  }
}

let buckets = 0;
/** A new bucket as the registry is: versioned with Object Lock, every version locked by default. */
async function registry(): Promise<string> {
  const bucket = `bundle-registry-${++buckets}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } }));
  await s3.send(new PutObjectLockConfigurationCommand({ Bucket: bucket, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } } }));
  return bucket;
}

/** Every object version in a bucket, as `key` (one entry per version). */
async function versions(bucket: string): Promise<string[]> {
  const out = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
  return (out.Versions ?? []).map((v) => v.Key!).sort();
}

/** Files of a folder, relative, sorted. */
function filesOf(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

async function sign(version: string, key: string | ReturnType<typeof signerFor> = keys.privateKey): Promise<string> {
  const out = path.join(tmp('bundle'), 'b');
  await signAssembly(assembly, out, typeof key === 'string' ? signerFor(key) : key, { version, hubEndpoint: 'tls://hub.vendor.example:7422' });
  return out;
}

beforeAll(async () => {
  moto = await startMoto();
  // The SDK's notice about its releases after January 2027 is not about this test (the kit pins its SDK).
  Object.assign(process.env, moto.env, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  s3 = new S3Client({});
  assembly = synthCustomerPlane().outdir;
  keys = generateDevelopmentKeys(tmp('keys'));
  bundle = await sign('1.0.0');
});

afterAll(async () => {
  process.env = saved;
  await moto?.stop();
  for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true });
});

test('byoc release publish --help names its options; the README uses no other', async () => {
  const r = await byoc('release', 'publish', '--help');
  expect(r.code).toBe(0);
  for (const option of ['--customer', '--bucket', '--outputs', '--public-key', '--key', '--region']) expect(r.out).toContain(option);
  const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
  const documented = readme.split('\n').filter((l) => l.includes('byoc release publish '));
  expect(documented.length).toBeGreaterThan(0);
  for (const line of documented) for (const option of line.match(/--[a-z-]+/g) ?? []) expect([option, r.out.includes(option)]).toEqual([option, true]);
});

test('publishes the verified bundle under <customer>/<version>/: every file, byte for byte, with the manifest\'s SHA-256, locked by the registry\'s retention', async () => {
  const bucket = await registry();
  const r = await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', keys.publicKey);
  const files = filesOf(bundle);
  expect(r).toMatchObject({ code: 0, err: '' });
  expect(r.out).toMatch(new RegExp(`^published s3://${bucket}/${CUSTOMER}/1\\.0\\.0/: release 1\\.0\\.0 of ${CUSTOMER}, ${files.length} files \\(\\d+ bytes\\), signed by sha256:[0-9a-f]{64}, expires `));
  expect(await versions(bucket)).toEqual(files.map((f) => `${CUSTOMER}/1.0.0/${f}`).sort());

  const listed = new Map(parseManifest(fs.readFileSync(path.join(bundle, MANIFEST))).map((e) => [e.path, e.sha256]));
  for (const f of files) {
    const key = `${CUSTOMER}/1.0.0/${f}`;
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(fs.readFileSync(path.join(bundle, f)))).toBe(true);
    // The checksum S3 verifies on arrival is the one the signed manifest lists (computed only for the manifest and its signature).
    const expected = listed.get(f) ?? createHash('sha256').update(fs.readFileSync(path.join(bundle, f))).digest('hex');
    expect([f, Buffer.from(got.ChecksumSHA256!, 'base64').toString('hex')]).toEqual([f, expected]);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect([f, head.ObjectLockMode]).toEqual([f, 'GOVERNANCE']);
  }
  expect(listed.size).toBe(files.length - 2);
});

test('the same version again is refused before anything is written; another version of the customer is published next to it', async () => {
  const bucket = await registry();
  expect((await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', keys.publicKey)).code).toBe(0);
  const before = await versions(bucket);
  const again = await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', keys.publicKey);
  expect(again).toEqual({
    code: 1,
    out: '',
    err: `byoc: release 1.0.0 of ${CUSTOMER} is already in s3://${bucket}/${CUSTOMER}/1.0.0/ (published, or an earlier publication of it stopped): a published version is never replaced; sign and publish a new version\n`,
  });
  // Not one new object version: the refusal came from S3 itself (If-None-Match), on the first file.
  expect(await versions(bucket)).toEqual(before);

  const next = await sign('1.1.0');
  expect((await byoc('release', 'publish', next, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', keys.publicKey)).code).toBe(0);
  expect((await versions(bucket)).filter((k) => k.startsWith(`${CUSTOMER}/1.1.0/`))).toHaveLength(filesOf(next).length);
  expect((await versions(bucket)).filter((k) => k.startsWith(`${CUSTOMER}/1.0.0/`))).toEqual(before);
});

test('an object of the version that appears during a publication is not overwritten: the publication stops naming it', async () => {
  const bucket = await registry();
  const squatter = Buffer.from('not the signature');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${CUSTOMER}/1.0.0/${SIGNATURE}`, Body: squatter, ChecksumAlgorithm: 'SHA256' }));
  const r = await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', keys.publicKey);
  expect(r).toMatchObject({ code: 1, err: `byoc: s3://${bucket}/${CUSTOMER}/1.0.0/${SIGNATURE} appeared while publishing: another publication of release 1.0.0 of ${CUSTOMER} is running\n` });
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${CUSTOMER}/1.0.0/${SIGNATURE}` }));
  expect(Buffer.from(await got.Body!.transformToByteArray()).equals(squatter)).toBe(true);
  expect((await versions(bucket)).filter((k) => k.endsWith(`/${SIGNATURE}`))).toHaveLength(1);
  // The release file went first, the signature would have gone last.
  expect(await versions(bucket)).toContain(`${CUSTOMER}/1.0.0/${RELEASE}`);
});

describe('refused before anything is uploaded', () => {
  let bucket: string;
  beforeAll(async () => { bucket = await registry(); });
  afterEach(async () => { expect(await versions(bucket)).toEqual([]); });

  const copyOf = (dir: string) => { const d = path.join(tmp('copy'), 'b'); fs.cpSync(dir, d, { recursive: true }); return d; };

  test('a tampered bundle, naming the changed file', async () => {
    const tampered = copyOf(bundle);
    const template = filesOf(tampered).find((f) => f.endsWith('.template.json') && !f.includes('.nested.'))!;
    fs.appendFileSync(path.join(tampered, template), ' ');
    const r = await byoc('release', 'publish', tampered, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', keys.publicKey);
    expect(r).toEqual({ code: 1, out: '', err: `byoc: file ${template} was changed after signing (SHA-256 mismatch)\n` });
  });

  test('a file added after signing', async () => {
    const added = copyOf(bundle);
    fs.writeFileSync(path.join(added, 'extra.json'), '{}');
    expect(await byoc('release', 'publish', added, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', keys.publicKey))
      .toMatchObject({ code: 1, err: 'byoc: file extra.json is not in the manifest (added after signing)\n' });
  });

  test('a bundle signed by another key', async () => {
    const other = generateDevelopmentKeys(tmp('keys'));
    expect(await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--bucket', bucket, '--public-key', other.publicKey))
      .toMatchObject({ code: 1, err: expect.stringMatching(/^byoc: the signature does not verify with public key sha256:[0-9a-f]{64}\n$/) });
  });

  test('an expired release', async () => {
    await expect(publishRelease({ bundle, customer: CUSTOMER, bucket, publicKey: keys.publicKey, at: new Date(Date.now() + 91 * 86400000) }))
      .rejects.toThrow(/^release 1\.0\.0 expired at /);
  });

  test('the plane of another customer', async () => {
    expect(await byoc('release', 'publish', bundle, '--customer', 'globex', '--bucket', bucket, '--public-key', keys.publicKey))
      .toEqual({ code: 1, out: '', err: `byoc: ${bundle} is the release of customer ${CUSTOMER}, not globex\n` });
  });

  test('no bucket, no key, a malformed customer', async () => {
    expect(await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--public-key', keys.publicKey))
      .toMatchObject({ code: 1, err: `byoc: --bucket: missing; give the registry bucket, or --outputs with the control plane's ${RELEASE_OUTPUTS.registryBucket} output\n` });
    expect(await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--bucket', bucket))
      .toMatchObject({ code: 1, err: expect.stringMatching(/^byoc: --public-key: missing; /) });
    expect(await byoc('release', 'publish', bundle, '--customer', 'Acme Corp', '--bucket', bucket, '--public-key', keys.publicKey))
      .toMatchObject({ code: 1, err: expect.stringMatching(/^byoc: --customer: "Acme Corp" is not a customer identifier/) });
  });
});

test('with --outputs alone: the registry and the signing key come from the control plane\'s outputs, the public key from KMS, the customer from the signed release', async () => {
  const kms = new KMSClient({});
  const keyArn = (await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'byoc bundle signing (test)' }))).KeyMetadata!.Arn!;
  const signed = await sign('2.0.0', signerFor(keyArn));
  const bucket = await registry();
  const outputs = path.join(tmp('outputs'), 'control-plane-outputs.json');
  fs.writeFileSync(outputs, JSON.stringify({ OtherStack: { Foo: 'bar' }, [CONTROL_PLANE_STACK]: { [RELEASE_OUTPUTS.registryBucket]: bucket, [RELEASE_OUTPUTS.signingKey]: keyArn, [RELEASE_OUTPUTS.signerRole]: 'arn:aws:iam::123456789012:role/signer' } }));

  // Without --customer: the signed release names it.
  const r = await byoc('release', 'publish', signed, '--outputs', outputs);
  expect(r).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`^published s3://${bucket}/${CUSTOMER}/2\\.0\\.0/: release 2\\.0\\.0 of ${CUSTOMER}, `)) });
  expect(await versions(bucket)).toHaveLength(filesOf(signed).length);

  // A bundle signed with another key does not verify against the control plane's signing key.
  expect(await byoc('release', 'publish', bundle, '--customer', CUSTOMER, '--outputs', outputs))
    .toMatchObject({ code: 1, err: expect.stringMatching(/^byoc: malformed signature: not a DER-encoded ECDSA signature\n$/) });
});

test('readReleaseOutputs: the control plane\'s stack, or the one stack with a registry; a file without one is refused', () => {
  const dir = tmp('outputs');
  const write = (name: string, value: unknown) => { const f = path.join(dir, name); fs.writeFileSync(f, JSON.stringify(value)); return f; };
  expect(readReleaseOutputs(write('one.json', { Renamed: { [RELEASE_OUTPUTS.registryBucket]: 'b1', [RELEASE_OUTPUTS.signingKey]: 'k1' } })))
    .toEqual({ bucket: 'b1', signingKeyArn: 'k1', signerRoleArn: undefined });
  expect(readReleaseOutputs(write('two.json', { A: { [RELEASE_OUTPUTS.registryBucket]: 'a' }, [CONTROL_PLANE_STACK]: { [RELEASE_OUTPUTS.registryBucket]: 'own' } })).bucket).toBe('own');
  expect(() => readReleaseOutputs(write('ambiguous.json', { A: { [RELEASE_OUTPUTS.registryBucket]: 'a' }, B: { [RELEASE_OUTPUTS.registryBucket]: 'b' } }))).toThrow(/several control-plane stacks \(A, B\)/);
  expect(() => readReleaseOutputs(write('none.json', { A: { HubUrl: 'x' } }))).toThrow(new ReleaseError('bad-outputs', `--outputs: ${path.join(dir, 'none.json')} has no stack with the output ${RELEASE_OUTPUTS.registryBucket}; deploy the control plane with cdk deploy --outputs-file FILE and give that file, or give --bucket`));
  expect(() => readReleaseOutputs(path.join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json \(ENOENT\)/);
});
