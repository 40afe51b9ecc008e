import { App, Stack, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { cdkJsonContext, createApp } from '../../lib/app';
import { acknowledgeFinding, acknowledgementsOf, cfnOf } from '../../lib/compliance';

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

test('every app loads the feature flags of cdk.json and the four packs', () => {
  const flags = cdkJsonContext();
  expect(Object.keys(flags).length).toBeGreaterThan(50);
  const app = createApp();
  for (const [key, value] of Object.entries(flags)) expect(app.node.tryGetContext(key)).toEqual(value);
  const plugins = (app as any)._validationPlugins.map((p: any) => p.name).sort();
  expect(plugins).toEqual(['AwsSolutions', 'HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321'].sort());
});
