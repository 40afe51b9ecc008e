import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { ControlPlaneConfig, controlPlaneStackProps, loadControlPlaneConfig } from '../../control-plane/config';
import { ControlPlane } from '../../control-plane/control-plane';
import { NatsHubProps, resolveControlPlaneProps } from '../../control-plane/props';
import { ControlPlaneStack, ControlPlaneStackProps } from '../../control-plane/stack';
import { projectRoot } from '../../lib/app';
import { PropError } from '../../lib/errors';
import { testCertificates } from '../servers/nats';
import { exampleVendorProps } from './synth';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-control-props-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Builds the control plane's constructs (no synth: validation happens in the constructor). */
function build(props: ControlPlaneStackProps): void {
  new ControlPlaneStack(new App(), 'ByocControlPlane', props);
}

/** The error building with `props` throws: a PropError naming `prop`. */
function errorOf(props: ControlPlaneStackProps, prop: string): PropError {
  let error: unknown;
  try {
    build(props);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(PropError);
  expect((error as PropError).prop).toBe(prop);
  expect((error as PropError).message).toMatch(/Fix: .{10,}/);
  return error as PropError;
}

const withHub = (hub: Partial<NatsHubProps>) => exampleVendorProps({}, hub);

test('the example configuration is valid and builds', () => {
  expect(() => build(exampleVendorProps())).not.toThrow();
  expect(() => build({})).not.toThrow();
});

describe('customerAccounts', () => {
  test.each([
    ['11 digits', ['12345678901'], 'customerAccounts[0]'],
    ['13 digits', ['4444555566667'], 'customerAccounts[0]'],
    ['letters', ['44445555666a'], 'customerAccounts[0]'],
    ['an ARN', ['arn:aws:iam::444455556666:root'], 'customerAccounts[0]'],
    ['a number, not a string', [444455556666 as unknown as string], 'customerAccounts[0]'],
    ['the second one', ['444455556666', '4444-5555-6666'], 'customerAccounts[1]'],
    ['a duplicate', ['444455556666', '444455556666'], 'customerAccounts[1]'],
  ])('%s fails synth naming the entry', (_n, customerAccounts, prop) => {
    const e = errorOf(exampleVendorProps({ customerAccounts }), prop);
    expect(e.message).toMatch(/account ID|listed twice/);
  });

  test('they are validated without a hub too (they are the repositories\' principals)', () => {
    errorOf({ customerAccounts: ['1234'] }, 'customerAccounts[0]');
  });
});

describe('hub', () => {
  test.each([1, 2, 4, 6, 9, 2.5])('%s nodes fail synth naming hub.nodes', (nodes) => {
    expect(errorOf(withHub({ nodes }), 'hub.nodes').message).toMatch(/at least 3/);
  });

  test.each([3, 5, 7])('%s nodes are accepted', (nodes) => {
    expect(() => resolveControlPlaneProps(withHub({ nodes }))).not.toThrow();
  });

  test('the image must be pinned by digest, in the stack\'s region', () => {
    expect(errorOf(withHub({ image: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/nats-server:2.10-alpine' }), 'hub.image').message).toMatch(/by tag/);
    const app = new App();
    const stack = new ControlPlaneStack(app, 'Elsewhere', exampleVendorProps({ env: { account: '111122223333', region: 'eu-central-1' } }, { availabilityZones: ['eu-central-1a', 'eu-central-1b'] }));
    expect(() => app.synth()).toThrow(/hub\.image.*eu-west-1.*eu-central-1/s);
    expect(stack).toBeDefined();
  });

  test.each(['10.0.0.1', 'localhost', 'Hub.Vendor.Example', '*.vendor.example', 'vpce-0123.vpce-svc-0123.eu-west-1.vpce.amazonaws.com.'])('host %s is refused', (host) => {
    errorOf(withHub({ host }), 'hub.host');
  });

  test('an nkey seed is refused wherever a public value belongs, and never echoed', () => {
    const seed = `SO${'A'.repeat(56)}`;
    const e = errorOf(withHub({ operatorJwt: seed }), 'hub.operatorJwt');
    expect(e.message).not.toContain(seed);
    expect(e.message).toMatch(/seed/);
    errorOf(withHub({ systemAccountPublicKey: `SA${'B'.repeat(56)}` }), 'hub.systemAccountPublicKey');
    const example = exampleVendorProps().hub!;
    errorOf(withHub({ operatorJwt: `${example.operatorJwt.slice(0, 20)}SU${'C'.repeat(56)}` }), 'hub.operatorJwt');
  });

  test('the operator JWT must be an operator JWT, and name this system account', () => {
    const example = exampleVendorProps().hub!;
    expect(errorOf(withHub({ operatorJwt: 'not-a-jwt' }), 'hub.operatorJwt').message).toMatch(/not a JWT/);
    expect(errorOf(withHub({ operatorJwt: example.systemAccountJwt! }), 'hub.operatorJwt').message).toMatch(/type "account"/);
    const other = `A${'D'.repeat(55)}`;
    expect(errorOf(withHub({ systemAccountPublicKey: other, systemAccountJwt: undefined }), 'hub.systemAccountPublicKey').message).toMatch(/names .* as its system account/);
    expect(errorOf(withHub({ systemAccountJwt: example.operatorJwt }), 'hub.systemAccountJwt').message).toMatch(/type "operator"/);
  });

  test('the certificate secret must be named by its complete ARN, its key by a key ARN', () => {
    errorOf(withHub({ tls: { ...exampleVendorProps().hub!.tls, certificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:byoc/hub/tls' } }), 'hub.tls.certificateSecretArn');
    errorOf(withHub({ tls: { ...exampleVendorProps().hub!.tls, certificateSecretArn: 'byoc/hub/tls' } }), 'hub.tls.certificateSecretArn');
    errorOf(withHub({ tls: { ...exampleVendorProps().hub!.tls, certificateSecretKeyArn: 'alias/byoc' } }), 'hub.tls.certificateSecretKeyArn');
  });

  test('the CA must be a PEM CA certificate, not the hub\'s own certificate', () => {
    const tls = testCertificates(tmp);
    errorOf(withHub({ tls: { ...exampleVendorProps().hub!.tls, caCertificatePem: 'not a certificate' } }), 'hub.tls.caCertificatePem');
    expect(errorOf(withHub({ tls: { ...exampleVendorProps().hub!.tls, caCertificatePem: fs.readFileSync(tls.cert, 'utf8') } }), 'hub.tls.caCertificatePem').message).toMatch(/not a CA/);
    expect(() => build(withHub({ tls: { ...exampleVendorProps().hub!.tls, caCertificatePem: fs.readFileSync(tls.ca, 'utf8') } }))).not.toThrow();
  });

  test.each<[string, Partial<NatsHubProps>, string]>([
    ['cpu', { cpu: 256 }, 'hub.cpu'],
    ['memory for the cpu', { cpu: 1024, memoryMiB: 1024 }, 'hub.memoryMiB'],
    ['vpcCidr', { vpcCidr: '10.0.0.0/8' }, 'hub.vpcCidr'],
    ['maxAzs', { availabilityZones: undefined, maxAzs: 7 }, 'hub.maxAzs'],
    ['maxAzs with availabilityZones', { maxAzs: 3 }, 'hub.maxAzs, hub.availabilityZones'],
    ['availabilityZones', { availabilityZones: ['eu-west-1a'] }, 'hub.availabilityZones'],
    ['s3PrefixListId', { s3PrefixListId: 'com.amazonaws.eu-west-1.s3' }, 'hub.s3PrefixListId'],
    ['accessLogBucket', { accessLogBucket: 'arn:aws:s3:::logs' }, 'hub.accessLogBucket'],
  ])('%s out of range fails synth naming it', (_n, hub, prop) => {
    errorOf(withHub(hub), prop);
  });

  test('3 AZs need an explicit region; without one the hub takes 2, unless 3 were asked for', () => {
    const { env, ...agnostic } = exampleVendorProps({}, { availabilityZones: undefined });
    expect(env).toBeDefined();
    errorOf({ ...agnostic, hub: { ...agnostic.hub!, maxAzs: 3 } }, 'hub.maxAzs');
    const stack = new Stack(new App(), 'Agnostic');
    const plane = new ControlPlane(stack, 'Plane', agnostic);
    expect(plane.hub!.network.vpc.isolatedSubnets).toHaveLength(2);
  });
});

describe('configuration file', () => {
  const base = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8')) as ControlPlaneConfig;
  const parse = (config: unknown) => controlPlaneStackProps(config as ControlPlaneConfig, path.join(projectRoot(), 'config'));

  test('the example reads its CA from the file next to it, and holds no seed or private key', () => {
    const props = loadControlPlaneConfig(path.join(projectRoot(), 'config', 'example-vendor.json'));
    expect(props.hub!.tls.caCertificatePem).toBe(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor-hub-ca.pem'), 'utf8'));
    const text = fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor.json'), 'utf8');
    expect(text).not.toMatch(/S[OAUNC][A-Z2-7]{56}/);
    expect(text).not.toMatch(/PRIVATE KEY/);
  });

  test.each([
    [{ ...base, customerAcounts: [] }, 'customerAcounts'],
    [{ ...base, hub: { ...base.hub, node: 3 } }, 'hub.node'],
    [{ ...base, hub: { ...base.hub, tls: { ...base.hub!.tls, key: 'x' } } }, 'hub.tls.key'],
    [{ ...base, account: '1111' }, 'account'],
    [{ ...base, logRetentionDays: 9999 }, 'logRetentionDays'],
    [{ ...base, logRetentionDays: 10 }, 'logRetentionDays'],
    [{ ...base, hub: { ...base.hub, tls: { ...base.hub!.tls, caCertificatePem: 'x' } } }, 'hub.tls.caCertificateFile'],
    [{ ...base, hub: { ...base.hub, tls: { ...base.hub!.tls, caCertificateFile: 'missing.pem' } } }, 'hub.tls.caCertificateFile'],
  ])('a mistake is refused naming the setting (%#)', (config, prop) => {
    expect(() => parse(config)).toThrow(PropError);
    try { parse(config); } catch (e) { expect((e as PropError).prop).toBe(prop); }
  });
});
