import { Aws, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeFinding, cfnOf } from '../lib/compliance';
import { PropError } from '../lib/errors';
import { ManagedPolicyRole } from '../lib/iam';
import { AlarmTopic, runningTasksAlarm } from './operations';
import { parseImageRef } from './props';

/**
 * Seconds ECS waits after SIGTERM before it kills a container. Fargate Spot warns two minutes before it takes a
 * task back, and ECS allows at most 120 s: 60 s fits both.
 */
export const STOP_TIMEOUT_SECONDS = 60;

/** The unprivileged user every container runs as. */
export const CONTAINER_USER = '10001:10001';

export interface HardenedServiceProps {
  /** Short name of the workload, used in the task family and log stream prefix. */
  readonly name: string;
  readonly customerId: string;
  readonly cluster: ecs.ICluster;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
  /** Image reference pinned by digest (validated by `parseImageRef`). */
  readonly image: string;
  /** The prop the image came from, for error messages. */
  readonly imageProp: string;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
  /** Non-secret settings only: identifiers, endpoints, secret ARNs. Never a secret value. */
  readonly environment?: Record<string, string>;
  /** Secrets ECS injects at start for programs that cannot call Secrets Manager themselves. */
  readonly secrets?: Record<string, ecs.Secret>;
  readonly command?: string[];
  /** Mount an EFS access point at this path. */
  readonly efsMount?: { readonly fileSystem: efs.IFileSystem; readonly accessPoint: efs.IAccessPoint; readonly path: string };
  /** Register in the Cloud Map namespace under this name. */
  readonly cloudMapName?: string;
  readonly containerPort?: number;
  /**
   * Tasks to run. At most 1 with `singleWriter`.
   * @default 1
   */
  readonly desiredCount?: number;
  /**
   * The workload must never run twice at once (it owns state on EFS, such as the NATS leaf's JetStream
   * store or the gateway's hash-chained audit log): one task, and a deployment stops the old task before
   * it starts the new one (minimum healthy 0 %, maximum 100 %). The price is a short gap on each deploy;
   * the circuit breaker still rolls back a new task that does not stay up.
   * @default false - rolling deployments start the new task before stopping the old one (100 % / 200 %)
   */
  readonly singleWriter?: boolean;
  /**
   * The container's health check: a command that works in the workload's own image (see `operations.ts`).
   * Every service of the customer plane has one.
   * @default - none
   */
  readonly healthCheck?: ecs.HealthCheck;
  /**
   * Run on Fargate Spot after `onDemandBase` on-demand tasks. Fargate Spot runs X86_64 tasks only: the task runs
   * on X86_64, so its image must be a multi-architecture index that includes linux/amd64.
   * @default - on-demand Fargate, ARM64
   */
  readonly spot?: { readonly onDemandBase: number };
  /** Alarm (to this topic) when fewer tasks run than desired, from Container Insights of `clusterName`. */
  readonly alarms?: { readonly topic: AlarmTopic; readonly clusterName: string };
}

/**
 * One Fargate service built the same way for every workload of the plane: its own task and execution
 * roles (permissions in one managed policy each), a read-only root filesystem, a non-root user, all
 * Linux capabilities dropped, the image pinned by digest, logs to its own KMS-encrypted log group.
 */
export class HardenedService extends Construct {
  public readonly taskRole: ManagedPolicyRole;
  public readonly executionRole: ManagedPolicyRole;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly service: ecs.FargateService;
  public readonly logGroup: logs.LogGroup;
  /** With `alarms`: fewer tasks running than desired. */
  public readonly runningTasksAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: HardenedServiceProps) {
    super(scope, id);
    const image = parseImageRef(props.imageProp, props.image);
    const desiredCount = props.desiredCount ?? 1;
    if (props.spot && props.singleWriter) {
      throw new PropError('capacity.spot', `${props.name} is a singleWriter service`, 'run single writers on on-demand Fargate: an interruption would stop the only writer');
    }
    if (props.singleWriter && !Token.isUnresolved(desiredCount) && desiredCount > 1) {
      throw new PropError('desiredCount', `${desiredCount} tasks of ${props.name}, a singleWriter service`,
        'use 1 (the default): two tasks would write the same state at once; scale a single writer up in CPU and memory instead');
    }
    // The ECR endpoints of the VPC serve only their region, and tasks reach nothing else.
    this.node.addValidation({
      validate: () => {
        const region = Stack.of(this).region;
        return Token.isUnresolved(region) || image.region === region ? [] : [
          new PropError(props.imageProp, `${props.image} is in ${image.region}, but ${props.name} runs in ${region}`,
            `give the image's reference in ${region}'s ECR: tasks pull only through the VPC's endpoints of their own region`).message,
        ];
      },
    });
    const ecsTasks = () => new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
      conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    });

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      encryptionKey: props.key,
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.executionRole = new ManagedPolicyRole(this, 'ExecutionRole', {
      assumedBy: ecsTasks(),
      description: `ECS execution role of ${props.name}: pulls its image, writes its logs`,
    });
    this.taskRole = new ManagedPolicyRole(this, 'TaskRole', {
      assumedBy: ecsTasks(),
      description: `Task role of ${props.name}: exactly what its catalog entry declares`,
    });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      family: `byoc-${props.customerId}-${props.name}`,
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      executionRole: this.executionRole,
      taskRole: this.taskRole,
      runtimePlatform: {
        cpuArchitecture: props.spot ? ecs.CpuArchitecture.X86_64 : ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });

    const repository = ecr.Repository.fromRepositoryAttributes(this, 'Repository', {
      repositoryName: image.repository,
      repositoryArn: `arn:${Aws.PARTITION}:ecr:${image.region}:${image.account}:repository/${image.repository}`,
    });
    const linuxParameters = new ecs.LinuxParameters(this, 'Linux', { initProcessEnabled: true });
    linuxParameters.dropCapabilities(ecs.Capability.ALL);
    const container = this.taskDefinition.addContainer('main', {
      // A hard memory limit on the container (Control Tower CT.ECS.PR.7): the whole task's memory.
      memoryLimitMiB: props.memoryMiB,
      image: ecs.ContainerImage.fromEcrRepository(repository, image.digest),
      readonlyRootFilesystem: true,
      user: CONTAINER_USER,
      privileged: false,
      linuxParameters,
      command: props.command,
      environment: props.environment,
      secrets: props.secrets,
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: props.name }),
      stopTimeout: Duration.seconds(STOP_TIMEOUT_SECONDS),
      healthCheck: props.healthCheck,
      portMappings: props.containerPort ? [{ containerPort: props.containerPort, name: props.cloudMapName }] : undefined,
    });
    // The only writable paths: a task-local scratch volume, and the EFS access point if any.
    this.taskDefinition.addVolume({ name: 'tmp' });
    container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'tmp', readOnly: false });
    if (props.efsMount) {
      const { fileSystem, accessPoint, path } = props.efsMount;
      this.taskDefinition.addVolume({
        name: 'efs',
        efsVolumeConfiguration: {
          fileSystemId: fileSystem.fileSystemId,
          transitEncryption: 'ENABLED',
          authorizationConfig: { accessPointId: accessPoint.accessPointId, iam: 'ENABLED' },
        },
      });
      container.addMountPoints({ containerPath: path, sourceVolume: 'efs', readOnly: false });
      this.taskRole.grantActions(['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'], [fileSystem.fileSystemArn], {
        StringEquals: { 'elasticfilesystem:AccessPointArn': accessPoint.accessPointArn },
      });
    }

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: props.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount,
      securityGroups: props.securityGroups,
      vpcSubnets: props.subnets,
      assignPublicIp: false,
      enableExecuteCommand: false,
      circuitBreaker: { rollback: true },
      minHealthyPercent: props.singleWriter ? 0 : 100,
      maxHealthyPercent: props.singleWriter ? 100 : 200,
      propagateTags: ecs.PropagatedTagSource.TASK_DEFINITION,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      cloudMapOptions: props.cloudMapName ? { name: props.cloudMapName, containerPort: props.containerPort } : undefined,
      capacityProviderStrategies: props.spot ? [
        { capacityProvider: 'FARGATE', base: props.spot.onDemandBase, weight: 0 },
        { capacityProvider: 'FARGATE_SPOT', weight: 1 },
      ] : undefined,
    });

    if (props.alarms) {
      this.runningTasksAlarm = runningTasksAlarm(this, 'RunningTasks', {
        alarmName: `byoc-${props.customerId}-${props.name}-tasks`,
        clusterName: props.alarms.clusterName, serviceName: this.service.serviceName, label: props.name, alarmTopic: props.alarms.topic,
      });
    }

    const executionPolicy = this.executionRole.permissions!;
    acknowledgeFinding(executionPolicy, 'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken supports no resource-level permissions (it returns a registry login, not access to a repository); image pulls are limited to this workload\'s repository.');
    if (props.environment && Object.keys(props.environment).length > 0) {
      acknowledgeFinding(cfnOf(this.taskDefinition), 'AwsSolutions-ECS2',
        'The environment holds only non-secret identifiers and endpoints (names, hosts, ports, secret ARNs); every secret value is read from Secrets Manager.');
    }
  }
}
