import { Aws, CfnResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledgeControlTowerFinding, acknowledgeFinding, cfnOf } from '../lib/compliance';
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
  /** The region's S3 managed prefix list (`pl-...`); without it, the ID is looked up at deploy time. */
  readonly s3PrefixListId?: string;
  readonly egress: EgressMode;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/** Construct ID CDK gives the stack-wide provider of `restrictDefaultSecurityGroup` (aws-cdk-lib 2.276). */
const RESTRICT_DEFAULT_SG_PROVIDER = 'Custom::VpcRestrictDefaultSGCustomResourceProvider';

/**
 * The plane's network: a VPC of private isolated subnets (or the customer's own), VPC flow logs to an
 * encrypted log group, and VPC endpoints whose policies admit principals of this account, plus, on the
 * S3 gateway endpoint, reads of ECR's image-layer bucket.
 */
export class Network extends Construct {
  public readonly vpc: ec2.IVpc;
  /** The subnets every workload and data store is placed in. */
  public readonly subnets: ec2.SubnetSelection;
  /** The interface endpoints' security group; workloads are let in with `allowEndpointsFrom`. */
  public readonly endpointSecurityGroup: ec2.SecurityGroup;
  /**
   * ID of the region's S3 managed prefix list: the given `s3PrefixListId`, or a deploy-time lookup
   * (a token) when none was given.
   */
  public readonly s3PrefixListId: string;
  /** Where workloads reach the AWS APIs on HTTPS: the endpoints' security group, or the VPC's CIDR without them. */
  private readonly awsApis: ec2.IPeer;

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
      this.ownRestrictDefaultSgLogs(props);
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
      this.awsApis = this.endpointSecurityGroup;
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
      s3.addToPolicy(ecrLayerBucketStatement());
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

    this.s3PrefixListId = props.s3PrefixListId ?? this.lookUpS3PrefixList(props);
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
   * The S3 prefix list ID without AWS credentials at synth: a custom resource asks EC2 for the
   * AWS-managed list `com.amazonaws.REGION.s3` when the stack is deployed. Its Lambda runs outside the
   * VPC (the VPC has no route to the EC2 API), may call only ec2:DescribeManagedPrefixLists, and logs to
   * a log group the stack owns, so `cdk destroy` leaves nothing behind.
   */
  private lookUpS3PrefixList(props: NetworkProps): string {
    const logGroup = new logs.LogGroup(this, 'S3PrefixListLookupLogs', {
      encryptionKey: props.key,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const role = new ManagedPolicyRole(this, 'S3PrefixListLookupRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'Deploy-time lookup of the region\'s S3 managed prefix list ID (read-only, one action)',
    });
    role.grantActions(['ec2:DescribeManagedPrefixLists'], ['*']);
    logGroup.grantWrite(role);
    const path = 'PrefixLists.0.PrefixListId';
    const lookup = new cr.AwsCustomResource(this, 'S3PrefixList', {
      resourceType: 'Custom::S3PrefixList',
      onUpdate: {
        service: 'EC2',
        action: 'DescribeManagedPrefixLists',
        parameters: { Filters: [{ Name: 'prefix-list-name', Values: [`com.amazonaws.${Aws.REGION}.s3`] }] },
        physicalResourceId: cr.PhysicalResourceId.fromResponse(path),
        outputPaths: [path],
      },
      role,
      logGroup,
      installLatestAwsSdk: false,
      timeout: Duration.minutes(2),
    });
    // The role's permissions live in its managed policy, which the lookup must not run before.
    lookup.node.addDependency(role);

    acknowledgeFinding(role.permissions!, 'AwsSolutions-IAM5[Resource::*]',
      'ec2:DescribeManagedPrefixLists supports no resource-level permissions; the role is read-only, holds this one action, and only the prefix-list lookup Lambda can assume it.');
    const fn = cfnOf(Stack.of(this).node.findChild(`AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`));
    acknowledgeControlTowerFinding(fn, 'CT.LAMBDA.PR.3',
      'Deploy-time lookup of the S3 prefix list through the EC2 API, which the isolated VPC cannot reach; in an account that enforces CT.LAMBDA.PR.3, set s3PrefixListId and this function is not created.');
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
      acknowledgeFinding(fn, `${pack}-LambdaInsideVPC`,
        'The lookup calls the EC2 API, which the plane\'s VPC has no endpoint or route for; it runs only during deployment and reads one public AWS-managed prefix list ID.');
    }
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) {
      acknowledgeFinding(fn, `${pack}-LambdaConcurrency`,
        'Invoked only by CloudFormation, once per create, update or delete of the lookup; a concurrency reservation would only take capacity from the account.');
      acknowledgeFinding(fn, `${pack}-LambdaDLQ`,
        'Invoked synchronously by CloudFormation, which reports a failed invocation as a failed deployment; an asynchronous dead-letter queue would never receive anything.');
    }
    return lookup.getResponseField(path);
  }

  /**
   * CDK's `restrictDefaultSecurityGroup` runs a stack-wide Lambda whose log group Lambda would create on
   * first run: unencrypted, kept forever and left behind by `cdk destroy`. Its provider offers no log
   * group option, so the handler is pointed at a log group the stack owns (Lambda's LoggingConfig).
   */
  private ownRestrictDefaultSgLogs(props: NetworkProps): void {
    const handler = Stack.of(this).node.tryFindChild(RESTRICT_DEFAULT_SG_PROVIDER)?.node.tryFindChild('Handler');
    if (!(handler instanceof CfnResource) || handler.cfnResourceType !== 'AWS::Lambda::Function') {
      throw new Error(`${RESTRICT_DEFAULT_SG_PROVIDER}/Handler not found: aws-cdk-lib changed how restrictDefaultSecurityGroup is built; give its Lambda a log group the stack owns again`);
    }
    const logGroup = new logs.LogGroup(this, 'RestrictDefaultSecurityGroupLogs', {
      encryptionKey: props.key,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    handler.addPropertyOverride('LoggingConfig', { LogGroup: logGroup.logGroupName, LogFormat: 'Text' });
    acknowledgeControlTowerFinding(handler, 'CT.LAMBDA.PR.3',
      'CDK\'s one-shot handler that removes every rule of the VPC\'s default security group calls the EC2 API, which the isolated VPC cannot reach; an account enforcing CT.LAMBDA.PR.3 refuses it (a known gap, see the README).');
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
 * None of these is an AWS-owned principal, so this statement admits them all. The one exception is S3:
 * see `ecrLayerBucketStatement`.
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
