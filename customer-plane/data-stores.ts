import { createHash } from 'crypto';
import { Aws, CustomResource, Duration, NestedStack, RemovalPolicy } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AGENT_SECRETS, AgentSecret, AgentSpec, DataStore } from '../agents/catalog';
import { acknowledgeControlTowerFinding, acknowledgeFinding, cfnOf } from '../lib/compliance';
import { PropError } from '../lib/errors';
import { dbUserOf } from '../lib/database-roles';
import { ManagedPolicyRole } from '../lib/iam';
import { DeployTimeFunction } from '../lib/deploy-time/function';
import { CacheOptions, DatabaseOptions } from './props';

/** NFS, the EFS mount target port. */
export const NFS_PORT = 2049;
/** The database's administrative user; agents never use it, each connects as its own IAM-authenticated user. */
export const DB_ADMIN_USER = 'byoc_admin';
/** The database agents' tables live in. */
export const DB_NAME = 'byoc';
/** ElastiCache allows 100 users in a user group; one of them is the disabled `default` user. */
export const MAX_REDIS_AGENTS = 99;

export interface DataStoresProps {
  readonly customerId: string;
  /** The agent catalog: each agent that declares Redis gets its own Redis user. */
  readonly agents: readonly AgentSpec[];
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly key: kms.Key;
  readonly database: Required<DatabaseOptions>;
  readonly cache: Required<CacheOptions>;
  readonly retainData: boolean;
  readonly logRetention: logs.RetentionDays;
}

/** The name an agent's database user has: its name in snake case, prefixed (created by `Custom::DatabaseRoles`). */
export { dbUserOf };

/**
 * The RDS instance identifier of a customer's plane. `byoc destroy` turns deletion protection off on this
 * instance (RDS API, `--no-deletion-protection`) before it deletes the stack.
 */
export function dbInstanceIdentifierOf(customerId: string): string {
  return `byoc-${customerId}-postgres`;
}

/** The Redis (ElastiCache RBAC) user name an agent authenticates as: `AUTH <user> <password>`. */
export function redisUserOf(agent: string): string {
  return `agent-${agent}`;
}

/**
 * What an agent's Redis user may do: GET, SET (with a TTL) and DEL on keys under its own prefix, nothing
 * else (no other agent's keys, no KEYS/SCAN, no admin, no pub/sub). The prefix is the one the runtime's cache
 * puts before every key (`agents/runtime/cache.ts`: `keyPrefix: '<agent>:'`); agent names hold no colon, so
 * no prefix is another's.
 */
export function redisAccessStringOf(agent: string): string {
  return `on ~${agent}:* -@all +get +set +del`;
}

/** The access string of the user named `default`: disabled, no command, no key. Nobody can authenticate as it. */
export const REDIS_DEFAULT_USER_ACCESS = 'off -@all';

/**
 * The plane's stateful stores, all encrypted with the customer-managed key, reachable only from the
 * security groups in `clients`: an agent joins a store's client group only when the catalog gives it
 * that store.
 */
export class DataStores extends Construct {
  public readonly database: rds.DatabaseInstance;
  /**
   * Each PostgreSQL agent's login role (`agent_<name>`, IAM authentication), its own schema and CONNECT on the
   * database, created by the plane's deploy-time function and brought in step again whenever the catalog's
   * PostgreSQL agents or the instance change (an agent that left gets NOLOGIN; see `lib/database-roles.ts`).
   */
  public readonly databaseRoles: CustomResource;
  public readonly redis: elasticache.CfnReplicationGroup;
  /**
   * The password of each Redis agent's own ElastiCache user, by agent name (the user is `redisUserOf(agent)`).
   * They live in a nested stack of their own, so the root stack does not grow with the catalog.
   */
  public readonly redisPasswords: Readonly<Record<string, secretsmanager.ISecret>>;
  public readonly fileSystem: efs.FileSystem;
  /** Secrets the customer fills for agents, by catalog name. */
  public readonly agentSecrets: Record<AgentSecret, secretsmanager.Secret>;
  /** Security groups that may reach each store. */
  public readonly clients: { readonly postgres: ec2.SecurityGroup; readonly redis: ec2.SecurityGroup; readonly workspace: ec2.SecurityGroup };
  public readonly databasePort: number;
  public readonly cachePort: number;

  constructor(scope: Construct, id: string, props: DataStoresProps) {
    super(scope, id);
    const { vpc, subnets, key, retainData } = props;
    const keep = retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const snapshotOrDestroy = retainData ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY;
    this.databasePort = props.database.port;
    this.cachePort = props.cache.port;

    const clientGroup = (cid: string, description: string) =>
      new ec2.SecurityGroup(this, cid, { vpc, description, allowAllOutbound: false });
    this.clients = {
      postgres: clientGroup('PostgresClients', 'Agents allowed to reach PostgreSQL'),
      redis: clientGroup('RedisClients', 'Agents allowed to reach Redis'),
      workspace: clientGroup('WorkspaceClients', 'Tasks allowed to mount the EFS file system'),
    };

    // PostgreSQL ------------------------------------------------------------------------------------
    const instanceIdentifier = dbInstanceIdentifierOf(props.customerId);
    // RDS would create these log groups itself, unencrypted and never deleted; owning them keeps
    // `cdk destroy` complete and the logs under the plane's key and retention.
    const dbLogGroups = ['postgresql', 'upgrade'].map((type) => new logs.LogGroup(this, `PostgresLogs-${type}`, {
      logGroupName: `/aws/rds/instance/${instanceIdentifier}/${type}`,
      encryptionKey: key,
      retention: props.logRetention,
      removalPolicy: keep,
    }));
    const dbSecurityGroup = new ec2.SecurityGroup(this, 'PostgresSecurityGroup', {
      vpc, description: 'PostgreSQL: in from the postgres client group only', allowAllOutbound: false,
    });
    const monitoringRole = new ManagedPolicyRole(this, 'PostgresMonitoringRole', {
      assumedBy: new iam.ServicePrincipal('monitoring.rds.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'RDS enhanced monitoring: writes OS metrics of the database of the plane to RDSOSMetrics',
    });
    const osMetrics = `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:RDSOSMetrics`;
    monitoringRole.grantActions(['logs:CreateLogGroup', 'logs:PutRetentionPolicy'], [osMetrics]);
    monitoringRole.grantActions(['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'], [`${osMetrics}:log-stream:*`]);
    acknowledgeFinding(monitoringRole.permissions!, `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:RDSOSMetrics:log-stream:*]`,
      'Enhanced monitoring writes one log stream per DB instance, named by RDS at run time, into the fixed RDSOSMetrics log group; the wildcard covers only those streams.');

    const parameterGroup = new rds.ParameterGroup(this, 'PostgresParameters', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17_9 }),
      description: 'TLS required, connections logged',
      parameters: { 'rds.force_ssl': '1', log_connections: '1', log_disconnections: '1' },
    });
    this.database = new rds.DatabaseInstance(this, 'Postgres', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_17_9 }),
      instanceIdentifier,
      instanceType: props.database.instanceType,
      vpc,
      vpcSubnets: subnets,
      securityGroups: [dbSecurityGroup],
      port: props.database.port,
      databaseName: DB_NAME,
      credentials: rds.Credentials.fromUsername(DB_ADMIN_USER),
      manageMasterUserPassword: true,
      iamAuthentication: true,
      storageEncrypted: true,
      storageEncryptionKey: key,
      storageType: rds.StorageType.GP3,
      allocatedStorage: props.database.allocatedStorageGiB,
      maxAllocatedStorage: props.database.allocatedStorageGiB * 4,
      multiAz: props.database.multiAz,
      deletionProtection: props.database.deletionProtection,
      backupRetention: Duration.days(props.database.backupRetentionDays),
      preferredBackupWindow: '03:00-04:00',
      preferredMaintenanceWindow: 'sun:04:30-sun:05:30',
      copyTagsToSnapshot: true,
      autoMinorVersionUpgrade: true,
      publiclyAccessible: false,
      parameterGroup,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      monitoringInterval: Duration.seconds(60),
      monitoringRole,
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: key,
      removalPolicy: snapshotOrDestroy,
    });
    const cfnDb = this.database.node.defaultChild as rds.CfnDBInstance;
    // The master password RDS generates and rotates lives in Secrets Manager under the plane's key.
    cfnDb.masterUserSecret = { kmsKeyId: key.keyArn };
    for (const g of dbLogGroups) this.database.node.addDependency(g);
    dbSecurityGroup.connections.allowFrom(this.clients.postgres, ec2.Port.tcp(props.database.port), 'PostgreSQL from agents that declare it');
    this.databaseRoles = DeployTimeFunction.of(this).manageDatabaseRoles(this, 'PostgresAgentRoles', {
      database: this.database,
      securityGroup: dbSecurityGroup,
      port: props.database.port,
      databaseName: DB_NAME,
      agents: props.agents.filter((a) => a.dataStores.includes(DataStore.POSTGRES)).map((a) => a.name),
      key,
    });
    if (!props.database.multiAz) {
      const reason = 'database.multiAz was set to false by the operator for this deployment (a non-production plane); automated backups still cover the instance.';
      for (const rule of ['AwsSolutions-RDS3', 'HIPAA.Security-RDSMultiAZSupport', 'NIST.800.53.R5-RDSMultiAZSupport']) acknowledgeFinding(cfnDb, rule, reason);
      acknowledgeControlTowerFinding(cfnDb, 'CT.RDS.PR.1', `${reason} An account with CT.RDS.PR.1 enabled refuses this instance: keep multiAz there.`);
    }
    // Deletion protection is a literal `true` in the signed template (what CT.RDS.PR.13 requires at create and at
    // every update, so it cannot be flipped by a stack update in an account with that control). `byoc destroy`
    // turns it off on the instance itself (`dbInstanceIdentifierOf`) and then deletes the stack.
    if (!props.database.deletionProtection) {
      const reason = 'database.deletionProtection was set to false by the operator: cdk destroy removes this instance without the byoc destroy step that lifts the protection.';
      for (const rule of ['AwsSolutions-RDS10', 'HIPAA.Security-RDSInstanceDeletionProtectionEnabled', 'NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled']) acknowledgeFinding(cfnDb, rule, reason);
      acknowledgeControlTowerFinding(cfnDb, 'CT.RDS.PR.13', `${reason} An account with CT.RDS.PR.13 enabled refuses this instance: keep deletion protection there.`);
    }

    // Redis -----------------------------------------------------------------------------------------
    // RBAC, not one AUTH token for everyone: each agent that declares Redis authenticates as its own user,
    // limited to its own keys; the user named `default` (every user group must hold one) is disabled.
    const redisAgents = props.agents.filter((a) => a.dataStores.includes(DataStore.REDIS)).map((a) => a.name);
    if (redisAgents.length > MAX_REDIS_AGENTS) {
      throw new PropError('catalog', `${redisAgents.length} agents declare Redis; ElastiCache holds at most ${MAX_REDIS_AGENTS + 1} users in a user group, one being the disabled default user`,
        `give Redis to at most ${MAX_REDIS_AGENTS} agents`);
    }
    const userId = (name: string) => redisUserIdOf(props.customerId, name);
    const users = new NestedStack(this, 'CacheUsers', { description: `BYOC customer plane: the Redis users of the ${props.customerId} plane's agents` });
    const defaultUser = new elasticache.CfnUser(users, 'RedisDefaultUser', {
      engine: 'redis',
      userId: userId('default'),
      userName: 'default',
      accessString: REDIS_DEFAULT_USER_ACCESS,
      // Disabled: Redis refuses AUTH as an "off" user whatever the password, so none is kept anywhere.
      noPasswordRequired: true,
    });
    const passwords: Record<string, secretsmanager.ISecret> = {};
    const agentUsers = redisAgents.map((agent) => {
      const password = new secretsmanager.Secret(users, `RedisPassword-${agent}`, {
        description: `Password of the Redis user ${redisUserOf(agent)} (agent ${agent}) of the plane`,
        encryptionKey: key,
        generateSecretString: { passwordLength: 64, excludePunctuation: true },
        removalPolicy: keep,
      });
      acknowledgeNoRotation(password, `The agent reads this password when it connects; ElastiCache changes it with ModifyUser, which Secrets Manager rotation would need a Lambda with network access to the cache API for. An operator rotates it: put-secret-value, then a stack update.`);
      passwords[agent] = password;
      return new elasticache.CfnUser(users, `RedisUser-${agent}`, {
        engine: 'redis',
        userId: userId(`agent-${agent}`),
        userName: redisUserOf(agent),
        accessString: redisAccessStringOf(agent),
        passwords: [password.secretValue.unsafeUnwrap()], // a {{resolve:secretsmanager}} reference, never the value
      });
    });
    this.redisPasswords = passwords;
    // The IDs as literals, with a dependency on the users' stack: a Ref each would spend a nested-stack output
    // per user, and 99 agents already spend 99 of the 200 on their password secrets.
    const userGroup = new elasticache.CfnUserGroup(this, 'RedisUserGroup', {
      engine: 'redis',
      userGroupId: `byoc-${props.customerId}-redis`,
      userIds: [defaultUser.userId, ...agentUsers.map((u) => u.userId)],
    });
    userGroup.addResourceDependency(users.nestedStackResource!);
    const redisSecurityGroup = new ec2.SecurityGroup(this, 'RedisSecurityGroup', {
      vpc, description: 'Redis: in from the redis client group only', allowAllOutbound: false,
    });
    redisSecurityGroup.connections.allowFrom(this.clients.redis, ec2.Port.tcp(props.cache.port), 'Redis from agents that declare it');
    const redisSubnets = new elasticache.CfnSubnetGroup(this, 'RedisSubnets', {
      description: `Subnets of the ${props.customerId} plane's Redis`,
      subnetIds: vpc.selectSubnets(subnets).subnetIds,
    });
    this.redis = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: `Cache of the ${props.customerId} plane's agents`,
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: props.cache.nodeType,
      numCacheClusters: 1 + props.cache.replicas,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      port: props.cache.port,
      cacheSubnetGroupName: redisSubnets.ref,
      securityGroupIds: [redisSecurityGroup.securityGroupId],
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      atRestEncryptionEnabled: true,
      kmsKeyId: key.keyArn,
      userGroupIds: [userGroup.ref],
      snapshotRetentionLimit: props.cache.snapshotRetentionDays,
      snapshotWindow: '02:00-03:00',
      preferredMaintenanceWindow: 'sun:05:30-sun:06:30',
      autoMinorVersionUpgrade: true,
    });
    this.redis.applyRemovalPolicy(snapshotOrDestroy);
    acknowledgeFinding(this.redis, 'AwsSolutions-AEC6',
      'Clients authenticate with RBAC (UserGroupIds: a user and password per agent, the default user disabled), which replaces the single shared AUTH token this rule looks for.');

    // EFS -------------------------------------------------------------------------------------------
    const efsSecurityGroup = new ec2.SecurityGroup(this, 'WorkspaceSecurityGroup', {
      vpc, description: 'EFS mount targets: NFS in from the workspace client group only', allowAllOutbound: false,
    });
    this.fileSystem = new efs.FileSystem(this, 'Workspaces', {
      vpc,
      vpcSubnets: subnets,
      securityGroup: efsSecurityGroup,
      encrypted: true,
      kmsKey: key,
      lifecyclePolicy: efs.LifecyclePolicy.AFTER_30_DAYS,
      outOfInfrequentAccessPolicy: efs.OutOfInfrequentAccessPolicy.AFTER_1_ACCESS,
      throughputMode: efs.ThroughputMode.ELASTIC,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      // AWS Backup's daily automatic backup (35 days) into the account's aws/efs/automatic-backup-vault:
      // a vault outside this stack, so cdk destroy still deletes the file system (the recovery points
      // outlive it until they expire or are deleted; see byoc destroy). retainData adds the plan below.
      enableAutomaticBackups: true,
      allowAnonymousAccess: false,
      removalPolicy: keep,
    });
    // Mounts only over TLS, and only through an access point: no task sees another's directory.
    this.fileSystem.addToResourcePolicy(new iam.PolicyStatement({
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite', 'elasticfilesystem:ClientRootAccess'],
      resources: ['*'],
      conditions: { Bool: { 'aws:SecureTransport': 'false' } },
    }));
    this.fileSystem.addToResourcePolicy(new iam.PolicyStatement({
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['elasticfilesystem:ClientRootAccess'],
      resources: ['*'],
    }));
    efsSecurityGroup.connections.allowFrom(this.clients.workspace, ec2.Port.tcp(NFS_PORT), 'NFS from tasks with a workspace');

    // Secrets the customer provides ------------------------------------------------------------------
    const secrets: Partial<Record<AgentSecret, secretsmanager.Secret>> = {};
    for (const [name, description] of Object.entries(AGENT_SECRETS) as [AgentSecret, string][]) {
      const secret = new secretsmanager.Secret(this, `Secret-${name}`, {
        secretName: `byoc/${props.customerId}/${name}`,
        description: `${description}. Placeholder until the customer stores the real value.`,
        encryptionKey: key,
        generateSecretString: { passwordLength: 32, excludePunctuation: true },
        removalPolicy: keep,
      });
      acknowledgeNoRotation(secret, `Holds a credential the customer issues in a third-party system (${description.toLowerCase()}); it is rotated there and stored here with put-secret-value, so no Lambda can rotate it.`);
      secrets[name] = secret;
    }
    this.agentSecrets = secrets as Record<AgentSecret, secretsmanager.Secret>;

    // Backups ---------------------------------------------------------------------------------------
    if (retainData) {
      const vault = new backup.BackupVault(this, 'BackupVault', {
        backupVaultName: `byoc-${props.customerId}`,
        encryptionKey: key,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      const plan = new backup.BackupPlan(this, 'BackupPlan', {
        backupVault: vault,
        backupPlanRules: [backup.BackupPlanRule.daily(), backup.BackupPlanRule.monthly1Year()],
      });
      const selection = plan.addSelection('Stores', {
        resources: [backup.BackupResource.fromRdsDatabaseInstance(this.database), backup.BackupResource.fromEfsFileSystem(this.fileSystem)],
      });
      const backupRole = selection.node.findChild('Role');
      acknowledgeFinding(cfnOf(backupRole), 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
        'AWS Backup\'s own service-role policy, maintained by AWS for the resource types it backs up; the role can be assumed only by backup.amazonaws.com.');
    } else {
      const reasons = {
        RDSInBackupPlan: 'retainData is off: a vault of this stack holding recovery points cannot be deleted, so an AWS Backup plan would make cdk destroy fail. RDS automated backups still run; retainData: true adds the plan.',
        EFSInBackupPlan: 'retainData is off: a vault of this stack holding recovery points cannot be deleted, so cdk destroy would fail. EFS automatic backups (BackupPolicy ENABLED) back it up daily into the account\'s own automatic-backup vault instead.',
      };
      for (const [resource, rule] of [[cfnDb, 'RDSInBackupPlan'], [cfnOf(this.fileSystem), 'EFSInBackupPlan']] as const) {
        for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) acknowledgeFinding(resource, `${pack}-${rule}`, reasons[rule]);
      }
    }
  }
}

/**
 * An ElastiCache user ID (unique per account and region, so it carries the customer ID): lower-case letters,
 * digits and single hyphens, at most 40 characters; a longer one is cut and ends in a hash of the whole.
 */
export function redisUserIdOf(customerId: string, name: string): string {
  const id = `${customerId}-${name}`;
  if (id.length <= 40) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${id.slice(0, 31).replace(/-+$/, '')}-${hash}`;
}

/** Acknowledges the missing-rotation finding of every pack on one secret, with one reason. */
function acknowledgeNoRotation(secret: secretsmanager.Secret, reason: string): void {
  const cfn = cfnOf(secret);
  for (const rule of ['AwsSolutions-SMG4', 'HIPAA.Security-SecretsManagerRotationEnabled', 'NIST.800.53.R5-SecretsManagerRotationEnabled']) {
    acknowledgeFinding(cfn, rule, reason);
  }
}
