import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { BoundaryContract } from '../lib/boundary-contract';
import { allowLogsOfThisAccount } from '../lib/iam';
import { declareNatsConfig } from '../lib/byoc-checks';
import { acknowledgeControlTowerFinding, acknowledgeFinding, cfnOf, limitKeyGrantsToAwsServices } from '../lib/compliance';
import { CONTAINER_USER, HardenedService } from '../customer-plane/hardened-service';
import {
  HUB_DATA_DIR, HUB_ENV, HUB_HEALTH_PATH, HUB_PORTS, hubNodeConfig, hubNodeName, hubStartCommand,
} from './hub-config';
import { HubNetwork } from './network';
import { ResolvedHubProps } from './props';

/** Prefix of the load balancers' access logs in `accessLogBucket`. */
export const ACCESS_LOG_PREFIX = 'byoc-hub';
/** Name of the hub's ECS cluster. */
export const HUB_CLUSTER = 'byoc-hub';

export interface NatsHubProps extends ResolvedHubProps {
  /** The registered customer accounts: exactly these may connect to the endpoint service. */
  readonly customerAccounts: readonly string[];
  /** Keep the file system, key, secrets, logs and Elastic IPs on delete; load balancers get deletion protection. */
  readonly retainData: boolean;
  readonly logRetention: logs.RetentionDays;
  /** The boundary contract the customers' hub accounts are issued from (named in each node's configuration). @default BOUNDARY_CONTRACT */
  readonly contract?: BoundaryContract;
}

const ROTATION_RULES = ['AwsSolutions-SMG4', 'HIPAA.Security-SecretsManagerRotationEnabled', 'NIST.800.53.R5-SecretsManagerRotationEnabled'];

/**
 * The vendor's NATS hub: a cluster of nats-server nodes with JetStream on ECS Fargate (ARM64), each node
 * its own single-task service with a stable name (`server_name`, `node-N.<host>` in Cloud Map), its own
 * encrypted storage (an EFS access point) and stop-before-start deployments, so no two tasks ever share a
 * node's JetStream store. Nodes route to each other over mutual TLS with a route password. Customers'
 * leaf nodes reach port 7422 through a PrivateLink endpoint service in front of an internal Network Load
 * Balancer (and, opted in, an internet-facing one); vendor services reach the client port 4222 inside the VPC
 * (`hub.connections.allowDefaultPortFrom(...)`). Clients and leaf nodes authenticate with JWTs of the
 * operator (decentralized auth): no account, user or password of a customer is in the template.
 */
export class NatsHub extends Construct implements ec2.IConnectable {
  /** The hub's nodes' security group; its default port is the client port. */
  public readonly connections: ec2.Connections;
  public readonly key: kms.Key;
  public readonly network: HubNetwork;
  public readonly cluster: ecs.Cluster;
  public readonly fileSystem: efs.FileSystem;
  /** One service per node, in index order. */
  public readonly nodes: HardenedService[] = [];
  /** Each node's storage, in index order. */
  public readonly accessPoints: efs.AccessPoint[] = [];
  /** The internal load balancer behind the endpoint service. */
  public readonly loadBalancer: elbv2.NetworkLoadBalancer;
  /** The internet-facing load balancer, with `internetFacing`. */
  public readonly publicLoadBalancer?: elbv2.NetworkLoadBalancer;
  /** Elastic IPs of the internet-facing load balancer (one per AZ), with `internetFacing`. */
  public readonly publicAddresses: ec2.CfnEIP[] = [];
  public readonly endpointService: ec2.VpcEndpointService;
  /** The password nodes present to each other on cluster routes (generated). */
  public readonly routePassword: secretsmanager.Secret;
  /**
   * Where the vendor keeps the operator's signing seed (a placeholder until filled with put-secret-value).
   * The nodes never read it: only the registration tooling signs accounts and users with it.
   */
  public readonly operatorSigningSeed: secretsmanager.Secret;
  /** Each node's configuration exactly as the template gives it to the container, in index order. */
  public readonly nodeConfigs: string[] = [];

  constructor(scope: Construct, id: string, props: NatsHubProps) {
    super(scope, id);
    const removalPolicy = props.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.key = new kms.Key(this, 'Key', {
      description: 'BYOC vendor hub: its storage, secrets and logs',
      enableKeyRotation: true,
      removalPolicy,
    });
    allowLogsOfThisAccount(this.key);
    limitKeyGrantsToAwsServices(this.key);

    this.network = new HubNetwork(this, 'Network', {
      vpcCidr: props.vpcCidr,
      maxAzs: props.maxAzs,
      availabilityZones: props.availabilityZones,
      publicSubnets: props.internetFacing,
      s3PrefixListId: props.s3PrefixListId,
      key: this.key,
      logRetention: props.logRetention,
      removalPolicy,
    });
    const { vpc, subnets } = this.network;

    // The nodes find each other as node-N.<host>, the names their certificate carries.
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      clusterName: HUB_CLUSTER,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      defaultCloudMapNamespace: { name: props.host, vpc, useForServiceConnect: false },
    });
    const insightsLogs = new logs.LogGroup(this, 'ContainerInsightsLogs', {
      logGroupName: `/aws/ecs/containerinsights/${HUB_CLUSTER}/performance`,
      encryptionKey: this.key,
      retention: props.logRetention,
      removalPolicy,
    });
    cfnOf(this.cluster).addResourceDependency(cfnOf(insightsLogs));

    // Security groups: nothing in but the routes between nodes, leaf nodes through the load balancers and
    // clients let in explicitly; nothing out but routes, NFS and the AWS APIs.
    const nodeSecurityGroup = new ec2.SecurityGroup(this, 'NodeSecurityGroup', {
      vpc, allowAllOutbound: false,
      description: 'NATS hub nodes: routes between nodes, leaf nodes from the load balancers, clients let in explicitly',
    });
    this.network.allowEndpointsFrom(nodeSecurityGroup);
    nodeSecurityGroup.connections.allowInternally(ec2.Port.tcp(HUB_PORTS.cluster), 'Cluster routes between hub nodes (mutual TLS, route password)');
    this.connections = new ec2.Connections({ securityGroups: [nodeSecurityGroup], defaultPort: ec2.Port.tcp(HUB_PORTS.client) });

    // Storage: one encrypted file system with automatic backups, one access point (own folder, own POSIX
    // owner) per node; a node's task role may mount only its own access point.
    const storageSecurityGroup = new ec2.SecurityGroup(this, 'StorageSecurityGroup', {
      vpc, allowAllOutbound: false, description: 'Hub storage mount targets: NFS in from the hub nodes only',
    });
    this.fileSystem = new efs.FileSystem(this, 'Storage', {
      vpc,
      vpcSubnets: subnets,
      securityGroup: storageSecurityGroup,
      encrypted: true,
      kmsKey: this.key,
      throughputMode: efs.ThroughputMode.ELASTIC,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      // AWS Backup's daily automatic backup (35 days) into the account's aws/efs/automatic-backup-vault.
      enableAutomaticBackups: true,
      allowAnonymousAccess: false,
      removalPolicy,
    });
    this.fileSystem.connections.allowDefaultPortFrom(nodeSecurityGroup, 'NFS from the hub nodes');
    if (props.retainData) {
      // Daily and monthly recovery points in a vault of the hub's own, kept when the stack is deleted.
      const vault = new backup.BackupVault(this, 'BackupVault', { backupVaultName: HUB_CLUSTER, encryptionKey: this.key, removalPolicy: RemovalPolicy.RETAIN });
      const plan = new backup.BackupPlan(this, 'BackupPlan', { backupVault: vault, backupPlanRules: [backup.BackupPlanRule.daily(), backup.BackupPlanRule.monthly1Year()] });
      const selection = plan.addSelection('Storage', { resources: [backup.BackupResource.fromEfsFileSystem(this.fileSystem)] });
      acknowledgeFinding(cfnOf(selection.node.findChild('Role')), 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]',
        'AWS Backup\'s own service-role policy, maintained by AWS for the resource types it backs up; the role can be assumed only by backup.amazonaws.com.');
    } else {
      for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) {
        acknowledgeFinding(cfnOf(this.fileSystem), `${pack}-EFSInBackupPlan`,
          'retainData is off: a vault of this stack holding recovery points cannot be deleted, so cdk destroy would fail. EFS automatic backups (BackupPolicy ENABLED) back it up daily into the account\'s own automatic-backup vault instead.');
      }
    }

    // Secrets: the route password (generated; read by the nodes at start) and the operator signing seed
    // (filled by the vendor; read by nobody here).
    this.routePassword = new secretsmanager.Secret(this, 'RoutePassword', {
      secretName: 'byoc/hub/route-password',
      description: 'Password the NATS hub nodes present to each other on cluster routes',
      encryptionKey: this.key,
      // Letters only (48 of 52: 273 bits): nats-server reads a $VARIABLE's value as configuration, and a value
      // such as "1e5..." parses as a number, so the node would refuse its configuration and never start.
      generateSecretString: { passwordLength: 48, excludePunctuation: true, excludeNumbers: true },
      removalPolicy,
    });
    for (const rule of ROTATION_RULES) {
      acknowledgeFinding(cfnOf(this.routePassword), rule,
        'Read by every hub node only at task start: a new value needs all nodes restarted together, which a Secrets Manager rotation Lambda cannot coordinate; rotate by put-secret-value and a redeploy of the nodes.');
    }
    this.operatorSigningSeed = new secretsmanager.Secret(this, 'OperatorSigningSeed', {
      secretName: 'byoc/hub/operator-signing-seed',
      description: 'The NATS operator\'s signing seed (SO...), filled by the vendor with put-secret-value; signs customer accounts and users. A generated placeholder until then; no hub node reads it',
      encryptionKey: this.key,
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
      removalPolicy,
    });
    for (const rule of ROTATION_RULES) {
      acknowledgeFinding(cfnOf(this.operatorSigningSeed), rule,
        'An nkey seed is rotated by adding a new signing key to the operator JWT and re-signing the accounts with it, which the vendor does with its registration tooling, not a Lambda.');
    }
    const certificate = secretsmanager.Secret.fromSecretAttributes(this, 'Certificate', { secretCompleteArn: props.tls.certificateSecretArn });

    // The nodes ---------------------------------------------------------------------------------------
    const nodeHosts = Array.from({ length: props.nodes }, (_, i) => `${hubNodeName(i)}.${props.host}`);
    const [uid, gid] = CONTAINER_USER.split(':');
    const isolated = vpc.selectSubnets(subnets).subnets;
    for (let i = 0; i < props.nodes; i++) {
      const accessPoint = new efs.AccessPoint(this, `Node${i}Storage`, {
        fileSystem: this.fileSystem,
        path: `/hub/${hubNodeName(i)}`,
        posixUser: { uid, gid },
        createAcl: { ownerUid: uid, ownerGid: gid, permissions: '700' },
      });
      accessPoint.applyRemovalPolicy(removalPolicy);
      this.accessPoints.push(accessPoint);
      // Operator mode: the configuration holds no account or permission (those are JWTs `byoc customer add` issues).
      const generateConfig = () => hubNodeConfig({
        index: i,
        nodeHosts,
        operatorJwt: props.operatorJwt,
        systemAccountPublicKey: props.systemAccountPublicKey,
        systemAccountJwt: props.systemAccountJwt,
        contract: props.contract,
      });
      const config = generateConfig();
      this.nodeConfigs.push(config);
      const node = new HardenedService(this, `Node${i}`, {
        name: `nats-hub-${i}`,
        customerId: 'vendor',
        cluster: this.cluster,
        // Nodes take the AZs in turn, so losing one AZ takes at most ceil(nodes / AZs) nodes.
        subnets: { subnets: [isolated[i % isolated.length]] },
        securityGroups: [nodeSecurityGroup],
        image: props.image,
        imageProp: 'hub.image',
        cpu: props.cpu,
        memoryMiB: props.memoryMiB,
        key: this.key,
        logRetention: props.logRetention,
        logRemovalPolicy: removalPolicy,
        command: ['sh', '-c', hubStartCommand({ index: i, nodeHosts })],
        environment: { [HUB_ENV.config]: config, [HUB_ENV.ca]: props.tls.caCertificatePem },
        secrets: {
          [HUB_ENV.cert]: ecs.Secret.fromSecretsManager(certificate, 'cert'),
          [HUB_ENV.key]: ecs.Secret.fromSecretsManager(certificate, 'key'),
          [HUB_ENV.routePassword]: ecs.Secret.fromSecretsManager(this.routePassword),
        },
        efsMount: { fileSystem: this.fileSystem, accessPoint, path: HUB_DATA_DIR },
        cloudMapName: hubNodeName(i),
        containerPort: HUB_PORTS.client,
        // One JetStream store and resolver folder per node: never two tasks on it, even during a deployment.
        singleWriter: true,
      });
      declareNatsConfig(node.taskDefinition, { variable: HUB_ENV.config, source: 'the operator\'s settings by hubNodeConfig (operator mode)', generate: generateConfig });
      if (props.tls.certificateSecretKeyArn) {
        // The certificate secret's own key: decrypt, only for Secrets Manager reading that secret at task start.
        node.executionRole.grantActions(['kms:Decrypt'], [props.tls.certificateSecretKeyArn], {
          StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` },
        });
      }
      node.taskDefinition.defaultContainer!.addPortMappings(
        { containerPort: HUB_PORTS.cluster, name: 'cluster' },
        { containerPort: HUB_PORTS.leafnode, name: 'leafnodes' },
        { containerPort: HUB_PORTS.monitoring, name: 'monitoring' },
      );
      this.nodes.push(node);
    }

    // Leaf nodes in -----------------------------------------------------------------------------------
    // TLS passes through the load balancer to nats-server, which ends it: a leaf node (nats-server 2.9)
    // reads the hub's INFO in clear text before it starts TLS, which a TLS listener would never send; and
    // each leaf pins the vendor's own CA and the hub's name, which only nats-server's certificate (from that
    // CA) satisfies, not an ACM certificate. The load balancer never holds a key or sees plaintext.
    const leafTargets = (lbId: string, lb: elbv2.NetworkLoadBalancer, lbSecurityGroup: ec2.SecurityGroup) => {
      lbSecurityGroup.connections.allowTo(nodeSecurityGroup, ec2.Port.tcp(HUB_PORTS.leafnode), 'Leaf-node connections to the hub nodes');
      lbSecurityGroup.connections.allowTo(nodeSecurityGroup, ec2.Port.tcp(HUB_PORTS.monitoring), `Health checks of the hub nodes (${HUB_HEALTH_PATH})`);
      const targets = new elbv2.NetworkTargetGroup(this, `${lbId}Targets`, {
        vpc,
        port: HUB_PORTS.leafnode,
        protocol: elbv2.Protocol.TCP,
        targetType: elbv2.TargetType.IP,
        // HTTP on the monitoring port, not TCP on the leaf-node port: a bare TCP check there is a failed TLS
        // handshake in nats-server's log, several a minute from each load balancer node.
        healthCheck: {
          protocol: elbv2.Protocol.HTTP, port: String(HUB_PORTS.monitoring), path: HUB_HEALTH_PATH,
          interval: Duration.seconds(10), healthyThresholdCount: 2, unhealthyThresholdCount: 2,
        },
        // A stopping node's leaf connections are cut after 30 s; the leaves reconnect to the other nodes.
        deregistrationDelay: Duration.seconds(30),
        connectionTermination: true,
      });
      for (const node of this.nodes) {
        targets.addTarget(node.service.loadBalancerTarget({ containerName: 'main', containerPort: HUB_PORTS.leafnode }));
      }
      const listener = lb.addListener(`${lbId}LeafNodes`, { port: HUB_PORTS.leafnode, protocol: elbv2.Protocol.TCP, defaultTargetGroups: [targets] });
      // TCP, not TLS: see above. Encryption is end to end between the leaf and nats-server.
      for (const rule of ['HIPAA.Security-ELBv2ACMCertificateRequired', 'NIST.800.53.R5-ELBv2ACMCertificateRequired', 'PCI.DSS.321-ELBv2ACMCertificateRequired']) {
        acknowledgeFinding(cfnOf(listener), rule,
          'TLS passes through to nats-server, which ends it with the vendor CA\'s certificate that leaf nodes pin (an ACM certificate chains to other roots, and a leaf reads the hub\'s INFO before its TLS handshake); the load balancer never holds a key or sees plaintext.');
      }
      if (props.accessLogBucket) {
        lb.setAttribute('access_logs.s3.enabled', 'true');
        lb.setAttribute('access_logs.s3.bucket', props.accessLogBucket);
        lb.setAttribute('access_logs.s3.prefix', ACCESS_LOG_PREFIX);
      } else {
        const reason = 'Network Load Balancer access logs record TLS listeners only; this listener passes TCP through to nats-server, which ends TLS, so the log would stay empty. Connections are recorded by the VPC flow logs and nats-server\'s log; give hub.accessLogBucket where the control is enforced.';
        for (const rule of ['AwsSolutions-ELB2', 'HIPAA.Security-ELBLoggingEnabled', 'NIST.800.53.R5-ELBLoggingEnabled', 'PCI.DSS.321-ELBLoggingEnabled']) {
          acknowledgeFinding(cfnOf(lb), rule, reason);
        }
        acknowledgeControlTowerFinding(cfnOf(lb), 'CT.ELASTICLOADBALANCING.PR.6', reason);
      }
      if (!props.retainData) {
        const reason = 'retainData: false was chosen so cdk destroy removes the hub; deletion protection would refuse that. In an account enforcing CT.ELASTICLOADBALANCING.PR.5 keep retainData on (the default).';
        acknowledgeControlTowerFinding(cfnOf(lb), 'CT.ELASTICLOADBALANCING.PR.5', reason);
        for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) acknowledgeFinding(cfnOf(lb), `${pack}-ELBDeletionProtectionEnabled`, reason);
      }
    };

    const lbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc, allowAllOutbound: false,
      description: 'Internal hub load balancer: PrivateLink traffic only (the endpoint service allowed principals decide who connects), out to the leaf-node port of the hub nodes',
    });
    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc,
      vpcSubnets: subnets,
      internetFacing: false,
      securityGroups: [lbSecurityGroup],
      crossZoneEnabled: true,
      deletionProtection: props.retainData,
      // PrivateLink traffic arrives with the customer's private addresses (unknown, and overlapping between
      // customers): who may connect is decided by the endpoint service's allowed principals, not by this
      // security group, which admits nothing else.
      enforceSecurityGroupInboundRulesOnPrivateLinkTraffic: false,
    });
    leafTargets('Private', this.loadBalancer, lbSecurityGroup);

    // Acceptance is not required: the allowed principals are exactly the registered accounts, so being
    // registered is the acceptance. Requiring it again would stall each customer's deploy (its endpoint
    // pending) until the vendor accepts by hand, and add no check: only those accounts can ask. Revoking a
    // customer removes its account here and rejects its existing endpoint connection (removing a principal
    // alone leaves an existing connection up), besides revoking its NATS account.
    this.endpointService = new ec2.VpcEndpointService(this, 'EndpointService', {
      vpcEndpointServiceLoadBalancers: [this.loadBalancer],
      acceptanceRequired: false,
      allowedPrincipals: props.customerAccounts.map((a) => new iam.ArnPrincipal(`arn:${Aws.PARTITION}:iam::${a}:root`)),
    });

    if (props.internetFacing) {
      const publicSecurityGroup = new ec2.SecurityGroup(this, 'PublicLoadBalancerSecurityGroup', {
        vpc, allowAllOutbound: false,
        description: 'Internet-facing hub load balancer: the leaf-node port from anywhere (opted in), out to the leaf-node port of the hub nodes',
      });
      publicSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(HUB_PORTS.leafnode), 'Leaf nodes of customers without PrivateLink (internetFacing: true)');
      acknowledgeFinding(publicSecurityGroup, 'AwsSolutions-EC23',
        'Opted in with internetFacing: true for customers without PrivateLink. Only the leaf-node port is open; nats-server ends TLS with the vendor CA\'s certificate and admits only leaf users the operator signed.');
      acknowledgeControlTowerFinding(publicSecurityGroup, 'CT.EC2.PR.3',
        'Opted in with internetFacing: true: the leaf-node port must be reachable from customers\' NAT addresses, which the vendor does not know. An account enforcing CT.EC2.PR.3 refuses it; offer the hub over PrivateLink only there (the default).');
      for (let i = 0; i < vpc.publicSubnets.length; i++) {
        const eip = new ec2.CfnEIP(this, `PublicAddress${i}`, { domain: 'vpc' });
        eip.applyRemovalPolicy(removalPolicy);
        this.publicAddresses.push(eip);
      }
      this.publicLoadBalancer = new elbv2.NetworkLoadBalancer(this, 'PublicLoadBalancer', {
        vpc,
        internetFacing: true,
        subnetMappings: vpc.publicSubnets.map((subnet, i) => ({ subnet, allocationId: this.publicAddresses[i].attrAllocationId })),
        securityGroups: [publicSecurityGroup],
        crossZoneEnabled: true,
        deletionProtection: props.retainData,
      });
      leafTargets('Public', this.publicLoadBalancer, publicSecurityGroup);
    }
  }
}
