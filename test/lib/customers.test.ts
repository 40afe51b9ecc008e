import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { projectRoot } from '../../lib/app';
import { BUNDLE_FORMAT, RELEASE } from '../../lib/bundle';
import { CustomerError, formatJson, formatList, parseBoolean, readControlPlaneOutputs, readVendorConfig, releaseImages, withCustomerAccounts } from '../../lib/customers';

const EXAMPLE_VENDOR = path.join(projectRoot(), 'config', 'example-vendor.json');
const images = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8')).images;
let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-customers-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the example vendor configuration is in the format add writes back (two spaces, final newline)', () => {
  const text = fs.readFileSync(EXAMPLE_VENDOR, 'utf8');
  expect(formatJson(JSON.parse(text))).toBe(text);
  const config = readVendorConfig(EXAMPLE_VENDOR);
  expect(config.customerAccounts).toEqual(['444455556666']);
  // Adding an account changes exactly the list.
  const updated = withCustomerAccounts(config, [...config.customerAccounts, '123456789012']);
  expect(updated).toContain('  "customerAccounts": [\n    "444455556666",\n    "123456789012"\n  ],\n');
  expect(updated.replace('    "444455556666",\n    "123456789012"\n', '    "444455556666"\n')).toBe(text);
});

test('a configuration without customerAccounts gets it after account and region; the rest is untouched', () => {
  const file = path.join(dir, 'vendor.json');
  const { customerAccounts: _c, ...rest } = JSON.parse(fs.readFileSync(EXAMPLE_VENDOR, 'utf8'));
  void _c;
  fs.writeFileSync(file, formatJson({ ...rest, hub: { ...rest.hub, tls: { ...rest.hub.tls, caCertificateFile: path.join(projectRoot(), 'config', rest.hub.tls.caCertificateFile) } } }));
  const config = readVendorConfig(file);
  expect(config.customerAccounts).toEqual([]);
  const written = JSON.parse(withCustomerAccounts(config, ['123456789012']));
  expect(Object.keys(written)).toEqual(['account', 'region', 'customerAccounts', 'retainReleases', 'retainData', 'hub', 'services']);
  expect(written.customerAccounts).toEqual(['123456789012']);
});

test('the release images are mapped by repository from a bundle folder or its byoc-release.json', () => {
  const bundle = path.join(dir, 'bundle');
  fs.mkdirSync(bundle);
  fs.writeFileSync(path.join(bundle, RELEASE), JSON.stringify({ format: BUNDLE_FORMAT, images: [images.otelCollector, images.agentRuntime, images.natsServer] }));
  expect(releaseImages(bundle)).toEqual(images);
  expect(releaseImages(path.join(bundle, RELEASE))).toEqual(images);
  fs.writeFileSync(path.join(dir, 'other.json'), '{"images": []}');
  expect(() => releaseImages(path.join(dir, 'other.json'))).toThrow(/--release: .* is not a release \(format byoc-bundle\/\d+ with images\)/);
});

test('the control plane outputs: the ByocControlPlane stack of a cdk deploy --outputs-file JSON', () => {
  const file = path.join(dir, 'outputs.json');
  fs.writeFileSync(file, JSON.stringify({ Other: { X: '1' }, ByocControlPlane: { HubEndpointServiceName: 'com.amazonaws.vpce.eu-west-1.vpce-svc-0a1b2c3d4e5f60718' } }));
  expect(readControlPlaneOutputs(file).HubEndpointServiceName).toBe('com.amazonaws.vpce.eu-west-1.vpce-svc-0a1b2c3d4e5f60718');
  expect(() => readControlPlaneOutputs(path.join(dir, 'missing.json'))).toThrow(/--control-plane-outputs: cannot read .*missing\.json \(ENOENT\)\. Fix: give the file cdk deploy --outputs-file wrote/);
});

test('booleans and the list table: secrets, whether the audit key is registered, and what to do', () => {
  expect([parseBoolean('--share-learning', 'false'), parseBoolean('--share-learning', 'TRUE'), parseBoolean('--share-learning', 'no')]).toEqual([false, true, false]);
  expect(() => parseBoolean('--share-learning', 'off?')).toThrow(CustomerError);
  const secrets = { accountSecret: true, leafCredsSecret: true, ingestSecret: true };
  const table = formatList([
    { customerId: 'acme', awsAccount: '123456789012', status: 'active', inVendorConfig: false, ...secrets, auditKeyRegistered: true, auditKeyFingerprint: `sha256:${'a'.repeat(64)}` },
    { awsAccount: '444455556666', status: 'unknown', inVendorConfig: true, accountSecret: false, leafCredsSecret: false, ingestSecret: false, auditKeyRegistered: false },
    { customerId: 'beta', awsAccount: '123456789012', status: 'active', inVendorConfig: true, ...secrets, auditKeyRegistered: false },
    { customerId: 'gamma', awsAccount: '123456789012', status: 'active', inVendorConfig: true, ...secrets, ingestSecret: false, auditKeyRegistered: false },
    { customerId: 'delta', awsAccount: '123456789012', status: 'revoked', inVendorConfig: false, ...secrets, auditKeyRegistered: false },
    { customerId: 'eps', awsAccount: '123456789012', status: 'revoked', inVendorConfig: true, ...secrets, auditKeyRegistered: true, cancelledAt: '2026-11-30T00:00:00.000Z' },
  ]).split('\n');
  expect(table[0]).toMatch(/^customer\s+account\s+status\s+customerAccounts\s+nats-account secret\s+leaf-creds secret\s+ingest secret\s+audit key\s+note$/);
  expect(table[1]).toMatch(/^acme\s+123456789012\s+active\s+no\s+yes\s+yes\s+yes\s+yes\s+missing from customerAccounts: run add again$/);
  expect(table[2]).toMatch(/^-\s+444455556666\s+unknown\s+yes\s+no\s+no\s+no\s+no\s+no customer record/);
  expect(table[3]).toMatch(/^beta\s+123456789012\s+active\s+yes\s+yes\s+yes\s+yes\s+no\s+audit key not registered: not ingested until add --audit-public-key$/);
  expect(table[4]).toMatch(/^gamma\s+.*\s+yes\s+yes\s+no\s+no\s+no ingest secret: run add again$/);
  expect(table[5]).toMatch(/^delta\s+123456789012\s+revoked\s+no\s+yes\s+yes\s+yes\s+no$/);
  expect(table[6]).toMatch(/^eps\s+123456789012\s+revoked\s+yes\s+yes\s+yes\s+yes\s+yes\s+revoked, account still allowed \(shared, or not yet removed\); subscription cancelled at 2026-11-30T00:00:00\.000Z$/);
});
