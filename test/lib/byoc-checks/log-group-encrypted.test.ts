import { NestedStack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { declareDataKey } from '../../../lib/byoc-checks';
import { byocFindings } from './fixture';

const RULE = 'LogGroupRetentionAndKey';

test('compliant: a log group with a retention and a customer-managed key', () => {
  expect(byocFindings((s) => {
    new logs.LogGroup(s, 'Logs', { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: new kms.Key(s, 'Key') });
  }, RULE)).toEqual([]);
});

test('compliant: below a declared data key, log groups under that key, in a nested stack too (where it arrives as a parameter)', () => {
  expect(byocFindings((s) => {
    const plane = new Construct(s, 'Plane');
    const key = new kms.Key(plane, 'Key');
    declareDataKey(plane, key);
    new logs.LogGroup(plane, 'Logs', { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: key });
    new logs.LogGroup(new NestedStack(plane, 'Agents'), 'Logs', { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: key });
  }, RULE)).toEqual([]);
});

test('non-compliant: kept forever, encrypted with CloudWatch\'s own key, or with another key than the plane\'s', () => {
  expect(byocFindings((s) => {
    const key = new kms.Key(s, 'Key');
    new logs.LogGroup(s, 'Forever', { retention: logs.RetentionDays.INFINITE, encryptionKey: key });
    new logs.LogGroup(s, 'Unencrypted', { retention: logs.RetentionDays.ONE_MONTH });
    new logs.CfnLogGroup(s, 'Neither');
    const plane = new Construct(s, 'Plane');
    declareDataKey(plane, new kms.Key(plane, 'PlaneKey'));
    new logs.LogGroup(plane, 'Elsewhere', { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: key });
    new logs.LogGroup(new NestedStack(plane, 'Agents'), 'Elsewhere', { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: key });
  }, RULE)).toEqual([
    'Byoc-LogGroupRetentionAndKey[NoKmsKey] @ Fixture/Neither',
    'Byoc-LogGroupRetentionAndKey[NoKmsKey] @ Fixture/Unencrypted/Resource',
    'Byoc-LogGroupRetentionAndKey[NoRetention] @ Fixture/Forever/Resource',
    'Byoc-LogGroupRetentionAndKey[NoRetention] @ Fixture/Neither',
    'Byoc-LogGroupRetentionAndKey[OtherKey] @ Fixture/Plane/Agents/Elsewhere/Resource',
    'Byoc-LogGroupRetentionAndKey[OtherKey] @ Fixture/Plane/Elsewhere/Resource',
  ]);
});
