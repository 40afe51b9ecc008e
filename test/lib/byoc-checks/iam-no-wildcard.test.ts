import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { RESOURCE_STAR_ACTIONS } from '../../../lib/byoc-checks';
import { byocFindings } from './fixture';

const RULE = 'IamNoWildcard';

test('compliant: named actions on named resources, Resource "*" only for actions without resource-level permissions, wildcards only in Deny', () => {
  expect(byocFindings((s) => {
    const bucket = new s3.Bucket(s, 'Bucket');
    const role = new iam.Role(s, 'Role', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects('reports/*')] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }));
    role.addToPolicy(new iam.PolicyStatement({ effect: iam.Effect.DENY, actions: ['s3:*'], resources: ['*'] }));
    new iam.ManagedPolicy(s, 'Managed', { statements: [new iam.PolicyStatement({ actions: ['ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups'], resources: ['*'] })] });
  }, RULE)).toEqual([]);
  // Every listed action has its reason.
  for (const reason of Object.values(RESOURCE_STAR_ACTIONS)) expect(reason.length).toBeGreaterThan(10);
});

test('non-compliant: wildcard actions, NotAction, and Resource "*" for actions that take a resource, in every kind of identity policy', () => {
  expect(byocFindings((s) => {
    const role = new iam.Role(s, 'Role', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      inlinePolicies: { inline: new iam.PolicyDocument({ statements: [new iam.PolicyStatement({ notActions: ['iam:*'], resources: ['arn:aws:s3:::b/*'] })] }) },
    });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:Get*'], resources: ['arn:aws:s3:::b/*'] }));
    new iam.ManagedPolicy(s, 'Managed', { statements: [new iam.PolicyStatement({ actions: ['kms:Decrypt', 'ecr:GetAuthorizationToken'], resources: ['*'] })] });
  }, RULE)).toEqual([
    'Byoc-IamNoWildcard[Action::s3:Get*] @ Fixture/Role/DefaultPolicy/Resource',
    'Byoc-IamNoWildcard[NotAction] @ Fixture/Role/Resource',
    'Byoc-IamNoWildcard[ResourceStar::kms:Decrypt] @ Fixture/Managed/Resource',
  ]);
});
