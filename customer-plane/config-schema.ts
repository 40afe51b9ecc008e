import { ErrorObject } from 'ajv';
import { CUSTOMER_ID } from '../lib/boundary-contract';
import { AWS_REGIONS, AZ_PATTERN, bool, choice, int, list, LOG_RETENTION_DAYS, obj, PREFIX_LIST_PATTERN, PropNames, SettingSchema, schemaValidator, settingSchemaError, str } from '../lib/config-schema';
import { PropError } from '../lib/errors';
import { WEEKDAYS } from './operations';
import { EgressMode, LLM_ACCESS_MODES } from './props';

/**
 * The JSON Schema (draft-07) of the customer plane's configuration file: the one definition the loader
 * validates with (`customer-plane/config.ts`, through ajv) and editors can use (`"$schema"` in the file).
 * Each setting carries `fix`, an annotation: what to write instead, quoted in the error a bad value gets.
 * The construct props (`resolveProps`) are checked against the same schema (`checkPropsWithSchema`), so a
 * construct user gets the same problem and fix as a file's user. What a schema cannot say (CIDR host bits and
 * private ranges, AZs of the configured region, settings that conflict) the loader and `resolveProps` check after it.
 */

export type { SettingSchema } from '../lib/config-schema';

export { AWS_REGIONS, LOG_RETENTION_DAYS } from '../lib/config-schema';

const CIDR_PATTERN = '^\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}/\\d{1,2}$';
const HHMM_PATTERN = '^([01]\\d|2[0-3]):[0-5]\\d$';

const imageFix = 'give ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:<64 hex digits> (the digest the release was built and signed with)';
const azFix = 'give AZ names such as ["eu-west-1a", "eu-west-1b"]';
const regionFix = 'give an AWS region such as eu-west-1';

let cached: SettingSchema | undefined;

/** The schema (built on first use: `props.ts` and this module import each other). */
export function customerPlaneConfigSchema(): SettingSchema {
  cached ??= {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'BYOC customer plane configuration',
  ...obj('The customer plane\'s settings, as the vendor keeps them per customer.', {
    $schema: str('The JSON Schema of this file, for editors.', undefined, 'give the path or URL of this schema, or remove it'),
    customerId: str('3 to 20 lower-case letters, digits and single hyphens, starting with a letter; scopes names, the key alias and secret names.',
      CUSTOMER_ID.source, 'use 3 to 20 lower-case letters, digits and single hyphens, starting with a letter', 'a valid identifier'),
    account: str('The customer\'s AWS account ID.', '^\\d{12}$', 'give the 12-digit account ID'),
    region: choice('string', AWS_REGIONS, 'The customer\'s AWS region.', regionFix, 'an AWS region'),
    images: obj('The release\'s agentRuntime, natsServer and otelCollector images, pinned by digest, in the stack\'s region.', {
      agentRuntime: str('The agent runtime image.', undefined, imageFix),
      natsServer: str('The NATS server image (the -alpine variant).', undefined, imageFix),
      otelCollector: str('The OpenTelemetry collector image.', undefined, imageFix),
    }, ['agentRuntime', 'natsServer', 'otelCollector'], 'give the release\'s { agentRuntime, natsServer, otelCollector } image references, pinned by digest'),
    maxAzs: { type: 'integer', enum: [2, 3], description: 'AZs of a new VPC.', fix: 'use 2 or 3' },
    availabilityZones: list('AZ names of a new VPC; conflicts with maxAzs.', str('An AZ name.', AZ_PATTERN, azFix), 2, 3, 'give 2 or 3 distinct AZ names such as ["eu-west-1a", "eu-west-1b"]'),
    vpcCidr: str('CIDR of a new VPC: a private /16 to /22.', CIDR_PATTERN, 'give a private network address such as 10.80.0.0/16'),
    vpcEndpoints: bool('Create the VPC endpoints the plane uses.'),
    s3PrefixListId: str('The region\'s S3 managed prefix list.', PREFIX_LIST_PATTERN, 'give the pl-... ID of com.amazonaws.REGION.s3 from aws ec2 describe-managed-prefix-lists', 'a prefix list ID'),
    egress: choice('string', Object.values(EgressMode), 'Outbound internet of a new VPC.', `use ${Object.values(EgressMode).join(' or ')}`, 'an egress mode'),
    existingVpc: obj('Deploy into this existing VPC\'s private subnets; conflicts with maxAzs, availabilityZones, vpcCidr and egress.', {
      vpcId: str('The VPC\'s ID.', '^vpc-[0-9a-f]{8,17}$', 'give the vpc-... ID (8 or 17 hex digits)'),
      vpcCidrBlock: str('The VPC\'s IPv4 CIDR.', CIDR_PATTERN, 'give the VPC\'s primary IPv4 CIDR, such as 10.20.0.0/16'),
      availabilityZones: list('The AZs of privateSubnetIds, in their order.', str('An AZ name.', AZ_PATTERN, azFix), 2, undefined, 'give the AZ of each private subnet, at least two distinct AZs'),
      privateSubnetIds: list('Private subnets, one per AZ.', str('A subnet ID.', '^subnet-[0-9a-f]{8,17}$', 'give subnet-... IDs (8 or 17 hex digits)'), 2, undefined, 'give one private subnet ID per AZ, in the order of availabilityZones'),
      privateSubnetRouteTableIds: list('Route tables of privateSubnetIds, same order.', str('A route table ID.', '^rtb-[0-9a-f]{8,17}$', 'give rtb-... IDs (8 or 17 hex digits)'), 1, undefined,
        'give the route table of each private subnet, in the order of privateSubnetIds'),
    }, ['vpcId', 'vpcCidrBlock', 'availabilityZones', 'privateSubnetIds', 'privateSubnetRouteTableIds'],
    'give existingVpc as { vpcId, vpcCidrBlock, availabilityZones, privateSubnetIds, privateSubnetRouteTableIds }'),
    database: obj('PostgreSQL settings.', {
      instanceType: str('RDS instance type.', '^db\\.[a-z0-9]+\\.[a-z0-9]+$', 'give a type such as db.t4g.medium', 'an RDS instance type'),
      multiAz: bool('Run a standby in a second AZ.'),
      deletionProtection: bool('Refuse deletion of the instance.'),
      allocatedStorageGiB: int('Storage allocated at creation, GiB.', 20, 65536),
      backupRetentionDays: int('Days of automated backups.', 1, 35),
      port: int('TCP port; PostgreSQL\'s well-known 5432 is refused.', 1150, 65535, 'use a whole number from 1150 to 65535 other than 5432, such as the default 5433'),
    }, [], 'give an object of database settings'),
    cache: obj('Redis settings.', {
      nodeType: str('ElastiCache node type.', '^cache\\.[a-z0-9]+\\.[a-z0-9]+$', 'give an ElastiCache node type such as cache.t4g.small', 'a node type'),
      replicas: int('Read replicas in other AZs.', 1, 5, 'use 1 to 5: at least one replica in another AZ keeps the cache available through an AZ failure'),
      port: int('TCP port; Redis\'s well-known 6379 is refused.', 1024, 65535, 'use a whole number from 1024 to 65535 other than 6379, such as the default 6380'),
      snapshotRetentionDays: int('Days of automatic snapshots.', 15, 35, 'use 15 to 35 days: HIPAA and NIST 800-53 require at least 15 days of cache backups'),
    }, [], 'give an object of cache settings'),
    retainData: bool('Keep the data when the stack is deleted.'),
    shareLearning: bool('Share anonymised pattern fingerprints with the vendor; false removes the kind from every generated rule.'),
    vendorHub: obj('The vendor hub the NATS leaf connects to, as the vendor issued it: without it the leaf has no hub to connect to and nothing crosses.', {
      host: str('The hub\'s DNS name, as on its TLS certificate.', undefined, 'give the name on the hub\'s TLS certificate, e.g. hub.byoc.vendor.example'),
      port: int('The hub\'s leaf-node port.', 1024, 65535),
      caCertificatePem: str('The vendor\'s CA certificate, PEM.', undefined, 'give the PEM of the CA that issued the hub\'s certificate'),
      caCertificateFile: str('The vendor\'s CA certificate in a file, relative to this file.', undefined, 'give the path of the vendor\'s CA certificate, relative to the configuration file'),
      endpointService: str('The vendor\'s VPC endpoint service.', undefined, 'give the name the vendor published, com.amazonaws.vpce.REGION.vpce-svc-<17 hex>'),
      endpointServiceRegion: choice('string', AWS_REGIONS, 'Region of the endpoint service.', 'give the region of the vendor\'s endpoint service, e.g. eu-central-1, or leave it out when it is the plane\'s', 'an AWS region'),
      cidrs: list('Without endpointService: the hub\'s public addresses.', str('An IPv4 CIDR.', undefined, 'give the hub\'s addresses as the vendor published them, e.g. 203.0.113.10/32'), 1, undefined,
        'give the hub\'s addresses as the vendor published them, e.g. ["203.0.113.10/32"]'),
    }, ['host', 'port'], 'give the hub the vendor issued at registration: { host, port, caCertificateFile, endpointService }'),
    logRetentionDays: choice('integer', LOG_RETENTION_DAYS, 'Retention of every log group, days.', `use one of CloudWatch Logs' retention periods: ${LOG_RETENTION_DAYS.join(', ')}`, 'a finite CloudWatch Logs retention'),
    createRdsOsMetricsLogGroup: bool('Create the account-wide RDSOSMetrics log group.'),
    llm: obj('Where the agents\' LLM calls go.', {
      via: choice('string', LLM_ACCESS_MODES, 'vendor-proxy or own-keys.', `use ${LLM_ACCESS_MODES.map((m) => `{ "via": "${m}" }`).join(' or ')}, or leave llm out`, 'a way to reach an LLM'),
    }, ['via'], `use ${LLM_ACCESS_MODES.map((m) => `{ "via": "${m}" }`).join(' or ')}, or leave llm out`),
    telemetry: obj('Where traces and metrics go, inside the customer\'s account: X-Ray and CloudWatch unless otlpEndpoint is given.', {
      otlpEndpoint: str('The customer\'s own OTLP/HTTP endpoint, https only, reachable inside the VPC.', '^https://[^\\s/?#@]+(/[^\\s?#]*)?$',
        'give the https:// URL of your own OTLP/HTTP endpoint, such as https://otlp.observability.example.internal:4318', 'an https:// URL without credentials, query or fragment'),
    }, [], 'give { "otlpEndpoint": "https://..." }, or leave telemetry out (X-Ray and CloudWatch)'),
    alarms: obj('Where the plane\'s alarms go besides its own encrypted SNS topic.', {
      email: str('An address subscribed to the alarm topic.', '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$', 'give the address that receives the alarms, such as ops@example.com', 'an e-mail address'),
      topicArn: str('An existing SNS topic of yours that every alarm also notifies.', '^arn:aws[a-z-]*:sns:[a-z0-9-]+:\\d{12}:[A-Za-z0-9_-]{1,256}$',
        'give arn:aws:sns:REGION:ACCOUNT:NAME of your own topic, or leave it out', 'an SNS topic ARN'),
    }, [], 'give { "email": "...", "topicArn": "..." } (both optional), or leave alarms out'),
    capacity: obj('Fargate capacity of the agents.', {
      spot: bool('Run the agents the catalog marks interruptible on Fargate Spot (X86_64: the runtime image must include linux/amd64).'),
      onDemandBase: int('With spot: on-demand tasks of each such agent before any on Spot.', 0, 10),
    }, [], 'give { "spot": true, "onDemandBase": 0 }, or leave capacity out (every task on-demand)'),
    schedule: obj('Business hours: request and event agents scale to zero outside the windows.', {
      timeZone: str('IANA time zone of the windows and holidays.', undefined, 'give an IANA time zone name such as Europe/Berlin'),
      windows: list('Weekly windows in which the agents run.', obj('One window.', {
        days: list('Days of the window.', choice('string', WEEKDAYS, 'A day.', `use ${WEEKDAYS.join(', ')}`, 'a day'), 1, 7, `give days from ${WEEKDAYS.join(', ')}`),
        start: str('Opening time, HH:MM.', HHMM_PATTERN, 'give HH:MM on a 24-hour clock, such as "08:00"', 'a time'),
        end: str('Closing time, HH:MM, later the same day.', HHMM_PATTERN, 'give HH:MM on a 24-hour clock, such as "18:00"', 'a time'),
      }, ['days', 'start', 'end'], 'give { "days": ["MON", ...], "start": "08:00", "end": "18:00" }'), 1, undefined, 'give at least one window { "days": [...], "start": "HH:MM", "end": "HH:MM" }'),
      holidays: list('Dates on which no window opens.', str('A date.', '^\\d{4}-\\d{2}-\\d{2}$', 'give YYYY-MM-DD, such as "2026-12-25"', 'a date'), 0, undefined, 'give a list of dates YYYY-MM-DD'),
      warmUpMinutes: int('Minutes before a window opens that the agents start.', 0, 120),
    }, ['timeZone', 'windows'], 'give { "timeZone": "Europe/Berlin", "windows": [{ "days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "08:00", "end": "18:00" }] }, or leave schedule out'),
    scaling: obj('Agents\' task counts: event agents scale from zero on their backlog, request agents keep a floor.', {
      idleMinutes: int('Minutes an event agent\'s backlog stays empty before it scales back to zero.', 1, 1440),
      requestFloor: int('Tasks each request/response agent keeps.', 0, 10),
    }, [], 'give { "idleMinutes": 15, "requestFloor": 1 } (both optional), or leave scaling out (every agent runs one task)'),
  }, ['customerId', 'images', 'vendorHub'], 'give a JSON object of settings'),
};
  return cached;
}

/** Every way `value` breaks the schema (ajv, all errors, in schema order); empty when it is valid. */
export const configSchemaErrors: (value: unknown) => ErrorObject[] = schemaValidator(customerPlaneConfigSchema);

/** The first schema error as a `PropError` (see `settingSchemaError`): an unknown key is not a setting (or prop) of the customer plane. */
export function schemaError(errors: ErrorObject[], kind: 'setting' | 'prop' = 'setting', names: PropNames = {}): PropError {
  return settingSchemaError(errors, 'customer plane', kind, names);
}
