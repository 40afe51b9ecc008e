import * as fs from 'fs';
import * as path from 'path';
import { settingError } from '../lib/errors';
import { controlPlaneConfigErrors, controlPlaneSchemaError } from './config-schema';
import { BundleRegistryProps, HubTlsProps, NatsHubProps, VendorServicesProps } from './props';
import { ControlPlaneStackProps } from './stack';
import type { DeploymentMode } from './ingest/settings';

/**
 * The control plane's settings as the vendor keeps them (JSON), turned into stack props. Validated against
 * `controlPlaneConfigSchema()` (ajv): unknown keys are refused, so a typo never silently falls back to a
 * default, and a value of the wrong type (`"false"` for false) never reaches the stack. Every problem is a
 * `PropError` of kind `setting`: `Invalid setting '<path>': <problem>. Fix: <fix>`.
 * Only public values belong here: the operator's and system account's JWTs and public key, the CA
 * certificate, the ARN of the secret that holds the hub's certificate and key. Never a seed or a private key.
 */
export interface ControlPlaneConfig {
  readonly account?: string;
  readonly region?: string;
  readonly customerAccounts?: string[];
  readonly retainReleases?: boolean;
  readonly bundleRegistry?: BundleRegistryProps;
  readonly releaseSigners?: string[];
  readonly retainData?: boolean;
  readonly deploymentMode?: DeploymentMode;
  /** Days, one of CloudWatch Logs' retention values (never infinite). */
  readonly logRetentionDays?: number;
  readonly hub?: HubConfig;
  readonly services?: VendorServicesProps;
}

/** As `NatsHubProps`, with the CA inline (`tls.caCertificatePem`) or in a file next to the configuration (`tls.caCertificateFile`). */
export interface HubConfig extends Omit<NatsHubProps, 'tls'> {
  readonly tls: Omit<HubTlsProps, 'caCertificatePem'> & { readonly caCertificatePem?: string; readonly caCertificateFile?: string };
}

/** Parses a configuration object; every problem is a `PropError` naming the setting. */
export function controlPlaneStackProps(config: ControlPlaneConfig, baseDir = process.cwd()): ControlPlaneStackProps {
  const errors = controlPlaneConfigErrors(config);
  if (errors.length > 0) throw controlPlaneSchemaError(errors);
  const { account, region, logRetentionDays, hub, $schema, ...rest } = config as ControlPlaneConfig & { $schema?: string };
  let hubProps: NatsHubProps | undefined;
  if (hub) {
    const { caCertificateFile, caCertificatePem, ...tls } = hub.tls ?? ({} as HubConfig['tls']);
    let pem = caCertificatePem;
    if (caCertificateFile !== undefined) {
      if (caCertificatePem !== undefined) throw settingError('hub.tls.caCertificateFile', 'set together with caCertificatePem', 'give the CA once: inline or as a file');
      const file = path.resolve(baseDir, caCertificateFile);
      try {
        pem = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw settingError('hub.tls.caCertificateFile', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of the vendor\'s CA certificate, relative to the configuration file');
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
    throw settingError('config', `cannot read ${file}: ${(e as Error).message}`, 'give the path of a JSON file of control-plane settings (see the control-plane settings in the README)');
  }
  return controlPlaneStackProps(parsed as ControlPlaneConfig, path.dirname(path.resolve(file)));
}
