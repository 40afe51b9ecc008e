import { ChildProcess, spawn } from 'child_process';
import { generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, NatsConnection } from '@nats-io/nats-core';
import { AGENT_CATALOG } from '../../agents/catalog';
import { CustomerCheck } from '../../control-plane/ingest/check';
import { projectRoot } from '../../lib/app';
import { HUB_INGEST_STREAM, inboxPrefix, requestSubjectOf, secretVariables } from '../../lib/nats-config';
import { parseStepStatus, STEP_STATUS_SUBJECT, StepStatus, WORKFLOW_HEADERS } from '../../lib/step-status';
import { GatewayProcess, startGateway } from '../servers/gateway';
import { eventually, Link, startLink } from '../servers/link';
import { MotoServer, startMoto } from '../servers/moto';
import { testCertificates } from '../servers/nats';
import { agentDatabase, PostgresServer, startPostgres } from '../servers/postgres';

/**
 * One flow through a plane of real servers, as the plane runs it: a request enters the code-generator through its
 * service subject, the event it publishes reaches the code-reviewer through its durable consumer, the usage-meter's
 * schedule fires; every runtime exports its spans over OTLP/HTTP (to a receiver in this test standing in for the
 * collector) and publishes its step records; the usage-meter (PostgreSQL as its own role, TLS verify-full) turns them
 * into signed metrics windows and usage, the workflow-orchestrator into workflow messages; the gateway signs and
 * sends them to the hub, where the vendor's ingest checks verify every one. An altered or unsigned metrics message
 * is refused there.
 */

const C = 'example';
const AGENTS = ['request-router', 'code-generator', 'code-reviewer', 'usage-meter', 'workflow-orchestrator'];
const HBA = [
  'local all all trust',
  'host all postgres 127.0.0.1/32 trust',
  'host all byoc_admin 127.0.0.1/32 trust',
  // PostgreSQL cannot verify an IAM token (test/agents/stores.test.ts proves the token is what the pool sends):
  // here the agents' roles log in over TLS without a password check.
  'hostssl all all 127.0.0.1/32 trust',
  'host all all 127.0.0.1/32 reject',
];

const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const check = new CustomerCheck({ customerId: C, auditPublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() });

let tmp: string;
let link: Link;
let moto: MotoServer;
let pg: PostgresServer;
let gateway: GatewayProcess | undefined;
let tls: ReturnType<typeof testCertificates>;
let otlp: http.Server;
const spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; service: string }[] = [];
const secretArns: Record<string, string> = {};
const runtimes: { agent: string; child: ChildProcess; out: () => string; exited: Promise<number | null> }[] = [];
const records: StepStatus[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-flow-'));
  tls = testCertificates(tmp, 'DNS:localhost');
  [link, moto, pg] = await Promise.all([startLink({ customerId: C }), startMoto(), startPostgres({ tls, hba: HBA })]);
  // The database as the plane's deploy-time function sets RDS up: the master user makes each agent's roles.
  await agentDatabase(pg, ['usage-meter']);
  const sm = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  for (const a of AGENTS) {
    secretArns[a] = (await sm.send(new CreateSecretCommand({ Name: `byoc/${C}/nats/${a}`, SecretString: link.secrets[secretVariables(C).agent(a)] }))).ARN!;
  }
  sm.destroy();
  // The gateway provisions the agents' streams and consumers at start, and signs metrics with the audit key.
  gateway = await startGateway(link, { privateKey: keys.privateKey });
  otlp = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        for (const rs of JSON.parse(body).resourceSpans ?? []) {
          const service = rs.resource?.attributes?.find((a: any) => a.key === 'service.name')?.value?.stringValue;
          for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, service });
        }
      }
      res.end('{}');
    });
  });
  await new Promise<void>((r) => otlp.listen(0, '127.0.0.1', r));
  const observer = await link.agentsObserver();
  observer.subscribe(STEP_STATUS_SUBJECT, { callback: (_e, m) => { records.push(parseStepStatus(m.data)); } });
  await observer.flush();
}, 120_000);

afterAll(async () => {
  for (const r of runtimes) if (r.child.exitCode === null) r.child.kill('SIGKILL');
  await Promise.all(runtimes.map((r) => r.exited));
  if (gateway && gateway.child.exitCode === null) await gateway.stop();
  await new Promise((r) => otlp?.close(r));
  await link?.stop();
  await Promise.all([moto?.stop(), pg?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function startRuntime(agent: string, env: Record<string, string> = {}) {
  const spec = AGENT_CATALOG.find((a) => a.name === agent)!;
  const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'agent-runtime.js')], {
    env: {
      PATH: process.env.PATH!, ...moto.env, NODE_NO_WARNINGS: '1',
      BYOC_AGENT: agent, BYOC_CUSTOMER: C, BYOC_TRIGGER: spec.trigger, BYOC_SUBJECTS: JSON.stringify(spec.subjects),
      ...(spec.schedule ? { BYOC_SCHEDULE: spec.schedule } : {}),
      NATS_URL: `127.0.0.1:${link.leafPort}`, NATS_INBOX_PREFIX: inboxPrefix(C, agent), NATS_PASSWORD_SECRET_ARN: secretArns[agent],
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(otlp.address() as { port: number }).port}`, OTEL_METRIC_EXPORT_INTERVAL: '600000',
      BYOC_STOP_TIMEOUT_MS: '5000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const r = { agent, child, out: () => out, exited: new Promise<number | null>((res) => child.once('exit', (code) => res(code))) };
  runtimes.push(r);
  await eventually(() => out.includes('"msg":"ready"') || child.exitCode !== null, 60_000, `${agent} ready`);
  if (child.exitCode !== null) throw new Error(`${agent} did not start: ${out}`);
  return r;
}

/** Every crossing the hub's ingest stream holds, with its subject. */
async function ingested(vendor: NatsConnection): Promise<{ subject: string; data: Uint8Array }[]> {
  const jsm = await jetstreamManager(vendor);
  const last = (await jsm.streams.info(HUB_INGEST_STREAM)).state.last_seq;
  const out: { subject: string; data: Uint8Array }[] = [];
  for (let seq = 1; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(HUB_INGEST_STREAM, { seq }).catch(() => undefined);
    if (m) out.push({ subject: m.subject, data: m.data });
  }
  return out;
}

test('a request, the event it publishes and a schedule: one trace across the two agents; workflow, signed metrics and usage verified at the hub', async () => {
  await Promise.all([
    startRuntime('code-generator', { BYOC_AGENT_IMPL: 'reference' }),
    startRuntime('code-reviewer', { BYOC_AGENT_IMPL: 'reference' }),
    startRuntime('workflow-orchestrator'),
    startRuntime('usage-meter', {
      AWS_REGION: moto.env.AWS_REGION, PGHOST: 'localhost', PGPORT: String(pg.port), PGDATABASE: 'byoc', PGUSER: 'agent_usage_meter',
      PGSSLMODE: 'verify-full', PGSSLROOTCERT: tls.ca,
    }),
  ]);

  // The request enters the code-generator (from the request-router, which may send it work); its reply comes back.
  const caller = await link.agent('request-router');
  const h = natsHeaders();
  h.set('Nats-Msg-Id', 'flow-request-1');
  h.set(WORKFLOW_HEADERS.requestId, 'req-flow-1');
  const reply = await caller.request(requestSubjectOf('code-generator'), JSON.stringify({ forward: 'events.change.proposed' }), { timeout: 15_000, headers: h });
  expect(reply.headers?.code ?? 200).toBeLessThan(400);

  // The event reaches the code-reviewer: its step carries the same workflow, one step further.
  await eventually(() => records.some((r) => r.agent === 'code-reviewer' && r.status === 'succeeded'), 30_000, 'the code-reviewer\'s step');
  const generated = records.find((r) => r.agent === 'code-generator' && r.status === 'succeeded')!;
  const reviewed = records.find((r) => r.agent === 'code-reviewer' && r.status === 'succeeded')!;
  expect(generated).toMatchObject({ trigger: 'request', stepId: 0 });
  expect(reviewed).toMatchObject({ trigger: 'event', stepId: 1, workflowId: generated.workflowId });

  // The usage-meter's schedule fires (every minute): its tick is a step of its own, by the schedule path.
  await eventually(() => records.some((r) => r.agent === 'usage-meter' && r.trigger === 'schedule' && r.status === 'succeeded'), 130_000, 'a scheduled tick of the usage-meter');

  // At the hub: a signed metrics window counting both agents, usage for both, a workflow message for each step.
  const vendor = await link.vendor();
  const accepted = () => ingested(vendor).then((all) => all.map((m) => ({ m, r: check.check(m.subject, m.data) })));
  const hasWindow = async () => (await accepted()).some(({ r }) => 'kind' in r && r.kind.name === 'metrics'
    && (r.value.points as { agent: string }[]).some((p) => p.agent === 'code-reviewer'));
  await eventually(hasWindow, 130_000, 'a metrics window with the code-reviewer at the hub');
  await eventually(async () => (await accepted()).filter(({ r }) => 'kind' in r && r.kind.name === 'workflow' && r.value.workflowId === generated.workflowId).length >= 2, 30_000, 'the workflow messages');
  const all = await accepted();
  const refused = all.filter(({ r }) => !('kind' in r));
  expect(refused.map(({ r }) => r)).toEqual([]);
  const ofKind = (k: string) => all.filter(({ r }) => 'kind' in r && r.kind.name === k).map(({ r }) => (r as { value: Record<string, unknown> }).value);
  const points = ofKind('metrics').flatMap((w) => w.points as { metric: string; agent: string; trigger?: string; value: number }[]);
  expect(points).toEqual(expect.arrayContaining([
    { metric: 'agent.requests', agent: 'code-generator', statusCode: 200, trigger: 'request', value: 1 },
    { metric: 'agent.requests', agent: 'code-reviewer', statusCode: 200, trigger: 'event', value: 1 },
  ]));
  expect(ofKind('usage').map((u) => u.agent)).toEqual(expect.arrayContaining(['code-generator', 'code-reviewer']));
  expect(ofKind('workflow').filter((w) => w.workflowId === generated.workflowId).map((w) => [w.agent, w.stepId, w.status])).toEqual(expect.arrayContaining([
    ['code-generator', 0, 'succeeded'], ['code-reviewer', 1, 'succeeded'],
  ]));

  // An altered window (one count changed) and an unsigned one are refused by the vendor's checks.
  const window = all.find(({ r }) => 'kind' in r && r.kind.name === 'metrics')!.m;
  const text = Buffer.from(window.data).toString('utf8');
  const altered = text.replace(/"value":(\d+)/, (_m, n) => `"value":${Number(n) + 1}`);
  expect(altered).not.toBe(text);
  expect(check.check(window.subject, Buffer.from(altered))).toMatchObject({ reason: 'bad-signature' });
  const unsigned = JSON.parse(text);
  delete unsigned.signature;
  const canonicalUnsigned = (await import('../../lib/contract-validator')).canonicalBytes(unsigned);
  expect(check.check(window.subject, canonicalUnsigned)).toMatchObject({ reason: 'unsigned' });

  // One trace links the request and the event: the code-reviewer's span is a child of the code-generator's.
  for (const r of runtimes.filter((x) => x.agent === 'code-generator' || x.agent === 'code-reviewer')) r.child.kill('SIGTERM');
  await Promise.all(runtimes.filter((x) => x.agent === 'code-generator' || x.agent === 'code-reviewer').map((r) => r.exited));
  await eventually(() => spans.some((s) => s.service === 'code-reviewer') && spans.some((s) => s.service === 'code-generator'), 15_000, 'spans of both agents');
  const generatorSpans = spans.filter((s) => s.service === 'code-generator');
  const reviewerSpan = spans.find((s) => s.service === 'code-reviewer')!;
  // The reviewer's span continues the generator's: same trace, and its parent is the span the generator published in.
  expect(generatorSpans.map((s) => s.spanId)).toContain(reviewerSpan.parentSpanId);
  expect(generatorSpans.find((s) => s.spanId === reviewerSpan.parentSpanId)!.traceId).toBe(reviewerSpan.traceId);
}, 400_000);
