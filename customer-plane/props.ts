import { X509Certificate } from 'crypto';
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AGENT_CATALOG, AgentSpec, catalogProblems } from '../agents/catalog';
import { BOUNDARY_CONTRACT, BoundaryContract } from '../lib/boundary-contract';
import { checkPropsWithSchema, PropNames } from '../lib/config-schema';
import { validateContract } from '../lib/contract-input';
import { PropError } from '../lib/errors';
import { CollectorExportOptions, otlpEndpointProblem } from './collector-config';
import { configSchemaErrors } from './config-schema';
import { VendorHub } from './link';
import { AlarmOptions, BusinessHours, resolveBusinessHours, ResolvedBusinessHours, ResolvedScaling, resolveScaling, ScalingOptions } from './operations';

/** Outbound internet access of the plane's subnets. */
export enum EgressMode {
  /** No internet gateway and no NAT: AWS services are reached through VPC endpoints only. */
  NONE = 'none',
  /**
   * Public subnets with one NAT gateway per AZ; workloads stay in private subnets. Opt-in only. The NAT
   * gateways give a route, not permission: no security group of the plane allows 0.0.0.0/0, so a
   * workload reaches the internet only through an egress rule made for it (no agent declares one yet).
   */
  NAT = 'nat',
}

/**
 * Where the agents' LLM calls go (the agents that hold the `llm-*` secrets). Both paths send prompts out of the
 * customer's account, to the vendor's proxy or to the providers, so neither is taken without being chosen.
 */
export type LlmAccess =
  /**
   * Through the vendor's LLM proxy, over the hub's PrivateLink endpoint (`llm.<vendorHub.host>`, port 443), with the
   * vendor's provider keys: the plane's `llm-primary` secret holds the proxy token the vendor issued. The proxy
   * enforces the customer's rate limit and token budget and stores and logs no prompt or completion. Needs
   * `vendorHub.endpointService`.
   */
  | { readonly via: 'vendor-proxy' }
  /**
   * Straight to the providers with the customer's own keys (`llm-primary`, `llm-secondary`): the LLM agents may
   * send HTTPS (443) to anywhere. Needs a route out: `egress: nat`, or an existing VPC with one.
   */
  | { readonly via: 'own-keys' };

/** The ways of `LlmAccess`. */
export const LLM_ACCESS_MODES: readonly LlmAccess['via'][] = ['vendor-proxy', 'own-keys'];

/**
 * Container images of a release, each as a full ECR reference pinned by digest:
 * `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:<64 hex>`. Tags are refused: what runs must be
 * exactly what the vendor signed.
 *
 * - REGION must be the stack's region: tasks pull through the VPC's own ECR endpoints, which serve only
 *   their region, and no task may reach the internet. Checked at synth when the stack has a region, by a
 *   CloudFormation rule at deploy time when it has not.
 * - Every task runs on ARM64 (AWS Graviton, `linux/arm64`): each digest must name an arm64 image, or a
 *   multi-architecture index that includes `linux/arm64`. An amd64-only image fails at task start
 *   (`exec format error`).
 */
export interface ReleaseImages {
  /** The agent runtime image every agent runs. */
  readonly agentRuntime: string;
  /** The NATS server image of the leaf node. */
  readonly natsServer: string;
  /** The OpenTelemetry collector image. */
  readonly otelCollector: string;
}

/** The keys of `ReleaseImages`, in the order errors name them. */
export const IMAGE_KEYS: readonly (keyof ReleaseImages)[] = ['agentRuntime', 'natsServer', 'otelCollector'];

export interface DatabaseOptions {
  /**
   * RDS instance type.
   * @default db.t4g.medium
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * Run a standby in a second AZ.
   * @default true
   */
  readonly multiAz?: boolean;
  /**
   * Refuse deletion of the instance (CloudFormation and API) until this is turned off.
   * @default - the value of `retainData`
   */
  readonly deletionProtection?: boolean;
  /**
   * Storage allocated at creation, GiB (20 to 65536).
   * @default 50
   */
  readonly allocatedStorageGiB?: number;
  /**
   * Days of automated backups (1 to 35).
   * @default 7
   */
  readonly backupRetentionDays?: number;
  /**
   * TCP port. PostgreSQL's well-known 5432 is refused.
   * @default 5433
   */
  readonly port?: number;
}

export interface CacheOptions {
  /**
   * ElastiCache node type.
   * @default cache.t4g.small
   */
  readonly nodeType?: string;
  /**
   * Read replicas in other AZs (1 to 5); the primary fails over to one of them.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * TCP port. Redis's well-known 6379 is refused.
   * @default 6380
   */
  readonly port?: number;
  /**
   * Days of automatic snapshots (15 to 35: HIPAA and NIST 800-53 ask for at least 15).
   * @default 15
   */
  readonly snapshotRetentionDays?: number;
}

export interface CustomerPlaneProps {
  /**
   * The customer's identifier: 3 to 20 lower-case letters, digits and single hyphens, starting with a
   * letter. Scopes resource names, the database and key alias, and the customer's NATS subjects.
   */
  readonly customerId: string;

  /** The release's container images, pinned by digest. */
  readonly images: ReleaseImages;

  /**
   * An existing VPC to deploy into (bring-your-own-VPC). Conflicts with `maxAzs`, `vpcCidr` and `egress`:
   * an existing VPC's routing is the customer's own.
   * @default - a new VPC with private isolated subnets only
   */
  readonly vpc?: ec2.IVpc;

  /**
   * Subnets of `vpc` for every workload and data store: at least two AZs, never public subnets.
   * Only with `vpc`.
   * @default - the VPC's isolated subnets, or its private subnets if it has no isolated ones
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * AZs of a new VPC: 2 or 3. Three AZs need a stack with an explicit region.
   * @default 2
   */
  readonly maxAzs?: number;

  /**
   * The AZs of a new VPC by name (2 or 3, e.g. `['eu-west-1a', 'eu-west-1b']`). Give them when the stack
   * has an explicit account and region, so synthesis needs no AWS credentials for an AZ lookup.
   * Conflicts with `maxAzs`.
   * @default - the first `maxAzs` AZs of the region
   */
  readonly availabilityZones?: string[];

  /**
   * IPv4 CIDR of a new VPC, a /16 to /22.
   * @default 10.80.0.0/16
   */
  readonly vpcCidr?: string;

  /**
   * Create the interface endpoints (ECR, CloudWatch Logs, Secrets Manager, KMS, STS) and the S3 gateway
   * endpoint. Turn off only in an existing VPC that already has them with private DNS; tasks then send
   * HTTPS to the VPC's CIDR (where those endpoints are), so their security groups must admit it.
   * @default true
   */
  readonly vpcEndpoints?: boolean;

  /**
   * ID of the region's S3 managed prefix list (`pl-...`, from `aws ec2 describe-managed-prefix-lists`).
   * Tasks send HTTPS outside the VPC only to this list: image layers from S3 through the gateway endpoint.
   * @default - looked up when the stack is deployed, by a custom resource whose Lambda may only call
   *   ec2:DescribeManagedPrefixLists for `com.amazonaws.REGION.s3`; synth needs no AWS credentials.
   */
  readonly s3PrefixListId?: string;

  /**
   * Outbound internet for a new VPC. `EgressMode.NAT` adds public subnets with NAT gateways, but no
   * security group of the plane allows traffic to 0.0.0.0/0: every task still reaches only the VPC
   * endpoints, S3 and its own peers, and a workload that needs the internet must be given its own
   * explicit egress rule.
   * @default EgressMode.NONE
   */
  readonly egress?: EgressMode;

  /**
   * The agents to run.
   * @default - the product's catalog, `AGENT_CATALOG`
   */
  readonly catalog?: readonly AgentSpec[];

  /**
   * The boundary contract: every kind of message that may cross to and from the vendor, with its closed schema, size
   * and rate limit. The leaf's rules, the gateway's checks and the agents' declarations are generated from it, and
   * the stack records it (with its hash) in its template metadata under `Byoc::BoundaryContract`, where signing,
   * `byoc review` and `byoc diff` read it. Checked at synth (`validateContract`): closed field types only, ranges in
   * order, identifier patterns anchored and countable, so the leakage bound stays exact. A vendor with its own product
   * gives its own, and registers its customers with the same contract (`byoc customer add --contract`).
   * @default - the kit's own, `BOUNDARY_CONTRACT`
   */
  readonly contract?: BoundaryContract;

  /**
   * Where the agents' LLM calls go: the vendor's LLM proxy through the hub's PrivateLink endpoint, or the
   * providers with the customer's own keys (needs `egress: nat`). See `LlmAccess`.
   * @default - none: no path to an LLM; the agents' LLM calls fail until one is chosen
   */
  readonly llm?: LlmAccess;

  /**
   * Where the plane's traces and metrics go, always inside the customer's account: by default the collector
   * sends traces to AWS X-Ray and metrics to CloudWatch through the VPC's endpoints; with `otlpEndpoint`
   * (https only, reachable inside the VPC's CIDR, e.g. through an interface endpoint of the customer's own
   * endpoint service), to the customer's own OTLP/HTTP endpoint instead.
   * @default - X-Ray and CloudWatch
   */
  readonly telemetry?: CollectorExportOptions;

  /**
   * PostgreSQL settings.
   * @default - see each option
   */
  readonly database?: DatabaseOptions;

  /**
   * Redis settings.
   * @default - see each option
   */
  readonly cache?: CacheOptions;

  /**
   * Share anonymised pattern fingerprints with the vendor. Off, fingerprints are absent from the leaf's
   * rules and the gateway's contract, not merely filtered; control messages still arrive.
   * @default true
   */
  readonly shareLearning?: boolean;

  /**
   * The vendor hub the NATS leaf connects to, outbound only, as the vendor issued it at registration: its
   * DNS name (the name on its certificate), leaf-node port, CA certificate, and its VPC endpoint service.
   * PrivateLink is the default path; without `endpointService`, give the hub's `cidrs` and `egress: nat`
   * (or an existing VPC with a route to them). The leaf reaches exactly this address and port, and accepts
   * only a certificate for `host` issued by this CA.
   */
  readonly vendorHub: VendorHub;

  /**
   * Keep the data when the stack is deleted: the database and cache end in a final snapshot, the file
   * system, key, secrets and logs are retained, deletion protection is on and an AWS Backup plan runs
   * daily into a retained vault. Off, `cdk destroy` removes everything the plane created.
   * @default false
   */
  readonly retainData?: boolean;

  /**
   * Retention of every log group of the plane.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Create `RDSOSMetrics`, the log group RDS enhanced monitoring writes to, encrypted with the plane's
   * key, with `logRetention`, and removed by `cdk destroy` unless `retainData`. It is one log group per
   * account and region, shared by every RDS instance there: set this only where no other RDS instance
   * uses enhanced monitoring and the log group does not exist yet (deploy fails if it does, and a
   * destroy would delete the other instances' OS metrics). Off, RDS creates it on first use (encrypted
   * with an AWS-owned key, 30 days retention) and `cdk destroy` leaves it behind.
   * @default false
   */
  readonly createRdsOsMetricsLogGroup?: boolean;

  /**
   * Where the plane's alarms go besides its own SNS topic (`byoc-<customerId>-alarms`, encrypted with the plane's
   * key): an e-mail address subscribed to it, and/or an existing topic of the customer's.
   * @default - the plane's topic only; subscribe to it after the deploy
   */
  readonly alarms?: AlarmOptions;

  /**
   * Fargate capacity of the agents. With `spot`, every agent the catalog marks `interruptible` runs on Fargate Spot
   * (after `onDemandBase` on-demand tasks each); the leaf, the gateway, the collector and every other agent stay
   * on-demand. Fargate Spot runs X86_64 tasks only, so those agents run on X86_64 instead of ARM64: `images.agentRuntime`
   * must then be a multi-architecture index with linux/amd64 and linux/arm64 (an arm64-only image fails at task start,
   * and the deployment circuit breaker rolls back).
   * @default - every task on-demand, ARM64
   */
  readonly capacity?: CapacityOptions;

  /**
   * Business hours: outside these weekly windows (in `timeZone`, and all day on `holidays`) the request and event
   * agents scale to zero, and back to one task `warmUpMinutes` before a window opens (Application Auto Scaling
   * scheduled actions). Scheduled agents, the leaf, the gateway, the collector and the data stores never scale to zero.
   * @default - every agent runs always
   */
  readonly schedule?: BusinessHours;
  /**
   * Agents' task counts: event agents run no task until their backlog (the gateway's `BYOC/Plane AgentBacklog`
   * metric) is above zero and go back to zero after `idleMinutes` without work; request agents keep `requestFloor`
   * tasks. With `schedule`, both apply inside the windows only. The leaf and the gateway never scale.
   * @default - every agent runs one task
   */
  readonly scaling?: ScalingOptions;
}

/** Fargate capacity of the agents (see `CustomerPlaneProps.capacity`). */
export interface CapacityOptions {
  /**
   * Run the interruptible agents on Fargate Spot.
   * @default false
   */
  readonly spot?: boolean;
  /**
   * With `spot`: tasks of each such agent that run on-demand before any runs on Spot (0 to 10).
   * @default 0
   */
  readonly onDemandBase?: number;
}

/** The props with every default applied. */
export interface ResolvedProps {
  readonly customerId: string;
  readonly images: ReleaseImages;
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly maxAzs: number;
  readonly availabilityZones?: string[];
  readonly vpcCidr: string;
  readonly vpcEndpoints: boolean;
  readonly s3PrefixListId?: string;
  readonly egress: EgressMode;
  readonly catalog: readonly AgentSpec[];
  readonly contract: BoundaryContract;
  readonly llm?: LlmAccess;
  readonly telemetry: CollectorExportOptions;
  readonly database: Required<DatabaseOptions>;
  readonly cache: Required<CacheOptions>;
  readonly retainData: boolean;
  readonly logRetention: logs.RetentionDays;
  readonly shareLearning: boolean;
  readonly vendorHub: VendorHub;
  readonly createRdsOsMetricsLogGroup: boolean;
  readonly alarms: AlarmOptions;
  readonly capacity: Required<CapacityOptions>;
  readonly schedule?: ResolvedBusinessHours;
  readonly scaling?: ResolvedScaling;
}

/** Most agents one group (one nested stack) may hold: 10 resources each stays far below 500 per stack. */
export const MAX_AGENTS_PER_GROUP = 40;

const IMAGE_REF = /^(\d{12})\.dkr\.ecr\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?\/([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)@sha256:([0-9a-f]{64})$/;

/** A parsed image reference. */
export interface ImageRef {
  readonly account: string;
  readonly region: string;
  readonly repository: string;
  readonly digest: string;
}

/** Parses `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:HEX`, or throws naming `prop`. */
export function parseImageRef(prop: string, ref: string): ImageRef {
  const m = IMAGE_REF.exec(ref);
  if (!m) {
    const byTag = /^[^@]+:[^/@]+$/.test(ref);
    throw new PropError(prop, byTag ? `"${ref}" names an image by tag` : `"${ref}" is not an ECR image reference pinned by digest`,
      'give ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:<64 hex digits> (the digest the release was built and signed with)');
  }
  return { account: m[1], region: m[2], repository: m[3], digest: `sha256:${m[4]}` };
}

/** RFC 1918 private IPv4 ranges, as [first address as a number, prefix length]. */
const PRIVATE_RANGES: readonly [number, number, string][] = [
  [0x0a000000, 8, '10.0.0.0/8'], [0xac100000, 12, '172.16.0.0/12'], [0xc0a80000, 16, '192.168.0.0/16'],
];

/**
 * What is wrong with `cidr` as the range of a new VPC, or undefined: it must be an IPv4 CIDR of prefix
 * `minPrefix` to `maxPrefix`, with no host bits set (`10.80.5.0/16` would silently become another network),
 * inside an RFC 1918 private range when `privateOnly`.
 */
export function cidrProblem(cidr: string, minPrefix: number, maxPrefix: number, privateOnly: boolean): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const prefix = m ? Number(m[5]) : NaN;
  if (!m || octets.some((o) => o > 255) || prefix < minPrefix || prefix > maxPrefix) return `"${cidr}" is not an IPv4 CIDR from /${minPrefix} to /${maxPrefix}`;
  const address = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  if (network !== address) {
    const n = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.');
    return `"${cidr}" has host bits set: the network it names is ${n}/${prefix}`;
  }
  if (privateOnly && !PRIVATE_RANGES.some(([start, bits]) => prefix >= bits && Math.floor(address / 2 ** (32 - bits)) === start / 2 ** (32 - bits))) {
    return `"${cidr}" is not a private range (RFC 1918: ${PRIVATE_RANGES.map((r) => r[2]).join(', ')})`;
  }
  return undefined;
}

/**
 * How the props differ from the configuration file's settings, for the messages of `checkSchema`: the file's
 * `logRetentionDays` is the prop `logRetention`, and where the API takes another type or syntax the fix says it.
 */
const PROP_NAMES: PropNames = {
  rename: { logRetentionDays: 'logRetention' },
  fixes: {
    'logRetentionDays': 'use a logs.RetentionDays value other than INFINITE, such as ONE_YEAR',
    'database.instanceType': 'give an RDS instance type such as ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM)',
    'llm.via': `use ${LLM_ACCESS_MODES.map((m) => `{ via: '${m}' }`).join(' or ')}, or leave llm out`,
  },
};

/**
 * The props against the configuration file's schema (`customerPlaneConfigSchema`), whole: types, ranges,
 * patterns, enums and required values, each failing with the schema node's own problem and fix, as the file's
 * user gets them (`checkPropsWithSchema`; tokens are left out). The props are given as the settings they are:
 * - `database.instanceType`, an `ec2.InstanceType`, as its RDS name `db.<class>.<size>` (the fix names the API);
 * - `logRetention`, a `logs.RetentionDays` (days), as `logRetentionDays`;
 * - a string `telemetry.otlpEndpoint` is left to `otlpEndpointProblem`, whose messages say what is wrong
 *   (`is not https`, `carries credentials`); another type is the schema's;
 * - `vpc` and `vpcSubnets` (constructs; the file's `existingVpc` has another shape), `catalog` and `contract`
 *   (not settings of the file: `catalogProblems` and `validateContract` check them) are left out.
 */
function checkSchema(props: CustomerPlaneProps): void {
  const { instanceType, ...database } = props.database ?? {};
  const otlpEndpoint = props.telemetry?.otlpEndpoint;
  checkPropsWithSchema(configSchemaErrors, {
    customerId: props.customerId, images: props.images, maxAzs: props.maxAzs, availabilityZones: props.availabilityZones,
    vpcCidr: props.vpcCidr, vpcEndpoints: props.vpcEndpoints, s3PrefixListId: props.s3PrefixListId, egress: props.egress,
    llm: props.llm, telemetry: typeof otlpEndpoint === 'string' ? { ...props.telemetry, otlpEndpoint: undefined } : props.telemetry,
    database: props.database === null || typeof props.database !== 'object' ? props.database : {
      ...database,
      // Its name as the file gives it; a name holding a token is left out with the other tokens.
      instanceType: instanceType instanceof ec2.InstanceType ? `db.${instanceType.toString()}` : instanceType,
    },
    cache: props.cache, shareLearning: props.shareLearning, vendorHub: props.vendorHub, retainData: props.retainData, logRetentionDays: props.logRetention,
    createRdsOsMetricsLogGroup: props.createRdsOsMetricsLogGroup, alarms: props.alarms, capacity: props.capacity, schedule: props.schedule, scaling: props.scaling,
  }, 'customer plane', PROP_NAMES);
}

/** Validates the props and applies the defaults. Every error names the prop and the fix. */
export function resolveProps(props: CustomerPlaneProps): ResolvedProps {
  checkSchema(props);
  const imageRegions = IMAGE_KEYS.map((key) => parseImageRef(`images.${key}`, props.images[key] ?? '').region);
  const other = imageRegions.findIndex((r) => r !== imageRegions[0]);
  if (other > 0) {
    throw new PropError(`images.${IMAGE_KEYS[other]}`, `is in ${imageRegions[other]}, images.${IMAGE_KEYS[0]} in ${imageRegions[0]}`,
      'give every image of the release from the ECR of the region the stack deploys to: tasks pull only through that region\'s endpoints');
  }

  if (props.vpc) {
    const conflicts = (['maxAzs', 'availabilityZones', 'vpcCidr', 'egress'] as const).filter((k) => props[k] !== undefined);
    if (conflicts.length > 0) {
      throw new PropError(conflicts.join(', '), `set together with 'vpc'`, `remove ${conflicts.join(' and ')}: they shape a new VPC, and an existing VPC's layout is its owner's`);
    }
    if (props.vpcSubnets?.subnetType === ec2.SubnetType.PUBLIC) {
      throw new PropError('vpcSubnets', 'selects public subnets', 'select private or isolated subnets: nothing of the plane may sit in a public subnet');
    }
  } else if (props.vpcSubnets) {
    throw new PropError('vpcSubnets', 'set without \'vpc\'', 'remove vpcSubnets, or give the existing vpc they belong to');
  }

  if (props.availabilityZones) {
    if (props.maxAzs !== undefined) throw new PropError('maxAzs, availabilityZones', 'both set', 'give either the number of AZs or their names');
    const azs = props.availabilityZones;
    const regions = [...new Set(azs.filter((az) => !Token.isUnresolved(az)).map((az) => az.slice(0, -1)))];
    if (regions.length > 1) {
      throw new PropError('availabilityZones', `${JSON.stringify(azs)} are AZs of ${regions.join(' and ')}`, 'give AZs of the one region the stack deploys to');
    }
  }
  const maxAzs = props.availabilityZones?.length ?? props.maxAzs ?? 2;
  const vpcCidr = props.vpcCidr ?? '10.80.0.0/16';
  const cidrProblemText = Token.isUnresolved(vpcCidr) ? undefined : cidrProblem(vpcCidr, 16, 22, true);
  if (cidrProblemText) throw new PropError('vpcCidr', cidrProblemText, 'give a private network address such as 10.80.0.0/16 (a /16 to /22 in 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, host bits zero)');
  const egress = props.egress ?? EgressMode.NONE;

  const contract = props.contract === undefined ? BOUNDARY_CONTRACT : validateContract(props.contract, 'contract');
  const catalog = props.catalog ?? AGENT_CATALOG;
  const problems = catalogProblems(catalog, contract);
  if (problems.length > 0) {
    const p = problems[0];
    throw new PropError(p.field, p.problem + (problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''), p.fix);
  }
  const groups = new Map<string, number>();
  for (const a of catalog) groups.set(a.group, (groups.get(a.group) ?? 0) + 1);
  for (const [group, count] of groups) {
    if (count > MAX_AGENTS_PER_GROUP) {
      throw new PropError('catalog', `group "${group}" has ${count} agents, more than the ${MAX_AGENTS_PER_GROUP} one nested stack holds`,
        'split the group: give some of its agents a new group name');
    }
  }

  const retainData = props.retainData ?? false;
  const db = props.database ?? {};
  const database: Required<DatabaseOptions> = {
    instanceType: db.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MEDIUM),
    multiAz: db.multiAz ?? true,
    deletionProtection: db.deletionProtection ?? true,
    allocatedStorageGiB: db.allocatedStorageGiB ?? 50,
    backupRetentionDays: db.backupRetentionDays ?? 7,
    port: db.port ?? 5433,
  };
  if (database.port === 5432) throw new PropError('database.port', '5432 is PostgreSQL\'s well-known port', 'choose another port, such as the default 5433');

  const c = props.cache ?? {};
  const cache: Required<CacheOptions> = {
    nodeType: c.nodeType ?? 'cache.t4g.small',
    replicas: c.replicas ?? 1,
    port: c.port ?? 6380,
    snapshotRetentionDays: c.snapshotRetentionDays ?? 15,
  };
  if (cache.port === 6379) throw new PropError('cache.port', '6379 is Redis\'s well-known port', 'choose another port, such as the default 6380');

  const vendorHub = resolveVendorHub(props.vendorHub, !!props.vpc, egress);
  const llm = resolveLlm(props.llm, vendorHub, !!props.vpc, egress);
  const otlpEndpoint = props.telemetry?.otlpEndpoint;
  const otlpProblem = otlpEndpoint === undefined || Token.isUnresolved(otlpEndpoint) ? undefined : otlpEndpointProblem(otlpEndpoint);
  if (otlpProblem) throw new PropError('telemetry.otlpEndpoint', otlpProblem, 'give the https:// URL of your own OTLP/HTTP endpoint, such as https://otlp.observability.example.internal:4318, or leave telemetry out (X-Ray and CloudWatch)');

  const logRetention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;

  return {
    customerId: props.customerId,
    images: props.images,
    vpc: props.vpc,
    vpcSubnets: props.vpcSubnets,
    maxAzs,
    availabilityZones: props.availabilityZones,
    vpcCidr,
    vpcEndpoints: props.vpcEndpoints ?? true,
    s3PrefixListId: props.s3PrefixListId,
    egress,
    catalog,
    contract,
    llm,
    telemetry: otlpEndpoint === undefined ? {} : { otlpEndpoint },
    database,
    cache,
    retainData,
    logRetention,
    shareLearning: props.shareLearning ?? true,
    vendorHub,
    createRdsOsMetricsLogGroup: props.createRdsOsMetricsLogGroup ?? false,
    alarms: props.alarms === undefined ? {} : { email: props.alarms.email, topicArn: props.alarms.topicArn },
    capacity: resolveCapacity(props.capacity),
    schedule: props.schedule === undefined ? undefined : resolveBusinessHours('schedule', props.schedule),
    scaling: props.scaling === undefined ? undefined : resolveScaling('scaling', props.scaling),
  };
}

/** Validates `capacity`: `onDemandBase` only with `spot`. */
function resolveCapacity(capacity: CapacityOptions | undefined): Required<CapacityOptions> {
  const spot = capacity?.spot ?? false;
  const onDemandBase = capacity?.onDemandBase ?? 0;
  if (capacity?.onDemandBase !== undefined && !spot) {
    throw new PropError('capacity.onDemandBase', 'set without capacity.spot: true', 'set capacity.spot to true, or remove onDemandBase (without Spot every task is on-demand)');
  }
  return { spot, onDemandBase };
}

/** Validates `llm`: each way must have its path (the hub's endpoint service, or a route out). */
function resolveLlm(llm: LlmAccess | undefined, hub: VendorHub, existingVpc: boolean, egress: EgressMode): LlmAccess | undefined {
  if (llm === undefined) return undefined;
  if (llm.via === 'vendor-proxy' && hub.endpointService === undefined) {
    throw new PropError('llm', 'vendor-proxy without vendorHub.endpointService: the proxy is reached only through the hub\'s PrivateLink endpoint',
      'give vendorHub.endpointService, or use { via: \'own-keys\' } with egress: nat');
  }
  if (llm.via === 'own-keys' && !existingVpc && egress !== EgressMode.NAT) {
    throw new PropError('llm', 'own-keys with egress: none: the plane\'s VPC has no route to the providers',
      'set egress: nat, or use { via: \'vendor-proxy\' } (the vendor\'s proxy through the hub\'s PrivateLink endpoint)');
  }
  return { via: llm.via };
}

const DNS_NAME = /^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** Validates the vendor hub: every way the link could fail to come up is a synth error naming the setting. */
function resolveVendorHub(hub: VendorHub, existingVpc: boolean, egress: EgressMode): VendorHub {
  if (!DNS_NAME.test(hub.host) || /\.vpce\.amazonaws\.com$/.test(hub.host)) {
    throw new PropError('vendorHub.host', `"${hub.host}" is not the hub's DNS name`, 'give the name on the hub\'s TLS certificate, e.g. hub.byoc.vendor.example (not an IP address and not a vpce-... endpoint name, which no certificate names)');
  }
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(hub.caCertificatePem ?? '');
  } catch {
    throw new PropError('vendorHub.caCertificatePem', 'is not a PEM X.509 certificate', 'give the PEM of the CA that issued the hub\'s certificate (the vendor publishes it with the hub address)');
  }
  if (!ca.ca) throw new PropError('vendorHub.caCertificatePem', `"${ca.subject.replace(/\n/g, ', ')}" is not a CA certificate`, 'give the certificate of the CA that issued the hub\'s certificate, not the hub\'s own');
  if (hub.endpointService !== undefined) {
    if (!Token.isUnresolved(hub.endpointService) && !/^com\.amazonaws\.vpce\.[a-z0-9-]+\.vpce-svc-[0-9a-f]{17}$/.test(hub.endpointService)) {
      throw new PropError('vendorHub.endpointService', `"${hub.endpointService}" is not a VPC endpoint service name`, 'give the name the vendor published, com.amazonaws.vpce.REGION.vpce-svc-<17 hex>');
    }
    if (hub.cidrs !== undefined) throw new PropError('vendorHub.cidrs', 'set together with endpointService', 'remove cidrs: through PrivateLink the leaf reaches the hub at its endpoint, nowhere else');
  } else {
    if (!hub.cidrs || hub.cidrs.length === 0) {
      throw new PropError('vendorHub.endpointService', 'missing, and no vendorHub.cidrs either: the leaf would have no path to the hub', 'give the vendor\'s endpoint service (PrivateLink, the default), or the hub\'s public addresses in vendorHub.cidrs with egress: nat');
    }
    for (const cidr of hub.cidrs) {
      const m = CIDR.exec(cidr);
      if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) < 16 || Number(m[5]) > 32) {
        throw new PropError('vendorHub.cidrs', `"${cidr}" is not an IPv4 CIDR from /16 to /32`, 'give the hub\'s addresses as the vendor published them, e.g. 203.0.113.10/32');
      }
    }
    if (!existingVpc && egress !== EgressMode.NAT) {
      throw new PropError('vendorHub.cidrs', 'given without egress: nat, in a VPC with no route out', 'set egress: nat, or use the vendor\'s endpoint service (vendorHub.endpointService) instead');
    }
  }
  return { ...hub, cidrs: hub.cidrs ? [...hub.cidrs] : undefined };
}
