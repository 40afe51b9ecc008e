import { X509Certificate } from 'crypto';
import { Token } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { decode } from '@nats-io/jwt';
import { BOUNDARY_CONTRACT, BoundaryContract } from '../lib/boundary-contract';
import { checkPropsWithSchema } from '../lib/config-schema';
import { validateContract } from '../lib/contract-input';
import { PropError } from '../lib/errors';
import { parseImageRef } from '../customer-plane/props';
import { controlPlaneConfigErrors } from './config-schema';
import type { LlmProviderProps, LlmProxyEgress } from './llm-proxy';
import type { DeploymentMode } from './ingest/settings';

/** How the hub's nodes prove who they are: their certificate and key, and the vendor's CA. */
export interface HubTlsProps {
  /**
   * Complete ARN (ending in `-` and 6 characters) of a Secrets Manager secret the vendor creates before
   * deploying, holding JSON `{"cert": "<PEM chain>", "key": "<PEM private key>"}`: the hub's certificate,
   * issued by the vendor's CA for `host` (what customers' leaf nodes verify) and for `*.host` (the nodes
   * verify each other's cluster routes by their names `node-N.host`). The key never enters the template:
   * ECS reads it at task start.
   */
  readonly certificateSecretArn: string;
  /**
   * The KMS key the certificate secret is encrypted with, when it is a customer-managed key (the nodes'
   * execution roles may then decrypt with it through Secrets Manager only).
   * @default - the secret uses the account's `aws/secretsmanager` key
   */
  readonly certificateSecretKeyArn?: string;
  /**
   * PEM of the vendor's CA certificate that issued the hub's certificate (public). Nodes accept cluster
   * routes only from holders of a certificate it issued; customers' leaf nodes pin the same CA.
   */
  readonly caCertificatePem: string;
}

/** The vendor's NATS hub: the cluster customers' leaf nodes connect to. */
export interface NatsHubProps {
  /**
   * The nats-server image, `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:<64 hex>` in the stack's
   * region, ARM64 (or a multi-architecture index with it), with `sh` (the `-alpine` variant: each node
   * writes its generated configuration to a file at start). Push it before the hub is first deployed.
   */
  readonly image: string;

  /**
   * The hub's DNS name as on its certificate (e.g. `hub.byoc.vendor.example`): what customers give as
   * `vendorHub.host`. In the hub's VPC it is also the private namespace the nodes are found by
   * (`node-0.<host>`, ...).
   */
  readonly host: string;

  /**
   * Number of nats-server nodes, each its own single-task ECS service with its own storage: 3, 5 or 7
   * (JetStream's replicated state needs a majority, and an even count tolerates no more failures than the
   * odd count below it).
   * @default 3
   */
  readonly nodes?: number;

  /**
   * The operator's JWT (public, `eyJ...`): the nodes trust accounts and users it signed, directly or
   * through one of its signing keys. Never a seed.
   */
  readonly operatorJwt: string;

  /** Public key (`A...`, 56 characters) of the operator's system account. */
  readonly systemAccountPublicKey: string;

  /**
   * The system account's JWT (public), preloaded into each node's resolver so the vendor's system user can
   * connect to a new hub and push customers' accounts.
   * @default - none: the resolver folder on each node's storage must already hold it
   */
  readonly systemAccountJwt?: string;

  /** The nodes' certificate (a secret) and the vendor's CA. */
  readonly tls: HubTlsProps;

  /**
   * Also offer the leaf-node port on an internet-facing Network Load Balancer with one Elastic IP per AZ
   * (for customers without PrivateLink, who then allow exactly those addresses). Its security group admits
   * 0.0.0.0/0 on the leaf-node port; TLS and the operator's JWTs are then all that stands in the way. An
   * account enforcing Control Tower's CT.EC2.PR.3 (no 0.0.0.0/0 but on ports 80 and 443) refuses it.
   * @default false - PrivateLink only
   */
  readonly internetFacing?: boolean;

  /**
   * Fargate CPU units of each node (1024 = 1 vCPU): 512, 1024, 2048 or 4096.
   * @default 1024
   */
  readonly cpu?: number;

  /**
   * Memory of each node, MiB, valid for `cpu` (512: 1024 to 4096; 1024: 2048 to 8192; 2048: 4096 to 16384;
   * 4096: 8192 to 30720; in steps of 1024).
   * @default 2048
   */
  readonly memoryMiB?: number;

  /**
   * IPv4 CIDR of the hub's VPC, /16 to /22.
   * @default 10.90.0.0/16
   */
  readonly vpcCidr?: string;

  /**
   * AZs of the hub's VPC (2 to 6). Nodes are spread over them in turn; customers' PrivateLink endpoints can
   * only sit in AZs the hub covers. More than 2 need a stack with an explicit region. Conflicts with
   * `availabilityZones`.
   * @default 3 with an explicit region, else 2
   */
  readonly maxAzs?: number;

  /**
   * The AZs by name (2 to 6, e.g. `['eu-west-1a', 'eu-west-1b', 'eu-west-1c']`): synthesis then needs no
   * AZ lookup. Conflicts with `maxAzs`.
   * @default - the first `maxAzs` AZs of the region
   */
  readonly availabilityZones?: string[];

  /**
   * The region's S3 managed prefix list (`pl-...`): nodes send HTTPS outside the VPC only to it (image
   * layers through the S3 gateway endpoint).
   * @default - looked up at deploy time by the control plane's deploy-time function (`Custom::S3PrefixList`, in
   *   the hub's VPC, through its EC2 endpoint); giving it saves the lookup
   */
  readonly s3PrefixListId?: string;

  /**
   * An existing S3 bucket (name) the load balancers write access logs to, under the prefix `byoc-hub/`: for
   * example the organization's log archive. Its bucket policy must let the ELB log delivery service
   * (`delivery.logs.amazonaws.com`) put objects there. Network Load Balancers log only TLS listeners, and the
   * hub's listener passes TCP through, so the log stays empty: give a bucket where Control Tower's
   * CT.ELASTICLOADBALANCING.PR.6 (access logging activated) is enforced.
   * @default - no access logs; the finding is acknowledged (connections are in the VPC flow logs and nats-server's log)
   */
  readonly accessLogBucket?: string;
}

/** Object Lock modes of the bundle registry: who can delete or shorten the lock of a published bundle. */
export const OBJECT_LOCK_MODES = ['GOVERNANCE', 'COMPLIANCE'] as const;

/** How long every object version put in the bundle registry is locked (S3 Object Lock default retention). */
export interface BundleRetention {
  /**
   * `GOVERNANCE`: nobody can overwrite or delete a locked version, except a principal the vendor's IAM allows
   * `s3:BypassGovernanceRetention` who asks for the bypass explicitly. `COMPLIANCE`: nobody, not even the
   * account's root user, until the retention ends, and it cannot be shortened or turned off.
   * @default 'GOVERNANCE'
   */
  readonly mode?: 'GOVERNANCE' | 'COMPLIANCE';
  /**
   * Days each version stays locked, 1 to 36500. At least as long as a release is valid (`byoc sign
   * --valid-days`, 90 by default) keeps every bundle a customer may still deploy in place.
   * @default 365
   */
  readonly days?: number;
}

/** The S3 bucket signed customer-plane bundles are published to (`byoc release publish`). */
export interface BundleRegistryProps {
  /**
   * Object Lock default retention of every bundle file.
   * @default - governance mode, 365 days
   */
  readonly retention?: BundleRetention;
  /**
   * An existing S3 bucket (name) for the registry's server access logs, under the prefix
   * `byoc-bundle-registry/`: for example the organization's log archive. Its bucket policy must let the S3
   * logging service (`logging.s3.amazonaws.com`) put objects there, and it must be encrypted with S3-managed
   * keys (what S3 delivers server access logs to). Give it where Control Tower's CT.S3.PR.10 (SSE-KMS on
   * every bucket) is enforced.
   * @default - a log bucket the control plane creates (versioned, Object Lock on without a default
   *   retention, SSE-S3, logs expire after `logRetention`); its CT.S3.PR.10 finding is acknowledged
   */
  readonly accessLogBucket?: string;
}

/** The LLM proxy's settings within `services` (see `LlmProxyProps`). */
export interface LlmProxyServiceProps {
  /** The upstream providers in failover order (their API keys go in the secrets the proxy creates, `byoc/llm-proxy/providers/<name>`). */
  readonly providers: readonly LlmProviderProps[];
  /** How the proxy reaches the providers: its own subnets routed out through NAT gateways, HTTPS only. */
  readonly egress: LlmProxyEgress;
  /** Proxy tasks. @default 2 */
  readonly desiredCount?: number;
}

/** The vendor's services beside the hub, run from the vendor services image (`control-plane/Dockerfile`). */
export interface VendorServicesProps {
  /**
   * The vendor services image, `ACCOUNT.dkr.ecr.REGION.amazonaws.com/byoc/vendor-services@sha256:<64 hex>` in the
   * stack's region, ARM64: the ingest service, the learning-pool publisher and the LLM proxy. Push it to the
   * control plane's `byoc/vendor-services` repository (created without `services`) before setting this.
   */
  readonly image: string;
  /**
   * Seconds between two reads of the customer registry by ingest (a new customer is consumed, a revoked one
   * dropped, within this time).
   * @default 60
   */
  readonly ingestRefreshSeconds?: number;
  /**
   * The LLM proxy for customers who choose it (`llm: { via: 'vendor-proxy' }` in their plane): prompts leave
   * through it to the providers; it stores and logs none of them.
   * @default - no LLM proxy
   */
  readonly llmProxy?: LlmProxyServiceProps;
}

/** The vendor's control plane. */
export interface ControlPlaneProps {
  /**
   * The registered customers' AWS account IDs (12 digits each). Exactly these may pull the release images
   * (ECR repository policies, image key through ECR only) and connect to the hub's endpoint service.
   * @default - none
   */
  readonly customerAccounts?: readonly string[];

  /**
   * The NATS hub: VPC, cluster, Network Load Balancer and PrivateLink endpoint service.
   * @default - no hub: only the release infrastructure (image repositories and keys), for a first deploy
   *   before the nats-server image is pushed
   */
  readonly hub?: NatsHubProps;

  /**
   * The vendor's services beside the hub (needs `hub`): ingest of every outbound kind into DynamoDB, the
   * learning pool offered back to every customer, and optionally the LLM proxy.
   * @default - none: the hub only
   */
  readonly services?: VendorServicesProps;

  /**
   * Keep the image repositories, the bundle registry (and its log bucket) and the image, signing and
   * registry keys when the stack is deleted. Off, CloudFormation deletes the registry only while it is
   * empty: locked bundle versions stay until their retention ends.
   * @default true
   */
  readonly retainReleases?: boolean;

  /**
   * The bundle registry: an S3 bucket with versioning and Object Lock, encrypted with its own key.
   * @default - governance-mode retention of 365 days, access logs in a bucket of the control plane
   */
  readonly bundleRegistry?: BundleRegistryProps;

  /**
   * IAM principals of the vendor's account (role or user ARNs) that may assume the release signer role,
   * the only identity allowed to sign bundles with the signing key (`kms:Sign`) and publish them to the
   * registry. Typically the release pipeline's role. Each must exist before the control plane is deployed.
   * @default - principals of the vendor's account whose IAM policies allow them `sts:AssumeRole` on it,
   *   and only with MFA
   */
  readonly releaseSigners?: readonly string[];

  /**
   * Keep the hub's state when the stack is deleted: its file system (JetStream and account JWTs), key,
   * secrets and logs; the load balancers get deletion protection.
   * @default true
   */
  readonly retainData?: boolean;

  /**
   * How the vendor runs this control plane, which sets what the ingest tables keep (`RETENTION` in
   * `ingest/settings.ts`): `byoc` keeps everything (the vendor's own policies: log retention, backups);
   * `trial`: items are marked deleted at 14 days and deleted at 22; `starter`: a 90-day rolling window, the
   * rejection records (audit metadata) kept, 30 days of grace after a cancellation.
   * @default 'byoc'
   */
  readonly deploymentMode?: DeploymentMode;

  /**
   * The boundary contract the vendor's ingest checks every crossing against, and the stack records in its template
   * metadata (`Byoc::BoundaryContract`). It must be the contract the customers' planes were built with (their
   * `contract` prop) and their hub accounts issued from (`byoc customer add --contract`). Checked at synth.
   * @default - the kit's own, `BOUNDARY_CONTRACT`
   */
  readonly contract?: BoundaryContract;

  /**
   * Retention of every log group of the control plane.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/** Hub props with every default applied. */
export interface ResolvedHubProps extends Required<Omit<NatsHubProps, 'systemAccountJwt' | 'availabilityZones' | 's3PrefixListId' | 'maxAzs' | 'accessLogBucket'>> {
  readonly systemAccountJwt?: string;
  readonly accessLogBucket?: string;
  readonly availabilityZones?: string[];
  readonly s3PrefixListId?: string;
  readonly maxAzs: number;
}

/** Bundle registry props with every default applied. */
export interface ResolvedBundleRegistryProps {
  readonly retention: Required<BundleRetention>;
  readonly accessLogBucket?: string;
}

/** Control-plane props with every default applied. */
export interface ResolvedControlPlaneProps {
  readonly customerAccounts: readonly string[];
  readonly hub?: ResolvedHubProps;
  readonly services?: VendorServicesProps;
  readonly retainReleases: boolean;
  readonly bundleRegistry: ResolvedBundleRegistryProps;
  /** Empty: the vendor account's principals, with MFA. */
  readonly releaseSigners: readonly string[];
  readonly retainData: boolean;
  readonly deploymentMode: DeploymentMode;
  readonly contract: BoundaryContract;
  readonly logRetention: logs.RetentionDays;
}

/** Node counts the hub accepts. */
export const HUB_NODE_COUNTS = [3, 5, 7] as const;

/** Fargate memory (MiB) each CPU size accepts. */
const FARGATE_MEMORY: Record<number, [number, number, number]> = {
  512: [1024, 4096, 1024],
  1024: [2048, 8192, 1024],
  2048: [4096, 16384, 1024],
  4096: [8192, 30720, 1024],
};

const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):key\/[0-9a-f-]{36}$/;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** An nkey seed (`S` + key type + 56 base32 characters): never accepted where a public value belongs. */
const SEED = /S[OAUNC][A-Z2-7]{56}/;

/** The section of the props a hub prop lives in, for error messages. */
const at = (name: string) => `hub.${name}`;

function checkNoSeed(prop: string, value: string): void {
  if (SEED.test(value)) {
    throw new PropError(prop, 'holds an nkey seed', 'give the public JWT or public key only: seeds never go in the template (the operator signing seed lives in the secret the control plane creates for it)');
  }
}

function claimsOf(prop: string, jwt: string, type: string): { sub: string; iss: string; nats: Record<string, unknown> } {
  checkNoSeed(prop, jwt);
  let claims: { sub: string; iss: string; nats: Record<string, unknown> };
  try {
    claims = decode(jwt) as typeof claims;
  } catch (e) {
    throw new PropError(prop, `is not a JWT (${(e as Error).message})`, `give the ${type} JWT (eyJ...), as nsc or the registration tool wrote it`);
  }
  if (claims?.nats?.type !== type) {
    throw new PropError(prop, `is a JWT of type "${String(claims?.nats?.type)}"`, `give the ${type} JWT`);
  }
  return claims;
}

/** Validates a DNS name a certificate is issued for (not an IP address, not a wildcard). */
function checkHost(prop: string, host: string): void {
  const labels = (host ?? '').split('.');
  // node-N.<host> must stay a valid name too.
  if (host !== host?.toLowerCase() || labels.length < 2 || labels.some((l) => !DNS_LABEL.test(l)) || /^\d+$/.test(labels[labels.length - 1]) || host.length > 240) {
    throw new PropError(prop, `"${host}" is not a DNS name`, 'give the lower-case DNS name the hub\'s certificate is issued for, such as hub.byoc.vendor.example (not an IP address)');
  }
}

function checkInt(prop: string, value: number, allowed: (v: number) => boolean, fix: string): void {
  if (Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || !allowed(value)) throw new PropError(prop, `${value} is not allowed`, fix);
}

/** An IAM role or user ARN, with its account. */
const IAM_PRINCIPAL_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):(?:role|user)\/(?:[\x21-\x7e]*\/)?[\w+=,.@-]{1,64}$/;

function resolveBundleRegistry(registry: BundleRegistryProps = {}): ResolvedBundleRegistryProps {
  return { retention: { mode: registry.retention?.mode ?? 'GOVERNANCE', days: registry.retention?.days ?? 365 }, accessLogBucket: registry.accessLogBucket };
}

/** Validates the release signers (a list, each once: the schema's): IAM role or user ARNs, all of one account. */
function checkReleaseSigners(signers: readonly string[]): void {
  const accounts = new Set<string>();
  for (const [i, arn] of signers.entries()) {
    if (typeof arn === 'string' && Token.isUnresolved(arn)) continue;
    const m = typeof arn === 'string' ? IAM_PRINCIPAL_ARN.exec(arn) : null;
    if (!m) {
      throw new PropError(`releaseSigners[${i}]`, `"${arn}" is not an IAM role or user ARN`, 'give arn:aws:iam::ACCOUNT:role/NAME or arn:aws:iam::ACCOUNT:user/NAME (not an account ID, an assumed-role session or a wildcard)');
    }
    accounts.add(m[1]);
  }
  if (accounts.size > 1) {
    throw new PropError('releaseSigners', `names principals of several accounts (${[...accounts].sort().join(', ')})`, 'give principals of the vendor\'s account only: releases are signed where the signing key is');
  }
}

/** The account the release signers belong to, when they name one. */
export function releaseSignerAccount(signers: readonly string[]): string | undefined {
  for (const arn of signers) {
    const m = IAM_PRINCIPAL_ARN.exec(arn);
    if (m) return m[1];
  }
  return undefined;
}

function resolveHub(hub: NatsHubProps): ResolvedHubProps {
  parseImageRef(at('image'), hub.image);
  checkHost(at('host'), hub.host);

  const nodes = hub.nodes ?? 3;
  const operator = claimsOf(at('operatorJwt'), hub.operatorJwt, 'operator');
  if (typeof hub.systemAccountPublicKey !== 'string' || !/^A[A-Z2-7]{55}$/.test(hub.systemAccountPublicKey)) {
    checkNoSeed(at('systemAccountPublicKey'), String(hub.systemAccountPublicKey));
    throw new PropError(at('systemAccountPublicKey'), `"${hub.systemAccountPublicKey}" is not an account public key`, 'give the system account\'s public key (A..., 56 characters)');
  }
  const declared = operator.nats.system_account;
  if (declared !== undefined && declared !== hub.systemAccountPublicKey) {
    throw new PropError(at('systemAccountPublicKey'), `is ${hub.systemAccountPublicKey}, but the operator JWT names ${String(declared)} as its system account`, 'give the system account of this operator');
  }
  if (hub.systemAccountJwt !== undefined) {
    const sys = claimsOf(at('systemAccountJwt'), hub.systemAccountJwt, 'account');
    if (sys.sub !== hub.systemAccountPublicKey) {
      throw new PropError(at('systemAccountJwt'), `is the JWT of account ${sys.sub}, not of ${hub.systemAccountPublicKey}`, 'give the system account\'s own JWT');
    }
    const signers = [operator.sub, ...((operator.nats.signing_keys as string[] | undefined) ?? [])];
    if (!signers.includes(sys.iss)) {
      throw new PropError(at('systemAccountJwt'), `is signed by ${sys.iss}, which is neither the operator nor one of its signing keys`, 'give the system account JWT this operator signed');
    }
  }

  const { certificateSecretArn, certificateSecretKeyArn, caCertificatePem } = hub.tls;
  if (!Token.isUnresolved(certificateSecretArn) && !SECRET_ARN.test(certificateSecretArn ?? '')) {
    throw new PropError(at('tls.certificateSecretArn'), `"${certificateSecretArn}" is not the complete ARN of a secret`,
      'create the secret first (JSON with "cert" and "key") and give its complete ARN, ending in -XXXXXX, from aws secretsmanager describe-secret');
  }
  if (certificateSecretKeyArn !== undefined && !Token.isUnresolved(certificateSecretKeyArn) && !KEY_ARN.test(certificateSecretKeyArn)) {
    throw new PropError(at('tls.certificateSecretKeyArn'), `"${certificateSecretKeyArn}" is not a KMS key ARN`, 'give arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (not an alias), or leave it out for aws/secretsmanager');
  }
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caCertificatePem ?? '');
  } catch {
    throw new PropError(at('tls.caCertificatePem'), 'is not a PEM certificate', 'give the PEM of the vendor\'s CA certificate (-----BEGIN CERTIFICATE-----)');
  }
  if (!ca.ca) throw new PropError(at('tls.caCertificatePem'), `"${ca.subject}" is not a CA certificate`, 'give the CA that issued the hub\'s certificate, not the hub\'s certificate itself');

  const cpu = hub.cpu ?? 1024;
  const memoryMiB = hub.memoryMiB ?? Math.max(2048, FARGATE_MEMORY[cpu][0]);
  const [min, max, step] = FARGATE_MEMORY[cpu];
  checkInt(at('memoryMiB'), memoryMiB, (m) => m >= min && m <= max && m % step === 0, `with cpu ${cpu}, use ${min} to ${max} MiB in steps of ${step}`);

  const vpcCidr = hub.vpcCidr ?? '10.90.0.0/16';
  const cidr = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(vpcCidr);
  if (!cidr || cidr.slice(1, 5).some((o) => Number(o) > 255) || Number(cidr[5]) < 16 || Number(cidr[5]) > 22) {
    throw new PropError(at('vpcCidr'), `"${vpcCidr}" is not an IPv4 CIDR from /16 to /22`, 'give a private range such as 10.90.0.0/16');
  }
  if (hub.availabilityZones !== undefined && hub.maxAzs !== undefined) {
    throw new PropError(`${at('maxAzs')}, ${at('availabilityZones')}`, 'both set', 'give either the number of AZs or their names');
  }
  const maxAzs = hub.availabilityZones?.length ?? hub.maxAzs ?? 3;
  return {
    image: hub.image,
    host: hub.host,
    nodes,
    operatorJwt: hub.operatorJwt,
    systemAccountPublicKey: hub.systemAccountPublicKey,
    systemAccountJwt: hub.systemAccountJwt,
    tls: { certificateSecretArn, certificateSecretKeyArn, caCertificatePem },
    internetFacing: hub.internetFacing ?? false,
    cpu,
    memoryMiB,
    vpcCidr,
    maxAzs,
    availabilityZones: hub.availabilityZones,
    s3PrefixListId: hub.s3PrefixListId,
    accessLogBucket: hub.accessLogBucket,
  };
}

/** The vendor services' settings: beside a hub, the image pinned by digest. */
function checkServices(services: VendorServicesProps, hub: boolean): VendorServicesProps {
  if (!hub) throw new PropError('services', 'set without hub: ingest and the LLM proxy run beside the hub, in its VPC', 'add the hub settings, or remove services');
  if (!Token.isUnresolved(services.image)) parseImageRef('services.image', services.image);
  return services;
}

/**
 * The props against the configuration file's schema (`controlPlaneConfigSchema`), whole: types, ranges, forms,
 * enums and required values, each failing with the schema node's own problem and fix, as the file's user gets
 * them (`checkPropsWithSchema`; tokens are left out). `logRetention`, a `logs.RetentionDays` (days), is the file's
 * `logRetentionDays`; `contract` is not a setting of the file (`validateContract` checks it).
 */
function checkSchema(props: ControlPlaneProps): void {
  checkPropsWithSchema(controlPlaneConfigErrors, {
    customerAccounts: props.customerAccounts, retainReleases: props.retainReleases, bundleRegistry: props.bundleRegistry, releaseSigners: props.releaseSigners,
    retainData: props.retainData, deploymentMode: props.deploymentMode, logRetentionDays: props.logRetention, hub: props.hub, services: props.services,
  }, 'control plane', {
    rename: { logRetentionDays: 'logRetention' },
    fixes: { logRetentionDays: 'use a logs.RetentionDays value other than INFINITE, such as ONE_YEAR' },
  });
}

/** Validates the props and applies the defaults. Every error names the prop and the fix. */
export function resolveControlPlaneProps(props: ControlPlaneProps): ResolvedControlPlaneProps {
  checkSchema(props);
  const customerAccounts = props.customerAccounts ?? [];
  if (props.releaseSigners !== undefined) checkReleaseSigners(props.releaseSigners);
  return {
    customerAccounts: [...customerAccounts],
    hub: props.hub ? resolveHub(props.hub) : undefined,
    services: props.services ? checkServices(props.services, props.hub !== undefined) : undefined,
    retainReleases: props.retainReleases ?? true,
    bundleRegistry: resolveBundleRegistry(props.bundleRegistry),
    releaseSigners: [...(props.releaseSigners ?? [])],
    retainData: props.retainData ?? true,
    deploymentMode: props.deploymentMode ?? 'byoc',
    contract: props.contract === undefined ? BOUNDARY_CONTRACT : validateContract(props.contract, 'contract'),
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
  };
}
