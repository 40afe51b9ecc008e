import { RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { limitKeyGrantsToAwsServices } from '../lib/compliance';

/** Repositories of the images a release pins by digest. */
export const IMAGE_REPOSITORIES = ['byoc/agent-runtime', 'byoc/nats-server', 'byoc/otel-collector'];

export interface ControlPlaneStackProps extends StackProps {
  /**
   * Keep the image repositories and the signing key when the stack is deleted.
   * @default true
   */
  readonly retainReleases?: boolean;
}

/**
 * The vendor's control plane. So far: the release essentials every customer plane depends on, the ECR
 * repositories its images are pulled from (immutable tags, scanned on push, KMS-encrypted) and the
 * asymmetric KMS key bundles are signed with. The API, NATS hub and telemetry ingest are their own issues.
 */
export class ControlPlaneStack extends Stack {
  public readonly repositories: ecr.Repository[];
  public readonly signingKey: kms.Key;

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps = {}) {
    super(scope, id, { ...props, description: props.description ?? 'BYOC control plane (vendor account)' });
    const removalPolicy = props.retainReleases ?? true ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const imageKey = new kms.Key(this, 'ImageKey', {
      description: 'Encrypts the agent images in ECR',
      enableKeyRotation: true,
      removalPolicy,
    });
    // ECR creates its grants for the repositories itself; nobody else needs one.
    limitKeyGrantsToAwsServices(imageKey);
    this.repositories = IMAGE_REPOSITORIES.map((name) => new ecr.Repository(this, name.replace(/[^A-Za-z0-9]/g, ''), {
      repositoryName: name,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      imageScanOnPush: true,
      encryption: ecr.RepositoryEncryption.KMS,
      encryptionKey: imageKey,
      removalPolicy,
      lifecycleRules: [{ description: 'Drop untagged layers of failed pushes', tagStatus: ecr.TagStatus.UNTAGGED, maxImageAge: undefined, maxImageCount: 10 }],
    }));
    this.signingKey = new kms.Key(this, 'BundleSigningKey', {
      description: 'Signs customer-plane bundles (ECDSA P-256); the public key is what customers pin',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy,
    });
    // Signing is granted by key policy and IAM only: a grant would let someone sign bundles without either.
    limitKeyGrantsToAwsServices(this.signingKey);
  }
}
