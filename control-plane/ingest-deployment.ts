import { Aws, Duration, Fn, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { BoundaryContract } from '../lib/boundary-contract';
import { contractEnvironment } from '../lib/contract-input';
import { acknowledgeFinding, cfnOf, limitKeyGrantsToAwsServices } from '../lib/compliance';
import { declareRetainedData } from '../lib/byoc-checks';
import { PropError } from '../lib/errors';
import { allowLogsOfThisAccount } from '../lib/iam';
import { HardenedService } from '../customer-plane/hardened-service';
import { HUB_PORTS, hubNodeName } from './hub-config';
import { NatsHub } from './hub';
import {
  CUSTOMER_SECRET_PREFIX, healthCheckCommand, INGEST_DEFAULTS, INGEST_ENTRY_POINT, INGEST_ENV, INGEST_SECRET, IngestTables, TABLE_ACTIONS,
  TABLE_ENV, TABLE_KEYS, DEPLOYMENT_MODES, DeploymentMode, RETENTION, RETENTION_ACTIONS, SWEPT_TABLES, TTL_ATTRIBUTE,
} from './ingest/settings';

/** Fargate sizes the ingest service accepts: CPU units to the memory (MiB) each allows. */
const INGEST_SIZES: Record<number, readonly number[]> = {
  256: [512, 1024, 2048],
  512: [1024, 2048, 3072, 4096],
  1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
};

/** The construct ID of each table, by role. */
const TABLE_IDS: Record<keyof IngestTables, string> = {
  usage: 'UsageTable', metrics: 'MetricsTable', workflow: 'WorkflowTable', learningPool: 'LearningPoolTable', rejections: 'RejectionsTable',
};

/** Name of the backup vault of the tables (with `retainData`). */
export const INGEST_BACKUP_VAULT = 'byoc-ingest';

export interface IngestDeploymentProps {
  /**
   * The NATS hub the service consumes from: it runs in the hub's VPC, isolated subnets and ECS cluster, connects to
   * every node's client port (`node-N.<hub host>:4222`, TLS) and reaches AWS through the hub's VPC endpoints.
   */
  readonly hub: NatsHub;
  /** The vendor CA (PEM) that issued the hub nodes' certificate (the hub's `tls.caCertificatePem`). */
  readonly hubCaCertificatePem: string;
  /**
   * The vendor's services image (`control-plane/Dockerfile`), pinned by digest, in this region's ECR, ARM64:
   * `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:<digest>`.
   */
  readonly image: string;
  /**
   * Keep the tables, their key and the logs when the stack is deleted, with deletion protection on the tables and
   * daily and monthly recovery points in a retained backup vault (`byoc-ingest`) besides point-in-time recovery.
   */
  readonly retainData: boolean;
  /**
   * What the tables keep and for how long (`RETENTION` in `ingest/settings.ts`): `byoc` keeps everything (the
   * vendor's own policies); `trial` and `starter` turn on the tables' TTL (`expiresAt`, written by the store) and
   * the service's retention sweep (soft and hard deletes), with the permissions it needs.
   * @default 'byoc'
   */
  readonly deploymentMode?: DeploymentMode;
  /** The boundary contract the service checks every crossing against (`BYOC_CONTRACT`, with its hash). @default BOUNDARY_CONTRACT */
  readonly contract?: BoundaryContract;
  /** Retention of the service's log group. */
  readonly logRetention: logs.RetentionDays;
  /**
   * The KMS key the registry's secrets are encrypted with, when registration used one (`byoc customer add --kms-key`).
   * @default - the secrets use `aws/secretsmanager`, whose key policy lets Secrets Manager decrypt for this account's principals: no key permission
   */
  readonly registryKey?: kms.IKey;
  /**
   * How often the service reads the registry again (a new customer is consumed, a revoked one stopped, within it).
   * @default Duration.seconds(60)
   */
  readonly refreshInterval?: Duration;
  /**
   * Tasks. More than one share each customer's durable consumer (every write is idempotent); each holds one hub
   * connection per customer, of the 8 a customer's vendor account admits.
   * @default 1
   */
  readonly desiredCount?: number;
  /** Fargate CPU units: 256, 512 or 1024. @default 256 */
  readonly cpu?: number;
  /** Memory (MiB), valid for `cpu`. @default 512 */
  readonly memoryMiB?: number;
}

/**
 * The vendor's ingest service deployed beside the hub (`control-plane/ingest/main.ts`): a Fargate service (ARM64,
 * read-only root filesystem, unprivileged user, every capability dropped, image by digest, logs encrypted with its
 * own key and kept `logRetention`) that reads the customer registry from Secrets Manager and writes what customers'
 * leaves send into its own DynamoDB tables (`IngestTables`: on-demand, point-in-time recovery, encrypted with the
 * same customer-managed key). Its security group lets it out to the hub nodes' client port and the hub's VPC
 * endpoints only (a DynamoDB interface endpoint is added to the hub's network); nothing in. Its task role may read
 * the customers' ingest secrets and write these tables, and nothing else.
 */
export class IngestDeployment extends Construct {
  /** Encrypts the tables, their backups and the service's logs. */
  public readonly key: kms.Key;
  /** The tables by role. */
  public readonly tables: Record<keyof IngestTables, dynamodb.Table>;
  public readonly service: HardenedService;
  /** The service's security group: out to the hub's client port and the VPC endpoints only. */
  public readonly securityGroup: ec2.SecurityGroup;
  /** The DynamoDB interface endpoint in the hub's VPC (the service calls it by its own DNS name). */
  public readonly dynamoDbEndpoint: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: IngestDeploymentProps) {
    super(scope, id);
    const { hub } = props;
    if (!Token.isUnresolved(props.hubCaCertificatePem) && !/^-----BEGIN CERTIFICATE-----/m.test(props.hubCaCertificatePem ?? '')) {
      throw new PropError('hubCaCertificatePem', 'is not a PEM certificate', 'give the vendor CA\'s certificate (-----BEGIN CERTIFICATE-----), the one the hub\'s tls.caCertificatePem holds');
    }
    const refreshSeconds = (props.refreshInterval ?? Duration.seconds(INGEST_DEFAULTS.refreshSeconds)).toSeconds();
    if (!Number.isInteger(refreshSeconds) || refreshSeconds < 1 || refreshSeconds > 3600) {
      throw new PropError('refreshInterval', `${refreshSeconds} seconds is out of range`, 'use whole seconds from 1 to 3600 (Duration.seconds(60), the default)');
    }
    const desiredCount = props.desiredCount ?? 1;
    if (!Number.isInteger(desiredCount) || desiredCount < 1 || desiredCount > 4) {
      throw new PropError('desiredCount', `${desiredCount} is out of range`, 'use 1 to 4: each task holds one of the 8 connections a customer\'s vendor account admits');
    }
    const cpu = props.cpu ?? 256;
    const memoryMiB = props.memoryMiB ?? 512;
    if (!(cpu in INGEST_SIZES)) throw new PropError('cpu', `${cpu} is not a size of the ingest service`, `use one of ${Object.keys(INGEST_SIZES).join(', ')}`);
    if (!INGEST_SIZES[cpu].includes(memoryMiB)) throw new PropError('memoryMiB', `${memoryMiB} MiB is not a Fargate size with cpu ${cpu}`, `use one of ${INGEST_SIZES[cpu].join(', ')}`);
    const namespace = hub.cluster.defaultCloudMapNamespace;
    if (!namespace) throw new PropError('hub', 'has no Cloud Map namespace: its nodes have no names', 'give the NatsHub of the control plane (its cluster names the nodes node-N.<host>)');
    const mode = props.deploymentMode ?? 'byoc';
    if (!DEPLOYMENT_MODES.includes(mode)) throw new PropError('deploymentMode', `"${mode}" is not a deployment mode`, `use one of ${DEPLOYMENT_MODES.join(', ')}`);
    const retention = RETENTION[mode];
    const removalPolicy = props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    if (props.retainData) declareRetainedData(this, 'retainData: true keeps the ingest tables, their key, the backup vault and the service\'s logs on cdk destroy.');

    this.key = new kms.Key(this, 'Key', {
      description: 'BYOC vendor ingest: its DynamoDB tables, their backups and its logs',
      enableKeyRotation: true,
      removalPolicy,
    });
    allowLogsOfThisAccount(this.key);
    // DynamoDB and AWS Backup create the grants they need for the tables; nobody else may.
    limitKeyGrantsToAwsServices(this.key);

    const tables = {} as Record<keyof IngestTables, dynamodb.Table>;
    for (const role of Object.keys(TABLE_KEYS) as (keyof IngestTables)[]) {
      tables[role] = new dynamodb.Table(this, TABLE_IDS[role], {
        partitionKey: { name: TABLE_KEYS[role].partition, type: dynamodb.AttributeType.STRING },
        sortKey: { name: TABLE_KEYS[role].sort, type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: this.key,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        deletionProtection: props.retainData,
        removalPolicy,
        // DynamoDB deletes an item once its expiresAt (epoch seconds) is past, in the modes that write one.
        timeToLiveAttribute: retention.ttlDays !== undefined && role !== 'learningPool' ? TTL_ATTRIBUTE : undefined,
      });
    }
    this.tables = tables;
    if (props.retainData) {
      const vault = new backup.BackupVault(this, 'BackupVault', { backupVaultName: INGEST_BACKUP_VAULT, encryptionKey: this.key, removalPolicy: RemovalPolicy.RETAIN });
      const plan = new backup.BackupPlan(this, 'BackupPlan', { backupVault: vault, backupPlanRules: [backup.BackupPlanRule.daily(), backup.BackupPlanRule.monthly1Year()] });
      const selection = plan.addSelection('Tables', { resources: Object.values(tables).map((t) => backup.BackupResource.fromDynamoDbTable(t)) });
      acknowledgeFinding(cfnOf(selection.node.findChild('Role')), 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
        'AWS Backup\'s own service-role policy, maintained by AWS for the resource types it backs up; the role can be assumed only by backup.amazonaws.com.');
    } else {
      for (const table of Object.values(tables)) {
        for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) {
          acknowledgeFinding(cfnOf(table), `${pack}-DynamoDBInBackupPlan`,
            'retainData is off: a vault of this stack holding recovery points cannot be deleted, so cdk destroy would fail. Point-in-time recovery restores the table to any second of the last 35 days instead.');
        }
      }
    }

    // The DynamoDB API in the hub's VPC, by the endpoint's own name (no private DNS: the service is given the URL;
    // the first of the endpoint's DNS entries, `<hosted zone>:<name>`, is its regional name).
    this.dynamoDbEndpoint = hub.network.addInterfaceEndpoint('DynamoDb', ec2.InterfaceVpcEndpointAwsService.DYNAMODB, { privateDnsEnabled: false });
    const dynamoDbHost = Fn.select(1, Fn.split(':', Fn.select(0, this.dynamoDbEndpoint.vpcEndpointDnsEntries)));

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: hub.network.vpc,
      allowAllOutbound: false,
      description: 'BYOC vendor ingest service: out to the client port of the hub nodes and the VPC endpoints only, nothing in',
    });
    hub.network.allowEndpointsFrom(this.securityGroup);
    hub.connections.allowDefaultPortFrom(this.securityGroup, 'The vendor ingest service: NATS client connections (TLS, operator-signed user JWTs)');

    const hubUrls = hub.nodes.map((_, i) => `tls://${hubNodeName(i)}.${namespace.namespaceName}:${HUB_PORTS.client}`).join(',');
    this.service = new HardenedService(this, 'Service', {
      name: 'ingest',
      customerId: 'vendor',
      cluster: hub.cluster,
      subnets: hub.network.subnets,
      securityGroups: [this.securityGroup],
      image: props.image,
      imageProp: 'image',
      cpu,
      memoryMiB,
      key: this.key,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      command: ['node', INGEST_ENTRY_POINT],
      environment: {
        [INGEST_ENV.hubUrls]: hubUrls,
        [INGEST_ENV.hubCa]: props.hubCaCertificatePem,
        [INGEST_ENV.region]: Aws.REGION,
        [INGEST_ENV.registryPrefix]: CUSTOMER_SECRET_PREFIX,
        [INGEST_ENV.refreshSeconds]: String(refreshSeconds),
        [INGEST_ENV.dynamoDbEndpoint]: `https://${dynamoDbHost}`,
        [INGEST_ENV.healthPort]: String(INGEST_DEFAULTS.healthPort),
        [INGEST_ENV.deploymentMode]: mode,
        ...contractEnvironment(props.contract),
        ...Object.fromEntries((Object.keys(tables) as (keyof IngestTables)[]).map((role) => [TABLE_ENV[role], tables[role].tableName])),
      },
      desiredCount,
    });
    // The container's health: the service's loopback endpoint, asked by the image's Node.js (`healthCheckCommand`).
    // ContainerDefinition takes a health check only at creation, which HardenedService does; it is set here.
    cfnOf(this.service.taskDefinition).addPropertyOverride('ContainerDefinitions.0.HealthCheck', {
      Command: healthCheckCommand(INGEST_DEFAULTS.healthPort),
      Interval: 30,
      Timeout: 5,
      Retries: 3,
      StartPeriod: 60,
    });

    // Task role: each statement one sentence.
    const role = this.service.taskRole;
    // Lists the registry: names, tags and version IDs, never a value (ListSecrets has no resource-level permission).
    role.grantActions(['secretsmanager:ListSecrets'], ['*']);
    // Reads each customer's ingest secret and no other secret (not the NATS accounts' keys, not the leaf's credentials).
    const ingestSecrets = `arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${CUSTOMER_SECRET_PREFIX}*/${INGEST_SECRET}-??????`;
    role.grantActions(['secretsmanager:GetSecretValue'], [ingestSecrets]);
    if (props.registryKey) {
      // Decrypts the registry's secrets with their key, only through Secrets Manager.
      role.grantActions(['kms:Decrypt'], [props.registryKey.keyArn], { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } });
    }
    // Writes the tables, each with only the actions the store uses on it (it never reads).
    const byAction = new Map<string, string[]>();
    for (const [tableRole, actions] of Object.entries(TABLE_ACTIONS) as [keyof IngestTables, readonly string[]][]) {
      for (const action of actions) byAction.set(action, [...(byAction.get(action) ?? []), tables[tableRole].tableArn]);
    }
    for (const [action, arns] of byAction) role.grantActions([action], arns);
    if (mode !== 'byoc') {
      // The retention sweep of the vendor-hosted modes: reads the customer-keyed tables, marks and deletes their items.
      role.grantActions([...RETENTION_ACTIONS], SWEPT_TABLES.map((t) => tables[t].tableArn));
    }
    // Lets DynamoDB use the tables' key on the service's behalf (kms:ViaService), never the service itself.
    role.grantActions(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'], [this.key.keyArn], {
      StringEquals: { 'kms:ViaService': `dynamodb.${Aws.REGION}.amazonaws.com` },
    });
    const policy = role.permissions!;
    acknowledgeFinding(policy, 'AwsSolutions-IAM5[Resource::*]',
      'secretsmanager:ListSecrets supports no resource-level permission; it returns the registry\'s names, tags and version IDs, never a secret value.');
    acknowledgeFinding(policy, `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${CUSTOMER_SECRET_PREFIX}*/${INGEST_SECRET}-??????]`,
      'One ingest secret per registered customer, created by byoc customer add after this deployment: the pattern admits only secrets named byoc/customers/<customer>/ingest, none of registration\'s other secrets.');
  }
}
