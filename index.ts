/**
 * The kit's public API (`require('@byoc-kit/byoc')`): the two planes as constructs and stacks, the agent
 * catalog and the boundary contract they are built from, the app factory and compliance helpers every app of
 * the kit synthesizes with, and the signing and offline verification of bundles. `aws-cdk-lib` and
 * `constructs` are peer dependencies: the consumer's own copies are used.
 */

// The customer plane: what runs in the customer's account.
export { CustomerPlane, SERVICE_NAMESPACE } from './customer-plane/customer-plane';
export { CustomerPlaneStack, type CustomerPlaneStackProps, type ExistingVpcAttributes } from './customer-plane/stack';
export {
  type CacheOptions, type CustomerPlaneProps, type DatabaseOptions, EgressMode, IMAGE_KEYS, LLM_ACCESS_MODES, type LlmAccess, MAX_AGENTS_PER_GROUP, type ReleaseImages,
} from './customer-plane/props';
export { type VendorHub } from './customer-plane/link';
export { type CustomerPlaneConfig, customerPlaneStackProps, loadCustomerPlaneConfig } from './customer-plane/config';

// The control plane: what the vendor runs in its own account.
export { ControlPlane, IMAGE_REPOSITORIES, VENDOR_SERVICES_REPOSITORY } from './control-plane/control-plane';
export { ControlPlaneStack, type ControlPlaneStackProps, RELEASE_OUTPUTS } from './control-plane/stack';
export {
  type BundleRegistryProps, type BundleRetention, type ControlPlaneProps, type HubTlsProps, type LlmProxyServiceProps, type NatsHubProps, type VendorServicesProps,
} from './control-plane/props';
export { type ControlPlaneConfig, controlPlaneStackProps, loadControlPlaneConfig } from './control-plane/config';

// The agents a plane runs: the product's catalog is the default, a vendor may pass its own.
export {
  AGENT_CATALOG, AGENT_SECRETS, type AgentSecret, type AgentSpec, type AgentSubjects, AgentTrigger, type CatalogProblem, catalogProblems, DataStore, workSubject,
} from './agents/catalog';

// The boundary contract: the only messages that cross the narrow link.
export {
  BOUNDARY_CONTRACT, type BoundaryContract, checkContract, contractHash, CUSTOMER_ID, Direction, type Field, kindsFor, type MessageKind, METRIC_ATTRIBUTES, METRIC_NAMES,
  projectedOut, publishedSchema, type RateLimit, senderSchema, type ShareSettings, subjectOf,
} from './lib/boundary-contract';
export { ContractValidator, isRejection, type Rejection, type RejectionReason } from './lib/contract-validator';
export {
  CONTRACT_ENV, CONTRACT_JSON_SCHEMA, CONTRACT_METADATA, contractEnvironment, contractFromEnvironment, contractJson, contractOfTemplate, type ContractRecord, loadContractFile,
  validateContract,
} from './lib/contract-input';

// The app factory (feature flags, nag packs, Control Tower controls), the acknowledgement helpers and the kit's own pack.
export { createApp, KIT_FEATURE_FLAGS, type KitAppProps } from './lib/app';
export {
  type Acknowledgement, acknowledgementsOf, acknowledgeControlTowerFinding, acknowledgeFinding, addCompliancePacks, cfnOf, CONTROL_TOWER_PLUGIN,
  ControlTowerChecks, RECORD_ONLY_CONTEXT,
} from './lib/compliance';
export {
  BYOC_RULES, ByocChecks, type ByocRule, declareDataKey, declareEgress, declareNatsConfig, declareNoInternetEgress, declareRetainedData, type NatsConfigDeclaration,
  RESOURCE_STAR_ACTIONS,
} from './lib/byoc-checks';
export { PropError } from './lib/errors';

// Bundles: signing a synthesized customer plane, verifying it offline, comparing two.
export {
  BUNDLE_FORMAT, MANIFEST, type Release, RELEASE, SIGNATURE, signAssembly, type SignOptions, type Verified, verifyBundle, type VerifyOptions,
} from './lib/bundle';
export { type Algorithm, BundleError, fingerprint, generateDevelopmentKeys, loadPublicKey, type Signer, signerFor } from './lib/signer';
export { type BundleDiff, diffBundles, type DiffOptions, diffSummary, formatDiff } from './lib/bundle-diff';

// The audit log of every crossing, verifiable by the customer.
export { type AuditVerification, type AuditVerifyOptions, verifyAuditLog } from './lib/audit-log';
