import * as fs from 'fs';
import * as path from 'path';
import {
  CreateSecretCommand, DescribeSecretCommand, GetSecretValueCommand, ListSecretsCommand, PutSecretValueCommand, SecretsManagerClient,
  Tag, TagResourceCommand,
} from '@aws-sdk/client-secrets-manager';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { jetstreamManager } from '@nats-io/jetstream';
import { decode, fromSeed, parseCreds, User } from '@nats-io/jwt';
import { credsAuthenticator, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Command, Option } from 'commander';
import { ControlPlaneConfig, controlPlaneStackProps } from '../control-plane/config';
import { HUB_PORTS } from '../control-plane/hub-config';
import { resolveControlPlaneProps } from '../control-plane/props';
import { IMAGE_REPOSITORIES } from '../control-plane/control-plane';
import { parseAuditPublicKey } from '../control-plane/ingest/check';
import {
  EARLIEST_CANCELLATION, formatCancelledAt, INGEST_RECORD_FORMAT, IngestRecord, ingestRecordJson, ingestSecretName, parseCancelledAt, parseIngestRecord, REGISTRY_TAGS,
} from '../control-plane/ingest/registry';
import { CUSTOMER_SECRET_PREFIX, DeploymentMode, RETENTION } from '../control-plane/ingest/settings';
import { llmProxyAudience } from '../control-plane/llm-proxy/endpoint';
import { llmTokenSecretName, provisionLlmProxyCustomer } from '../control-plane/llm-proxy/provision';
import { BudgetPeriod, CustomerLimits, DEFAULT_LIMITS, LlmStore } from '../control-plane/llm-proxy/store';
import { CustomerPlaneConfig, customerPlaneStackProps } from '../customer-plane/config';
import { IMAGE_KEYS, LlmAccess, parseImageRef, ReleaseImages, resolveProps } from '../customer-plane/props';
import { BOUNDARY_CONTRACT, BoundaryContract, contractHash, CUSTOMER_ID } from './boundary-contract';
import { contractJson, loadContractFile, validateContract } from './contract-input';
import { PropError } from './errors';
import { BUNDLE_FORMAT, RELEASE } from './bundle';
import {
  CustomerAccountKeys, customerAccounts, CustomerAccounts, hubJwtIngestStream, leafUser, pushAccountJwt, revocationsOf, revokeAccount,
  SYSTEM_USER_INBOX, UserCredentials, vendorUser,
} from './nats-auth';
import { hubLeafPermissions, LinkSettings, vendorInboxPrefix } from './nats-config';

/**
 * The vendor's onboarding of a customer, one idempotent command per step (`byoc customer add|list|revoke|cancel`):
 *
 * - the customer's AWS account in the control plane's `customerAccounts` (the endpoint service's allowed
 *   principals and the image repositories' pull policies come from it; the control plane is redeployed);
 * - the customer's two NATS accounts (`lib/nats-auth.ts`), signed with the operator signing seed read from
 *   Secrets Manager, their keys, JWTs and history in the secret `byoc/customers/<id>/nats-account`, so a
 *   re-run re-uses the same accounts, and the leaf's `.creds` in `byoc/customers/<id>/leaf-creds`, handed to
 *   the customer;
 * - what the vendor's ingest service needs of the customer, and nothing more, in `byoc/customers/<id>/ingest`
 *   (`control-plane/ingest/registry.ts`): its settings and status, the `.creds` of its vendor ingest user, and the
 *   public key of the customer's audit KMS key once the customer has sent it (`--audit-public-key`), which its
 *   signed metrics must verify with;
 * - when the vendor runs the LLM proxy (`control-plane/llm-proxy/`): the customer registered in the proxy's table
 *   with its limits, and its proxy token (a JWT signed by the proxy's KMS key) in `byoc/customers/<id>/llm-proxy-token`,
 *   handed to the customer, who stores it in its plane's `llm-primary` secret (`llm: { via: 'vendor-proxy' }`);
 *   `revoke` marks the customer revoked in the table (the proxy refuses its tokens at once);
 * - the account JWTs pushed to the running hub over `$SYS` (and the customer's ingest stream created);
 * - the customer plane's configuration `<out>/<customer>.json`, as `customer-plane/config.ts` loads it.
 *
 * Every step compares what it would write with what is there and writes only a difference, so running a
 * command twice changes nothing the second time. Revocation is recorded in the customer's account secret
 * (`status` and the append-only `events`), next to the keys it concerns: the control plane's configuration
 * refuses keys it does not know, and it is public, while the secret is encrypted and each of its writes
 * is a CloudTrail event naming who made it.
 *
 * `cancel` records the end of the customer's subscription, which `revoke` does not: a revocation cuts credentials
 * and is undone by `add --reinstate` (it is also how a customer moves to another AWS account), while a cancellation
 * starts the deletion of the customer's data in the vendor-hosted modes (`RETENTION` in
 * `control-plane/ingest/settings.ts`). It is the tag `byoc:cancelled-at` on the ingest secret, the only one the
 * ingest service lists, where its retention sweep reads it with the grants it has; and an event in the history.
 */

/** Prefix of every secret of a customer: `byoc/customers/<id>/...`. */
export { CUSTOMER_SECRET_PREFIX };
/** The secrets of one customer. */
export const customerSecretNames = (customerId: string) => ({
  /** JSON (`CustomerRecord`): the NATS accounts' keys and JWTs, status and history. */
  account: `${CUSTOMER_SECRET_PREFIX}${customerId}/nats-account`,
  /** The leaf user's `.creds`, for handover to the customer. */
  leafCreds: `${CUSTOMER_SECRET_PREFIX}${customerId}/leaf-creds`,
  /** JSON (`IngestRecord`): what the vendor's ingest service reads of the customer (the only secret it may read). */
  ingest: ingestSecretName(customerId),
});
/** Name of the operator-signing-seed secret the control plane's hub creates (`control-plane/hub.ts`). */
export const DEFAULT_OPERATOR_SEED_SECRET = 'byoc/hub/operator-signing-seed';
/** Outputs of the control-plane stack `add` reads from a `cdk deploy --outputs-file` JSON (`control-plane/stack.ts`). */
export const CONTROL_PLANE_OUTPUTS = {
  endpointService: 'HubEndpointServiceName',
  operatorSeedSecret: 'OperatorSigningSeedSecretArn',
  /** The LLM proxy's token signing key (only when the vendor runs the proxy). */
  llmProxyTokenKey: 'LlmProxyTokenKeyArn',
  /** The LLM proxy's table (only when the vendor runs the proxy). */
  llmProxyTable: 'LlmProxyTableName',
} as const;
/** The vendor CA's file next to the customer plane configurations `add` writes. */
export const HUB_CA_FILE = 'vendor-hub-ca.pem';
/** The tags on a customer's secrets (what `list` reads without decrypting anything). */
export const TAGS = REGISTRY_TAGS;

/** An error in what was given: names the flag (or file), the problem and the fix. */
export class CustomerError extends Error {
  constructor(public readonly flag: string, problem: string, fix: string) {
    super(`${flag}: ${problem}. Fix: ${fix}`);
    this.name = 'CustomerError';
  }
}

export type CustomerStatus = 'active' | 'revoked';

/** One entry of a customer's history (append-only). */
export interface CustomerEvent {
  readonly at: string;
  readonly action: 'registered' | 'reissued' | 'leaf-issued' | 'ingest-issued' | 'audit-key-registered' | 'revoked' | 'reinstated' | 'cancelled';
  readonly awsAccount: string;
  readonly detail: string;
}

/** The value of `byoc/customers/<id>/nats-account`: a secret (it holds the accounts' seeds). */
export interface CustomerRecord {
  readonly format: 'byoc-customer/1';
  readonly customerId: string;
  readonly awsAccount: string;
  readonly shareLearning: boolean;
  readonly status: CustomerStatus;
  /** The contract the accounts were issued for (a changed contract re-issues them, same keys). */
  readonly contractHash: string;
  /** A vendor's own contract (`--contract`), as its canonical JSON; absent for the kit's own. */
  readonly contract?: string;
  /** Public key of the operator key that signed the accounts. */
  readonly issuer: string;
  readonly customerAccount: { readonly publicKey: string; readonly jwt: string };
  readonly vendorAccount: { readonly publicKey: string; readonly jwt: string };
  readonly keys: CustomerAccountKeys;
  /** Public key of the leaf user whose `.creds` are in the leaf-creds secret. */
  readonly leafUser?: string;
  readonly events: readonly CustomerEvent[];
}

/** What one step did: `changed` false means it found everything as it would have written it. */
export interface StepReport {
  readonly step: string;
  readonly changed: boolean;
  readonly detail: string;
}

export interface CommandResult {
  readonly steps: StepReport[];
  /** What the vendor does next (commands). */
  readonly next: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Inputs

const ACCOUNT_ID = /^\d{12}$/;
const OPERATOR_SEED = /^SO[A-Z2-7]{56}$/;
const ENDPOINT_SERVICE = /^com\.amazonaws\.vpce\.([a-z]{2}(?:-[a-z]+)+-\d)\.vpce-svc-[0-9a-f]{17}$/;
const HUB_URL = /^(nats|tls):\/\/([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

export function checkCustomerId(id: string): void {
  if (!CUSTOMER_ID.test(id ?? '')) {
    throw new CustomerError('--customer', `"${id}" is not a customer identifier`, 'use 3 to 20 lower-case letters, digits and single hyphens, starting with a letter (it names the customer\'s secrets, NATS accounts and plane)');
  }
}

function checkAccountId(account: string): void {
  if (!ACCOUNT_ID.test(account ?? '')) {
    const hint = /^\d+$/.test(account ?? '') ? ` (${account.length} digits)` : '';
    throw new CustomerError('--account', `"${account}" is not an AWS account ID${hint}`, 'give the customer\'s 12-digit AWS account ID as aws sts get-caller-identity prints it in their account, leading zeros included');
  }
}

/** `true`/`false` (and yes/no) for `--share-learning`. */
export function parseBoolean(flag: string, value: string): boolean {
  const v = String(value).toLowerCase();
  if (['true', 'yes', '1'].includes(v)) return true;
  if (['false', 'no', '0'].includes(v)) return false;
  throw new CustomerError(flag, `"${value}" is neither true nor false`, `write ${flag} false to opt the customer out (or true, the default)`);
}

/** `--reason`, recorded in a customer's history. */
function checkReason(reason: string): void {
  if (reason.length > 200 || /[\u0000-\u001f]/.test(reason)) {
    throw new CustomerError('--reason', 'longer than 200 characters or holds control characters', 'give a short single-line reason, e.g. "contract ended"');
  }
}

function parseHubUrl(url: string): { servers: string; tls: boolean } {
  const m = HUB_URL.exec(url);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new CustomerError('--hub-url', `"${url}" is not a NATS URL`, `give the client port of a hub node the system user may connect to, nats://HOST:PORT or tls://HOST:PORT (the hub's client port is ${HUB_PORTS.client}; its leaf-node port ${HUB_PORTS.leafnode} takes no system user)`);
  }
  return { servers: `${m[2]}:${m[3]}`, tls: m[1] === 'tls' };
}

/** The control plane's configuration file: as written (to write back) and validated. */
export interface VendorConfig {
  readonly file: string;
  readonly raw: ControlPlaneConfig & Record<string, unknown>;
  readonly text: string;
  readonly region?: string;
  readonly account?: string;
  readonly customerAccounts: readonly string[];
  /** What the ingest tables keep (`deploymentMode`): how long a cancelled customer's data stays. */
  readonly deploymentMode: DeploymentMode;
  readonly hub?: { readonly host: string; readonly image: string; readonly operatorJwt: string; readonly systemAccountPublicKey: string; readonly caCertificatePem: string };
}

export function readVendorConfig(file: string): VendorConfig {
  const flag = '--vendor-config';
  if (!file) throw new CustomerError(flag, 'missing', 'give the control plane\'s configuration file, e.g. config/vendor.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CustomerError(flag, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of the control plane\'s configuration (the file bin/control-plane.ts deploys with -c config=FILE)');
  }
  let raw: VendorConfig['raw'];
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CustomerError(flag, `${file} is not JSON (${(e as Error).message})`, 'repair the file (it is what cdk deploys the control plane from)');
  }
  let resolved;
  try {
    resolved = resolveControlPlaneProps(controlPlaneStackProps(raw, path.dirname(path.resolve(file))));
  } catch (e) {
    throw new CustomerError(`${flag} ${file}`, (e as Error).message.replace(/\. Fix: .*$/, ''), /Fix: (.*)$/.exec((e as Error).message)?.[1] ?? 'repair the control plane\'s configuration');
  }
  const hub = resolved.hub;
  return {
    file, raw, text,
    region: raw.region,
    account: raw.account,
    customerAccounts: resolved.customerAccounts,
    deploymentMode: resolved.deploymentMode,
    hub: hub ? { host: hub.host, image: hub.image, operatorJwt: hub.operatorJwt, systemAccountPublicKey: hub.systemAccountPublicKey, caCertificatePem: hub.tls.caCertificatePem } : undefined,
  };
}

function requireHub(config: VendorConfig): NonNullable<VendorConfig['hub']> {
  if (!config.hub) {
    throw new CustomerError(`--vendor-config ${config.file}`, 'has no hub: there is no NATS operator to issue the customer\'s accounts with', 'add the hub settings (image, host, operatorJwt, systemAccountPublicKey, tls) and deploy the control plane first');
  }
  return config.hub;
}

/** The JSON as `add` and `revoke` write it: two-space indentation, a final newline, the keys in their order. */
export const formatJson = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Writes `text` to `file` when it differs (through a temporary file, renamed: never half a file). */
function writeIfChanged(file: string, text: string): boolean {
  let current: string | undefined;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === text) return false;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
  return true;
}

/** `config` with `customerAccounts` set to `accounts`; a new key goes after `account`/`region`. */
export function withCustomerAccounts(config: VendorConfig, accounts: readonly string[]): string {
  const raw = config.raw as Record<string, unknown>;
  if ('customerAccounts' in raw) return formatJson({ ...raw, customerAccounts: [...accounts] });
  const out: Record<string, unknown> = {};
  const after = ['account', 'region'].filter((k) => k in raw).pop();
  if (!after) out.customerAccounts = [...accounts];
  for (const [k, v] of Object.entries(raw)) {
    out[k] = v;
    if (k === after) out.customerAccounts = [...accounts];
  }
  return formatJson(out);
}

/** Reads `cdk deploy --outputs-file` JSON: `{ "<stack>": { "<output>": "<value>" } }`. */
export function readControlPlaneOutputs(file: string): Record<string, string> {
  const flag = '--control-plane-outputs';
  let parsed: Record<string, Record<string, string>>;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CustomerError(flag, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the file cdk deploy --outputs-file wrote when it deployed the control plane');
  }
  const stacks = Object.entries(parsed ?? {}).filter(([, v]) => v && typeof v === 'object' && CONTROL_PLANE_OUTPUTS.endpointService in v);
  if (stacks.length === 0) {
    throw new CustomerError(flag, `${file} has no stack with the output ${CONTROL_PLANE_OUTPUTS.endpointService}`, 'deploy the control plane with its hub (hub settings in the vendor configuration), with cdk deploy --outputs-file FILE, and give that file');
  }
  const own = stacks.find(([name]) => name === 'ByocControlPlane') ?? stacks[0];
  if (stacks.length > 1 && own[0] !== 'ByocControlPlane') {
    throw new CustomerError(flag, `${file} has several control-plane stacks (${stacks.map(([n]) => n).join(', ')})`, 'give --endpoint-service and --operator-seed-secret instead');
  }
  return own[1];
}

/** The release's images by `ReleaseImages` key, from a `byoc-release.json` (or the bundle folder holding it). */
export function releaseImages(file: string): Partial<ReleaseImages> {
  const flag = '--release';
  const json = fs.existsSync(file) && fs.statSync(file).isDirectory() ? path.join(file, RELEASE) : file;
  let release: { format?: string; images?: unknown };
  try {
    release = JSON.parse(fs.readFileSync(json, 'utf8'));
  } catch (e) {
    throw new CustomerError(flag, `cannot read ${json} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, `give a signed bundle folder or its ${RELEASE}`);
  }
  if (release.format !== BUNDLE_FORMAT || !Array.isArray(release.images)) {
    throw new CustomerError(flag, `${json} is not a release (format ${BUNDLE_FORMAT} with images)`, `give the ${RELEASE} byoc sign wrote`);
  }
  const out: Partial<Record<keyof ReleaseImages, string>> = {};
  for (const ref of release.images as string[]) {
    const repo = /\/([^@]+)@/.exec(ref)?.[1];
    const i = IMAGE_REPOSITORIES.indexOf(repo ?? '');
    if (i >= 0) out[IMAGE_KEYS[i]] = ref;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Secrets Manager

type Sm = SecretsManagerClient;

const notFound = (e: unknown) => (e as { name?: string }).name === 'ResourceNotFoundException';

async function getSecret(sm: Sm, id: string): Promise<string | undefined> {
  try {
    return (await sm.send(new GetSecretValueCommand({ SecretId: id }))).SecretString;
  } catch (e) {
    if (notFound(e)) return undefined;
    throw e;
  }
}

/** Creates the secret or puts a new value when it differs; tags it. Returns whether anything changed. */
async function putSecret(sm: Sm, name: string, value: string, tags: Record<string, string>, description: string, kmsKeyId?: string): Promise<'created' | 'updated' | 'unchanged'> {
  const Tags: Tag[] = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
  let described;
  try {
    described = await sm.send(new DescribeSecretCommand({ SecretId: name }));
  } catch (e) {
    if (!notFound(e)) throw e;
    await sm.send(new CreateSecretCommand({ Name: name, SecretString: value, Description: description, KmsKeyId: kmsKeyId, Tags }));
    return 'created';
  }
  let changed = false;
  const held = Object.fromEntries((described.Tags ?? []).map((t) => [t.Key, t.Value]));
  if (Object.entries(tags).some(([k, v]) => held[k] !== v)) {
    await sm.send(new TagResourceCommand({ SecretId: name, Tags }));
    changed = true;
  }
  if ((await getSecret(sm, name)) !== value) {
    await sm.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
    changed = true;
  }
  return changed ? 'updated' : 'unchanged';
}

/** What `list` knows of a customer from its secrets' names and tags (nothing is decrypted). */
export interface CustomerSecrets {
  readonly customerId: string;
  readonly awsAccount?: string;
  readonly status?: CustomerStatus;
  readonly accountSecret: boolean;
  readonly leafCredsSecret: boolean;
  readonly ingestSecret: boolean;
  /** The registered audit public key's fingerprint (the ingest secret's tag), if any. */
  readonly auditKey?: string;
  /** The ingest secret's `byoc:cancelled-at` tag, as written, if any. */
  readonly cancelledAt?: string;
}

async function listCustomerSecrets(sm: Sm): Promise<Map<string, CustomerSecrets>> {
  const out = new Map<string, CustomerSecrets>();
  let NextToken: string | undefined;
  do {
    const page = await sm.send(new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [CUSTOMER_SECRET_PREFIX] }], NextToken, MaxResults: 100 }));
    for (const s of page.SecretList ?? []) {
      const m = /^byoc\/customers\/([^/]+)\/(nats-account|leaf-creds|ingest)$/.exec(s.Name ?? '');
      if (!m || s.DeletedDate) continue;
      const tags = Object.fromEntries((s.Tags ?? []).map((t) => [t.Key, t.Value]));
      const prev: CustomerSecrets = out.get(m[1]) ?? { customerId: m[1], accountSecret: false, leafCredsSecret: false, ingestSecret: false };
      const auditKey = tags[TAGS.auditKey];
      out.set(m[1], m[2] === 'nats-account'
        ? { ...prev, accountSecret: true, awsAccount: tags[TAGS.awsAccount], status: tags[TAGS.status] as CustomerStatus | undefined }
        : m[2] === 'leaf-creds' ? { ...prev, leafCredsSecret: true }
          : { ...prev, ingestSecret: true, auditKey: auditKey && auditKey !== 'none' ? auditKey : undefined, cancelledAt: tags[TAGS.cancelledAt] });
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

function parseRecord(text: string, customerId: string): CustomerRecord {
  let r: CustomerRecord;
  try {
    r = JSON.parse(text);
  } catch {
    throw new CustomerError('--customer', `the secret ${customerSecretNames(customerId).account} is not JSON`, 'restore its previous version (aws secretsmanager list-secret-version-ids) or remove it after revoking the accounts on the hub');
  }
  if (r.format !== 'byoc-customer/1' || r.customerId !== customerId) {
    throw new CustomerError('--customer', `the secret ${customerSecretNames(customerId).account} is not the record of customer ${customerId}`, 'restore its previous version (aws secretsmanager list-secret-version-ids)');
  }
  return r;
}

/** The record in a fixed key order, so the same content is the same string (and no new secret version). */
function recordJson(r: CustomerRecord): string {
  return formatJson({
    format: r.format, customerId: r.customerId, awsAccount: r.awsAccount, shareLearning: r.shareLearning, status: r.status,
    contractHash: r.contractHash, ...(r.contract !== undefined ? { contract: r.contract } : {}), issuer: r.issuer,
    customerAccount: { publicKey: r.customerAccount.publicKey, jwt: r.customerAccount.jwt },
    vendorAccount: { publicKey: r.vendorAccount.publicKey, jwt: r.vendorAccount.jwt },
    keys: {
      customer: { seed: r.keys.customer.seed, leafSigningKeySeed: r.keys.customer.leafSigningKeySeed },
      vendor: { seed: r.keys.vendor.seed, serviceSigningKeySeed: r.keys.vendor.serviceSigningKeySeed },
    },
    ...(r.leafUser ? { leafUser: r.leafUser } : {}),
    events: r.events.map((e) => ({ at: e.at, action: e.action, awsAccount: e.awsAccount, detail: e.detail })),
  });
}

/** Reads the operator signing seed and checks it belongs to the operator the hub trusts. */
async function operatorSeed(sm: Sm, secretId: string, operatorJwt: string): Promise<string> {
  const flag = '--operator-seed-secret';
  let value: string | undefined;
  try {
    value = await getSecret(sm, secretId);
  } catch (e) {
    throw new CustomerError(flag, `cannot read the secret ${secretId} (${(e as Error).name}: ${(e as Error).message})`, 'run with credentials of the vendor account that may read it (secretsmanager:GetSecretValue, kms:Decrypt on the hub\'s key), in the control plane\'s region (--region)');
  }
  if (value === undefined) {
    throw new CustomerError(flag, `there is no secret ${secretId}`, 'deploy the control plane with its hub (it creates the secret), or give the secret that holds the operator signing seed');
  }
  const seed = value.trim();
  const fill = `aws secretsmanager put-secret-value --secret-id ${secretId} --secret-string "$(cat OPERATOR.nk)"`;
  if (!OPERATOR_SEED.test(seed)) {
    throw new CustomerError(flag, `the secret ${secretId} does not hold an operator seed (SO..., 58 characters): it still holds the generated placeholder, or something else`, `fill it with the operator's signing seed: ${fill}`);
  }
  const publicKey = fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  const op = decode<{ signing_keys?: string[] }>(operatorJwt);
  if (publicKey !== op.sub && !(op.nats.signing_keys ?? []).includes(publicKey)) {
    throw new CustomerError(flag, `the seed in ${secretId} is for ${publicKey}, neither the operator ${op.sub} of the vendor configuration's hub.operatorJwt nor one of its signing keys`, `fill the secret with this operator's signing seed (${fill}), or fix hub.operatorJwt`);
  }
  return seed;
}

/** The system user's `.creds`: a file, or a secret holding them. */
async function systemCredentials(sm: Sm, value: string, systemAccount: string): Promise<string> {
  const flag = '--system-creds';
  let creds: string | undefined;
  if (fs.existsSync(value)) creds = fs.readFileSync(value, 'utf8');
  else {
    try {
      creds = await getSecret(sm, value);
    } catch (e) {
      throw new CustomerError(flag, `"${value}" is no file, and reading it as a secret failed (${(e as Error).name})`, 'give the system user\'s .creds file or the name or ARN of the secret that holds them');
    }
    if (creds === undefined) throw new CustomerError(flag, `"${value}" is neither a file nor a secret`, 'give the system user\'s .creds file or the name or ARN of the secret that holds them');
  }
  let jwt: string;
  try {
    jwt = (await parseCreds(new TextEncoder().encode(creds))).jwt;
  } catch {
    throw new CustomerError(flag, `"${value}" does not hold a .creds file`, 'give the system user\'s credentials (-----BEGIN NATS USER JWT----- ... USER NKEY SEED), as operatorInit wrote them');
  }
  const user = decode<User>(jwt);
  const account = user.nats.issuer_account ?? user.iss;
  if (account !== systemAccount) {
    throw new CustomerError(flag, `the credentials in "${value}" are of a user of account ${account}, not of the system account ${systemAccount}`, 'give the system user\'s credentials: only the system account may push account JWTs');
  }
  return creds;
}

/** The CA a `tls://` hub is verified with: `--hub-ca`, else the vendor configuration's. */
function readHubCa(file: string | undefined, configured: string): string {
  if (file === undefined) return configured;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CustomerError('--hub-ca', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the PEM file of the CA that issued the hub\'s certificate, or leave --hub-ca out to use the vendor configuration\'s');
  }
}

/** A connection to a hub node. */
async function hubConnection(url: string, creds: string, caPem: string | undefined, inboxPrefix: string): Promise<NatsConnection> {
  const { servers, tls } = parseHubUrl(url);
  try {
    return await connect({
      servers, inboxPrefix, authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
      tls: tls ? (caPem ? { ca: caPem } : {}) : undefined, maxReconnectAttempts: 0, timeout: 10000, name: 'byoc-customer',
    });
  } catch (e) {
    throw new CustomerError('--hub-url', `cannot connect to ${url} (${(e as Error).message})`, 'give the client port of a running hub node reachable from here, and credentials it accepts');
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
/** Waits until the clock is past `seconds`: a hub keeps the JWT with the later issue time, and revocations cover `iat <= at`. */
async function after(seconds: number): Promise<void> {
  while (nowSeconds() <= seconds) await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
}

/** The hub holds `jwt` for its account already (`$SYS.REQ.CLAIMS.LIST`, then `...CLAIMS.LOOKUP`: 2.9 does not answer a lookup of an account it lacks). */
async function hubHolds(nc: NatsConnection, jwt: string): Promise<boolean> {
  const { sub } = decode(jwt);
  const listed: string[] = JSON.parse((await nc.request('$SYS.REQ.CLAIMS.LIST', '', { timeout: 5000 })).string()).data ?? [];
  if (!listed.includes(sub)) return false;
  return (await nc.request(`$SYS.REQ.ACCOUNT.${sub}.CLAIMS.LOOKUP`, '', { timeout: 5000 })).string() === jwt;
}

async function pushAccounts(nc: NatsConnection, jwts: { name: string; jwt: string }[], steps: StepReport[]): Promise<void> {
  for (const { name, jwt } of jwts) {
    const held = await hubHolds(nc, jwt);
    if (!held) await pushAccountJwt(nc, jwt);
    steps.push({ step: 'hub', changed: !held, detail: `${held ? 'already holds' : 'pushed'} account ${decode(jwt).name} (${name}, ${decode(jwt).sub}, issued ${new Date(decode(jwt).iat * 1000).toISOString()})` });
  }
}

// ---------------------------------------------------------------------------------------------------------
// LLM proxy

/** The vendor's LLM proxy, as `add` and `revoke` reach it. */
interface LlmProxyTarget {
  /** The token signing key (absent for `revoke`, which only needs the table). */
  readonly tokenKeyId?: string;
  readonly table: string;
}

const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z]{2}(?:-[a-z]+)+-\d):\d{12}:key\/[0-9a-f-]{36}$/;

/**
 * The LLM proxy when the vendor runs one: `--llm-token-key` and `--llm-table`, else the control plane's outputs
 * `LlmProxyTokenKeyArn` and `LlmProxyTableName`; undefined when neither gives any (no proxy).
 */
function llmProxyTarget(flags: { llmTokenKey?: string; llmTable?: string }, outputs: Record<string, string>, needsKey: boolean): LlmProxyTarget | undefined {
  const tokenKeyId = flags.llmTokenKey ?? outputs[CONTROL_PLANE_OUTPUTS.llmProxyTokenKey];
  const table = flags.llmTable ?? outputs[CONTROL_PLANE_OUTPUTS.llmProxyTable];
  // No proxy: neither is given (revoke needs only the table).
  if (table === undefined && (tokenKeyId === undefined || !needsKey)) return undefined;
  if (table === undefined) {
    throw new CustomerError('--llm-table', 'missing: the LLM proxy\'s customers are registered in its table', `give --llm-table (the control plane's ${CONTROL_PLANE_OUTPUTS.llmProxyTable} output) with --llm-token-key, or --control-plane-outputs FILE holding both outputs`);
  }
  if (!TABLE_NAME.test(table)) {
    throw new CustomerError('--llm-table', `"${table}" is not a DynamoDB table name`, `give the control plane's ${CONTROL_PLANE_OUTPUTS.llmProxyTable} output`);
  }
  if (!needsKey) return { table };
  if (tokenKeyId === undefined) {
    throw new CustomerError('--llm-token-key', 'missing: the customer\'s LLM proxy token is signed by the proxy\'s KMS key', `give --llm-token-key (the control plane's ${CONTROL_PLANE_OUTPUTS.llmProxyTokenKey} output) with --llm-table, or --control-plane-outputs FILE holding both outputs`);
  }
  if (!KMS_KEY_ARN.test(tokenKeyId)) {
    throw new CustomerError('--llm-token-key', `"${tokenKeyId}" is not a KMS key ARN`, `give the control plane's ${CONTROL_PLANE_OUTPUTS.llmProxyTokenKey} output, arn:aws:kms:REGION:ACCOUNT:key/KEY-ID`);
  }
  return { tokenKeyId, table };
}

/** `--llm-requests-per-minute`, `--llm-tokens-per-period`, `--llm-budget-period`: each given one, checked. */
function llmLimitFlags(o: { llmRequestsPerMinute?: string | number; llmTokensPerPeriod?: string | number; llmBudgetPeriod?: string }): Partial<CustomerLimits> {
  const whole = (flag: string, v: string | number | undefined, max: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(String(v).trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
      throw new CustomerError(flag, `"${v}" is not a whole number from 1 to ${max}`, `give a whole number, e.g. ${flag} ${flag.includes('minute') ? DEFAULT_LIMITS.requestsPerMinute : DEFAULT_LIMITS.tokensPerPeriod} (the default)`);
    }
    return n;
  };
  const period = o.llmBudgetPeriod;
  if (period !== undefined && period !== 'day' && period !== 'month') {
    throw new CustomerError('--llm-budget-period', `"${period}" is neither day nor month`, 'give day (the default) or month: the period --llm-tokens-per-period counts in');
  }
  const out: { requestsPerMinute?: number; tokensPerPeriod?: number; period?: BudgetPeriod } = {
    requestsPerMinute: whole('--llm-requests-per-minute', o.llmRequestsPerMinute, 1_000_000),
    tokensPerPeriod: whole('--llm-tokens-per-period', o.llmTokensPerPeriod, 1e12),
    period: period as BudgetPeriod | undefined,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

/** Region of a KMS key ARN, else the control plane's. */
const kmsRegion = (arn: string, config: VendorConfig, region?: string) => KMS_KEY_ARN.exec(arn)?.[1] ?? region ?? config.region;
const awsClientConfig = (region: string | undefined) => (region ? { region } : {});

/** Wraps an AWS error of the LLM proxy's key or table into one naming the flag and the fix. */
function llmAwsError(flag: string, what: string, e: unknown): CustomerError {
  return new CustomerError(flag, `${what} failed (${(e as Error).name}: ${(e as Error).message})`,
    'run with credentials of the vendor account that may use the proxy\'s token key (kms:GetPublicKey, kms:Sign) and table (dynamodb:GetItem, dynamodb:UpdateItem), in the control plane\'s region; check the control plane is deployed with its LLM proxy');
}

// ---------------------------------------------------------------------------------------------------------
// add

export interface AddCustomerOptions {
  readonly customer: string;
  readonly account: string;
  /** @default true */
  readonly shareLearning?: boolean;
  readonly vendorConfig: string;
  readonly out: string;
  readonly hubUrl?: string;
  readonly systemCreds?: string;
  /** The CA a `tls://` hub URL is verified with. @default - the vendor configuration's hub CA */
  readonly hubCa?: string;
  readonly endpointService?: string;
  readonly controlPlaneOutputs?: string;
  readonly release?: string;
  readonly images?: Partial<ReleaseImages>;
  readonly operatorSeedSecret?: string;
  readonly kmsKey?: string;
  readonly region?: string;
  /** Register a revoked customer again (new leaf credentials; everything issued before the revocation stays revoked). */
  readonly reinstate?: boolean;
  /**
   * A boundary contract file (JSON, as `config/boundary-contract.json`): the vendor's own, the one its control plane and
   * the customer's plane are built with (their `contract` prop). The accounts' permissions are issued from it.
   * @default - the kit's own contract
   */
  readonly contract?: string;
  /**
   * A file with the public key of the customer's audit KMS key (PEM, as `byoc pubkey` writes it; or DER): the key
   * the vendor's ingest service verifies the customer's signed metrics with. Known once the customer has deployed.
   * @default - the key registered before, if any (until one is registered, the customer's crossings wait in the hub)
   */
  readonly auditPublicKey?: string;
  /** The LLM proxy's token signing key ARN. @default - the control plane's output `LlmProxyTokenKeyArn`, else no proxy */
  readonly llmTokenKey?: string;
  /** The LLM proxy's table. @default - the control plane's output `LlmProxyTableName`, else no proxy */
  readonly llmTable?: string;
  /** Requests per minute the proxy admits of the customer. @default - the customer's current limit, else 600 */
  readonly llmRequestsPerMinute?: string | number;
  /** Tokens per budget period the proxy admits of the customer. @default - the customer's current limit, else 5,000,000 */
  readonly llmTokensPerPeriod?: string | number;
  /** The budget's period. @default - the customer's current one, else day */
  readonly llmBudgetPeriod?: string;
}

/** The Secrets Manager client of the control plane's region (flag, then the vendor configuration's, then the SDK's default). */
export function secretsClient(region: string | undefined, config?: VendorConfig): SecretsManagerClient {
  const r = region ?? config?.region;
  return new SecretsManagerClient(r ? { region: r } : {});
}

/** Registers (or re-checks) a customer: every step idempotent. */
export async function addCustomer(o: AddCustomerOptions, sm?: SecretsManagerClient): Promise<CommandResult> {
  const connections: NatsConnection[] = [];
  const clients: { destroy(): void }[] = [];
  try {
    return await addSteps(o, sm, connections, clients);
  } finally {
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    for (const c of clients) c.destroy();
  }
}

async function addSteps(o: AddCustomerOptions, sm: SecretsManagerClient | undefined, connections: NatsConnection[], clients: { destroy(): void }[]): Promise<CommandResult> {
  // 1. Everything given is checked before anything is written.
  checkCustomerId(o.customer);
  checkAccountId(o.account);
  if (!o.out) throw new CustomerError('--out', 'missing', 'give the folder the customer plane configurations are kept in, e.g. customers/');
  if ((o.hubUrl === undefined) !== (o.systemCreds === undefined)) {
    throw new CustomerError(o.hubUrl === undefined ? '--hub-url' : '--system-creds', 'missing: pushing the accounts to the hub needs both', 'give --hub-url nats://HOST:4222 and --system-creds (the system user\'s .creds file or secret), or neither to push later');
  }
  if (o.hubUrl !== undefined) parseHubUrl(o.hubUrl);
  const auditKey = o.auditPublicKey !== undefined ? readAuditPublicKey(o.auditPublicKey) : undefined;
  let contract: BoundaryContract | undefined;
  try {
    contract = o.contract === undefined ? undefined : loadContractFile(o.contract, '--contract');
  } catch (e) {
    if (e instanceof PropError) {
      const at = e.prop.replace(/^--contract\.?/, '');
      throw new CustomerError('--contract', at ? `${o.contract}: ${at}: ${e.problem}` : e.problem, e.fix);
    }
    throw e;
  }
  const settings: LinkSettings = { customerId: o.customer, shareLearning: o.shareLearning ?? true, ...(contract ? { contract } : {}) };
  const config = readVendorConfig(o.vendorConfig);
  const hub = requireHub(config);
  const names = customerSecretNames(o.customer);
  const planeFile = path.join(o.out, `${o.customer}.json`);
  const existingPlane = readExistingPlane(planeFile);

  const outputs = o.controlPlaneOutputs ? readControlPlaneOutputs(o.controlPlaneOutputs) : {};
  const endpointService = o.endpointService ?? outputs[CONTROL_PLANE_OUTPUTS.endpointService] ?? existingPlane?.vendorHub?.endpointService;
  if (!endpointService) {
    throw new CustomerError('--endpoint-service', 'missing: the customer plane reaches the hub through the control plane\'s VPC endpoint service, whose name is known only once the control plane is deployed',
      `give --control-plane-outputs FILE (from cdk deploy --outputs-file FILE; output ${CONTROL_PLANE_OUTPUTS.endpointService}) or --endpoint-service com.amazonaws.vpce.REGION.vpce-svc-...`);
  }
  const svc = ENDPOINT_SERVICE.exec(endpointService);
  if (!svc) throw new CustomerError('--endpoint-service', `"${endpointService}" is not a VPC endpoint service name`, `give com.amazonaws.vpce.REGION.vpce-svc-<17 hex>, the ${CONTROL_PLANE_OUTPUTS.endpointService} output of the control plane`);
  if (config.region && svc[1] !== config.region) {
    throw new CustomerError('--endpoint-service', `"${endpointService}" is in ${svc[1]}, the control plane in ${config.region}`, 'give the endpoint service of this control plane (its outputs file, or the right name)');
  }
  const images = resolveImages(o, config, existingPlane);
  const operatorSeedSecret = o.operatorSeedSecret ?? outputs[CONTROL_PLANE_OUTPUTS.operatorSeedSecret] ?? DEFAULT_OPERATOR_SEED_SECRET;
  const llmProxy = llmProxyTarget(o, outputs, true);
  const llmLimits = llmLimitFlags(o);
  if (!llmProxy && Object.keys(llmLimits).length > 0) {
    throw new CustomerError(o.llmRequestsPerMinute !== undefined ? '--llm-requests-per-minute' : o.llmTokensPerPeriod !== undefined ? '--llm-tokens-per-period' : '--llm-budget-period',
      'given, but there is no LLM proxy to apply it to', `give --control-plane-outputs FILE with the outputs ${CONTROL_PLANE_OUTPUTS.llmProxyTokenKey} and ${CONTROL_PLANE_OUTPUTS.llmProxyTable} (the control plane deployed with its LLM proxy), or --llm-token-key and --llm-table`);
  }
  // With the proxy, the customer's agents reach LLMs through it, unless its configuration says own-keys (kept).
  const llm = llmProxy && existingPlane?.llm?.via !== 'own-keys' ? { via: 'vendor-proxy' as const } : undefined;

  // The plane configuration is built and validated as the customer plane will load it, before any write.
  const plane = planeConfig(existingPlane, { customerId: o.customer, account: o.account, images, shareLearning: settings.shareLearning!, host: hub.host, endpointService, llm });
  const caFile = path.join(o.out, HUB_CA_FILE);
  try {
    // With the CA inline: its file is written only after every check passed.
    const { caCertificateFile: _file, ...vendorHub } = plane.vendorHub ?? {};
    void _file;
    resolveProps(customerPlaneStackProps({ ...plane, vendorHub: { ...vendorHub, caCertificatePem: hub.caCertificatePem } }));
  } catch (e) {
    throw new CustomerError(`the customer plane configuration ${planeFile}`, (e as Error).message.replace(/\. Fix: .*$/, ''), /Fix: (.*)$/.exec((e as Error).message)?.[1] ?? 'correct the flag that gave it');
  }

  const client = sm ?? secretsClient(o.region, config);
  const seed = await operatorSeed(client, operatorSeedSecret, hub.operatorJwt);
  const issuer = fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  const systemCreds = o.systemCreds !== undefined ? await systemCredentials(client, o.systemCreds, hub.systemAccountPublicKey) : undefined;
  // The hub is connected to before anything is written: an unreachable hub or refused credentials change nothing.
  const hubCa = readHubCa(o.hubCa, hub.caCertificatePem);
  const system = o.hubUrl && systemCreds ? await hubConnection(o.hubUrl, systemCreds, hubCa, SYSTEM_USER_INBOX) : undefined;
  if (system) connections.push(system);
  const known = await listCustomerSecrets(client);
  const stored = await getSecret(client, names.account);
  let record = stored !== undefined ? parseRecord(stored, o.customer) : undefined;
  if (record?.status === 'revoked' && !o.reinstate) {
    const at = [...record.events].reverse().find((e) => e.action === 'revoked')?.at;
    throw new CustomerError('--customer', `customer ${o.customer} was revoked${at ? ` at ${at}` : ''}`, 'pass --reinstate to register it again (new leaf credentials; everything issued before the revocation stays revoked)');
  }
  if (record && record.status === 'active' && record.awsAccount !== o.account) {
    throw new CustomerError('--account', `customer ${o.customer} is registered with account ${record.awsAccount}, not ${o.account}`,
      `give --account ${record.awsAccount}, or move the customer: byoc customer revoke --customer ${o.customer} ..., then add --reinstate --account ${o.account}`);
  }
  // The LLM proxy's key and table are read before anything is written (the key must be a P-256 signing key).
  let llmClients: { kms: KMSClient; dynamodb: DynamoDBClient; held: Awaited<ReturnType<LlmStore['customer']>> } | undefined;
  if (llmProxy) {
    const kms = new KMSClient(awsClientConfig(kmsRegion(llmProxy.tokenKeyId!, config, o.region)));
    const dynamodb = new DynamoDBClient(awsClientConfig(o.region ?? config.region));
    clients.push(kms, dynamodb);
    let key;
    try {
      key = await kms.send(new GetPublicKeyCommand({ KeyId: llmProxy.tokenKeyId }));
    } catch (e) {
      throw llmAwsError('--llm-token-key', `reading the public key of ${llmProxy.tokenKeyId}`, e);
    }
    const spec = key.KeySpec ?? key.CustomerMasterKeySpec;
    if (spec !== 'ECC_NIST_P256' || !(key.SigningAlgorithms ?? []).includes('ECDSA_SHA_256')) {
      throw new CustomerError('--llm-token-key', `${llmProxy.tokenKeyId} is a ${spec}${key.KeyUsage ? ` ${key.KeyUsage}` : ''} key, not the LLM proxy's token key (ECC_NIST_P256, SIGN_VERIFY)`, `give the control plane's ${CONTROL_PLANE_OUTPUTS.llmProxyTokenKey} output`);
    }
    try {
      llmClients = { kms, dynamodb, held: await new LlmStore(dynamodb, llmProxy.table).customer(o.customer) };
    } catch (e) {
      throw llmAwsError('--llm-table', `reading customer ${o.customer} from ${llmProxy.table}`, e);
    }
  }
  const steps: StepReport[] = [];
  const next: string[] = [];

  // 2. The NATS accounts: issued once, re-used on every re-run (same keys, same JWTs) unless the settings,
  // the contract or the signing key changed (then re-issued with the same keys: same account public keys).
  const at = new Date().toISOString();
  const events: CustomerEvent[] = [...(record?.events ?? [])];
  let accounts: Pick<CustomerAccounts, 'customerId' | 'settings' | 'customer' | 'vendor'>;
  const current = contractHash(settings.contract ?? BOUNDARY_CONTRACT);
  if (!record) {
    const a = await customerAccounts(seed, settings);
    accounts = a;
    events.push({ at, action: 'registered', awsAccount: o.account, detail: `customer account ${a.customer.publicKey}, vendor account ${a.vendor.publicKey}, shareLearning ${settings.shareLearning}` });
    record = toRecord(o, settings, 'active', current, issuer, a, undefined, events);
  } else {
    const reinstating = record.status === 'revoked';
    const same = !reinstating && record.shareLearning === settings.shareLearning && record.contractHash === current && record.issuer === issuer;
    if (same) {
      accounts = fromRecord(record);
    } else {
      // The re-issued JWTs must be later than the ones the hub holds; a reinstated account keeps its
      // revocations, `*` included: every credential issued up to the revocation stays refused.
      await after(Math.max(decode(record.customerAccount.jwt).iat, decode(record.vendorAccount.jwt).iat));
      const a = await customerAccounts(seed, settings, { keys: record.keys, revocations: revocationsOf(record.customerAccount.jwt) });
      accounts = a;
      const why = reinstating ? `after its revocation, account ${o.account}` : [
        record.shareLearning !== settings.shareLearning ? `shareLearning ${record.shareLearning} -> ${settings.shareLearning}` : '',
        record.contractHash !== current ? `contract ${record.contractHash.slice(0, 12)} -> ${current.slice(0, 12)}` : '',
        record.issuer !== issuer ? `signing key ${record.issuer} -> ${issuer}` : '',
      ].filter(Boolean).join(', ');
      events.push({ at, action: reinstating ? 'reinstated' : 'reissued', awsAccount: o.account, detail: why });
      record = toRecord(o, settings, 'active', current, issuer, a, record.leafUser, events);
    }
  }

  // 3. The leaf's credentials: re-used while they are valid for these accounts and settings, else issued anew.
  const heldCreds = await getSecret(client, names.leafCreds);
  let leaf: Pick<UserCredentials, 'publicKey' | 'creds'> | undefined = heldCreds !== undefined ? await usableLeaf(heldCreds, accounts, settings) : undefined;
  if (!leaf) {
    const revocations = revocationsOf(accounts.customer.jwt);
    await after(Math.max(0, ...Object.values(revocations)));
    const issued = await leafUser(accounts);
    leaf = issued;
    events.push({ at: new Date().toISOString(), action: 'leaf-issued', awsAccount: o.account, detail: `leaf user ${issued.publicKey}` });
    record = { ...record, leafUser: issued.publicKey, events };
  }

  // The ingest service's registration: its vendor user's credentials (re-used while valid), the audit public key
  // (the one given, else the one registered before), the settings and status.
  const heldIngest = parseHeldIngest(await getSecret(client, names.ingest), o.customer);
  let ingestUser = heldIngest ? await usableVendorUser(heldIngest.creds, accounts) : undefined;
  if (!ingestUser) {
    await after(Math.max(0, ...Object.values(revocationsOf(accounts.vendor.jwt))));
    const issued = await vendorUser(accounts, `vendor-${o.customer}-ingest`);
    ingestUser = issued;
    events.push({ at: new Date().toISOString(), action: 'ingest-issued', awsAccount: o.account, detail: `vendor ingest user ${issued.publicKey}` });
  }
  const heldKey = heldIngest?.auditPublicKeyPem !== undefined ? parseAuditPublicKey(heldIngest.auditPublicKeyPem) : undefined;
  if (auditKey && auditKey.pem !== heldKey?.pem) {
    events.push({ at: new Date().toISOString(), action: 'audit-key-registered', awsAccount: o.account, detail: `audit public key ${auditKey.fingerprint}${heldKey ? `, replacing ${heldKey.fingerprint}` : ''}` });
  }
  const registeredKey = auditKey ?? heldKey;
  const ingest: IngestRecord = {
    format: INGEST_RECORD_FORMAT, customerId: o.customer, shareLearning: settings.shareLearning ?? true, status: 'active',
    ...(registeredKey ? { auditPublicKeyPem: registeredKey.pem } : {}), creds: ingestUser.creds,
  };
  record = { ...record, events };

  const tags = (role: string) => ({ [TAGS.customer]: o.customer, [TAGS.awsAccount]: o.account, [TAGS.status]: 'active', [TAGS.role]: role });
  const wroteAccount = await putSecret(client, names.account, recordJson(record), tags('nats-account'),
    `BYOC customer ${o.customer}: its NATS accounts' keys and JWTs, status and history (byoc customer add/revoke)`, o.kmsKey);
  steps.push({ step: 'nats accounts', changed: wroteAccount !== 'unchanged', detail: `${wroteAccount === 'unchanged' ? 'kept' : wroteAccount} ${names.account} (customer account ${accounts.customer.publicKey}, vendor account ${accounts.vendor.publicKey})` });
  const wroteLeaf = await putSecret(client, names.leafCreds, leaf.creds, tags('leaf-creds'),
    `BYOC customer ${o.customer}: the leaf node's NATS credentials (.creds), handed over to the customer`, o.kmsKey);
  steps.push({ step: 'leaf credentials', changed: wroteLeaf !== 'unchanged', detail: `${wroteLeaf === 'unchanged' ? 'kept' : wroteLeaf} ${names.leafCreds} (leaf user ${leaf.publicKey})` });
  const wroteIngest = await putSecret(client, names.ingest, ingestRecordJson(ingest), { ...tags('ingest'), [TAGS.auditKey]: registeredKey?.fingerprint ?? 'none' },
    `BYOC customer ${o.customer}: what the vendor's ingest service reads (settings, status, audit public key, its vendor user's .creds)`, o.kmsKey);
  steps.push({ step: 'ingest', changed: wroteIngest !== 'unchanged', detail: `${wroteIngest === 'unchanged' ? 'kept' : wroteIngest} ${names.ingest} (vendor ingest user ${ingestUser.publicKey}, ${registeredKey ? `audit public key ${registeredKey.fingerprint}` : 'no audit public key yet'})` });
  if (!registeredKey) {
    next.push(`once the customer has deployed, register its audit public key so its crossings are ingested (until then they wait in the hub's stream): the customer runs npx byoc pubkey --key <the ARN of alias/byoc/${o.customer}/audit> --out audit-public.pem and sends the file; then run this add again with --audit-public-key audit-public.pem`);
  }

  // The LLM proxy: the customer registered with its limits (each flag, else the ones it has, else the defaults)
  // and its token, kept while valid (provisionLlmProxyCustomer is idempotent).
  if (llmProxy && llmClients) {
    const { kms, dynamodb, held } = llmClients;
    const limits: CustomerLimits = {
      requestsPerMinute: llmLimits.requestsPerMinute ?? held?.requestsPerMinute ?? DEFAULT_LIMITS.requestsPerMinute,
      tokensPerPeriod: llmLimits.tokensPerPeriod ?? held?.tokensPerPeriod ?? DEFAULT_LIMITS.tokensPerPeriod,
      period: llmLimits.period ?? held?.period ?? DEFAULT_LIMITS.period,
    };
    let provisioned;
    try {
      provisioned = await provisionLlmProxyCustomer({
        customerId: o.customer, kms, dynamodb, secrets: client, tokenKeyId: llmProxy.tokenKeyId!, table: llmProxy.table,
        audience: llmProxyAudience(hub.host), limits, secretKmsKeyId: o.kmsKey,
      });
    } catch (e) {
      throw llmAwsError('--llm-token-key', `registering customer ${o.customer} with the LLM proxy (table ${llmProxy.table})`, e);
    }
    const changed = provisioned.issued || held === undefined || held.status !== 'active' || !held.tokenIds.includes(provisioned.tokenId)
      || held.requestsPerMinute !== limits.requestsPerMinute || held.tokensPerPeriod !== limits.tokensPerPeriod || held.period !== limits.period;
    steps.push({
      step: 'llm proxy', changed,
      detail: `${provisioned.issued ? 'issued a token into' : 'kept the token in'} ${provisioned.secretName} (expires ${provisioned.expiresAt.toISOString().slice(0, 10)}); ${held === undefined ? 'registered' : changed ? 'updated' : 'already registered'} in ${llmProxy.table} with ${limits.requestsPerMinute} requests per minute, ${limits.tokensPerPeriod} tokens per ${limits.period}`,
    });
    if (llm) {
      next.push(`hand the LLM proxy token to the customer (aws secretsmanager get-secret-value --secret-id ${llmTokenSecretName(o.customer)} --query SecretString --output text), who stores it in the plane's secret byoc/${o.customer}/llm-primary (aws secretsmanager put-secret-value --secret-id byoc/${o.customer}/llm-primary --secret-string "$(cat llm-proxy-token)"); the plane configuration has llm: { via: 'vendor-proxy' }`);
    } else {
      next.push(`the plane configuration ${planeFile} has llm: { via: 'own-keys' } (kept): the customer's agents use its own provider keys; to use the vendor's LLM proxy instead, set llm: { via: 'vendor-proxy' } and hand over the token in ${llmTokenSecretName(o.customer)} for its llm-primary secret`);
    }
  }

  // 4. The running hub: the accounts (vendor's first, the customer's imports from it), and the ingest stream.
  if (o.hubUrl && system) {
    await pushAccounts(system, [{ name: 'vendor side', jwt: accounts.vendor.jwt }, { name: 'customer side', jwt: accounts.customer.jwt }], steps);
    steps.push(await ensureIngestStream(o.hubUrl, hubCa, accounts, settings));
  } else {
    steps.push({ step: 'hub', changed: false, detail: 'not pushed (no --hub-url)' });
    next.push(`push the accounts to the hub: the same command with --hub-url nats://HUB:${HUB_PORTS.client} --system-creds <system user's .creds file or secret>`);
  }

  // 5. The control plane's customerAccounts.
  const accountsNow = config.customerAccounts.includes(o.account) ? config.customerAccounts : [...config.customerAccounts, o.account];
  const vendorChanged = writeIfChanged(config.file, accountsNow === config.customerAccounts ? config.text : withCustomerAccounts(config, accountsNow));
  steps.push({ step: 'vendor config', changed: vendorChanged, detail: `${vendorChanged ? 'added' : 'already lists'} ${o.account} in customerAccounts of ${config.file}` });
  const cancelledAt = known.get(o.customer)?.cancelledAt;
  if (cancelledAt !== undefined) {
    const ms = Date.parse(cancelledAt);
    next.push(`note: the subscription of ${o.customer} was cancelled at ${cancelledAt} (byoc customer cancel), and add does not undo that${Number.isFinite(ms) ? `: ${graceText(config.deploymentMode, ms)}` : ''}`);
  }
  const sharing = [...known.values()].filter((k) => k.customerId !== o.customer && k.awsAccount === o.account && k.status === 'active').map((k) => k.customerId);
  if (sharing.length > 0) steps.push({ step: 'vendor config', changed: false, detail: `account ${o.account} is also the account of ${sharing.join(', ')}` });
  if (vendorChanged) next.push(`redeploy the control plane (allows ${o.account} on the hub's endpoint service and to pull the images): npm run synth && npx cdk deploy --app cdk.out/control-plane ByocControlPlane`);

  // 6. The customer plane's configuration.
  fs.mkdirSync(o.out, { recursive: true });
  const caChanged = writeIfChanged(caFile, hub.caCertificatePem.endsWith('\n') ? hub.caCertificatePem : `${hub.caCertificatePem}\n`);
  const planeChanged = writeIfChanged(planeFile, formatJson(plane));
  steps.push({ step: 'plane config', changed: planeChanged || caChanged, detail: `${planeChanged ? 'wrote' : 'kept'} ${planeFile}${caChanged ? ` and ${caFile}` : ''}` });
  next.push(`hand the leaf credentials to the customer (aws secretsmanager get-secret-value --secret-id ${names.leafCreds} --query SecretString --output text > ${o.customer}.creds), who stores them in the plane's secret byoc/${o.customer}/link/leaf-hub-credentials`);
  next.push(`synthesize and sign the plane: npx cdk synth --app 'node dist/bin/customer-plane.js' -c config=${planeFile} --output cdk.out/${o.customer} --quiet && npx byoc sign cdk.out/${o.customer} --key <BundleSigningKeyArn> --out bundles/${o.customer}-<version> --version <version> --hub-endpoint ${endpointService}`);
  return { steps, next };
}

/** Reads `--audit-public-key`: the customer's audit KMS key's public key, P-256 (or Ed25519). */
function readAuditPublicKey(file: string) {
  const flag = '--audit-public-key';
  const fix = `export the public key of the customer's audit KMS key (alias/byoc/<customer>/audit, ECC_NIST_P256): npx byoc pubkey --key arn:aws:kms:REGION:ACCOUNT:key/KEY-ID --out audit-public.pem, and give that file`;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new CustomerError(flag, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, fix);
  }
  try {
    return parseAuditPublicKey(bytes);
  } catch (e) {
    throw new CustomerError(flag, `${file} ${(e as Error).message}`, fix);
  }
}

/** The ingest record held, when it is one (an unusable one is replaced). */
function parseHeldIngest(text: string | undefined, customerId: string): IngestRecord | undefined {
  if (text === undefined) return undefined;
  try {
    return parseIngestRecord(text, customerId);
  } catch {
    return undefined;
  }
}

/** The held vendor ingest user, when its `.creds` are for these accounts' service role and not revoked. */
async function usableVendorUser(creds: string, accounts: Pick<CustomerAccounts, 'vendor'>): Promise<{ publicKey: string; creds: string } | undefined> {
  try {
    const { jwt } = await parseCreds(new TextEncoder().encode(creds));
    const user = decode<User>(jwt);
    const revocations = revocationsOf(accounts.vendor.jwt);
    const revoked = [revocations['*'], revocations[user.sub]].some((t) => t !== undefined && t >= user.iat);
    if (user.iss !== accounts.vendor.serviceSigningKey.publicKey || user.nats.issuer_account !== accounts.vendor.publicKey || revoked) return undefined;
    return { publicKey: user.sub, creds };
  } catch {
    return undefined;
  }
}

function toRecord(o: { customer: string; account: string }, settings: LinkSettings, status: CustomerStatus, hash: string, issuer: string, a: CustomerAccounts, leaf: string | undefined, events: CustomerEvent[]): CustomerRecord {
  return {
    format: 'byoc-customer/1', customerId: o.customer, awsAccount: o.account, shareLearning: settings.shareLearning ?? true, status, contractHash: hash,
    ...(settings.contract && hash !== contractHash() ? { contract: contractJson(settings.contract) } : {}), issuer,
    customerAccount: { publicKey: a.customer.publicKey, jwt: a.customer.jwt },
    vendorAccount: { publicKey: a.vendor.publicKey, jwt: a.vendor.jwt },
    keys: a.keys, leafUser: leaf, events,
  };
}

/** The vendor's own contract a record holds, checked against the hash it was issued for. */
function recordContract(r: CustomerRecord): BoundaryContract {
  let contract: BoundaryContract;
  try {
    contract = validateContract(JSON.parse(r.contract!), 'contract', 'setting');
  } catch (e) {
    throw new CustomerError('--customer', `the record of customer ${r.customerId} holds a contract that is not valid (${(e as Error).message})`, 'run byoc customer add again with --contract <the vendor\'s contract file>');
  }
  if (contractHash(contract) !== r.contractHash) {
    throw new CustomerError('--customer', `the record of customer ${r.customerId} holds contract ${contractHash(contract).slice(0, 12)}, not ${r.contractHash.slice(0, 12)} it was issued for`, 'run byoc customer add again with --contract <the vendor\'s contract file>');
  }
  return contract;
}

/** The accounts as stored (the JWTs as issued, the signing keys from their seeds). */
function fromRecord(r: CustomerRecord): Pick<CustomerAccounts, 'customerId' | 'settings' | 'customer' | 'vendor'> {
  const material = (seed: string) => ({ seed, publicKey: fromSeed(new TextEncoder().encode(seed)).getPublicKey() });
  const name = (jwt: string) => decode(jwt).name;
  return {
    customerId: r.customerId,
    settings: { customerId: r.customerId, shareLearning: r.shareLearning, ...(r.contract !== undefined ? { contract: recordContract(r) } : {}) },
    customer: { name: name(r.customerAccount.jwt), ...material(r.keys.customer.seed), jwt: r.customerAccount.jwt, leafSigningKey: material(r.keys.customer.leafSigningKeySeed) },
    vendor: { name: name(r.vendorAccount.jwt), ...material(r.keys.vendor.seed), jwt: r.vendorAccount.jwt, serviceSigningKey: material(r.keys.vendor.serviceSigningKeySeed) },
  };
}

/** The held `.creds` when they are for these accounts, with these settings' permissions, and not revoked. */
async function usableLeaf(creds: string, accounts: Pick<CustomerAccounts, 'customer'>, settings: LinkSettings): Promise<{ publicKey: string; creds: string } | undefined> {
  try {
    const { jwt } = await parseCreds(new TextEncoder().encode(creds));
    const user = decode<User>(jwt);
    const perms = hubLeafPermissions(settings);
    const revocations = revocationsOf(accounts.customer.jwt);
    const revoked = [revocations['*'], revocations[user.sub]].some((t) => t !== undefined && t >= user.iat);
    const same = (a: readonly string[] | undefined, b: readonly string[]) => JSON.stringify(a ?? []) === JSON.stringify(b);
    if (user.iss !== accounts.customer.leafSigningKey.publicKey || user.nats.issuer_account !== accounts.customer.publicKey || revoked) return undefined;
    if (!same(user.nats.pub?.allow, perms.publish) || !same(user.nats.sub?.allow, perms.subscribe)) return undefined;
    return { publicKey: user.sub, creds };
  } catch {
    return undefined;
  }
}

/** Creates the customer's ingest stream in its vendor account, as a vendor service user, when absent. */
async function ensureIngestStream(url: string, ca: string, accounts: Pick<CustomerAccounts, 'customerId' | 'vendor'>, settings: LinkSettings): Promise<StepReport> {
  const nc = await hubConnection(url, (await vendorUser(accounts, `vendor-${accounts.customerId}-onboarding`)).creds, ca, vendorInboxPrefix(accounts.customerId));
  try {
    const jsm = await jetstreamManager(nc);
    const stream = hubJwtIngestStream(settings);
    try {
      await jsm.streams.info(stream.name);
      return { step: 'hub', changed: false, detail: `ingest stream ${stream.name} of ${accounts.vendor.name} exists` };
    } catch (e) {
      if (!/stream not found/i.test((e as Error).message)) throw e;
    }
    await jsm.streams.add(stream);
    return { step: 'hub', changed: true, detail: `created ingest stream ${stream.name} in ${accounts.vendor.name}` };
  } finally {
    await nc.close();
  }
}

function readExistingPlane(file: string): CustomerPlaneConfig | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CustomerError('--out', `${file} exists and is not JSON (${(e as Error).message})`, 'remove it (add writes it again) or repair it');
  }
}

/** Images: each flag, else the release, else the plane configuration already written, else (NATS) the hub's image. */
function resolveImages(o: AddCustomerOptions, config: VendorConfig, existing: CustomerPlaneConfig | undefined): ReleaseImages {
  const fromRelease = o.release ? releaseImages(o.release) : {};
  const flags: Record<keyof ReleaseImages, string> = { agentRuntime: '--agent-runtime-image', natsServer: '--nats-server-image', otelCollector: '--otel-collector-image' };
  const out: Partial<Record<keyof ReleaseImages, string>> = {};
  for (const key of IMAGE_KEYS) {
    const ref = o.images?.[key] ?? fromRelease[key] ?? existing?.images?.[key] ?? (key === 'natsServer' ? config.hub?.image : undefined);
    if (!ref) {
      throw new CustomerError(flags[key], `missing: no image for ${key}`, `give --release <bundle or ${RELEASE}> or ${flags[key]} ACCOUNT.dkr.ecr.REGION.amazonaws.com/${IMAGE_REPOSITORIES[IMAGE_KEYS.indexOf(key)]}@sha256:<digest>`);
    }
    let image;
    try {
      image = parseImageRef(`images.${key}`, ref);
    } catch (e) {
      throw new CustomerError(flags[key], (e as Error).message.replace(/\. Fix: .*$/, ''), /Fix: (.*)$/.exec((e as Error).message)?.[1] ?? '');
    }
    const repository = IMAGE_REPOSITORIES[IMAGE_KEYS.indexOf(key)];
    // The registered accounts may pull from exactly the control plane's repositories.
    if (image.repository !== repository || (config.account && image.account !== config.account) || (config.region && image.region !== config.region)) {
      throw new CustomerError(flags[key], `"${ref}" is not in the control plane's repository ${config.account ?? 'ACCOUNT'}.dkr.ecr.${config.region ?? 'REGION'}.amazonaws.com/${repository}`,
        'give the image the release pushed to the control plane\'s repository: registered customer accounts may pull from those repositories only');
    }
    out[key] = ref;
  }
  return out as ReleaseImages;
}

/** The customer plane configuration: the settings `add` owns, over whatever else an existing file holds. */
function planeConfig(existing: CustomerPlaneConfig | undefined, v: { customerId: string; account: string; images: ReleaseImages; shareLearning: boolean; host: string; endpointService: string; llm?: LlmAccess }): CustomerPlaneConfig {
  const { caCertificatePem: _pem, cidrs: _cidrs, ...otherHub } = existing?.vendorHub ?? {};
  void _pem; void _cidrs;
  return {
    ...(existing ?? {}),
    customerId: v.customerId,
    account: v.account,
    images: { agentRuntime: v.images.agentRuntime, natsServer: v.images.natsServer, otelCollector: v.images.otelCollector },
    shareLearning: v.shareLearning,
    vendorHub: { ...otherHub, host: v.host, port: HUB_PORTS.leafnode, caCertificateFile: HUB_CA_FILE, endpointService: v.endpointService },
    ...(v.llm ? { llm: v.llm } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------
// list

export interface ListedCustomer {
  readonly customerId?: string;
  readonly awsAccount: string;
  readonly status: CustomerStatus | 'unknown';
  /** The account is in the vendor configuration's customerAccounts. */
  readonly inVendorConfig: boolean;
  readonly accountSecret: boolean;
  readonly leafCredsSecret: boolean;
  readonly ingestSecret: boolean;
  /** The customer's audit public key is registered: the ingest service verifies its metrics and consumes it. */
  readonly auditKeyRegistered: boolean;
  /** That key's fingerprint (`sha256:<hex>`, as `byoc fingerprint` prints it). */
  readonly auditKeyFingerprint?: string;
  /** When the customer's subscription was cancelled (`byoc customer cancel`), as recorded. */
  readonly cancelledAt?: string;
}

/** Every customer with secrets, and every account of `customerAccounts` (with or without a customer). */
export async function listCustomers(o: { vendorConfig: string; region?: string }, sm?: SecretsManagerClient): Promise<ListedCustomer[]> {
  const config = readVendorConfig(o.vendorConfig);
  const known = await listCustomerSecrets(sm ?? secretsClient(o.region, config));
  const rows: ListedCustomer[] = [...known.values()].sort((a, b) => a.customerId.localeCompare(b.customerId)).map((k) => ({
    customerId: k.customerId,
    awsAccount: k.awsAccount ?? '',
    status: k.status ?? 'unknown',
    inVendorConfig: k.awsAccount !== undefined && config.customerAccounts.includes(k.awsAccount),
    accountSecret: k.accountSecret,
    leafCredsSecret: k.leafCredsSecret,
    ingestSecret: k.ingestSecret,
    auditKeyRegistered: k.auditKey !== undefined,
    ...(k.auditKey ? { auditKeyFingerprint: k.auditKey } : {}),
    ...(k.cancelledAt !== undefined ? { cancelledAt: k.cancelledAt } : {}),
  }));
  for (const a of config.customerAccounts) {
    if (!rows.some((r) => r.awsAccount === a)) rows.push({ awsAccount: a, status: 'unknown', inVendorConfig: true, accountSecret: false, leafCredsSecret: false, ingestSecret: false, auditKeyRegistered: false });
  }
  return rows;
}

export function formatList(rows: ListedCustomer[]): string {
  const head = ['customer', 'account', 'status', 'customerAccounts', 'nats-account secret', 'leaf-creds secret', 'ingest secret', 'audit key', 'note'];
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const note = (r: ListedCustomer) => {
    if (!r.customerId) return 'no customer record (not added with byoc customer add)';
    const notes: string[] = [];
    if (r.status === 'active' && !r.inVendorConfig) notes.push('missing from customerAccounts: run add again');
    if (r.status === 'revoked' && r.inVendorConfig) notes.push('revoked, account still allowed (shared, or not yet removed)');
    if (r.status === 'active' && !r.ingestSecret) notes.push('no ingest secret: run add again');
    else if (r.status === 'active' && !r.auditKeyRegistered) notes.push('audit key not registered: not ingested until add --audit-public-key');
    if (r.cancelledAt !== undefined) notes.push(`subscription cancelled at ${r.cancelledAt}`);
    return notes.join('; ');
  };
  const table = [head, ...rows.map((r) => [r.customerId ?? '-', r.awsAccount || '-', r.status, yes(r.inVendorConfig), yes(r.accountSecret), yes(r.leafCredsSecret), yes(r.ingestSecret), yes(r.auditKeyRegistered), note(r)])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// revoke

export interface RevokeCustomerOptions {
  readonly customer: string;
  readonly vendorConfig: string;
  readonly hubUrl?: string;
  readonly systemCreds?: string;
  readonly hubCa?: string;
  /** Only record the revocation: the hub keeps admitting the customer until it is pushed. */
  readonly noPush?: boolean;
  readonly reason?: string;
  readonly operatorSeedSecret?: string;
  readonly controlPlaneOutputs?: string;
  readonly region?: string;
  /** The LLM proxy's table. @default - the control plane's output `LlmProxyTableName`, else no proxy */
  readonly llmTable?: string;
}

/** Revokes a customer: its account JWT revoked and pushed, its AWS account out of customerAccounts, the event recorded. */
export async function revokeCustomer(o: RevokeCustomerOptions, sm?: SecretsManagerClient): Promise<CommandResult> {
  checkCustomerId(o.customer);
  if (!o.noPush && (o.hubUrl === undefined || o.systemCreds === undefined)) {
    throw new CustomerError(o.hubUrl === undefined ? '--hub-url' : '--system-creds', 'missing: a revocation takes effect only when the running hub receives it',
      `give --hub-url nats://HUB:${HUB_PORTS.client} and --system-creds (the system user's .creds file or secret); or --no-push to only record it (the hub keeps admitting the customer until a later revoke pushes it)`);
  }
  if (o.hubUrl !== undefined) parseHubUrl(o.hubUrl);
  if (o.reason !== undefined) checkReason(o.reason);
  const config = readVendorConfig(o.vendorConfig);
  const hub = requireHub(config);
  const client = sm ?? secretsClient(o.region, config);
  const names = customerSecretNames(o.customer);
  const stored = await getSecret(client, names.account);
  if (stored === undefined) {
    throw new CustomerError('--customer', `there is no customer ${o.customer} (no secret ${names.account})`, 'check the identifier with byoc customer list --vendor-config FILE (and --region, the control plane\'s)');
  }
  const record = parseRecord(stored, o.customer);
  const outputs = o.controlPlaneOutputs ? readControlPlaneOutputs(o.controlPlaneOutputs) : {};
  const llmProxy = llmProxyTarget({ llmTable: o.llmTable }, outputs, false);
  const steps: StepReport[] = [];
  const next: string[] = [];
  // The hub is connected to first: an unreachable hub fails the command before anything is recorded.
  const system = !o.noPush && o.hubUrl && o.systemCreds
    ? await hubConnection(o.hubUrl, await systemCredentials(client, o.systemCreds, hub.systemAccountPublicKey), readHubCa(o.hubCa, hub.caCertificatePem), SYSTEM_USER_INBOX)
    : undefined;
  try {
    const dynamodb = llmProxy ? new DynamoDBClient(awsClientConfig(o.region ?? config.region)) : undefined;
    try {
      return await revokeSteps(o, client, config, record, outputs, system, steps, next, llmProxy && dynamodb ? new LlmStore(dynamodb, llmProxy.table) : undefined);
    } finally {
      dynamodb?.destroy();
    }
  } finally {
    await system?.close().catch(() => undefined);
  }
}

async function revokeSteps(o: RevokeCustomerOptions, client: Sm, config: VendorConfig, record: CustomerRecord, outputs: Record<string, string>, system: NatsConnection | undefined, steps: StepReport[], next: string[], llmStore: LlmStore | undefined): Promise<CommandResult> {
  const hub = requireHub(config);
  const names = customerSecretNames(o.customer);

  // 1. The revoked account JWT, recorded before it is pushed: a failed push is completed by running again.
  if (record.status !== 'revoked') {
    const seed = await operatorSeed(client, o.operatorSeedSecret ?? outputs[CONTROL_PLANE_OUTPUTS.operatorSeedSecret] ?? DEFAULT_OPERATOR_SEED_SECRET, hub.operatorJwt);
    const revoked = await revokeAccount(record.customerAccount.jwt, seed);
    const at = new Date(decode(revoked).iat * 1000).toISOString();
    record = {
      ...record, status: 'revoked', customerAccount: { ...record.customerAccount, jwt: revoked },
      events: [...record.events, { at, action: 'revoked', awsAccount: record.awsAccount, detail: `every user issued up to ${at} revoked, no connection admitted${o.reason ? `; reason: ${o.reason}` : ''}` }],
    };
  }
  const tags = (role: string) => ({ [TAGS.customer]: o.customer, [TAGS.awsAccount]: record.awsAccount, [TAGS.status]: 'revoked', [TAGS.role]: role });
  const wrote = await putSecret(client, names.account, recordJson(record), tags('nats-account'), '');
  steps.push({ step: 'nats accounts', changed: wrote !== 'unchanged', detail: `${wrote === 'unchanged' ? 'already revoked in' : 'recorded the revocation in'} ${names.account} (customer account ${record.customerAccount.publicKey})` });
  const leafCreds = await getSecret(client, names.leafCreds);
  if (leafCreds !== undefined) {
    const t = await putSecret(client, names.leafCreds, leafCreds, tags('leaf-creds'), '');
    steps.push({ step: 'leaf credentials', changed: t !== 'unchanged', detail: `${names.leafCreds} ${t === 'unchanged' ? 'already tagged' : 'tagged'} revoked (the credentials are refused by the hub once it holds the revoked account)` });
  }
  // The ingest service's registration: revoked, so the service stops the customer's consumer at its next read.
  const ingestText = await getSecret(client, names.ingest);
  if (ingestText !== undefined) {
    const held = parseHeldIngest(ingestText, o.customer);
    const auditKey = held?.auditPublicKeyPem !== undefined ? parseAuditPublicKey(held.auditPublicKeyPem).fingerprint : 'none';
    const t = await putSecret(client, names.ingest, held ? ingestRecordJson({ ...held, status: 'revoked' }) : ingestText, { ...tags('ingest'), [TAGS.auditKey]: auditKey }, '');
    steps.push({ step: 'ingest', changed: t !== 'unchanged', detail: `${names.ingest} ${t === 'unchanged' ? 'already' : 'marked'} revoked (the ingest service stops the customer's consumer at its next registry read)` });
  }
  // The LLM proxy: the customer revoked in its table, which every proxy task reads per request (its tokens refused at once).
  if (llmStore) {
    const table = o.llmTable ?? outputs[CONTROL_PLANE_OUTPUTS.llmProxyTable];
    let held;
    try {
      held = await llmStore.customer(o.customer);
      if (held?.status === 'active') await llmStore.revokeCustomer(o.customer, o.reason ?? 'revoked with byoc customer revoke');
    } catch (e) {
      throw llmAwsError('--llm-table', `revoking customer ${o.customer} in ${table}`, e);
    }
    steps.push({
      step: 'llm proxy', changed: held?.status === 'active',
      detail: held === undefined ? `${o.customer} was never registered in ${table}`
        : `${held.status === 'active' ? 'revoked' : 'already revoked'} ${o.customer} in ${table} (the proxy refuses its tokens; add --reinstate issues a new one)`,
    });
  }

  // 2. The running hub: the revoked JWT replaces the active one; the hub disconnects the leaf at once.
  if (system) {
    await pushAccounts(system, [{ name: 'customer side, revoked', jwt: record.customerAccount.jwt }], steps);
  } else {
    steps.push({ step: 'hub', changed: false, detail: 'not pushed (--no-push): the hub still admits the customer' });
    next.push(`push the revocation: byoc customer revoke --customer ${o.customer} --vendor-config ${config.file} --hub-url nats://HUB:${HUB_PORTS.client} --system-creds <system user's .creds>`);
  }

  // 3. The AWS account leaves customerAccounts, unless another active customer has it too.
  const others = [...(await listCustomerSecrets(client)).values()].filter((k) => k.customerId !== o.customer && k.awsAccount === record.awsAccount && k.status === 'active').map((k) => k.customerId);
  if (others.length > 0) {
    steps.push({ step: 'vendor config', changed: false, detail: `kept ${record.awsAccount} in customerAccounts: it is also the account of ${others.join(', ')}` });
  } else {
    const remaining = config.customerAccounts.filter((a) => a !== record.awsAccount);
    const changed = remaining.length !== config.customerAccounts.length && writeIfChanged(config.file, withCustomerAccounts(config, remaining));
    steps.push({ step: 'vendor config', changed, detail: `${changed ? 'removed' : 'no longer lists'} ${record.awsAccount} ${changed ? 'from' : 'in'} customerAccounts of ${config.file}` });
    if (changed) {
      next.push(`redeploy the control plane (removes ${record.awsAccount} from the endpoint service's principals and the image pull policies): npm run synth && npx cdk deploy --app cdk.out/control-plane ByocControlPlane`);
      next.push(`reject its existing endpoint connection (removing the principal leaves it up): aws ec2 describe-vpc-endpoint-connections --filters Name=service-id,Values=<vpce-svc-...> --query "VpcEndpointConnections[?VpcEndpointOwner=='${record.awsAccount}'].VpcEndpointId", then aws ec2 reject-vpc-endpoint-connections --service-id <vpce-svc-...> --vpc-endpoint-ids <ids>`);
    }
  }
  return { steps, next };
}

// ---------------------------------------------------------------------------------------------------------
// cancel

export interface CancelCustomerOptions {
  readonly customer: string;
  readonly vendorConfig: string;
  /**
   * When the subscription ended: ISO 8601 in UTC, to the second or the millisecond (`2026-11-30T00:00:00Z`); not
   * in the future, not before the customer was registered. Ignored once a cancellation is recorded (it is kept).
   * @default - now
   */
  readonly at?: string;
  readonly reason?: string;
  readonly region?: string;
}

const DAY_MS = 86_400_000;

/** What a cancellation at `cancelledAtMs` means in `mode`: when the retention sweep stops serving and deletes. */
function graceText(mode: DeploymentMode, cancelledAtMs: number): string {
  const rule = RETENTION[mode];
  if (rule.cancellationGraceDays === undefined) return `deploymentMode ${mode} deletes nothing on a cancellation (the vendor's own policies apply)`;
  const until = formatCancelledAt(cancelledAtMs + rule.cancellationGraceDays * DAY_MS);
  return `in deploymentMode ${mode} the ingest service's retention sweep stops serving the customer's data from ${formatCancelledAt(cancelledAtMs)} `
    + `and deletes it from ${until}, ${rule.cancellationGraceDays} days later${rule.auditKept ? ' (its rejection records, audit metadata, are kept)' : ''}`;
}

/** `--at`: a time in UTC (`Z`), to the second or millisecond, that exists, not in the future, not absurdly early. */
function parseAt(value: string, nowMs: number): number {
  const fix = 'give when the subscription ended in UTC, e.g. --at 2026-11-30T00:00:00Z (or no --at: now)';
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))?Z$/.exec(value);
  if (!m) throw new CustomerError('--at', `"${value.slice(0, 60)}" is not a time as YYYY-MM-DDTHH:MM:SSZ`, fix);
  let ms: number;
  try {
    ms = parseCancelledAt(`${m[1]}.${(m[2] ?? '').padEnd(3, '0')}Z`);
  } catch (e) {
    throw new CustomerError('--at', (e as Error).message, fix);
  }
  if (ms > nowMs) throw new CustomerError('--at', `${value} is in the future`, 'record a cancellation once the subscription has ended (the retention sweep counts the grace period from this time)');
  return ms;
}

/**
 * Records that a customer's subscription is cancelled: the time on its ingest secret (the tag `byoc:cancelled-at`,
 * which the ingest service's retention sweep reads) and an event in its history. Once recorded, the time is kept:
 * running it again changes nothing. Revokes nothing.
 */
export async function cancelCustomer(o: CancelCustomerOptions, sm?: SecretsManagerClient): Promise<CommandResult> {
  checkCustomerId(o.customer);
  const now = Date.now();
  const given = o.at !== undefined ? parseAt(o.at, now) : undefined;
  if (o.reason !== undefined) checkReason(o.reason);
  const config = readVendorConfig(o.vendorConfig);
  const client = sm ?? secretsClient(o.region, config);
  const names = customerSecretNames(o.customer);
  const stored = await getSecret(client, names.account);
  if (stored === undefined) {
    throw new CustomerError('--customer', `there is no customer ${o.customer} (no secret ${names.account})`, 'check the identifier with byoc customer list --vendor-config FILE (and --region, the control plane\'s)');
  }
  let record = parseRecord(stored, o.customer);
  let described;
  try {
    described = await client.send(new DescribeSecretCommand({ SecretId: names.ingest }));
  } catch (e) {
    if (!notFound(e)) throw e;
  }
  if (!described || described.DeletedDate) {
    throw new CustomerError('--customer', `customer ${o.customer} has no ingest registration (no secret ${names.ingest}), where the ingest service reads a cancellation`,
      `run byoc customer add for ${o.customer} again (it creates the secret), then cancel`);
  }
  const tagged = (described.Tags ?? []).find((t) => t.Key === TAGS.cancelledAt)?.Value;
  let taggedMs: number | undefined;
  if (tagged !== undefined) {
    try {
      taggedMs = parseCancelledAt(tagged);
    } catch (e) {
      throw new CustomerError('--customer', `the tag ${TAGS.cancelledAt} of ${names.ingest} is not a time: ${(e as Error).message}`,
        `remove it (aws secretsmanager untag-resource --secret-id ${names.ingest} --tag-keys ${TAGS.cancelledAt}) and cancel again with --at <when the subscription ended>`);
    }
  }
  // A run cut short between its two writes left the time in one of them.
  const event = [...record.events].reverse().find((e) => e.action === 'cancelled' && Number.isFinite(Date.parse(e.at)));
  const recorded = taggedMs ?? (event ? Date.parse(event.at) : undefined);
  if (recorded !== undefined && given !== undefined && given !== recorded) {
    throw new CustomerError('--at', `the subscription of ${o.customer} was cancelled at ${formatCancelledAt(recorded)}, not ${formatCancelledAt(given)}`,
      `a recorded cancellation is kept (the grace period counts from it): run cancel without --at; to correct a mistake, remove the tag (aws secretsmanager untag-resource --secret-id ${names.ingest} --tag-keys ${TAGS.cancelledAt}) and cancel again with --at`);
  }
  const registered = record.events.find((e) => e.action === 'registered')?.at;
  if (recorded === undefined && given !== undefined && registered !== undefined && given < Date.parse(registered)) {
    throw new CustomerError('--at', `${o.at} is before ${o.customer} was registered (${registered})`, 'give when the subscription ended');
  }
  const at = recorded ?? given ?? now;
  const atText = formatCancelledAt(at);
  const steps: StepReport[] = [];
  const next: string[] = [];

  // 1. The tag the retention sweep reads, first: it is what takes effect.
  if (tagged === undefined) await client.send(new TagResourceCommand({ SecretId: names.ingest, Tags: [{ Key: TAGS.cancelledAt, Value: atText }] }));
  steps.push({
    step: 'ingest', changed: tagged === undefined,
    detail: `${names.ingest} ${tagged === undefined ? 'tagged' : 'already tagged'} ${TAGS.cancelledAt}=${atText}: ${graceText(config.deploymentMode, at)}`,
  });
  // 2. The history, next to the revocations.
  if (!event) {
    const detail = `subscription cancelled${given !== undefined ? ` (recorded at ${formatCancelledAt(now)})` : ''}${o.reason ? `; reason: ${o.reason}` : ''}`;
    record = { ...record, events: [...record.events, { at: atText, action: 'cancelled', awsAccount: record.awsAccount, detail }] };
    await client.send(new PutSecretValueCommand({ SecretId: names.account, SecretString: recordJson(record) }));
  }
  steps.push({ step: 'nats accounts', changed: !event, detail: `${event ? 'already recorded' : 'recorded'} the cancellation in ${names.account}` });
  if (record.status === 'active') {
    next.push(`${o.customer} is still registered: revoke it so its plane stops sending (what it sends meanwhile is not served, and goes with the rest): byoc customer revoke --customer ${o.customer} --vendor-config ${config.file} --hub-url nats://HUB:${HUB_PORTS.client} --system-creds <system user's .creds>`);
  }
  return { steps, next };
}

// ---------------------------------------------------------------------------------------------------------
// CLI

const lines = (r: CommandResult) => [
  ...r.steps.map((s) => `${s.step}: ${s.detail}${s.changed ? '' : ' (unchanged)'}`),
  ...r.next.map((n) => `next: ${n}`),
].join('\n');

/** Registers `byoc customer add|list|revoke|cancel` on the CLI (as its subcommands, so they inherit its error handling). */
export function registerCustomerCommands(cli: Command): Command {
  const customer = cli.command('customer').description('the vendor\'s onboarding of customers: add, list, revoke, cancel (each step idempotent)');
  const aws = (c: Command) => c
    .option('--region <region>', 'region of the control plane\'s secrets (default: the vendor configuration\'s region, else the AWS SDK\'s)');
  const hubOptions = (c: Command) => c
    .option('--hub-url <url>', `client port of a running hub node, nats://HOST:${HUB_PORTS.client} or tls://HOST:${HUB_PORTS.client}`)
    .option('--system-creds <file-or-secret>', 'the system user\'s .creds: a file, or the name or ARN of the secret holding them')
    .option('--hub-ca <file>', 'CA to verify a tls:// hub with (default: the vendor configuration\'s hub CA)')
    .option('--operator-seed-secret <id>', `secret holding the operator signing seed (default: the control plane's ${CONTROL_PLANE_OUTPUTS.operatorSeedSecret} output, else ${DEFAULT_OPERATOR_SEED_SECRET})`)
    .option('--control-plane-outputs <file>', `the control plane's cdk deploy --outputs-file JSON (${CONTROL_PLANE_OUTPUTS.endpointService}, ${CONTROL_PLANE_OUTPUTS.operatorSeedSecret}; with the LLM proxy ${CONTROL_PLANE_OUTPUTS.llmProxyTokenKey}, ${CONTROL_PLANE_OUTPUTS.llmProxyTable})`);

  aws(hubOptions(customer.command('add')
    .description('register a customer: its AWS account in customerAccounts, its NATS accounts and leaf credentials in Secrets Manager, pushed to the hub, its plane configuration <out>/<customer>.json')
    .requiredOption('--customer <id>', 'customer identifier (3 to 20 lower-case letters, digits, hyphens)')
    .requiredOption('--account <id>', 'the customer\'s 12-digit AWS account ID')
    .addOption(new Option('--share-learning <bool>', 'share anonymised fingerprints (false: opted out)').default(true).argParser((v) => parseBoolean('--share-learning', v)))
    .requiredOption('--vendor-config <file>', 'the control plane\'s configuration (customerAccounts is updated in it)')
    .requiredOption('--out <dir>', 'folder of the customer plane configurations (writes <customer>.json and the hub CA)')))
    .option('--endpoint-service <name>', 'the hub\'s VPC endpoint service (default: from --control-plane-outputs)')
    .option('--release <file>', `a signed bundle or its ${RELEASE}: the images the plane runs`)
    .option('--agent-runtime-image <ref>', 'agent runtime image, pinned by digest (overrides the release)')
    .option('--nats-server-image <ref>', 'NATS server image, pinned by digest (default: the release\'s, else the hub\'s)')
    .option('--otel-collector-image <ref>', 'OpenTelemetry collector image, pinned by digest (overrides the release)')
    .option('--kms-key <id>', 'KMS key the customer\'s secrets are created with (default: aws/secretsmanager)')
    .option('--reinstate', 'register a revoked customer again (new leaf credentials; what was issued before stays revoked)')
    .option('--contract <file>', 'the vendor\'s own boundary contract (JSON, as config/boundary-contract.json), the one its control plane and the customer\'s plane are built with: the accounts\' permissions are issued from it (default: the kit\'s contract)')
    .option('--audit-public-key <file>', 'public key of the customer\'s audit KMS key (PEM from byoc pubkey --key <its ARN>), which its signed metrics must verify with; known once the customer has deployed (default: the one registered before)')
    .option('--llm-token-key <arn>', `the LLM proxy's token signing key (default: the ${CONTROL_PLANE_OUTPUTS.llmProxyTokenKey} output; with the proxy, the customer is registered and given a token)`)
    .option('--llm-table <name>', `the LLM proxy's table (default: the ${CONTROL_PLANE_OUTPUTS.llmProxyTable} output)`)
    .option('--llm-requests-per-minute <n>', `requests per minute the LLM proxy admits of the customer (default: its current limit, else ${DEFAULT_LIMITS.requestsPerMinute})`)
    .option('--llm-tokens-per-period <n>', `LLM tokens per budget period (default: its current budget, else ${DEFAULT_LIMITS.tokensPerPeriod})`)
    .option('--llm-budget-period <day|month>', `the budget's period (default: its current one, else ${DEFAULT_LIMITS.period})`)
    .action(async (opts) => {
      const images: Partial<ReleaseImages> = { agentRuntime: opts.agentRuntimeImage, natsServer: opts.natsServerImage, otelCollector: opts.otelCollectorImage };
      console.log(lines(await addCustomer({ ...opts, images })));
    });

  aws(customer.command('list')
    .description('the customers: AWS account, status, whether their account is in customerAccounts and their secrets exist')
    .requiredOption('--vendor-config <file>', 'the control plane\'s configuration')
    .option('--json', 'print JSON'))
    .action(async (opts: { vendorConfig: string; region?: string; json?: boolean }) => {
      const rows = await listCustomers(opts);
      console.log(opts.json ? JSON.stringify(rows, null, 2) : formatList(rows));
    });

  aws(hubOptions(customer.command('revoke')
    .description('revoke a customer: its NATS account revoked on the running hub (its leaf is cut off), its AWS account out of customerAccounts, the revocation recorded in its secret; with the LLM proxy, revoked in its table. Undone by add --reinstate; it does not end the subscription (see cancel)')
    .requiredOption('--customer <id>', 'customer identifier')
    .requiredOption('--vendor-config <file>', 'the control plane\'s configuration (customerAccounts is updated in it)')))
    .option('--reason <text>', 'recorded with the revocation')
    .option('--llm-table <name>', `the LLM proxy's table, where the customer is revoked too (default: the ${CONTROL_PLANE_OUTPUTS.llmProxyTable} output of --control-plane-outputs; none: no proxy)`)
    .option('--no-push', 'only record the revocation (the hub keeps admitting the customer until pushed)')
    .action(async (opts) => {
      console.log(lines(await revokeCustomer({ ...opts, noPush: opts.push === false })));
    });

  const graces = (['trial', 'starter'] as const).map((m) => `${m} ${RETENTION[m].cancellationGraceDays} days`).join(', ');
  aws(customer.command('cancel')
    .description(`record the end of a customer's subscription: the time on its ingest secret (tag ${TAGS.cancelledAt}), where the ingest service's retention sweep reads it, and in its history. In a vendor-hosted deploymentMode its data is no longer served from that time and is deleted after the mode's grace (${graces}); byoc deletes nothing. Once recorded, the time is kept. Revokes nothing: run revoke too`)
    .requiredOption('--customer <id>', 'customer identifier')
    .requiredOption('--vendor-config <file>', 'the control plane\'s configuration (read for its deploymentMode and region; not changed)')
    .option('--at <time>', `when the subscription ended, in UTC: 2026-11-30T00:00:00Z; not in the future, not before ${EARLIEST_CANCELLATION.slice(0, 4)} or the customer's registration (default: now)`)
    .option('--reason <text>', 'recorded with the cancellation'))
    .action(async (opts: CancelCustomerOptions) => {
      console.log(lines(await cancelCustomer(opts)));
    });
  return customer;
}

