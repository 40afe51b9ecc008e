import {
  ADOT_COLLECTOR, COLLECTOR_ENV, collectorConfig, collectorPipelines, METRICS_NAMESPACE, OTLP_HTTP_PORT, otlpEndpointPort, otlpEndpointProblem,
} from '../../customer-plane/collector-config';
import { BOUNDARY_CONTRACT, contractHash, METRIC_ATTRIBUTES, METRIC_NAMES } from '../../lib/boundary-contract';

/** The configuration as the collector reads it: the text of BYOC_OTEL_CONFIG (a comment, then JSON, which is YAML). */
function parsed(text: string): any {
  const [comment, ...rest] = text.split('\n');
  expect(comment).toBe(`# Generated from boundary contract v${BOUNDARY_CONTRACT.version} (${contractHash()}): do not edit.`);
  return JSON.parse(rest.join('\n'));
}

const aws = parsed(collectorConfig());
const customer = parsed(collectorConfig({ otlpEndpoint: 'https://otlp.observability.example.internal:4318' }));

/** Every component a configuration names, by kind, with the part after `/` (the instance name) removed. */
function componentsOf(config: any): Record<'receivers' | 'processors' | 'exporters' | 'extensions', string[]> {
  const kind = (k: string) => [...new Set(Object.keys(config[k] ?? {}).map((id) => id.split('/')[0]))];
  return { receivers: kind('receivers'), processors: kind('processors'), exporters: kind('exporters'), extensions: kind('extensions') };
}

describe.each([['X-Ray and CloudWatch (default)', aws], ['the customer\'s own OTLP endpoint', customer]])('%s', (_name, config) => {
  test('the text is the generated object: nothing else is configured', () => {
    expect(config).toEqual(JSON.parse(JSON.stringify(collectorPipelines(config === aws ? {} : { otlpEndpoint: 'https://otlp.observability.example.internal:4318' }))));
    expect(Object.keys(config).sort()).toEqual(['exporters', 'extensions', 'processors', 'receivers', 'service']);
    // One extension: the health check ECS asks through ADOT's /healthcheck, on loopback only.
    expect(config.extensions).toEqual({ health_check: { endpoint: '127.0.0.1:13133' } });
    expect(config.service.extensions).toEqual(['health_check']);
  });

  test('exactly two pipelines, traces and metrics; no logs pipeline (the receiver refuses OTLP logs)', () => {
    expect(Object.keys(config.service.pipelines).sort()).toEqual(['metrics', 'traces']);
    expect(config.receivers).toEqual({ otlp: { protocols: { http: { endpoint: `0.0.0.0:${OTLP_HTTP_PORT}` } } } });
    for (const p of Object.values<any>(config.service.pipelines)) expect(p.receivers).toEqual(['otlp']);
  });

  test('the metrics path keeps the contract\'s filters: only its metric names, and on each point only its attributes', () => {
    const metrics = config.service.pipelines.metrics;
    expect(metrics.processors).toEqual(['memory_limiter', 'filter/contract-metrics', 'metricstransform/contract-attributes', 'batch']);
    // Drop every metric whose name is not one of the contract's.
    expect(config.processors['filter/contract-metrics']).toEqual({
      error_mode: 'propagate',
      metrics: { metric: [`not (${METRIC_NAMES.map((n) => `name == "${n}"`).join(' or ')})`] },
    });
    // Keep only the contract's attributes on the points of those metrics (re-aggregating the rest away).
    const transforms = config.processors['metricstransform/contract-attributes'].transforms;
    expect(transforms).toEqual([{
      include: expect.any(String), match_type: 'regexp', action: 'update',
      operations: [{ action: 'aggregate_labels', label_set: [...METRIC_ATTRIBUTES], aggregation_type: 'sum' }],
    }]);
    // The include pattern (RE2; this one means the same in JavaScript) matches exactly the contract's names.
    const include = new RegExp(transforms[0].include);
    for (const n of METRIC_NAMES) expect(include.test(n)).toBe(true);
    for (const n of ['agent.requestsX', 'xagent.requests', 'agent-requests', 'agent.request', 'other']) expect(include.test(n)).toBe(false);
  });

  test('traces are batched under the memory limiter, with no filter of their own', () => {
    expect(config.service.pipelines.traces.processors).toEqual(['memory_limiter', 'batch']);
  });

  test('no debug exporter is left, and every exporter configured is used by a pipeline', () => {
    const exporters = Object.keys(config.exporters);
    expect(exporters.filter((e) => e.startsWith('debug') || e.startsWith('logging'))).toEqual([]);
    expect(JSON.stringify(config)).not.toMatch(/"debug|"logging/);
    const used = new Set(Object.values<any>(config.service.pipelines).flatMap((p) => p.exporters));
    expect([...used].sort()).toEqual([...exporters].sort());
  });

  test('every component is one of the AWS Distro for OpenTelemetry collector (the image the release pins)', () => {
    const used = componentsOf(config);
    for (const kind of ['receivers', 'processors', 'exporters', 'extensions'] as const) {
      for (const c of used[kind]) expect([kind, (ADOT_COLLECTOR.components[kind] as readonly string[]).includes(c) ? c : `${c} (not in ADOT ${ADOT_COLLECTOR.version})`]).toEqual([kind, c]);
    }
  });
});

test('default: traces to X-Ray, metrics to CloudWatch (embedded metric format) in the task\'s region and log group', () => {
  expect(aws.service.pipelines.traces.exporters).toEqual(['awsxray']);
  expect(aws.service.pipelines.metrics.exporters).toEqual(['awsemf']);
  expect(aws.exporters).toEqual({
    awsxray: { region: `\${env:${COLLECTOR_ENV.region}}` },
    awsemf: {
      region: `\${env:${COLLECTOR_ENV.region}}`,
      namespace: METRICS_NAMESPACE,
      log_group_name: `\${env:${COLLECTOR_ENV.metricsLogGroup}}`,
      log_stream_name: 'otel-collector',
      dimension_rollup_option: 'NoDimensionRollup',
    },
  });
  // No endpoint override: the AWS SDK's regional endpoints, which the VPC's private DNS resolves to its endpoints.
  expect(JSON.stringify(aws.exporters)).not.toMatch(/endpoint|https?:/);
});

test('with the customer\'s endpoint: both pipelines go there and only there (no AWS exporter, no other URL)', () => {
  expect(customer.exporters).toEqual({ 'otlphttp/customer': { endpoint: 'https://otlp.observability.example.internal:4318', compression: 'gzip' } });
  expect(customer.service.pipelines.traces.exporters).toEqual(['otlphttp/customer']);
  expect(customer.service.pipelines.metrics.exporters).toEqual(['otlphttp/customer']);
  const urls = JSON.stringify(customer).match(/https?:\/\/[^"]+/g);
  expect(urls).toEqual(['https://otlp.observability.example.internal:4318']);
});

test('the customer\'s endpoint must be https, without credentials, query or a signal\'s path', () => {
  expect(otlpEndpointProblem('https://otlp.example.internal')).toBeUndefined();
  expect(otlpEndpointProblem('https://otlp.example.internal:4318/otlp')).toBeUndefined();
  expect(otlpEndpointProblem('http://otlp.example.internal:4318')).toMatch(/is not https/);
  expect(otlpEndpointProblem('otlp.example.internal:4318')).toMatch(/is not https|is not a URL/);
  expect(otlpEndpointProblem('not a url')).toMatch(/is not a URL/);
  expect(otlpEndpointProblem('https://user:secret@otlp.example.internal')).toMatch(/carries credentials/);
  expect(otlpEndpointProblem('https://otlp.example.internal/?token=x')).toMatch(/query or fragment/);
  expect(otlpEndpointProblem('https://otlp.example.internal/v1/traces')).toMatch(/signal's path/);
  expect(otlpEndpointPort('https://otlp.example.internal')).toBe(443);
  expect(otlpEndpointPort('https://otlp.example.internal:4318/otlp')).toBe(4318);
});
