import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BOUNDARY_CONTRACT, Direction, subjectOf } from '../../lib/boundary-contract';
import { crossingKinds, hubConfig, leafConfig } from '../../lib/nats-config';
import { collect, eventually, Link, permissionErrors, startLink } from '../servers/link';

const C = 'example';
const out = (kind: string, customer = C) => subjectOf(BOUNDARY_CONTRACT.kinds.find((k) => k.name === kind)!, customer);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the generated configurations', () => {
  test('are valid for nats-server (nats-server -t), with and without fingerprint sharing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-conf-'));
    const env = { ...process.env, BYOC_GATEWAY_PASSWORD: 'x', BYOC_AGENTS_PASSWORD: 'x', BYOC_LEAF_REMOTE_URL: 'tls://u:p@127.0.0.1:7422', BYOC_LEAF_EXAMPLE_PASSWORD: 'x', BYOC_VENDOR_EXAMPLE_PASSWORD: 'x' };
    fs.writeFileSync(path.join(dir, 'cert.pem'), '');
    for (const shareLearning of [true, false]) {
      fs.writeFileSync(path.join(dir, 'leaf.conf'), leafConfig({ customerId: C, shareLearning, listen: { host: '127.0.0.1', port: 4222 }, storeDir: dir }));
      expect(execFileSync('nats-server', ['-t', '-c', path.join(dir, 'leaf.conf')], { env, encoding: 'utf8', stdio: 'pipe' })).toBe('');
    }
    const tls = require('../servers/nats').testCertificates();
    fs.writeFileSync(path.join(dir, 'hub.conf'), hubConfig({ customers: [{ customerId: C }], listen: { host: '127.0.0.1', port: 4222 }, leafListen: { host: '127.0.0.1', port: 7422 }, tls: { certFile: tls.cert, keyFile: tls.key } }));
    expect(execFileSync('nats-server', ['-t', '-c', path.join(dir, 'hub.conf')], { env, encoding: 'utf8', stdio: 'pipe' })).toBe('');
  });

  test('carry no secret: passwords and the remote URL are environment references', () => {
    const leaf = leafConfig({ customerId: C, listen: { host: '127.0.0.1', port: 4222 }, storeDir: '/data' });
    expect(leaf).toMatch(/password: \$BYOC_AGENTS_PASSWORD/);
    expect(leaf).toMatch(/url: \$BYOC_LEAF_REMOTE_URL/);
    expect(leaf).not.toMatch(/_INBOX\.>"\]\s*}/); // no subscribe allow of the global inbox
  });
});

describe('on a real hub and leaf linked over TLS', () => {
  let link: Link;
  beforeAll(async () => {
    link = await startLink({ customerId: C, otherCustomers: ['other-co'] });
  });
  afterAll(async () => {
    await link?.stop();
  });

  test('each outbound kind crosses from the gateway to the vendor, on its own subject', async () => {
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
  });

  test('control messages cross from the vendor to the gateway', async () => {
    const gateway = await link.gateway();
    const seen = collect(gateway, out('control'));
    await seen.ready;
    const vendor = await link.vendor();
    await eventually(async () => {
      vendor.publish(out('control'), '{"action":"set-config-version"}');
      await vendor.flush();
      await sleep(50);
      return seen.payloads.length > 0;
    }, 5000, 'control message at the gateway');
  });

  test('agents cannot publish on crossing subjects, another customer\'s, or system subjects, nor listen to everything', async () => {
    const vendor = await link.vendor();
    const atVendor = collect(vendor, crossingKinds({ customerId: C }).filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR).map((k) => subjectOf(k, C)));
    const rogue = await link.rogueVendor();
    const atHub = collect(rogue, '>');
    await Promise.all([atVendor.ready, atHub.ready]);
    const agents = await link.agents();
    const errors = permissionErrors(agents);
    for (const subject of [out('workflow'), out('workflow', 'other-co'), `byoc.${C}.in.control`, '$SYS.REQ.SERVER.PING', '$JS.API.INFO.x', '_INBOX.anything', `boundary.inbox.control`]) {
      agents.publish(subject, '{}');
    }
    agents.subscribe('>');
    await agents.flush().catch(() => undefined);
    await sleep(300);
    // The proper path still works: the gateway's message arrives, the agents' never did.
    const gateway = await link.gateway();
    await eventually(async () => {
      gateway.publish(out('usage'), '{"sentinel":true}');
      await gateway.flush();
      await sleep(50);
      return atVendor.payloads.includes('{"sentinel":true}');
    });
    expect(atVendor.payloads.filter((p) => p !== '{"sentinel":true}' && !p.startsWith('{"probe"'))).toEqual([]);
    // Nothing the agents sent reached the customer's hub account at all.
    expect(atHub.payloads.filter((p) => p === '{}')).toEqual([]);
    await eventually(() => errors.length >= 6, 3000, 'permission violations reported to the agents');
  });

  test('the gateway may publish only the contract\'s outbound subjects of its own customer', async () => {
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
  });

  test('even with interest for everything in the linked account, the remote refuses system, JetStream and global-inbox subjects', async () => {
    const observer = collect(await link.boundaryObserver(), '>');
    await observer.ready;
    await sleep(200); // let the observer's interest reach the hub
    const rogue = await link.rogueVendor();
    for (const subject of ['$SYS.REQ.SERVER.PING', '$JS.API.INFO', `$JS.byoc-${C}.API.INFO`, '_INBOX.steal', '$KV.config.x']) rogue.publish(subject, '{"rogue":true}');
    await eventually(async () => {
      rogue.publish('probe.after', '{"sentinel":4}');
      await rogue.flush();
      await sleep(50);
      return observer.payloads.includes('{"sentinel":4}');
    });
    expect(observer.subjects.filter((s) => /^(\$SYS|\$JS|_INBOX|\$KV)/.test(s))).toEqual([]);
  });

  test('JetStream on the leaf is unreachable from the hub', async () => {
    const rogue = await link.rogueVendor();
    for (const subject of [`$JS.byoc-${C}.API.INFO`, '$JS.API.INFO']) {
      await expect(rogue.request(subject, '', { timeout: 500 })).rejects.toThrow(/no responders|timeout/i);
    }
    // While on the leaf itself it answers.
    const agents = await link.agents();
    const info = await agents.request('$JS.API.INFO', '', { timeout: 2000 });
    expect(JSON.parse(info.string()).type).toBe('io.nats.jetstream.api.v1.account_info_response');
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
  });
});
