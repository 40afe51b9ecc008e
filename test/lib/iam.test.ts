import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { ManagedPolicyRole } from '../../lib/iam';

test('grants land in one managed policy attached to the role, never in an inline policy', () => {
  const stack = new Stack(new App(), 'S');
  const key = new kms.Key(stack, 'Key');
  const secret = new secretsmanager.Secret(stack, 'Secret', { encryptionKey: key });
  const role = new ManagedPolicyRole(stack, 'Role', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
  expect(role.permissions).toBeUndefined();
  role.grantSecretRead(secret, key);
  role.addToPolicy(new iam.PolicyStatement({ actions: ['sts:GetCallerIdentity'], resources: ['*'] }));
  const t = Template.fromStack(stack);
  t.resourceCountIs('AWS::IAM::Policy', 0);
  t.resourceCountIs('AWS::IAM::ManagedPolicy', 1);
  t.hasResourceProperties('AWS::IAM::ManagedPolicy', {
    Roles: [{ Ref: stack.getLogicalId(role.node.defaultChild as iam.CfnRole) }],
    PolicyDocument: {
      Statement: [
        { Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Effect: 'Allow', Resource: { Ref: stack.getLogicalId(secret.node.defaultChild as secretsmanager.CfnSecret) } },
        { Action: 'kms:Decrypt', Effect: 'Allow', Resource: { 'Fn::GetAtt': [stack.getLogicalId(key.node.defaultChild as kms.CfnKey), 'Arn'] }, Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } } },
        { Action: 'sts:GetCallerIdentity', Effect: 'Allow', Resource: '*' },
      ],
    },
  });
  // The key policy is left alone: no statement names the role.
  expect(JSON.stringify(t.findResources('AWS::KMS::Key'))).not.toContain('Role');
});
