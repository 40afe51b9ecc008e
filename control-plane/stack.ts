import { CfnOutput, Fn, Stack, StackProps } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { ControlPlane, IMAGE_REPOSITORIES } from './control-plane';
import { HUB_PORTS } from './hub-config';
import { ControlPlaneProps } from './props';

export { IMAGE_REPOSITORIES };

export interface ControlPlaneStackProps extends StackProps, ControlPlaneProps {}

/**
 * Outputs of the release infrastructure the CLI reads from a `cdk deploy --outputs-file` JSON (`byoc release
 * publish --outputs`): the registry to publish to, the key that signs (and whose public key verifies) bundles.
 */
export const RELEASE_OUTPUTS = {
  registryBucket: 'BundleRegistryBucketName',
  signingKey: 'BundleSigningKeyArn',
  signerRole: 'ReleaseSignerRoleArn',
} as const;

/** The logical name of an image repository in output IDs: `byoc/agent-runtime` -> `AgentRuntime`. */
const outputName = (repository: string) => repository.replace(/^byoc\//, '').split(/[^A-Za-z0-9]/).map((w) => w[0].toUpperCase() + w.slice(1)).join('');

/**
 * The stack vendor operations deploy: the control plane and the outputs an operator needs (repository
 * URIs, key ARNs, the release signer role, the bundle registry, the hub's endpoint service and load
 * balancer, the operator signing seed's secret).
 */
export class ControlPlaneStack extends Stack {
  public readonly plane: ControlPlane;
  private readonly namedAzs?: string[];

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps = {}) {
    super(scope, id, { ...props, description: props.description ?? 'BYOC control plane (vendor account)' });
    this.namedAzs = props.hub?.availabilityZones;
    // 'Default' keeps the logical IDs of the repositories and keys the stack held before the construct existed
    // (a hidden path component), so an existing deployment updates them in place instead of replacing them.
    this.plane = new ControlPlane(this, 'Default', props);

    const { plane } = this;
    const out = (oid: string, value: string, description: string) => new CfnOutput(this, oid, { value, description });
    IMAGE_REPOSITORIES.forEach((name, i) => out(`${outputName(name)}RepositoryUri`, plane.repositories[i].repositoryUri, `ECR repository ${name} (push the release's images here, tags are immutable)`));
    out('VendorServicesRepositoryUri', plane.servicesRepository.repositoryUri, 'ECR repository of the vendor services image (control-plane/Dockerfile); customers cannot pull it');
    out('ImageKeyArn', plane.imageKey.keyArn, 'KMS key the images are encrypted with');
    out(RELEASE_OUTPUTS.signingKey, plane.signingKey.keyArn, 'KMS key that signs customer-plane bundles (byoc sign --key, byoc pubkey --key); only the release signer role may sign with it');
    out(RELEASE_OUTPUTS.signerRole, plane.releaseSigner.roleArn, 'Role to assume for byoc sign and byoc release publish: the only principal that may sign with the bundle signing key');
    out(RELEASE_OUTPUTS.registryBucket, plane.bundleRegistry.bucket.bucketName, 'S3 bucket signed bundles are published to (byoc release publish --outputs or --bucket), versioned and Object-Locked');
    out('BundleRegistryKeyArn', plane.bundleRegistry.key.keyArn, 'KMS key of the bundle registry and its access logs');
    out('BundleRegistryAccessLogBucketName', plane.bundleRegistry.accessLogBucketName, 'S3 bucket the bundle registry\'s server access logs go to');
    const { hub } = plane;
    if (hub) {
      const host = plane.settings.hub!.host;
      out('HubUrl', `tls://${host}:${HUB_PORTS.leafnode}`, 'What customers give as vendorHub (host and port; the CA is the vendor\'s)');
      out('HubEndpointServiceName', hub.endpointService.vpcEndpointServiceName, 'PrivateLink endpoint service customers give as vendorHub.endpointService');
      out('HubLoadBalancerDnsName', hub.loadBalancer.loadBalancerDnsName, 'Internal Network Load Balancer behind the endpoint service');
      out('HubClusterName', hub.cluster.clusterName, 'ECS cluster of the hub nodes');
      out('HubKeyArn', hub.key.keyArn, 'KMS key of the hub\'s storage, secrets and logs');
      out('OperatorSigningSeedSecretArn', hub.operatorSigningSeed.secretArn, 'Fill with the operator signing seed (put-secret-value); the registration tooling reads it');
      const { ingest, llmProxy } = plane;
      if (ingest) {
        out('IngestTables', Fn.join(',', Object.values(ingest.tables).map((t) => t.tableName)), 'DynamoDB tables ingest writes (usage, metrics, workflow, learning pool, rejections)');
        out('IngestServiceName', ingest.service.service.serviceName, 'ECS service of ingest and the learning-pool publisher');
      }
      if (llmProxy) {
        out('LlmProxyUrl', llmProxy.url, 'Base URL customers\' agents reach the LLM proxy at, through the hub\'s endpoint service (llm: { via: vendor-proxy })');
        out('LlmProxyTokenKeyArn', llmProxy.tokenSigningKey.keyArn, 'KMS key that signs customers\' LLM proxy tokens (byoc customer add issues them)');
        out('LlmProxyTableName', llmProxy.table.tableName, 'DynamoDB table of the LLM proxy\'s customers, limits and budgets (byoc customer add|revoke)');
      }
      if (hub.publicLoadBalancer) {
        out('HubPublicLoadBalancerDnsName', hub.publicLoadBalancer.loadBalancerDnsName, 'Internet-facing Network Load Balancer of the hub\'s leaf-node port');
        out('HubPublicAddresses', Fn.join(',', hub.publicAddresses.map((a) => a.ref)), 'Elastic IPs of the internet-facing load balancer: what customers without PrivateLink give as vendorHub.cidrs (/32 each)');
      }
    }
  }

  /** The image repositories (as before the `ControlPlane` construct). */
  public get repositories(): ecr.Repository[] {
    return this.plane.repositories;
  }

  /** The bundle signing key (as before the `ControlPlane` construct). */
  public get signingKey(): kms.Key {
    return this.plane.signingKey;
  }

  /** The AZs named in the settings, so an explicit environment needs no AZ lookup (and no credentials). */
  public get availabilityZones(): string[] {
    return this.namedAzs ?? super.availabilityZones;
  }
}
