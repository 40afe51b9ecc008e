import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack, Token } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ControlPlaneConfig, controlPlaneStackProps, loadControlPlaneConfig } from '../../control-plane/config';
import { controlPlaneConfigSchema } from '../../control-plane/config-schema';
import { ControlPlane } from '../../control-plane/control-plane';
import { NatsHubProps, resolveControlPlaneProps } from '../../control-plane/props';
import { ControlPlaneStack, ControlPlaneStackProps } from '../../control-plane/stack';
import { projectRoot } from '../../lib/app';
import { SettingSchema } from '../../lib/config-schema';
import { PropError } from '../../lib/errors';
import { testCertificates } from '../servers/nats';
import { exampleAppProps, exampleVendorProps } from './synth';

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

describe('a construct user\'s props are checked against the configuration schema: the same problem and fix as the file\'s user (issue 12)', () => {
  const CONFIG_DIR = path.join(projectRoot(), 'config');
  const config = () => JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'example-vendor.json'), 'utf8'));
  /** The schema node of a setting, e.g. `hub.nodes`. */
  const node = (at: string): SettingSchema => at.split('.').reduce((n, k) => (n.properties as Record<string, SettingSchema>)[k], controlPlaneConfigSchema());
  const messageOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(PropError);
      return (e as Error).message;
    }
    throw new Error('accepted');
  };

  // [prop, the same mistake made in the props and in the file, problem]
  test.each<[string, (p: any) => void, string]>([
    ['hub.nodes', (p) => { p.hub = { ...p.hub, nodes: 4 }; }, '4 is not one of the allowed values'],
    ['hub.maxAzs', (p) => { p.hub = { ...p.hub, availabilityZones: undefined, maxAzs: 7 }; }, '7 is out of range'],
    ['hub.cpu', (p) => { p.hub = { ...p.hub, cpu: 256 }; }, '256 is not one of the allowed values'],
    ['hub.s3PrefixListId', (p) => { p.hub = { ...p.hub, s3PrefixListId: 'com.amazonaws.eu-west-1.s3' }; }, '"com.amazonaws.eu-west-1.s3" is not a prefix list ID'],
    ['hub.accessLogBucket', (p) => { p.hub = { ...p.hub, accessLogBucket: 's3://logs' }; }, '"s3://logs" is not an S3 bucket name'],
    ['bundleRegistry.retention.days', (p) => { p.bundleRegistry = { retention: { days: 0 } }; }, '0 is out of range'],
    ['bundleRegistry.retention.mode', (p) => { p.bundleRegistry = { retention: { mode: 'LEGAL_HOLD' } }; }, '"LEGAL_HOLD" is not an Object Lock mode'],
    ['services.ingestRefreshSeconds', (p) => { p.services = { ...p.services, ingestRefreshSeconds: 86400 }; }, '86400 is out of range'],
    ['deploymentMode', (p) => { p.deploymentMode = 'free'; }, '"free" is not a deployment mode'],
  ])('%s', (prop, mistake, problem) => {
    const props: any = exampleAppProps();
    mistake(props);
    const settings = config();
    mistake(settings);
    const message = `'${prop}': ${problem}. Fix: ${node(prop).fix}`;
    expect(messageOf(() => resolveControlPlaneProps(props))).toBe(`Invalid prop ${message}`);
    expect(messageOf(() => controlPlaneStackProps(settings, CONFIG_DIR))).toBe(`Invalid setting ${message}`);
  });

  test('a list\'s item given twice is named where it comes again, in the props and in the file', () => {
    const [a, b] = ['444455556666', '777788889999'];
    expect(messageOf(() => resolveControlPlaneProps({ customerAccounts: [a, b, a] })))
      .toBe(`Invalid prop 'customerAccounts[2]': "${a}" is listed twice (also customerAccounts[0]). Fix: ${node('customerAccounts').fix}`);
    expect(messageOf(() => controlPlaneStackProps({ customerAccounts: [a, b, a] }))).toBe(`Invalid setting 'customerAccounts[2]': "${a}" is listed twice (also customerAccounts[0]). Fix: ${node('customerAccounts').fix}`);
  });

  test('logRetention, a logs.RetentionDays, is checked as the file\'s logRetentionDays', () => {
    expect(messageOf(() => resolveControlPlaneProps({ logRetention: logs.RetentionDays.INFINITE })))
      .toBe('Invalid prop \'logRetention\': 9999 is not a finite CloudWatch Logs retention. Fix: use a logs.RetentionDays value other than INFINITE, such as ONE_YEAR');
    expect(resolveControlPlaneProps({ logRetention: logs.RetentionDays.TWO_YEARS }).logRetention).toBe(731);
  });

  test('tokens are not judged at synth: a required value given as a token is not missing', () => {
    const props = exampleAppProps();
    expect(() => resolveControlPlaneProps({ ...props, services: { ...props.services!, image: Token.asString({ Ref: 'Image' }) } })).not.toThrow();
    expect(() => resolveControlPlaneProps({ ...props, hub: { ...props.hub!, nodes: Token.asNumber({ Ref: 'Nodes' }) } })).not.toThrow();
  });

  test('an unknown key in a props object is named, as a prop', () => {
    expect(messageOf(() => resolveControlPlaneProps({ bundleRegistry: { retention: { days: 30, mdoe: 'COMPLIANCE' } as any } })))
      .toBe('Invalid prop \'bundleRegistry.retention.mdoe\': is not a prop of the control plane. Fix: remove it or use one of mode, days');
  });
});
