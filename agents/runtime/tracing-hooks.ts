import { MsgHdrs } from '@nats-io/nats-core';

/**
 * What the runtime host asks of a tracer, so that the host does not depend on one: every item runs inside
 * `around` (a span, child of the trace context its headers carry), and every header set the host publishes
 * (what the agent publishes, step records, replies, dead letters, scheduled ticks) goes through `inject`.
 */
export interface TraceHooks {
  /** Runs `fn` inside a span named `span.name`, continuing the trace context found in `headers` (if any). */
  around<T>(headers: MsgHdrs | undefined, span: { name: string; attributes: Record<string, string | number> }, fn: () => Promise<T>): Promise<T>;
  /** Writes the current trace context (W3C `traceparent`/`tracestate`) into headers about to be published. */
  inject(headers: MsgHdrs): void;
}

/** No tracing: runs the item as it is, adds no header. */
export const NO_TRACING: TraceHooks = {
  around: (_headers, _span, fn) => fn(),
  inject: () => undefined,
};
