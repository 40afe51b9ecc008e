import { spawn } from 'child_process';
import * as http from 'http';
import { AddressInfo } from 'net';
import { TRACER_NAME } from '../../agents/runtime/tracing';
import { projectRoot } from '../../lib/app';
import { METRIC_ATTRIBUTES, METRIC_NAMES } from '../../lib/boundary-contract';

/**
 * The runtime's telemetry as it leaves the process: the Node SDK exporting OTLP/HTTP (JSON) to an endpoint,
 * here a loopback HTTP server standing in for the collector (the collector binary is not installable here;
 * what it does with the data is in test/customer-plane/collector-config.test.ts). It records every request
 * as it arrived, so the test reads exactly what the collector would receive.
 */

interface Received { path: string; contentType: string; body: any; raw: string }
let server: http.Server;
let endpoint: string;
const received: Received[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: JSON.parse(raw), raw });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // A trailing slash, as an operator might write it.
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

const stringAttributes = (attrs: { key: string; value: Record<string, unknown> }[]) =>
  Object.fromEntries(attrs.map((a) => [a.key, Object.values(a.value)[0]]));

/**
 * The scenario, in a process of its own as in an agent's container (the OTLP exporters load their HTTP agent
 * with a dynamic import, which jest's module sandbox cannot run): the compiled runtime module, started once for
 * code-reviewer (a second start refused), a request from an upstream agent handled through the hooks, shut down;
 * then started again for usage-meter. Prints what it saw as JSON.
 */
const SCENARIO = `
const { Telemetry } = require('./dist/agents/runtime/telemetry.js');
const { metrics, trace } = require('@opentelemetry/api');
const { headers } = require('@nats-io/nats-core');
(async () => {
  const endpoint = process.env.ENDPOINT;
  const out = {};
  const telemetry = new Telemetry('code-reviewer', endpoint, 60000);
  try { new Telemetry('other-agent', endpoint); } catch (e) { out.second = e.message; }
  telemetry.record({ ok: true, durationMs: 12, trigger: 'request' });
  telemetry.record({ ok: false, durationMs: 40, trigger: 'event', extra: { prompt: 'SECRET-PROMPT-TEXT', tenant: 'tenant-7', agent: 'spoofed', status_code: 999 } });
  const incoming = headers();
  incoming.set('traceparent', '00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01');
  const outgoing = headers();
  out.handled = await telemetry.hooks.around(incoming, { name: 'code-reviewer request', attributes: { agent: 'code-reviewer', trigger: 'request' } }, async () => {
    telemetry.hooks.inject(outgoing);
    return trace.getActiveSpan().spanContext().spanId;
  });
  out.outgoing = outgoing.get('traceparent');
  await telemetry.flush();
  await telemetry.shutdown();
  out.firstDone = Date.now();
  const next = new Telemetry('usage-meter', endpoint, 60000);
  await next.hooks.around(undefined, { name: 'usage-meter tick', attributes: {} }, async () => undefined);
  next.record({ ok: true, durationMs: 3 });
  await next.shutdown();
  out.afterShutdown = { traceId: trace.getTracer('x').startSpan('y').spanContext().traceId, meterProvider: metrics.getMeterProvider().constructor.name };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

let scenario: { second: string; handled: string; outgoing: string; afterShutdown: { traceId: string; meterProvider: string } };

beforeAll(async () => {
  const child = spawn(process.execPath, ['-e', SCENARIO], { cwd: projectRoot(), env: { ...process.env, ENDPOINT: endpoint }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`the scenario failed (${code}): ${stderr.slice(-2000)}`);
  scenario = JSON.parse(stdout.trim().split('\n').pop()!);
});

/** What the collector received from the agent named `service`, by path. */
const from = (service: string, p: string) => received.filter((r) => r.path === p && (r.body.resourceSpans ?? r.body.resourceMetrics)
  .some((x: any) => stringAttributes(x.resource.attributes)['service.name'] === service));

test('the SDK runs once per process: a second start is refused, naming both agents', () => {
  expect(scenario.second).toMatch(/^Telemetry for other-agent: telemetry for code-reviewer is already running in this process/);
});

test('traces: the consumer span continuing the upstream agent\'s trace reaches the collector over OTLP/HTTP, under service.name = the agent', () => {
  const upstream = { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174' };
  // What the handler hands on carries the same trace, with its own span as the parent.
  expect(scenario.outgoing).toBe(`00-${upstream.traceId}-${scenario.handled}-01`);
  const traces = from('code-reviewer', '/v1/traces');
  expect(traces.length).toBeGreaterThan(0);
  const resourceSpans = traces.flatMap((t) => t.body.resourceSpans);
  // The resource is the agent's name and nothing else: no host, process or command line.
  for (const rs of resourceSpans) expect(stringAttributes(rs.resource.attributes)).toEqual({ 'service.name': 'code-reviewer' });
  const spans = resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((sp: any) => ({ ...sp, scope: ss.scope.name }))));
  expect(spans).toHaveLength(1);
  expect(spans[0]).toMatchObject({ name: 'code-reviewer request', traceId: upstream.traceId, spanId: scenario.handled, parentSpanId: upstream.spanId, kind: 5, scope: TRACER_NAME });
  expect(stringAttributes(spans[0].attributes)).toEqual({ agent: 'code-reviewer', trigger: 'request' });
});

test('metrics: only the contract\'s names with only its attributes reach the collector; what the caller passed beyond them is nowhere', () => {
  const posts = from('code-reviewer', '/v1/metrics');
  expect(posts.length).toBeGreaterThan(0);
  const resourceMetrics = posts.flatMap((m) => m.body.resourceMetrics);
  for (const rm of resourceMetrics) expect(stringAttributes(rm.resource.attributes)).toEqual({ 'service.name': 'code-reviewer' });
  const all = resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics));
  const names = [...new Set(all.map((m: any) => m.name))].sort();
  expect(names).toEqual(['agent.request.duration', 'agent.request.errors', 'agent.requests']);
  for (const n of names) expect(METRIC_NAMES).toContain(n);
  const points = all.flatMap((m: any) => (m.sum ?? m.histogram).dataPoints.map((p: any) => ({ name: m.name, ...p, attributes: stringAttributes(p.attributes) })));
  for (const p of points) for (const k of Object.keys(p.attributes)) expect(METRIC_ATTRIBUTES).toContain(k);
  // Cumulative: the flush and the final export at shutdown may both carry the same two points.
  const requests = new Set(points.filter((p: any) => p.name === 'agent.requests').map((p: any) => JSON.stringify([p.attributes, Number(p.asInt ?? p.asDouble)])));
  expect([...requests].sort()).toEqual([
    JSON.stringify([{ agent: 'code-reviewer', status_code: 200, trigger: 'request' }, 1]),
    JSON.stringify([{ agent: 'code-reviewer', status_code: 500, trigger: 'event' }, 1]),
  ]);
  const raw = posts.map((m) => m.raw).join('\n');
  for (const leaked of ['SECRET-PROMPT-TEXT', 'tenant-7', 'spoofed', '999']) expect(raw).not.toContain(leaked);
});

test('only OTLP/HTTP JSON to /v1/traces and /v1/metrics: no logs are exported through the SDK', () => {
  expect([...new Set(received.map((r) => r.path))].sort()).toEqual(['/v1/metrics', '/v1/traces']);
  for (const r of received) expect(r.contentType).toBe('application/json');
});

test('after shutdown the providers are released: the next agent\'s telemetry exports under its own name, then nothing stays registered', () => {
  expect(from('usage-meter', '/v1/traces').length).toBeGreaterThan(0);
  expect(from('usage-meter', '/v1/metrics').length).toBeGreaterThan(0);
  // Every export names exactly one of the two agents.
  const services = received.flatMap((r) => (r.body.resourceSpans ?? r.body.resourceMetrics).map((x: any) => stringAttributes(x.resource.attributes)['service.name']));
  expect(new Set(services)).toEqual(new Set(['code-reviewer', 'usage-meter']));
  expect(scenario.afterShutdown).toEqual({ traceId: '00000000000000000000000000000000', meterProvider: 'NoopMeterProvider' });
});
