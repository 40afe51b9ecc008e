import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledgeControlTowerFinding, acknowledgeFinding, cfnOf, limitKeyGrantsToAwsServices } from '../lib/compliance';
import { ResolvedBundleRegistryProps } from './props';

/**
 * Tag prefix of every image a release pins. A release names its images by digest (`...@sha256:`), and digests
 * are what the customer plane runs; the tag is what keeps the image in ECR: the first lifecycle rule matches
 * it and never expires, so no later rule may (ECR lets an image be expired only by the first rule it matches).
 * Tag each image a release pins `release-<version>` before signing the release.
 */
export const RELEASE_TAG_PREFIX = 'release-';

/** Tag prefix of images CI pushes for testing: they expire `CI_IMAGE_DAYS` after their push. */
export const CI_TAG_PREFIX = 'ci-';

/** Days a CI image is kept. */
export const CI_IMAGE_DAYS = 30;

/** Untagged images kept (layers of failed or superseded pushes); older ones expire. */
export const UNTAGGED_IMAGES_KEPT = 10;

/**
 * ECR's default quota of images per repository. The release rule expires only beyond ten times it, which no
 * repository reaches unless that quota is raised tenfold and filled.
 */
export const ECR_IMAGES_PER_REPOSITORY = 10_000;

/**
 * The lifecycle rules of every image repository, in priority order. ECR evaluates an image against the rules
 * in priority order and only the first rule whose tag selection matches it may expire it:
 *
 * 1. images with a `release-` tag: kept (expired only beyond ten times ECR's image quota), whatever other tags
 *    they carry, so a CI image later tagged for a release is safe from rule 2;
 * 2. images with a `ci-` tag (and no `release-` tag): expire 30 days after their push;
 * 3. untagged images: all but the 10 newest expire.
 *
 * No rule selects `tagStatus: ANY`: an image with another tag (e.g. `latest`) is never expired.
 */
export function imageLifecycleRules(): ecr.LifecycleRule[] {
  return [
    {
      rulePriority: 1,
      description: `Keep every image a release pins (tagged ${RELEASE_TAG_PREFIX}*): being matched first, no later rule may expire it`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPrefixList: [RELEASE_TAG_PREFIX],
      maxImageCount: 10 * ECR_IMAGES_PER_REPOSITORY,
    },
    {
      rulePriority: 2,
      description: `Expire CI images (tagged ${CI_TAG_PREFIX}*, no release tag) ${CI_IMAGE_DAYS} days after their push`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPrefixList: [CI_TAG_PREFIX],
      maxImageAge: Duration.days(CI_IMAGE_DAYS),
    },
    {
      rulePriority: 3,
      description: `Keep the ${UNTAGGED_IMAGES_KEPT} newest untagged images (layers of failed pushes), expire older ones`,
      tagStatus: ecr.TagStatus.UNTAGGED,
      maxImageCount: UNTAGGED_IMAGES_KEPT,
    },
  ];
}

/** Prefix of the registry's server access logs in a log bucket given by `bundleRegistry.accessLogBucket`. */
export const REGISTRY_ACCESS_LOG_PREFIX = 'byoc-bundle-registry/';

export interface BundleRegistryConstructProps extends ResolvedBundleRegistryProps {
  /** What happens to the bucket, its log bucket and key when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy;
  /** Days the server access logs are kept in the log bucket the registry creates. */
  readonly logRetentionDays: number;
}

/**
 * Where signed customer-plane bundles are published (`byoc release publish`): an S3 bucket with versioning
 * and Object Lock (every version locked for the retention), encrypted with its own customer-managed key,
 * private (Block Public Access, bucket owner enforced), TLS only, its server access logs in a log bucket.
 */
export class BundleRegistry extends Construct {
  /** Encrypts the bundles. */
  public readonly key: kms.Key;
  /** The bundles, under `<customer>/<version>/`. */
  public readonly bucket: s3.Bucket;
  /** The access log bucket the registry created, when no `accessLogBucket` was given. */
  public readonly accessLogs?: s3.Bucket;
  /** Name of the bucket the access logs go to. */
  public readonly accessLogBucketName: string;

  constructor(scope: Construct, id: string, props: BundleRegistryConstructProps) {
    super(scope, id);
    // S3's log delivery is admitted by bucket policy, never by the LogDeliveryWrite ACL (ACLs are off on these
    // buckets): set here, so an app without the kit's cdk.json feature flags builds the same registry.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts the signed customer-plane bundles of the bundle registry',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    // S3 uses the key on the caller's permissions; nobody needs a grant.
    limitKeyGrantsToAwsServices(this.key);

    const secure = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectLockEnabled: true,
      removalPolicy: props.removalPolicy,
    } satisfies s3.BucketProps;

    // Events to EventBridge (a bundle was published, a log was delivered), set on the bucket itself: the L2's
    // eventBridgeEnabled would add a notifications Lambda outside any VPC.
    const withEvents = (bucket: s3.Bucket) => {
      (bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
    };

    let logs: s3.Bucket | undefined;
    if (!props.accessLogBucket) {
      this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
        ...secure,
        // S3 delivers server access logs only to a bucket encrypted with S3-managed keys (with SSE-KMS it may
        // write log objects under a key nobody can use).
        encryption: s3.BucketEncryption.S3_MANAGED,
        // Object Lock without a default retention: S3 cannot deliver logs to a bucket with one.
        objectLockEnabled: true,
        // The log bucket records its own reads too (who read the registry's logs), under its own prefix.
        serverAccessLogsPrefix: 'access-logs-bucket/',
        lifecycleRules: [{
          id: 'ExpireLogs',
          expiration: Duration.days(props.logRetentionDays),
          noncurrentVersionExpiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        }],
      });
      withEvents(this.accessLogs);
      logs = this.accessLogs;
      const logBucket = cfnOf(this.accessLogs);
      const sseS3 = 'S3 delivers server access logs only to a bucket encrypted with S3-managed keys (SSE-S3), not SSE-KMS; the bundles themselves are under the registry\'s KMS key. Give bundleRegistry.accessLogBucket (e.g. the organization\'s log archive) where this control is enforced.';
      for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
        acknowledgeFinding(logBucket, `${pack}-S3BucketReplicationEnabled`,
          'The server access logs of the bundle registry stay in its region and expire after the log retention; CloudTrail records the same publications as API calls.');
        acknowledgeFinding(logBucket, `${pack}-S3DefaultEncryptionKMS`, sseS3);
      }
      acknowledgeControlTowerFinding(logBucket, 'CT.S3.PR.10', sseS3);
    }
    this.accessLogBucketName = logs?.bucketName ?? props.accessLogBucket!;

    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...secure,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      // One data key per bucket for a while instead of a KMS call per object.
      bucketKeyEnabled: true,
      objectLockDefaultRetention: props.retention.mode === 'COMPLIANCE'
        ? s3.ObjectLockRetention.compliance(Duration.days(props.retention.days))
        : s3.ObjectLockRetention.governance(Duration.days(props.retention.days)),
      // To the log bucket created above (its policy admits S3's log delivery from this bucket only); a given
      // bucket is named directly: its policy is the vendor's to set.
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: logs ? 'bundle-registry/' : undefined,
      // Bundles are small single-part uploads; an interrupted multipart upload is removed after a day.
      lifecycleRules: [{ id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
    withEvents(this.bucket);
    if (props.accessLogBucket) {
      (this.bucket.node.defaultChild as s3.CfnBucket).loggingConfiguration = { destinationBucketName: props.accessLogBucket, logFilePrefix: REGISTRY_ACCESS_LOG_PREFIX };
    }
    // Every object is encrypted with the registry's key (the bucket's default, when a put names none): a put
    // naming another encryption or another key is refused. Each deny applies only when its header is present
    // (Null false), so a put without encryption headers gets the default; one statement per header, as a
    // statement's conditions must all hold for it to deny.
    const denyPutUnless = (sid: string, key: string, value: string) => this.bucket.addToResourcePolicy(new iam.PolicyStatement({
      sid,
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:PutObject'],
      resources: [this.bucket.arnForObjects('*')],
      conditions: { Null: { [key]: 'false' }, StringNotEquals: { [key]: value } },
    }));
    denyPutUnless('OnlySseKms', 's3:x-amz-server-side-encryption', 'aws:kms');
    denyPutUnless('OnlyTheRegistryKey', 's3:x-amz-server-side-encryption-aws-kms-key-id', this.key.keyArn);
    for (const pack of ['HIPAA.Security', 'NIST.800.53.R5', 'PCI.DSS.321']) {
      acknowledgeFinding(cfnOf(this.bucket), `${pack}-S3BucketReplicationEnabled`,
        'Signed bundles are kept in the control plane\'s region, versioned and locked by Object Lock; a lost region is recovered by signing the release again from its assembly, and each customer keeps the bundle it verified.');
    }
  }
}
