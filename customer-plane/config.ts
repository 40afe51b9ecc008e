import * as fs from 'fs';
import * as path from 'path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { PropError, settingError } from '../lib/errors';
import { configSchemaErrors, schemaError } from './config-schema';
import { BusinessHours, ScalingOptions } from './operations';
import { cidrProblem, EgressMode, LlmAccess } from './props';
import { CustomerPlaneStackProps } from './stack';

/**
 * The customer plane's settings as the vendor keeps them per customer (JSON), turned into stack props.
 * Validated against `customerPlaneConfigSchema()` (ajv): unknown keys are refused, so a typo never silently
 * falls back to a default, and a value of the wrong type (`"false"` for false) never reaches the stack.
 * Every problem is a `PropError` of kind `setting`: `Invalid setting '<path>': <problem>. Fix: <fix>`.
 */
export interface CustomerPlaneConfig {
  readonly customerId: string;
  readonly account?: string;
  readonly region?: string;
  readonly images: { agentRuntime: string; natsServer: string; otelCollector: string };
  readonly maxAzs?: number;
  readonly availabilityZones?: string[];
  readonly vpcCidr?: string;
  readonly vpcEndpoints?: boolean;
  readonly s3PrefixListId?: string;
  readonly egress?: string;
  readonly existingVpc?: CustomerPlaneStackProps['existingVpc'];
  readonly database?: { instanceType?: string; multiAz?: boolean; deletionProtection?: boolean; allocatedStorageGiB?: number; backupRetentionDays?: number; port?: number };
  readonly cache?: { nodeType?: string; replicas?: number; port?: number; snapshotRetentionDays?: number };
  readonly retainData?: boolean;
  readonly shareLearning?: boolean;
  /** As `vendorHub`, with the CA inline (`caCertificatePem`) or in a file next to the configuration (`caCertificateFile`). */
  readonly vendorHub?: { host?: string; port?: number; caCertificatePem?: string; caCertificateFile?: string; endpointService?: string; endpointServiceRegion?: string; cidrs?: string[] };
  readonly logRetentionDays?: number;
  readonly createRdsOsMetricsLogGroup?: boolean;
  /** As `llm`: `{ "via": "vendor-proxy" }` or `{ "via": "own-keys" }`. */
  readonly llm?: LlmAccess;
  /** As `telemetry`: `{ "otlpEndpoint": "https://..." }`. */
  readonly telemetry?: { otlpEndpoint?: string };
  /** As `alarms`: `{ "email": "...", "topicArn": "..." }`. */
  readonly alarms?: { email?: string; topicArn?: string };
  /** As `capacity`: `{ "spot": true, "onDemandBase": 0 }`. */
  readonly capacity?: { spot?: boolean; onDemandBase?: number };
  /** As `schedule`: `{ "timeZone": "Europe/Berlin", "windows": [{ "days": ["MON"], "start": "08:00", "end": "18:00" }], "holidays": ["2026-12-25"] }`. */
  readonly schedule?: BusinessHours;
  /** As `scaling`: `{ "idleMinutes": 15, "requestFloor": 1 }`. */
  readonly scaling?: ScalingOptions;
}

/** The checks a schema cannot express: CIDRs, AZs of the configured region, settings that conflict. */
function checkSemantics(config: CustomerPlaneConfig): void {
  if (config.vpcCidr !== undefined) {
    const problem = cidrProblem(config.vpcCidr, 16, 22, true);
    if (problem) throw settingError('vpcCidr', problem, 'give a private network address such as 10.80.0.0/16 (a /16 to /22 in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, host bits zero)');
  }
  if (config.maxAzs !== undefined && config.availabilityZones !== undefined) {
    throw settingError('maxAzs, availabilityZones', 'both set', 'give either the number of AZs or their names');
  }
  const vpc = config.existingVpc;
  if (vpc) {
    const conflicts = (['maxAzs', 'availabilityZones', 'vpcCidr', 'egress'] as const).filter((k) => config[k] !== undefined);
    if (conflicts.length > 0) {
      throw settingError(conflicts.join(', '), 'set together with existingVpc', `remove ${conflicts.join(' and ')}: they shape a new VPC, and an existing VPC's layout is its owner's`);
    }
    const problem = cidrProblem(vpc.vpcCidrBlock, 16, 28, false);
    if (problem) throw settingError('existingVpc.vpcCidrBlock', problem, 'give the VPC\'s primary IPv4 CIDR as aws ec2 describe-vpcs shows it');
    for (const key of ['privateSubnetIds', 'privateSubnetRouteTableIds'] as const) {
      if (vpc[key].length !== vpc.availabilityZones.length) {
        throw settingError(`existingVpc.${key}`, `has ${vpc[key].length} items for ${vpc.availabilityZones.length} availabilityZones`, 'give one per AZ, in the order of existingVpc.availabilityZones');
      }
    }
  }
  for (const [at, azs] of [['availabilityZones', config.availabilityZones], ['existingVpc.availabilityZones', vpc?.availabilityZones]] as const) {
    if (!azs) continue;
    const regions = [...new Set(azs.map((az) => az.slice(0, -1)))];
    const expected = config.region ?? regions[0];
    const other = azs.findIndex((az) => az.slice(0, -1) !== expected);
    if (other >= 0) {
      throw settingError(`${at}[${other}]`, `"${azs[other]}" is an AZ of ${azs[other].slice(0, -1)}, ${config.region ? 'not of region' : 'but ' + at + '[0] of'} ${expected}`,
        `give AZs of ${expected}, such as ["${expected}a", "${expected}b"]`);
    }
  }
}

/**
 * A construct's `PropError` as the setting of the configuration file it came from (`logRetention` is
 * `logRetentionDays`, `vpc` and `vpcSubnets` are `existingVpc`): `Invalid setting '<path>': ...`.
 */
export function asSettingError(e: PropError): PropError {
  const names: Record<string, string> = { logRetention: 'logRetentionDays', vpc: 'existingVpc', vpcSubnets: 'existingVpc.privateSubnetIds' };
  const setting = e.prop.split(', ').map((p) => names[p] ?? p).join(', ');
  return settingError(setting, e.problem.replace(/'vpc'/g, 'existingVpc'), e.fix);
}

/** Parses a configuration object; every problem is a `PropError` naming the setting. */
export function customerPlaneStackProps(config: CustomerPlaneConfig, baseDir = process.cwd()): CustomerPlaneStackProps {
  const errors = configSchemaErrors(config);
  if (errors.length > 0) throw schemaError(errors);
  checkSemantics(config);
  const { account, region, database, egress, logRetentionDays, vendorHub, $schema, ...rest } = config as CustomerPlaneConfig & { $schema?: string };
  let hub = vendorHub;
  if (vendorHub?.caCertificateFile !== undefined) {
    if (vendorHub.caCertificatePem !== undefined) throw settingError('vendorHub.caCertificateFile', 'set together with caCertificatePem', 'give the CA once: inline or as a file');
    const { caCertificateFile, ...others } = vendorHub;
    const file = path.resolve(baseDir, caCertificateFile);
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw settingError('vendorHub.caCertificateFile', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of the vendor\'s CA certificate, relative to the configuration file');
    }
    hub = { ...others, caCertificatePem: pem };
  }
  let instanceType: ec2.InstanceType | undefined;
  if (database?.instanceType !== undefined) {
    instanceType = new ec2.InstanceType(database.instanceType.replace(/^db\./, ''));
  }
  return {
    ...rest,
    env: account || region ? { account, region } : undefined,
    egress: egress as EgressMode | undefined,
    database: database ? { ...database, instanceType } : undefined,
    logRetention: logRetentionDays,
    vendorHub: hub as CustomerPlaneStackProps['vendorHub'],
  };
}

/** Reads and parses a JSON configuration file. */
export function loadCustomerPlaneConfig(file: string): CustomerPlaneStackProps {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw settingError('config', `cannot read ${file}: ${(e as Error).message}`, 'give the path of a JSON file of customer-plane settings (see the configuration reference in the README)');
  }
  return customerPlaneStackProps(parsed as CustomerPlaneConfig, path.dirname(path.resolve(file)));
}
