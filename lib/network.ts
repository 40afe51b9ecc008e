import { Aws, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DeployTimeFunction } from './deploy-time/function';
import { ManagedPolicyRole } from './iam';

/**
 * What both planes' networks (`customer-plane/network.ts`, `control-plane/network.ts`) build the same way: flow
 * logs, VPC endpoints and their policies, the rules that let workloads reach them, and the plane's deploy-time
 * function (`deploy-time/function.ts`) wired to them. Every construct is created in the scope the plane passes
 * (its network), so each plane keeps its own construct paths.
 */

/** HTTPS, the only port the interface endpoints listen on. */
export const HTTPS_PORT = 443;

/**
 * The EC2 API endpoint, created when the deploy-time function calls EC2 (the S3 prefix-list lookup, the default
 * security group of the plane's own VPC). In the plane's own VPC its policy admits only that function's role and
 * only its calls.
 */
export const EC2_ENDPOINT = ec2.InterfaceVpcEndpointAwsService.EC2;

/** Where a plane's endpoints sit. */
export interface EndpointPlacement {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The interface endpoints' security group: HTTPS in from the plane's workloads only. */
  readonly securityGroup: ec2.SecurityGroup;
}

export interface FlowLogsProps {
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** The flow-log role's description. */
  readonly roleDescription: string;
}

/** Flow logs of every accepted and rejected connection of `vpc`, kept encrypted in the plane's own log group (`FlowLogs`). */
export function addFlowLogs(scope: Construct, vpc: ec2.IVpc, props: FlowLogsProps): void {
  const flowLogGroup = new logs.LogGroup(scope, 'FlowLogs', {
    encryptionKey: props.key,
    retention: props.logRetention,
    removalPolicy: props.removalPolicy,
  });
  const flowLogRole = new ManagedPolicyRole(scope, 'FlowLogRole', {
    assumedBy: new iam.ServicePrincipal('vpc-flow-logs.amazonaws.com', {
      conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    }),
    description: props.roleDescription,
  });
  new ec2.FlowLog(scope, 'FlowLog', {
    resourceType: ec2.FlowLogResourceType.fromVpc(vpc),
    destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup, flowLogRole),
    trafficType: ec2.FlowLogTrafficType.ALL,
  });
}

/** An interface endpoint with private DNS behind the plane's endpoint security group (no policy yet). */
export function interfaceEndpoint(scope: Construct, id: string, service: ec2.InterfaceVpcEndpointAwsService, placement: EndpointPlacement): ec2.InterfaceVpcEndpoint {
  return new ec2.InterfaceVpcEndpoint(scope, id, {
    vpc: placement.vpc,
    service,
    subnets: placement.subnets,
    privateDnsEnabled: true,
    securityGroups: [placement.securityGroup],
    open: false,
  });
}

/** Interface endpoints (construct ID to service), each admitting this account's principals only. */
export function accountOnlyInterfaceEndpoints(scope: Construct, services: Record<string, ec2.InterfaceVpcEndpointAwsService>, placement: EndpointPlacement): ec2.InterfaceVpcEndpoint[] {
  return Object.entries(services).map(([id, service]) => {
    const endpoint = interfaceEndpoint(scope, id, service, placement);
    endpoint.addToPolicy(accountOnlyStatement());
    return endpoint;
  });
}

/**
 * The S3 gateway endpoint (`S3`): this account's principals, ECR's image layers and the deploy-time function's
 * CloudFormation responses.
 */
export function s3GatewayEndpoint(scope: Construct, vpc: ec2.IVpc, subnets: ec2.SubnetSelection): ec2.GatewayVpcEndpoint {
  const s3 = new ec2.GatewayVpcEndpoint(scope, 'S3', {
    vpc,
    service: ec2.GatewayVpcEndpointAwsService.S3,
    subnets: [subnets],
  });
  s3.addToPolicy(accountOnlyStatement());
  s3.addToPolicy(ecrLayerBucketStatement());
  s3.addToPolicy(cloudFormationResponseStatement(Stack.of(scope).region));
  return s3;
}

/**
 * Lets a workload's security group reach the AWS services the plane uses, and nothing else outside the VPC:
 * HTTPS to the AWS API endpoints (`awsApis`: the endpoint security group, or the VPC's CIDR where the customer's
 * own endpoints are), and HTTPS to the S3 prefix list, where image layers come from through the gateway endpoint.
 * Never 0.0.0.0/0.
 */
export function allowEndpointsFrom(peer: ec2.SecurityGroup, awsApis: ec2.IPeer, s3PrefixListId: string): void {
  if (awsApis instanceof ec2.SecurityGroup) {
    peer.connections.allowTo(awsApis, ec2.Port.tcp(HTTPS_PORT), 'AWS APIs through the VPC interface endpoints');
  } else {
    peer.addEgressRule(awsApis, ec2.Port.tcp(HTTPS_PORT), 'AWS APIs through the VPC\'s existing interface endpoints');
  }
  peer.addEgressRule(ec2.Peer.prefixList(s3PrefixListId), ec2.Port.tcp(HTTPS_PORT), 'Image layers from S3 through the gateway endpoint');
}

export interface DeployTimeEndpointsProps {
  readonly vpc: ec2.IVpc;
  /** The interface endpoints' security group when the plane created them, or the VPC's CIDR (the customer's own endpoints). */
  readonly awsApis: ec2.IPeer;
  /** The endpoints (and anything else) the function's requests and responses travel through. */
  readonly endpoints: Construct[];
  /**
   * The EC2 endpoint, created in `scope` as `Ec2` when the function calls EC2 at all: `'role'` admits only the
   * function's role and its calls (the plane's own VPC, where nothing else calls EC2), `'account'` this account's
   * principals (a customer's VPC, whose other EC2 callers its private DNS name would capture). Absent: none
   * (the VPC's existing endpoints serve).
   */
  readonly ec2Endpoint?: { readonly admit: 'role' | 'account'; readonly placement: EndpointPlacement };
}

/**
 * Wires a plane's deploy-time function to the AWS APIs it calls: HTTPS from its security group to the endpoints
 * (separate rule resources), its EC2 endpoint, and every custom resource of the function waiting for all of it.
 * Call after the function's custom resources are declared (its EC2 calls decide the EC2 endpoint's policy).
 */
export function connectDeployTimeFunction(scope: Construct, fn: DeployTimeFunction, props: DeployTimeEndpointsProps): void {
  fn.requireBeforeRequests(...props.endpoints, ...allowAwsApisFrom(fn.securityGroup, props.awsApis, props.vpc));
  if (props.ec2Endpoint && fn.ec2Permissions.length > 0) {
    const ec2Endpoint = interfaceEndpoint(scope, 'Ec2', EC2_ENDPOINT, props.ec2Endpoint.placement);
    if (props.ec2Endpoint.admit === 'role') {
      for (const permission of fn.ec2Permissions) {
        ec2Endpoint.addToPolicy(new iam.PolicyStatement({
          principals: [new iam.ArnPrincipal(fn.role.roleArn)],
          actions: permission.actions,
          resources: permission.resources,
        }));
      }
    } else {
      ec2Endpoint.addToPolicy(accountOnlyStatement());
    }
    fn.requireBeforeRequests(ec2Endpoint);
  }
}

/**
 * HTTPS from `group` to the AWS API endpoints only (no S3): separate rule resources, returned so that what
 * must wait for them can depend on them.
 */
function allowAwsApisFrom(group: ec2.SecurityGroup, awsApis: ec2.IPeer, vpc: ec2.IVpc): Construct[] {
  const rule = (id: string, props: Omit<ec2.CfnSecurityGroupEgressProps, 'groupId' | 'ipProtocol' | 'fromPort' | 'toPort'>) =>
    new ec2.CfnSecurityGroupEgress(group, id, { groupId: group.securityGroupId, ipProtocol: 'tcp', fromPort: HTTPS_PORT, toPort: HTTPS_PORT, ...props });
  if (!(awsApis instanceof ec2.SecurityGroup)) {
    return [rule('AwsApisEgress', { cidrIp: vpc.vpcCidrBlock, description: 'AWS APIs through the VPC\'s existing interface endpoints' })];
  }
  return [
    rule('AwsApisEgress', { destinationSecurityGroupId: awsApis.securityGroupId, description: 'AWS APIs (EC2, Secrets Manager) through the VPC interface endpoints' }),
    new ec2.CfnSecurityGroupIngress(group, 'AwsApisIngress', {
      groupId: awsApis.securityGroupId, ipProtocol: 'tcp', fromPort: HTTPS_PORT, toPort: HTTPS_PORT,
      sourceSecurityGroupId: group.securityGroupId, description: 'AWS APIs for the deploy-time function',
    }),
  ];
}

/**
 * The endpoint policy: any action, but only by principals of this account. A leaked credential of another
 * account cannot use the plane's endpoints. Resources of other accounts stay reachable by this account's
 * principals (the vendor's ECR repositories, pulled by each task's execution role).
 *
 * What reaches each endpoint, and as whom (all from tasks' ENIs, Fargate platform 1.4, and the deploy-time function):
 * - ECR API and Docker registry: the execution role (GetAuthorizationToken, BatchGetImage,
 *   GetDownloadUrlForLayer); the registry calls carry the token that role obtained.
 * - CloudWatch Logs: the awslogs driver, with the execution role.
 * - Secrets Manager: secrets injected at start with the execution role; secrets read at run time with the task
 *   role; the master user's secret read by the customer plane's deploy-time function.
 * - KMS, STS (customer plane): task roles only. Decryption for Secrets Manager and Logs happens inside those services.
 * - EC2 (only in a customer's VPC; see `connectDeployTimeFunction`): the deploy-time function's role.
 * None of these is an AWS-owned principal, so this statement admits them all. The exceptions are on S3:
 * see `ecrLayerBucketStatement` and `cloudFormationResponseStatement`.
 */
export function accountOnlyStatement(): iam.PolicyStatement {
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
export function ecrLayerBucketStatement(): iam.PolicyStatement {
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
export function cloudFormationResponseStatement(region: string): iam.PolicyStatement {
  const regionWithoutDashes = Token.isUnresolved(region) ? Fn.join('', Fn.split('-', Aws.REGION)) : region.replace(/-/g, '');
  return new iam.PolicyStatement({
    sid: 'CloudFormationResponses',
    principals: [new iam.AnyPrincipal()],
    actions: ['s3:PutObject'],
    resources: [`arn:${Aws.PARTITION}:s3:::cloudformation-custom-resource-response-${regionWithoutDashes}/arn:${Aws.PARTITION}:cloudformation:${Aws.REGION}:${Aws.ACCOUNT_ID}:stack/*`],
  });
}
