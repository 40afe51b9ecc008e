import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { leafConfig, secretVariables } from '../lib/nats-config';
import { acknowledgeFinding, cfnOf } from '../lib/compliance';
import { DataStores } from './data-stores';
import { CONTAINER_USER, HardenedService } from './hardened-service';
import { Network } from './network';

/** Client port of the NATS leaf node (agents and the gateway connect here). */
export const NATS_CLIENT_PORT = 4222;
/** Where the leaf keeps JetStream, on its EFS access point. */
export const JETSTREAM_DIR = '/data/jetstream';
/** Where the gateway writes the audit log, on its EFS access point. */
export const AUDIT_DIR = '/audit';
/** The bundled gateway inside the agent runtime image. */
export const GATEWAY_ENTRY = '/app/boundary-gateway.js';

export interface NarrowLinkProps {
  readonly customerId: string;
  readonly shareLearning: boolean;
  readonly cluster: ecs.ICluster;
  readonly network: Network;
  readonly stores: DataStores;
  readonly key: kms.IKey;
  readonly natsImage: string;
  readonly runtimeImage: string;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly vendorHubEndpointService?: string;
  readonly vendorHubPort: number;
  /** Security group of the agents, let in to the leaf. */
  readonly agentSecurityGroup: ec2.SecurityGroup;
  /** Makes a workload security group (endpoint and S3 egress already allowed). */
  readonly securityGroup: (id: string, description: string) => ec2.SecurityGroup;
}

/**
 * The customer's side of the narrow link: the NATS leaf node, configured by the same generator the tests
 * run on a real server, and the boundary gateway, the only publisher on crossing subjects. The leaf
 * connects outbound only, to the vendor hub's PrivateLink endpoint when one is given.
 */
export class NarrowLink extends Construct {
  public readonly leaf: HardenedService;
  public readonly gateway: HardenedService;
  /** The leaf's configuration exactly as deployed (secrets are `$VARIABLE` references). */
  public readonly leafConfig: string;
  public readonly secrets: {
    readonly agentsPassword: secretsmanager.Secret;
    readonly gatewayPassword: secretsmanager.Secret;
    readonly leafRemoteUrl: secretsmanager.Secret;
    readonly auditSigningKey: secretsmanager.Secret;
  };
  public readonly hubEndpoint?: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: NarrowLinkProps) {
    super(scope, id);
    const { customerId, key, stores, network } = props;
    const vars = secretVariables(customerId);
    const secret = (sid: string, description: string, generated: boolean, reason: string) => {
      const s = new secretsmanager.Secret(this, sid, {
        secretName: `byoc/${customerId}/link/${sid.replace(/[A-Z]/g, (c, i) => `${i ? '-' : ''}${c.toLowerCase()}`)}`,
        description,
        encryptionKey: key,
        generateSecretString: generated ? { passwordLength: 48, excludePunctuation: true } : { passwordLength: 32, excludePunctuation: true },
        removalPolicy: props.removalPolicy,
      });
      for (const rule of ['AwsSolutions-SMG4', 'HIPAA.Security-SecretsManagerRotationEnabled', 'NIST.800.53.R5-SecretsManagerRotationEnabled']) {
        acknowledgeFinding(cfnOf(s), rule, reason);
      }
      return s;
    };
    const restart = 'Read by the NATS leaf and the gateway only at task start: rotating it means a new value and a redeploy of both services, which a Secrets Manager rotation Lambda cannot coordinate.';
    this.secrets = {
      agentsPassword: secret('AgentsPassword', 'Password agents use on the NATS leaf', true, restart),
      gatewayPassword: secret('GatewayPassword', 'Password of the boundary gateway on the NATS leaf', true, restart),
      leafRemoteUrl: secret('LeafRemoteUrl', 'tls://leaf-<customer>:<password>@<hub>:<port>, issued by the vendor at registration; placeholder until stored', false,
        'Issued by the vendor hub at registration and stored here with put-secret-value; it is rotated by the vendor re-issuing it, not by a Lambda in this account.'),
      auditSigningKey: secret('AuditSigningKey', 'PEM Ed25519 private key that signs the audit log heads (byoc keygen); placeholder until stored', false,
        'A signing key the customer generates (byoc keygen) and stores with put-secret-value; Secrets Manager cannot generate an Ed25519 key, so a rotation Lambda has nothing to rotate to.'),
    };

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
    };

    // The leaf node -------------------------------------------------------------------------------------
    this.leafConfig = leafConfig({ customerId, shareLearning: props.shareLearning, listen: { host: '0.0.0.0', port: NATS_CLIENT_PORT }, storeDir: JETSTREAM_DIR });
    const leafSecurityGroup = props.securityGroup('NatsLeafSecurityGroup', 'NATS leaf node: clients in from agents and the gateway only, out to the vendor hub');
    leafSecurityGroup.connections.allowFrom(props.agentSecurityGroup, ec2.Port.tcp(NATS_CLIENT_PORT), 'NATS clients: agents');
    this.leaf = new HardenedService(this, 'NatsLeaf', {
      ...common,
      name: 'nats-leaf',
      securityGroups: [leafSecurityGroup, stores.clients.workspace],
      image: props.natsImage,
      imageProp: 'images.natsServer',
      cpu: 512,
      memoryMiB: 1024,
      // nats-server reads a file: the generated configuration comes in a (non-secret) variable and is
      // written to the task's scratch volume; the secrets it references come from Secrets Manager.
      command: ['sh', '-c', 'printf "%s" "$BYOC_NATS_CONFIG" > /tmp/nats.conf && exec nats-server -c /tmp/nats.conf'],
      environment: { BYOC_NATS_CONFIG: this.leafConfig },
      secrets: {
        [vars.agents]: ecs.Secret.fromSecretsManager(this.secrets.agentsPassword),
        [vars.gateway]: ecs.Secret.fromSecretsManager(this.secrets.gatewayPassword),
        [vars.leafRemoteUrl]: ecs.Secret.fromSecretsManager(this.secrets.leafRemoteUrl),
      },
      efsMount: { fileSystem: stores.fileSystem, accessPoint: accessPoint('JetStreamStore', '/nats/jetstream'), path: JETSTREAM_DIR },
      cloudMapName: 'nats',
      containerPort: NATS_CLIENT_PORT,
    });

    // Outbound only, to the vendor hub.
    if (props.vendorHubEndpointService) {
      const hubSecurityGroup = new ec2.SecurityGroup(this, 'HubEndpointSecurityGroup', {
        vpc: network.vpc, description: 'Vendor hub endpoint: leaf-node connections in from the NATS leaf only', allowAllOutbound: false,
      });
      this.hubEndpoint = new ec2.InterfaceVpcEndpoint(this, 'HubEndpoint', {
        vpc: network.vpc,
        service: new ec2.InterfaceVpcEndpointService(props.vendorHubEndpointService, props.vendorHubPort),
        subnets: network.subnets,
        securityGroups: [hubSecurityGroup],
        privateDnsEnabled: false,
        open: false,
      });
      hubSecurityGroup.connections.allowFrom(leafSecurityGroup, ec2.Port.tcp(props.vendorHubPort), 'NATS leaf to the vendor hub (outbound only)');
    }

    // The boundary gateway -----------------------------------------------------------------------------
    const gatewaySecurityGroup = props.securityGroup('GatewaySecurityGroup', 'Boundary gateway: out to the NATS leaf and EFS only, nothing in');
    leafSecurityGroup.connections.allowFrom(gatewaySecurityGroup, ec2.Port.tcp(NATS_CLIENT_PORT), 'NATS clients: the boundary gateway');
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
        NATS_URL: `nats://nats.byoc.internal:${NATS_CLIENT_PORT}`,
        BYOC_AUDIT_LOG: `${AUDIT_DIR}/boundary-audit.log`,
      },
      secrets: {
        [vars.gateway]: ecs.Secret.fromSecretsManager(this.secrets.gatewayPassword),
        BYOC_AUDIT_SIGNING_KEY: ecs.Secret.fromSecretsManager(this.secrets.auditSigningKey),
      },
      efsMount: { fileSystem: stores.fileSystem, accessPoint: accessPoint('AuditLog', '/audit'), path: AUDIT_DIR },
    });
  }
}
