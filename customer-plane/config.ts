import * as fs from 'fs';
import * as path from 'path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { PropError } from '../lib/errors';
import { EgressMode, LlmAccess } from './props';
import { CustomerPlaneStackProps } from './stack';

/**
 * The customer plane's settings as the vendor keeps them per customer (JSON), turned into stack props.
 * Unknown keys are refused so a typo never silently falls back to a default.
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
}

const KEYS: Record<string, readonly string[]> = {
  '': ['customerId', 'account', 'region', 'images', 'maxAzs', 'availabilityZones', 'vpcCidr', 'vpcEndpoints', 'egress', 'existingVpc', 'database', 'cache', 'retainData', 'logRetentionDays', 's3PrefixListId', 'shareLearning', 'vendorHub', 'createRdsOsMetricsLogGroup', 'llm'],
  images: ['agentRuntime', 'natsServer', 'otelCollector'],
  existingVpc: ['vpcId', 'vpcCidrBlock', 'availabilityZones', 'privateSubnetIds', 'privateSubnetRouteTableIds'],
  database: ['instanceType', 'multiAz', 'deletionProtection', 'allocatedStorageGiB', 'backupRetentionDays', 'port'],
  cache: ['nodeType', 'replicas', 'port', 'snapshotRetentionDays'],
  vendorHub: ['host', 'port', 'caCertificatePem', 'caCertificateFile', 'endpointService', 'endpointServiceRegion', 'cidrs'],
  llm: ['via'],
};

function checkKeys(value: unknown, at: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PropError(at || 'config', 'is not an object', 'give a JSON object');
  }
  for (const key of Object.keys(value)) {
    const allowed = KEYS[at];
    if (!allowed.includes(key)) {
      throw new PropError(at ? `${at}.${key}` : key, 'is not a setting of the customer plane', `remove it or use one of ${allowed.join(', ')}`);
    }
  }
}

/** Parses a configuration object; every problem is a `PropError` naming the setting. */
export function customerPlaneStackProps(config: CustomerPlaneConfig, baseDir = process.cwd()): CustomerPlaneStackProps {
  checkKeys(config, '');
  for (const section of ['images', 'existingVpc', 'database', 'cache', 'vendorHub', 'llm']) checkKeys((config as unknown as Record<string, unknown>)[section], section);
  const { account, region, database, egress, logRetentionDays, vendorHub, ...rest } = config;
  let hub = vendorHub;
  if (vendorHub?.caCertificateFile !== undefined) {
    if (vendorHub.caCertificatePem !== undefined) throw new PropError('vendorHub.caCertificateFile', 'set together with caCertificatePem', 'give the CA once: inline or as a file');
    const { caCertificateFile, ...others } = vendorHub;
    const file = path.resolve(baseDir, caCertificateFile);
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new PropError('vendorHub.caCertificateFile', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of the vendor\'s CA certificate, relative to the configuration file');
    }
    hub = { ...others, caCertificatePem: pem };
  }
  if (account !== undefined && !/^\d{12}$/.test(account)) throw new PropError('account', `"${account}" is not an AWS account ID`, 'give the 12-digit account ID');
  if (egress !== undefined && !Object.values(EgressMode).includes(egress as EgressMode)) {
    throw new PropError('egress', `"${egress}" is not an egress mode`, `use ${Object.values(EgressMode).join(' or ')}`);
  }
  let instanceType: ec2.InstanceType | undefined;
  if (database?.instanceType !== undefined) {
    const m = /^db\.([a-z0-9]+\.[a-z0-9]+)$/.exec(database.instanceType);
    if (!m) throw new PropError('database.instanceType', `"${database.instanceType}" is not an RDS instance type`, 'give a type such as db.t4g.medium');
    instanceType = new ec2.InstanceType(m[1]);
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
    throw new Error(`Cannot read the customer-plane configuration ${file}: ${(e as Error).message}`);
  }
  return customerPlaneStackProps(parsed as CustomerPlaneConfig, path.dirname(path.resolve(file)));
}
