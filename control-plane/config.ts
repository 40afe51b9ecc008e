import * as fs from 'fs';
import * as path from 'path';
import * as logs from 'aws-cdk-lib/aws-logs';
import { PropError } from '../lib/errors';
import { BundleRegistryProps, HubTlsProps, LlmProxyServiceProps, NatsHubProps, VendorServicesProps } from './props';
import { ControlPlaneStackProps } from './stack';

/**
 * The control plane's settings as the vendor keeps them (JSON), turned into stack props. Unknown keys are
 * refused so a typo never silently falls back to a default. Only public values belong here: the operator's
 * and system account's JWTs and public key, the CA certificate, the ARN of the secret that holds the hub's
 * certificate and key. Never a seed or a private key.
 */
export interface ControlPlaneConfig {
  readonly account?: string;
  readonly region?: string;
  readonly customerAccounts?: string[];
  readonly retainReleases?: boolean;
  readonly bundleRegistry?: BundleRegistryProps;
  readonly releaseSigners?: string[];
  readonly retainData?: boolean;
  /** Days, one of CloudWatch Logs' retention values (never infinite). */
  readonly logRetentionDays?: number;
  readonly hub?: HubConfig;
  readonly services?: VendorServicesProps;
}

/** As `NatsHubProps`, with the CA inline (`tls.caCertificatePem`) or in a file next to the configuration (`tls.caCertificateFile`). */
export interface HubConfig extends Omit<NatsHubProps, 'tls'> {
  readonly tls: Omit<HubTlsProps, 'caCertificatePem'> & { readonly caCertificatePem?: string; readonly caCertificateFile?: string };
}

/** Every key of `T`, checked by the compiler to be complete and exact. */
const keysOf = <T>() => <K extends readonly (keyof T)[]>(keys: K & ([keyof T] extends [K[number]] ? unknown : never)) => keys;

const KEYS: Record<string, readonly string[]> = {
  '': keysOf<ControlPlaneConfig>()(['account', 'region', 'customerAccounts', 'retainReleases', 'bundleRegistry', 'releaseSigners', 'retainData', 'logRetentionDays', 'hub', 'services'] as const),
  services: keysOf<VendorServicesProps>()(['image', 'ingestRefreshSeconds', 'llmProxy'] as const),
  'services.llmProxy': keysOf<LlmProxyServiceProps>()(['providers', 'egress', 'desiredCount'] as const),
  bundleRegistry: keysOf<BundleRegistryProps>()(['retention', 'accessLogBucket'] as const),
  'bundleRegistry.retention': keysOf<NonNullable<BundleRegistryProps['retention']>>()(['mode', 'days'] as const),
  hub: keysOf<HubConfig>()(['image', 'host', 'nodes', 'operatorJwt', 'systemAccountPublicKey', 'systemAccountJwt', 'tls', 'internetFacing', 'cpu', 'memoryMiB', 'vpcCidr', 'maxAzs', 'availabilityZones', 's3PrefixListId', 'accessLogBucket'] as const),
  'hub.tls': keysOf<HubConfig['tls']>()(['certificateSecretArn', 'certificateSecretKeyArn', 'caCertificatePem', 'caCertificateFile'] as const),
};

function checkKeys(value: unknown, at: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PropError(at || 'config', 'is not an object', 'give a JSON object');
  }
  for (const key of Object.keys(value)) {
    if (!KEYS[at].includes(key)) {
      throw new PropError(at ? `${at}.${key}` : key, 'is not a setting of the control plane', `remove it or use one of ${KEYS[at].join(', ')}`);
    }
  }
}

/** Parses a configuration object; every problem is a `PropError` naming the setting. */
export function controlPlaneStackProps(config: ControlPlaneConfig, baseDir = process.cwd()): ControlPlaneStackProps {
  checkKeys(config, '');
  checkKeys(config.bundleRegistry, 'bundleRegistry');
  checkKeys(config.bundleRegistry?.retention, 'bundleRegistry.retention');
  checkKeys(config.hub, 'hub');
  checkKeys(config.hub?.tls, 'hub.tls');
  checkKeys(config.services, 'services');
  checkKeys(config.services?.llmProxy, 'services.llmProxy');
  const { account, region, logRetentionDays, hub, ...rest } = config;
  if (account !== undefined && !/^\d{12}$/.test(account)) throw new PropError('account', `"${account}" is not an AWS account ID`, 'give the vendor\'s 12-digit account ID');
  if (logRetentionDays !== undefined && (!Object.values(logs.RetentionDays).includes(logRetentionDays) || logRetentionDays === logs.RetentionDays.INFINITE)) {
    throw new PropError('logRetentionDays', `${logRetentionDays} is not a CloudWatch Logs retention`, 'use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 days');
  }
  let hubProps: NatsHubProps | undefined;
  if (hub) {
    const { caCertificateFile, caCertificatePem, ...tls } = hub.tls ?? ({} as HubConfig['tls']);
    let pem = caCertificatePem;
    if (caCertificateFile !== undefined) {
      if (caCertificatePem !== undefined) throw new PropError('hub.tls.caCertificateFile', 'set together with caCertificatePem', 'give the CA once: inline or as a file');
      const file = path.resolve(baseDir, caCertificateFile);
      try {
        pem = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new PropError('hub.tls.caCertificateFile', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of the vendor\'s CA certificate, relative to the configuration file');
      }
    }
    hubProps = { ...hub, tls: { ...tls, caCertificatePem: pem as string } };
  }
  return {
    ...rest,
    env: account || region ? { account, region } : undefined,
    logRetention: logRetentionDays,
    hub: hubProps,
  };
}

/** Reads and parses a JSON configuration file. */
export function loadControlPlaneConfig(file: string): ControlPlaneStackProps {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`Cannot read the control-plane configuration ${file}: ${(e as Error).message}`);
  }
  return controlPlaneStackProps(parsed as ControlPlaneConfig, path.dirname(path.resolve(file)));
}
