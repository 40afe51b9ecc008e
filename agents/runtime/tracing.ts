import { context, Context, ROOT_CONTEXT, SpanKind, SpanStatusCode, TextMapGetter, TextMapPropagator, TextMapSetter, trace, Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MsgHdrs } from '@nats-io/nats-core';
import { TraceHooks } from './tracing-hooks';

export type { TraceHooks };

/** The name of the runtime's tracer (the instrumentation scope of its spans). */
export const TRACER_NAME = 'byoc-agent-runtime';

/** W3C trace context in NATS headers: `traceparent` and `tracestate`, as the W3C propagator names them. */
const getter: TextMapGetter<MsgHdrs> = {
  keys: (h) => h.keys(),
  // MsgHdrs.get answers '' for a missing header: absent to the propagator.
  get: (h, key) => h.get(key) || undefined,
};
const setter: TextMapSetter<MsgHdrs> = { set: (h, key, value) => h.set(key, value) };

export interface OtelTraceHooksOptions {
  /** @default - the runtime's tracer from the registered tracer provider (`Telemetry` registers one) */
  readonly tracer?: Tracer;
  /** @default - the W3C trace-context propagator (`traceparent`, `tracestate`) */
  readonly propagator?: TextMapPropagator;
}

/**
 * `TraceHooks` on OpenTelemetry with W3C trace context in NATS headers.
 *
 * `around` reads `traceparent`/`tracestate` from the message's headers and runs `fn` in a consumer span that
 * continues that trace (a child of the sender's span); a message without (or with a malformed) trace context
 * starts a new trace. The span ends when `fn` settles; a failure is recorded on it (status ERROR, the
 * exception's type and message) and rethrown. `inject` writes the active span's context into `headers`
 * (nothing when no span is active). The active context follows `fn` across `await` through the context
 * manager the SDK registers (`AsyncLocalStorage`).
 */
export function otelTraceHooks(options: OtelTraceHooksOptions = {}): TraceHooks {
  const tracer = () => options.tracer ?? trace.getTracer(TRACER_NAME);
  const propagator = options.propagator ?? new W3CTraceContextPropagator();
  return {
    around<T>(headers: MsgHdrs | undefined, span: { name: string; attributes: Record<string, string | number> }, fn: () => Promise<T>): Promise<T> {
      // The message is the parent, never whatever happens to be active where the host loops.
      const parent: Context = headers ? propagator.extract(ROOT_CONTEXT, headers, getter) : ROOT_CONTEXT;
      return tracer().startActiveSpan(span.name, { kind: SpanKind.CONSUMER, attributes: span.attributes }, parent, async (s) => {
        try {
          return await fn();
        } catch (e) {
          const error = e instanceof Error ? e : new Error(String(e));
          s.recordException(error);
          s.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
          throw e;
        } finally {
          s.end();
        }
      });
    },
    inject(headers: MsgHdrs): void {
      propagator.inject(context.active(), headers, setter);
    },
  };
}
