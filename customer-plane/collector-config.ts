import { BOUNDARY_CONTRACT, contractHash, METRIC_ATTRIBUTES, METRIC_NAMES } from '../lib/boundary-contract';

/** OTLP/HTTP port of the collector (JSON or protobuf over HTTP). */
export const OTLP_HTTP_PORT = 4318;

/**
 * The OpenTelemetry collector's configuration, generated from the boundary contract: a metrics pipeline
 * only (no traces or logs pipeline exists, so the receiver refuses them), keeping only the contract's
 * metric names, and on each data point only the contract's attributes; resource attributes are dropped.
 */
export function collectorConfig(): string {
  const names = METRIC_NAMES.map((n) => `name == "${n}"`).join(' or ');
  return [
    `# Generated from boundary contract v${BOUNDARY_CONTRACT.version} (${contractHash()}): do not edit.`,
    'receivers:',
    '  otlp:',
    '    protocols:',
    `      http: { endpoint: "0.0.0.0:${OTLP_HTTP_PORT}" }`,
    'processors:',
    '  memory_limiter: { check_interval: 1s, limit_percentage: 80, spike_limit_percentage: 20 }',
    '  filter/contract-metrics:',
    '    error_mode: propagate',
    '    metrics:',
    '      metric:',
    `        - 'not (${names})'`,
    '  transform/contract-attributes:',
    '    error_mode: propagate',
    '    metric_statements:',
    '      - context: datapoint',
    `        statements: ['keep_keys(attributes, [${METRIC_ATTRIBUTES.map((a) => `"${a}"`).join(', ')}])']`,
    '      - context: resource',
    '        statements: [\'keep_keys(attributes, [])\']',
    '  batch: {}',
    'exporters:',
    '  debug: { verbosity: basic }',
    'service:',
    '  telemetry: { metrics: { level: none } }',
    '  pipelines:',
    '    metrics: { receivers: [otlp], processors: [memory_limiter, filter/contract-metrics, transform/contract-attributes, batch], exporters: [debug] }',
    '',
  ].join('\n');
}
