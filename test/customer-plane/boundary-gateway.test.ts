import { ChildProcess, spawn } from 'child_process';
import { generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { jetstreamManager } from '@nats-io/jetstream';
import { verifyAuditLog } from '../../lib/audit-log';
import { DEAD_LETTER_STREAM } from '../../lib/nats-config';
import { projectRoot } from '../../lib/app';
import { collect, eventually, Link, startLink } from '../servers/link';

const C = 'example';
const keys = generateKeyPairSync('ed25519');
const signingKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicKey = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** Starts the bundled gateway (the file its container runs) against the link's leaf. */
async function startGateway(link: Link, extraEnv: Record<string, string> = {}) {
  const bundle = path.join(projectRoot(), 'dist', 'boundary-gateway.js');
  expect(fs.existsSync(bundle)).toBe(true);
  const auditLog = path.join(link.dir, `audit-${Date.now()}.log`);
  const child: ChildProcess = spawn(process.execPath, [bundle], {
    env: {
      PATH: process.env.PATH!, BYOC_CUSTOMER: C, NATS_URL: `127.0.0.1:${link.leafPort}`, BYOC_GATEWAY_PASSWORD: link.secrets.BYOC_GATEWAY_PASSWORD,
      BYOC_AUDIT_LOG: auditLog, BYOC_AUDIT_SIGNING_KEY: signingKey, BYOC_AUDIT_HEAD_EVERY: '5', ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  await eventually(() => out.includes('"msg":"ready"'), 10000, `gateway ready (output: ${out})`);
  const records = () => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const stop = async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    return exited;
  };
  return { auditLog, output: () => out, records, stop };
}

const valid = {
  workflow: { workflowId: 'wf-1', stepId: 's-1', agent: 'code-reviewer', status: 'succeeded', statusCode: 200, startedAt: 1790000000000, durationMs: 1234 },
  usage: { periodStart: 1790000000000, periodEnd: 1790000300000, agent: 'usage-meter', invocations: 12, computeSeconds: 30, llmTokensIn: 1000, llmTokensOut: 200 },
  fingerprint: { patternHash: 'a'.repeat(64), shape: ['planner', 'code-generator'], occurrences: 3, outcome: 'succeeded' },
  control: { action: 'dispatch-workflow', workflowId: 'wf-9', issuedAt: 1790000000000 },
};

describe('the bundled boundary gateway on a real leaf and hub', () => {
  let link: Link;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  beforeAll(async () => {
    link = await startLink({ customerId: C });
    gateway = await startGateway(link);
  });
  afterAll(async () => {
    await link?.stop();
  });

  test('relays valid messages both ways, stops every malformed one, keeps it locally, and audits every crossing', async () => {
    const vendor = await link.vendor();
    const atVendor = collect(vendor, ['workflow', 'metrics', 'fingerprint', 'usage'].map((k) => `byoc.${C}.out.${k}`));
    await atVendor.ready;
    const agents = await link.agents();
    const atAgents = collect(agents, 'boundary.inbox.control');
    await atAgents.ready;

    const bad: [string, unknown][] = [
      ['workflow', { ...valid.workflow, prompt: 'summarise the customer code' }], // extra field
      ['workflow', { ...valid.workflow, agent: 'Please refactor this function' }], // free text in an identifier
      ['workflow', { ...valid.workflow, workflowId: 'AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMI/K7MDENG' }], // a secret in an id's place
      ['workflow', { ...valid.workflow, stepId: 'function f() { return 1; }' }], // a code snippet
      ['workflow', { ...valid.workflow, statusCode: 'ok' }], // wrong type
      ['usage', { ...valid.usage, invocations: -1 }], // out of range
      ['metrics', { windowStart: 1, windowEnd: 2, signature: 'x'.repeat(86), points: Array.from({ length: 400 }, () => ({ metric: 'agent.requests', agent: 'planner', value: 1 })) }], // oversize
      ['secrets', { value: 'hunter2' }], // not a kind
      ['workflow', 'not json'],
    ];
    for (const [kind, payload] of bad) agents.publish(`boundary.outbox.${kind}`, typeof payload === 'string' ? payload : JSON.stringify(payload));
    for (const kind of ['workflow', 'usage', 'fingerprint'] as const) agents.publish(`boundary.outbox.${kind}`, JSON.stringify(valid[kind]));
    await agents.flush();

    await eventually(() => atVendor.payloads.length >= 3, 5000, 'valid messages at the vendor');
    await new Promise((r) => setTimeout(r, 200));
    expect(atVendor.subjects.sort()).toEqual([`byoc.${C}.out.fingerprint`, `byoc.${C}.out.usage`, `byoc.${C}.out.workflow`]);
    for (const p of atVendor.payloads) expect(p).not.toMatch(/prompt|Please|AKIA|function|hunter2/);

    // Inbound: a valid control message reaches the agents, a malformed one does not.
    await eventually(async () => {
      vendor.publish(`byoc.${C}.in.control`, JSON.stringify({ ...valid.control, note: 'run rm -rf /' }));
      vendor.publish(`byoc.${C}.in.control`, JSON.stringify(valid.control));
      await vendor.flush();
      await new Promise((r) => setTimeout(r, 100));
      return atAgents.payloads.length > 0;
    });
    expect(atAgents.payloads.every((p) => !p.includes('rm -rf'))).toBe(true);

    // Every rejection is on the local dead-letter stream with its reason, and logged without its payload.
    const jsm = await jetstreamManager(agents);
    await eventually(async () => (await jsm.streams.info(DEAD_LETTER_STREAM)).state.messages >= bad.length + 1, 5000, 'dead-lettered messages');
    const rejected = gateway.records().filter((r) => r.msg === 'boundary message rejected');
    expect(rejected.length).toBeGreaterThanOrEqual(bad.length + 1);
    expect(new Set(rejected.map((r) => r.reason))).toEqual(new Set(['schema', 'oversize', 'unknown-kind', 'not-json']));
    expect(gateway.output()).not.toMatch(/prompt|Please refactor|AKIAIOSFODNN7|return 1|hunter2|rm -rf/);
    const first = await jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq: 1 });
    expect(first?.header.get('Byoc-Reject-Reason')).toBe('schema');

    // The audit log records exactly the crossings, verifies, and is signed.
    expect(await gateway.stop()).toBe(0);
    const audit = verifyAuditLog(gateway.auditLog, publicKey);
    expect(audit.entries).toBe(atVendor.payloads.length + atAgents.payloads.length);
    expect(audit.unsignedTail).toBe(0);
    const entries = fs.readFileSync(gateway.auditLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'entry');
    expect(entries.map((e) => `${e.direction}:${e.kind}`).sort()).toEqual(['in:control', ...atVendor.subjects.map((s) => `out:${s.split('.').pop()}`)].sort());
    expect(fs.readFileSync(gateway.auditLog, 'utf8')).not.toMatch(/code-reviewer|wf-1/); // hashes, not payloads
  });
});

describe('with shareLearning: false', () => {
  test('the gateway has no fingerprint kind: it is refused as unknown and never crosses', async () => {
    const link = await startLink({ customerId: C, shareLearning: false });
    try {
      const gateway = await startGateway(link, { BYOC_SHARE_LEARNING: 'false' });
      const rogue = await link.rogueVendor();
      const atHub = collect(rogue, '>');
      await atHub.ready;
      const agents = await link.agents();
      agents.publish('boundary.outbox.fingerprint', JSON.stringify(valid.fingerprint));
      agents.publish('boundary.outbox.usage', JSON.stringify(valid.usage));
      await agents.flush();
      await eventually(() => atHub.subjects.includes(`byoc.${C}.out.usage`));
      expect(atHub.subjects.filter((s) => s.includes('fingerprint'))).toEqual([]);
      await eventually(() => gateway.records().some((r) => r.reason === 'unknown-kind' && r.kind === 'fingerprint'));
      expect(await gateway.stop()).toBe(0);
    } finally {
      await link.stop();
    }
  });
});
