import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { headers as natsHeaders, Msg, MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { otelTraceHooks, TRACER_NAME } from '../../agents/runtime/tracing';
import { TraceHooks } from '../../agents/runtime/tracing-hooks';
import { eventually } from '../servers/link';
import { freePort, NatsServer, startNats } from '../servers/nats';

/**
 * W3C trace context across agents in NATS headers, on a real nats-server: "agent A" publishes a request inside
 * a span, "agent B" handles it through the hooks and hands work on to "agent C". Each agent has its own tracer
 * provider (its own `service.name`), all exporting to one in-memory exporter, as each agent's runtime exports
 * to the one collector.
 */

const AGENTS = ['agent-a', 'agent-b', 'agent-c'] as const;
type AgentName = typeof AGENTS[number];

let dir: string;
let server: NatsServer;
const connections: NatsConnection[] = [];
const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();
const providers = {} as Record<AgentName, BasicTracerProvider>;
const hooks = {} as Record<AgentName, TraceHooks>;
const nc = {} as Record<AgentName, NatsConnection>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-tracing-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nats.conf'), `listen: "127.0.0.1:${port}"\n`);
  server = await startNats(path.join(dir, 'nats.conf'), port);
  // What the SDK registers in a runtime (Telemetry): the context manager that carries the active span across await.
  context.setGlobalContextManager(contextManager.enable());
  for (const a of AGENTS) {
    providers[a] = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': a }), spanProcessors: [new SimpleSpanProcessor(exporter)] });
    hooks[a] = otelTraceHooks({ tracer: providers[a].getTracer(TRACER_NAME) });
    nc[a] = await connect({ servers: `127.0.0.1:${port}`, name: a, maxReconnectAttempts: 0 });
    connections.push(nc[a]);
  }
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await Promise.all(AGENTS.map((a) => providers[a]?.shutdown()));
  context.disable();
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => exporter.reset());

/** The spans finished so far with `name`. */
const spansNamed = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);
const serviceOf = (s: ReadableSpan) => s.resource.attributes['service.name'];
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Agent B: each message on `subject` is handled inside `hooks['agent-b'].around`, and after an await (the
 * active span must survive it) handed on to agent C with the hooks' headers. Agent C records what arrives.
 */
function wireBAndC(subject: string, delays: Record<string, number> = {}): { atB: Msg[]; atC: Msg[]; stop(): void } {
  const atB: Msg[] = [];
  const atC: Msg[] = [];
  const subB = nc['agent-b'].subscribe(`${subject}.b`, {
    callback: (err, m) => {
      if (err) return;
      atB.push(m);
      void hooks['agent-b'].around(m.headers, { name: 'agent-b handle', attributes: { 'messaging.destination.name': m.subject, agent: 'agent-b' } }, async () => {
        await tick(delays[m.string()] ?? 5);
        const h = natsHeaders();
        hooks['agent-b'].inject(h);
        nc['agent-b'].publish(`${subject}.c`, m.data, { headers: h });
      });
    },
  });
  const subC = nc['agent-c'].subscribe(`${subject}.c`, {
    callback: (err, m) => {
      if (err) return;
      void hooks['agent-c'].around(m.headers, { name: 'agent-c handle', attributes: { 'messaging.destination.name': m.subject } }, async () => {
        await tick(1);
        atC.push(m);
      });
    },
  });
  return { atB, atC, stop: () => { subB.unsubscribe(); subC.unsubscribe(); } };
}

/** Agent A publishes `body` inside its own span, with the trace context injected by its hooks. */
async function requestFromA(subject: string, body: string): Promise<void> {
  const tracer = providers['agent-a'].getTracer(TRACER_NAME);
  await tracer.startActiveSpan('agent-a request', { kind: SpanKind.PRODUCER }, ROOT_CONTEXT, async (span) => {
    const h = natsHeaders();
    hooks['agent-a'].inject(h);
    nc['agent-a'].publish(`${subject}.b`, body, { headers: h });
    await nc['agent-a'].flush();
    span.end();
  });
}

test('one trace from agent A through agent B to agent C: each hop a consumer span, child of the sender\'s span', async () => {
  await Promise.all(AGENTS.map((a) => nc[a].flush()));
  const wire = wireBAndC('t1');
  await Promise.all([nc['agent-b'].flush(), nc['agent-c'].flush()]);
  await requestFromA('t1', 'review 42');
  await eventually(() => spansNamed('agent-c handle').length === 1, 10000, 'agent C\'s span');
  wire.stop();

  const [a] = spansNamed('agent-a request');
  const [b] = spansNamed('agent-b handle');
  const [c] = spansNamed('agent-c handle');
  const traceId = a.spanContext().traceId;
  expect(traceId).toMatch(/^[0-9a-f]{32}$/);
  expect([b.spanContext().traceId, c.spanContext().traceId]).toEqual([traceId, traceId]);
  // Parent/child: A is the root, B continues A, C continues B.
  expect(a.parentSpanContext).toBeUndefined();
  expect(b.parentSpanContext).toMatchObject({ traceId, spanId: a.spanContext().spanId, isRemote: true });
  expect(c.parentSpanContext).toMatchObject({ traceId, spanId: b.spanContext().spanId, isRemote: true });
  expect(new Set([a, b, c].map((s) => s.spanContext().spanId)).size).toBe(3);
  // Each span is its agent's, a consumer span with the attributes the host gave it.
  expect([a, b, c].map(serviceOf)).toEqual(['agent-a', 'agent-b', 'agent-c']);
  expect([b.kind, c.kind]).toEqual([SpanKind.CONSUMER, SpanKind.CONSUMER]);
  expect(b.attributes).toEqual({ 'messaging.destination.name': 't1.b', agent: 'agent-b' });
  expect(b.instrumentationScope.name).toBe(TRACER_NAME);
  expect(b.status.code).toBe(SpanStatusCode.UNSET);
  // On the wire: W3C traceparent, version 00, sampled.
  expect(wire.atB[0].headers?.get('traceparent')).toBe(`00-${traceId}-${a.spanContext().spanId}-01`);
  expect(wire.atC[0].headers?.get('traceparent')).toBe(`00-${traceId}-${b.spanContext().spanId}-01`);
  // B handled and finished before C did.
  expect(b.ended && c.ended).toBe(true);
});

test('concurrent requests through agent B stay in their own traces (the active span follows each handler across await)', async () => {
  const wire = wireBAndC('t2', { slow: 80, fast: 1 });
  await Promise.all([nc['agent-b'].flush(), nc['agent-c'].flush()]);
  // "slow" arrives first and finishes last: its hand-off happens while "fast" is being handled.
  await requestFromA('t2', 'slow');
  await requestFromA('t2', 'fast');
  await eventually(() => spansNamed('agent-c handle').length === 2, 10000, 'both of agent C\'s spans');
  wire.stop();

  const as = spansNamed('agent-a request');
  expect(new Set(as.map((s) => s.spanContext().traceId)).size).toBe(2);
  for (const a of as) {
    const traceId = a.spanContext().traceId;
    const b = spansNamed('agent-b handle').filter((s) => s.spanContext().traceId === traceId);
    const c = spansNamed('agent-c handle').filter((s) => s.spanContext().traceId === traceId);
    expect(b).toHaveLength(1);
    expect(c).toHaveLength(1);
    expect(b[0].parentSpanContext?.spanId).toBe(a.spanContext().spanId);
    expect(c[0].parentSpanContext?.spanId).toBe(b[0].spanContext().spanId);
  }
  // The hand-offs reached C in the order of their delays, not of the requests: the interleaving happened.
  expect(wire.atC.map((m) => m.string())).toEqual(['fast', 'slow']);
});

test('tracestate travels with the trace; a message without trace context, or with a malformed one, starts a new trace', async () => {
  const wire = wireBAndC('t3');
  await Promise.all([nc['agent-b'].flush(), nc['agent-c'].flush()]);
  const upstream = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
  const send = (h?: MsgHdrs) => nc['agent-a'].publish('t3.b', 'x', h ? { headers: h } : {});
  const withState = natsHeaders();
  withState.set('traceparent', `00-${upstream.traceId}-${upstream.spanId}-01`);
  withState.set('tracestate', 'customer=abc,other=1');
  send(withState);
  send();
  const malformed = natsHeaders();
  malformed.set('traceparent', '00-zz-not-a-trace-01');
  send(malformed);
  await nc['agent-a'].flush();
  await eventually(() => spansNamed('agent-c handle').length === 3, 10000, 'agent C\'s spans');
  wire.stop();

  const bs = spansNamed('agent-b handle');
  const continued = bs.find((s) => s.spanContext().traceId === upstream.traceId)!;
  expect(continued.parentSpanContext?.spanId).toBe(upstream.spanId);
  expect(continued.spanContext().traceState?.serialize()).toBe('customer=abc,other=1');
  const c = spansNamed('agent-c handle').find((s) => s.spanContext().traceId === upstream.traceId)!;
  expect(c.parentSpanContext?.spanId).toBe(continued.spanContext().spanId);
  expect(wire.atC.find((m) => m.headers?.get('traceparent').includes(upstream.traceId))?.headers?.get('tracestate')).toBe('customer=abc,other=1');
  // The other two: roots of new traces of their own, still continued by C.
  const roots = bs.filter((s) => s !== continued);
  expect(roots).toHaveLength(2);
  for (const r of roots) {
    expect(r.parentSpanContext).toBeUndefined();
    expect(r.spanContext().traceId).not.toBe(upstream.traceId);
    const child = spansNamed('agent-c handle').find((s) => s.spanContext().traceId === r.spanContext().traceId)!;
    expect(child.parentSpanContext?.spanId).toBe(r.spanContext().spanId);
  }
  expect(roots[0].spanContext().traceId).not.toBe(roots[1].spanContext().traceId);
});

test('a failing handler: its span ends with status ERROR and the exception, and the error reaches the caller', async () => {
  const h = natsHeaders();
  h.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  const failure = hooks['agent-b'].around(h, { name: 'agent-b failing', attributes: { agent: 'agent-b' } }, async () => {
    await tick(1);
    throw new TypeError('no such tool');
  });
  await expect(failure).rejects.toThrow(new TypeError('no such tool'));
  const [s] = spansNamed('agent-b failing');
  expect(s.ended).toBe(true);
  expect(s.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
  expect(s.status).toEqual({ code: SpanStatusCode.ERROR, message: 'no such tool' });
  expect(s.events.map((e) => [e.name, e.attributes?.['exception.type'], e.attributes?.['exception.message']])).toEqual([['exception', 'TypeError', 'no such tool']]);
});

test('inject outside any span writes nothing; inside the hooks\' span it writes that span', async () => {
  const outside = natsHeaders();
  hooks['agent-b'].inject(outside);
  expect(outside.has('traceparent')).toBe(false);
  expect(trace.getActiveSpan()).toBeUndefined();
  const inside = natsHeaders();
  const spanId = await hooks['agent-b'].around(undefined, { name: 'agent-b root', attributes: {} }, async () => {
    hooks['agent-b'].inject(inside);
    return trace.getActiveSpan()!.spanContext().spanId;
  });
  expect(inside.get('traceparent')).toMatch(new RegExp(`^00-[0-9a-f]{32}-${spanId}-01$`));
  // The hooks' span is gone once around returns.
  expect(trace.getActiveSpan()).toBeUndefined();
});

test('the message is the parent: a handler run while another span is active does not join that span\'s trace', async () => {
  const tracer = providers['agent-b'].getTracer(TRACER_NAME);
  await tracer.startActiveSpan('agent-b poll loop', async (loop) => {
    await hooks['agent-b'].around(undefined, { name: 'agent-b unrelated item', attributes: {} }, async () => undefined);
    loop.end();
  });
  const [loop] = spansNamed('agent-b poll loop');
  const [item] = spansNamed('agent-b unrelated item');
  expect(item.parentSpanContext).toBeUndefined();
  expect(item.spanContext().traceId).not.toBe(loop.spanContext().traceId);
});
