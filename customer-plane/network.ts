import { Aws, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeFinding } from '../lib/compliance';
import { PropError } from '../lib/errors';
import { ManagedPolicyRole } from '../lib/iam';
import { DeployTimeFunction } from './deploy-time/function';
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

/**
 * The EC2 API endpoint, created when the deploy-time function calls EC2 (the S3 prefix-list lookup, the default
 * security group of the plane's own VPC). In the plane's own VPC its policy admits only that function's role and
 * only its calls.
 */
export const EC2_ENDPOINT = ec2.InterfaceVpcEndpointAwsService.EC2;

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
  /** The interface endpoints' security group (the six of `INTERFACE_ENDPOINTS` and EC2); workloads are let in with `allowEndpointsFrom`. */
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

    const endpoints: Construct[] = [];
    if (props.vpcEndpoints) {
      this.awsApis = this.endpointSecurityGroup;
      for (const [id, service] of Object.entries(INTERFACE_ENDPOINTS)) {
        const e = this.interfaceEndpoint(id, service);
        e.addToPolicy(accountOnlyStatement());
        endpoints.push(e);
      }
      const s3 = new ec2.GatewayVpcEndpoint(this, 'S3', {
        vpc: this.vpc,
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [this.subnets],
      });
      s3.addToPolicy(accountOnlyStatement());
      s3.addToPolicy(ecrLayerBucketStatement());
      s3.addToPolicy(cloudFormationResponseStatement(Stack.of(this).region));
      endpoints.push(s3);
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
      vpc: this.vpc,
      subnets: this.subnets,
      key: props.key,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      s3PrefixListId: props.s3PrefixListId,
    });
    const apis = this.allowAwsApisFrom(this.deployTime.securityGroup);
    this.deployTime.requireBeforeRequests(...endpoints, ...apis);
    this.s3PrefixListId = this.deployTime.s3PrefixListId;
    if (ownVpc) this.deployTime.restrictDefaultSecurityGroup(ownVpc);
    // The EC2 endpoint, when the function calls EC2 at all. In the plane's own VPC nothing else calls EC2: the
    // endpoint admits the function's role, its calls, on its resources, and nothing else. In the customer's VPC
    // its private DNS name would capture every EC2 call made there, so it admits this account's principals, as
    // the other endpoints do, and the function's role still holds only its own calls.
    if (props.vpcEndpoints && this.deployTime.ec2Permissions.length > 0) {
      const ec2Endpoint = this.interfaceEndpoint('Ec2', EC2_ENDPOINT);
      if (ownVpc) {
        for (const permission of this.deployTime.ec2Permissions) {
          ec2Endpoint.addToPolicy(new iam.PolicyStatement({
            principals: [new iam.ArnPrincipal(this.deployTime.role.roleArn)],
            actions: permission.actions,
            resources: permission.resources,
          }));
        }
      } else {
        ec2Endpoint.addToPolicy(accountOnlyStatement());
      }
      this.deployTime.requireBeforeRequests(ec2Endpoint);
    }
  }

  private interfaceEndpoint(id: string, service: ec2.InterfaceVpcEndpointAwsService): ec2.InterfaceVpcEndpoint {
    return new ec2.InterfaceVpcEndpoint(this, id, {
      vpc: this.vpc,
      service,
      subnets: this.subnets,
      privateDnsEnabled: true,
      securityGroups: [this.endpointSecurityGroup],
      open: false,
    });
  }

  /**
   * Lets a workload's security group reach the AWS services the plane uses, and nothing else outside the
   * VPC: HTTPS to the interface endpoints (ECR, Logs, Secrets Manager, KMS, STS), and HTTPS to the S3
   * prefix list, where image layers come from through the gateway endpoint. Never 0.0.0.0/0.
   */
  public allowEndpointsFrom(peer: ec2.SecurityGroup): void {
    if (this.awsApis === this.endpointSecurityGroup) {
      peer.connections.allowTo(this.endpointSecurityGroup, ec2.Port.tcp(HTTPS_PORT), 'AWS APIs through the VPC interface endpoints');
    } else {
      peer.addEgressRule(this.awsApis, ec2.Port.tcp(HTTPS_PORT), 'AWS APIs through the VPC\'s existing interface endpoints');
    }
    peer.addEgressRule(ec2.Peer.prefixList(this.s3PrefixListId), ec2.Port.tcp(HTTPS_PORT), 'Image layers from S3 through the gateway endpoint');
  }

  /**
   * HTTPS from `group` to the AWS API endpoints only (no S3): separate rule resources, returned so that what
   * must wait for them can depend on them.
   */
  private allowAwsApisFrom(group: ec2.SecurityGroup): Construct[] {
    const rule = (id: string, props: Omit<ec2.CfnSecurityGroupEgressProps, 'groupId' | 'ipProtocol' | 'fromPort' | 'toPort'>) =>
      new ec2.CfnSecurityGroupEgress(group, id, { groupId: group.securityGroupId, ipProtocol: 'tcp', fromPort: HTTPS_PORT, toPort: HTTPS_PORT, ...props });
    if (this.awsApis !== this.endpointSecurityGroup) {
      return [rule('AwsApisEgress', { cidrIp: this.vpc.vpcCidrBlock, description: 'AWS APIs through the VPC\'s existing interface endpoints' })];
    }
    return [
      rule('AwsApisEgress', { destinationSecurityGroupId: this.endpointSecurityGroup.securityGroupId, description: 'AWS APIs (EC2, Secrets Manager) through the VPC interface endpoints' }),
      new ec2.CfnSecurityGroupIngress(group, 'AwsApisIngress', {
        groupId: this.endpointSecurityGroup.securityGroupId, ipProtocol: 'tcp', fromPort: HTTPS_PORT, toPort: HTTPS_PORT,
        sourceSecurityGroupId: group.securityGroupId, description: 'AWS APIs for the deploy-time function',
      }),
    ];
  }
}

/**
 * The endpoint policy: any action, but only by principals of this account. A leaked credential of another
 * account cannot use the plane's endpoints. Resources of other accounts stay reachable by this account's
 * principals (the vendor's ECR repositories, pulled by each task's execution role).
 *
 * What reaches each endpoint, and as whom (all from tasks' ENIs, Fargate platform 1.4):
 * - ECR API and Docker registry: the execution role (GetAuthorizationToken, BatchGetImage,
 *   GetDownloadUrlForLayer); the registry calls carry the token that role obtained.
 * - CloudWatch Logs: the awslogs driver, with the execution role.
 * - Secrets Manager: secrets injected at start with the execution role; secrets read at run time with the task role.
 * - KMS, STS: task roles only. Decryption for Secrets Manager and Logs happens inside those services, not here.
 * - EC2 (only in a customer's VPC; see the constructor): the deploy-time function's role.
 * None of these is an AWS-owned principal, so this statement admits them all. The exceptions are on S3:
 * see `ecrLayerBucketStatement` and `cloudFormationResponseStatement`.
 */
function accountOnlyStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    principals: [new iam.AnyPrincipal()],
    actions: ['*'],
    resources: ['*'],
    conditions: { StringEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID } },
  });
}

/**
 * ECR serves image layers from an AWS-owned bucket, `prod-REGION-starport-layer-bucket`, through presigned
 * URLs: the request to S3 is signed by ECR's credentials, not the task's, so `aws:PrincipalAccount` is an
 * AWS account and the account-only statement denies every layer. AWS's ECR documentation ("Minimum Amazon
 * S3 bucket permissions for Amazon ECR") and its data-perimeter examples admit exactly this: object reads
 * of that one bucket, by any principal. No listing, no writes, no other bucket.
 */
function ecrLayerBucketStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'EcrImageLayers',
    principals: [new iam.AnyPrincipal()],
    actions: ['s3:GetObject'],
    resources: [`arn:${Aws.PARTITION}:s3:::prod-${Aws.REGION}-starport-layer-bucket/*`],
  });
}

/**
 * CloudFormation's custom-resource responses: the deploy-time function PUTs each one to a URL CloudFormation
 * presigned for `https://cloudformation-custom-resource-response-<region without dashes>.s3.<region>.amazonaws.com/
 * <stack ARN>|<logical ID>|<request ID>?...`. Signed by CloudFormation's own credentials, so, as for ECR's layers,
 * the account-only statement denies it. AWS's guidance for VPC endpoint policies ("Setting up VPC endpoints for
 * AWS CloudFormation", and the data-perimeter examples) names this bucket; allowed here are object writes into it
 * under keys that start with a stack ARN of this account and region, and nothing else: a response URL presigned
 * for another account's stack cannot carry data out through the plane's endpoint.
 */
function cloudFormationResponseStatement(region: string): iam.PolicyStatement {
  const regionWithoutDashes = Token.isUnresolved(region) ? Fn.join('', Fn.split('-', Aws.REGION)) : region.replace(/-/g, '');
  return new iam.PolicyStatement({
    sid: 'CloudFormationResponses',
    principals: [new iam.AnyPrincipal()],
    actions: ['s3:PutObject'],
    resources: [`arn:${Aws.PARTITION}:s3:::cloudformation-custom-resource-response-${regionWithoutDashes}/arn:${Aws.PARTITION}:cloudformation:${Aws.REGION}:${Aws.ACCOUNT_ID}:stack/*`],
  });
}
