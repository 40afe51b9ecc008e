import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tls from 'tls';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { BOUNDARY_CONTRACT, Direction, subjectOf } from '../../lib/boundary-contract';
import { agentIdentities, crossingKinds, inboxPrefix, LEAF_USERS, leafConfig, REJECTION_STREAM, secretVariables } from '../../lib/nats-config';
import { AGENT_CATALOG } from '../../agents/catalog';
import { collect, eventually, Link, permissionErrors, startLink } from '../servers/link';
import { freePort, siblingCertificate, testCertificates } from '../servers/nats';

const C = 'example';
const out = (kind: string, customer = C) => subjectOf(BOUNDARY_CONTRACT.kinds.find((k) => k.name === kind)!, customer);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const agentsOf = (shareLearning = true) => agentIdentities(AGENT_CATALOG, { customerId: C, shareLearning });

describe('the generated configurations', () => {
  test('are valid for nats-server (nats-server -t), with and without fingerprint sharing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-conf-'));
    try {
      const vars = secretVariables(C);
      const env: Record<string, string> = { ...process.env as Record<string, string>, [vars.gatewayLocal]: 'x', [vars.gatewayRemote]: 'y', [vars.provisioner]: 'z', [vars.backlogReporter]: 'w' };
      for (const a of agentsOf()) env[vars.agent(a.name)] = 'x';
      const certs = testCertificates(dir);
      for (const shareLearning of [true, false]) {
        fs.writeFileSync(path.join(dir, 'leaf.conf'), leafConfig({ customerId: C, shareLearning, agents: agentsOf(shareLearning), listen: { host: '127.0.0.1', port: 4222 }, storeDir: dir, hubCaFile: certs.ca,
          hub: { host: 'localhost', port: 7422 }, hubCredentialsFile: path.join(dir, 'leaf.creds') }));
        expect(execFileSync('nats-server', ['-t', '-c', path.join(dir, 'leaf.conf')], { env, encoding: 'utf8', stdio: 'pipe' })).toBe('');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('carry no secret, give no identity the account-wide JetStream API but the provisioner, and trust only the given CA', () => {
    const leaf = leafConfig({ customerId: C, agents: agentsOf(), listen: { host: '127.0.0.1', port: 4222 }, storeDir: '/data', hubCaFile: '/tmp/hub-ca.pem',
      hub: { host: 'hub.byoc.vendor.example', port: 7422 }, hubCredentialsFile: '/tmp/hub.creds' });
    expect(leaf).toMatch(/password: \$BYOC_AGENT_CODE_REVIEWER_PASSWORD/);
    // The hub by its pinned name, no credentials in the URL: the vendor-issued .creds file.
    expect(leaf).toContain('url: "tls://hub.byoc.vendor.example:7422"\n      credentials: "/tmp/hub.creds"');
    expect(leaf.match(/"\$JS\.API\.>"/g)).toHaveLength(1); // the provisioner's
    expect(leaf).toMatch(/user: "provisioner"[^\n]*\n\s*permissions: \{ publish: \{ allow: \["\$JS\.API\.>"\] \}/);
    expect(leaf).toContain('ca_file: "/tmp/hub-ca.pem"');
    expect(leaf).not.toMatch(/_INBOX\.>"\]\s*}/); // no subscribe allow of the global inbox
    expect(leaf.match(/limits: \{ max_connections: 1 \}/g)).toHaveLength(1); // GATEWAY
    expect(leaf.match(/limits: \{ max_connections: 2 \}/g)).toHaveLength(1); // BOUNDARY: the gateway and the leaf-node connection
  });
});

describe('on a real hub and leaf linked over TLS', () => {
  let link: Link;
  beforeAll(async () => {
    link = await startLink({ customerId: C, otherCustomers: ['other-co'] });
    await link.provision();
  });
  afterAll(async () => {
    await link?.stop();
  });

  test('each outbound kind crosses from the gateway\'s remote identity to the vendor, on its own subject', async () => {
    const vendor = await link.vendor();
    const outbound = crossingKinds({ customerId: C }).filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR);
    const seen = collect(vendor, outbound.map((k) => subjectOf(k, C)));
    await seen.ready;
    const gateway = await link.gateway();
    await eventually(async () => {
      for (const k of outbound) gateway.publish(subjectOf(k, C), JSON.stringify({ probe: k.name }));
      await gateway.flush();
      await sleep(50);
      return outbound.every((k) => seen.subjects.includes(subjectOf(k, C)));
    }, 5000, 'every outbound kind at the vendor');
    // The hub's ingest stream acknowledges a crossing to the gateway (what the gateway records as delivered).
    const ack = await jetstream(gateway).publish(out('usage'), '{"acked":true}');
    expect(ack.stream).toBe('BYOC_INGEST');
  });

  test('each inbound kind (control, the pool\'s learnings) crosses from the vendor to the gateway\'s remote identity, on its own subject', async () => {
    const gateway = await link.gateway();
    const inbound = crossingKinds({ customerId: C }).filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER);
    expect(inbound.map((k) => k.name)).toEqual(['control', 'learning']);
    const seen = collect(gateway, inbound.map((k) => subjectOf(k, C)));
    await seen.ready;
    const vendor = await link.vendor();
    await eventually(async () => {
      for (const k of inbound) vendor.publish(subjectOf(k, C), JSON.stringify({ probe: k.name }));
      await vendor.flush();
      await sleep(50);
      return inbound.every((k) => seen.subjects.includes(subjectOf(k, C)));
    }, 5000, 'every inbound kind at the gateway');
  });

  test('an agent cannot publish on crossing subjects, another customer\'s, system subjects, as another agent, or an undeclared kind', async () => {
    const gatewayLocal = await link.gatewayLocal();
    const atGateway = collect(gatewayLocal, 'boundary.outbox.>');
    const rogue = await link.rogueVendor();
    const atHub = collect(rogue, '>');
    await Promise.all([atGateway.ready, atHub.ready]);
    const agent = await link.agent('code-reviewer');
    const errors = permissionErrors(agent);
    const forbidden = [out('workflow'), out('workflow', 'other-co'), `byoc.${C}.in.control`, '$SYS.REQ.SERVER.PING', '$JS.API.INFO', '_INBOX.anything',
      'boundary.inbox.control', 'boundary.inbox.learning', 'boundary.outbox.usage-meter.usage', 'boundary.outbox.code-reviewer.fingerprint', 'dead.triage', 'work.planner'];
    for (const subject of forbidden) agent.publish(subject, '{"forbidden":true}');
    agent.subscribe('>');
    await agent.flush().catch(() => undefined);
    // The proper path still works: the usage meter hands its own declared kind to the gateway.
    const meter = await link.agent('usage-meter');
    await eventually(async () => {
      meter.publish('boundary.outbox.usage-meter.usage', '{"sentinel":1}');
      await meter.flush();
      await sleep(50);
      return atGateway.payloads.includes('{"sentinel":1}');
    });
    expect(atGateway.subjects.filter((s) => s !== 'boundary.outbox.usage-meter.usage')).toEqual([]);
    expect(atHub.payloads.filter((p) => p.includes('forbidden'))).toEqual([]);
    await eventually(() => errors.length >= forbidden.length + 1, 3000, 'permission violations reported to the agent');
  });

  test('an agent cannot reach another agent\'s work, bucket or dead letters, nor any JetStream object it does not own', async () => {
    const agent = await link.agent('code-reviewer');
    const refused = async (subject: string, body = '') => {
      await expect(agent.request(subject, body, { timeout: 1000 })).rejects.toThrow(/permission|timeout|no responders/i);
    };
    for (const subject of [
      '$JS.API.CONSUMER.MSG.NEXT.WORK.agent-triage', '$JS.API.CONSUMER.INFO.WORK.agent-triage', '$JS.API.STREAM.INFO.KV_processed-triage',
      '$JS.API.DIRECT.GET.KV_processed-triage.$KV.processed-triage.x', '$JS.API.STREAM.INFO.WORK', '$JS.API.STREAM.LIST', '$JS.API.STREAM.PURGE.AGENT_DEAD_LETTERS',
      '$JS.API.CONSUMER.DELETE.WORK.agent-code-reviewer', `$JS.API.STREAM.INFO.${REJECTION_STREAM}`,
    ]) await refused(subject);
    // Its own consumer answers.
    const info = await agent.request('$JS.API.CONSUMER.INFO.WORK.agent-code-reviewer', '', { timeout: 2000 });
    expect(JSON.parse(info.string()).name).toBe('agent-code-reviewer');
  });

  test('an agent cannot forge an inbound control message by any server-side publish: republish, sources, mirrors, deliver subjects', async () => {
    const orchestrator = await link.agent('workflow-orchestrator'); // the agent that receives control messages
    const atOrchestrator = collect(orchestrator, 'boundary.inbox.control');
    await atOrchestrator.ready;
    const agent = await link.agent('code-reviewer');
    const attempts: [string, object][] = [
      ['$JS.API.STREAM.CREATE.FORGE', { name: 'FORGE', subjects: ['events.change.reviewed'], republish: { src: '>', dest: 'boundary.inbox.control' } }],
      ['$JS.API.STREAM.CREATE.FORGE2', { name: 'FORGE2', sources: [{ name: 'WORK' }] }],
      ['$JS.API.STREAM.CREATE.FORGE3', { name: 'FORGE3', mirror: { name: 'WORK' } }],
      ['$JS.API.STREAM.UPDATE.WORK', { name: 'WORK', subjects: ['work.>'], republish: { src: '>', dest: 'boundary.inbox.control' } }],
      ['$JS.API.CONSUMER.CREATE.WORK', { stream_name: 'WORK', config: { deliver_subject: 'boundary.inbox.control', filter_subject: 'work.code-reviewer' } }],
      ['$JS.API.CONSUMER.DURABLE.CREATE.WORK.forge', { stream_name: 'WORK', config: { durable_name: 'forge', deliver_subject: 'boundary.inbox.control' } }],
      ['$JS.API.CONSUMER.CREATE.WORK.forge.work.code-reviewer', { stream_name: 'WORK', config: { name: 'forge', deliver_subject: 'boundary.inbox.control' } }],
    ];
    for (const [subject, body] of attempts) {
      await expect(agent.request(subject, JSON.stringify(body), { timeout: 1000 })).rejects.toThrow(/permission|timeout|no responders/i);
    }
    // Then it publishes what a republish would have carried: nothing reaches the receiver of control messages.
    agent.publish('events.change.reviewed', '{"action":"dispatch-workflow","forged":true}');
    await agent.flush();
    const jsm = await jetstreamManager(await link.provisioner());
    const names: string[] = [];
    for await (const s of jsm.streams.names()) names.push(s);
    expect(names.filter((n) => n.startsWith('FORGE'))).toEqual([]);
    expect((await jsm.streams.info('WORK')).config.republish).toBeUndefined();
    await sleep(200);
    expect(atOrchestrator.payloads).toEqual([]);
  });

  test('the gateway\'s remote identity may publish only the contract\'s outbound subjects of its own customer', async () => {
    const gateway = await link.gateway();
    const errors = permissionErrors(gateway);
    const rogue = await link.rogueVendor();
    const atHub = collect(rogue, '>');
    await atHub.ready;
    for (const subject of [`byoc.${C}.out.secrets`, `byoc.${C}.out.workflow.extra`, out('workflow', 'other-co'), `byoc.${C}.in.control`, 'work.code-generator', '_INBOX.x']) {
      gateway.publish(subject, '{"forbidden":true}');
    }
    gateway.publish(out('workflow'), '{"sentinel":2}');
    await gateway.flush();
    await eventually(() => atHub.payloads.includes('{"sentinel":2}'));
    expect(atHub.payloads.filter((p) => p === '{"forbidden":true}')).toEqual([]);
    await eventually(() => errors.length >= 6, 3000, 'permission violations reported to the gateway');
    await gateway.close();
  });

  test('the vendor may publish only control messages; what else a compromised hub sends never reaches the leaf', async () => {
    const vendor = await link.vendor();
    const errors = permissionErrors(vendor);
    vendor.publish(`byoc.${C}.in.shell`, '{}');
    vendor.publish('work.code-generator', '{}');
    await vendor.flush();
    await eventually(() => errors.length >= 2, 3000, 'vendor permission violations');

    const agentsSide = collect(await link.agentsObserver(), '>');
    const gateway = await link.gateway();
    const atGateway = collect(gateway, out('control'));
    await Promise.all([agentsSide.ready, atGateway.ready]);
    const before = await link.leafInMsgs();
    const rogue = await link.rogueVendor();
    for (const subject of [`byoc.${C}.in.shell`, 'work.code-generator', 'events.change.merged', 'boundary.inbox.control', `$JS.byoc-${C}.API.STREAM.LIST`, '$JS.API.STREAM.LIST', '$SYS.REQ.SERVER.PING', '_INBOX.x']) {
      rogue.publish(subject, '{"rogue":true}');
    }
    rogue.publish(out('control'), '{"sentinel":3}');
    await rogue.flush();
    await eventually(() => atGateway.payloads.includes('{"sentinel":3}'));
    // Only the one message with interest on the leaf crossed; nothing reached the agents' account.
    expect(await link.leafInMsgs() - before).toBe(1);
    expect(agentsSide.payloads.filter((p) => p.includes('rogue'))).toEqual([]);
    await gateway.close();
  });

  test('even with interest for everything in the linked account, the remote refuses system, JetStream and global-inbox subjects', async () => {
    const observer = collect(await link.boundaryObserver(), '>');
    await observer.ready;
    await sleep(200); // let the observer's interest reach the hub
    const rogue = await link.rogueVendor();
    for (const subject of ['$SYS.REQ.SERVER.PING', '$JS.API.INFO', `$JS.byoc-${C}.API.INFO`, '_INBOX.steal', '$KV.config.x']) rogue.publish(subject, '{"rogue":true}');
    // The sentinel goes the one way anything from the vendor reaches the leaf: an inbound kind's subject.
    await eventually(async () => {
      rogue.publish(`byoc.${C}.in.control`, '{"sentinel":4}');
      await rogue.flush();
      await sleep(50);
      return observer.payloads.includes('{"sentinel":4}');
    });
    expect(observer.subjects.filter((s) => /^(\$SYS|\$JS|_INBOX|\$KV)/.test(s))).toEqual([]);
  });

  test('JetStream on the leaf is unreachable from the hub', async () => {
    const rogue = await link.rogueVendor();
    await expect(rogue.request(`$JS.byoc-${C}.API.INFO`, '', { timeout: 500 })).rejects.toThrow(/no responders|timeout/i);
    // The hub's own JetStream (the vendor's ingest stream) answers there, never the leaf's (domain byoc-<customer>).
    const hubInfo = JSON.parse((await rogue.request('$JS.API.INFO', '', { timeout: 2000 })).string());
    expect(hubInfo.domain).toBeUndefined();
    expect(hubInfo.streams).toBe(1);
    const info = await (await link.provisioner()).request('$JS.API.INFO', '', { timeout: 2000 });
    expect(JSON.parse(info.string()).type).toBe('io.nats.jetstream.api.v1.account_info_response');
  });
});

describe('single-instance identities', () => {
  test('one connection at a time per gateway identity: a stolen password cannot open a second, bypassing session', async () => {
    const link = await startLink({ customerId: C, observers: false });
    try {
      const vars = secretVariables(C);
      const second = (user: string, pass: string) => connect({ servers: `127.0.0.1:${link.leafPort}`, user, pass, maxReconnectAttempts: 0, timeout: 2000 });
      const first = await link.gateway();
      await first.flush();
      await expect(second(LEAF_USERS.gatewayRemote, link.secrets[vars.gatewayRemote])).rejects.toThrow();
      const local = await link.gatewayLocal();
      await local.flush();
      await expect(second(LEAF_USERS.gatewayLocal, link.secrets[vars.gatewayLocal])).rejects.toThrow();
      await eventually(() => (link.leaf.log().match(/maximum account active connections exceeded/g) ?? []).length >= 2, 3000, 'the leaf refusing both second connections');
      // The first sessions are untouched.
      expect(first.isClosed() || local.isClosed()).toBe(false);
      // The two identities have different secrets: the local password does not open the remote identity.
      expect(link.secrets[vars.gatewayLocal]).not.toBe(link.secrets[vars.gatewayRemote]);
      await first.close();
      await expect(second(LEAF_USERS.gatewayRemote, link.secrets[vars.gatewayLocal])).rejects.toThrow(/Authorization Violation/i);
    } finally {
      await link.stop();
    }
  });
});

describe('a hub that advertises other leaf-node URLs', () => {
  /** A TLS listener posing as a hub; records whether a leaf completed a handshake and what it sent. */
  async function impostor(cert: { cert: string; key: string }) {
    const port = await freePort();
    const seen = { handshakes: 0, attempts: 0, data: '' };
    const server = tls.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, (socket) => {
      seen.handshakes++;
      socket.on('data', (d) => { seen.data += d.toString(); });
      socket.on('error', () => undefined);
    });
    server.on('tlsClientError', () => { seen.attempts++; });
    // nats-server expects an INFO before TLS on leaf connections: send it in clear, then upgrade.
    const net = await import('net');
    const front = net.createServer((raw) => {
      seen.attempts++;
      raw.write(`INFO {"server_id":"impostor","version":"2.9.10","proto":1,"tls_required":true,"max_payload":1048576,"client_id":1,"leafnode_urls":["127.0.0.1:${port}"]}\r\n`);
      server.emit('connection', raw);
    });
    await new Promise<void>((r) => front.listen(port, '127.0.0.1', r));
    return { port, seen, close: () => { front.close(); server.close(); } };
  }

  test.each([
    ['a certificate from another CA', 'other-ca', false],
    ['a certificate from the vendor\'s CA for another name (valid for the IP it was dialed at)', 'other-name', false],
    ['the hub\'s own name from the vendor\'s CA (control case: a holder of the hub\'s certificate)', 'hub-name', true],
  ])('the leaf hands its credentials to none presenting %s', async (_name, kind, expectCredentials) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-impostor-'));
    let link: Link | undefined;
    let fake: Awaited<ReturnType<typeof impostor>> | undefined;
    try {
      const hubCerts = testCertificates(dir);
      const certs = kind === 'other-ca' ? testCertificates(dir)
        : siblingCertificate(hubCerts, 'impostor', kind === 'hub-name' ? 'DNS:localhost' : 'IP:127.0.0.1,DNS:impostor.example');
      fake = await impostor(certs);
      link = await startLink({ customerId: C, certificates: hubCerts, hubExtra: { leafnodes: `  advertise: "127.0.0.1:${fake.port}"` } });
      // The hub goes away: the leaf tries every URL it knows, the advertised one included.
      await link.hub.stop();
      await eventually(() => fake!.seen.attempts > 0, 20000, 'the leaf dialing the advertised URL');
      await sleep(1500);
      // The leaf's identity is a user JWT and a signature of the server's nonce (its seed never leaves it): only
      // a holder of the hub's certificate gets even those.
      if (expectCredentials) expect(fake.seen.data).toMatch(/CONNECT \{.*"jwt":"eyJ[^"]+","sig":"/);
      else expect(fake.seen.data).not.toMatch(/"jwt"|"sig"|"pass"|"user"|CONNECT/);
    } finally {
      fake?.close();
      await link?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('with shareLearning: false', () => {
  let link: Link;
  beforeAll(async () => {
    link = await startLink({ customerId: C, shareLearning: false });
  });
  afterAll(async () => {
    await link?.stop();
  });

  test('no fingerprint crosses (the subject is absent from the rules), control messages still do', async () => {
    const conf = fs.readFileSync(path.join(link.dir, 'leaf.conf'), 'utf8');
    expect(conf).not.toContain('fingerprint');
    const rogue = await link.rogueVendor();
    const atHub = collect(rogue, '>');
    await atHub.ready;
    const gateway = await link.gateway();
    const errors = permissionErrors(gateway);
    gateway.publish(out('fingerprint'), '{"fp":true}');
    gateway.publish(out('usage'), '{"sentinel":5}');
    await gateway.flush();
    await eventually(() => atHub.payloads.includes('{"sentinel":5}'));
    expect(atHub.payloads).not.toContain('{"fp":true}');
    await eventually(() => errors.length >= 1);

    const atGateway = collect(gateway, out('control'));
    await atGateway.ready;
    const vendor = await link.vendor();
    await eventually(async () => {
      vendor.publish(out('control'), '{"c":1}');
      await vendor.flush();
      await sleep(50);
      return atGateway.payloads.length > 0;
    });
    void inboxPrefix;
  });
});
