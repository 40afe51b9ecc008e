import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, sign as cryptoSign, verify as cryptoVerify } from 'crypto';
import * as fs from 'fs';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';

/** A failure of signing or verification, with a stable code and one precise reason. */
export class BundleError extends Error {
  constructor(public readonly code: string, message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

/** The two signature algorithms a bundle may carry; which one applies is decided by the public key. */
export type Algorithm = 'ed25519' | 'ecdsa-p256-sha256';

/** Something that signs bytes: a PEM private key on disk, or an asymmetric key in AWS KMS. */
export interface Signer {
  readonly algorithm: Algorithm;
  /** The public key, SPKI PEM. */
  publicKeyPem(): Promise<string>;
  sign(data: Buffer): Promise<Buffer>;
}

/** Largest message KMS signs as RAW. */
const KMS_RAW_LIMIT = 4096;

const KMS_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+$/;

/** `sha256:<hex>` of the DER SubjectPublicKeyInfo: `openssl pkey -pubin -in KEY -outform DER | sha256sum`. */
export function fingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

function algorithmOf(key: KeyObject, what: string): Algorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256-sha256';
  throw new BundleError('unsupported-key', `${what} is a ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''} key; use Ed25519 or ECDSA P-256`);
}

function readKeyFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new BundleError('missing-key', `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The region a KMS key ARN names (`arn:aws:kms:REGION:...`), or undefined for anything else. */
export function kmsKeyRegion(key: string): string | undefined {
  return KMS_ARN.test(key) ? key.split(':')[3] : undefined;
}

/**
 * A signer for `--key`: a PEM private key file, or a KMS key ARN (asymmetric, ECC_NIST_P256, SIGN_VERIFY).
 * A KMS key lives in the region its ARN names, whatever the shell's default region is: the default client
 * is made for that region (`kms` receives it too).
 */
export function signerFor(key: string, kms: (region?: string) => KMSClient = (region) => new KMSClient(region ? { region } : {})): Signer {
  if (KMS_ARN.test(key)) return new KmsSigner(key, kms(kmsKeyRegion(key)));
  const pem = readKeyFile(key, 'private key');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new BundleError('malformed-key', `${key} is not a PEM private key`);
  }
  const algorithm = algorithmOf(privateKey, key);
  return {
    algorithm,
    publicKeyPem: async () => createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
    sign: async (data) => cryptoSign(algorithm === 'ed25519' ? null : 'sha256', data, { key: privateKey, dsaEncoding: 'der' }),
  };
}

class KmsSigner implements Signer {
  public readonly algorithm: Algorithm = 'ecdsa-p256-sha256';
  private publicKey?: string;

  constructor(private readonly keyId: string, private readonly client: KMSClient) {}

  public async publicKeyPem(): Promise<string> {
    if (!this.publicKey) {
      const out = await this.client.send(new GetPublicKeyCommand({ KeyId: this.keyId }));
      const key = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' });
      // The key material decides, not the metadata: it must be an ECDSA P-256 key used for signing.
      const p256 = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
      if (out.KeyUsage !== 'SIGN_VERIFY' || !p256) {
        throw new BundleError('unsupported-key', `KMS key ${this.keyId} is not an ECC_NIST_P256 SIGN_VERIFY key; create one with KeySpec ECC_NIST_P256 and KeyUsage SIGN_VERIFY`);
      }
      this.publicKey = key.export({ type: 'spki', format: 'pem' }).toString();
    }
    return this.publicKey;
  }

  public async sign(data: Buffer): Promise<Buffer> {
    await this.publicKeyPem();
    // KMS hashes a RAW message of up to 4096 bytes itself; a longer manifest is sent as its SHA-256 digest.
    // Both yield an ECDSA signature over SHA-256(manifest).
    const raw = data.length <= KMS_RAW_LIMIT;
    const out = await this.client.send(new SignCommand({
      KeyId: this.keyId,
      Message: raw ? data : createHash('sha256').update(data).digest(),
      MessageType: raw ? 'RAW' : 'DIGEST',
      SigningAlgorithm: 'ECDSA_SHA_256',
    }));
    return Buffer.from(out.Signature!);
  }
}

/** Loads a public key for verification; the key, never the bundle, decides the algorithm. */
export function loadPublicKey(file: string): { key: KeyObject; pem: string; algorithm: Algorithm; fingerprint: string } {
  const pem = readKeyFile(file, 'public key');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
    if (key.type !== 'public') throw new Error();
  } catch {
    throw new BundleError('malformed-key', `${file} is not a PEM public key`);
  }
  return { key, pem, algorithm: algorithmOf(key, file), fingerprint: fingerprint(pem) };
}

/** True when `sig` is a DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }, nothing after it. */
function isDerEcdsaSignature(sig: Buffer): boolean {
  if (sig.length < 8 || sig[0] !== 0x30 || sig[1] !== sig.length - 2) return false;
  let at = 2;
  for (let i = 0; i < 2; i++) {
    if (sig[at] !== 0x02) return false;
    const len = sig[at + 1];
    if (len < 1 || len > 33 || at + 2 + len > sig.length) return false;
    at += 2 + len;
  }
  return at === sig.length;
}

/** Verifies a detached signature: one path per algorithm, with the reason when it does not hold. */
export function verifySignature(data: Buffer, signature: Buffer, publicKey: ReturnType<typeof loadPublicKey>): void {
  if (publicKey.algorithm === 'ed25519') {
    if (signature.length !== 64) throw new BundleError('malformed-signature', `malformed signature: an Ed25519 signature is 64 bytes, this one is ${signature.length}`);
    if (!cryptoVerify(null, data, publicKey.key, signature)) {
      throw new BundleError('bad-signature', `the signature does not verify with public key ${publicKey.fingerprint}`);
    }
    return;
  }
  if (!isDerEcdsaSignature(signature)) throw new BundleError('malformed-signature', 'malformed signature: not a DER-encoded ECDSA signature');
  if (!cryptoVerify('sha256', data, { key: publicKey.key, dsaEncoding: 'der' }, signature)) {
    throw new BundleError('bad-signature', `the signature does not verify with public key ${publicKey.fingerprint}`);
  }
}

/** A new Ed25519 key pair for development: `private.pem` (owner-only) and `public.pem`. */
export function generateDevelopmentKeys(outDir: string, force = false): { privateKey: string; publicKey: string; fingerprint: string } {
  fs.mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const privateKey = `${outDir}/private.pem`;
  const publicKey = `${outDir}/public.pem`;
  for (const f of [privateKey, publicKey]) {
    if (!force && fs.existsSync(f)) throw new BundleError('exists', `${f} exists; pass --force to replace it`);
  }
  const pair = generateKeyPairSync('ed25519');
  const pub = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  fs.rmSync(privateKey, { force: true });
  fs.writeFileSync(privateKey, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(publicKey, pub, { mode: 0o644 });
  return { privateKey, publicKey, fingerprint: fingerprint(pub) };
}
