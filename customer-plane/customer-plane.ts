import { Annotations, Aws, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { AgentSpec } from '../agents/catalog';
import { PropError } from '../lib/errors';
import { AgentEnvironment, AgentGroupStack } from './agent-group';
import { DataStores } from './data-stores';
import { HardenedService } from './hardened-service';
import { collectorConfig, OTLP_HTTP_PORT } from './collector-config';
import { NarrowLink, NATS_CLIENT_PORT } from './link';
import { Network } from './network';
import { CustomerPlaneProps, EgressMode, resolveProps, ResolvedProps } from './props';

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

  constructor(scope: Construct, id: string, props: CustomerPlaneProps) {
    super(scope, id);
    const p = resolveProps(props);
    this.settings = p;
    const stack = Stack.of(this);
    if (!p.vpc && !p.availabilityZones && p.maxAzs === 3 && Token.isUnresolved(stack.region)) {
      throw new PropError('maxAzs', '3 AZs in a stack without an explicit region (CloudFormation can only be asked for 2)',
        'set env: { account, region } on the stack, or name the AZs in availabilityZones, or use maxAzs: 2');
    }
    const dataRemoval = p.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.key = new kms.Key(this, 'Key', {
      alias: `alias/byoc/${p.customerId}`,
      description: `BYOC customer plane ${p.customerId}: data, secrets and logs`,
      enableKeyRotation: true,
      removalPolicy: dataRemoval,
    });
    this.key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchLogsOfThisAccount',
      principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
      resources: ['*'],
      conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` } },
    }));

    this.network = new Network(this, 'Network', {
      vpc: p.vpc,
      vpcSubnets: p.vpcSubnets,
      maxAzs: p.maxAzs,
      availabilityZones: p.availabilityZones,
      vpcCidr: p.vpcCidr,
      vpcEndpoints: p.vpcEndpoints,
      egress: p.egress,
      key: this.key,
      logRetention: p.logRetention,
      removalPolicy: dataRemoval,
    });
    const { vpc, subnets } = this.network;

    this.stores = new DataStores(this, 'Data', {
      customerId: p.customerId,
      vpc,
      subnets,
      key: this.key,
      database: p.database,
      cache: p.cache,
      retainData: p.retainData,
      logRetention: p.logRetention,
    });

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      clusterName: `byoc-${p.customerId}`,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      defaultCloudMapNamespace: { name: SERVICE_NAMESPACE, vpc, useForServiceConnect: false },
    });

    // Image layers come from S3 through the gateway endpoint, over each task's own security groups.
    const s3 = p.s3PrefixListId ? ec2.Peer.prefixList(p.s3PrefixListId) : ec2.Peer.anyIpv4();
    if (p.vpc && !p.s3PrefixListId) {
      Annotations.of(this).addWarningV2('byoc:s3PrefixListId', 'Tasks may send HTTPS to any address: in an existing VPC with a route to the internet that reaches the internet. Set s3PrefixListId to limit it to S3.');
    }
    const group = (gid: string, description: string) => {
      const sg = new ec2.SecurityGroup(this, gid, { vpc, description, allowAllOutbound: false });
      this.network.allowEndpointsFrom(sg);
      sg.addEgressRule(s3, ec2.Port.tcp(443), p.s3PrefixListId ? 'HTTPS to S3 (image layers)' : 'HTTPS to S3 through the gateway endpoint (no other route leaves the VPC)');
      return sg;
    };
    const agentSecurityGroup = group('AgentSecurityGroup', 'Agent tasks: out to the VPC endpoints, the NATS leaf and the collector only');
    const collectorSecurityGroup = group('CollectorSecurityGroup', 'OpenTelemetry collector: OTLP in from agents only');
    collectorSecurityGroup.connections.allowFrom(agentSecurityGroup, ec2.Port.tcp(OTLP_HTTP_PORT), 'OTLP metrics');
    if (p.egress === EgressMode.NAT && !p.s3PrefixListId) {
      // With egress opted into, the rule above already reaches the internet through the NAT gateways.
      Annotations.of(this).addInfo('egress: nat lets agent tasks reach HTTPS endpoints on the internet through the NAT gateways.');
    } else if (p.egress === EgressMode.NAT) {
      agentSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to the internet through the NAT gateways (egress: nat)');
    }

    const common = {
      customerId: p.customerId,
      cluster: this.cluster,
      subnets,
      key: this.key,
      logRetention: p.logRetention,
      logRemovalPolicy: dataRemoval,
    };

    this.collector = new HardenedService(this, 'Collector', {
      ...common,
      name: 'otel-collector',
      securityGroups: [collectorSecurityGroup],
      image: p.images.otelCollector,
      imageProp: 'images.otelCollector',
      cpu: 256,
      memoryMiB: 512,
      command: ['--config=env:BYOC_OTEL_CONFIG'],
      environment: { BYOC_OTEL_CONFIG: collectorConfig() },
      cloudMapName: 'otel',
      containerPort: OTLP_HTTP_PORT,
    });

    this.link = new NarrowLink(this, 'Link', {
      customerId: p.customerId,
      shareLearning: p.shareLearning,
      cluster: this.cluster,
      network: this.network,
      stores: this.stores,
      key: this.key,
      natsImage: p.images.natsServer,
      runtimeImage: p.images.agentRuntime,
      logRetention: p.logRetention,
      removalPolicy: dataRemoval,
      vendorHubEndpointService: p.vendorHubEndpointService,
      vendorHubPort: p.vendorHubPort,
      agentSecurityGroup,
      securityGroup: group,
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
      natsPassword: this.link.secrets.agentsPassword,
      otelEndpoint: `http://otel.${SERVICE_NAMESPACE}:${OTLP_HTTP_PORT}`,
    };
    const byGroup = new Map<string, AgentSpec[]>();
    for (const spec of p.catalog) byGroup.set(spec.group, [...(byGroup.get(spec.group) ?? []), spec]);
    for (const [name, agents] of [...byGroup].sort(([a], [b]) => a.localeCompare(b))) {
      this.agentGroups[name] = new AgentGroupStack(this, `Agents-${name}`, { group: name, agents, env });
    }
  }
}
