import { Aws, CfnRule, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { allowLogsOfThisAccount } from '../lib/iam';
import { declareDataKey, declareNoInternetEgress, declareRetainedData } from '../lib/byoc-checks';
import { AgentSpec } from '../agents/catalog';
import { llmProxyBaseUrl } from '../control-plane/llm-proxy/endpoint';
import { acknowledgeFinding, cfnOf } from '../lib/compliance';
import { CONTRACT_METADATA, contractRecord } from '../lib/contract-input';
import { limitKeyGrantsToAwsServices } from '../lib/compliance';
import { PropError } from '../lib/errors';
import { AgentEnvironment, AgentGroupStack } from './agent-group';
import { DataStores } from './data-stores';
import { HardenedService } from './hardened-service';
import { COLLECTOR_ENV, collectorConfig, OTLP_HTTP_PORT, otlpEndpointPort } from './collector-config';
import { NarrowLink, NATS_CLIENT_PORT } from './link';
import { Network } from './network';
import { AlarmTopic, collectorHealthCheck, PlaneAlarms, planeDashboard, scalesOnBacklog } from './operations';
import { CustomerPlaneProps, IMAGE_KEYS, parseImageRef, resolveProps, ResolvedProps } from './props';

/** The plane's private DNS namespace for its own services. */
export const SERVICE_NAMESPACE = 'byoc.internal';

/**
 * The customer plane: everything the vendor's agents need in the customer's account, with no path to
 * the internet by default. Agents are grouped into nested stacks so the plane holds hundreds of agents
 * while the customer deploys a single stack.
 */
export class CustomerPlane extends Construct {
  /** The customer-managed key every store, secret and log group of the plane is encrypted with. */
  public readonly key: kms.Key;
  public readonly network: Network;
  public readonly stores: DataStores;
  public readonly cluster: ecs.Cluster;
  /** The customer's side of the narrow link: NATS leaf node and boundary gateway. */
  public readonly link: NarrowLink;
  public readonly collector: HardenedService;
  /** One nested stack per agent group, by group name. */
  public readonly agentGroups: Record<string, AgentGroupStack> = {};
  /** The props with every default applied. */
  public readonly settings: ResolvedProps;
  /** Where every alarm of the plane goes (KMS-encrypted SNS topic, the customer subscribes). */
  public readonly alarmTopic: AlarmTopic;
  /** The alarms on the data stores and the counted log lines (each service has its own running-task alarm). */
  public readonly alarms: PlaneAlarms;

  constructor(scope: Construct, id: string, props: CustomerPlaneProps) {
    super(scope, id);
    const p = resolveProps(props);
    this.settings = p;
    const stack = Stack.of(this);
    // What may cross, as the plane was built from it: signing, byoc review and byoc diff read it from here.
    stack.addMetadata(CONTRACT_METADATA, contractRecord(p.contract));
    if (!p.vpc && !p.availabilityZones && p.maxAzs === 3 && Token.isUnresolved(stack.region)) {
      throw new PropError('maxAzs', '3 AZs in a stack without an explicit region (CloudFormation can only be asked for 2)',
        'set env: { account, region } on the stack, or name the AZs in availabilityZones, or use maxAzs: 2');
    }
    const dataRemoval = p.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    if (p.retainData) declareRetainedData(this, 'retainData: true keeps the database, cache, file system, key, secrets, logs and backups when the stack is deleted.');
    this.requireImagesInStackRegion(p);
    const topicRegion = p.alarms.topicArn?.split(':')[3];
    if (topicRegion && !Token.isUnresolved(p.alarms.topicArn) && !Token.isUnresolved(stack.region) && topicRegion !== stack.region) {
      throw new PropError('alarms.topicArn', `is in ${topicRegion}, but the plane runs in ${stack.region}`, `give a topic in ${stack.region}: CloudWatch alarms notify topics of their own region only`);
    }

    this.key = new kms.Key(this, 'Key', {
      alias: `alias/byoc/${p.customerId}`,
      description: `BYOC customer plane ${p.customerId}: data, secrets and logs`,
      enableKeyRotation: true,
      removalPolicy: dataRemoval,
    });
    allowLogsOfThisAccount(this.key);
    limitKeyGrantsToAwsServices(this.key);
    declareDataKey(this, this.key);

    this.network = new Network(this, 'Network', {
      vpc: p.vpc,
      vpcSubnets: p.vpcSubnets,
      maxAzs: p.maxAzs,
      availabilityZones: p.availabilityZones,
      vpcCidr: p.vpcCidr,
      vpcEndpoints: p.vpcEndpoints,
      s3PrefixListId: p.s3PrefixListId,
      egress: p.egress,
      key: this.key,
      logRetention: p.logRetention,
      removalPolicy: dataRemoval,
    });
    const { vpc, subnets } = this.network;

    this.stores = new DataStores(this, 'Data', {
      customerId: p.customerId,
      agents: p.catalog,
      vpc,
      subnets,
      key: this.key,
      database: p.database,
      cache: p.cache,
      retainData: p.retainData,
      logRetention: p.logRetention,
    });

    const clusterName = `byoc-${p.customerId}`;
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      clusterName,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      defaultCloudMapNamespace: { name: SERVICE_NAMESPACE, vpc, useForServiceConnect: false },
    });
    // Container Insights would create this log group itself: unencrypted, and left behind by `cdk destroy`.
    // Created first under the plane's key and retention, it is the one Container Insights writes to.
    const insightsLogs = new logs.LogGroup(this, 'ContainerInsightsLogs', {
      logGroupName: `/aws/ecs/containerinsights/${clusterName}/performance`,
      encryptionKey: this.key,
      retention: p.logRetention,
      removalPolicy: dataRemoval,
    });
    cfnOf(this.cluster).addResourceDependency(cfnOf(insightsLogs));
    // capacity.spot: the services of interruptible agents name FARGATE and FARGATE_SPOT, which the cluster must offer.
    if (p.capacity.spot) this.cluster.enableFargateCapacityProviders();

    // RDS enhanced monitoring writes to `RDSOSMetrics`, ONE log group per account and region that every RDS
    // instance with enhanced monitoring shares. If the plane owned it unasked, the deploy would fail in any
    // account where RDS already created it ("already exists"), and `cdk destroy` would delete other
    // databases' OS metrics. So the plane creates it only when the customer says this account and region
    // have no other user of it; otherwise RDS creates it on first use and it is left behind on destroy.
    if (p.createRdsOsMetricsLogGroup) {
      const osMetrics = new logs.LogGroup(this, 'RdsOsMetricsLogs', {
        logGroupName: 'RDSOSMetrics',
        encryptionKey: this.key,
        retention: p.logRetention,
        removalPolicy: dataRemoval,
      });
      cfnOf(this.stores.database).addResourceDependency(cfnOf(osMetrics));
    }

    // Every task's security group: HTTPS to the interface endpoints and to the S3 prefix list (image
    // layers through the gateway endpoint), nothing else outside the VPC, in every egress mode. With
    // `egress: nat`, the NAT gateways exist but no group reaches 0.0.0.0/0 until a workload is given an
    // explicit rule (no agent of the catalog needs one yet).
    const group = (gid: string, description: string) => {
      const sg = new ec2.SecurityGroup(this, gid, { vpc, description, allowAllOutbound: false });
      this.network.allowEndpointsFrom(sg);
      return sg;
    };
    const agentSecurityGroup = group('AgentSecurityGroup', 'Agent tasks: out to the VPC endpoints, the NATS leaf and the collector only');
    const collectorSecurityGroup = group('CollectorSecurityGroup', 'OpenTelemetry collector: OTLP in from agents only');
    collectorSecurityGroup.connections.allowFrom(agentSecurityGroup, ec2.Port.tcp(OTLP_HTTP_PORT), 'OTLP traces and metrics');
    // llm: the path of the agents that hold an LLM key, in a security group of their own (no other agent gets it).
    const llmClients = p.llm && new ec2.SecurityGroup(this, 'LlmClientSecurityGroup', {
      vpc, allowAllOutbound: false,
      description: p.llm.via === 'vendor-proxy' ? 'LLM agents: out to the vendor\'s LLM proxy through the hub endpoint (llm: vendor-proxy)' : 'LLM agents: out to the LLM providers, HTTPS only (llm: own-keys)',
    });
    if (llmClients && p.llm?.via === 'own-keys') {
      llmClients.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'LLM providers with the customer\'s own keys (llm: own-keys), HTTPS only');
    }

    this.alarmTopic = new AlarmTopic(this, 'Alarms', { customerId: p.customerId, key: this.key, options: p.alarms });
    const alarms = { topic: this.alarmTopic, clusterName };

    const common = {
      alarms,
      customerId: p.customerId,
      cluster: this.cluster,
      subnets,
      key: this.key,
      logRetention: p.logRetention,
      logRemovalPolicy: dataRemoval,
    };

    // Traces and metrics stay in the customer's account: X-Ray and CloudWatch through the VPC endpoints, or the
    // customer's own OTLP endpoint (telemetry.otlpEndpoint), reached inside the VPC.
    const otlpEndpoint = p.telemetry.otlpEndpoint;
    const metricsLogs = otlpEndpoint === undefined ? new logs.LogGroup(this, 'AgentMetricsLogs', {
      encryptionKey: this.key,
      retention: p.logRetention,
      removalPolicy: dataRemoval,
    }) : undefined;
    this.collector = new HardenedService(this, 'Collector', {
      ...common,
      name: 'otel-collector',
      securityGroups: [collectorSecurityGroup],
      image: p.images.otelCollector,
      imageProp: 'images.otelCollector',
      cpu: 256,
      memoryMiB: 512,
      command: ['--config=env:BYOC_OTEL_CONFIG'],
      environment: {
        BYOC_OTEL_CONFIG: collectorConfig({ otlpEndpoint }, p.contract),
        ...(metricsLogs ? { [COLLECTOR_ENV.region]: Aws.REGION, [COLLECTOR_ENV.metricsLogGroup]: metricsLogs.logGroupName } : {}),
      },
      cloudMapName: 'otel',
      containerPort: OTLP_HTTP_PORT,
      healthCheck: collectorHealthCheck(),
    });
    if (metricsLogs) {
      // awsemf: writes the metrics as embedded-metric-format events into this log group (the stream it names
      // is created on first write); CloudWatch extracts the metrics from them.
      metricsLogs.grantWrite(this.collector.taskRole);
      // awsxray: sends the agents' spans to X-Ray as trace segments.
      this.collector.taskRole.grantActions(['xray:PutTraceSegments'], ['*']);
      acknowledgeFinding(this.collector.taskRole.permissions!, 'AwsSolutions-IAM5[Resource::*]',
        'xray:PutTraceSegments supports no resource-level permissions (X-Ray has no resource type for it); it is the only action of this role on Resource *.');
    } else {
      collectorSecurityGroup.addEgressRule(ec2.Peer.ipv4(vpc.vpcCidrBlock), ec2.Port.tcp(otlpEndpointPort(otlpEndpoint!)),
        'The customer\'s own OTLP endpoint (telemetry.otlpEndpoint), inside the VPC');
    }
    declareNoInternetEgress(this.collector, 'The collector receives OTLP from the agents and exports through the VPC endpoints (CloudWatch, X-Ray) or to the customer\'s OTLP endpoint inside the VPC, never to the internet.');
    // The collector's configuration names the task's own variables as ${env:NAME} (the collector substitutes them
    // when it starts); CloudFormation leaves the value as it is, which is what the collector needs.
    if (!otlpEndpoint) {
      acknowledgeFinding(cfnOf(this.collector.taskDefinition), 'CloudFormation-Validate::E1029',
        'BYOC_OTEL_CONFIG holds ${env:AWS_REGION} and ${env:BYOC_METRICS_LOG_GROUP}: the collector\'s own substitution of the container\'s variables at start, not CloudFormation parameters; the value must reach the container unchanged, so it is not wrapped in Fn::Sub');
    }

    this.link = new NarrowLink(this, 'Link', {
      customerId: p.customerId,
      shareLearning: p.shareLearning,
      contract: p.contract,
      cluster: this.cluster,
      network: this.network,
      stores: this.stores,
      key: this.key,
      natsImage: p.images.natsServer,
      runtimeImage: p.images.agentRuntime,
      logRetention: p.logRetention,
      removalPolicy: dataRemoval,
      catalog: p.catalog,
      hub: p.vendorHub,
      agentSecurityGroup,
      securityGroup: group,
      llmProxyClients: p.llm?.via === 'vendor-proxy' ? llmClients : undefined,
      alarms,
    });

    const env: AgentEnvironment = {
      customerId: p.customerId,
      cluster: this.cluster,
      subnets,
      agentSecurityGroup,
      stores: this.stores,
      key: this.key,
      agentRuntimeImage: p.images.agentRuntime,
      logRetention: p.logRetention,
      logRemovalPolicy: dataRemoval,
      dataRemovalPolicy: dataRemoval,
      natsUrl: `nats://nats.${SERVICE_NAMESPACE}:${NATS_CLIENT_PORT}`,
      natsPasswords: this.link.agentPasswords,
      otelEndpoint: `http://otel.${SERVICE_NAMESPACE}:${OTLP_HTTP_PORT}`,
      alarms,
      contract: p.contract,
      spot: p.capacity.spot ? { onDemandBase: p.capacity.onDemandBase } : undefined,
      businessHours: p.schedule,
      scaling: p.scaling,
      llm: llmClients && {
        securityGroup: llmClients,
        // vendor-proxy: the proxy's base URL for this customer and the vendor CA its certificate chains to (the
        // runtime trusts only it for that URL); the token is the llm-primary secret's value.
        environment: p.llm!.via === 'vendor-proxy'
          ? { BYOC_LLM_MODE: 'vendor-proxy', BYOC_LLM_PROXY_URL: llmProxyBaseUrl(p.vendorHub.host, p.customerId), BYOC_LLM_PROXY_CA: p.vendorHub.caCertificatePem }
          : { BYOC_LLM_MODE: 'own-keys' },
      },
    };
    const byGroup = new Map<string, AgentSpec[]>();
    for (const spec of p.catalog) byGroup.set(spec.group, [...(byGroup.get(spec.group) ?? []), spec]);
    for (const [name, agents] of [...byGroup].sort(([a], [b]) => a.localeCompare(b))) {
      this.agentGroups[name] = new AgentGroupStack(this, `Agents-${name}`, { group: name, agents, env });
    }

    this.alarms = new PlaneAlarms(this, 'PlaneAlarms', {
      customerId: p.customerId,
      alarmTopic: this.alarmTopic,
      database: this.stores.database,
      databaseInstanceType: p.database.instanceType.toString(),
      allocatedStorageGiB: p.database.allocatedStorageGiB,
      redis: this.stores.redis,
      redisNodes: 1 + p.cache.replicas,
      clusterName,
    });
    planeDashboard(this, 'Dashboard', {
      customerId: p.customerId,
      clusterName,
      database: this.stores.database,
      redisGroupId: this.stores.redis.ref,
      alarms: [...this.alarms.alarms, ...[this.link.leaf, this.link.gateway, this.collector].map((s) => s.runningTasksAlarm!)],
      // Every agent's backlog; with scaling, the running tasks of those that scale on it.
      agents: p.catalog.map((spec) => ({
        name: spec.name,
        ...(scalesOnBacklog(spec.trigger, p.scaling) ? { serviceName: this.agentGroups[spec.group].agents[spec.name].workload.service.serviceName } : {}),
      })),
    });
  }

  /**
   * Tasks pull their images through the VPC's own ECR endpoints, which serve only their region: an image
   * in another region cannot be pulled. Checked at synth when the stack's region is known; otherwise a
   * CloudFormation rule stops the deployment before anything is created.
   */
  private requireImagesInStackRegion(p: ResolvedProps): void {
    const regions = IMAGE_KEYS.map((k) => [k, parseImageRef(`images.${k}`, p.images[k]).region] as const);
    const region = Stack.of(this).region;
    if (!Token.isUnresolved(region)) {
      const elsewhere = regions.filter(([, r]) => r !== region);
      if (elsewhere.length > 0) {
        throw new PropError(elsewhere.map(([k]) => `images.${k}`).join(', '), `in ${elsewhere[0][1]}, but the stack deploys to ${region}`,
          `give the release's references in ${region}'s ECR (the vendor replicates each release to the customer's region), or deploy the stack to ${elsewhere[0][1]}`);
      }
      return;
    }
    // resolveProps has checked that all images share one region.
    new CfnRule(this, 'ImagesRegion', {
      assertions: [{
        assert: Fn.conditionEquals(Aws.REGION, regions[0][1]),
        assertDescription: `The release images are in ${regions[0][1]}'s ECR: deploy this stack to ${regions[0][1]}, or synthesize it with images replicated to the target region.`,
      }],
    });
  }
}
