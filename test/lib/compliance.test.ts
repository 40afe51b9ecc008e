import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, NestedStack, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { cdkJsonContext, createApp } from '../../lib/app';
import {
  acknowledgeControlTowerFinding, acknowledgeFinding, acknowledgementsOf, cfnOf, CONTROL_TOWER_PLUGIN, ControlTowerChecks,
  controlTowerRules, limitKeyGrantsToAwsServices,
} from '../../lib/compliance';

const REASON = 'A reason long enough to be a sentence a reviewer can check.';

test('acknowledging on a stack or an app is refused', () => {
  const app = new App();
  const stack = new Stack(app, 'S');
  expect(() => acknowledgeFinding(stack, 'AwsSolutions-SQS3', REASON)).toThrow(/stack or stage/);
  expect(() => acknowledgeFinding(app, 'AwsSolutions-SQS3', REASON)).toThrow(/stack or stage/);
});

test('a reason must be a sentence', () => {
  const queue = new sqs.Queue(new Stack(new App(), 'S'), 'Q');
  expect(() => acknowledgeFinding(queue, 'AwsSolutions-SQS3', 'dlq')).toThrow(/at least 40 characters/);
});

test('an acknowledgement is recorded and reaches the resource as CDK validation metadata', () => {
  const app = new App();
  const queue = new sqs.Queue(new Stack(app, 'S'), 'Q');
  acknowledgeFinding(cfnOf(queue), 'AwsSolutions-SQS3', REASON);
  expect(acknowledgementsOf(app)).toEqual([{ path: 'S/Q/Resource', finding: 'AwsSolutions-SQS3', reason: REASON }]);
  const meta = cfnOf(queue).node.metadata.find((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY);
  expect(JSON.stringify(meta?.data)).toContain('AwsSolutions-SQS3');
});

test('every app loads the feature flags of cdk.json, the four nag packs, the kit\'s own ByocChecks and the Control Tower controls', () => {
  const flags = cdkJsonContext();
  expect(Object.keys(flags).length).toBeGreaterThan(50);
  const app = createApp();
  for (const [key, value] of Object.entries(flags)) expect(app.node.tryGetContext(key)).toEqual(value);
  const plugins = (app as any)._validationPlugins.map((p: any) => p.name).sort();
  expect(plugins).toEqual(['AwsSolutions', 'Byoc', 'HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321', CONTROL_TOWER_PLUGIN].sort());
});

// Control Tower proactive controls ------------------------------------------------------------------

const tmpdirs: string[] = [];
afterAll(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

/** An app checked by the Control Tower plugin alone (the nag packs have their own tests). */
function controlTowerApp(): App {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-ct-'));
  tmpdirs.push(outdir);
  const app = new App({ outdir });
  Validations.of(app).addPlugins(new ControlTowerChecks());
  return app;
}

/** A Fargate task definition, compliant but for its container stating no memory limit of its own (CT.ECS.PR.7). */
function taskWithoutContainerMemory(scope: Construct, id: string): ecs.FargateTaskDefinition {
  const key = new kms.Key(scope, `${id}Key`, { enableKeyRotation: true });
  limitKeyGrantsToAwsServices(key);
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { encryptionKey: key });
  const task = new ecs.FargateTaskDefinition(scope, id, { cpu: 256, memoryLimitMiB: 512 });
  task.addContainer('main', {
    image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:1.36'),
    user: '1000:1000',
    readonlyRootFilesystem: true,
    logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: id }),
  });
  return task;
}

test('the bundled controls are read from the plugin: IDs map to the guard rule names reports use', () => {
  const rules = controlTowerRules();
  expect(rules.length).toBeGreaterThan(200);
  expect(rules.find((r) => r.control === 'CT.RDS.PR.13')).toMatchObject({ rule: 'rds_instance_deletion_protection_enabled_check', resourceTypes: ['AWS::RDS::DBInstance'] });
  expect(new Set(rules.map((r) => r.file)).size).toBe(rules.length);
});

test('a resource in a nested stack is checked, and the finding names its construct and the control', () => {
  const app = controlTowerApp();
  const nested = new NestedStack(new Stack(app, 'S'), 'Group');
  taskWithoutContainerMemory(nested, 'Task');
  expect(() => app.synth()).toThrow(/CT\.ECS\.PR\.7[\s\S]*S\/Group\/Task\/Resource[\s\S]*Acknowledge with 'ControlTower::ecs_task_definition_memory_hard_limit_check'/);
});

test('a parameter the parent passes is judged as the string CloudFormation resolves it to, and only that', () => {
  const app = controlTowerApp();
  const parent = new Stack(app, 'S');
  const key = new kms.Key(parent, 'Key', { enableKeyRotation: true });
  limitKeyGrantsToAwsServices(key);
  const nested = new NestedStack(parent, 'Group');
  // Encrypted with the parent's key, whose ARN arrives as a nested-stack parameter: compliant at deploy.
  new logs.LogGroup(nested, 'Encrypted', { encryptionKey: key });
  expect(() => app.synth()).not.toThrow();

  const app2 = controlTowerApp();
  const parent2 = new Stack(app2, 'S');
  new logs.LogGroup(new NestedStack(parent2, 'Group'), 'Plain');
  expect(() => app2.synth()).toThrow(/CT\.CLOUDWATCH\.PR\.3[\s\S]*S\/Group\/Plain\/Resource/);
});

test('a key policy must keep grants for AWS services (CT.KMS.PR.3): limitKeyGrantsToAwsServices is what satisfies it', () => {
  const app = controlTowerApp();
  const stack = new Stack(app, 'S');
  new kms.Key(stack, 'Open', { enableKeyRotation: true });
  const limited = new kms.Key(stack, 'Limited', { enableKeyRotation: true });
  limitKeyGrantsToAwsServices(limited);
  let message = '';
  try { app.synth(); } catch (e) { message = (e as Error).message; }
  expect(message).toMatch(/CT\.KMS\.PR\.3[\s\S]*S\/Open\/Resource/);
  expect(message).not.toMatch(/S\/Limited/);
  const policy = stack.resolve((limited.node.defaultChild as kms.CfnKey).keyPolicy);
  expect(policy.Statement).toContainEqual({
    Sid: 'GrantsOnlyForAwsServices', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:CreateGrant', Resource: '*',
    Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
  });
});

test('an acknowledged control is quiet on that resource only: the same finding elsewhere still fails synth', () => {
  const app = controlTowerApp();
  const stack = new Stack(app, 'S');
  const accepted = taskWithoutContainerMemory(stack, 'Accepted');
  taskWithoutContainerMemory(stack, 'Other');
  acknowledgeControlTowerFinding(cfnOf(accepted), 'CT.ECS.PR.7', REASON);
  let message = '';
  try { app.synth(); } catch (e) { message = (e as Error).message; }
  expect(message).toMatch(/CT\.ECS\.PR\.7[\s\S]*S\/Other\/Resource/);
  expect(message).not.toMatch(/S\/Accepted\/Resource/);
  expect(acknowledgementsOf(app)).toEqual([{ path: 'S/Accepted/Resource', finding: 'ControlTower::ecs_task_definition_memory_hard_limit_check', reason: REASON }]);

  const alone = controlTowerApp();
  const only = taskWithoutContainerMemory(new Stack(alone, 'S'), 'Accepted');
  acknowledgeControlTowerFinding(cfnOf(only), 'CT.ECS.PR.7', REASON);
  expect(() => alone.synth()).not.toThrow();
});

test('a Control Tower acknowledgement has the bar of a nag one: one resource, a sentence, a known control', () => {
  const app = new App();
  const stack = new Stack(app, 'S');
  const queue = cfnOf(new sqs.Queue(stack, 'Q'));
  expect(() => acknowledgeControlTowerFinding(stack, 'CT.SQS.PR.1', REASON)).toThrow(/stack or stage/);
  expect(() => acknowledgeControlTowerFinding(app, 'CT.SQS.PR.1', REASON)).toThrow(/stack or stage/);
  expect(() => acknowledgeControlTowerFinding(queue, 'CT.SQS.PR.1', 'dlq')).toThrow(/at least 40 characters/);
  expect(() => acknowledgeControlTowerFinding(queue, 'CT.SQS.PR.99', REASON)).toThrow(/not a proactive control bundled/);
});
