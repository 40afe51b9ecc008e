import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { byocFindings } from './fixture';

const RULE = 'LogGroupRetentionAndKey';

test('compliant: a log group with a retention and a customer-managed key', () => {
  expect(byocFindings((s) => {
    new logs.LogGroup(s, 'Logs', { retention: logs.RetentionDays.ONE_YEAR, encryptionKey: new kms.Key(s, 'Key') });
  }, RULE)).toEqual([]);
});

test('non-compliant: kept forever, or encrypted with CloudWatch\'s own key', () => {
  expect(byocFindings((s) => {
    const key = new kms.Key(s, 'Key');
    new logs.LogGroup(s, 'Forever', { retention: logs.RetentionDays.INFINITE, encryptionKey: key });
    new logs.LogGroup(s, 'Unencrypted', { retention: logs.RetentionDays.ONE_MONTH });
    new logs.CfnLogGroup(s, 'Neither');
  }, RULE)).toEqual([
    'Byoc-LogGroupRetentionAndKey[NoKmsKey] @ Fixture/Neither',
    'Byoc-LogGroupRetentionAndKey[NoKmsKey] @ Fixture/Unencrypted/Resource',
    'Byoc-LogGroupRetentionAndKey[NoRetention] @ Fixture/Forever/Resource',
    'Byoc-LogGroupRetentionAndKey[NoRetention] @ Fixture/Neither',
  ]);
});
