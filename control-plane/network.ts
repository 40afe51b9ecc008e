import { CfnResource, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { declareEgress } from '../lib/byoc-checks';
import { acknowledgeFinding } from '../lib/compliance';
import { DeployTimeFunction } from '../lib/deploy-time/function';
import {
  accountOnlyInterfaceEndpoints, accountOnlyStatement, addFlowLogs, allowEndpointsFrom, connectDeployTimeFunction, s3GatewayEndpoint,
} from '../lib/network';

/**
 * The interface endpoints the hub's tasks need, and nothing more: image pulls (ECR API and registry; the
 * layers come from S3 through the gateway endpoint), the certificate and route secrets ECS injects at start
 * (Secrets Manager), and the log driver (CloudWatch Logs). EFS is mounted through its mount targets in the VPC.
 * The deploy-time function adds the EC2 endpoint (`lib/network.ts` `connectDeployTimeFunction`), which admits
 * only its role and its calls.
 */
export const HUB_INTERFACE_ENDPOINTS: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
  EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
  EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
  SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
};

export interface HubNetworkProps {
  readonly vpcCidr: string;
  readonly maxAzs: number;
  readonly availabilityZones?: string[];
  /** Add public subnets (and an internet gateway, no NAT) for an internet-facing load balancer. */
  readonly publicSubnets: boolean;
  /** The region's S3 managed prefix list (`pl-...`); without it, the deploy-time function looks the ID up. */
  readonly s3PrefixListId?: string;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The hub's network: a VPC whose workloads sit in private isolated subnets (no NAT, no route out), VPC
 * endpoints for the AWS APIs the tasks call, flow logs of every connection to an encrypted log group, and the
 * control plane's deploy-time function (`lib/deploy-time`, in the isolated subnets like every workload), which
 * empties the default security group and looks up the S3 prefix list when none is given. Public subnets exist
 * only for an internet-facing load balancer, and hold nothing else.
 */
export class HubNetwork extends Construct {
  public readonly vpc: ec2.Vpc;
  /** The isolated subnets the nodes, the file system and the internal load balancer sit in. */
  public readonly subnets: ec2.SubnetSelection;
  /** The interface endpoints' security group. */
  public readonly endpointSecurityGroup: ec2.SecurityGroup;
  /** The region's S3 prefix list: given, or looked up at deploy time by the deploy-time function (a token). */
  public readonly s3PrefixListId: string;
  /** The deploy-time function serving the control plane's custom resources. */
  public readonly deployTime: DeployTimeFunction;

  constructor(scope: Construct, id: string, props: HubNetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.vpcCidr),
      ...(props.availabilityZones ? { availabilityZones: props.availabilityZones } : { maxAzs: props.maxAzs }),
      natGateways: 0,
      subnetConfiguration: [
        { name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
        ...(props.publicSubnets ? [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false }] : []),
      ],
      // Closed by the deploy-time function below (in the VPC), not by CDK's Lambda outside it.
      restrictDefaultSecurityGroup: false,
    });
    this.subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    if (props.availabilityZones) {
      // Named AZs are literal in the template, which cfn-lint warns about (W3010, "avoid hardcoding availability
      // zones"). Here they are the vendor's deliberate choice for its account and region (so synthesis needs no
      // credentials for an AZ lookup). Acknowledged per subnet for CDK's validation, and said in each subnet's
      // template metadata for cfn-lint run on the template. Nothing else is exempted.
      for (const subnet of [...this.vpc.isolatedSubnets, ...this.vpc.publicSubnets]) {
        const cfnSubnet = subnet.node.defaultChild as CfnResource;
        acknowledgeFinding(cfnSubnet, 'CloudFormation-Validate::W3010',
          'The vendor named the AZs (hub.availabilityZones) for this account and region, so synthesis needs no AWS credentials for an AZ lookup; the names are deliberate, not a default.');
        cfnSubnet.addMetadata('cfn-lint', { config: { ignore_checks: ['W3010'] } });
      }
    }
    if (props.publicSubnets) {
      declareEgress(this.vpc, 'The hub was made internet-facing (hub.internetFacing): its public subnets and their internet gateway carry the load balancer only.');
    }
    for (const subnet of this.vpc.publicSubnets) {
      const route = subnet.node.findChild('DefaultRoute');
      for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
        acknowledgeFinding(route, `${pack}-VPCNoUnrestrictedRouteToIGW`,
          'The hub was made internet-facing with internetFacing: true. This public subnet holds only the internet-facing load balancer\'s node; the hub\'s tasks and storage sit in isolated subnets without a route out.');
      }
    }

    addFlowLogs(this, this.vpc, { ...props, roleDescription: 'Lets VPC Flow Logs write the flow records of the hub\'s VPC to its own log group' });

    this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'VPC interface endpoints: HTTPS in from the hub nodes only',
      allowAllOutbound: false,
    });
    const placement = { vpc: this.vpc, subnets: this.subnets, securityGroup: this.endpointSecurityGroup };
    const endpoints = [...accountOnlyInterfaceEndpoints(this, HUB_INTERFACE_ENDPOINTS, placement), s3GatewayEndpoint(this, this.vpc, this.subnets)];

    this.deployTime = new DeployTimeFunction(this, 'DeployTime', {
      description: 'BYOC control plane: deploy-time custom resources (default security group, S3 prefix list)',
      roleDescription: 'The control plane\'s deploy-time function: the default security group, the S3 prefix list lookup',
      vpc: this.vpc,
      subnets: this.subnets,
      key: props.key,
      logRetention: props.logRetention,
      removalPolicy: props.removalPolicy,
      s3PrefixListId: props.s3PrefixListId,
    });
    this.s3PrefixListId = this.deployTime.s3PrefixListId;
    this.deployTime.restrictDefaultSecurityGroup(this.vpc);
    // The hub's own VPC: nothing else calls EC2, so the EC2 endpoint admits the function's role and its calls only.
    connectDeployTimeFunction(this, this.deployTime, {
      vpc: this.vpc,
      awsApis: this.endpointSecurityGroup,
      endpoints,
      ec2Endpoint: { admit: 'role', placement },
    });
  }

  /**
   * One more interface endpoint, for an AWS API only a workload beside the hub calls (the ingest service's
   * DynamoDB), created once per ID: in the isolated subnets, behind the endpoints' security group (so
   * `allowEndpointsFrom` reaches it too), admitting this account's principals only. `privateDnsEnabled: false`
   * where the service's own name must not be captured or private DNS is not offered: callers then use the
   * endpoint's own DNS name (`vpcEndpointDnsEntries`).
   */
  public addInterfaceEndpoint(id: string, service: ec2.InterfaceVpcEndpointAwsService, options: { readonly privateDnsEnabled: boolean }): ec2.InterfaceVpcEndpoint {
    const existing = this.node.tryFindChild(id);
    if (existing) return existing as ec2.InterfaceVpcEndpoint;
    const endpoint = new ec2.InterfaceVpcEndpoint(this, id, {
      vpc: this.vpc,
      service,
      subnets: this.subnets,
      privateDnsEnabled: options.privateDnsEnabled,
      securityGroups: [this.endpointSecurityGroup],
      open: false,
    });
    endpoint.addToPolicy(accountOnlyStatement());
    return endpoint;
  }

  /**
   * Lets a workload reach the AWS APIs the hub uses and nothing else outside the VPC: HTTPS to the interface
   * endpoints, and HTTPS to the S3 prefix list (image layers, through the gateway endpoint). Never 0.0.0.0/0.
   */
  public allowEndpointsFrom(peer: ec2.SecurityGroup): void {
    allowEndpointsFrom(peer, this.endpointSecurityGroup, this.s3PrefixListId);
  }
}
