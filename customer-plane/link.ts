import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { AgentSpec } from '../agents/catalog';
import { LLM_PROXY_PORT, llmProxyHost } from '../control-plane/llm-proxy/endpoint';
import { BoundaryContract } from '../lib/boundary-contract';
import { declareNatsConfig, declareNoInternetEgress } from '../lib/byoc-checks';
import { acknowledgeFinding, cfnOf, limitKeyGrantsToAwsServices } from '../lib/compliance';
import { contractEnvironment } from '../lib/contract-input';
import { PropError } from '../lib/errors';
import { agentIdentities, leafConfig, secretVariables, eventSubscriptionsOf } from '../lib/nats-config';
import { DataStores } from './data-stores';
import { CONTAINER_USER, HardenedService } from './hardened-service';
import { Network } from './network';
import { AlarmTopic, countLogLine, COUNTED_LOG_LINES, natsClientHealthCheck, natsServerHealthCheck, PLANE_METRICS } from './operations';

/** Client port of the NATS leaf node (agents and the gateway connect here). */
export const NATS_CLIENT_PORT = 4222;
/** Where the leaf keeps JetStream, on its EFS access point. */
export const JETSTREAM_DIR = '/data/jetstream';
/** Where the gateway writes the audit log, on its EFS access point. */
export const AUDIT_DIR = '/audit';
/** The bundled gateway inside the agent runtime image. */
export const GATEWAY_ENTRY = '/app/boundary-gateway.js';
/** Where the leaf's start command writes the vendor's CA certificate (task scratch volume). */
export const HUB_CA_FILE = '/tmp/hub-ca.pem';
/** Where the leaf's start command writes its credentials on the hub (task scratch volume, never the image). */
export const HUB_CREDENTIALS_FILE = '/tmp/hub.creds';

/**
 * The vendor hub the leaf connects to, outbound only. Every part is explicit: the leaf dials only this
 * host and port, and accepts only a certificate for this host that chains to this CA.
 */
export interface VendorHub {
  /** DNS name of the hub; its TLS certificate must be issued for this name (e.g. `hub.byoc.vendor.example`). */
  readonly host: string;
  /** Leaf-node port of the hub. */
  readonly port: number;
  /** PEM of the CA that issued the hub's certificate (the vendor's CA; the system's roots are never used). */
  readonly caCertificatePem: string;
  /**
   * The hub's VPC endpoint service (PrivateLink). The plane creates an interface endpoint to it and a private
   * hosted zone for `host` pointing at the endpoint, so nothing leaves the VPC but to that endpoint.
   */
  readonly endpointService?: string;
  /** Region of `endpointService` when it is not the plane's (cross-region PrivateLink). */
  readonly endpointServiceRegion?: string;
  /** Without `endpointService`: the hub's IPv4 addresses (CIDRs), reached through the NAT gateways (`egress: nat`). */
  readonly cidrs?: readonly string[];
}

export interface NarrowLinkProps {
  readonly customerId: string;
  readonly shareLearning: boolean;
  /** The boundary contract: the leaf's rules and the gateway's checks are generated from it. */
  readonly contract: BoundaryContract;
  readonly catalog: readonly AgentSpec[];
  readonly cluster: ecs.ICluster;
  readonly network: Network;
  readonly stores: DataStores;
  readonly key: kms.IKey;
  readonly natsImage: string;
  readonly runtimeImage: string;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly hub: VendorHub;
  /** Security group of the agents, let in to the leaf. */
  readonly agentSecurityGroup: ec2.SecurityGroup;
  /** Makes a workload security group (endpoint and S3 egress already allowed). */
  readonly securityGroup: (id: string, description: string) => ec2.SecurityGroup;
  /**
   * With `llm: { via: 'vendor-proxy' }`: the security group of the agents that call an LLM. They may reach the hub's
   * endpoint on the proxy's port, and `llm.<host>` resolves to that endpoint.
   */
  readonly llmProxyClients?: ec2.SecurityGroup;
  /** Where the leaf's and the gateway's running-task alarms go, and the cluster's name for their metrics. */
  readonly alarms: { readonly topic: AlarmTopic; readonly clusterName: string };
}

/**
 * Most agents one leaf can name. Every agent is a user in the leaf's configuration and a secret of its task
 * definition, and ECS caps a task definition at 64 KiB: about 900 bytes an agent once secret ARNs are resolved, with room for the rest.
 * (Moving permissions into user JWTs, the hub's decentralized auth, would lift this.)
 */
export const MAX_LEAF_AGENTS = 60;
const TASK_DEFINITION_BUDGET = 58 * 1024;

const RESTART_REASON = 'Read by the NATS leaf (and one other task) only at task start: rotating it means a new value and a redeploy of both services, which a Secrets Manager rotation Lambda cannot coordinate.';

/**
 * The customer's side of the narrow link: the NATS leaf node, configured by the same generator the tests
 * run on a real server, and the boundary gateway, the only publisher on crossing subjects. Every agent has
 * its own NATS user and password; the gateway's local and remote identities have separate passwords. The
 * leaf connects outbound only, to the pinned vendor hub.
 */
export class NarrowLink extends Construct {
  public readonly leaf: HardenedService;
  public readonly gateway: HardenedService;
  /** The leaf's configuration exactly as deployed (secrets are `$VARIABLE` references). */
  public readonly leafConfig: string;
  /** Each agent's NATS password, by agent name. */
  public readonly agentPasswords: Record<string, secretsmanager.Secret> = {};
  public readonly secrets: {
    readonly gatewayLocalPassword: secretsmanager.Secret;
    readonly gatewayRemotePassword: secretsmanager.Secret;
    readonly provisionerPassword: secretsmanager.Secret;
    readonly backlogReporterPassword: secretsmanager.Secret;
    readonly leafHubCredentials: secretsmanager.Secret;
  };
  /** The customer-owned asymmetric key that signs the audit log's heads and the metrics that cross. */
  public readonly auditKey: kms.Key;
  public readonly hubEndpoint?: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: NarrowLinkProps) {
    super(scope, id);
    const { customerId, key, stores, network, hub } = props;
    const vars = secretVariables(customerId);
    const secret = (sid: string, name: string, description: string, reason = RESTART_REASON) => {
      const s = new secretsmanager.Secret(this, sid, {
        secretName: `byoc/${customerId}/${name}`,
        description,
        encryptionKey: key,
        // Letters only: nats-server reads a `$VARIABLE`'s value as a configuration value, so a password starting
        // with a digit parses as a number and the leaf does not start (`npm run rehearse` found it). 48 letters: 273 bits.
        generateSecretString: { passwordLength: 48, excludePunctuation: true, excludeNumbers: true },
        removalPolicy: props.removalPolicy,
      });
      for (const rule of ['AwsSolutions-SMG4', 'HIPAA.Security-SecretsManagerRotationEnabled', 'NIST.800.53.R5-SecretsManagerRotationEnabled']) {
        acknowledgeFinding(cfnOf(s), rule, reason);
      }
      return s;
    };
    this.secrets = {
      gatewayLocalPassword: secret('GatewayLocalPassword', 'link/gateway-local-password', 'Password of the boundary gateway\'s local identity on the NATS leaf (GATEWAY account)'),
      gatewayRemotePassword: secret('GatewayRemotePassword', 'link/gateway-remote-password', 'Password of the boundary gateway\'s remote identity on the NATS leaf (BOUNDARY account, linked to the hub)'),
      provisionerPassword: secret('ProvisionerPassword', 'link/provisioner-password', 'Password of the identity that creates the agents\' streams and consumers on the NATS leaf (used by the gateway at start)'),
      backlogReporterPassword: secret('BacklogReporterPassword', 'link/backlog-reporter-password', 'Password of the gateway\'s backlog reporter on the NATS leaf (reads the agents\' consumer info, nothing else)'),
      // Until the customer stores the vendor's `.creds`, the leaf runs unlinked (nats-server logs the placeholder
      // as malformed and keeps serving the agents): nothing fails the deploy on a secret filled after it.
      leafHubCredentials: secret('LeafHubCredentials', 'link/leaf-hub-credentials', 'The leaf\'s NATS credentials on the vendor hub (.creds: user JWT and seed), issued by the vendor at registration; a generated placeholder until stored',
        'Issued by the vendor hub at registration (a user JWT for this customer\'s hub account) and stored here with put-secret-value; the vendor rotates it by issuing new credentials and revoking the old user, not a Lambda in this account.'),
    };
    for (const spec of props.catalog) {
      this.agentPasswords[spec.name] = secret(`AgentPassword-${spec.name}`, `nats/${spec.name}`, `NATS password of agent ${spec.name} on the leaf (its own user)`);
    }

    // Audit and metrics signing key: asymmetric, in the customer's account; no private key exists outside KMS.
    this.auditKey = new kms.Key(this, 'AuditKey', {
      description: `BYOC customer plane ${customerId}: signs the boundary audit log's heads and the metrics that cross`,
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      alias: `alias/byoc/${customerId}/audit`,
      removalPolicy: props.removalPolicy,
    });
    limitKeyGrantsToAwsServices(this.auditKey);

    const [uid, gid] = CONTAINER_USER.split(':');
    const accessPoint = (apId: string, path: string) => {
      const ap = new efs.AccessPoint(this, apId, {
        fileSystem: stores.fileSystem, path, posixUser: { uid, gid }, createAcl: { ownerUid: uid, ownerGid: gid, permissions: '700' },
      });
      ap.applyRemovalPolicy(props.removalPolicy);
      return ap;
    };
    const common = {
      customerId, cluster: props.cluster, subnets: network.subnets, key, logRetention: props.logRetention, logRemovalPolicy: props.removalPolicy,
      alarms: props.alarms,
    };

    // The leaf node -------------------------------------------------------------------------------------
    const identities = agentIdentities(props.catalog, props);
    // From the boundary contract and the catalog; ByocChecks (Byoc-NatsFromContract) runs this again on the template's value.
    const generateLeafConfig = () => leafConfig({ customerId, shareLearning: props.shareLearning, contract: props.contract, agents: agentIdentities(props.catalog, props), listen: { host: '0.0.0.0', port: NATS_CLIENT_PORT },
      storeDir: JETSTREAM_DIR, hubCaFile: HUB_CA_FILE, hub: { host: hub.host, port: hub.port }, hubCredentialsFile: HUB_CREDENTIALS_FILE });
    this.leafConfig = generateLeafConfig();
    const leafBytes = Buffer.byteLength(this.leafConfig) + Buffer.byteLength(hub.caCertificatePem) + 160 * (identities.length + 5) + 2048;
    if (identities.length > MAX_LEAF_AGENTS || leafBytes > TASK_DEFINITION_BUDGET) {
      throw new PropError('catalog', `${identities.length} agents need a leaf configuration of ${Math.ceil(leafBytes / 1024)} KiB, more than one ECS task definition holds (64 KiB; at most ${MAX_LEAF_AGENTS} agents)`,
        `run at most ${MAX_LEAF_AGENTS} agents in one plane`);
    }
    const leafSecurityGroup = props.securityGroup('NatsLeafSecurityGroup', 'NATS leaf node: clients in from agents and the gateway only, out to the vendor hub only');
    leafSecurityGroup.connections.allowFrom(props.agentSecurityGroup, ec2.Port.tcp(NATS_CLIENT_PORT), 'NATS clients: agents');
    const leafSecrets: Record<string, ecs.Secret> = {
      [vars.gatewayLocal]: ecs.Secret.fromSecretsManager(this.secrets.gatewayLocalPassword),
      [vars.gatewayRemote]: ecs.Secret.fromSecretsManager(this.secrets.gatewayRemotePassword),
      [vars.provisioner]: ecs.Secret.fromSecretsManager(this.secrets.provisionerPassword),
      [vars.backlogReporter]: ecs.Secret.fromSecretsManager(this.secrets.backlogReporterPassword),
      [vars.leafHubCredentials]: ecs.Secret.fromSecretsManager(this.secrets.leafHubCredentials),
    };
    for (const [name, s] of Object.entries(this.agentPasswords)) leafSecrets[vars.agent(name)] = ecs.Secret.fromSecretsManager(s);
    this.leaf = new HardenedService(this, 'NatsLeaf', {
      ...common,
      name: 'nats-leaf',
      securityGroups: [leafSecurityGroup, stores.clients.workspace],
      image: props.natsImage,
      imageProp: 'images.natsServer',
      cpu: 512,
      memoryMiB: 1024,
      // nats-server reads files: the generated configuration and the vendor's CA come in (non-secret)
      // variables, the hub credentials from Secrets Manager; all three are written to the task's scratch
      // volume (the credentials readable by the task's user only) and the variable is dropped.
      command: ['sh', '-c', [
        'umask 077',
        'printf "%s" "$BYOC_NATS_CONFIG" > /tmp/nats.conf',
        `printf "%s" "$BYOC_HUB_CA" > ${HUB_CA_FILE}`,
        `printf "%s\\n" "$${vars.leafHubCredentials}" > ${HUB_CREDENTIALS_FILE}`,
        `unset ${vars.leafHubCredentials}`,
        'exec nats-server -c /tmp/nats.conf',
      ].join(' && ')],
      environment: { BYOC_NATS_CONFIG: this.leafConfig, BYOC_HUB_CA: hub.caCertificatePem },
      secrets: leafSecrets,
      efsMount: { fileSystem: stores.fileSystem, accessPoint: accessPoint('JetStreamStore', '/nats/jetstream'), path: JETSTREAM_DIR },
      cloudMapName: 'nats',
      containerPort: NATS_CLIENT_PORT,
      // One JetStream store on EFS: never two servers on it, even during a deployment.
      singleWriter: true,
      healthCheck: natsServerHealthCheck(NATS_CLIENT_PORT),
    });
    declareNatsConfig(this.leaf.taskDefinition, { variable: 'BYOC_NATS_CONFIG', source: 'the boundary contract and the agent catalog (leafConfig)', generate: generateLeafConfig });
    declareNoInternetEgress(this.leaf, 'The leaf dials only the vendor hub (its endpoint, or its cidrs on the hub port) and serves agents inside the VPC.');

    // Outbound only, to exactly the vendor hub.
    if (hub.endpointService) {
      const hubSecurityGroup = new ec2.SecurityGroup(this, 'HubEndpointSecurityGroup', {
        vpc: network.vpc, description: 'Vendor hub endpoint: leaf-node connections in from the NATS leaf only', allowAllOutbound: false,
      });
      this.hubEndpoint = new ec2.InterfaceVpcEndpoint(this, 'HubEndpoint', {
        vpc: network.vpc,
        service: new ec2.InterfaceVpcEndpointService(hub.endpointService, hub.port),
        subnets: network.subnets,
        securityGroups: [hubSecurityGroup],
        // The vendor's service name is not the certificate's: the hub's name resolves to this endpoint through
        // the private hosted zone below, and the leaf verifies the certificate against that name.
        privateDnsEnabled: false,
        open: false,
        serviceRegion: hub.endpointServiceRegion,
      });
      const zone = new route53.PrivateHostedZone(this, 'HubZone', { zoneName: hub.host, vpc: network.vpc, comment: `BYOC: the vendor hub ${hub.host} through its PrivateLink endpoint` });
      new route53.ARecord(this, 'HubRecord', { zone, target: route53.RecordTarget.fromAlias(new targets.InterfaceVpcEndpointTarget(this.hubEndpoint)) });
      leafSecurityGroup.connections.allowTo(hubSecurityGroup, ec2.Port.tcp(hub.port), 'NATS leaf to the vendor hub endpoint (outbound only)');
      if (props.llmProxyClients) {
        // llm: vendor-proxy. The vendor's LLM proxy is another listener of the same endpoint: llm.<host> in the same
        // zone, its port open to the LLM agents only.
        new route53.ARecord(this, 'LlmProxyRecord', { zone, recordName: llmProxyHost(hub.host), target: route53.RecordTarget.fromAlias(new targets.InterfaceVpcEndpointTarget(this.hubEndpoint)) });
        props.llmProxyClients.connections.allowTo(hubSecurityGroup, ec2.Port.tcp(LLM_PROXY_PORT), 'LLM agents to the vendor\'s LLM proxy through the hub endpoint (llm: vendor-proxy)');
      }
    } else {
      for (const cidr of hub.cidrs ?? []) {
        leafSecurityGroup.addEgressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(hub.port), `NATS leaf to the vendor hub at ${cidr} (outbound only)`);
      }
    }

    // The boundary gateway -----------------------------------------------------------------------------
    const gatewaySecurityGroup = props.securityGroup('GatewaySecurityGroup', 'Boundary gateway: out to the NATS leaf, EFS and the KMS endpoint only, nothing in');
    leafSecurityGroup.connections.allowFrom(gatewaySecurityGroup, ec2.Port.tcp(NATS_CLIENT_PORT), 'NATS clients: the boundary gateway');
    const outbox: Record<string, readonly string[]> = Object.fromEntries(identities.filter((a) => a.outbox.length > 0).map((a) => [a.name, a.outbox]));
    // Every agent, even one that sends nothing out, gets its consumer and bucket from the provisioner.
    for (const a of identities) outbox[a.name] ??= [];
    this.gateway = new HardenedService(this, 'BoundaryGateway', {
      ...common,
      name: 'boundary-gateway',
      securityGroups: [gatewaySecurityGroup, stores.clients.workspace],
      image: props.runtimeImage,
      imageProp: 'images.agentRuntime',
      cpu: 256,
      memoryMiB: 512,
      command: ['node', GATEWAY_ENTRY],
      environment: {
        BYOC_CUSTOMER: customerId,
        BYOC_SHARE_LEARNING: String(props.shareLearning),
        // The contract the leaf's rules were generated from, with its hash: the gateway validates every crossing against it.
        ...contractEnvironment(props.contract),
        NATS_URL: `nats://nats.byoc.internal:${NATS_CLIENT_PORT}`,
        BYOC_AUDIT_LOG: `${AUDIT_DIR}/boundary-audit.log`,
        BYOC_AUDIT_KEY: this.auditKey.keyArn,
        BYOC_AGENTS: JSON.stringify(outbox),
        // The provisioner (run by the gateway at start) gives each of these a durable consumer per event subject.
        BYOC_AGENT_EVENTS: JSON.stringify(Object.fromEntries(identities.map((a) => [a.name, eventSubscriptionsOf(a.subscribe)]).filter(([, e]) => e.length > 0))),
      },
      secrets: {
        [vars.gatewayLocal]: ecs.Secret.fromSecretsManager(this.secrets.gatewayLocalPassword),
        [vars.gatewayRemote]: ecs.Secret.fromSecretsManager(this.secrets.gatewayRemotePassword),
        [vars.provisioner]: ecs.Secret.fromSecretsManager(this.secrets.provisionerPassword),
        [vars.backlogReporter]: ecs.Secret.fromSecretsManager(this.secrets.backlogReporterPassword),
      },
      efsMount: { fileSystem: stores.fileSystem, accessPoint: accessPoint('AuditLog', '/audit'), path: AUDIT_DIR },
      // One append-only audit chain: never two writers, even during a deployment.
      singleWriter: true,
      healthCheck: natsClientHealthCheck(NATS_CLIENT_PORT),
    });
    // Refusals, audit-chain write failures and failed crossings, counted from the gateway's log lines (it exports no metrics of its own).
    const gatewayLogs = this.gateway.logGroup;
    countLogLine(this, 'RejectionsLogged', gatewayLogs, COUNTED_LOG_LINES.rejected, PLANE_METRICS.rejections);
    countLogLine(this, 'RejectionsSuppressed', gatewayLogs, COUNTED_LOG_LINES.rejectedSuppressed, PLANE_METRICS.rejections, '$.suppressed');
    countLogLine(this, 'AuditIntentsFailed', gatewayLogs, COUNTED_LOG_LINES.auditIntentsFailed, PLANE_METRICS.auditFailures, '$.messages');
    countLogLine(this, 'AuditHeadsFailed', gatewayLogs, COUNTED_LOG_LINES.auditHeadFailed, PLANE_METRICS.auditFailures);
    countLogLine(this, 'CrossingsUnacknowledged', gatewayLogs, COUNTED_LOG_LINES.crossingsUnacknowledged, PLANE_METRICS.crossingFailures, '$.messages');
    countLogLine(this, 'CrossingsRefused', gatewayLogs, COUNTED_LOG_LINES.crossingsRefused, PLANE_METRICS.crossingFailures, '$.messages');
    declareNoInternetEgress(this.gateway, 'The gateway talks only to the NATS leaf, EFS and the AWS endpoints; what crosses goes through the leaf, never straight out.');
    // Only the gateway signs: its task role may Sign and read the public key, through the KMS endpoint.
    this.gateway.taskRole.grantActions(['kms:Sign', 'kms:GetPublicKey'], [this.auditKey.keyArn]);
    this.auditKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'OnlyTheBoundaryGatewaySigns',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:Sign'],
      resources: ['*'],
      conditions: { ArnNotEquals: { 'aws:PrincipalArn': this.gateway.taskRole.roleArn } },
    }));
  }
}
