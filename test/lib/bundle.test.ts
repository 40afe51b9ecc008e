import { spawnSync } from 'child_process';
import { createHash, createPrivateKey, sign as cryptoSign } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import canonicalize from 'canonicalize';
import { contractHash } from '../../lib/boundary-contract';
import { BUNDLE_FORMAT, MANIFEST, RELEASE, SIGNATURE, signAssembly, verifyBundle } from '../../lib/bundle';
import { BundleError, generateDevelopmentKeys, signerFor } from '../../lib/signer';
import { projectRoot } from '../../lib/app';
import { synthControlPlane, synthCustomerPlane } from '../synth';

const dirs: string[] = [];
const tmp = (prefix: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${prefix}-`)); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

let assembly: string;
let keys: ReturnType<typeof generateDevelopmentKeys>;
let otherKeys: ReturnType<typeof generateDevelopmentKeys>;
let signed: string;
let state: string;

/** A fresh signed copy of the real customer plane (or another assembly). */
async function signFresh(version = '1.0.0', key = keys.privateKey, now?: Date, from = assembly): Promise<string> {
  const out = path.join(tmp('bundle'), 'b');
  await signAssembly(from, out, signerFor(key), { version, hubEndpoint: 'tls://hub.vendor.example:7422', now });
  return out;
}

/** A copy of the real assembly whose plane is customer `id` (as its AgentSecretsPrefix output names it). */
function assemblyOfCustomer(id: string): string {
  const dir = path.join(tmp('asm'), 'a');
  fs.cpSync(assembly, dir, { recursive: true });
  const file = path.join(dir, 'ByocCustomerPlane.template.json');
  const template = JSON.parse(fs.readFileSync(file, 'utf8'));
  template.Outputs.AgentSecretsPrefix.Value = `byoc/${id}/`;
  fs.writeFileSync(file, JSON.stringify(template));
  return dir;
}

/** Writes the manifest of a bundle folder again and signs it with the test key: a vendor's own, valid signature. */
function resignBundle(dir: string): void {
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f !== MANIFEST && f !== SIGNATURE && fs.statSync(path.join(dir, f)).isFile())
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const manifest = files.map((f) => `${createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')}  ${f}\n`).join('');
  fs.writeFileSync(path.join(dir, MANIFEST), manifest);
  fs.writeFileSync(path.join(dir, SIGNATURE), cryptoSign(null, Buffer.from(manifest), createPrivateKey(fs.readFileSync(keys.privateKey))));
}

/** Edits a signed bundle's release metadata (canonically) and signs the bundle again. */
function withRelease(bundle: string, edit: (r: Record<string, unknown>) => void): string {
  const dir = copyOf(bundle);
  const release = JSON.parse(fs.readFileSync(path.join(dir, RELEASE), 'utf8'));
  edit(release);
  fs.writeFileSync(path.join(dir, RELEASE), canonicalize(release)!);
  resignBundle(dir);
  return dir;
}

/** Every file below a folder, recursively, as relative paths. */
function filesOf(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

function copyOf(bundle: string): string {
  const dir = path.join(tmp('copy'), 'b');
  fs.cpSync(bundle, dir, { recursive: true });
  return dir;
}

function expectRejected(fn: () => unknown, code: string, message: RegExp | string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(BundleError);
  expect({ code: (error as BundleError).code, message: (error as BundleError).message }).toEqual({ code, message: expect.stringMatching(message) });
}

const verify = (dir: string, opts: Parameters<typeof verifyBundle>[2] = {}) => verifyBundle(dir, keys.publicKey, { stateDir: state, ...opts });

beforeAll(async () => {
  assembly = synthCustomerPlane().outdir;
  keys = generateDevelopmentKeys(tmp('keys'));
  otherKeys = generateDevelopmentKeys(tmp('keys'));
  state = tmp('state');
  signed = await signFresh();
});

describe('sign', () => {
  test('the bundle holds every assembly file, the release metadata, the manifest and its signature', () => {
    const files = fs.readdirSync(signed).sort();
    for (const f of fs.readdirSync(assembly)) expect(files).toContain(f);
    expect(files).toEqual(expect.arrayContaining([MANIFEST, SIGNATURE, RELEASE]));
    const release = JSON.parse(fs.readFileSync(path.join(signed, RELEASE), 'utf8'));
    expect(release).toMatchObject({
      format: 'byoc-bundle/2', version: '1.0.0', customerId: 'example', contractHash: contractHash(), hubEndpoint: 'tls://hub.vendor.example:7422',
      signer: { algorithm: 'ed25519', publicKeyFingerprint: keys.fingerprint },
    });
    expect(release.images).toHaveLength(3);
    for (const image of release.images) expect(image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(Date.parse(release.expiresAt) - Date.parse(release.createdAt)).toBe(90 * 86400000);
    // Nested stack templates are signed like every other file.
    expect(fs.readFileSync(path.join(signed, MANIFEST), 'utf8')).toMatch(/\.nested\.template\.json\n/);
  });

  test('the release names the customer whose plane the assembly is, read from the assembly', async () => {
    const acme = await signFresh('1.0.0', keys.privateKey, undefined, assemblyOfCustomer('acme'));
    expect(JSON.parse(fs.readFileSync(path.join(acme, RELEASE), 'utf8')).customerId).toBe('acme');
    expect(verify(acme).release.customerId).toBe('acme');
  });

  test('anything but a customer-plane assembly is refused, saying what it is', async () => {
    const sign = (dir: string) => signAssembly(dir, path.join(tmp('o'), 'b'), signerFor(keys.privateKey), { version: '1.0.0', hubEndpoint: 'tls://h.example:7422' });
    const control = synthControlPlane().outdir;
    await expect(sign(control)).rejects.toThrow(`${control} is not a customer-plane assembly: its stack ByocControlPlane has no AgentSecretsPrefix output naming a customer (byoc/<customer>/), which every customer plane has. Sign the customer plane (cdk.out/customer-plane), not the control plane or another app`);
    const two = path.join(tmp('asm'), 'a');
    fs.cpSync(assembly, two, { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(two, 'manifest.json'), 'utf8'));
    manifest.artifacts.Other = { ...manifest.artifacts.ByocCustomerPlane };
    fs.writeFileSync(path.join(two, 'manifest.json'), JSON.stringify(manifest));
    await expect(sign(two)).rejects.toThrow(`${two} holds 2 stacks (ByocCustomerPlane, Other); a customer-plane assembly holds exactly one`);
    await expect(sign(assemblyOfCustomer('Not_An_Id'))).rejects.toThrow(/stack ByocCustomerPlane names customer "Not_An_Id" \(output AgentSecretsPrefix\), which is not a valid customer ID/);
    await expect(sign(tmp('empty'))).rejects.toThrow(/is not a cloud assembly \(no manifest\.json\)/);
  });

  test('the private key from keygen is owner-only', () => {
    expect(fs.statSync(keys.privateKey).mode & 0o777).toBe(0o600);
  });

  test('a template that runs an image by tag is refused, naming the template and container', async () => {
    const bad = path.join(tmp('asm'), 'a');
    fs.cpSync(assembly, bad, { recursive: true });
    const file = fs.readdirSync(bad).find((f) => f.includes('Agentsintake'))!;
    const text = fs.readFileSync(path.join(bad, file), 'utf8').replace(/@sha256:[0-9a-f]{64}/, ':latest');
    fs.writeFileSync(path.join(bad, file), text);
    await expect(signAssembly(bad, path.join(tmp('o'), 'b'), signerFor(keys.privateKey), { version: '1.0.0', hubEndpoint: 'tls://h.example:7422' }))
      .rejects.toThrow(new RegExp(`${file}: .* container "main" runs image .*:latest, which is not pinned by digest`));
  });

  test('an assembly whose validation failed is refused', async () => {
    const bad = path.join(tmp('asm'), 'a');
    fs.cpSync(assembly, bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'validation-report.json'), JSON.stringify({ pluginReports: [{ pluginName: 'AwsSolutions', conclusion: 'failure' }] }));
    await expect(signAssembly(bad, path.join(tmp('o'), 'b'), signerFor(keys.privateKey), { version: '1.0.0', hubEndpoint: 'tls://h.example:7422' }))
      .rejects.toThrow(/failed validation \(AwsSolutions\)/);
  });
});

describe('verify', () => {
  test('a signed bundle of the real customer plane verifies', () => {
    const v = verify(signed);
    expect(v.release.version).toBe('1.0.0');
    expect(v.files).toBe(filesOf(signed).length - 2);
  });

  test('every single-byte change of every file is detected, naming the file (1,000+ positions, every file touched)', () => {
    const dir = copyOf(signed);
    const files = filesOf(dir);
    expect(files.some((f) => f.includes('/'))).toBe(true); // asset folders are covered too
    const sizes = Object.fromEntries(files.map((f) => [f, fs.statSync(path.join(dir, f)).size]));
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    // Positions: the first and last byte of every file, then more in proportion to size, at least 20 each.
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const positions: [string, number][] = [];
    for (const f of files) {
      const n = Math.max(20, Math.ceil((1100 * sizes[f]) / total));
      positions.push([f, 0], [f, sizes[f] - 1]);
      for (let i = 0; i < n; i++) positions.push([f, Math.floor(random() * sizes[f])]);
    }
    expect(positions.length).toBeGreaterThanOrEqual(1000);
    expect(new Set(positions.map(([f]) => f))).toEqual(new Set(files));

    const missed: string[] = [];
    for (const [f, at] of positions) {
      const file = path.join(dir, f);
      const original = fs.readFileSync(file);
      const changed = Buffer.from(original);
      changed[at] ^= 0x20;
      fs.writeFileSync(file, changed);
      try {
        verify(dir);
        missed.push(`${f}@${at}`);
      } catch (e) {
        const err = e as BundleError;
        // A change to the manifest or signature is a signature failure; to any other file, names it.
        const expected = f === MANIFEST || f === SIGNATURE ? /signature/ : new RegExp(`file ${f.replace(/\./g, '\\.')} was changed`);
        if (!(err instanceof BundleError) || !expected.test(err.message)) missed.push(`${f}@${at}: ${err.message}`);
      } finally {
        fs.writeFileSync(file, original);
      }
    }
    expect(missed).toEqual([]);
    expect(() => verify(dir)).not.toThrow();
  });

  test('adding, removing and renaming a file, and swapping two files\' contents, are detected', () => {
    const added = copyOf(signed);
    fs.writeFileSync(path.join(added, 'extra.template.json'), '{}');
    expectRejected(() => verify(added), 'added-file', /file extra\.template\.json is not in the manifest/);

    const addedDeep = copyOf(signed);
    fs.mkdirSync(path.join(addedDeep, 'asset.x'));
    fs.writeFileSync(path.join(addedDeep, 'asset.x', 'index.js'), '');
    expectRejected(() => verify(addedDeep), 'added-file', /file asset\.x\/index\.js is not in the manifest/);

    const nested = fs.readdirSync(signed).find((f) => f.endsWith('.nested.template.json'))!;
    const removed = copyOf(signed);
    fs.rmSync(path.join(removed, nested));
    expectRejected(() => verify(removed), 'removed-file', new RegExp(`file ${nested} is listed in the manifest but missing`));

    const renamed = copyOf(signed);
    fs.renameSync(path.join(renamed, 'tree.json'), path.join(renamed, 'tree2.json'));
    expectRejected(() => verify(renamed), 'added-file', /file tree2\.json is not in the manifest/);

    const swapped = copyOf(signed);
    const [a, b] = fs.readdirSync(swapped).filter((f) => f.endsWith('.nested.template.json'));
    const ca = fs.readFileSync(path.join(swapped, a));
    fs.copyFileSync(path.join(swapped, b), path.join(swapped, a));
    fs.writeFileSync(path.join(swapped, b), ca);
    expectRejected(() => verify(swapped), 'changed-file', new RegExp(`file (${a}|${b}) was changed`));

    const linked = copyOf(signed);
    fs.rmSync(path.join(linked, 'tree.json'));
    fs.symlinkSync('/etc/hostname', path.join(linked, 'tree.json'));
    expectRejected(() => verify(linked), 'symlink', /tree\.json is a symbolic link/);
  });

  test('a wrong key, a truncated or missing signature are rejected with their reasons', () => {
    expectRejected(() => verifyBundle(signed, otherKeys.publicKey, { stateDir: state }), 'bad-signature', new RegExp(`does not verify with public key ${otherKeys.fingerprint}`));

    const truncated = copyOf(signed);
    const sig = fs.readFileSync(path.join(truncated, SIGNATURE));
    fs.writeFileSync(path.join(truncated, SIGNATURE), sig.subarray(0, 63));
    expectRejected(() => verify(truncated), 'malformed-signature', /Ed25519 signature is 64 bytes, this one is 63/);

    const unsigned = copyOf(signed);
    fs.rmSync(path.join(unsigned, SIGNATURE));
    expectRejected(() => verify(unsigned), 'missing-file', /SHA256SUMS\.sig is missing/);
  });

  test('a manifest edited and re-serialized fails the signature', () => {
    const dir = copyOf(signed);
    const lines = fs.readFileSync(path.join(dir, MANIFEST), 'utf8').trimEnd().split('\n');
    // Drop the tree.json line and re-serialize canonically: a plausible forgery that hides a file.
    fs.writeFileSync(path.join(dir, MANIFEST), `${lines.filter((l) => !l.endsWith('  tree.json')).join('\n')}\n`);
    fs.rmSync(path.join(dir, 'tree.json'));
    expectRejected(() => verify(dir), 'bad-signature', /does not verify/);
  });

  describe('a manifest signed by the right key but not canonical, or escaping the bundle, is still rejected', () => {
    const resign = (dir: string, manifest: string) => {
      fs.writeFileSync(path.join(dir, MANIFEST), manifest);
      fs.writeFileSync(path.join(dir, SIGNATURE), cryptoSign(null, Buffer.from(manifest), createPrivateKey(fs.readFileSync(keys.privateKey))));
    };
    const lines = () => fs.readFileSync(path.join(signed, MANIFEST), 'utf8').trimEnd().split('\n');

    test.each([
      ['../ path traversal', (l: string[]) => [`${'0'.repeat(64)}  ../outside.json`, ...l], 'path-traversal', /line 1: path "\.\.\/outside\.json" escapes the bundle/],
      ['absolute path', (l: string[]) => [`${'0'.repeat(64)}  /etc/passwd`, ...l], 'path-traversal', /line 1: path "\/etc\/passwd" is absolute/],
      ['nested ../', (l: string[]) => [...l, `${'0'.repeat(64)}  x/../../y`], 'path-traversal', /escapes the bundle/],
      ['unsorted lines', (l: string[]) => [...l].reverse(), 'non-canonical-manifest', /out of order/],
      ['a duplicated line', (l: string[]) => [l[0], ...l], 'non-canonical-manifest', /listed twice/],
      ['upper-case hex', (l: string[]) => [l[0].toUpperCase().replace(/ {2}.*/, l[0].slice(64)), ...l.slice(1)], 'non-canonical-manifest', /line 1 is not/],
    ])('%s', (_name, edit, code, message) => {
      const dir = copyOf(signed);
      resign(dir, `${edit(lines()).join('\n')}\n`);
      expectRejected(() => verify(dir), code, message);
    });

    test('CRLF line ends', () => {
      const dir = copyOf(signed);
      resign(dir, `${lines().join('\r\n')}\r\n`);
      expectRejected(() => verify(dir), 'non-canonical-manifest', /CR line ends/);
    });

    test('release metadata re-serialized non-canonically', () => {
      const dir = copyOf(signed);
      const release = JSON.parse(fs.readFileSync(path.join(dir, RELEASE), 'utf8'));
      fs.writeFileSync(path.join(dir, RELEASE), JSON.stringify(release, undefined, 2));
      const sums = spawnSync('sha256sum', [RELEASE], { cwd: dir, encoding: 'utf8' }).stdout.split(' ')[0];
      resign(dir, `${lines().map((l) => (l.endsWith(`  ${RELEASE}`) ? `${sums}  ${RELEASE}` : l)).join('\n')}\n`);
      expectRejected(() => verify(dir), 'non-canonical-manifest', /byoc-release\.json is not canonical JSON/);
      expect(canonicalize(release)).not.toEqual(JSON.stringify(release, undefined, 2));
    });
  });

  test('a release whose customer is not the plane\'s, and a byoc-bundle/1 release without a customer, are refused', () => {
    expectRejected(() => verify(withRelease(signed, (r) => { r.customerId = 'acme'; })), 'bad-release', 'byoc-release.json names customer acme, but the templates are the plane of customer example');
    expectRejected(() => verify(withRelease(signed, (r) => { delete r.customerId; })), 'bad-release', 'byoc-release.json: customerId undefined is not a customer ID');
    expectRejected(() => verify(withRelease(signed, (r) => { delete r.customerId; r.format = 'byoc-bundle/1'; })), 'bad-release', /format byoc-bundle\/1 does not name its customer; ask the vendor to sign the release again/);
    expect(BUNDLE_FORMAT).toBe('byoc-bundle/2');
    expect(verify(withRelease(signed, () => undefined)).release.customerId).toBe('example'); // the re-signing itself is sound
  });

  test('the downgrade memory is per signing key and customer: one vendor key verifies many customers\' releases', async () => {
    const stateDir = tmp('state');
    const example = await signFresh('1.2.0');
    const acme = await signFresh('1.0.0', keys.privateKey, undefined, assemblyOfCustomer('acme'));
    const acmeOlder = await signFresh('0.9.0', keys.privateKey, undefined, assemblyOfCustomer('acme'));
    expect(verifyBundle(example, keys.publicKey, { stateDir }).release.version).toBe('1.2.0');
    expect(verifyBundle(acme, keys.publicKey, { stateDir }).release).toMatchObject({ customerId: 'acme', version: '1.0.0' });
    expectRejected(() => verifyBundle(acmeOlder, keys.publicKey, { stateDir }), 'downgrade', /^version 0\.9\.0 is older than 1\.0\.0, customer acme's verified with this key on this machine at \S+; pass --allow-downgrade/);
    const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'verified-releases.json'), 'utf8'));
    expect(Object.keys(state).sort()).toEqual([`${keys.fingerprint} acme`, `${keys.fingerprint} example`]);
    // A state file from before (one entry per key) still bounds a customer with no entry of its own yet.
    const legacy = tmp('state');
    fs.writeFileSync(path.join(legacy, 'verified-releases.json'), JSON.stringify({ [keys.fingerprint]: { version: '1.1.0', verifiedAt: '2026-01-01T00:00:00.000Z' } }));
    expectRejected(() => verifyBundle(acme, keys.publicKey, { stateDir: legacy }), 'downgrade', /older than 1\.1\.0, a release \(verified before versions were kept per customer\) verified/);
    expect(verifyBundle(example, keys.publicKey, { stateDir: legacy }).release.version).toBe('1.2.0');
    // Looking at a bundle without deploying it (byoc diff) neither checks nor moves the memory.
    expect(verifyBundle(acmeOlder, keys.publicKey, { stateDir, downgradeCheck: false }).release.version).toBe('0.9.0');
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, 'verified-releases.json'), 'utf8'))).toEqual(state);
  });

  test('a release older than the last one verified on this machine is a downgrade, unless allowed', async () => {
    const stateDir = tmp('state');
    const newer = await signFresh('1.2.0');
    const older = await signFresh('1.1.9');
    expect(() => verifyBundle(newer, keys.publicKey, { stateDir })).not.toThrow();
    expectRejected(() => verifyBundle(older, keys.publicKey, { stateDir }), 'downgrade', /version 1\.1\.9 is older than 1\.2\.0.*--allow-downgrade/);
    expect(() => verifyBundle(older, keys.publicKey, { stateDir, allowDowngrade: true })).not.toThrow();
    // Accepting the downgrade does not lower what was verified: the next older one still needs the flag.
    expectRejected(() => verifyBundle(older, keys.publicKey, { stateDir }), 'downgrade', /older than 1\.2\.0/);
  });

  test('an expired release is rejected', async () => {
    const old = await signFresh('1.0.0', keys.privateKey, new Date('2025-01-01T00:00:00Z'));
    expectRejected(() => verify(old), 'expired', /release 1\.0\.0 expired at 2025-04-01T00:00:00\.000Z/);
    expect(() => verify(old, { at: new Date('2025-03-31T00:00:00Z') })).not.toThrow();
  });
});

describe('standard tools alone: the README commands', () => {
  const readmeBlock = (marker: string) => {
    const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
    const start = readme.indexOf(`<!-- ${marker} -->`);
    expect(start).toBeGreaterThan(0);
    return /```sh\n([\s\S]*?)```/.exec(readme.slice(start))![1].replace(/^ {3}/gm, '');
  };
  const run = (script: string, bundle: string, pub: string) => spawnSync('bash', ['-eo', 'pipefail', '-c', script], { env: { ...process.env, BUNDLE: bundle, PUB: pub }, encoding: 'utf8' });

  test('pass on a signed bundle, and fail on a changed, an added file and a wrong key', () => {
    const script = readmeBlock('verify:ed25519');
    expect(run(script, signed, keys.publicKey).status).toBe(0);

    const changed = copyOf(signed);
    fs.appendFileSync(path.join(changed, 'tree.json'), ' ');
    expect(run(script, changed, keys.publicKey).status).not.toBe(0);

    const added = copyOf(signed);
    fs.writeFileSync(path.join(added, 'extra.json'), '{}');
    const addedRun = run(script, added, keys.publicKey);
    expect(addedRun.status).not.toBe(0);
    expect(addedRun.stdout).toContain('extra.json');

    expect(run(script, signed, otherKeys.publicKey).status).not.toBe(0);
  });
});
