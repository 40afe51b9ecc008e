/**
 * What the plane's CloudFormation templates and its deploy-time function agree on: the custom resource
 * types the function serves and the properties each one carries. No AWS SDK and no CDK here: both the
 * construct (`function.ts`) and the bundled handler (`handler.ts`) import it.
 */

/** Creates and maintains each PostgreSQL agent's login role and schema (`lib/database-roles.ts`). */
export const DATABASE_ROLES = 'Custom::DatabaseRoles';
/** Removes every rule of a VPC's default security group. */
export const RESTRICT_DEFAULT_SECURITY_GROUP = 'Custom::RestrictDefaultSecurityGroup';
/** Looks up the region's S3 managed prefix list (`com.amazonaws.<region>.s3`). */
export const S3_PREFIX_LIST = 'Custom::S3PrefixList';

export const RESOURCE_TYPES = [DATABASE_ROLES, RESTRICT_DEFAULT_SECURITY_GROUP, S3_PREFIX_LIST] as const;
export type DeployTimeResourceType = typeof RESOURCE_TYPES[number];

/** Properties of `Custom::DatabaseRoles` (CloudFormation passes every scalar as a string). */
export interface DatabaseRolesProperties {
  /** The instance's endpoint address, the name its TLS certificate carries. */
  readonly Host: string;
  readonly Port: string;
  /** The agents' database. */
  readonly Database: string;
  /** ARN of the master user's secret RDS manages (`{"username": ..., "password": ...}`). */
  readonly SecretArn: string;
  /** Catalog names of the agents that declare PostgreSQL. */
  readonly Agents: string[];
}

/** Properties of `Custom::RestrictDefaultSecurityGroup`. */
export interface RestrictDefaultSecurityGroupProperties {
  /** The VPC's default security group (`AWS::EC2::VPC` attribute `DefaultSecurityGroup`). */
  readonly SecurityGroupId: string;
}

/** Properties of `Custom::S3PrefixList`. */
export interface S3PrefixListProperties {
  /** `com.amazonaws.<region>.s3`. */
  readonly PrefixListName: string;
  /**
   * The security group through which the function itself reaches S3 for its CloudFormation responses: after
   * the lookup, the function lets it send HTTPS to the list it found (see `DeployTimeFunction`).
   */
  readonly ResponseSecurityGroupId: string;
}

/** The attribute `Custom::S3PrefixList` returns (`Fn::GetAtt [Lookup, PrefixListId]`). */
export const PREFIX_LIST_ID = 'PrefixListId';

/** A CloudFormation custom resource request, as CloudFormation sends it. */
export interface CustomResourceEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResponseURL: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly ResourceType: string;
  readonly LogicalResourceId: string;
  readonly PhysicalResourceId?: string;
  readonly ResourceProperties: Record<string, unknown> & { ServiceToken?: string };
  readonly OldResourceProperties?: Record<string, unknown>;
}

/** The body PUT to the request's ResponseURL. */
export interface CustomResourceResponse {
  readonly Status: 'SUCCESS' | 'FAILED';
  readonly Reason?: string;
  readonly PhysicalResourceId: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly NoEcho?: boolean;
  readonly Data?: Record<string, string>;
}
