import { settingError } from '../errors';

/**
 * The pinned price table `byoc cost` estimates with: on-demand list prices in USD, per region, of what the two
 * planes' templates contain. Every price names the AWS pricing page it comes from and the date it was read.
 *
 * The table was written on PRICE_TABLE_DATE from AWS's published prices as known on that date; the machine that
 * wrote it could not reach AWS, so the figures were not fetched from the pages they name. Check them against
 * the source pages (and replace the date) before quoting a figure to a customer. Fargate Spot prices move with
 * spare capacity: the Spot figures are representative (about 70% below on-demand), not a quote.
 */
export const PRICE_TABLE_DATE = '2026-11-23';

/** One price: what it costs, per what, where it was read and when. */
export interface Price {
  /** US dollars per `unit`. */
  readonly usd: number;
  /** What one unit is, e.g. `vCPU-hour`, `GB-month`, `key-month`. */
  readonly unit: string;
  /** The AWS pricing page the price is read from. */
  readonly source: string;
  /** The date it was read (ISO 8601 date). */
  readonly date: string;
  readonly note?: string;
}

/** Fargate rates of one CPU architecture (Linux). */
export interface FargateRates {
  readonly vcpuHour: Price;
  readonly gbHour: Price;
  /** Ephemeral storage above the 20 GiB included. */
  readonly ephemeralGbHour: Price;
}

/** The prices of one region. */
export interface RegionPrices {
  readonly region: string;
  readonly fargate: {
    readonly onDemand: { readonly X86_64: FargateRates; readonly ARM64: FargateRates };
    /** Fargate Spot runs Linux X86_64 tasks only (no ARM64, no Windows). */
    readonly spotX86_64: FargateRates;
  };
  readonly interfaceEndpointAzHour: Price;
  readonly interfaceEndpointGb: Price;
  readonly natGatewayHour: Price;
  readonly natGatewayGb: Price;
  readonly publicIpv4Hour: Price;
  readonly nlbHour: Price;
  readonly nlbLcuHour: Price;
  /** RDS for PostgreSQL on-demand instances by class, one AZ and Multi-AZ (one standby). */
  readonly rdsPostgres: Readonly<Record<string, { readonly singleAz: Price; readonly multiAz: Price }>>;
  /** RDS gp2/gp3 storage (gp3 at its 3,000 IOPS and 125 MiB/s baseline). */
  readonly rdsStorageGbMonth: { readonly singleAz: Price; readonly multiAz: Price };
  /** ElastiCache for Redis OSS on-demand nodes by node type. */
  readonly elasticacheRedis: Readonly<Record<string, Price>>;
  readonly efsStandardGbMonth: Price;
  readonly efsElasticReadGb: Price;
  readonly efsElasticWriteGb: Price;
  readonly logsIngestGb: Price;
  /** CloudWatch metrics (what Container Insights publishes is billed as custom metrics). */
  readonly metricMonth: Price;
  readonly alarmMonth: Price;
  readonly dashboardMonth: Price;
  readonly kmsKeyMonth: Price;
  readonly secretMonth: Price;
  readonly hostedZoneMonth: Price;
  readonly dynamoDbWriteMillion: Price;
  readonly dynamoDbReadMillion: Price;
  readonly dynamoDbGbMonth: Price;
  readonly dynamoDbPitrGbMonth: Price;
}

const SOURCES = {
  fargate: 'https://aws.amazon.com/fargate/pricing/',
  privatelink: 'https://aws.amazon.com/privatelink/pricing/',
  vpc: 'https://aws.amazon.com/vpc/pricing/',
  elb: 'https://aws.amazon.com/elasticloadbalancing/pricing/',
  rds: 'https://aws.amazon.com/rds/postgresql/pricing/',
  elasticache: 'https://aws.amazon.com/elasticache/pricing/',
  efs: 'https://aws.amazon.com/efs/pricing/',
  cloudwatch: 'https://aws.amazon.com/cloudwatch/pricing/',
  kms: 'https://aws.amazon.com/kms/pricing/',
  secrets: 'https://aws.amazon.com/secrets-manager/pricing/',
  route53: 'https://aws.amazon.com/route53/pricing/',
  dynamodb: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
} as const;

const price = (usd: number, unit: string, source: keyof typeof SOURCES, note?: string): Price =>
  ({ usd, unit, source: SOURCES[source], date: PRICE_TABLE_DATE, ...(note ? { note } : {}) });

const SPOT_NOTE = 'Fargate Spot price of the table\'s date, representative: Spot prices move with spare capacity';

function fargate(vcpu: number, gb: number, ephemeral: number, note?: string): FargateRates {
  return { vcpuHour: price(vcpu, 'vCPU-hour', 'fargate', note), gbHour: price(gb, 'GB-hour', 'fargate', note), ephemeralGbHour: price(ephemeral, 'GB-hour', 'fargate') };
}

/** RDS for PostgreSQL, Multi-AZ (one standby) at twice the single-AZ rate, as the pricing page lists it. */
function rds(classes: Record<string, number>): RegionPrices['rdsPostgres'] {
  return Object.fromEntries(Object.entries(classes).map(([c, usd]) => [c, { singleAz: price(usd, 'instance-hour', 'rds'), multiAz: price(usd * 2, 'instance-hour', 'rds', 'Multi-AZ deployment (one standby)') }]));
}

function redis(nodes: Record<string, number>): RegionPrices['elasticacheRedis'] {
  return Object.fromEntries(Object.entries(nodes).map(([n, usd]) => [n, price(usd, 'node-hour', 'elasticache', 'Redis OSS, on-demand')]));
}

interface RegionFigures {
  fargateX86: [number, number, number];
  fargateArm: [number, number];
  spotX86: [number, number];
  endpoint: [number, number];
  nat: number;
  nlb: [number, number];
  rds: Record<string, number>;
  rdsStorage: number;
  redis: Record<string, number>;
  efs: [number, number, number];
  logs: number;
  dynamodb: [number, number, number, number];
}

function region(name: string, f: RegionFigures): RegionPrices {
  return {
    region: name,
    fargate: {
      onDemand: {
        X86_64: fargate(f.fargateX86[0], f.fargateX86[1], f.fargateX86[2], 'Linux/X86, on-demand'),
        ARM64: fargate(f.fargateArm[0], f.fargateArm[1], f.fargateX86[2], 'Linux/ARM (Graviton), on-demand'),
      },
      spotX86_64: fargate(f.spotX86[0], f.spotX86[1], f.fargateX86[2], SPOT_NOTE),
    },
    interfaceEndpointAzHour: price(f.endpoint[0], 'endpoint-AZ-hour', 'privatelink', 'interface endpoint, each AZ it is in'),
    interfaceEndpointGb: price(f.endpoint[1], 'GB processed', 'privatelink', 'first PB a month'),
    natGatewayHour: price(f.nat, 'NAT-gateway-hour', 'vpc'),
    natGatewayGb: price(f.nat, 'GB processed', 'vpc'),
    publicIpv4Hour: price(0.005, 'address-hour', 'vpc', 'public IPv4 address (an Elastic IP, in use or not)'),
    nlbHour: price(f.nlb[0], 'NLB-hour', 'elb'),
    nlbLcuHour: price(f.nlb[1], 'NLCU-hour', 'elb'),
    rdsPostgres: rds(f.rds),
    rdsStorageGbMonth: { singleAz: price(f.rdsStorage, 'GB-month', 'rds', 'gp2/gp3 storage, single-AZ'), multiAz: price(f.rdsStorage * 2, 'GB-month', 'rds', 'gp2/gp3 storage, Multi-AZ') },
    elasticacheRedis: redis(f.redis),
    efsStandardGbMonth: price(f.efs[0], 'GB-month', 'efs', 'Standard storage class'),
    efsElasticReadGb: price(f.efs[1], 'GB read', 'efs', 'Elastic Throughput reads'),
    efsElasticWriteGb: price(f.efs[2], 'GB written', 'efs', 'Elastic Throughput writes'),
    logsIngestGb: price(f.logs, 'GB ingested', 'cloudwatch', 'CloudWatch Logs Standard ingestion (also vended logs, first 10 TB)'),
    metricMonth: price(0.3, 'metric-month', 'cloudwatch', 'custom metrics (Container Insights), first 10,000, pro rata by the hour a metric is published'),
    alarmMonth: price(0.1, 'alarm-month', 'cloudwatch', 'standard-resolution metric alarm'),
    dashboardMonth: price(3, 'dashboard-month', 'cloudwatch', 'past the first 3 dashboards of an account'),
    kmsKeyMonth: price(1, 'key-month', 'kms', 'customer managed key, symmetric or asymmetric'),
    secretMonth: price(0.4, 'secret-month', 'secrets'),
    hostedZoneMonth: price(0.5, 'hosted-zone-month', 'route53', 'first 25 hosted zones'),
    dynamoDbWriteMillion: price(f.dynamodb[0], 'million write request units', 'dynamodb'),
    dynamoDbReadMillion: price(f.dynamodb[1], 'million read request units', 'dynamodb'),
    dynamoDbGbMonth: price(f.dynamodb[2], 'GB-month', 'dynamodb', 'Standard table class, past the first 25 GB free a month'),
    dynamoDbPitrGbMonth: price(f.dynamodb[3], 'GB-month', 'dynamodb', 'continuous backups (point-in-time recovery)'),
  };
}

const US = {
  fargateX86: [0.04048, 0.004445, 0.000111],
  fargateArm: [0.03238, 0.00356],
  spotX86: [0.012144, 0.0013335],
  endpoint: [0.01, 0.01],
  nat: 0.045,
  nlb: [0.0225, 0.006],
  rds: { 'db.t4g.micro': 0.016, 'db.t4g.small': 0.032, 'db.t4g.medium': 0.065, 'db.t4g.large': 0.129, 'db.m6g.large': 0.159, 'db.r6g.large': 0.225 },
  rdsStorage: 0.115,
  redis: { 'cache.t4g.micro': 0.016, 'cache.t4g.small': 0.032, 'cache.t4g.medium': 0.065, 'cache.m7g.large': 0.158, 'cache.r7g.large': 0.219 },
  efs: [0.30, 0.03, 0.06],
  logs: 0.50,
  dynamodb: [0.625, 0.125, 0.25, 0.20],
} satisfies RegionFigures;

/** The regions the table covers. */
export const PRICES: Readonly<Record<string, RegionPrices>> = {
  'us-east-1': region('us-east-1', US),
  'us-west-2': region('us-west-2', US),
  'eu-west-1': region('eu-west-1', {
    fargateX86: [0.04048, 0.004445, 0.000111],
    fargateArm: [0.03238, 0.00356],
    spotX86: [0.012144, 0.0013335],
    endpoint: [0.011, 0.01],
    nat: 0.048,
    nlb: [0.0252, 0.006],
    rds: { 'db.t4g.micro': 0.017, 'db.t4g.small': 0.034, 'db.t4g.medium': 0.068, 'db.t4g.large': 0.136, 'db.m6g.large': 0.168, 'db.r6g.large': 0.25 },
    rdsStorage: 0.127,
    redis: { 'cache.t4g.micro': 0.018, 'cache.t4g.small': 0.036, 'cache.t4g.medium': 0.072, 'cache.m7g.large': 0.175, 'cache.r7g.large': 0.243 },
    efs: [0.33, 0.033, 0.066],
    logs: 0.57,
    dynamodb: [0.7063, 0.1413, 0.283, 0.2264],
  }),
  'eu-central-1': region('eu-central-1', {
    fargateX86: [0.04656, 0.00511, 0.000122],
    fargateArm: [0.03725, 0.00409],
    spotX86: [0.013968, 0.001533],
    endpoint: [0.012, 0.01],
    nat: 0.052,
    nlb: [0.027, 0.006],
    rds: { 'db.t4g.micro': 0.018, 'db.t4g.small': 0.036, 'db.t4g.medium': 0.072, 'db.t4g.large': 0.144, 'db.m6g.large': 0.178, 'db.r6g.large': 0.263 },
    rdsStorage: 0.137,
    redis: { 'cache.t4g.micro': 0.019, 'cache.t4g.small': 0.037, 'cache.t4g.medium': 0.074, 'cache.m7g.large': 0.182, 'cache.r7g.large': 0.252 },
    efs: [0.36, 0.036, 0.072],
    logs: 0.63,
    dynamodb: [0.7625, 0.1525, 0.306, 0.2448],
  }),
};

/** The prices of a region; a region the table does not cover is a one-line error naming it. */
export function pricesFor(regionName: string): RegionPrices {
  const p = PRICES[regionName];
  if (!p) {
    throw settingError('--region', `region "${regionName}" is not in the price table of ${PRICE_TABLE_DATE} (lib/cost/prices.ts)`,
      `use one of ${Object.keys(PRICES).join(', ')}, or add the region's prices to lib/cost/prices.ts with their source and date`);
  }
  return p;
}

/** Every price of the table with its path (e.g. `eu-west-1.rdsPostgres.db.t4g.medium.multiAz`). */
export function allPrices(): { path: string; price: Price }[] {
  const out: { path: string; price: Price }[] = [];
  const walk = (at: string, v: unknown): void => {
    if (v && typeof v === 'object' && 'usd' in v && 'source' in v) out.push({ path: at, price: v as Price });
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(at ? `${at}.${k}` : k, x);
  };
  for (const [name, p] of Object.entries(PRICES)) walk(name, { ...p, region: undefined });
  return out;
}
