import { Grant } from 'aws-cdk-lib/aws-iam';
import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/**
 * An IAM role whose permissions live in one customer-managed policy instead of an inline policy.
 *
 * Every grant made to it (`grantRead`, the ECS log driver, ECR pulls, ...) lands in that one policy, so a
 * reviewer reads a role's whole permission set in one place, and the HIPAA/NIST/PCI "no inline policy"
 * rules hold without acknowledgement. The policy is created on the first grant: a role nothing is
 * granted to has no policy at all.
 */
export class ManagedPolicyRole extends iam.Role {
  private managedPolicy?: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: iam.RoleProps) {
    super(scope, id, props);
  }

  /** The role's permissions policy, if anything has been granted. */
  public get permissions(): iam.ManagedPolicy | undefined {
    return this.managedPolicy;
  }

  public addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    if (!this.managedPolicy) {
      this.managedPolicy = new iam.ManagedPolicy(this, 'Permissions', {
        roles: [this],
        description: `Permissions of ${this.node.path}`.slice(0, 1000),
      });
    }
    this.managedPolicy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.managedPolicy };
  }

  /** Grants an action list on resources, as one statement (for permissions no L2 offers a grant for). */
  public grantActions(actions: string[], resources: string[], conditions?: Record<string, Record<string, unknown>>): Grant {
    return Grant.addToPrincipal({ grantee: this, actions, resourceArns: resources, conditions });
  }

  /**
   * Read of one secret: its value, and decryption with its key only through Secrets Manager.
   *
   * Unlike `secret.grantRead`, this never edits the key's policy (the key already trusts this account's
   * IAM policies), so roles in nested stacks do not make the key depend on them.
   */
  public grantSecretRead(secret: secretsmanager.ISecret, key: kms.IKey): void {
    this.grantActions(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], [secret.secretArn]);
    this.grantActions(['kms:Decrypt'], [key.keyArn], {
      StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` },
    });
  }
}

/**
 * Lets CloudWatch Logs of this account and region use `key` for log groups of this account only (what an
 * encrypted log group needs; the encryption context names the log group).
 */
export function allowLogsOfThisAccount(key: kms.Key): void {
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'CloudWatchLogsOfThisAccount',
    principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
    actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
    resources: ['*'],
    conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` } },
  }));
}
