import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { byocFindings, PINNED } from './fixture';

const RULE = 'TaskRoleSingleUse';

const task = (s: any, id: string, taskRole?: iam.IRole) =>
  new ecs.FargateTaskDefinition(s, id, { taskRole }).addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED) });

test('compliant: each task definition with its own task role (CDK\'s default), or one given to it alone', () => {
  expect(byocFindings((s) => {
    task(s, 'Planner');
    task(s, 'Triage', new iam.Role(s, 'TriageRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') }));
  }, RULE)).toEqual([]);
});

test('non-compliant: one task role shared by two agents\' task definitions (each is a finding), by reference or by ARN', () => {
  expect(byocFindings((s) => {
    const shared = new iam.Role(s, 'SharedRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    task(s, 'Planner', shared);
    task(s, 'Triage', shared);
    const imported = iam.Role.fromRoleArn(s, 'Imported', 'arn:aws:iam::111122223333:role/agents', { mutable: false });
    task(s, 'Summarizer', imported);
    task(s, 'Estimator', imported);
    task(s, 'Alone');
  }, RULE)).toEqual([
    'Byoc-TaskRoleSingleUse @ Fixture/Estimator/Resource',
    'Byoc-TaskRoleSingleUse @ Fixture/Planner/Resource',
    'Byoc-TaskRoleSingleUse @ Fixture/Summarizer/Resource',
    'Byoc-TaskRoleSingleUse @ Fixture/Triage/Resource',
  ]);
});
