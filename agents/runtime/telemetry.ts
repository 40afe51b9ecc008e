import { Attributes, Counter, Histogram } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { METRIC_ATTRIBUTES } from '../../lib/boundary-contract';

/** Only the attributes the boundary contract allows on a metric: anything else is dropped here. */
function allowed(attributes: Record<string, string | number>): Attributes {
  return Object.fromEntries(Object.entries(attributes).filter(([k]) => (METRIC_ATTRIBUTES as readonly string[]).includes(k)));
}

/**
 * The runtime's metrics, exported over OTLP/HTTP to the plane's collector: the contract's metric names,
 * with only its attributes. No traces or logs are exported.
 */
export class Telemetry {
  private readonly provider: MeterProvider;
  private readonly requests: Counter;
  private readonly errors: Counter;
  private readonly duration: Histogram;

  constructor(private readonly agent: string, endpoint: string, exportIntervalMs = 15000) {
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({}),
      readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/metrics` }), exportIntervalMillis: exportIntervalMs })],
    });
    const meter = this.provider.getMeter('byoc-agent-runtime');
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

  public async flush(): Promise<void> {
    await this.provider.forceFlush();
  }

  public async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
