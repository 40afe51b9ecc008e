import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { buildCustomerPlaneApp } from '../../bin/customer-plane';
import { CustomerPlaneConfig, customerPlaneStackProps, loadCustomerPlaneConfig } from '../../customer-plane/config';
import { customerPlaneConfigSchema } from '../../customer-plane/config-schema';
import { EgressMode } from '../../customer-plane/props';
import { projectRoot } from '../../lib/app';
import { PropError } from '../../lib/errors';

const CONFIG_DIR = path.join(projectRoot(), 'config');
const example = () => JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'example-customer.json'), 'utf8'));

test('the example configuration loads', () => {
  const props = loadCustomerPlaneConfig(path.join(projectRoot(), 'config', 'example-customer.json'));
  expect(props.customerId).toBe('example');
  expect(props.env).toBeUndefined();
});

test('settings map onto props: account and region, database type, egress, log retention', () => {
  const props = customerPlaneStackProps({
    ...example(), account: '123456789012', region: 'eu-west-1', egress: 'nat', logRetentionDays: 90,
    database: { instanceType: 'db.r7g.large', multiAz: false }, createRdsOsMetricsLogGroup: true,
  }, CONFIG_DIR);
  expect(props.createRdsOsMetricsLogGroup).toBe(true);
  expect(props.env).toEqual({ account: '123456789012', region: 'eu-west-1' });
  expect(props.egress).toBe(EgressMode.NAT);
  expect(props.logRetention).toBe(90);
  expect(props.database?.instanceType?.toString()).toBe('r7g.large');
});

test.each([
  [{ customerID: 'x' }, /'customerID': is not a setting.*customerId/],
  [{ database: { multiAZ: true } }, /'database.multiAZ': is not a setting/],
  [{ account: '1234' }, /'account'.*12-digit/],
  [{ egress: 'open' }, /'egress'.*none or nat/],
  [{ database: { instanceType: 't3.micro' } }, /'database.instanceType'.*db\.t4g\.medium/],
  [{ images: 'latest' }, /'images': is not an object/],
])('a bad setting names itself: %j', (bad, message) => {
  expect(() => customerPlaneStackProps({ ...example(), ...bad }, CONFIG_DIR)).toThrow(message);
});

test('the vendor hub\'s CA comes from a file next to the configuration; a missing one is named', () => {
  const props = customerPlaneStackProps(example(), CONFIG_DIR);
  expect(props.vendorHub.caCertificatePem).toBe(fs.readFileSync(path.join(CONFIG_DIR, 'example-vendor-hub-ca.pem'), 'utf8'));
  expect(() => customerPlaneStackProps({ ...example(), vendorHub: { ...example().vendorHub, caCertificateFile: 'missing.pem' } }, CONFIG_DIR))
    .toThrow(/'vendorHub.caCertificateFile': cannot read .*missing\.pem \(ENOENT\)/);
  expect(() => customerPlaneStackProps({ ...example(), vendorHub: { ...example().vendorHub, caCertificatePem: 'x' } }, CONFIG_DIR))
    .toThrow(/'vendorHub.caCertificateFile': set together with caCertificatePem/);
});

test('an unreadable file names the file, as the setting config', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-'));
  try {
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, '{ not json');
    expect(() => loadCustomerPlaneConfig(file)).toThrow(file);
    expect(() => loadCustomerPlaneConfig(file)).toThrow(/^Invalid setting 'config': cannot read .*c\.json: .*JSON.*\. Fix: give the path of a JSON file/);
    expect(() => loadCustomerPlaneConfig(path.join(dir, 'missing.json'))).toThrow(/^Invalid setting 'config': cannot read .*missing\.json: ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('configuration mistakes fail with one message naming the setting (issue 12)', () => {
  const errorOf = (config: unknown): string => {
    try {
      customerPlaneStackProps(config as CustomerPlaneConfig, CONFIG_DIR);
    } catch (e) {
      expect(e).toBeInstanceOf(PropError);
      return (e as Error).message;
    }
    throw new Error('no error');
  };
  const existingVpc = {
    vpcId: 'vpc-0a1b2c3d', vpcCidrBlock: '10.20.0.0/16', availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: ['subnet-0a1b2c3d', 'subnet-1a2b3c4d'], privateSubnetRouteTableIds: ['rtb-0a1b2c3d', 'rtb-1a2b3c4d'],
  };

  test.each([
    ['shareLearning as a string', { shareLearning: 'false' }, `Invalid setting 'shareLearning': is not a boolean: "false" is a string. Fix: write false, without quotes`],
    ['maxAzs as a string', { maxAzs: '3' }, `Invalid setting 'maxAzs': is not a whole number: "3" is a string. Fix: write 3, without quotes`],
    ['database.multiAz as a string', { database: { multiAz: 'false' } }, `Invalid setting 'database.multiAz': is not a boolean: "false" is a string. Fix: write false, without quotes`],
    ['vpcCidr with host bits', { vpcCidr: '10.80.5.0/16' }, `Invalid setting 'vpcCidr': "10.80.5.0/16" has host bits set: the network it names is 10.80.0.0/16. Fix: give a private network address such as 10.80.0.0/16`],
    ['a public vpcCidr', { vpcCidr: '8.8.0.0/16' }, `Invalid setting 'vpcCidr': "8.8.0.0/16" is not a private range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16). Fix: `],
    ['a vpcCidr just outside 172.16.0.0/12', { vpcCidr: '172.32.0.0/16' }, `Invalid setting 'vpcCidr': "172.32.0.0/16" is not a private range`],
    ['logRetentionDays no CloudWatch value', { logRetentionDays: 366 }, `Invalid setting 'logRetentionDays': 366 is not a finite CloudWatch Logs retention. Fix: use one of CloudWatch Logs' retention periods: 1, 3, 5,`],
    ['logRetentionDays as a string', { logRetentionDays: '365' }, `Invalid setting 'logRetentionDays': is not a whole number: "365" is a string. Fix: write 365, without quotes`],
    ['AZs of another region', { region: 'eu-west-1', availabilityZones: ['us-east-1a', 'us-east-1b'] },
      `Invalid setting 'availabilityZones[0]': "us-east-1a" is an AZ of us-east-1, not of region eu-west-1. Fix: give AZs of eu-west-1, such as ["eu-west-1a", "eu-west-1b"]`],
    ['AZs of two regions', { availabilityZones: ['eu-west-1a', 'us-east-1b'] }, `Invalid setting 'availabilityZones[1]': "us-east-1b" is an AZ of us-east-1, but availabilityZones[0] of eu-west-1`],
    ['existing VPC AZs of another region', { region: 'us-east-1', existingVpc }, `Invalid setting 'existingVpc.availabilityZones[0]': "eu-west-1a" is an AZ of eu-west-1, not of region us-east-1`],
    ['an invalid region', { region: 'eu-west-9' }, `Invalid setting 'region': "eu-west-9" is not an AWS region. Fix: give an AWS region such as eu-west-1`],
    ['existingVpc with vpcId alone', { existingVpc: { vpcId: 'vpc-0a1b2c3d' } },
      `Invalid setting 'existingVpc.vpcCidrBlock, existingVpc.availabilityZones, existingVpc.privateSubnetIds, existingVpc.privateSubnetRouteTableIds': missing. Fix: give existingVpc as { vpcId, vpcCidrBlock, availabilityZones, privateSubnetIds, privateSubnetRouteTableIds }`],
    ['existingVpc with a subnet missing', { existingVpc: { ...existingVpc, privateSubnetIds: ['subnet-0a1b2c3d', 'subnet-1a2b3c4d', 'subnet-2a3b4c5d'] } },
      `Invalid setting 'existingVpc.privateSubnetIds': has 3 items for 2 availabilityZones. Fix: give one per AZ`],
    ['existingVpc with a short subnet ID', { existingVpc: { ...existingVpc, privateSubnetIds: ['subnet-0a', 'subnet-0b'] } },
      `Invalid setting 'existingVpc.privateSubnetIds[0]': "subnet-0a" is not in the expected form. Fix: give subnet-... IDs (8 or 17 hex digits)`],
    ['existingVpc with host bits', { existingVpc: { ...existingVpc, vpcCidrBlock: '10.20.1.0/16' } }, `Invalid setting 'existingVpc.vpcCidrBlock': "10.20.1.0/16" has host bits set`],
    ['existingVpc with vpcCidr', { existingVpc, vpcCidr: '10.80.0.0/16' }, `Invalid setting 'vpcCidr': set together with existingVpc. Fix: remove vpcCidr`],
    ['maxAzs with availabilityZones', { maxAzs: 2, availabilityZones: ['eu-west-1a', 'eu-west-1b'] }, `Invalid setting 'maxAzs, availabilityZones': both set. Fix: give either`],
  ])('%s', (_name, bad, message) => {
    expect(errorOf({ ...example(), ...bad })).toContain(message);
  });

  test('a missing customerId is named as missing', () => {
    const { customerId: _, ...rest } = example();
    expect(errorOf(rest)).toBe(`Invalid setting 'customerId': missing. Fix: give customerId: 3 to 20 lower-case letters, digits and single hyphens, starting with a letter; scopes names, the key alias and secret names`);
  });

  test('wrong types fail for every boolean and number setting', () => {
    const paths: [string[], 'boolean' | 'integer'][] = [
      [['vpcEndpoints'], 'boolean'], [['retainData'], 'boolean'], [['shareLearning'], 'boolean'], [['createRdsOsMetricsLogGroup'], 'boolean'],
      [['database', 'multiAz'], 'boolean'], [['database', 'deletionProtection'], 'boolean'],
      [['maxAzs'], 'integer'], [['logRetentionDays'], 'integer'], [['database', 'allocatedStorageGiB'], 'integer'], [['database', 'backupRetentionDays'], 'integer'],
      [['database', 'port'], 'integer'], [['cache', 'replicas'], 'integer'], [['cache', 'port'], 'integer'], [['cache', 'snapshotRetentionDays'], 'integer'],
      [['vendorHub', 'port'], 'integer'],
    ];
    for (const [at, type] of paths) {
      const config = example();
      const value = type === 'boolean' ? 'true' : '7';
      if (at.length === 1) config[at[0]] = value;
      else config[at[0]] = { ...config[at[0]], [at[1]]: value };
      expect(errorOf(config)).toBe(`Invalid setting '${at.join('.')}': is not ${type === 'boolean' ? 'a boolean' : 'a whole number'}: "${value}" is a string. Fix: write ${value}, without quotes`);
    }
  });

  test('a config whose values are right still loads: a private /22, AZs of its region, an existing VPC', () => {
    expect(customerPlaneStackProps({ ...example(), vpcCidr: '172.16.4.0/22', region: 'eu-west-1', availabilityZones: ['eu-west-1a', 'eu-west-1c'] }, CONFIG_DIR).vpcCidr).toBe('172.16.4.0/22');
    expect(customerPlaneStackProps({ ...example(), existingVpc, logRetentionDays: 400 }, CONFIG_DIR).logRetention).toBe(400);
    expect(customerPlaneStackProps({ ...example(), $schema: '../customer-plane.schema.json' } as CustomerPlaneConfig, CONFIG_DIR)).not.toHaveProperty('$schema');
  });
});

describe('every row of the README\'s configuration reference refuses a bad value, as a setting of the file', () => {
  let dir: string;
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-config-')); });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = () => {
    const c = example();
    c.vendorHub.caCertificateFile = path.join(CONFIG_DIR, c.vendorHub.caCertificateFile);
    return c;
  };
  let n = 0;
  const write = (config: unknown): string => {
    const file = path.join(dir, `c${n++}.json`);
    fs.writeFileSync(file, JSON.stringify(config));
    return file;
  };
  const hub = (overrides: Record<string, unknown>) => ({ vendorHub: { ...base().vendorHub, ...overrides } });
  const pemHub = { vendorHub: { ...example().vendorHub, caCertificateFile: undefined, caCertificatePem: 'not a certificate' } };

  // [setting, bad value(s), the message's start after `Invalid setting '`]
  test.each([
    ['customerId', { customerId: 'Acme Corp' }, `customerId': "Acme Corp" is not a valid identifier. Fix: use 3 to 20 lower-case letters`],
    ['images.agentRuntime', { images: { ...example().images, agentRuntime: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/agent-runtime:latest' } }, `images.agentRuntime': "111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/agent-runtime:latest" names an image by tag`],
    ['images.natsServer', { images: { ...example().images, natsServer: undefined } }, `images.natsServer': missing. Fix: give natsServer: The NATS server image`],
    ['account', { account: '1234' }, `account': "1234" is not in the expected form. Fix: give the 12-digit account ID`],
    ['region', { region: 'EU-West-1' }, `region': "EU-West-1" is not an AWS region`],
    ['maxAzs', { maxAzs: 4 }, `maxAzs': 4 is not one of the allowed values. Fix: use 2 or 3`],
    ['availabilityZones', { availabilityZones: ['eu-west-1a'] }, `availabilityZones': has 1 items, fewer than 2`],
    ['availabilityZones', { availabilityZones: ['eu-west-1a', 'eu-west-1a'] }, `availabilityZones[1]': "eu-west-1a" is listed twice (also availabilityZones[0]). Fix: give 2 or 3 distinct AZ names`],
    ['vpcCidr', { vpcCidr: '10.0.0.0/8' }, `vpcCidr': "10.0.0.0/8" is not an IPv4 CIDR from /16 to /22`],
    ['existingVpc', { existingVpc: 'vpc-0a1b2c3d' }, `existingVpc': is not an object: "vpc-0a1b2c3d" is a string`],
    ['vpcEndpoints', { vpcEndpoints: 'no' }, `vpcEndpoints': is not a boolean: "no" is a string. Fix: write true or false, without quotes`],
    ['s3PrefixListId', { s3PrefixListId: 'com.amazonaws.eu-west-1.s3' }, `s3PrefixListId': "com.amazonaws.eu-west-1.s3" is not a prefix list ID. Fix: give the pl-... ID`],
    ['egress', { egress: 'open' }, `egress': "open" is not an egress mode. Fix: use none or nat`],
    ['llm', { llm: { via: 'internet' } }, `llm.via': "internet" is not a way to reach an LLM. Fix: use { "via": "vendor-proxy" } or { "via": "own-keys" }`],
    ['llm', { llm: { via: 'own-keys' } }, `llm': own-keys with egress: none: the plane's VPC has no route to the providers. Fix: set egress: nat`],
    ['createRdsOsMetricsLogGroup', { createRdsOsMetricsLogGroup: 1 }, `createRdsOsMetricsLogGroup': is not a boolean: 1 is a number`],
    ['database.instanceType', { database: { instanceType: 't3.micro' } }, `database.instanceType': "t3.micro" is not an RDS instance type. Fix: give a type such as db.t4g.medium`],
    ['database.multiAz', { database: { multiAz: 'yes' } }, `database.multiAz': is not a boolean: "yes" is a string`],
    ['database.deletionProtection', { database: { deletionProtection: null } }, `database.deletionProtection': is not a boolean: null is a null`],
    ['database.allocatedStorageGiB', { database: { allocatedStorageGiB: 5 } }, `database.allocatedStorageGiB': 5 is out of range. Fix: use a whole number from 20 to 65536`],
    ['database.backupRetentionDays', { database: { backupRetentionDays: 36 } }, `database.backupRetentionDays': 36 is out of range. Fix: use a whole number from 1 to 35`],
    ['database.port', { database: { port: 5432 } }, `database.port': 5432 is PostgreSQL's well-known port`],
    ['cache.nodeType', { cache: { nodeType: 'm5.large' } }, `cache.nodeType': "m5.large" is not a node type. Fix: give an ElastiCache node type such as cache.t4g.small`],
    ['cache.replicas', { cache: { replicas: 0 } }, `cache.replicas': 0 is out of range. Fix: use 1 to 5`],
    ['cache.port', { cache: { port: 6379 } }, `cache.port': 6379 is Redis's well-known port`],
    ['cache.snapshotRetentionDays', { cache: { snapshotRetentionDays: 7 } }, `cache.snapshotRetentionDays': 7 is out of range. Fix: use 15 to 35 days`],
    ['shareLearning', { shareLearning: 'false' }, `shareLearning': is not a boolean: "false" is a string. Fix: write false, without quotes`],
    ['vendorHub.host', hub({ host: '203.0.113.10' }), `vendorHub.host': "203.0.113.10" is not the hub's DNS name`],
    ['vendorHub.port', hub({ port: 80 }), `vendorHub.port': 80 is out of range. Fix: use a whole number from 1024 to 65535`],
    ['vendorHub.caCertificatePem', pemHub, `vendorHub.caCertificatePem': is not a PEM X.509 certificate`],
    ['vendorHub.caCertificateFile', hub({ caCertificateFile: 'missing.pem' }), `vendorHub.caCertificateFile': cannot read `],
    ['vendorHub.endpointService', hub({ endpointService: 'hub.vendor.example' }), `vendorHub.endpointService': "hub.vendor.example" is not a VPC endpoint service name`],
    ['vendorHub.endpointServiceRegion', hub({ endpointServiceRegion: 'mars-1' }), `vendorHub.endpointServiceRegion': "mars-1" is not an AWS region. Fix: give the region of the vendor's endpoint service`],
    ['vendorHub.cidrs', { ...hub({ endpointService: undefined, cidrs: ['0.0.0.0/0'] }), egress: 'nat' }, `vendorHub.cidrs': "0.0.0.0/0" is not an IPv4 CIDR from /16 to /32`],
    ['retainData', { retainData: 'no' }, `retainData': is not a boolean: "no" is a string`],
    ['logRetentionDays', { logRetentionDays: 0 }, `logRetentionDays': 0 is not a finite CloudWatch Logs retention. Fix: use one of CloudWatch Logs' retention periods`],
  ])('%s: %j', (_setting, bad, message) => {
    const file = write({ ...base(), ...bad });
    const app = new App({ outdir: path.join(dir, 'out'), context: { config: file } });
    let error: unknown;
    try {
      buildCustomerPlaneApp(app);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PropError);
    expect((error as Error).message).toMatch(/^Invalid setting '[^']+': .+\. Fix: .+/);
    expect((error as Error).message.startsWith(`Invalid setting '${message}`)).toBe(true);
  });

  // The apps as `cdk synth` runs them (`npm run build` first): one line on stderr, no stack trace, exit 1.
  const run = (app: string, env: Record<string, string>) => spawnSync(process.execPath, [path.join(projectRoot(), 'dist', 'bin', app)], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120000,
  });

  test('the built customer-plane app prints the bad setting without a stack trace and exits 1', () => {
    for (const [bad, line] of [
      [{ shareLearning: 'false' }, `Invalid setting 'shareLearning': is not a boolean: "false" is a string. Fix: write false, without quotes\n`],
      [{ database: { port: 5432 } }, `Invalid setting 'database.port': 5432 is PostgreSQL's well-known port. Fix: choose another port, such as the default 5433\n`],
    ] as const) {
      const r = run('customer-plane.js', { BYOC_CONFIG: write({ ...base(), ...bad }) });
      expect(r.stderr).toBe(line);
      expect(r.stderr).not.toMatch(/^ {4}at /m);
      expect(r.status).toBe(1);
    }
  });

  test('the built control-plane app prints the bad setting without a stack trace and exits 1', () => {
    const vendor = JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'example-vendor.json'), 'utf8'));
    const r = run('control-plane.js', { BYOC_VENDOR_CONFIG: write({ ...vendor, acount: '111122223333' }) });
    expect(r.stderr).toMatch(/^Invalid setting 'acount': is not a setting of the control plane\. Fix: remove it or use one of .*\n$/);
    expect(r.stderr).not.toMatch(/^ {4}at /m);
    expect(r.status).toBe(1);
  });
});

describe('the configuration schema', () => {
  test('config/customer-plane.schema.json, for editors, is the schema the loader validates with', () => {
    const published = JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'customer-plane.schema.json'), 'utf8'));
    // Out of date? node -p "JSON.stringify(require('./dist/customer-plane/config-schema').customerPlaneConfigSchema(), null, 2)" > config/customer-plane.schema.json
    expect(published).toEqual(JSON.parse(JSON.stringify(customerPlaneConfigSchema())));
  });

  test('the README\'s configuration reference has a row for every setting of the schema, and no other', () => {
    const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration reference'), readme.indexOf('The construct API additionally takes'));
    const props = customerPlaneConfigSchema().properties as Record<string, { properties?: Record<string, unknown> }>;
    const documented = new Set<string>();
    for (const row of section.split('\n').filter((l) => /^\| `/.test(l))) {
      const names = [...row.split('|')[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      const prefix = names[0].includes('.') ? names[0].slice(0, names[0].indexOf('.') + 1) : '';
      for (const name of names) documented.add(name.includes('.') || name in props ? name : prefix + name);
    }
    const nested = ['images', 'database', 'cache', 'vendorHub'];
    const settings = Object.keys(props).filter((k) => k !== '$schema')
      .flatMap((k) => (nested.includes(k) ? Object.keys(props[k].properties ?? {}).map((c) => `${k}.${c}`) : [k]));
    expect([...documented].sort()).toEqual(settings.sort());
  });
});
