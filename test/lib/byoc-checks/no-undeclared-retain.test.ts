import { CfnDeletionPolicy, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { declareRetainedData } from '../../../lib/byoc-checks';
import { byocFindings } from './fixture';

const RULE = 'NoUndeclaredRetain';

test('compliant: resources removed on delete, and retained ones below a retainData declaration', () => {
  expect(byocFindings((s) => {
    new s3.Bucket(s, 'Removed', { removalPolicy: RemovalPolicy.DESTROY });
    const kept = new Construct(s, 'Kept');
    declareRetainedData(kept, 'retainData: true keeps this fixture\'s data on cdk destroy.');
    new kms.Key(kept, 'Key', { removalPolicy: RemovalPolicy.RETAIN });
    new s3.Bucket(kept, 'Bucket', { removalPolicy: RemovalPolicy.RETAIN });
  }, RULE)).toEqual([]);
});

test('non-compliant: Retain (deletion or update-replace policy) where keeping data was not declared', () => {
  expect(byocFindings((s) => {
    new kms.Key(s, 'Key'); // a KMS key's default removal policy is RETAIN
    new s3.Bucket(s, 'Bucket', { removalPolicy: RemovalPolicy.RETAIN });
    const replaced = new s3.CfnBucket(s, 'Replaced');
    replaced.cfnOptions.updateReplacePolicy = CfnDeletionPolicy.RETAIN;
  }, RULE)).toEqual([
    'Byoc-NoUndeclaredRetain @ Fixture/Bucket/Resource',
    'Byoc-NoUndeclaredRetain @ Fixture/Key/Resource',
    'Byoc-NoUndeclaredRetain @ Fixture/Replaced',
  ]);
});
