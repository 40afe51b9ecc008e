import { Aws, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { limitKeyGrantsToAwsServices } from '../lib/compliance';
import { PropError } from '../lib/errors';
import { NatsHub } from './hub';
import { ControlPlaneProps, resolveControlPlaneProps, ResolvedControlPlaneProps } from './props';

/** Repositories of the images a release pins by digest. */
export const IMAGE_REPOSITORIES = ['byoc/agent-runtime', 'byoc/nats-server', 'byoc/otel-collector'];

/** What a registered customer account may do on the image repositories: pull, nothing else. */
export const ECR_PULL_ACTIONS = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'];

/**
 * The vendor's control plane: the release infrastructure every customer plane depends on (the ECR
 * repositories its images are pulled from, with immutable tags, scanned on push and KMS-encrypted; the
 * asymmetric key bundles are signed with) and the NATS hub customers' leaf nodes connect to. Exactly the
 * registered customer accounts may pull the images and connect to the hub's endpoint service.
 */
export class ControlPlane extends Construct {
  /** The props with every default applied. */
  public readonly settings: ResolvedControlPlaneProps;
  /** Encrypts the images in ECR. */
  public readonly imageKey: kms.Key;
  /** The image repositories, in the order of `IMAGE_REPOSITORIES`. */
  public readonly repositories: ecr.Repository[];
  /** Signs customer-plane bundles (ECDSA P-256). */
  public readonly signingKey: kms.Key;
  /** The NATS hub, when `hub` is given. */
  public readonly hub?: NatsHub;

  constructor(scope: Construct, id: string, props: ControlPlaneProps = {}) {
    super(scope, id);
    const p = resolveControlPlaneProps(props);
    this.settings = p;
    const releaseRemoval = p.retainReleases ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const customers = p.customerAccounts.map((a) => new iam.AccountPrincipal(a));

    this.imageKey = new kms.Key(this, 'ImageKey', {
      description: 'Encrypts the agent images in ECR',
      enableKeyRotation: true,
      removalPolicy: releaseRemoval,
    });
    // ECR creates its grants for the repositories itself; nobody else needs one.
    limitKeyGrantsToAwsServices(this.imageKey);
    if (customers.length > 0) {
      this.imageKey.addToResourcePolicy(new iam.PolicyStatement({
        sid: 'RegisteredCustomersDecryptThroughEcr',
        principals: customers,
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:ViaService': `ecr.${Aws.REGION}.amazonaws.com` } },
      }));
    }
    this.repositories = IMAGE_REPOSITORIES.map((name) => {
      const repository = new ecr.Repository(this, name.replace(/[^A-Za-z0-9]/g, ''), {
        repositoryName: name,
        imageTagMutability: ecr.TagMutability.IMMUTABLE,
        imageScanOnPush: true,
        encryption: ecr.RepositoryEncryption.KMS,
        encryptionKey: this.imageKey,
        removalPolicy: releaseRemoval,
        lifecycleRules: [{ description: 'Drop untagged layers of failed pushes', tagStatus: ecr.TagStatus.UNTAGGED, maxImageCount: 10 }],
      });
      if (customers.length > 0) {
        repository.addToResourcePolicy(new iam.PolicyStatement({
          sid: 'RegisteredCustomersPull',
          principals: customers,
          actions: ECR_PULL_ACTIONS,
        }));
      }
      return repository;
    });
    this.signingKey = new kms.Key(this, 'BundleSigningKey', {
      description: 'Signs customer-plane bundles (ECDSA P-256); the public key is what customers pin',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy: releaseRemoval,
    });
    // Signing is granted by key policy and IAM only: a grant would let someone sign bundles without either.
    limitKeyGrantsToAwsServices(this.signingKey);

    if (p.hub) {
      let { maxAzs } = p.hub;
      if (!p.hub.availabilityZones && Token.isUnresolved(Stack.of(this).region) && maxAzs > 2) {
        if (props.hub?.maxAzs !== undefined) {
          throw new PropError('hub.maxAzs', `${maxAzs} AZs in a stack without an explicit region (CloudFormation can only be asked for 2)`,
            'set env: { account, region } on the stack, or name the AZs in hub.availabilityZones, or use hub.maxAzs: 2');
        }
        maxAzs = 2;
      }
      this.hub = new NatsHub(this, 'Hub', {
        ...p.hub,
        maxAzs,
        customerAccounts: p.customerAccounts,
        retainData: p.retainData,
        logRetention: p.logRetention,
      });
    }
  }
}
