import { Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { CustomerPlane } from './customer-plane';
import { CustomerPlaneProps } from './props';

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

  constructor(scope: Construct, id: string, props: CustomerPlaneStackProps) {
    super(scope, id, {
      ...props,
      description: props.description ?? `BYOC customer plane of ${props.customerId}: agents, data stores and the narrow link to the vendor`,
    });
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
  }
}
