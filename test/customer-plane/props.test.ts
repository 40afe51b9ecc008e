import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AGENT_CATALOG, AgentSpec } from '../../agents/catalog';
import { CustomerPlane } from '../../customer-plane/customer-plane';
import { CustomerPlaneProps, EgressMode, MAX_AGENTS_PER_GROUP } from '../../customer-plane/props';
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
  ['availabilityZones', { availabilityZones: ['eu-west-1a', 'eu-west-1a'] }, /2 or 3 distinct/],
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
  ['customerId', { customerId: undefined }, /^Invalid prop 'customerId': missing\. Fix: give the customer's identifier/],
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
