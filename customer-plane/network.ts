import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeFinding } from '../lib/compliance';
import { PropError } from '../lib/errors';
import { ManagedPolicyRole } from '../lib/iam';
import { EgressMode } from './props';

/** HTTPS, the only port the interface endpoints listen on. */
export const HTTPS_PORT = 443;

/** The interface endpoints every plane gets: what Fargate tasks, Secrets Manager reads and KMS need. */
export const INTERFACE_ENDPOINTS: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
  EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
  EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
  Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  Kms: ec2.InterfaceVpcEndpointAwsService.KMS,
  Sts: ec2.InterfaceVpcEndpointAwsService.STS,
};

export interface NetworkProps {
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly maxAzs: number;
  readonly availabilityZones?: string[];
  readonly vpcCidr: string;
  readonly vpcEndpoints: boolean;
  readonly egress: EgressMode;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The plane's network: a VPC of private isolated subnets (or the customer's own), VPC flow logs to an
 * encrypted log group, and VPC endpoints whose policies admit only principals of this account.
 */
export class Network extends Construct {
  public readonly vpc: ec2.IVpc;
  /** The subnets every workload and data store is placed in. */
  public readonly subnets: ec2.SubnetSelection;
  /** The interface endpoints' security group; workloads are let in with `allowEndpointsFrom`. */
  public readonly endpointSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);

    if (props.vpc) {
      this.vpc = props.vpc;
      this.subnets = props.vpcSubnets ?? {
        subnetType: props.vpc.isolatedSubnets.length > 0 ? ec2.SubnetType.PRIVATE_ISOLATED : ec2.SubnetType.PRIVATE_WITH_EGRESS,
      };
      if (props.vpc.selectSubnets(this.subnets).availabilityZones.length < 2) {
        throw new PropError('vpcSubnets', 'selects subnets in fewer than two AZs', 'select private subnets in at least two AZs: RDS, Redis failover and EFS need them');
      }
    } else {
      const nat = props.egress === EgressMode.NAT;
      const vpc = new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr(props.vpcCidr),
        ...(props.availabilityZones ? { availabilityZones: props.availabilityZones } : { maxAzs: props.maxAzs }),
        natGateways: nat ? props.maxAzs : 0,
        subnetConfiguration: nat
          ? [
            { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
            { name: 'Private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
          ]
          : [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 }],
        restrictDefaultSecurityGroup: true,
      });
      this.vpc = vpc;
      this.subnets = { subnetType: nat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED };
      if (nat) {
        for (const subnet of vpc.publicSubnets) {
          const route = subnet.node.findChild('DefaultRoute');
          for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
            acknowledgeFinding(route, `${pack}-VPCNoUnrestrictedRouteToIGW`,
              'Egress was opted into with egress: nat. This public subnet holds only the NAT gateway; every workload and data store sits in the private subnets.');
          }
        }
      }
    }

    // Flow logs: every accepted and rejected connection, kept encrypted in the customer's account.
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      encryptionKey: props.key,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const flowLogRole = new ManagedPolicyRole(this, 'FlowLogRole', {
      assumedBy: new iam.ServicePrincipal('vpc-flow-logs.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'Lets VPC Flow Logs write the flow records of the plane to its own log group',
    });
    new ec2.FlowLog(this, 'FlowLog', {
      resourceType: ec2.FlowLogResourceType.fromVpc(this.vpc),
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup, flowLogRole),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'VPC interface endpoints: HTTPS in from the workloads of the plane only',
      allowAllOutbound: false,
    });
    // A security group with no egress rule gets CDK's placeholder rule, which matches no traffic.

    if (props.vpcEndpoints) {
      for (const [id, service] of Object.entries(INTERFACE_ENDPOINTS)) {
        const endpoint = new ec2.InterfaceVpcEndpoint(this, id, {
          vpc: this.vpc,
          service,
          subnets: this.subnets,
          privateDnsEnabled: true,
          securityGroups: [this.endpointSecurityGroup],
          open: false,
        });
        endpoint.addToPolicy(accountOnlyStatement());
      }
      const s3 = new ec2.GatewayVpcEndpoint(this, 'S3', {
        vpc: this.vpc,
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [this.subnets],
      });
      s3.addToPolicy(accountOnlyStatement());
    }
  }

  /** Lets a workload's security group reach the interface endpoints over HTTPS. */
  public allowEndpointsFrom(peer: ec2.SecurityGroup): void {
    peer.connections.allowTo(this.endpointSecurityGroup, ec2.Port.tcp(HTTPS_PORT), 'AWS APIs through the VPC interface endpoints');
  }
}

/**
 * The endpoint policy: any action, but only by principals of this account. A leaked credential of another
 * account cannot use the plane's endpoints, and nothing in the plane can reach another account through them
 * except by the vendor's ECR repositories, which are resources, not principals.
 */
function accountOnlyStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    principals: [new iam.AnyPrincipal()],
    actions: ['*'],
    resources: ['*'],
    conditions: { StringEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID } },
  });
}
