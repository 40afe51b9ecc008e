import * as fs from 'fs';
import * as path from 'path';
import { Aws, CustomResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct, IConstruct, IDependable } from 'constructs';
import { projectRoot } from '../app';
import { acknowledgeFinding } from '../compliance';
import { ManagedPolicyRole } from '../iam';
import { DATABASE_ROLES, PREFIX_LIST_ID, RESTRICT_DEFAULT_SECURITY_GROUP, S3_PREFIX_LIST } from './protocol';

/** The bundle `scripts/postbuild.js` writes (`npm run build`): one file, `index.js`, handler `index.handler`. */
export const DEPLOY_TIME_BUNDLE_DIR = path.join('dist', 'deploy-time');
/** Longest a request may run; the handler answers CloudFormation before this, whatever happens. */
export const DEPLOY_TIME_TIMEOUT = Duration.minutes(2);
/**
 * How long CloudFormation waits for a response before it fails the resource itself (instead of its default hour):
 * covers the function's timeout and Lambda's two asynchronous retries of an invocation that could not deliver
 * its response.
 */
export const CUSTOM_RESOURCE_SERVICE_TIMEOUT = Duration.minutes(10);

export interface DeployTimeFunctionProps {
  /** The function's description: which plane, which custom resources. */
  readonly description: string;
  /** Its role's description. */
  readonly roleDescription: string;
  readonly vpc: ec2.IVpc;
  /** The plane's private subnets: the function runs there, like every workload. */
  readonly subnets: ec2.SubnetSelection;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** The region's S3 managed prefix list, when known at synth; without it the function looks it up (`Custom::S3PrefixList`). */
  readonly s3PrefixListId?: string;
}

export interface DatabaseRolesProps {
  readonly database: rds.DatabaseInstance;
  /** The database's security group: it admits the function on `port`. */
  readonly securityGroup: ec2.ISecurityGroup;
  readonly port: number;
  readonly databaseName: string;
  /** Catalog names of the agents that declare PostgreSQL. */
  readonly agents: readonly string[];
  /** The key of the master user's secret. */
  readonly key: kms.IKey;
}

/** An EC2 API permission of the function: granted to its role and admitted by the plane's EC2 endpoint, the same list. */
interface Ec2Permission {
  readonly actions: string[];
  readonly resources: string[];
}

/**
 * A plane's one deploy-time Lambda, inside the plane's VPC (Control Tower's CT.LAMBDA.PR.3 holds: no function of
 * either plane runs outside a VPC), created by each plane's network (`customer-plane/network.ts`,
 * `control-plane/network.ts`) and serving the custom resources of `protocol.ts` directly: each resource's
 * ServiceToken is this function, which PUTs its response to CloudFormation's presigned URL itself. There is no
 * provider-framework Lambda and no other function.
 *
 * What it may reach, all through its own security groups: the AWS APIs it calls (EC2, Secrets Manager) on 443 at
 * the interface endpoints, the database port (added by `manageDatabaseRoles`), and S3 on 443 for the responses, through
 * the gateway endpoint (a rule in the template when `s3PrefixListId` is given; see `lookUpS3PrefixList` otherwise). Its
 * role holds exactly the actions of the custom resources the plane creates, each added with the resource.
 */
export class DeployTimeFunction extends Construct {
  /** The function of `scope`'s stack, created by the plane's `Network`. */
  public static of(scope: IConstruct): DeployTimeFunction {
    const stack = Stack.of(scope);
    const found = stack.node.findAll().find((c): c is DeployTimeFunction => c instanceof DeployTimeFunction && Stack.of(c) === stack);
    if (!found) throw new Error(`${scope.node.path}: no DeployTimeFunction in stack ${stack.node.path}; the plane's Network creates it`);
    return found;
  }

  public readonly function: lambda.Function;
  public readonly role: ManagedPolicyRole;
  /** Its security group: egress to the AWS API endpoints, the database and (when the ID is known at synth) S3. */
  public readonly securityGroup: ec2.SecurityGroup;
  /** The EC2 API calls it makes: what the plane's EC2 endpoint policy admits, for this role only. */
  public readonly ec2Permissions: Ec2Permission[] = [];
  /**
   * Only when the prefix list is looked up: the group through which the function reaches S3, given its one rule
   * by the function itself (see `lookUpS3PrefixList`).
   */
  public readonly responseSecurityGroup?: ec2.SecurityGroup;
  /** The region's S3 managed prefix list ID: the one given, or the lookup's result (a token). */
  public readonly s3PrefixListId: string;
  private readonly resources: CustomResource[] = [];
  private readonly prerequisites: IDependable[] = [];

  constructor(scope: Construct, id: string, props: DeployTimeFunctionProps) {
    super(scope, id);
    const bundle = path.join(projectRoot(), DEPLOY_TIME_BUNDLE_DIR);
    if (!fs.existsSync(path.join(bundle, 'index.js'))) {
      throw new Error(`${bundle}/index.js is missing: run npm run build (it bundles the deploy-time function) before synthesizing`);
    }
    const logGroup = new logs.LogGroup(this, 'Logs', {
      encryptionKey: props.key,
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.role = new ManagedPolicyRole(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: props.roleDescription,
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Deploy-time function: HTTPS to the AWS API endpoints and S3, the database port, nothing else',
      allowAllOutbound: false,
    });
    if (!props.s3PrefixListId) {
      this.responseSecurityGroup = new ec2.SecurityGroup(this, 'ResponseSecurityGroup', {
        vpc: props.vpc,
        description: 'Deploy-time function: HTTPS to S3 for its CloudFormation responses, a rule the function adds after the prefix-list lookup',
        allowAllOutbound: false,
      });
    }
    const securityGroups = [this.securityGroup, ...(this.responseSecurityGroup ? [this.responseSecurityGroup] : [])];

    // Lambda creates and removes the function's network interfaces in the plane's subnets with this role.
    const subnetIds = props.vpc.selectSubnets(props.subnets).subnetIds;
    const arn = (resource: string) => `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
    this.role.grantActions(['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], ['*']);
    this.role.grantActions(['ec2:CreateNetworkInterface'], [
      arn('network-interface/*'), ...subnetIds.map((s) => arn(`subnet/${s}`)), ...securityGroups.map((g) => arn(`security-group/${g.securityGroupId}`)),
    ]);
    this.role.grantActions(['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'], [arn('network-interface/*')]);
    logGroup.grantWrite(this.role);

    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(bundle),
      role: this.role,
      timeout: DEPLOY_TIME_TIMEOUT,
      memorySize: 256,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups,
      logGroup,
      loggingFormat: lambda.LoggingFormat.TEXT,
    });
    // CreateFunction checks the role's network-interface permissions: the policy exists first.
    this.function.node.addDependency(this.role.permissions!);
    acknowledgeFinding(this.role.permissions!, 'AwsSolutions-IAM5[Resource::*]',
      'Only Describe actions that support no resource-level permissions: ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets (Lambda placing the function in the VPC), and, with the custom resources that need them, ec2:DescribeManagedPrefixLists and ec2:DescribeSecurityGroups.');
    acknowledgeFinding(this.role.permissions!, 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
      'Lambda creates and deletes the function\'s network interfaces with this role under IDs it picks at run time; creation is also limited to the plane\'s subnets and the function\'s own security groups.');

    const fn = this.function.node.defaultChild as lambda.CfnFunction;
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5']) {
      acknowledgeFinding(fn, `${pack}-LambdaConcurrency`,
        'Invoked only by CloudFormation, once per create, update or delete of the plane\'s custom resources; reserving concurrency would fail in new accounts whose limit leaves nothing to reserve.');
      acknowledgeFinding(fn, `${pack}-LambdaDLQ`,
        'CloudFormation waits for the response this function PUTs and fails the deployment without one (ServiceTimeout); an event no invocation could answer is in that failure and in the function\'s log, so a dead-letter queue would hold nothing to act on.');
    }

    if (props.s3PrefixListId) {
      const rule = new ec2.CfnSecurityGroupEgress(this, 'S3ResponsesEgress', {
        groupId: this.securityGroup.securityGroupId,
        ipProtocol: 'tcp', fromPort: 443, toPort: 443,
        destinationPrefixListId: props.s3PrefixListId,
        description: 'CloudFormation responses through the S3 gateway endpoint',
      });
      this.requireBeforeRequests(rule);
      this.s3PrefixListId = props.s3PrefixListId;
    } else {
      this.s3PrefixListId = this.lookUpS3PrefixList(this.responseSecurityGroup!);
    }
  }

  /**
   * Makes every custom resource of this function (existing and later ones) wait for `dependable`: the
   * endpoints and rules its requests and responses travel through.
   */
  public requireBeforeRequests(...dependables: IDependable[]): void {
    this.prerequisites.push(...dependables);
    for (const r of this.resources) {
      const others = dependables.filter((d) => d !== r);
      if (others.length > 0) r.node.addDependency(...others);
    }
  }

  /**
   * The region's S3 managed prefix list ID, looked up at deploy time (`Custom::S3PrefixList`), when no ID was given.
   *
   * The chicken-and-egg: the function must answer CloudFormation through S3, and a security group admits S3 only
   * by that very prefix list, whose ID is what is being looked up. A rule in the template cannot name it before
   * the lookup answers, and the lookup cannot answer without the rule. Ways out considered: egress to 0.0.0.0/0
   * on 443 (the internet wherever the subnets have a NAT or a customer route: refused, like everywhere in the
   * plane); an S3 interface endpoint (its private DNS cannot coexist with the gateway endpoint's in-VPC routing,
   * and it costs an endpoint per AZ for one request); a region-to-ID table (IDs are not a published contract).
   * Chosen: a second, otherwise empty security group on the function, `ResponseSecurityGroup`. After the lookup,
   * the function adds the one rule it needs there (HTTPS to the list it found), then answers. Its role may add
   * egress rules to that group only (`ec2:AuthorizeSecurityGroupEgress` on its ARN), and the plane's EC2 endpoint
   * admits that call only for that group and this role. The rule lives outside the template: it goes with the
   * group, and the lookup adds it again whenever the group is replaced (its ID is a property of the lookup).
   * Every other custom resource waits for the lookup. A lookup that fails before the rule exists cannot answer:
   * its reason is in the function's log and CloudFormation fails the resource after its ServiceTimeout.
   * `s3PrefixListId` avoids all of it (a rule in the template, no lookup, no Authorize permission).
   */
  private lookUpS3PrefixList(responseGroup: ec2.SecurityGroup): string {
    const arn = `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:security-group/${responseGroup.securityGroupId}`;
    this.addEc2Permission({ actions: ['ec2:DescribeManagedPrefixLists'], resources: ['*'] });
    this.addEc2Permission({ actions: ['ec2:AuthorizeSecurityGroupEgress'], resources: [arn] });
    const lookup = this.customResource(this, 'S3PrefixList', S3_PREFIX_LIST, {
      PrefixListName: `com.amazonaws.${Aws.REGION}.s3`,
      ResponseSecurityGroupId: responseGroup.securityGroupId,
    });
    // Every other request answers through the rule the lookup adds.
    this.requireBeforeRequests(lookup);
    return lookup.getAttString(PREFIX_LIST_ID);
  }

  /** Revokes every rule of the VPC's default security group (`Custom::RestrictDefaultSecurityGroup`). */
  public restrictDefaultSecurityGroup(vpc: ec2.Vpc): CustomResource {
    const arn = `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:security-group/${vpc.vpcDefaultSecurityGroup}`;
    this.addEc2Permission({ actions: ['ec2:DescribeSecurityGroups'], resources: ['*'] });
    this.addEc2Permission({ actions: ['ec2:RevokeSecurityGroupEgress', 'ec2:RevokeSecurityGroupIngress'], resources: [arn] });
    const resource = this.customResource(vpc, 'RestrictDefaultSecurityGroup', RESTRICT_DEFAULT_SECURITY_GROUP, {
      SecurityGroupId: vpc.vpcDefaultSecurityGroup,
    });
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
      acknowledgeFinding(vpc.node.defaultChild as ec2.CfnVPC, `${pack}-VPCDefaultSecurityGroupClosed`,
        'Closed at deploy time by Custom::RestrictDefaultSecurityGroup (the deploy-time function in this VPC revokes every rule of its default security group); the rule recognizes only CDK\'s own restrictDefaultSecurityGroup resource, whose Lambda runs outside any VPC.');
    }
    return resource;
  }

  /**
   * Creates and maintains each PostgreSQL agent's login role and schema (`Custom::DatabaseRoles`, see
   * `lib/database-roles.ts`), connecting as the master user whose password RDS manages in Secrets Manager.
   * Opens the database port from the function's group to the database's, and nothing more.
   */
  public manageDatabaseRoles(scope: Construct, id: string, props: DatabaseRolesProps): CustomResource {
    const port = props.database.dbInstanceEndpointPort;
    const egress = new ec2.CfnSecurityGroupEgress(this, `${id}Egress`, {
      groupId: this.securityGroup.securityGroupId,
      ipProtocol: 'tcp', fromPort: props.port, toPort: props.port,
      destinationSecurityGroupId: props.securityGroup.securityGroupId,
      description: 'PostgreSQL: the agents\' roles and schemas, at deploy time',
    });
    const ingress = new ec2.CfnSecurityGroupIngress(this, `${id}Ingress`, {
      groupId: props.securityGroup.securityGroupId,
      ipProtocol: 'tcp', fromPort: props.port, toPort: props.port,
      sourceSecurityGroupId: this.securityGroup.securityGroupId,
      description: 'PostgreSQL from the deploy-time function (the agents\' roles and schemas)',
    });
    const secretArn = (props.database.node.defaultChild as rds.CfnDBInstance).attrMasterUserSecretSecretArn;
    this.role.grantActions(['secretsmanager:GetSecretValue'], [secretArn]);
    this.role.grantActions(['kms:Decrypt'], [props.key.keyArn], {
      StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` },
    });
    const resource = this.customResource(scope, id, DATABASE_ROLES, {
      Host: props.database.dbInstanceEndpointAddress,
      Port: port,
      Database: props.databaseName,
      SecretArn: secretArn,
      Agents: [...props.agents].sort(),
    });
    resource.node.addDependency(egress, ingress);
    return resource;
  }

  /**
   * A custom resource this function serves, waiting for everything its requests and responses need. Scalars in
   * `properties` reach the function as strings, lists as lists.
   */
  public customResource(scope: Construct, id: string, resourceType: string, properties: Record<string, unknown>): CustomResource {
    const resource = new CustomResource(scope, id, {
      serviceToken: this.function.functionArn,
      resourceType,
      properties,
      serviceTimeout: CUSTOM_RESOURCE_SERVICE_TIMEOUT,
    });
    // The function's permissions must be in place before it is asked to use them.
    resource.node.addDependency(this.role.permissions!);
    if (this.prerequisites.length > 0) resource.node.addDependency(...this.prerequisites);
    this.resources.push(resource);
    return resource;
  }

  /** Grants an EC2 API permission (the EC2 endpoint's policy reads the same list). */
  private addEc2Permission(permission: Ec2Permission): void {
    this.ec2Permissions.push(permission);
    this.role.grantActions(permission.actions, permission.resources);
  }
}
