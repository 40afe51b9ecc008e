import { jetstream } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { BACKLOG_METRIC, BACKLOG_NAMESPACE, startBacklogReporter } from '../../customer-plane/boundary-gateway/backlog';
import { PLANE_METRICS_NAMESPACE } from '../../customer-plane/operations';
import { backlogReaderSubjects, inboxPrefix, LEAF_USERS, secretVariables } from '../../lib/nats-config';
import { generateKeyPairSync } from 'crypto';
import { startGateway } from '../servers/gateway';
import { eventually, Link, permissionErrors, startLink } from '../servers/link';

const C = 'example';
let link: Link;
let reporter: NatsConnection;

beforeAll(async () => {
  link = await startLink({ customerId: C });
  await link.provision();
  reporter = await connect({
    servers: `127.0.0.1:${link.leafPort}`, user: LEAF_USERS.backlog, pass: link.secrets[secretVariables(C).backlogReporter],
    inboxPrefix: inboxPrefix(C, LEAF_USERS.backlog), maxReconnectAttempts: 0,
  });
}, 60000);

afterAll(async () => {
  await reporter?.close();
  await link?.stop();
});

const metricsOf = (lines: string[]) => Object.fromEntries(lines.map((l) => JSON.parse(l)).map((m) => [m.Agent, m[BACKLOG_METRIC]]));

test('the reporter has a password of its own: the provisioner\'s does not open it, and its own does not open the provisioner', async () => {
  const vars = secretVariables(C);
  expect(link.secrets[vars.backlogReporter]).not.toBe(link.secrets[vars.provisioner]);
  const attempt = (user: string, pass: string) => connect({ servers: `127.0.0.1:${link.leafPort}`, user, pass, maxReconnectAttempts: 0, reconnect: false })
    .then(async (nc) => { await nc.close(); return 'connected'; }, (e: Error) => e.message);
  expect(await attempt(LEAF_USERS.backlog, link.secrets[vars.provisioner])).toMatch(/Authorization Violation/i);
  expect(await attempt(LEAF_USERS.provisioner, link.secrets[vars.backlogReporter])).toMatch(/Authorization Violation/i);
  expect(await attempt(LEAF_USERS.backlog, link.secrets[vars.backlogReporter])).toBe('connected');
});

test('the reporter\'s permissions are generated from the agents: consumer info of their durables only', () => {
  const subjects = backlogReaderSubjects(link.agentIdentities);
  expect(subjects).toContain('$JS.API.CONSUMER.INFO.WORK.agent-triage');
  expect(subjects).toContain('$JS.API.CONSUMER.INFO.EVENTS.agent-triage_ticket_opened');
  expect(subjects.every((s) => /^\$JS\.API\.CONSUMER\.INFO\.(WORK|EVENTS)\.agent-[a-z0-9-]+(_[a-z0-9_-]+)?$/.test(s))).toBe(true);
  expect(subjects.filter((s) => s.includes('.WORK.'))).toHaveLength(link.agentIdentities.length);
});

test('backlog per agent: pending plus delivered-unacknowledged over its work and event durables, as EMF lines', async () => {
  const obs = await link.agentsObserver();
  const js = jetstream(obs);
  for (let i = 0; i < 3; i++) await js.publish('work.triage', `w${i}`);
  for (let i = 0; i < 2; i++) await js.publish('events.ticket.opened', `t${i}`);
  for (let i = 0; i < 4; i++) await js.publish('events.change.proposed', `c${i}`, { msgID: `c${i}` });
  // Two of triage's work items delivered, one acknowledged: 1 still owed an acknowledgement, 1 pending.
  const work = await js.consumers.get('WORK', 'agent-triage');
  const first = await work.next({ expires: 2000 });
  const second = await work.next({ expires: 2000 });
  expect(first && second).toBeTruthy();
  await first!.ackAck();

  const lines: string[] = [];
  const errors: string[] = [];
  const r = await startBacklogReporter(reporter, link.agentIdentities.map((a) => ({ name: a.name, subscribe: a.subscribe })), {
    write: (l) => lines.push(l), onError: (a, e) => errors.push(`${a}: ${e.message}`), intervalMs: 3600000,
  });
  await r.first;
  r.stop();
  expect(errors).toEqual([]);
  expect(lines).toHaveLength(link.agentIdentities.length);
  const m = metricsOf(lines);
  expect(m.triage).toBe(2 + 2); // work: 1 pending + 1 unacknowledged; events: 2 pending
  expect(m['code-reviewer']).toBe(4);
  expect(m['test-writer']).toBe(4);
  expect(m['code-generator']).toBe(0);
  const emf = JSON.parse(lines[0]);
  expect(emf._aws.CloudWatchMetrics).toEqual([{ Namespace: PLANE_METRICS_NAMESPACE, Dimensions: [['Agent']], Metrics: [{ Name: BACKLOG_METRIC, Unit: 'Count' }] }]);
  expect(typeof emf._aws.Timestamp).toBe('number');
  expect(BACKLOG_NAMESPACE).toBe(PLANE_METRICS_NAMESPACE);

  // Acknowledging the rest empties triage's work durable.
  await second!.ackAck();
  const after: string[] = [];
  const r2 = await startBacklogReporter(reporter, [{ name: 'triage', subscribe: ['events.ticket.opened'] }], { write: (l) => after.push(l), intervalMs: 3600000 });
  await r2.first;
  r2.stop();
  expect(metricsOf(after).triage).toBe(1 + 2);
}, 30000);

test('the reporter identity can do nothing else: no fetch, no stream info, no create, no publish, no subscribe', async () => {
  const errors = permissionErrors(reporter);
  const denied = ['$JS.API.CONSUMER.MSG.NEXT.WORK.agent-triage', '$JS.API.STREAM.INFO.WORK', '$JS.API.INFO', '$JS.API.CONSUMER.DURABLE.CREATE.WORK.x',
    '$JS.API.CONSUMER.DELETE.WORK.agent-triage', '$JS.API.STREAM.NAMES', 'work.triage', 'events.ticket.opened', 'outbox.triage.x'];
  for (const subject of denied) {
    await expect(reporter.request(subject, '{}', { timeout: 500 })).rejects.toThrow();
  }
  const sub = reporter.subscribe('events.>');
  await reporter.flush();
  await eventually(() => errors.length >= denied.length + 1, 5000, 'permission errors');
  expect(errors.some((e) => e.includes('events.>'))).toBe(true);
  sub.unsubscribe();
  // Nothing was taken from the streams: triage's backlog is what it was.
  const lines: string[] = [];
  const r = await startBacklogReporter(reporter, [{ name: 'triage', subscribe: ['events.ticket.opened'] }], { write: (l) => lines.push(l), intervalMs: 3600000 });
  await r.first;
  r.stop();
  expect(metricsOf(lines).triage).toBe(3);
  expect(reporter.isClosed()).toBe(false);
}, 30000);

test('with no agent the reporter identity may publish nothing (an empty allow list would allow everything)', async () => {
  const empty = await startLink({ customerId: 'nobody', agents: [] });
  try {
    const nc = await connect({
      servers: `127.0.0.1:${empty.leafPort}`, user: LEAF_USERS.backlog, pass: empty.secrets[secretVariables('nobody').backlogReporter],
      inboxPrefix: inboxPrefix('nobody', LEAF_USERS.backlog), maxReconnectAttempts: 0,
    });
    const errors = permissionErrors(nc);
    await expect(nc.request('$JS.API.INFO', '', { timeout: 500 })).rejects.toThrow();
    await eventually(() => errors.length > 0, 5000, 'a permission error');
    await nc.close();
  } finally {
    await empty.stop();
  }
}, 60000);

test('the bundled gateway writes one EMF line per agent at start, with the backlog of each (its own identity)', async () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const gateway = await startGateway(link, { privateKey });
  try {
    const emf = () => gateway.records().filter((r) => r._aws && r.msg === 'agent backlog');
    await eventually(() => emf().length >= link.agentIdentities.length, 10000, 'EMF lines');
    const m = Object.fromEntries(emf().map((r) => [r.Agent, r[BACKLOG_METRIC]]));
    expect(Object.keys(m).sort()).toEqual(link.agentIdentities.map((a) => a.name).sort());
    expect([m.triage, m['code-reviewer'], m['code-generator']]).toEqual([3, 4, 0]);
    expect(gateway.records().filter((r) => r.msg === 'agent backlog not read')).toEqual([]);
  } finally {
    expect(await gateway.stop()).toBe(0);
  }
}, 60000);
