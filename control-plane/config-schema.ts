import { ErrorObject } from 'ajv';
import {
  AWS_REGIONS, AZ_PATTERN, bool, BUCKET_NAME_PATTERN, choice, int, list, LOG_RETENTION_DAYS, obj, PREFIX_LIST_PATTERN, PropNames, SettingSchema, schemaValidator,
  settingSchemaError, str,
} from '../lib/config-schema';
import { PropError } from '../lib/errors';
import { DEPLOYMENT_MODES } from './ingest/settings';
import { HUB_NODE_COUNTS, OBJECT_LOCK_MODES } from './props';

/**
 * The JSON Schema (draft-07) of the control plane's configuration file (the vendor's): the one definition the
 * loader validates with (`control-plane/config.ts`, through ajv) and editors can use (`"$schema"` in the
 * file; published as `config/control-plane.schema.json`). Each setting carries `fix`, an annotation: what to
 * write instead, quoted in the error a bad value gets. It says the keys, the types of their values, their ranges
 * and simple forms; the construct props are checked against it too (`resolveControlPlaneProps`, through
 * `checkPropsWithSchema`). What a schema cannot say (reading the CA file, JWT claims, seeds where public values
 * belong, ARNs of one account, Fargate sizes valid together, the image's region) the loader and
 * `resolveControlPlaneProps` check after it.
 */

const imageFix = 'give ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:<64 hex digits> (pinned by digest)';
const bucketFix = 'give the name of an existing S3 bucket (not its ARN or an s3:// URL)';
const bucket = (description: string, fix = bucketFix) => str(description, BUCKET_NAME_PATTERN, fix, 'an S3 bucket name');
const FARGATE_CPUS = [512, 1024, 2048, 4096];

let cached: SettingSchema | undefined;

/** The schema (built on first use). */
export function controlPlaneConfigSchema(): SettingSchema {
  cached ??= {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'BYOC control plane configuration',
  ...obj('The control plane\'s settings, as the vendor keeps them. Only public values: never a seed or a private key.', {
    $schema: str('The JSON Schema of this file, for editors.', undefined, 'give the path or URL of this schema, or remove it'),
    account: str('The vendor\'s AWS account ID.', '^\\d{12}$', 'give the vendor\'s 12-digit account ID, as a string'),
    region: choice('string', AWS_REGIONS, 'The vendor\'s AWS region.', 'give an AWS region such as eu-west-1', 'an AWS region'),
    customerAccounts: list('Registered customers\' account IDs: endpoint service principals and image pullers.',
      str('A customer\'s AWS account ID.', '^\\d{12}$', 'give the customer\'s 12-digit account ID, as a string (leading zeros matter)', 'an AWS account ID'), 0, undefined,
      'give a list of 12-digit AWS account IDs, each once'),
    retainReleases: bool('Keep the repositories, the bundle registry and the keys on cdk destroy.'),
    bundleRegistry: obj('The bundle registry (S3, Object Lock).', {
      retention: obj('Object Lock default retention of every bundle file.', {
        mode: choice('string', OBJECT_LOCK_MODES, 'GOVERNANCE or COMPLIANCE.',
          'use GOVERNANCE (a principal allowed s3:BypassGovernanceRetention may still delete a bundle) or COMPLIANCE (nobody may, until the retention ends)', 'an Object Lock mode'),
        days: int('Days each version stays locked.', 1, 36500, 'give whole days from 1 to 36500, at least as long as a release is valid (byoc sign --valid-days, 90 by default)'),
      }, [], 'give { "mode": "GOVERNANCE" | "COMPLIANCE", "days": N }'),
      accessLogBucket: bucket('An existing SSE-S3 bucket for the registry\'s access logs.', 'give the name of the bucket (not its ARN or an s3:// URL), or leave it out for a log bucket of the control plane'),
    }, [], 'give { "retention": { "mode", "days" }, "accessLogBucket" }, or leave bundleRegistry out'),
    releaseSigners: list('IAM role or user ARNs of the vendor account that may assume the release signer role.',
      str('An IAM role or user ARN.', undefined, 'give arn:aws:iam::ACCOUNT:role/NAME or arn:aws:iam::ACCOUNT:user/NAME'), 1, undefined,
      'give the ARNs of the IAM roles or users of the vendor\'s account that sign releases (with none, nobody could sign one), each once, or leave it out to let the vendor account\'s principals with MFA assume the signer role'),
    retainData: bool('Keep the hub\'s data, keys, secrets and logs when the stack is deleted.'),
    deploymentMode: choice('string', DEPLOYMENT_MODES, 'What the ingest tables keep: byoc (everything), trial (14 days, deleted at 22) or starter (90-day window, 30-day grace).',
      `use one of ${DEPLOYMENT_MODES.join(', ')} (byoc keeps the vendor's own policies)`, 'a deployment mode'),
    logRetentionDays: choice('integer', LOG_RETENTION_DAYS, 'Retention of every log group, days (never infinite).', `use one of CloudWatch Logs' retention periods: ${LOG_RETENTION_DAYS.join(', ')}`, 'a finite CloudWatch Logs retention'),
    hub: obj('The NATS hub customers\' leaf nodes connect to.', {
      image: str('The nats-server image (-alpine), pinned by digest, ARM64.', undefined, imageFix),
      host: str('The hub\'s DNS name, as on its certificate.', undefined, 'give the lower-case DNS name the hub\'s certificate is issued for, such as hub.byoc.vendor.example'),
      nodes: { type: 'integer', enum: [...HUB_NODE_COUNTS], description: 'Number of nats-server nodes.', fix: `use ${HUB_NODE_COUNTS.join(', ')} nodes: at least 3 so JetStream keeps a majority with a node down, and an odd number` },
      operatorJwt: str('The operator\'s JWT (public, eyJ...).', undefined, 'give the operator JWT (eyJ...), as nsc wrote it; never a seed'),
      systemAccountPublicKey: str('Public key of the operator\'s system account.', undefined, 'give the system account\'s public key (A..., 56 characters)'),
      systemAccountJwt: str('The system account\'s JWT (public).', undefined, 'give the system account JWT (eyJ...) the operator signed'),
      tls: obj('The nodes\' certificate (a secret) and the vendor\'s CA.', {
        certificateSecretArn: str('Complete ARN of the secret holding {"cert", "key"}.', undefined, 'give the complete ARN of the secret (ending in - and 6 characters)'),
        certificateSecretKeyArn: str('The secret\'s customer-managed KMS key.', undefined, 'give arn:aws:kms:REGION:ACCOUNT:key/KEY-ID, or leave it out for aws/secretsmanager'),
        caCertificatePem: str('The vendor\'s CA certificate, PEM.', undefined, 'give the PEM of the CA that issued the hub\'s certificate'),
        caCertificateFile: str('The vendor\'s CA certificate in a file, relative to this file.', undefined, 'give the path of the vendor\'s CA certificate, relative to the configuration file'),
      }, ['certificateSecretArn'], 'give { "certificateSecretArn", "caCertificateFile" } (or caCertificatePem)'),
      internetFacing: bool('Also an internet-facing load balancer.'),
      cpu: { type: 'integer', enum: FARGATE_CPUS, description: 'Fargate CPU units of each node.', fix: `use one of ${FARGATE_CPUS.join(', ')}` },
      memoryMiB: int('Memory of each node, MiB, valid for cpu.', 1024, 30720, 'use 1024 to 30720 MiB in steps of 1024, valid for cpu'),
      vpcCidr: str('IPv4 CIDR of the hub\'s VPC, /16 to /22.', undefined, 'give a private range such as 10.90.0.0/16'),
      maxAzs: int('AZs of the hub\'s VPC; conflicts with availabilityZones.', 2, 6),
      availabilityZones: list('The hub\'s AZs by name; conflicts with maxAzs.', str('An AZ name.', AZ_PATTERN, 'give AZ names such as "eu-west-1a"', 'an AZ name'), 2, 6,
        'give 2 to 6 distinct AZ names such as ["eu-west-1a", "eu-west-1b", "eu-west-1c"]'),
      s3PrefixListId: str('The region\'s S3 managed prefix list.', PREFIX_LIST_PATTERN, 'give the pl-... ID of com.amazonaws.REGION.s3 from aws ec2 describe-managed-prefix-lists', 'a prefix list ID'),
      accessLogBucket: bucket('An existing bucket for the load balancers\' access logs.'),
    }, ['image', 'host', 'operatorJwt', 'systemAccountPublicKey', 'tls'], 'give the hub: { image, host, operatorJwt, systemAccountPublicKey, tls }'),
    services: obj('The vendor services (ingest, learning pool, LLM proxy), beside the hub.', {
      image: str('The vendor services image (control-plane/Dockerfile), pushed to byoc/vendor-services, pinned by digest, ARM64.', undefined, imageFix),
      ingestRefreshSeconds: int('Seconds between two reads of the customer registry by ingest.', 1, 3600, 'give a whole number of seconds from 1 to 3600'),
      llmProxy: obj('The LLM proxy for customers who choose it.', {
        providers: list('Upstream providers in failover order: [{ name, api, baseUrl, models }].', obj('An upstream LLM provider.', {
          name: str('Name in logs, metrics and the secret\'s name.', '^[a-z0-9-]{1,32}$', 'use 1 to 32 lower-case letters, digits and hyphens'),
          api: { type: 'string', enum: ['openai', 'anthropic'], description: 'The provider\'s API shape.', fix: 'use "openai" or "anthropic"' },
          baseUrl: str('Base URL, https://...', '^https://', 'give the provider\'s https:// base URL, such as https://api.openai.com'),
          models: {
            type: 'object', description: 'The models it serves: the name clients use -> the provider\'s model name.',
            additionalProperties: { type: 'string', description: 'The provider\'s model name.', fix: 'give the provider\'s model name as a string' },
            minProperties: 1, fix: 'give { "<client name>": "<provider model>" }, at least one',
          },
        }, ['name', 'api', 'baseUrl', 'models'], 'give { "name", "api": "openai" | "anthropic", "baseUrl": "https://...", "models": { "<client name>": "<provider model>" } }'),
        1, undefined, 'give the upstream providers in failover order: [{ name, api, baseUrl, models }], each once'),
        egress: obj('How the proxy reaches the providers.', {
          via: { type: 'string', enum: ['nat'], description: 'nat: the proxy\'s own subnets, routed out through NAT gateways.', fix: 'use "nat"' },
          natGateways: int('NAT gateways (one per AZ survives the loss of an AZ).', 1, 6),
        }, ['via'], 'give { "via": "nat" } (and "natGateways": N)'),
        desiredCount: int('Proxy tasks.', 1, 100),
      }, ['providers', 'egress'], 'give { "providers": [...], "egress": { "via": "nat" } }, or leave llmProxy out'),
    }, ['image'], 'give { "image", "ingestRefreshSeconds", "llmProxy" }, or leave services out'),
  }, [], 'give a JSON object of settings'),
};
  return cached;
}

/** Every way `value` breaks the schema (ajv, all errors, in schema order); empty when it is valid. */
export const controlPlaneConfigErrors: (value: unknown) => ErrorObject[] = schemaValidator(controlPlaneConfigSchema);

/** The first schema error as a `PropError` (of kind `setting` unless told): an unknown key is not a setting (or prop) of the control plane. */
export function controlPlaneSchemaError(errors: ErrorObject[], kind: 'setting' | 'prop' = 'setting', names: PropNames = {}): PropError {
  return settingSchemaError(errors, 'control plane', kind, names);
}
