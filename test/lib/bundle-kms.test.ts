import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { signAssembly, verifyBundle } from '../../lib/bundle';
import { fingerprint, signerFor } from '../../lib/signer';
import { projectRoot } from '../../lib/app';
import { startMoto, MotoServer } from '../servers/moto';
import { synthCustomerPlane } from '../synth';

let moto: MotoServer;
const saved = { ...process.env };
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`));

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, moto.env);
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
