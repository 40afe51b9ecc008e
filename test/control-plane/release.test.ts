import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { CONTROL_PLANE_STACK } from '../../bin/control-plane';
import { controlPlaneStackProps } from '../../control-plane/config';
import { BUNDLE_SIGNING_ALGORITHM, IMAGE_REPOSITORIES, VENDOR_SERVICES_REPOSITORY } from '../../control-plane/control-plane';
import { CI_TAG_PREFIX, ECR_IMAGES_PER_REPOSITORY, REGISTRY_ACCESS_LOG_PREFIX, RELEASE_TAG_PREFIX } from '../../control-plane/release-registry';
import { ControlPlaneStack, ControlPlaneStackProps, RELEASE_OUTPUTS } from '../../control-plane/stack';
import { createApp } from '../../lib/app';
import { exampleVendorProps, resourcesOf, synthControl, SynthesizedControlPlane } from './synth';

/**
 * The release infrastructure's guarantees, read from the synthesized template: the bundle registry (private,
 * TLS only, versioned, Object Lock, its own key, access logs), the release signer (the only principal that may
 * sign, with exactly what signing and publishing need) and the image lifecycle rules (a release's images are
 * never expired).
 */

const VENDOR = '111122223333';
const PIPELINE = `arn:aws:iam::${VENDOR}:role/release-pipeline`;

let example: SynthesizedControlPlane;
let bare: SynthesizedControlPlane;
let custom: SynthesizedControlPlane;
beforeAll(() => {
  example = synthControl();
  bare = synthControl(exampleVendorProps({ hub: undefined }));
  custom = synthControl(exampleVendorProps({
    hub: undefined,
    retainReleases: false,
    bundleRegistry: { retention: { mode: 'COMPLIANCE', days: 30 }, accessLogBucket: 'vendor-log-archive' },
    releaseSigners: [PIPELINE, `arn:aws:iam::${VENDOR}:user/release-manager`],
  }));
});

const one = (s: SynthesizedControlPlane, type: string, prefix: string): [string, any] => {
  const found = resourcesOf(s.json, type).filter(([id]) => id.startsWith(prefix));
  expect(found.map(([id]) => id)).toHaveLength(1);
  return found[0];
};
const registryOf = (s: SynthesizedControlPlane) => one(s, 'AWS::S3::Bucket', 'BundleRegistryBucket');
const policyOf = (s: SynthesizedControlPlane, bucketId: string) => resourcesOf(s.json, 'AWS::S3::BucketPolicy').find(([, p]) => p.Properties.Bucket.Ref === bucketId)![1].Properties.PolicyDocument.Statement as any[];
const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const objectsOf = (id: string) => ({ 'Fn::Join': ['', [arnOf(id), '/*']] });
const signerOf = (s: SynthesizedControlPlane) => one(s, 'AWS::IAM::Role', 'ReleaseSigner');
const statementsOf = (s: SynthesizedControlPlane, roleId: string) => {
  const policies = resourcesOf(s.json, 'AWS::IAM::ManagedPolicy').filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === roleId));
  expect(policies).toHaveLength(1);
  return policies[0][1].Properties.PolicyDocument.Statement as any[];
};
const keyId = (s: SynthesizedControlPlane, prefix: string) => one(s, 'AWS::KMS::Key', prefix)[0];

describe('bundle registry', () => {
  test('versioned, Object Lock with a governance-mode default retention of 365 days, SSE-KMS with its own key, private, retained', () => {
    const [, bucket] = registryOf(example);
    const key = keyId(example, 'BundleRegistryKey');
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 365 } } },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: arnOf(key) } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    // No name: CloudFormation makes one up, so nobody can squat it before the first deploy.
    expect(bucket.Properties.BucketName).toBeUndefined();
    // Its key: rotated, retained, grants only for AWS services, nobody but the account (through IAM) allowed.
    const [, k] = one(example, 'AWS::KMS::Key', 'BundleRegistryKey');
    expect(k).toMatchObject({ DeletionPolicy: 'Retain', Properties: { EnableKeyRotation: true } });
    const allows = k.Properties.KeyPolicy.Statement.filter((st: any) => st.Effect === 'Allow');
    expect(allows).toEqual([{ Action: 'kms:*', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${VENDOR}:root` }, Resource: '*' }]);
    expect(k.Properties.KeyPolicy.Statement.map((st: any) => st.Sid)).toContain('GrantsOnlyForAwsServices');
  });

  test('its policy denies every request without TLS (and TLS before 1.2), and any put asking for another encryption or key (a put naming none gets the registry\'s); it allows nothing', () => {
    const [id] = registryOf(example);
    const key = keyId(example, 'BundleRegistryKey');
    const statements = policyOf(example, id);
    expect(statements.filter((st) => st.Effect !== 'Deny')).toEqual([]);
    expect(statements).toContainEqual({
      Action: 's3:*', Effect: 'Deny', Principal: { AWS: '*' }, Resource: [arnOf(id), objectsOf(id)], Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    expect(statements).toContainEqual({
      Action: 's3:*', Effect: 'Deny', Principal: { AWS: '*' }, Resource: [arnOf(id), objectsOf(id)], Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
    });
    expect(statements).toContainEqual({
      Sid: 'OnlySseKms', Action: 's3:PutObject', Effect: 'Deny', Principal: { AWS: '*' }, Resource: objectsOf(id),
      Condition: { Null: { 's3:x-amz-server-side-encryption': 'false' }, StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
    });
    expect(statements).toContainEqual({
      Sid: 'OnlyTheRegistryKey', Action: 's3:PutObject', Effect: 'Deny', Principal: { AWS: '*' }, Resource: objectsOf(id),
      Condition: { Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'false' }, StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': arnOf(key) } },
    });
    expect(statements).toHaveLength(4);
  });

  test('server access logs go to the log bucket: SSE-S3 (what S3 delivers logs to), Object Lock without a default retention, versioned, private, TLS only, expiring with the log retention', () => {
    const [registryId, registry] = registryOf(example);
    const [logsId, logs] = one(example, 'AWS::S3::Bucket', 'BundleRegistryAccessLogs');
    expect(registry.Properties.LoggingConfiguration).toEqual({ DestinationBucketName: { Ref: logsId }, LogFilePrefix: 'bundle-registry/' });
    expect(logs.DeletionPolicy).toBe('Retain');
    expect(logs.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      ObjectLockEnabled: true,
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: { LogFilePrefix: 'access-logs-bucket/' },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ Status: 'Enabled', ExpirationInDays: 365 })] },
    });
    expect(logs.Properties.ObjectLockConfiguration).toBeUndefined();
    const statements = policyOf(example, logsId);
    expect(statements.filter((st) => st.Effect === 'Deny').map((st) => st.Condition)).toEqual([
      { Bool: { 'aws:SecureTransport': 'false' } }, { NumericLessThan: { 's3:TlsVersion': 1.2 } },
    ]);
    // S3's log delivery may put objects under the registry's prefix only for the registry, and under its own for itself.
    const delivery = statements.filter((st) => st.Effect === 'Allow');
    expect(delivery).toEqual([logsId, registryId].map((source) => ({
      Action: 's3:PutObject',
      Effect: 'Allow',
      Principal: { Service: 'logging.s3.amazonaws.com' },
      Resource: { 'Fn::Join': ['', [arnOf(logsId), source === logsId ? '/access-logs-bucket/*' : '/bundle-registry/*']] },
      Condition: { ArnLike: { 'aws:SourceArn': arnOf(source) }, StringEquals: { 'aws:SourceAccount': VENDOR } },
    })));
  });

  test('bundleRegistry settings: compliance mode and its days, logs to the given bucket (no log bucket of its own), removed with retainReleases off', () => {
    const [, bucket] = registryOf(custom);
    expect(bucket.Properties.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } } });
    expect(bucket.Properties.LoggingConfiguration).toEqual({ DestinationBucketName: 'vendor-log-archive', LogFilePrefix: REGISTRY_ACCESS_LOG_PREFIX });
    expect(resourcesOf(custom.json, 'AWS::S3::Bucket')).toHaveLength(1);
    expect(custom.json.Outputs.BundleRegistryAccessLogBucketName.Value).toBe('vendor-log-archive');
    expect(bucket.DeletionPolicy).toBe('Delete');
    expect(one(custom, 'AWS::KMS::Key', 'BundleRegistryKey')[1].DeletionPolicy).toBe('Delete');
  });
});

describe('release signer', () => {
  test('its permissions: the signing key\'s public key, kms:Sign with ECDSA_SHA_256 on that key, new objects in the registry through its key; nothing else', () => {
    for (const s of [example, custom]) {
      const [roleId, role] = signerOf(s);
      const signingKey = keyId(s, 'BundleSigningKey');
      const registryKey = keyId(s, 'BundleRegistryKey');
      const [bucketId] = registryOf(s);
      expect(statementsOf(s, roleId)).toEqual([
        { Action: 'kms:GetPublicKey', Effect: 'Allow', Resource: arnOf(signingKey) },
        { Action: 'kms:Sign', Effect: 'Allow', Resource: arnOf(signingKey), Condition: { StringEquals: { 'kms:SigningAlgorithm': BUNDLE_SIGNING_ALGORITHM } } },
        { Action: 's3:PutObject', Effect: 'Allow', Resource: objectsOf(bucketId) },
        {
          Action: 'kms:GenerateDataKey', Effect: 'Allow', Resource: arnOf(registryKey),
          Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
        },
      ]);
      expect(role.Properties.Policies).toBeUndefined();
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      expect(role.Properties.MaxSessionDuration).toBe(3600);
      expect(resourcesOf(s.json, 'AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(roleId))).toEqual([]);
    }
  });

  test('no other role or policy of the template may use kms:Sign (nor kms:* or *)', () => {
    for (const s of [example, custom]) {
      const [roleId] = signerOf(s);
      const signing = resourcesOf(s.json, 'AWS::IAM::ManagedPolicy').concat(resourcesOf(s.json, 'AWS::IAM::Policy'))
        .filter(([, p]) => (p.Properties.PolicyDocument.Statement as any[]).some((st) => [st.Action].flat().some((a: string) => ['kms:Sign', 'kms:*', '*'].includes(a))))
        .map(([, p]) => p.Properties.Roles.map((r: any) => r.Ref));
      expect(signing).toEqual([[roleId]]);
      for (const [, role] of resourcesOf(s.json, 'AWS::IAM::Role')) expect(JSON.stringify(role.Properties.Policies ?? [])).not.toMatch(/kms:(Sign|\*)"/);
    }
  });

  test('the signing key refuses kms:Sign to every principal but the signer role, whatever IAM allows; its only Allow is the account\'s own', () => {
    const [, key] = one(example, 'AWS::KMS::Key', 'BundleSigningKey');
    const [roleId] = signerOf(example);
    const statements = key.Properties.KeyPolicy.Statement as any[];
    expect(statements).toContainEqual({
      Sid: 'SignOnlyAsTheReleaseSigner', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:Sign', Resource: '*',
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': arnOf(roleId) } },
    });
    expect(statements.filter((st) => st.Effect === 'Allow')).toEqual([{ Action: 'kms:*', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${VENDOR}:root` }, Resource: '*' }]);
    // A grant would be a way around both: only AWS services may create one.
    expect(statements.map((st) => st.Sid)).toContain('GrantsOnlyForAwsServices');
    expect(key.Properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
  });

  test('who may assume it: by default the vendor account\'s principals with MFA; with releaseSigners exactly those, nobody else', () => {
    expect(signerOf(example)[1].Properties.AssumeRolePolicyDocument.Statement).toEqual([{
      Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${VENDOR}:root` }, Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } },
    }]);
    expect(signerOf(custom)[1].Properties.AssumeRolePolicyDocument.Statement).toEqual([{
      Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: [PIPELINE, `arn:aws:iam::${VENDOR}:user/release-manager`] },
    }]);
  });
});

// ECR lifecycle rules ------------------------------------------------------------------------------------

interface LifecycleRule {
  rulePriority: number;
  selection: { tagStatus: 'tagged' | 'untagged' | 'any'; tagPrefixList?: string[]; tagPatternList?: string[]; countType: string; countNumber: number; countUnit?: string };
  action: { type: string };
}

/** Whether a rule's tag selection matches an image with these tags, as ECR evaluates it. */
function selects(rule: LifecycleRule, tags: string[]): boolean {
  const { tagStatus, tagPrefixList = [], tagPatternList = [] } = rule.selection;
  if (tagStatus === 'any') return true;
  if (tagStatus === 'untagged') return tags.length === 0;
  // Tagged: every prefix and every pattern of the list must match one of the image's tags.
  const glob = (p: string) => new RegExp(`^${p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return tags.length > 0 && tagPrefixList.every((p) => tags.some((t) => t.startsWith(p))) && tagPatternList.every((p) => tags.some((t) => glob(p).test(t)));
}

/**
 * What can expire an image tagged `release-*`, whatever other tags it has: ECR lets only the first rule (by
 * priority) whose selection matches an image expire it, so that rule must be one that never does. Returns the
 * problems found; none means no rule of the policy can ever expire a release's image.
 */
function releaseImageProblems(rules: LifecycleRule[]): string[] {
  const problems: string[] = [];
  const ordered = [...rules].sort((a, b) => a.rulePriority - b.rulePriority);
  for (const r of ordered) if (r.selection.tagStatus === 'any') problems.push(`rule ${r.rulePriority} selects tagStatus any`);
  // A tag to satisfy each rule's selection, so every rule gets its chance at a release image carrying it too.
  const others = ['latest', ...ordered.flatMap((r) => [...(r.selection.tagPrefixList ?? []).map((p) => `${p}x`), ...(r.selection.tagPatternList ?? []).map((p) => p.replace(/\*/g, 'x'))])]
    .filter((t) => !t.startsWith(RELEASE_TAG_PREFIX));
  const images: string[][] = [];
  for (const release of [`${RELEASE_TAG_PREFIX}1.4.0`, `${RELEASE_TAG_PREFIX}2.0.0-rc.1`]) {
    images.push([release]);
    for (const a of others) {
      images.push([release, a], [a, release]);
      for (const b of others) if (b !== a) images.push([release, a, b]);
    }
  }
  for (const tags of images) {
    const deciding = ordered.find((r) => selects(r, tags));
    if (!deciding) continue;
    const keeps = deciding.action.type === 'expire' && deciding.selection.countType === 'imageCountMoreThan' && deciding.selection.countNumber >= 10 * ECR_IMAGES_PER_REPOSITORY;
    if (!keeps) problems.push(`image [${tags.join(', ')}] is decided by rule ${deciding.rulePriority} (${deciding.selection.countType} ${deciding.selection.countNumber}), which expires it`);
  }
  return [...new Set(problems)];
}

const lifecycleOf = (s: SynthesizedControlPlane): [string, LifecycleRule[]][] => resourcesOf(s.json, 'AWS::ECR::Repository')
  .map(([, r]) => [r.Properties.RepositoryName, JSON.parse(r.Properties.LifecyclePolicy.LifecyclePolicyText).rules]);

describe('image lifecycle: no rule ever expires an image a release pins', () => {
  test('every repository\'s policy: an image tagged release-* is decided by the rule that keeps it, whatever other tags it carries; no rule selects any', () => {
    const policies = lifecycleOf(example);
    expect(policies.map(([name]) => name).sort()).toEqual([...IMAGE_REPOSITORIES, VENDOR_SERVICES_REPOSITORY].sort());
    for (const [name, rules] of policies) expect([name, releaseImageProblems(rules)]).toEqual([name, []]);
  });

  test('what does expire: CI images 30 days after their push, untagged images beyond the 10 newest', () => {
    for (const [, rules] of lifecycleOf(example)) {
      const decide = (tags: string[]) => [...rules].sort((a, b) => a.rulePriority - b.rulePriority).find((r) => selects(r, tags))?.selection;
      expect(decide([`${CI_TAG_PREFIX}4f2a9c1`])).toEqual({ tagStatus: 'tagged', tagPrefixList: [CI_TAG_PREFIX], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 30 });
      expect(decide([])).toEqual({ tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 10 });
      expect(decide(['latest'])).toBeUndefined();
      expect(rules.every((r) => r.action.type === 'expire')).toBe(true);
    }
  });

  test('the check finds what would expire a release image (it is not vacuous)', () => {
    const [, rules] = lifecycleOf(example)[0];
    const ci = rules.find((r) => r.selection.tagPrefixList?.[0] === CI_TAG_PREFIX)!;
    const keeper = rules.find((r) => r.selection.tagPrefixList?.[0] === RELEASE_TAG_PREFIX)!;
    // The CI rule ahead of the keeper: a CI image later tagged for a release would expire.
    expect(releaseImageProblems([{ ...ci, rulePriority: 0 }, ...rules.filter((r) => r !== ci)]).join('\n')).toMatch(/image \[release-1\.4\.0, ci-x\] is decided by rule 0 \(sinceImagePushed 30\)/);
    // No keeper at all: the same image is the CI rule's.
    expect(releaseImageProblems(rules.filter((r) => r !== keeper)).join('\n')).toMatch(/decided by rule 2/);
    // A keeper that keeps too few, or a catch-all rule.
    expect(releaseImageProblems([{ ...keeper, selection: { ...keeper.selection, countNumber: 50 } }, ...rules.filter((r) => r !== keeper)]).join('\n')).toMatch(/decided by rule 1 \(imageCountMoreThan 50\)/);
    expect(releaseImageProblems([...rules, { rulePriority: 9, selection: { tagStatus: 'any', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 90 }, action: { type: 'expire' } }]))
      .toContain('rule 9 selects tagStatus any');
    // A pattern that also matches release tags, ahead of the keeper.
    expect(releaseImageProblems([{ rulePriority: 0, selection: { tagStatus: 'tagged', tagPatternList: ['*-1.4.0'], countType: 'sinceImagePushed', countUnit: 'days', countNumber: 1 }, action: { type: 'expire' } }, ...rules]).join('\n'))
      .toMatch(/image \[release-1\.4\.0\] is decided by rule 0/);
  });
});

test('outputs: what byoc sign, pubkey, release publish and customer add read', () => {
  const outputs = example.json.Outputs;
  expect(outputs[RELEASE_OUTPUTS.registryBucket]).toEqual({ Description: expect.stringContaining('byoc release publish'), Value: { Ref: registryOf(example)[0] } });
  expect(outputs[RELEASE_OUTPUTS.signerRole]).toEqual({ Description: expect.stringContaining('byoc sign'), Value: arnOf(signerOf(example)[0]) });
  expect(outputs[RELEASE_OUTPUTS.signingKey]).toEqual({ Description: expect.stringContaining('byoc pubkey'), Value: arnOf(keyId(example, 'BundleSigningKey')) });
  expect(outputs.BundleRegistryKeyArn.Value).toEqual(arnOf(keyId(example, 'BundleRegistryKey')));
  expect(outputs.BundleRegistryAccessLogBucketName.Value).toEqual({ Ref: one(example, 'AWS::S3::Bucket', 'BundleRegistryAccessLogs')[0] });
  for (const [name, o] of Object.entries<any>(outputs)) expect([name, typeof o.Description]).toEqual([name, 'string']);
  // Without a hub too: releases are published before the hub exists.
  for (const name of Object.values(RELEASE_OUTPUTS)) expect(bare.json.Outputs[name]).toBeDefined();
});

describe('invalid settings fail synth naming the setting and the fix', () => {
  const outdirs: string[] = [];
  afterAll(() => { for (const d of outdirs) fs.rmSync(d, { recursive: true, force: true }); });
  const build = (props: Partial<ControlPlaneStackProps>) => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-release-props-'));
    outdirs.push(outdir);
    const app: App = createApp({ outdir });
    return () => new ControlPlaneStack(app, CONTROL_PLANE_STACK, exampleVendorProps({ hub: undefined, ...props }));
  };

  test.each<[string, Partial<ControlPlaneStackProps>, RegExp]>([
    ['an unknown mode', { bundleRegistry: { retention: { mode: 'LEGAL_HOLD' as 'GOVERNANCE' } } }, /^Invalid prop 'bundleRegistry\.retention\.mode': "LEGAL_HOLD" is not an Object Lock mode\. Fix: use GOVERNANCE .* or COMPLIANCE/],
    ['0 days', { bundleRegistry: { retention: { days: 0 } } }, /^Invalid prop 'bundleRegistry\.retention\.days': 0 is out of range\. Fix: give whole days from 1 to 36500/],
    ['more than 100 years', { bundleRegistry: { retention: { days: 36501 } } }, /^Invalid prop 'bundleRegistry\.retention\.days': 36501 is out of range/],
    ['half a day', { bundleRegistry: { retention: { days: 1.5 } } }, /^Invalid prop 'bundleRegistry\.retention\.days': is not a whole number: 1\.5 is a number/],
    ['a bucket ARN for the log bucket', { bundleRegistry: { accessLogBucket: 'arn:aws:s3:::logs' } }, /^Invalid prop 'bundleRegistry\.accessLogBucket': "arn:aws:s3:::logs" is not an S3 bucket name\. Fix: give the name/],
    ['no signer', { releaseSigners: [] }, /^Invalid prop 'releaseSigners': is empty\. Fix: give the ARNs .*nobody could sign one.* or leave it out/],
    ['an account ID for a signer', { releaseSigners: [VENDOR] }, /^Invalid prop 'releaseSigners\[0\]': "111122223333" is not an IAM role or user ARN/],
    ['a wildcard', { releaseSigners: [`arn:aws:iam::${VENDOR}:role/*`] }, /^Invalid prop 'releaseSigners\[0\]': .* is not an IAM role or user ARN/],
    ['an assumed-role session', { releaseSigners: [`arn:aws:sts::${VENDOR}:assumed-role/ci/session`] }, /^Invalid prop 'releaseSigners\[0\]'/],
    ['a signer twice', { releaseSigners: [PIPELINE, PIPELINE] }, /^Invalid prop 'releaseSigners\[1\]': .* is listed twice/],
    ['signers of two accounts', { releaseSigners: [PIPELINE, 'arn:aws:iam::444455556666:role/ci'] }, /^Invalid prop 'releaseSigners': names principals of several accounts \(111122223333, 444455556666\)/],
    ['a signer of another account than the stack\'s', { releaseSigners: ['arn:aws:iam::444455556666:role/ci'] }, /^Invalid prop 'releaseSigners': names principals of account 444455556666, the control plane is in 111122223333/],
  ])('%s', (_name, props, message) => {
    expect(build(props)).toThrow(message);
  });

  test('signers with a path are accepted', () => {
    expect(build({ releaseSigners: [`arn:aws:iam::${VENDOR}:role/pipelines/byoc/release`] })).not.toThrow();
  });

  test('the vendor configuration refuses unknown keys of bundleRegistry and its retention', () => {
    expect(() => controlPlaneStackProps({ bundleRegistry: { retention: { days: 30, mdoe: 'COMPLIANCE' } } } as never)).toThrow(/^Invalid setting 'bundleRegistry\.retention\.mdoe': is not a setting of the control plane\. Fix: remove it or use one of mode, days/);
    expect(() => controlPlaneStackProps({ bundleRegistry: { logBucket: 'x' } } as never)).toThrow(/^Invalid setting 'bundleRegistry\.logBucket'/);
    expect(controlPlaneStackProps({ bundleRegistry: { retention: { mode: 'COMPLIANCE', days: 90 } }, releaseSigners: [PIPELINE] }))
      .toMatchObject({ bundleRegistry: { retention: { mode: 'COMPLIANCE', days: 90 } }, releaseSigners: [PIPELINE] });
  });
});
