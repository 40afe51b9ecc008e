import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { declareEgress } from '../lib/byoc-checks';
import { acknowledgeFinding } from '../lib/compliance';
import { DeployTimeFunction } from '../lib/deploy-time/function';
import { PropError } from '../lib/errors';
import {
  accountOnlyInterfaceEndpoints, addFlowLogs, allowEndpointsFrom, connectDeployTimeFunction, s3GatewayEndpoint,
} from '../lib/network';
import { EgressMode } from './props';

/** The interface endpoints every plane gets: what Fargate tasks, Secrets Manager reads, KMS and the collector need. */
export const INTERFACE_ENDPOINTS: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
  EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
  EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
  Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  Kms: ec2.InterfaceVpcEndpointAwsService.KMS,
  Sts: ec2.InterfaceVpcEndpointAwsService.STS,
  // The collector's traces (awsxray exporter); its metrics go through the Logs endpoint.
  XRay: ec2.InterfaceVpcEndpointAwsService.XRAY,
};

export interface NetworkProps {
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly maxAzs: number;
  readonly availabilityZones?: string[];
  readonly vpcCidr: string;
  readonly vpcEndpoints: boolean;
  /** The region's S3 managed prefix list (`pl-...`); without it, the deploy-time function looks the ID up. */
  readonly s3PrefixListId?: string;
  readonly egress: EgressMode;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The plane's network: a VPC of private isolated subnets (or the customer's own), VPC flow logs to an
 * encrypted log group, VPC endpoints whose policies admit principals of this account (plus, on the S3
 * gateway endpoint, reads of ECR's image-layer bucket and CloudFormation's response bucket), and the plane's
 * deploy-time function, in the VPC, which closes the default security group of a VPC it creates and looks up
 * the S3 prefix list when none is given.
 */
export class Network extends Construct {
  public readonly vpc: ec2.IVpc;
  /** The subnets every workload and data store is placed in. */
  public readonly subnets: ec2.SubnetSelection;
  /** The interface endpoints' security group (those of `INTERFACE_ENDPOINTS` and EC2); workloads are let in with `allowEndpointsFrom`. */
  public readonly endpointSecurityGroup: ec2.SecurityGroup;
  /**
   * ID of the region's S3 managed prefix list: the given `s3PrefixListId`, or a deploy-time lookup
   * (a token) when none was given.
   */
  public readonly s3PrefixListId: string;
  /** The deploy-time function serving the plane's custom resources (`DeployTimeFunction.of` finds it). */
  public readonly deployTime: DeployTimeFunction;
  /** Where workloads reach the AWS APIs on HTTPS: the endpoints' security group, or the VPC's CIDR without them. */
  private readonly awsApis: ec2.IPeer;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);

    let ownVpc: ec2.Vpc | undefined;
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
        // Closed by the deploy-time function below (in the VPC), not by CDK's Lambda outside it.
        restrictDefaultSecurityGroup: false,
      });
      this.vpc = vpc;
      ownVpc = vpc;
      this.subnets = { subnetType: nat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED };
      if (nat) {
        declareEgress(vpc, 'Outbound internet was opted into with egress: nat: the VPC gets an internet gateway and one NAT gateway per AZ for its private subnets.');
        for (const subnet of vpc.publicSubnets) {
          const route = subnet.node.findChild('DefaultRoute');
          for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
            acknowledgeFinding(route, `${pack}-VPCNoUnrestrictedRouteToIGW`,
              'Egress was opted into with egress: nat. This public subnet holds only the NAT gateway; every workload and data store sits in the private subnets.');
          }
        }
      }
    }

    addFlowLogs(this, this.vpc, { ...props, roleDescription: 'Lets VPC Flow Logs write the flow records of the plane to its own log group' });

    this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'VPC interface endpoints: HTTPS in from the workloads of the plane only',
      allowAllOutbound: false,
    });
    // A security group with no egress rule gets CDK's placeholder rule, which matches no traffic.
    const placement = { vpc: this.vpc, subnets: this.subnets, securityGroup: this.endpointSecurityGroup };

    const endpoints: Construct[] = [];
    if (props.vpcEndpoints) {
      this.awsApis = this.endpointSecurityGroup;
      endpoints.push(...accountOnlyInterfaceEndpoints(this, INTERFACE_ENDPOINTS, placement), s3GatewayEndpoint(this, this.vpc, this.subnets));
    } else {
      // The customer's own endpoints (private DNS) sit somewhere in the VPC behind their own security groups.
      let cidr: string;
      try {
        cidr = this.vpc.vpcCidrBlock;
      } catch {
        throw new PropError('vpcEndpoints', 'false with a vpc whose CIDR is unknown', 'import the vpc with its vpcCidrBlock (tasks reach the existing endpoints on HTTPS inside that range), or leave vpcEndpoints on');
      }
      this.awsApis = ec2.Peer.ipv4(cidr);
    }

    this.deployTime = new DeployTimeFunction(this, 'DeployTime', {
      description: 'BYOC customer plane: deploy-time custom resources (database roles, default security group, S3 prefix list)',
      roleDescription: 'The plane\'s deploy-time function: database roles, the default security group, the S3 prefix list lookup',
      vpc: this.vpc,
      subnets: this.subnets,
      key: props.key,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      s3PrefixListId: props.s3PrefixListId,
    });
    this.s3PrefixListId = this.deployTime.s3PrefixListId;
    if (ownVpc) this.deployTime.restrictDefaultSecurityGroup(ownVpc);
    // The EC2 endpoint, when the function calls EC2 at all. In the plane's own VPC nothing else calls EC2: the
    // endpoint admits the function's role, its calls, on its resources, and nothing else. In the customer's VPC
    // its private DNS name would capture every EC2 call made there, so it admits this account's principals, as
    // the other endpoints do, and the function's role still holds only its own calls.
    connectDeployTimeFunction(this, this.deployTime, {
      vpc: this.vpc,
      awsApis: this.awsApis,
      endpoints,
      ec2Endpoint: props.vpcEndpoints ? { admit: ownVpc ? 'role' : 'account', placement } : undefined,
    });
  }

  /**
   * Lets a workload's security group reach the AWS services the plane uses, and nothing else outside the
   * VPC: HTTPS to the interface endpoints (ECR, Logs, Secrets Manager, KMS, STS, X-Ray), and HTTPS to the S3
   * prefix list, where image layers come from through the gateway endpoint. Never 0.0.0.0/0.
   */
  public allowEndpointsFrom(peer: ec2.SecurityGroup): void {
    allowEndpointsFrom(peer, this.awsApis, this.s3PrefixListId);
  }
}
