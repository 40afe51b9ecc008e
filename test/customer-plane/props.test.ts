import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AGENT_CATALOG, AgentSpec } from '../../agents/catalog';
import { customerPlaneStackProps } from '../../customer-plane/config';
import { customerPlaneConfigSchema, SettingSchema } from '../../customer-plane/config-schema';
import { CustomerPlane } from '../../customer-plane/customer-plane';
import { CustomerPlaneProps, EgressMode, MAX_AGENTS_PER_GROUP, resolveProps } from '../../customer-plane/props';
import { projectRoot } from '../../lib/app';
import { PropError } from '../../lib/errors';
import { exampleProps } from '../synth';

// Every App gets an output folder; these live under one folder that is removed after the file.
let outRoot: string;
beforeAll(() => { outRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-props-')); });
afterAll(() => fs.rmSync(outRoot, { recursive: true, force: true }));
let apps = 0;

const base = (): CustomerPlaneProps => {
  const { customerId, images, vendorHub } = exampleProps();
  return { customerId, images, vendorHub };
};

function build(props: Omit<Partial<CustomerPlaneProps>, 'vpc'> & { vpc?: 'imported' | 'one-az' }, stackProps: { env?: { account?: string; region?: string } } = {}) {
  return () => {
    const stack = new Stack(new App({ outdir: path.join(outRoot, `app-${apps++}`) }), 'Test', stackProps);
    const azs = props.vpc === 'one-az' ? ['a'] : ['a', 'b'];
    const vpc = props.vpc && ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-1', availabilityZones: azs, isolatedSubnetIds: azs.map((az) => `subnet-${az}`), isolatedSubnetRouteTableIds: azs.map((az) => `rtb-${az}`) });
    return new CustomerPlane(stack, 'Plane', { ...base(), ...props, vpc } as CustomerPlaneProps);
  };
}

const agent = (overrides: Partial<AgentSpec>): AgentSpec[] => [{ ...AGENT_CATALOG[1], ...overrides }];
const digest = 'a'.repeat(64);

// [prop named in the error, props, what the message must say]
const cases: [string, Omit<Partial<CustomerPlaneProps>, 'vpc'> & { vpc?: 'imported' | 'one-az' }, RegExp][] = [
  ['customerId', { customerId: 'Acme Corp' }, /lower-case letters/],
  ['customerId', { customerId: 'ab' }, /3 to 20/],
  ['images', { images: undefined }, /agentRuntime, natsServer and otelCollector/],
  ['images.agentRuntime', { images: { ...base().images, agentRuntime: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/agent-runtime:latest' } }, /by tag/],
  ['images.natsServer', { images: { ...base().images, natsServer: 'nats:2.10' } }, /by tag/],
  ['images.otelCollector', { images: { ...base().images, otelCollector: `docker.io/otel/collector@sha256:${digest}` } }, /not an ECR image reference/],
  ['images.natsServer', { images: { ...base().images, natsServer: `111122223333.dkr.ecr.us-east-1.amazonaws.com/byoc/nats-server@sha256:${digest}` } }, /is in us-east-1, images.agentRuntime in eu-west-1/],
  ['maxAzs', { maxAzs: 4 }, /use 2 or 3/],
  ['maxAzs', { maxAzs: 3 }, /explicit region/],
  ['availabilityZones', { availabilityZones: ['eu-west-1a'] }, /2 or 3 distinct/],
  ['availabilityZones[1]', { availabilityZones: ['eu-west-1a', 'eu-west-1a'] }, /"eu-west-1a" is listed twice \(also availabilityZones\[0\]\)\. Fix: give 2 or 3 distinct/],
  ['maxAzs, availabilityZones', { maxAzs: 2, availabilityZones: ['eu-west-1a', 'eu-west-1b'] }, /either/],
  ['vpcCidr', { vpcCidr: '10.0.0.0/8' }, /\/16 to \/22/],
  ['vpcCidr', { vpcCidr: '300.1.0.0/16' }, /not an IPv4 CIDR/],
  ['egress', { egress: 'internet' as EgressMode }, /none or nat/],
  ['maxAzs, egress', { vpc: 'imported', maxAzs: 2, egress: EgressMode.NAT }, /existing VPC/],
  ['vpcSubnets', { vpc: 'imported', vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC } }, /public subnet/],
  ['vpcSubnets', { vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } }, /without 'vpc'/],
  ['vpcSubnets', { vpc: 'one-az' }, /at least two AZs/],
  ['vpcEndpoints', { vpc: 'imported', vpcEndpoints: false }, /vpcCidrBlock/],
  ['s3PrefixListId', { s3PrefixListId: 'com.amazonaws.eu-west-1.s3' }, /pl-/],
  ['catalog', { catalog: [] }, /at least one agent/],
  ['catalog[0].name', { catalog: agent({ name: 'Bad_Name' }) }, /not a valid agent name/],
  ['catalog[1].name', { catalog: [...agent({}), ...agent({})] }, /appears twice/],
  ['catalog[0].cpu', { catalog: agent({ cpu: 300 }) }, /not a Fargate CPU size/],
  ['catalog[0].memoryMiB', { catalog: agent({ cpu: 256, memoryMiB: 4096 }) }, /512, 1024, 2048/],
  ['catalog[0].schedule', { catalog: agent({ schedule: 'cron(0 1 * * ? *)' }) }, /has a schedule/],
  ['catalog[0].secrets', { catalog: agent({ secrets: ['aws-root-keys' as any] }) }, /unknown secret/],
  ['catalog[0].dataStores', { catalog: agent({ dataStores: ['dynamodb' as any] }) }, /unknown data store/],
  ['catalog[0].subjects.publish', { catalog: agent({ subjects: { subscribe: [], publish: ['>'] } }) }, /`>` is not allowed/],
  ['catalog', { catalog: Array.from({ length: MAX_AGENTS_PER_GROUP + 1 }, (_, i) => ({ ...AGENT_CATALOG[0], name: `agent-${i}`, group: 'big' })) }, /split the group/],
  ['database.allocatedStorageGiB', { database: { allocatedStorageGiB: 5 } }, /20 to 65536/],
  ['database.backupRetentionDays', { database: { backupRetentionDays: 0 } }, /1 to 35/],
  ['database.port', { database: { port: 5432 } }, /well-known/],
  ['database.port', { database: { port: 80 } }, /1150 to 65535/],
  ['cache.nodeType', { cache: { nodeType: 'm5.large' } }, /cache\.t4g\.small/],
  ['cache.replicas', { cache: { replicas: 0 } }, /another AZ/],
  ['cache.port', { cache: { port: 6379 } }, /well-known/],
  ['cache.snapshotRetentionDays', { cache: { snapshotRetentionDays: 7 } }, /at least 15 days/],
  ['logRetention', { logRetention: logs.RetentionDays.INFINITE }, /other than INFINITE/],
  ['vendorHub', { vendorHub: undefined }, /no hub to connect to/],
  ['vendorHub.endpointService', { vendorHub: { ...exampleProps().vendorHub, endpointService: 'hub.vendor.example' } }, /vpce-svc-/],
  ['vendorHub.port', { vendorHub: { ...exampleProps().vendorHub, port: 80 } }, /1024 to 65535/],
  ['vendorHub.host', { vendorHub: { ...exampleProps().vendorHub, host: 'vpce-0123-abcd.vpce-svc-0123456789abcdef0.eu-west-1.vpce.amazonaws.com' } }, /no certificate names/],
  ['vendorHub.host', { vendorHub: { ...exampleProps().vendorHub, host: '203.0.113.10' } }, /not an IP address/],
  ['vendorHub.caCertificatePem', { vendorHub: { ...exampleProps().vendorHub, caCertificatePem: 'not a certificate' } }, /PEM X.509/],
  ['vendorHub.endpointService', { vendorHub: { ...exampleProps().vendorHub, endpointService: undefined } }, /no path to the hub/],
  ['vendorHub.cidrs', { vendorHub: { ...exampleProps().vendorHub, endpointService: undefined, cidrs: ['203.0.113.10/32'] } }, /egress: nat/],
  ['vendorHub.cidrs', { vendorHub: { ...exampleProps().vendorHub, endpointService: undefined, cidrs: ['0.0.0.0/0'] }, egress: EgressMode.NAT }, /\/16 to \/32/],
  ['logRetention', { logRetention: 42 as logs.RetentionDays }, /not a finite/],
  // Issue 12: values of the wrong type from untyped callers (JSON, JavaScript), host bits, public ranges, a missing ID.
  ['shareLearning', { shareLearning: 'false' as any }, /is not a boolean: "false" is a string\. Fix: write false, without quotes$/],
  ['database.multiAz', { database: { multiAz: 'false' as any } }, /is not a boolean: "false" is a string/],
  ['maxAzs', { maxAzs: '3' as any }, /is not a whole number: "3" is a string\. Fix: write 3, without quotes/],
  ['cache.replicas', { cache: { replicas: '2' as any } }, /is not a whole number: "2" is a string/],
  ['logRetention', { logRetention: '365' as any }, /is not a whole number: "365" is a string/],
  ['vendorHub.port', { vendorHub: { ...exampleProps().vendorHub, port: '7422' as any } }, /is not a whole number: "7422" is a string/],
  ['vpcCidr', { vpcCidr: '10.80.5.0/16' }, /"10\.80\.5\.0\/16" has host bits set: the network it names is 10\.80\.0\.0\/16/],
  ['vpcCidr', { vpcCidr: '100.64.0.0/16' }, /not a private range \(RFC 1918/],
  ['customerId', { customerId: undefined }, /^Invalid prop 'customerId': missing\. Fix: give customerId: 3 to 20 lower-case letters/],
  ['availabilityZones', { availabilityZones: ['eu-west-1a', 'us-east-1b'] }, /are AZs of eu-west-1 and us-east-1/],
];

test.each(cases)('invalid %s fails at synth, naming the prop and the fix', (prop, props, message) => {
  const make = build(props);
  expect(make).toThrow(PropError);
  expect(make).toThrow(new RegExp(`^Invalid prop '${prop.replace(/[[\]().]/g, '\\$&')}'.*Fix: `));
  expect(make).toThrow(message);
});

test('images in another region than the stack fail at synth, naming each image prop and the fix', () => {
  const make = build({}, { env: { account: '123456789012', region: 'us-east-1' } });
  expect(make).toThrow(PropError);
  expect(make).toThrow(/^Invalid prop 'images\.agentRuntime, images\.natsServer, images\.otelCollector': in eu-west-1, but the stack deploys to us-east-1\. Fix: give the release's references in us-east-1's ECR/);
  expect(build({}, { env: { account: '123456789012', region: 'eu-west-1' } })).not.toThrow();
});

describe('a construct user\'s props are checked against the configuration schema: the same problem and fix as the file\'s user (issue 12)', () => {
  const CONFIG_DIR = path.join(projectRoot(), 'config');
  const config = () => JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, 'example-customer.json'), 'utf8'));
  /** The schema node of a setting, e.g. `database.port`. */
  const node = (at: string): SettingSchema => at.split('.').reduce((n, k) => (n.properties as Record<string, SettingSchema>)[k], customerPlaneConfigSchema());
  const messageOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(PropError);
      return (e as Error).message;
    }
    throw new Error('accepted');
  };
  const tokenOf = (name: string) => Token.asNumber({ Ref: name });

  // [prop, the same mistake made in the props and in the file, problem]
  test.each<[string, (p: any) => void, string]>([
    ['database.backupRetentionDays', (p) => { p.database = { ...p.database, backupRetentionDays: 40 }; }, '40 is out of range'],
    ['database.allocatedStorageGiB', (p) => { p.database = { ...p.database, allocatedStorageGiB: 70000 }; }, '70000 is out of range'],
    ['cache.replicas', (p) => { p.cache = { replicas: 0 }; }, '0 is out of range'],
    ['cache.snapshotRetentionDays', (p) => { p.cache = { snapshotRetentionDays: 36 }; }, '36 is out of range'],
    ['maxAzs', (p) => { p.maxAzs = 4; }, '4 is not one of the allowed values'],
    ['capacity.onDemandBase', (p) => { p.capacity = { spot: true, onDemandBase: 11 }; }, '11 is out of range'],
    ['vendorHub.port', (p) => { p.vendorHub = { ...p.vendorHub, port: 70000 }; }, '70000 is out of range'],
    ['vendorHub.endpointServiceRegion', (p) => { p.vendorHub = { ...p.vendorHub, endpointServiceRegion: 'mars-1' }; }, '"mars-1" is not an AWS region'],
    ['scaling.idleMinutes', (p) => { p.scaling = { idleMinutes: 0 }; }, '0 is out of range'],
    ['schedule.warmUpMinutes', (p) => { p.schedule = { timeZone: 'Europe/Berlin', windows: [{ days: ['MON'], start: '08:00', end: '18:00' }], warmUpMinutes: 121 }; }, '121 is out of range'],
    ['alarms.email', (p) => { p.alarms = { email: 'ops' }; }, '"ops" is not an e-mail address'],
    ['s3PrefixListId', (p) => { p.s3PrefixListId = 'pl-xyz'; }, '"pl-xyz" is not a prefix list ID'],
    ['egress', (p) => { p.egress = 'open'; }, '"open" is not an egress mode'],
    ['customerId', (p) => { p.customerId = 'Acme'; }, '"Acme" is not a valid identifier'],
    ['availabilityZones', (p) => { p.availabilityZones = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c', 'eu-west-1d']; }, 'has 4 items, more than 3'],
  ])('%s', (prop, mistake, problem) => {
    const props: any = base();
    mistake(props);
    const settings = config();
    mistake(settings);
    const message = `'${prop}': ${problem}. Fix: ${node(prop).fix}`;
    expect(messageOf(() => resolveProps(props))).toBe(`Invalid prop ${message}`);
    expect(messageOf(() => customerPlaneStackProps(settings, CONFIG_DIR))).toBe(`Invalid setting ${message}`);
  });

  test('props of another type than the setting are mapped: logRetention is logRetentionDays, instanceType its RDS name', () => {
    expect(messageOf(() => resolveProps({ ...base(), logRetention: logs.RetentionDays.INFINITE })))
      .toBe('Invalid prop \'logRetention\': 9999 is not a finite CloudWatch Logs retention. Fix: use a logs.RetentionDays value other than INFINITE, such as ONE_YEAR');
    expect(messageOf(() => resolveProps({ ...base(), database: { instanceType: new ec2.InstanceType('large') } })))
      .toBe('Invalid prop \'database.instanceType\': "db.large" is not an RDS instance type. Fix: give an RDS instance type such as ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM)');
    expect(resolveProps({ ...base(), logRetention: logs.RetentionDays.ONE_MONTH, database: { instanceType: ec2.InstanceType.of(ec2.InstanceClass.R7G, ec2.InstanceSize.LARGE) } }).logRetention).toBe(30);
  });

  test('an unknown key in a props object is named, as a prop', () => {
    expect(messageOf(() => resolveProps({ ...base(), database: { multiAZ: true } as any })))
      .toBe('Invalid prop \'database.multiAZ\': is not a prop of the customer plane. Fix: remove it or use one of instanceType, multiAz, deletionProtection, allocatedStorageGiB, backupRetentionDays, port');
  });

  test('tokens are not judged at synth: neither out of range nor missing', () => {
    expect(() => resolveProps({ ...base(), cache: { replicas: tokenOf('Replicas') }, database: { backupRetentionDays: tokenOf('Days') } })).not.toThrow();
    expect(() => resolveProps({ ...base(), vendorHub: { ...base().vendorHub, port: tokenOf('HubPort') } })).not.toThrow();
    expect(messageOf(() => resolveProps({ ...base(), vendorHub: { ...base().vendorHub, port: undefined as any } })))
      .toMatch(/^Invalid prop 'vendorHub\.port': missing\. Fix: give port: /);
  });
});
