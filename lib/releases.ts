import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { KMSClient } from '@aws-sdk/client-kms';
import { PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Command } from 'commander';
import { CONTROL_PLANE_STACK } from '../bin/control-plane';
import { RELEASE_OUTPUTS } from '../control-plane/stack';
import { CUSTOMER_ID } from './boundary-contract';
import { MANIFEST, parseManifest, RELEASE, SIGNATURE, Verified, verifyBundle } from './bundle';
import { signerFor } from './signer';

/**
 * The vendor's publication of a signed bundle (`byoc release publish`): the bundle is verified with the kit's
 * own verification, on a private copy, and exactly that copy is uploaded to the control plane's bundle
 * registry under `<customer>/<version>/` (both from the signed release). A version is published once: every
 * object is written with S3's `If-None-Match: *` (a key already there is refused, atomically), and the
 * registry's Object Lock keeps every version for its retention. The release file goes first (its refusal means the version exists), the
 * signature last (a version with a signature is complete). Each object carries its SHA-256, which S3 checks
 * on arrival: for every file but the signature and the manifest, the one the signed manifest lists.
 */

/** A publication that cannot go ahead: names the flag or file, the problem and the fix. */
export class ReleaseError extends Error {
  constructor(public readonly code: string, message: string) {
    super(message);
    this.name = 'ReleaseError';
  }
}

/** What `--outputs` gives: the registry, the signing key (and where the control plane runs). */
export interface ReleaseOutputs {
  readonly bucket?: string;
  readonly signingKeyArn?: string;
  readonly signerRoleArn?: string;
}

/** The release outputs of the control plane in a `cdk deploy --outputs-file` JSON. */
export function readReleaseOutputs(file: string): ReleaseOutputs {
  let parsed: Record<string, Record<string, string>>;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ReleaseError('bad-outputs', `--outputs: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the file cdk deploy --outputs-file wrote for the control plane`);
  }
  const stacks = Object.entries(parsed ?? {}).filter(([, v]) => v && typeof v === 'object' && RELEASE_OUTPUTS.registryBucket in v);
  if (stacks.length === 0) {
    throw new ReleaseError('bad-outputs', `--outputs: ${file} has no stack with the output ${RELEASE_OUTPUTS.registryBucket}; deploy the control plane with cdk deploy --outputs-file FILE and give that file, or give --bucket`);
  }
  const own = stacks.find(([name]) => name === CONTROL_PLANE_STACK);
  if (!own && stacks.length > 1) {
    throw new ReleaseError('bad-outputs', `--outputs: ${file} has several control-plane stacks (${stacks.map(([n]) => n).join(', ')}); give --bucket and --public-key`);
  }
  const outputs = (own ?? stacks[0])[1];
  return { bucket: outputs[RELEASE_OUTPUTS.registryBucket], signingKeyArn: outputs[RELEASE_OUTPUTS.signingKey], signerRoleArn: outputs[RELEASE_OUTPUTS.signerRole] };
}

export interface PublishOptions {
  /** The signed bundle folder. */
  readonly bundle: string;
  /** The customer the bundle must be for. @default - the signed release's `customerId` */
  readonly customer?: string;
  /** The registry bucket; else from `outputs`. */
  readonly bucket?: string;
  /** The control plane's `cdk deploy --outputs-file` JSON. */
  readonly outputs?: string;
  /** PEM public key to verify with; else the signing key's, from KMS (`key`, else the outputs' key). */
  readonly publicKey?: string;
  /** KMS key ARN of the signing key. */
  readonly key?: string;
  readonly region?: string;
  /** Check the release's expiry as of this time. @default - now */
  readonly at?: Date;
}

export interface Published {
  readonly bucket: string;
  readonly prefix: string;
  readonly files: number;
  readonly bytes: number;
  readonly verified: Verified;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data);

/** Files below a folder, relative with `/`, in byte order (the bundle's own listing refuses links and specials). */
function filesOf(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }))
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .map((f) => f.split(path.sep).join('/'))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Verifies a signed bundle and uploads exactly what was verified to the registry, once. */
export async function publishRelease(o: PublishOptions, clients: { s3?: S3Client; kms?: KMSClient } = {}): Promise<Published> {
  if (o.customer !== undefined && !CUSTOMER_ID.test(o.customer)) {
    throw new ReleaseError('bad-customer', `--customer: "${o.customer}" is not a customer identifier (3 to 20 lower-case letters, digits and single hyphens)`);
  }
  const outputs = o.outputs ? readReleaseOutputs(o.outputs) : {};
  const bucket = o.bucket ?? outputs.bucket;
  if (!bucket) throw new ReleaseError('no-bucket', `--bucket: missing; give the registry bucket, or --outputs with the control plane's ${RELEASE_OUTPUTS.registryBucket} output`);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ReleaseError('no-bucket', `--bucket: "${bucket}" is not an S3 bucket name`);
  const keyArn = o.key ?? outputs.signingKeyArn;
  // The registry and the signing key live where the control plane runs.
  const region = o.region ?? (keyArn ? /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(keyArn)?.[1] : undefined);
  if (!o.publicKey && !keyArn) {
    throw new ReleaseError('no-key', `--public-key: missing; give the vendor's public key (PEM), or the signing key with --key or --outputs (${RELEASE_OUTPUTS.signingKey})`);
  }

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-publish-'));
  try {
    // Verify a private copy and upload that copy: the bundle cannot change between the two.
    const copy = path.join(work, 'bundle');
    fs.cpSync(o.bundle, copy, { recursive: true, verbatimSymlinks: true });
    let publicKey = o.publicKey;
    if (!publicKey) {
      publicKey = path.join(work, 'signing-key.pem');
      const kms = () => clients.kms ?? new KMSClient(region ? { region } : {});
      fs.writeFileSync(publicKey, await signerFor(keyArn!, kms).publicKeyPem());
    }
    // A fresh state folder: publishing an older version for a customer is not a downgrade of this machine.
    const verified = verifyBundle(copy, publicKey, { stateDir: path.join(work, 'state'), at: o.at });
    // The customer is part of what was signed (and verification checked it against the templates).
    const customer = verified.release.customerId;
    if (o.customer !== undefined && customer !== o.customer) throw new ReleaseError('wrong-customer', `${o.bundle} is the release of customer ${customer}, not ${o.customer}`);

    const prefix = `${customer}/${verified.release.version}/`;
    const listed = new Map(parseManifest(fs.readFileSync(path.join(copy, MANIFEST))).map((e) => [e.path, e.sha256]));
    const files = filesOf(copy);
    const order = [RELEASE, ...files.filter((f) => f !== RELEASE && f !== SIGNATURE), SIGNATURE];
    const s3 = clients.s3 ?? new S3Client(region ? { region } : {});
    let bytes = 0;
    for (const [i, file] of order.entries()) {
      const body = fs.readFileSync(path.join(copy, file));
      const hex = listed.get(file);
      const digest = hex ? Buffer.from(hex, 'hex') : sha256(body).digest();
      try {
        await s3.send(new PutObjectCommand({
          Bucket: bucket,
          Key: `${prefix}${file}`,
          Body: body,
          // Object Lock needs a checksum named on every put; S3 refuses the object if its bytes do not match it.
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: digest.toString('base64'),
          IfNoneMatch: '*',
          ContentType: file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
        }));
      } catch (e) {
        if (e instanceof S3ServiceException && (e.$metadata?.httpStatusCode === 412 || e.name === 'PreconditionFailed')) {
          throw new ReleaseError(i === 0 ? 'exists' : 'conflict', i === 0
            ? `release ${verified.release.version} of ${customer} is already in s3://${bucket}/${prefix} (published, or an earlier publication of it stopped): a published version is never replaced; sign and publish a new version`
            : `s3://${bucket}/${prefix}${file} appeared while publishing: another publication of release ${verified.release.version} of ${customer} is running`);
        }
        throw new ReleaseError('upload-failed', `uploading ${file} to s3://${bucket}/${prefix} failed (${(e as Error).name}: ${(e as Error).message})${i > 0 ? `; ${i} of ${order.length} files are there, locked: publish a new version` : ''}`);
      }
      bytes += body.length;
    }
    return { bucket, prefix, files: order.length, bytes, verified };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** `byoc release publish`. */
export function registerReleaseCommands(cli: Command): Command {
  const release = cli.command('release').description('the vendor\'s releases: publish a signed bundle to the bundle registry');
  release.command('publish')
    .description('verify a signed bundle, then upload exactly that to the registry under <customer>/<version>/ (never replaces a published version)')
    .argument('<bundle>', 'signed bundle folder (byoc sign --out)')
    .option('--customer <id>', 'the customer the bundle must be for (default: the one its signed release names)')
    .option('--bucket <name>', `the bundle registry bucket (default: ${RELEASE_OUTPUTS.registryBucket} from --outputs)`)
    .option('--outputs <file>', `the control plane's cdk deploy --outputs-file JSON (${RELEASE_OUTPUTS.registryBucket}, ${RELEASE_OUTPUTS.signingKey})`)
    .option('--public-key <file>', 'the vendor public key to verify with (default: the signing key\'s, read from KMS)')
    .option('--key <arn>', `the signing key's KMS ARN, whose public key verifies the bundle (default: ${RELEASE_OUTPUTS.signingKey} from --outputs)`)
    .option('--region <region>', 'region of the registry (default: the signing key\'s, else the AWS SDK\'s)')
    .action(async (bundle: string, opts: Omit<PublishOptions, 'bundle'>) => {
      const p = await publishRelease({ ...opts, bundle });
      const r = p.verified.release;
      console.log(`published s3://${p.bucket}/${p.prefix}: release ${r.version} of ${r.customerId}, ${p.files} files (${p.bytes} bytes), signed by ${p.verified.publicKeyFingerprint}, expires ${r.expiresAt}`);
    });
  return release;
}
