import { Aws, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { CONTRACT_METADATA, contractRecord } from '../lib/contract-input';
import { declareEgress, declareRetainedData } from '../lib/byoc-checks';
import { acknowledgeFinding, cfnOf, limitKeyGrantsToAwsServices } from '../lib/compliance';
import { PropError } from '../lib/errors';
import { ManagedPolicyRole } from '../lib/iam';
import { NatsHub } from './hub';
import { ControlPlaneProps, releaseSignerAccount, resolveControlPlaneProps, ResolvedControlPlaneProps } from './props';
import { BundleRegistry, imageLifecycleRules } from './release-registry';
import { IngestDeployment } from './ingest-deployment';
import { LlmProxy } from './llm-proxy';

/** Repositories of the images a release pins by digest. */
export const IMAGE_REPOSITORIES = ['byoc/agent-runtime', 'byoc/nats-server', 'byoc/otel-collector'];

/** What a registered customer account may do on the image repositories: pull, nothing else. */
/** Repository of the vendor services image (`control-plane/Dockerfile`): ingest, learning pool, LLM proxy. */
export const VENDOR_SERVICES_REPOSITORY = 'byoc/vendor-services';

export const ECR_PULL_ACTIONS = ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'];

/** The only signing algorithm the release signer may ask KMS for (what `byoc sign` uses with a KMS key). */
export const BUNDLE_SIGNING_ALGORITHM = 'ECDSA_SHA_256';

/**
 * The vendor's control plane: the release infrastructure every customer plane depends on (the ECR
 * repositories its images are pulled from, with immutable tags, scanned on push and KMS-encrypted; the
 * asymmetric key bundles are signed with, usable for signing only by the release signer role; the bundle
 * registry signed bundles are published to) and the NATS hub customers' leaf nodes connect to. Exactly the
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
  /** The S3 bucket signed bundles are published to, its key and access logs. */
  public readonly bundleRegistry: BundleRegistry;
  /** The only identity that may sign with `signingKey`; it may also publish to the registry. */
  public readonly releaseSigner: ManagedPolicyRole;
  /** The NATS hub, when `hub` is given. */
  public readonly hub?: NatsHub;
  /** The vendor services image's repository (`byoc/vendor-services`): the vendor's own, customers cannot pull it. */
  public readonly servicesRepository: ecr.Repository;
  /** Ingest of every outbound kind and the learning-pool publisher, when `services` is given. */
  public readonly ingest?: IngestDeployment;
  /** The LLM proxy, when `services.llmProxy` is given. */
  public readonly llmProxy?: LlmProxy;

  constructor(scope: Construct, id: string, props: ControlPlaneProps = {}) {
    super(scope, id);
    const p = resolveControlPlaneProps(props);
    // What may cross, as this control plane enforces it: byoc review and the tests read it from the template.
    Stack.of(this).addMetadata(CONTRACT_METADATA, contractRecord(p.contract));
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
    // Immutable tags, scanned on push, under the image key; never expires an image tagged release-* (what a
    // signed release pins): see imageLifecycleRules.
    const imageRepository = (name: string) => new ecr.Repository(this, name.replace(/[^A-Za-z0-9]/g, ''), {
      repositoryName: name,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      imageScanOnPush: true,
      encryption: ecr.RepositoryEncryption.KMS,
      encryptionKey: this.imageKey,
      removalPolicy: releaseRemoval,
      // Without retainReleases the repository goes with the stack: CloudFormation deletes its images first
      // (a repository holding images cannot be deleted otherwise).
      emptyOnDelete: !p.retainReleases,
      lifecycleRules: imageLifecycleRules(),
    });
    this.repositories = IMAGE_REPOSITORIES.map((name) => {
      const repository = imageRepository(name);
      if (customers.length > 0) {
        repository.addToResourcePolicy(new iam.PolicyStatement({
          sid: 'RegisteredCustomersPull',
          principals: customers,
          actions: ECR_PULL_ACTIONS,
        }));
      }
      return repository;
    });
    // The vendor's services image: same protections, no customer policy.
    this.servicesRepository = imageRepository(VENDOR_SERVICES_REPOSITORY);
    this.signingKey = new kms.Key(this, 'BundleSigningKey', {
      description: 'Signs customer-plane bundles (ECDSA P-256); the public key is what customers pin',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy: releaseRemoval,
    });
    // Signing is granted by key policy and IAM only: a grant would let someone sign bundles without either.
    limitKeyGrantsToAwsServices(this.signingKey);

    this.bundleRegistry = new BundleRegistry(this, 'BundleRegistry', {
      ...p.bundleRegistry,
      removalPolicy: releaseRemoval,
      logRetentionDays: p.logRetention,
    });
    this.releaseSigner = this.createReleaseSigner(p.releaseSigners);
    if (p.retainReleases) {
      for (const kept of [this.imageKey, ...this.repositories, this.servicesRepository, this.signingKey, this.bundleRegistry]) {
        declareRetainedData(kept, 'retainReleases: true keeps the image repositories, the bundle registry and their keys on cdk destroy: customers run what they pin.');
      }
    }

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
        contract: p.contract,
      });
      if (p.services) {
        const { image, ingestRefreshSeconds, llmProxy } = p.services;
        this.ingest = new IngestDeployment(this, 'Ingest', {
          hub: this.hub,
          hubCaCertificatePem: p.hub.tls.caCertificatePem,
          image,
          refreshInterval: ingestRefreshSeconds === undefined ? undefined : Duration.seconds(ingestRefreshSeconds),
          retainData: p.retainData,
          deploymentMode: p.deploymentMode,
          contract: p.contract,
          logRetention: p.logRetention,
        });
        if (llmProxy) {
          this.llmProxy = new LlmProxy(this, 'LlmProxy', {
            hub: this.hub,
            host: p.hub.host,
            image,
            certificateSecretArn: p.hub.tls.certificateSecretArn,
            certificateSecretKeyArn: p.hub.tls.certificateSecretKeyArn,
            providers: llmProxy.providers,
            egress: llmProxy.egress,
            desiredCount: llmProxy.desiredCount,
            retainData: p.retainData,
            logRetention: p.logRetention,
          });
          declareEgress(this.llmProxy, 'services.llmProxy.egress is nat: the proxy reaches the LLM providers through its own internet and NAT gateways.');
        }
      }
      if (p.retainData) {
        for (const kept of [this.hub, this.ingest, this.llmProxy]) {
          if (kept) declareRetainedData(kept, 'retainData: true keeps the hub\'s, ingest\'s and the LLM proxy\'s data, keys, secrets and logs on cdk destroy.');
        }
      }
    }
  }

  /**
   * The release signer: signs bundles with the signing key and publishes them to the registry, nothing else.
   * Without `releaseSigners`, principals of this account may assume it with MFA (their own IAM policy must
   * allow `sts:AssumeRole` on it); with them, exactly those principals (a pipeline's role cannot present MFA).
   * The signing key refuses `kms:Sign` to every other principal, whatever IAM policies say.
   */
  private createReleaseSigner(signers: readonly string[]): ManagedPolicyRole {
    const account = Stack.of(this).account;
    const signerAccount = releaseSignerAccount(signers);
    if (signerAccount !== undefined && !Token.isUnresolved(account) && signerAccount !== account) {
      throw new PropError('releaseSigners', `names principals of account ${signerAccount}, the control plane is in ${account}`,
        'give roles or users of the vendor account the control plane is deployed to');
    }
    const role = new ManagedPolicyRole(this, 'ReleaseSigner', {
      description: 'Signs customer-plane bundles with the bundle signing key (byoc sign) and publishes them to the bundle registry (byoc release publish)',
      assumedBy: signers.length > 0
        ? new iam.CompositePrincipal(...signers.map((arn) => new iam.ArnPrincipal(arn)))
        : new iam.AccountRootPrincipal().withConditions({ Bool: { 'aws:MultiFactorAuthPresent': 'true' } }),
      maxSessionDuration: Duration.hours(1),
    });
    // byoc sign: the public key first (its fingerprint goes into the release; byoc pubkey and publish read it too), then the signature.
    role.grantActions(['kms:GetPublicKey'], [this.signingKey.keyArn]);
    role.grantActions(['kms:Sign'], [this.signingKey.keyArn], { StringEquals: { 'kms:SigningAlgorithm': BUNDLE_SIGNING_ALGORITHM } });
    // byoc release publish: new objects only (no read, list or delete; a version already there is refused by
    // S3's If-None-Match, and Object Lock keeps every version), encrypted with the registry's key through S3.
    const { bucket, key } = this.bundleRegistry;
    role.grantActions(['s3:PutObject'], [bucket.arnForObjects('*')]);
    role.grantActions(['kms:GenerateDataKey'], [key.keyArn], { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } });
    const bucketId = Stack.of(this).resolve(cfnOf(bucket).logicalId);
    acknowledgeFinding(role.permissions!, `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/*]`,
      'The release signer puts bundle files under <customer>/<version>/ of the registry, names not known before a release; it can only create objects, which Object Lock keeps.');

    this.signingKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'SignOnlyAsTheReleaseSigner',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:Sign'],
      resources: ['*'],
      conditions: { ArnNotEquals: { 'aws:PrincipalArn': role.roleArn } },
    }));
    return role;
  }
}
