import { BOUNDARY_CONTRACT, BoundaryContract, contractHash, METRIC_ATTRIBUTES, METRIC_NAMES } from '../lib/boundary-contract';

/** Port of the collector's `health_check` extension, bound to 127.0.0.1 (ADOT's `/healthcheck` probes it there). */
export const COLLECTOR_HEALTH_PORT = 13133;

/** OTLP/HTTP port of the collector (JSON or protobuf over HTTP). */
export const OTLP_HTTP_PORT = 4318;

/**
 * The collector distribution the configuration is written for: the AWS Distro for OpenTelemetry (ADOT)
 * collector, whose image the release mirrors into `byoc/otel-collector` and pins by digest. Its components
 * (`pkg/defaultcomponents/defaults.go` of aws-observability/aws-otel-collector at this version) are the only
 * ones the configuration may name: an unknown component stops the collector at start. Notably it has the
 * `awsxray` and `awsemf` exporters, but no `transform` processor.
 */
export const ADOT_COLLECTOR = {
  version: 'v0.49.0',
  image: 'public.ecr.aws/aws-observability/aws-otel-collector',
  components: {
    receivers: ['awsecscontainermetrics', 'awscontainerinsightreceiver', 'awsxray', 'statsd', 'prometheus', 'kafka', 'jaeger', 'zipkin', 'otlp', 'filelog'],
    processors: ['groupbytrace', 'tail_sampling', 'attributes', 'resource', 'probabilistic_sampler', 'span', 'filter', 'metricstransform',
      'resourcedetection', 'experimental_metricsgeneration', 'cumulativetodelta', 'deltatorate', 'batch', 'memory_limiter', 'k8sattributes'],
    exporters: ['awsemf', 'prometheusremotewrite', 'prometheus', 'file', 'kafka', 'debug', 'otlp', 'otlphttp', 'awsxray', 'loadbalancing', 'awscloudwatchlogs'],
    extensions: ['awsproxy', 'ecs_observer', 'health_check', 'pprof', 'sigv4auth', 'zpages', 'file_storage'],
  },
} as const;

/**
 * Variables the collector's task gives it, expanded by the collector in its configuration (`${env:NAME}`):
 * the region of the AWS exporters and the log group the metrics are written to (embedded metric format).
 */
export const COLLECTOR_ENV = { region: 'AWS_REGION', metricsLogGroup: 'BYOC_METRICS_LOG_GROUP' } as const;

/** The CloudWatch namespace of the agents' metrics. */
export const METRICS_NAMESPACE = 'BYOC/Agents';

/** Where the collector sends the plane's traces and metrics: always inside the customer's account. */
export interface CollectorExportOptions {
  /**
   * The customer's own OTLP/HTTP endpoint (`https://...`, without the `/v1/...` path): traces and metrics go
   * there, and to nothing else.
   * @default - traces to AWS X-Ray, metrics to CloudWatch (embedded metric format in `COLLECTOR_ENV.metricsLogGroup`)
   */
  readonly otlpEndpoint?: string;
}

/** The collector's configuration as an object (see `collectorConfig`). */
export interface CollectorConfig {
  readonly receivers: Record<string, unknown>;
  readonly processors: Record<string, unknown>;
  readonly exporters: Record<string, unknown>;
  readonly extensions: Record<string, unknown>;
  readonly service: {
    readonly extensions: string[];
    readonly telemetry: unknown;
    readonly pipelines: Record<string, { readonly receivers: string[]; readonly processors: string[]; readonly exporters: string[] }>;
  };
}

const env = (name: string) => `\${env:${name}}`;
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The collector's pipelines, generated from the boundary contract:
 *
 * - **traces**: OTLP from the agents to AWS X-Ray (`awsxray`), or to the customer's own endpoint.
 * - **metrics**: only the contract's metric names (`filter/contract-metrics`), on each data point only the
 *   contract's attributes (`metricstransform/contract-attributes`: points are re-aggregated over the kept
 *   attributes, so a dropped attribute cannot split a series), to CloudWatch (`awsemf`), or to the customer's
 *   own endpoint.
 * - **no logs pipeline**: the receiver refuses OTLP logs; the agents log to stdout, which ECS writes to each
 *   agent's own log group.
 *
 * Every exporter writes into the customer's account (or to the customer's endpoint); none goes to the vendor.
 * The contract's metrics cross to the vendor only as signed `metrics` messages through the boundary gateway.
 */
export function collectorPipelines(options: CollectorExportOptions = {}): CollectorConfig {
  const customer = options.otlpEndpoint !== undefined;
  const traces = customer ? 'otlphttp/customer' : 'awsxray';
  const metrics = customer ? 'otlphttp/customer' : 'awsemf';
  const region = env(COLLECTOR_ENV.region);
  const exporters: Record<string, unknown> = customer
    ? { 'otlphttp/customer': { endpoint: options.otlpEndpoint, compression: 'gzip' } }
    : {
      awsxray: { region },
      awsemf: {
        region,
        namespace: METRICS_NAMESPACE,
        log_group_name: env(COLLECTOR_ENV.metricsLogGroup),
        log_stream_name: 'otel-collector',
        dimension_rollup_option: 'NoDimensionRollup',
      },
    };
  return {
    receivers: { otlp: { protocols: { http: { endpoint: `0.0.0.0:${OTLP_HTTP_PORT}` } } } },
    processors: {
      memory_limiter: { check_interval: '1s', limit_percentage: 80, spike_limit_percentage: 20 },
      'filter/contract-metrics': {
        error_mode: 'propagate',
        metrics: { metric: [`not (${METRIC_NAMES.map((n) => `name == "${n}"`).join(' or ')})`] },
      },
      'metricstransform/contract-attributes': {
        transforms: [{
          include: `^(${METRIC_NAMES.map(escapeRegExp).join('|')})$`,
          match_type: 'regexp',
          action: 'update',
          operations: [{ action: 'aggregate_labels', label_set: [...METRIC_ATTRIBUTES], aggregation_type: 'sum' }],
        }],
      },
      batch: {},
    },
    exporters,
    // What ECS's health check asks through ADOT's /healthcheck, on loopback only: nothing outside the task reaches it.
    extensions: { health_check: { endpoint: `127.0.0.1:${COLLECTOR_HEALTH_PORT}` } },
    service: {
      extensions: ['health_check'],
      telemetry: { metrics: { level: 'none' } },
      pipelines: {
        traces: { receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: [traces] },
        metrics: { receivers: ['otlp'], processors: ['memory_limiter', 'filter/contract-metrics', 'metricstransform/contract-attributes', 'batch'], exporters: [metrics] },
      },
    },
  };
}

/**
 * The collector's configuration file (`collectorPipelines`), as the collector reads it from `BYOC_OTEL_CONFIG`:
 * a comment naming the contract it was generated from, then the configuration as JSON (which is YAML).
 */
export function collectorConfig(options: CollectorExportOptions = {}, contract: BoundaryContract = BOUNDARY_CONTRACT): string {
  return `# Generated from boundary contract v${contract.version} (${contractHash(contract)}): do not edit.\n${JSON.stringify(collectorPipelines(options), null, 2)}\n`;
}

/**
 * What is wrong with `url` as the customer's OTLP endpoint, or undefined: an `https://` URL with a host, and no
 * credentials, query or fragment (the collector adds `/v1/traces` and `/v1/metrics` to it).
 */
export function otlpEndpointProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (parsed.protocol !== 'https:') return `"${url}" is not https: traces and metrics would travel in the clear`;
  if (parsed.username || parsed.password) return `"${url}" carries credentials, which would be stored in the template`;
  if (parsed.search || parsed.hash) return `"${url}" has a query or fragment`;
  if (/\/v1\/(traces|metrics|logs)\/?$/.test(parsed.pathname)) return `"${url}" ends in a signal's path; the collector appends /v1/traces and /v1/metrics itself`;
  return undefined;
}

/** The TCP port of the customer's OTLP endpoint (443 unless the URL names one). */
export function otlpEndpointPort(url: string): number {
  const { port } = new URL(url);
  return port ? Number(port) : 443;
}
