import { Attributes, context, Counter, Histogram, Meter, metrics, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { IMetricReader, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { METRIC_ATTRIBUTES } from '../../lib/boundary-contract';
import { otelTraceHooks, TRACER_NAME, TraceHooks } from './tracing';

/** Only the attributes the boundary contract allows on a metric: anything else is dropped here. */
function allowed(attributes: Record<string, string | number>): Attributes {
  return Object.fromEntries(Object.entries(attributes).filter(([k]) => (METRIC_ATTRIBUTES as readonly string[]).includes(k)));
}

/**
 * The contract's metrics of one agent on a meter: the contract's metric names (`METRIC_NAMES`), with only
 * its attributes (`METRIC_ATTRIBUTES`), whatever a caller passes.
 */
export class AgentMetrics {
  private readonly requests: Counter;
  private readonly errors: Counter;
  private readonly duration: Histogram;

  constructor(private readonly agent: string, meter: Meter) {
    this.requests = meter.createCounter('agent.requests', { description: 'Work items handled' });
    this.errors = meter.createCounter('agent.request.errors', { description: 'Work items that failed' });
    this.duration = meter.createHistogram('agent.request.duration', { description: 'Time to handle a work item', unit: 'ms' });
  }

  /** Records one handled item. `extra` attributes outside the contract's allowlist are dropped. */
  public record(outcome: { ok: boolean; durationMs: number; trigger?: string; extra?: Record<string, string | number> }): void {
    const attributes = allowed({ ...outcome.extra, agent: this.agent, status_code: outcome.ok ? 200 : 500, ...(outcome.trigger ? { trigger: outcome.trigger } : {}) });
    this.requests.add(1, attributes);
    if (!outcome.ok) this.errors.add(1, attributes);
    this.duration.record(outcome.durationMs, attributes);
  }
}

/** One `Telemetry` registers the process's global providers: a second at once would export nothing. */
let running: string | undefined;

/**
 * The agent runtime's telemetry, started through the OpenTelemetry Node SDK (`@opentelemetry/sdk-node`):
 * traces and metrics over OTLP/HTTP to the plane's collector (`endpoint`, the task's
 * `OTEL_EXPORTER_OTLP_ENDPOINT`: `/v1/traces` and `/v1/metrics` under it), under the resource
 * `service.name` = the agent's name and nothing else (no host or process detection). The W3C trace-context
 * propagator and the `AsyncLocalStorage` context manager are registered for the process; `hooks` carries
 * the trace across agents in NATS headers. No logs are exported through the SDK: the runtime logs to
 * stdout, which ECS sends to the agent's own log group.
 *
 * The collector keeps both in the customer's account (X-Ray and CloudWatch, or the customer's own OTLP
 * endpoint); nothing of it goes to the vendor.
 *
 * One per process (it registers the global tracer and meter providers); `shutdown()` flushes, stops the SDK
 * and unregisters them.
 */
export class Telemetry {
  /** W3C trace context in NATS headers, on this agent's tracer. */
  public readonly hooks: TraceHooks;
  private readonly sdk: NodeSDK;
  private readonly spans: SpanProcessor;
  private readonly reader: IMetricReader;
  private readonly metrics: AgentMetrics;

  constructor(private readonly agent: string, endpoint: string, exportIntervalMs = 15000) {
    if (running !== undefined) throw new Error(`Telemetry for ${agent}: telemetry for ${running} is already running in this process; shut it down first`);
    const base = endpoint.replace(/\/+$/, '');
    this.spans = new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` }));
    this.reader = new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }), exportIntervalMillis: exportIntervalMs });
    this.sdk = new NodeSDK({
      resource: resourceFromAttributes({ 'service.name': agent }),
      autoDetectResources: false,
      textMapPropagator: new W3CTraceContextPropagator(),
      spanProcessors: [this.spans],
      metricReaders: [this.reader],
      // Given (empty), so the SDK does not configure a log exporter from the environment.
      logRecordProcessors: [],
      instrumentations: [],
    });
    this.sdk.start();
    running = agent;
    this.metrics = new AgentMetrics(agent, metrics.getMeter(TRACER_NAME));
    this.hooks = otelTraceHooks({ tracer: trace.getTracer(TRACER_NAME) });
  }

  /** Records one handled item (see `AgentMetrics.record`). */
  public record(outcome: { ok: boolean; durationMs: number; trigger?: string; extra?: Record<string, string | number> }): void {
    this.metrics.record(outcome);
  }

  /** Exports every finished span and the metrics so far. */
  public async flush(): Promise<void> {
    await Promise.all([this.spans.forceFlush(), this.reader.forceFlush()]);
  }

  /** Flushes, stops the SDK and unregisters its global providers, propagator and context manager. */
  public async shutdown(): Promise<void> {
    if (running !== this.agent) return;
    try {
      await this.sdk.shutdown();
    } finally {
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
      running = undefined;
    }
  }
}
