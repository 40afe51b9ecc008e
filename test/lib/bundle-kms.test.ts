import { spawnSync } from 'child_process';
import { createPublicKey } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { signAssembly, verifyBundle } from '../../lib/bundle';
import { fingerprint, signerFor } from '../../lib/signer';
import { projectRoot } from '../../lib/app';
import { startMoto, MotoServer } from '../servers/moto';
import { synthCustomerPlane } from '../synth';

let moto: MotoServer;
const saved = { ...process.env };
const dirs: string[] = [];
const tmp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`)); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

beforeAll(async () => {
  moto = await startMoto();
  // The SDK's notice that its releases after January 2027 need Node.js 22 is not about this test.
  Object.assign(process.env, moto.env, { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
});
afterAll(async () => {
  process.env = saved;
  await moto?.stop();
});

async function createKey(KeySpec: 'ECC_NIST_P256' | 'RSA_2048', KeyUsage: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT'): Promise<string> {
  const out = await new KMSClient({}).send(new CreateKeyCommand({ KeySpec, KeyUsage, Description: 'byoc bundle signing (test)' }));
  return out.KeyMetadata!.Arn!;
}

test('sign the real customer plane with a KMS key through the AWS SDK, verify offline with the exported public key', async () => {
  const arn = await createKey('ECC_NIST_P256', 'SIGN_VERIFY');
  const signer = signerFor(arn);
  const bundle = path.join(tmp('kms'), 'b');
  const release = await signAssembly(synthCustomerPlane().outdir, bundle, signer, { version: '2.0.0', hubEndpoint: 'tls://hub.vendor.example:7422' });
  expect(release.signer.algorithm).toBe('ecdsa-p256-sha256');

  // The customer has only the exported public key: no AWS access is needed to verify.
  const pub = path.join(tmp('pub'), 'vendor-public.pem');
  fs.writeFileSync(pub, await signer.publicKeyPem());
  expect(release.signer.publicKeyFingerprint).toBe(fingerprint(fs.readFileSync(pub, 'utf8')));
  process.env.AWS_ENDPOINT_URL = 'http://127.0.0.1:9'; // nothing listens: verification must not call AWS
  try {
    expect(verifyBundle(bundle, pub, { stateDir: tmp('state') }).release.version).toBe('2.0.0');
  } finally {
    process.env.AWS_ENDPOINT_URL = moto.endpoint;
  }

  // And with standard tools alone, as the README says.
  const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
  const script = /```sh\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('<!-- verify:ecdsa-p256 -->')))![1].replace(/^ {3}/gm, '');
  const run = spawnSync('bash', ['-eo', 'pipefail', '-c', script], { env: { ...process.env, BUNDLE: bundle, PUB: pub }, encoding: 'utf8' });
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
  expect(run.stdout).toContain('Signature Verified Successfully');
});

test('a KMS key that is not an ECC_NIST_P256 signing key is refused', async () => {
  const rsa = await createKey('RSA_2048', 'SIGN_VERIFY');
  await expect(signerFor(rsa).publicKeyPem()).rejects.toThrow(/not an ECC_NIST_P256 SIGN_VERIFY key/);
});

test('a KMS key is used in the region its ARN names, whatever the default region (sign, pubkey and the audit signer all go through signerFor)', async () => {
  const inOhio = new KMSClient({ region: 'us-east-2' });
  const arn = (await inOhio.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.Arn!;
  expect(arn).toMatch(/^arn:aws:kms:us-east-2:/);
  expect(process.env.AWS_REGION).toBe('eu-west-1'); // the default region: the key is not there
  await expect(new KMSClient({}).send(new GetPublicKeyCommand({ KeyId: arn }))).rejects.toThrow(/does not exist/);
  const bundle = path.join(tmp('kms'), 'b');
  const release = await signAssembly(synthCustomerPlane().outdir, bundle, signerFor(arn), { version: '2.1.0', hubEndpoint: 'tls://hub.vendor.example:7422' });
  const pub = path.join(tmp('pub'), 'vendor-public.pem');
  const der = Buffer.from((await inOhio.send(new GetPublicKeyCommand({ KeyId: arn }))).PublicKey!);
  fs.writeFileSync(pub, createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
  expect(release.signer.publicKeyFingerprint).toBe(fingerprint(fs.readFileSync(pub, 'utf8')));
  expect(verifyBundle(bundle, pub, { stateDir: tmp('state') }).release.version).toBe('2.1.0');
});
