import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import canonicalize from 'canonicalize';
import * as semver from 'semver';
import { CUSTOMER_ID } from './boundary-contract';
import { CONTRACT_METADATA, contractOfTemplate, ContractRecord } from './contract-input';
import { Algorithm, BundleError, fingerprint, loadPublicKey, Signer, verifySignature } from './signer';

/**
 * A signed bundle is a synthesized cloud assembly plus three files:
 * - `byoc-release.json`: release metadata, canonical JSON (RFC 8785);
 * - `SHA256SUMS`: the manifest, `sha256sum` format (`<hex>  <path>`), one line per file of the bundle
 *   (the release file included), sorted by path, LF line ends;
 * - `SHA256SUMS.sig`: a detached signature over `SHA256SUMS` (Ed25519, or DER ECDSA P-256 with SHA-256).
 * So a customer can check a bundle with `openssl pkeyutl -verify` and `sha256sum -c` alone.
 */
export const MANIFEST = 'SHA256SUMS';
export const SIGNATURE = 'SHA256SUMS.sig';
export const RELEASE = 'byoc-release.json';
/** `byoc-bundle/2` adds `customerId`; a `byoc-bundle/1` release is refused (sign it again). */
export const BUNDLE_FORMAT = 'byoc-bundle/2';

export interface Release {
  readonly format: string;
  readonly version: string;
  /** The customer whose plane this is, read from the assembly (the plane's `customerId`). */
  readonly customerId: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** Every container image the templates run, as referenced (pinned by digest). */
  readonly images: string[];
  readonly contractVersion: number;
  readonly contractHash: string;
  /** Where the customer's NATS leaf node connects to the vendor. */
  readonly hubEndpoint: string;
  readonly signer: { readonly algorithm: Algorithm; readonly publicKeyFingerprint: string };
}

export interface SignOptions {
  readonly version: string;
  readonly hubEndpoint: string;
  /** @default 90 */
  readonly validDays?: number;
  /** @default - now */
  readonly now?: Date;
}

const HUB_ENDPOINT = /^(?:(?:tls|nats):\/\/[a-z0-9.-]+:\d{1,5}|com\.amazonaws\.vpce\.[a-z0-9-]+\.vpce-svc-[0-9a-f]{17})$/;
const LINE = /^([0-9a-f]{64}) {2}(.+)$/;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Files below `dir` as sorted relative paths with `/`; symbolic links and special files are refused. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) throw new BundleError('symlink', `${p} is a symbolic link; a bundle holds regular files only`);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(p);
      else throw new BundleError('special-file', `${p} is not a regular file`);
    }
  };
  walk('');
  return out.sort(byteOrder);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Renders a template value of an image (a string or an `Fn::Join`) with `${Ref}` placeholders. */
function renderImage(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })?.['Fn::Join'];
  if (join) return join[1].map(renderImage).join(join[0]);
  const ref = (value as { Ref?: string })?.Ref;
  if (ref) return `\${${ref}}`;
  return JSON.stringify(value);
}

/** Every container image of every template in an assembly; an image not pinned by digest is an error. */
export function assemblyImages(dir: string): string[] {
  const images = new Set<string>();
  for (const file of listFiles(dir).filter((f) => f.endsWith('.template.json'))) {
    const template = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    for (const [id, resource] of Object.entries<any>(template.Resources ?? {})) {
      if (resource.Type !== 'AWS::ECS::TaskDefinition') continue;
      for (const container of resource.Properties?.ContainerDefinitions ?? []) {
        const image = renderImage(container.Image);
        if (!/@sha256:[0-9a-f]{64}$/.test(image)) {
          throw new BundleError('image-by-tag', `${file}: ${id} container "${container.Name}" runs image ${image}, which is not pinned by digest`);
        }
        images.add(image);
      }
    }
  }
  return [...images].sort(byteOrder);
}

/**
 * The customer plane's stack output whose value is `byoc/<customerId>/` (README, "Stack outputs"): what
 * tells a customer-plane assembly from the control plane's or any other app's, and names its customer.
 */
export const CUSTOMER_PLANE_OUTPUT = 'AgentSecretsPrefix';

/** The customer plane in an assembly (or bundle) folder: its one root stack and its customer ID; anything else is refused. */
export function customerPlaneOf(dir: string): { stack: string; customerId: string; contract: ContractRecord } {
  let manifest: { artifacts?: Record<string, { type?: string; properties?: { templateFile?: string } }> };
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no manifest.json' : 'its manifest.json is not JSON';
    throw new BundleError('not-an-assembly', `${dir} is not a cloud assembly (${why}): synthesize the customer plane first (npm run synth writes cdk.out/customer-plane)`);
  }
  const stacks = Object.entries(manifest.artifacts ?? {}).filter(([, a]) => a.type === 'aws:cloudformation:stack');
  if (stacks.length !== 1) {
    throw new BundleError('not-customer-plane', `${dir} holds ${stacks.length} stacks${stacks.length ? ` (${stacks.map(([n]) => n).join(', ')})` : ''}; a customer-plane assembly holds exactly one, the customer plane's root stack: synthesize bin/customer-plane.ts (cdk.out/customer-plane) and sign that`);
  }
  const [stack, artifact] = stacks[0];
  const templateFile = artifact.properties?.templateFile ?? `${stack}.template.json`;
  let template: { Outputs?: Record<string, { Value?: unknown }>; Metadata?: Record<string, unknown> };
  try {
    template = JSON.parse(fs.readFileSync(path.join(dir, templateFile), 'utf8'));
  } catch (e) {
    throw new BundleError('not-an-assembly', `${dir}: cannot read the template of stack ${stack} (${templateFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const prefix = template.Outputs?.[CUSTOMER_PLANE_OUTPUT]?.Value;
  const m = typeof prefix === 'string' ? /^byoc\/([^/]*)\/$/.exec(prefix) : null;
  if (!m) {
    throw new BundleError('not-customer-plane', `${dir} is not a customer-plane assembly: its stack ${stack} has no ${CUSTOMER_PLANE_OUTPUT} output naming a customer (byoc/<customer>/), which every customer plane has. Sign the customer plane (cdk.out/customer-plane), not the control plane or another app`);
  }
  if (!CUSTOMER_ID.test(m[1])) throw new BundleError('not-customer-plane', `${dir}: stack ${stack} names customer "${m[1]}" (output ${CUSTOMER_PLANE_OUTPUT}), which is not a valid customer ID`);
  let contract: ContractRecord | undefined;
  try {
    contract = contractOfTemplate(template);
  } catch (e) {
    throw new BundleError('bad-contract', `${dir}: stack ${stack}'s boundary contract (template metadata ${CONTRACT_METADATA}) is not valid: ${(e as Error).message}`);
  }
  if (!contract) throw new BundleError('not-customer-plane', `${dir}: stack ${stack} records no boundary contract (template metadata ${CONTRACT_METADATA}), which every customer plane of this kit records: synthesize it again with this kit`);
  return { stack, customerId: m[1], contract };
}

/** Signs a synthesized customer-plane assembly into a new bundle folder; refuses any other assembly. */
export async function signAssembly(assembly: string, out: string, signer: Signer, options: SignOptions): Promise<Release> {
  const plane = customerPlaneOf(assembly);
  if (!semver.valid(options.version)) throw new BundleError('bad-version', `version "${options.version}" is not a semantic version such as 1.4.0`);
  if (!HUB_ENDPOINT.test(options.hubEndpoint)) {
    throw new BundleError('bad-hub-endpoint', `hub endpoint "${options.hubEndpoint}" is neither tls://HOST:PORT nor a VPC endpoint service name`);
  }
  const validDays = options.validDays ?? 90;
  if (!Number.isInteger(validDays) || validDays < 1 || validDays > 3650) throw new BundleError('bad-validity', `valid days ${validDays} is not a whole number from 1 to 3650`);
  const files = listFiles(assembly);
  for (const reserved of [MANIFEST, SIGNATURE, RELEASE]) {
    if (files.includes(reserved)) throw new BundleError('reserved-name', `${assembly} already holds ${reserved}: sign the synthesized assembly, not a bundle`);
  }
  const report = path.join(assembly, 'validation-report.json');
  if (fs.existsSync(report)) {
    const failed = (JSON.parse(fs.readFileSync(report, 'utf8')).pluginReports ?? []).filter((r: { conclusion?: string }) => r.conclusion === 'failure');
    if (failed.length > 0) throw new BundleError('validation-failed', `the assembly failed validation (${failed.map((r: { pluginName: string }) => r.pluginName).join(', ')}): fix the findings and synthesize again`);
  }
  const images = assemblyImages(assembly);
  if (images.length === 0) throw new BundleError('not-customer-plane', `${assembly}: stack ${plane.stack} runs no container image; a customer plane runs the agent runtime, NATS and collector images by digest`);
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new BundleError('exists', `${out} exists and is not empty`);

  const now = options.now ?? new Date();
  const publicKeyPem = await signer.publicKeyPem();
  const release: Release = {
    format: BUNDLE_FORMAT,
    version: options.version,
    customerId: plane.customerId,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + validDays * 86400000).toISOString(),
    images,
    // The contract the plane was built from, as its template records it (the gateway's BYOC_CONTRACT is the same).
    contractVersion: plane.contract.version,
    contractHash: plane.contract.hash,
    hubEndpoint: options.hubEndpoint,
    signer: { algorithm: signer.algorithm, publicKeyFingerprint: fingerprint(publicKeyPem) },
  };

  fs.mkdirSync(out, { recursive: true });
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(out, f)), { recursive: true });
    fs.copyFileSync(path.join(assembly, f), path.join(out, f));
  }
  fs.writeFileSync(path.join(out, RELEASE), canonicalize(release)!);
  const manifest = renderManifest(out, [...files, RELEASE].sort(byteOrder));
  fs.writeFileSync(path.join(out, MANIFEST), manifest);
  fs.writeFileSync(path.join(out, SIGNATURE), await signer.sign(manifest));
  return release;
}

function renderManifest(dir: string, files: string[]): Buffer {
  return Buffer.from(files.map((f) => `${sha256(fs.readFileSync(path.join(dir, f)))}  ${f}\n`).join(''), 'utf8');
}

/** Checks a manifest path: relative, inside the bundle, plain. Returns the reason it is not, or undefined. */
function unsafePath(p: string): string | undefined {
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  if (p.includes('\\')) return 'contains a backslash';
  if (/[\u0000-\u001f\u007f]/.test(p)) return 'contains a control character';
  const parts = p.split('/');
  if (parts.includes('..')) return 'escapes the bundle (..)';
  if (parts.some((s) => s === '' || s === '.')) return 'has an empty or "." segment';
  return undefined;
}

/** Parses and checks a manifest's form; every problem names its line. */
export function parseManifest(manifest: Buffer): { path: string; sha256: string }[] {
  const text = manifest.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(manifest)) throw new BundleError('non-canonical-manifest', `${MANIFEST} is not valid UTF-8`);
  if (text.includes('\r')) throw new BundleError('non-canonical-manifest', `${MANIFEST} has CR line ends; the canonical form uses LF`);
  if (!text.endsWith('\n')) throw new BundleError('non-canonical-manifest', `${MANIFEST} does not end with a line feed`);
  const entries: { path: string; sha256: string }[] = [];
  text.slice(0, -1).split('\n').forEach((line, i) => {
    const m = LINE.exec(line);
    if (!m) throw new BundleError('non-canonical-manifest', `${MANIFEST} line ${i + 1} is not "<64 lower-case hex>  <path>"`);
    const reason = unsafePath(m[2]);
    if (reason) throw new BundleError('path-traversal', `${MANIFEST} line ${i + 1}: path "${m[2]}" ${reason}`);
    if (m[2] === MANIFEST || m[2] === SIGNATURE) throw new BundleError('non-canonical-manifest', `${MANIFEST} line ${i + 1} lists ${m[2]}, which the manifest cannot cover`);
    const previous = entries[entries.length - 1];
    if (previous && byteOrder(previous.path, m[2]) >= 0) {
      throw new BundleError('non-canonical-manifest', `${MANIFEST} line ${i + 1}: "${m[2]}" is ${previous.path === m[2] ? 'listed twice' : 'out of order'}; the canonical form is sorted by path`);
    }
    entries.push({ sha256: m[1], path: m[2] });
  });
  return entries;
}

export interface VerifyOptions {
  /** Accept a version older than the last one verified on this machine. */
  readonly allowDowngrade?: boolean;
  /** Where verified versions are remembered. @default - $BYOC_STATE_DIR or ~/.config/byoc */
  readonly stateDir?: string;
  /** Check expiry as of this time. @default - now */
  readonly at?: Date;
  /**
   * Check the release against, and remember it in, the versions verified on this machine (the downgrade
   * check). Off for a bundle only looked at (`byoc diff`), not about to be deployed.
   * @default true
   */
  readonly downgradeCheck?: boolean;
}

export interface Verified {
  readonly release: Release;
  readonly files: number;
  readonly publicKeyFingerprint: string;
}

/** Default folder where the last verified version per signing key and customer is kept. */
export function defaultStateDir(): string {
  return process.env.BYOC_STATE_DIR ?? path.join(os.homedir(), '.config', 'byoc');
}

/**
 * Verifies a bundle offline against a pinned public key. Throws a `BundleError` naming the first problem:
 * a missing or malformed signature, a wrong key, a non-canonical manifest, a path escaping the bundle, a
 * changed, added or removed file, a release that is not of the customer plane the bundle holds, that is
 * expired, or older than the last one verified here with the same key for the same customer.
 */
export function verifyBundle(dir: string, publicKeyFile: string, options: VerifyOptions = {}): Verified {
  const publicKey = loadPublicKey(publicKeyFile);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new BundleError('not-a-bundle', `${dir} is not a folder`);
  for (const f of [MANIFEST, SIGNATURE, RELEASE]) {
    if (!fs.existsSync(path.join(dir, f))) throw new BundleError('missing-file', `${f} is missing: this is not a signed bundle, or it was stripped`);
  }
  const manifest = fs.readFileSync(path.join(dir, MANIFEST));
  verifySignature(manifest, fs.readFileSync(path.join(dir, SIGNATURE)), publicKey);
  const entries = parseManifest(manifest);

  const listed = new Map(entries.map((e) => [e.path, e.sha256]));
  const present = listFiles(dir).filter((f) => f !== MANIFEST && f !== SIGNATURE);
  for (const f of present) {
    if (!listed.has(f)) throw new BundleError('added-file', `file ${f} is not in the manifest (added after signing)`);
  }
  const presentSet = new Set(present);
  for (const { path: f, sha256: expected } of entries) {
    if (!presentSet.has(f)) throw new BundleError('removed-file', `file ${f} is listed in the manifest but missing`);
    if (sha256(fs.readFileSync(path.join(dir, f))) !== expected) throw new BundleError('changed-file', `file ${f} was changed after signing (SHA-256 mismatch)`);
  }
  if (!listed.has(RELEASE)) throw new BundleError('missing-file', `${RELEASE} is not covered by the manifest`);

  const releaseText = fs.readFileSync(path.join(dir, RELEASE), 'utf8');
  let release: Release;
  try {
    release = JSON.parse(releaseText);
  } catch {
    throw new BundleError('bad-release', `${RELEASE} is not JSON`);
  }
  if (canonicalize(release) !== releaseText) throw new BundleError('non-canonical-manifest', `${RELEASE} is not canonical JSON (RFC 8785)`);
  if (release.format === 'byoc-bundle/1') throw new BundleError('bad-release', `${RELEASE}: format byoc-bundle/1 does not name its customer; ask the vendor to sign the release again (byoc sign writes ${BUNDLE_FORMAT})`);
  if (release.format !== BUNDLE_FORMAT) throw new BundleError('bad-release', `${RELEASE}: format "${release.format}" is not ${BUNDLE_FORMAT}`);
  if (!semver.valid(release.version)) throw new BundleError('bad-release', `${RELEASE}: version "${release.version}" is not a semantic version`);
  if (release.signer?.publicKeyFingerprint !== publicKey.fingerprint) {
    throw new BundleError('bad-release', `${RELEASE} names signing key ${release.signer?.publicKeyFingerprint}, not ${publicKey.fingerprint}`);
  }
  const at = options.at ?? new Date();
  const expires = Date.parse(release.expiresAt);
  if (Number.isNaN(expires)) throw new BundleError('bad-release', `${RELEASE}: expiresAt "${release.expiresAt}" is not a date`);
  if (at.getTime() > expires) throw new BundleError('expired', `release ${release.version} expired at ${release.expiresAt}`);
  if (typeof release.customerId !== 'string' || !CUSTOMER_ID.test(release.customerId)) throw new BundleError('bad-release', `${RELEASE}: customerId ${JSON.stringify(release.customerId)} is not a customer ID`);
  const plane = customerPlaneOf(dir);
  if (plane.customerId !== release.customerId) {
    throw new BundleError('bad-release', `${RELEASE} names customer ${release.customerId}, but the templates are the plane of customer ${plane.customerId}`);
  }
  if (release.contractHash !== plane.contract.hash || release.contractVersion !== plane.contract.version) {
    throw new BundleError('bad-release', `${RELEASE} names boundary contract v${release.contractVersion} ${String(release.contractHash).slice(0, 12)}, but the templates were built from v${plane.contract.version} ${plane.contract.hash.slice(0, 12)}`);
  }
  if (options.downgradeCheck !== false) checkDowngrade(release, publicKey.fingerprint, options);
  return { release, files: entries.length, publicKeyFingerprint: publicKey.fingerprint };
}

/**
 * The downgrade check: the last version verified on this machine is kept per signing key AND customer (a
 * vendor verifies many customers' releases with one key; each customer's versions are their own). Entries
 * keyed by the fingerprint alone were written before that (one per key): they still bound a customer this
 * machine has no entry for yet.
 */
function checkDowngrade(release: Release, keyFingerprint: string, options: VerifyOptions): void {
  const stateDir = options.stateDir ?? defaultStateDir();
  const stateFile = path.join(stateDir, 'verified-releases.json');
  let state: Record<string, { version: string; verifiedAt: string }> = {};
  if (fs.existsSync(stateFile)) {
    try {
      state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    } catch {
      throw new BundleError('bad-state', `${stateFile} is not JSON: it remembers the versions verified on this machine; restore it, or remove it to start again`);
    }
  }
  const key = `${keyFingerprint} ${release.customerId}`;
  const last = state[key] ?? state[keyFingerprint];
  if (last && semver.lt(release.version, last.version) && !options.allowDowngrade) {
    const whose = state[key] ? `customer ${release.customerId}'s` : 'a release (verified before versions were kept per customer)';
    throw new BundleError('downgrade', `version ${release.version} is older than ${last.version}, ${whose} verified with this key on this machine at ${last.verifiedAt}; pass --allow-downgrade to accept it`);
  }
  if (!state[key] || semver.gt(release.version, state[key].version)) {
    state[key] = { version: release.version, verifiedAt: new Date().toISOString() };
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(stateFile, `${JSON.stringify(state, undefined, 2)}\n`);
  }
}
