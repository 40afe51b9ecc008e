import * as http from 'http';
import * as https from 'https';
import {
  AuthorizeSecurityGroupEgressCommand, DescribeManagedPrefixListsCommand, DescribeSecurityGroupsCommand, EC2Client, IpPermission,
  RevokeSecurityGroupEgressCommand, RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Client } from 'pg';
import { ensureAgentRoles, verifyFullTls } from '../database-roles';
import {
  CustomResourceEvent, CustomResourceResponse, DATABASE_ROLES, PREFIX_LIST_ID, RESOURCE_TYPES, RESTRICT_DEFAULT_SECURITY_GROUP,
  S3_PREFIX_LIST,
} from './protocol';

/**
 * The plane's deploy-time function: serves the custom resources of `protocol.ts` straight from CloudFormation
 * (the resource's ServiceToken is this function) and PUTs each response to the request's presigned ResponseURL
 * itself. Every path ends in exactly one response, SUCCESS or FAILED with the reason, before the function's
 * own timeout: nothing waits on a hung connection (each call has a time limit, and the whole request a deadline).
 */

export interface HandlerDeps {
  readonly ec2: EC2Client;
  readonly secrets: SecretsManagerClient;
  /** The CA certificates a database's certificate must chain to (the RDS CA bundle in the Lambda). */
  readonly databaseCa: readonly string[];
  /** One structured log line (CloudWatch Logs in the Lambda). Never given a secret or the presigned URL. */
  readonly log?: (line: Record<string, unknown>) => void;
  /** @default 10 s */
  readonly databaseConnectTimeoutMs?: number;
}

/** What the Lambda runtime's context offers that the handler uses. */
export interface HandlerContext {
  getRemainingTimeInMillis(): number;
}

/** Time kept back from the function's timeout to deliver the response. */
export const RESPONSE_RESERVE_MS = 20_000;
/** Deadline for the work when no Lambda context is given (a direct call). */
export const DEFAULT_WORK_MS = 60_000;
/** Longest reason put in a response (the whole body must stay under CloudFormation's 4 KiB). */
const MAX_REASON = 1000;
const RESPONSE_ATTEMPT_TIMEOUT_MS = 10_000;
/** Statement and query limit on the database: role DDL takes milliseconds, a lock wait must not take the deadline. */
const DATABASE_QUERY_TIMEOUT_MS = 30_000;

interface Outcome {
  readonly physicalResourceId: string;
  readonly data?: Record<string, string>;
}

export type DeployTimeHandler = (event: CustomResourceEvent, context?: HandlerContext) => Promise<CustomResourceResponse>;

export function createHandler(deps: HandlerDeps): DeployTimeHandler {
  const log = deps.log ?? ((line) => console.log(JSON.stringify(line)));
  return async (event, context) => {
    const deadline = Date.now() + (context ? context.getRemainingTimeInMillis() - RESPONSE_RESERVE_MS : DEFAULT_WORK_MS);
    const where = { resourceType: event.ResourceType, requestType: event.RequestType, logicalResourceId: event.LogicalResourceId, requestId: event.RequestId };
    log({ ...where, message: 'request' });
    let response: CustomResourceResponse;
    const abort = new AbortController();
    try {
      const outcome = await withDeadline(serve(event, deps, log, abort.signal), deadline,
        `did not finish within ${Math.round((deadline - Date.now()) / 1000)} s of the function's timeout`, abort);
      response = {
        Status: 'SUCCESS', PhysicalResourceId: outcome.physicalResourceId, StackId: event.StackId, RequestId: event.RequestId,
        LogicalResourceId: event.LogicalResourceId, ...(outcome.data ? { Data: outcome.data } : {}),
      };
    } catch (e) {
      const reason = `${event.ResourceType} ${event.RequestType}: ${describe(e)}`.slice(0, MAX_REASON);
      log({ ...where, message: 'failed', reason });
      response = {
        Status: 'FAILED', Reason: reason, StackId: event.StackId, RequestId: event.RequestId, LogicalResourceId: event.LogicalResourceId,
        // A failed create still needs an ID; the rollback's Delete for it is a no-op.
        PhysicalResourceId: event.PhysicalResourceId ?? `${event.LogicalResourceId}-create-failed-${event.RequestId}`.slice(0, 1000),
      };
    }
    await putResponse(event.ResponseURL, response, deadline + RESPONSE_RESERVE_MS / 2);
    log({ ...where, message: 'responded', status: response.Status, physicalResourceId: response.PhysicalResourceId });
    return response;
  };
}

async function serve(event: CustomResourceEvent, deps: HandlerDeps, log: (line: Record<string, unknown>) => void, signal: AbortSignal): Promise<Outcome> {
  const props = event.ResourceProperties ?? {};
  switch (event.ResourceType) {
    case S3_PREFIX_LIST: return s3PrefixList(event, props, deps.ec2, signal);
    case RESTRICT_DEFAULT_SECURITY_GROUP: return restrictDefaultSecurityGroup(event, props, deps.ec2, signal);
    case DATABASE_ROLES: return databaseRoles(event, props, deps, log, signal);
    default:
      // Never block a stack's deletion over a resource this function does not know.
      if (event.RequestType === 'Delete') return { physicalResourceId: event.PhysicalResourceId! };
      throw new Error(`unknown resource type; this function serves ${RESOURCE_TYPES.join(', ')}`);
  }
}

/**
 * `Custom::S3PrefixList`: the ID of the AWS-managed list `com.amazonaws.<region>.s3`, and HTTPS from the
 * response security group to it, so this function can reach S3 (through the gateway endpoint) to answer
 * CloudFormation. Delete changes nothing: the rule goes with its security group.
 */
async function s3PrefixList(event: CustomResourceEvent, props: Record<string, unknown>, ec2: EC2Client, signal: AbortSignal): Promise<Outcome> {
  if (event.RequestType === 'Delete') return { physicalResourceId: event.PhysicalResourceId! };
  const name = requireString(props, 'PrefixListName', /^com\.amazonaws\.[a-z0-9-]+\.s3$/);
  const groupId = requireString(props, 'ResponseSecurityGroupId', /^sg-[0-9a-f]+$/);
  const out = await ec2.send(new DescribeManagedPrefixListsCommand({ Filters: [{ Name: 'prefix-list-name', Values: [name] }] }), { abortSignal: signal });
  const lists = (out.PrefixLists ?? []).filter((l) => l.PrefixListName === name && l.OwnerId === 'AWS');
  if (lists.length !== 1 || !lists[0].PrefixListId) {
    throw new Error(`expected exactly one AWS-managed prefix list named ${name}, found ${lists.length}`);
  }
  const id = lists[0].PrefixListId;
  try {
    await ec2.send(new AuthorizeSecurityGroupEgressCommand({
      GroupId: groupId,
      IpPermissions: [{
        IpProtocol: 'tcp', FromPort: 443, ToPort: 443,
        PrefixListIds: [{ PrefixListId: id, Description: 'CloudFormation responses of the deploy-time function (S3 gateway endpoint)' }],
      }],
    }), { abortSignal: signal });
  } catch (e) {
    if ((e as { name?: string }).name !== 'InvalidPermission.Duplicate') throw e;
  }
  return { physicalResourceId: id, data: { [PREFIX_LIST_ID]: id } };
}

/**
 * `Custom::RestrictDefaultSecurityGroup`: revokes every ingress and egress rule of the VPC's default security
 * group, whatever they are (a second run finds none and changes nothing).
 *
 * Delete puts nothing back. The resource is deleted with its VPC (the group goes with it) or when the plane
 * stops owning the VPC; restoring AWS's allow-all defaults would reopen a group that any resource launched
 * without a group gets, and would need Authorize* rights this function does not otherwise hold.
 */
async function restrictDefaultSecurityGroup(event: CustomResourceEvent, props: Record<string, unknown>, ec2: EC2Client, signal: AbortSignal): Promise<Outcome> {
  if (event.RequestType === 'Delete') return { physicalResourceId: event.PhysicalResourceId! };
  const groupId = requireString(props, 'SecurityGroupId', /^sg-[0-9a-f]+$/);
  const out = await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [groupId] }), { abortSignal: signal });
  const group = out.SecurityGroups?.find((g) => g.GroupId === groupId);
  if (!group) throw new Error(`security group ${groupId} not found`);
  // Revoked by their permissions, as described (not by rule ID): the call then names only the group, which is
  // all the role and the endpoint policy allow.
  const ingress = group.IpPermissions ?? [];
  const egress = group.IpPermissionsEgress ?? [];
  if (ingress.length > 0) await ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: ingress }), { abortSignal: signal });
  if (egress.length > 0) await ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: egress }), { abortSignal: signal });
  return { physicalResourceId: groupId, data: { RevokedIngressRules: String(countRules(ingress)), RevokedEgressRules: String(countRules(egress)) } };
}

/** Rules in a list of permissions: each address range, prefix list and group of each permission is one. */
function countRules(permissions: IpPermission[]): number {
  return permissions.reduce((n, p) => n + (p.IpRanges?.length ?? 0) + (p.Ipv6Ranges?.length ?? 0) + (p.PrefixListIds?.length ?? 0) + (p.UserIdGroupPairs?.length ?? 0), 0);
}

/**
 * `Custom::DatabaseRoles`: each PostgreSQL agent's role and schema (`ensureAgentRoles`), as the master user whose
 * password RDS keeps in Secrets Manager, over TLS checked like libpq's verify-full against `databaseCa`.
 *
 * Delete changes nothing: it comes with the instance's deletion (or replacement), and with retained data the
 * roles and schemas stay as they were, so a restore works as before.
 */
async function databaseRoles(event: CustomResourceEvent, props: Record<string, unknown>, deps: HandlerDeps,
  log: (line: Record<string, unknown>) => void, signal: AbortSignal): Promise<Outcome> {
  if (event.RequestType === 'Delete') return { physicalResourceId: event.PhysicalResourceId! };
  const host = requireString(props, 'Host', /^[A-Za-z0-9.-]+$/);
  const port = Number(requireString(props, 'Port', /^[0-9]{1,5}$/));
  const database = requireString(props, 'Database', /^[a-z_][a-z0-9_]*$/);
  const secretArn = requireString(props, 'SecretArn', /^arn:[a-z-]+:secretsmanager:/);
  const agents = props.Agents ?? [];
  if (!Array.isArray(agents) || agents.some((a) => typeof a !== 'string')) throw new Error('property Agents must be a list of agent names');

  const secret = await deps.secrets.send(new GetSecretValueCommand({ SecretId: secretArn }), { abortSignal: signal });
  let user: string;
  let password: string;
  try {
    ({ username: user, password } = JSON.parse(secret.SecretString ?? ''));
    if (typeof user !== 'string' || typeof password !== 'string') throw new Error('missing field');
  } catch {
    throw new Error(`secret ${secretArn} does not hold {"username", "password"} as RDS's managed master secret does`);
  }

  const client = new Client({
    host, port, database, user, password,
    ssl: verifyFullTls(deps.databaseCa),
    connectionTimeoutMillis: deps.databaseConnectTimeoutMs ?? 10_000,
    query_timeout: DATABASE_QUERY_TIMEOUT_MS,
    statement_timeout: DATABASE_QUERY_TIMEOUT_MS,
    application_name: 'byoc-deploy-time',
  });
  client.on('error', () => undefined); // a connection dropped after the work is reported by the query, not as a crash
  // Past the deadline the request has been answered FAILED: drop the connection rather than leave it waiting.
  signal.addEventListener('abort', () => { client.end().catch(() => undefined); }, { once: true });
  try {
    await client.connect();
  } catch (e) {
    throw new Error(`connecting to ${host}:${port}/${database} as ${user} with TLS (verify-full) failed: ${describe(e)}`);
  }
  try {
    const report = await ensureAgentRoles(client, { database, agents: agents as string[] });
    log({ resourceType: DATABASE_ROLES, roles: report.roles, disabled: report.disabled, changes: report.changes });
    return {
      physicalResourceId: `${host}:${port}/${database}`,
      data: { Roles: String(report.roles.length), DisabledRoles: String(report.disabled.length), Changes: String(report.changes.length) },
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function requireString(props: Record<string, unknown>, name: string, pattern: RegExp): string {
  const value = props[name];
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new Error(`property ${name} is ${value === undefined ? 'missing' : `invalid (${JSON.stringify(value).slice(0, 100)})`}`);
  }
  return value;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: string }).code;
    // AWS SDK errors carry their code as the name (InvalidGroup.NotFound); pg's are named 'error', with a SQLSTATE code.
    const named = e.name && e.name.toLowerCase() !== 'error' ? `${e.name}: ` : '';
    return `${named}${e.message}${code && !e.message.includes(code) ? ` (${code})` : ''}`;
  }
  return String(e);
}

/** `work`, or a rejection with `message` at `deadline`, when `abort` tells the work to stop. */
function withDeadline<T>(work: Promise<T>, deadline: number, message: string, abort: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { reject(new Error(message)); abort.abort(); }, Math.max(0, deadline - Date.now()));
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * PUTs the response to the presigned ResponseURL, retrying until `deadline`; throws when it could not be
 * delivered (the Lambda invocation then fails and its asynchronous retry runs the idempotent work again).
 * The URL is HTTPS (S3); plain HTTP is accepted only to a loopback address, where a test stands in for S3.
 */
export async function putResponse(responseUrl: string, response: CustomResourceResponse, deadline: number): Promise<void> {
  const url = new URL(responseUrl);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new Error(`ResponseURL must be https (got ${url.protocol})`);
  }
  const body = Buffer.from(JSON.stringify(response));
  let last = '';
  for (let attempt = 0; ; attempt++) {
    try {
      await putOnce(url, body, Math.min(RESPONSE_ATTEMPT_TIMEOUT_MS, Math.max(1000, deadline - Date.now())));
      return;
    } catch (e) {
      last = describe(e);
    }
    const pause = Math.min(200 * 2 ** attempt, 5000);
    if (Date.now() + pause >= deadline) break;
    await new Promise((r) => setTimeout(r, pause));
  }
  throw new Error(`could not deliver the ${response.Status} response to CloudFormation (host ${url.host}): ${last}`);
}

function putOnce(url: URL, body: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // The presigned URL was signed without a content type: send none.
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'PUT',
      headers: { 'content-type': '', 'content-length': body.length },
      timeout: timeoutMs,
      agent: false, // one request, no connection kept open
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (text.length < 500) text += d; });
      res.on('end', () => (res.statusCode && res.statusCode >= 200 && res.statusCode < 300
        ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`))));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(body);
  });
}
