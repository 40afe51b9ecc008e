import { Template } from 'aws-cdk-lib/assertions';
import { IMAGE_REPOSITORIES } from '../../control-plane/stack';
import { synthControlPlane } from '../synth';

const control = () => Template.fromJSON(Object.values(synthControlPlane().templates)[0]);

test('control plane: the template matches the snapshot (asset hashes stripped)', () => {
  expect(synthControlPlane().templates).toMatchSnapshot();
});

test('image repositories: immutable tags, scan on push, KMS-encrypted, retained', () => {
  const t = control();
  t.resourceCountIs('AWS::ECR::Repository', IMAGE_REPOSITORIES.length);
  for (const name of IMAGE_REPOSITORIES) {
    t.hasResource('AWS::ECR::Repository', {
      DeletionPolicy: 'Retain',
      Properties: {
        RepositoryName: name,
        ImageTagMutability: 'IMMUTABLE',
        ImageScanningConfiguration: { ScanOnPush: true },
        EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: { 'Fn::GetAtt': [expectAnyString(), 'Arn'] } },
      },
    });
  }
});

test('the bundle signing key is an asymmetric ECDSA P-256 signing key', () => {
  control().hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
});

function expectAnyString() {
  return require('aws-cdk-lib/assertions').Match.stringLikeRegexp('.+');
}

test('only AWS services may create grants on either key (Control Tower CT.KMS.PR.3)', () => {
  const keys = control().findResources('AWS::KMS::Key');
  expect(Object.keys(keys)).toHaveLength(2);
  for (const key of Object.values<any>(keys)) {
    expect(key.Properties.KeyPolicy.Statement).toContainEqual({
      Sid: 'GrantsOnlyForAwsServices',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'kms:CreateGrant',
      Resource: '*',
      Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
    });
  }
});
