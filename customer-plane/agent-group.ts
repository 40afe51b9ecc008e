import { Aws, NestedStack, NestedStackProps, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AgentSpec, AgentTrigger, DataStore } from '../agents/catalog';
import { BoundaryContract } from '../lib/boundary-contract';
import { contractEnvironment } from '../lib/contract-input';
import { inboxPrefix, LEAF_USERS } from '../lib/nats-config';
import { DataStores, DB_NAME, dbUserOf, redisUserOf } from './data-stores';
import { CONTAINER_USER, HardenedService, STOP_TIMEOUT_SECONDS } from './hardened-service';
import { NATS_CLIENT_PORT } from './link';
import { AlarmTopic, countLogLine, COUNTED_LOG_LINES, natsClientHealthCheck, PLANE_METRICS, ResolvedBusinessHours, ResolvedScaling, scaleOnBacklog, scaleOnBusinessHours } from './operations';

/** What every agent of every group shares: built once in the root stack. */
export interface AgentEnvironment {
  readonly customerId: string;
  readonly cluster: ecs.ICluster;
  readonly subnets: ec2.SubnetSelection;
  /** The security group every agent task carries (endpoints, NATS, collector). */
  readonly agentSecurityGroup: ec2.ISecurityGroup;
  readonly stores: DataStores;
  readonly key: kms.IKey;
  readonly agentRuntimeImage: string;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
  readonly dataRemovalPolicy: RemovalPolicy;
  /** `host:port` of the NATS leaf node. */
  readonly natsUrl: string;
  /** Each agent's own password on the leaf, by agent name, read at point of use. */
  readonly natsPasswords: Readonly<Record<string, secretsmanager.ISecret>>;
  /** OTLP/HTTP endpoint of the collector. */
  readonly otelEndpoint: string;
  /** With `llm`: what the agents that hold an LLM key get (a security group with their path, and variables). */
  readonly llm?: { readonly securityGroup: ec2.ISecurityGroup; readonly environment: Readonly<Record<string, string>> };
  /** Where each agent's running-task alarm goes, and the cluster's name for its metrics. */
  readonly alarms: { readonly topic: AlarmTopic; readonly clusterName: string };
  /** The boundary contract: agents that send or receive its kinds get it (`BYOC_CONTRACT`, with its hash). */
  readonly contract: BoundaryContract;
  /** With `capacity.spot`: interruptible agents run on Fargate Spot after this many on-demand tasks each. */
  readonly spot?: { readonly onDemandBase: number };
  /** With `schedule`: request and event agents run only in these business hours. */
  readonly businessHours?: ResolvedBusinessHours;
  /** With `scaling`: event agents scale from zero on their backlog, request agents keep a floor. */
  readonly scaling?: ResolvedScaling;
}

export interface AgentServiceProps {
  readonly spec: AgentSpec;
  readonly env: AgentEnvironment;
}

/** Mount path of an agent's workspace inside its container. */
export const WORKSPACE_PATH = '/workspace';

/**
 * One agent of the catalog as a Fargate service whose task role grants exactly what its entry declares:
 * `rds-db:connect` as its own database user, read of its own secrets, a mount of its own EFS access point.
 */
export class AgentService extends Construct {
  public readonly workload: HardenedService;
  public readonly accessPoint?: efs.AccessPoint;

  constructor(scope: Construct, id: string, props: AgentServiceProps) {
    super(scope, id);
    const { spec, env } = props;
    const { stores } = env;
    const uses = (s: DataStore) => spec.dataStores.includes(s);

    const securityGroups: ec2.ISecurityGroup[] = [env.agentSecurityGroup];
    if (uses(DataStore.POSTGRES)) securityGroups.push(stores.clients.postgres);
    if (uses(DataStore.REDIS)) securityGroups.push(stores.clients.redis);
    // With `llm`, an agent that holds an LLM key gets the path its calls take.
    const llm = spec.secrets.some((s) => s.startsWith('llm-')) ? env.llm : undefined;
    if (llm) securityGroups.push(llm.securityGroup);
    if (uses(DataStore.WORKSPACE)) {
      securityGroups.push(stores.clients.workspace);
      const [uid, gid] = CONTAINER_USER.split(':');
      this.accessPoint = new efs.AccessPoint(this, 'Workspace', {
        fileSystem: stores.fileSystem,
        path: `/agents/${spec.name}`,
        posixUser: { uid, gid },
        createAcl: { ownerUid: uid, ownerGid: gid, permissions: '750' },
      });
      this.accessPoint.applyRemovalPolicy(env.dataRemovalPolicy);
    }

    const secrets = [...spec.secrets].sort();
    const natsPassword = env.natsPasswords[spec.name];
    const environment: Record<string, string> = {
      BYOC_CUSTOMER: env.customerId,
      BYOC_AGENT: spec.name,
      BYOC_TRIGGER: spec.trigger,
      BYOC_SUBJECTS: JSON.stringify(spec.subjects),
      NATS_URL: env.natsUrl,
      NATS_USER: LEAF_USERS.agent(spec.name),
      NATS_PASSWORD_SECRET_ARN: natsPassword.secretArn,
      NATS_INBOX_PREFIX: inboxPrefix(env.customerId, spec.name),
      OTEL_EXPORTER_OTLP_ENDPOINT: env.otelEndpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      // The runtime's drain on SIGTERM (a deploy, a scale-in, a Spot interruption) ends 10 s before ECS kills the container.
      BYOC_STOP_TIMEOUT_MS: String((STOP_TIMEOUT_SECONDS - 10) * 1000),
      // ARNs, not values: the runtime reads each secret from Secrets Manager when it needs it.
      BYOC_SECRET_ARNS: JSON.stringify(Object.fromEntries(secrets.map((s) => [s, stores.agentSecrets[s].secretArn]))),
    };
    if (spec.schedule) environment.BYOC_SCHEDULE = spec.schedule;
    if (uses(DataStore.POSTGRES)) {
      Object.assign(environment, {
        PGHOST: stores.database.dbInstanceEndpointAddress,
        PGPORT: String(stores.databasePort),
        PGDATABASE: DB_NAME,
        PGUSER: dbUserOf(spec.name),
        PGSSLMODE: 'verify-full',
        // The RDS CA bundle in the runtime image (agents/runtime/Dockerfile); the only roots the database's certificate may chain to.
        PGSSLROOTCERT: '/app/rds-ca-bundle.pem',
      });
    }
    if (uses(DataStore.REDIS)) {
      Object.assign(environment, {
        REDIS_HOST: stores.redis.attrPrimaryEndPointAddress,
        REDIS_PORT: String(stores.cachePort),
        REDIS_TLS: 'true',
        // Its own ElastiCache user (RBAC), limited to its own keys; the password is read at point of use.
        REDIS_USER: redisUserOf(spec.name),
        REDIS_AUTH_SECRET_ARN: stores.redisPasswords[spec.name].secretArn,
      });
    }
    if (uses(DataStore.WORKSPACE)) environment.BYOC_WORKSPACE = WORKSPACE_PATH;
    // An agent that hands kinds to the gateway or receives them builds and reads them by the plane's contract.
    if ([...spec.subjects.publish, ...spec.subjects.subscribe].some((s) => s.startsWith('boundary.'))) Object.assign(environment, contractEnvironment(env.contract));
    if (llm) Object.assign(environment, llm.environment);

    this.workload = new HardenedService(this, 'Workload', {
      name: spec.name,
      customerId: env.customerId,
      cluster: env.cluster,
      subnets: env.subnets,
      securityGroups,
      image: env.agentRuntimeImage,
      imageProp: 'images.agentRuntime',
      cpu: spec.cpu,
      memoryMiB: spec.memoryMiB,
      key: env.key,
      logRetention: env.logRetention,
      logRemovalPolicy: env.logRemovalPolicy,
      environment,
      efsMount: this.accessPoint ? { fileSystem: stores.fileSystem, accessPoint: this.accessPoint, path: WORKSPACE_PATH } : undefined,
      healthCheck: natsClientHealthCheck(NATS_CLIENT_PORT),
      alarms: env.alarms,
      spot: spec.interruptible ? env.spot : undefined,
      // scaling.requestFloor: the tasks a request agent keeps.
      desiredCount: env.scaling && spec.trigger === AgentTrigger.REQUEST ? env.scaling.requestFloor : undefined,
    });
    // Business hours: request and event agents scale to zero outside them; a scheduled agent must be up when its cron fires.
    // With scaling, an event agent runs 0 or 1 task on its backlog (within the window, with business hours) and a request agent its floor.
    const scaled = env.scaling && spec.trigger === AgentTrigger.EVENT;
    const floor = env.scaling && spec.trigger === AgentTrigger.REQUEST ? env.scaling.requestFloor : 1;
    const open = scaled ? { min: 0, max: 1 } : { min: floor, max: floor };
    const counted = env.businessHours && spec.trigger !== AgentTrigger.SCHEDULE
      ? scaleOnBusinessHours(this.workload.service, env.businessHours, open)
      : scaled ? this.workload.service.autoScaleTaskCount({ minCapacity: 0, maxCapacity: 1 }) : undefined;
    if (scaled) scaleOnBacklog(this, counted!, spec.name, env.scaling!.idleMinutes);
    // Dead-lettered items, counted from the runtime's log line into one metric for the plane (and its alarm).
    countLogLine(this, 'DeadLettered', this.workload.logGroup, COUNTED_LOG_LINES.deadLettered, PLANE_METRICS.deadLettered);

    const role = this.workload.taskRole;
    if (uses(DataStore.POSTGRES)) {
      role.grantActions(['rds-db:connect'], [dbUserArn(stores.database, dbUserOf(spec.name))]);
    }
    role.grantSecretRead(natsPassword, env.key);
    if (uses(DataStore.REDIS)) role.grantSecretRead(stores.redisPasswords[spec.name], env.key);
    for (const s of secrets) role.grantSecretRead(stores.agentSecrets[s], env.key);
  }
}

/** ARN of one database user for IAM authentication. */
function dbUserArn(db: rds.DatabaseInstance, user: string): string {
  const resourceId = (db.node.defaultChild as rds.CfnDBInstance).attrDbiResourceId;
  return `arn:${Aws.PARTITION}:rds-db:${Aws.REGION}:${Aws.ACCOUNT_ID}:dbuser:${resourceId}/${user}`;
}

export interface AgentGroupStackProps extends NestedStackProps {
  readonly group: string;
  readonly agents: readonly AgentSpec[];
  readonly env: AgentEnvironment;
}

/**
 * One group of agents as a nested stack under the plane's root stack, so the plane grows past
 * CloudFormation's 500-resource limit per stack while the customer still deploys one stack.
 */
export class AgentGroupStack extends NestedStack {
  public readonly agents: Record<string, AgentService> = {};

  constructor(scope: Construct, id: string, props: AgentGroupStackProps) {
    super(scope, id, { ...props, description: `BYOC customer plane: agent group ${props.group}` });
    for (const spec of props.agents) {
      this.agents[spec.name] = new AgentService(this, spec.name, { spec, env: props.env });
    }
  }
}
