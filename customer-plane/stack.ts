import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { CustomerPlane } from './customer-plane';
import { CustomerPlaneProps } from './props';

/** CDK's context key for writing a stack's template without indentation; read by each stack when it is created. */
const SUPPRESS_TEMPLATE_INDENTATION = '@aws-cdk/core:suppressTemplateIndentation';

/** An existing VPC by its attributes (bring-your-own-VPC without a lookup, so synth needs no AWS credentials). */
export interface ExistingVpcAttributes {
  readonly vpcId: string;
  readonly vpcCidrBlock: string;
  readonly availabilityZones: string[];
  /** Private (isolated or NAT-routed) subnets, one per AZ, in the order of `availabilityZones`. */
  readonly privateSubnetIds: string[];
  /** Route tables of `privateSubnetIds`, same order (for the S3 gateway endpoint). */
  readonly privateSubnetRouteTableIds: string[];
}

export interface CustomerPlaneStackProps extends StackProps, Omit<CustomerPlaneProps, 'vpc' | 'vpcSubnets'> {
  /**
   * Deploy into this existing VPC's private subnets instead of a new VPC.
   * @default - a new VPC
   */
  readonly existingVpc?: ExistingVpcAttributes;
}

/** The one stack a customer deploys: the customer plane, with agent groups as nested stacks. */
export class CustomerPlaneStack extends Stack {
  public readonly plane: CustomerPlane;
  private readonly namedAzs?: string[];

  constructor(scope: Construct, id: string, props: CustomerPlaneStackProps) {
    super(scope, id, {
      ...props,
      description: props.description ?? `BYOC customer plane of ${props.customerId}: agents, data stores and the narrow link to the vendor`,
    });
    // The nested stacks of the agent groups are written without indentation (the root stack's template, read in
    // reviews, keeps it): a full group of agents with business hours and alarms stays far below CloudFormation's 1 MB
    // per template (and CDK's warning at 80 % of it), which indentation alone would use a third of.
    this.node.setContext(SUPPRESS_TEMPLATE_INDENTATION, true);
    this.namedAzs = props.availabilityZones ?? props.existingVpc?.availabilityZones;
    const { existingVpc, ...planeProps } = props;
    const vpc = existingVpc && ec2.Vpc.fromVpcAttributes(this, 'ExistingVpc', {
      vpcId: existingVpc.vpcId,
      vpcCidrBlock: existingVpc.vpcCidrBlock,
      availabilityZones: existingVpc.availabilityZones,
      isolatedSubnetIds: existingVpc.privateSubnetIds,
      isolatedSubnetRouteTableIds: existingVpc.privateSubnetRouteTableIds,
    });
    this.plane = new CustomerPlane(this, 'Plane', {
      ...planeProps,
      vpc,
      vpcSubnets: vpc ? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } : undefined,
    });

    const { plane } = this;
    const out = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    out('VpcId', plane.network.vpc.vpcId, 'VPC the plane runs in');
    out('ClusterName', plane.cluster.clusterName, 'ECS cluster of the agents, the NATS leaf and the collector');
    out('DataKeyArn', plane.key.keyArn, 'Customer-managed KMS key of every store, secret and log group');
    out('DatabaseEndpoint', plane.stores.database.dbInstanceEndpointAddress, 'PostgreSQL host (port in DatabasePort); agents connect with IAM authentication');
    out('DatabasePort', String(plane.stores.databasePort), 'PostgreSQL port');
    out('DatabaseAdminSecretArn', (plane.stores.database.node.defaultChild as rds.CfnDBInstance).attrMasterUserSecretSecretArn,
      'Secret holding the database administrator password, generated and rotated by RDS');
    out('RedisEndpoint', plane.stores.redis.attrPrimaryEndPointAddress, 'Redis primary endpoint (TLS; each Redis agent has its own ElastiCache user)');
    out('AgentSecretsPrefix', `byoc/${props.customerId}/`, 'Secrets Manager names of the secrets to fill with put-secret-value');
  }

  /** The AZs named in the settings, so an explicit environment needs no AZ lookup (and no credentials). */
  public get availabilityZones(): string[] {
    return this.namedAzs ?? super.availabilityZones;
  }
}
