/**
 * Part of `npm run bench`: the boundary gateway against a raw publish over the same leaf link, in the same
 * run, on real nats-server processes (hub and leaf, generated configurations, TLS between them).
 * - raw: a client in the leaf's BOUNDARY account publishes straight on the crossing subject;
 * - gateway: an agent publishes on the outbox; the bundled gateway validates, audits and republishes.
 * Both are received by the vendor's user on the hub. Throughput: N messages as fast as they go.
 * Latency: messages paced one at a time, send-to-receive, p50 and p99.
 */
import { ChildProcess, spawn } from 'child_process';
import { generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { canonicalBytes } from '../lib/contract-validator';
import { secretVariables } from '../lib/nats-config';
import { eventually, startLink } from '../test/servers/link';

const N = Number(process.env.BENCH_GATEWAY_MESSAGES ?? 20000);
const ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? 5);
const LATENCY_SAMPLES = Number(process.env.BENCH_GATEWAY_LATENCY_SAMPLES ?? 2000);
const C = 'bench';
const SUBJECT = `byoc.${C}.out.workflow`;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ulid = (n: number) => `01J${n.toString(32).toUpperCase().split('').map((c) => CROCKFORD[parseInt(c, 32)]).join('').padStart(23, '0')}`;
/** What agents send: the canonical encoding of a valid value (anything else is refused). */
const payload = (n: number) => canonicalBytes({ workflowId: ulid(n), stepId: n % 1000, agent: 'code-reviewer', status: 'succeeded', statusCode: 200, startedAt: 1790000000000, durationMs: 1234 });
const OUTBOX = 'boundary.outbox.workflow-orchestrator.workflow';

/** Publishes acknowledged by the hub's ingest stream, pipelined: what a confirmed crossing costs without the gateway. */
async function ackedThroughput(send: NatsConnection, vendor: NatsConnection): Promise<number> {
  let received = 0;
  const sub = vendor.subscribe(SUBJECT, { callback: () => { received++; } });
  await vendor.flush();
  const js = jetstream(send);
  const start = process.hrtime.bigint();
  const window: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    window.push(js.publish(SUBJECT, payload(i + 5_000_000), { msgID: `raw-${Date.now()}-${i}` }));
    if (window.length >= 1000) await Promise.all(window.splice(0));
  }
  await Promise.all(window);
  await eventually(() => received >= N, 120000, `${N} messages at the vendor (got ${received})`);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  sub.unsubscribe();
  return N / seconds;
}

async function throughput(send: NatsConnection, sendSubject: string, vendor: NatsConnection): Promise<number> {
  let received = 0;
  const sub = vendor.subscribe(SUBJECT, { callback: () => { received++; } });
  await vendor.flush();
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    send.publish(sendSubject, payload(i));
    if (i % 500 === 499) await send.flush();
  }
  await send.flush();
  await eventually(() => received >= N, 120000, `${N} messages at the vendor (got ${received})`);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  sub.unsubscribe();
  return N / seconds;
}

async function latency(send: NatsConnection, sendSubject: string, vendor: NatsConnection): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  let waiting: (() => void) | undefined;
  const sub = vendor.subscribe(SUBJECT, { callback: () => waiting?.() });
  await vendor.flush();
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const arrived = new Promise<void>((r) => { waiting = r; });
    const t = process.hrtime.bigint();
    send.publish(sendSubject, payload(i));
    await arrived;
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  sub.unsubscribe();
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length * 0.5)], p99: samples[Math.floor(samples.length * 0.99)] };
}

async function main() {
  const link = await startLink({ customerId: C });
  const keys = generateKeyPairSync('ed25519');
  let gateway: ChildProcess | undefined;
  let out = '';
  try {
    const vars = secretVariables(C);
    const keyFile = path.join(link.dir, 'audit-key.pem');
    fs.writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    gateway = spawn(process.execPath, [...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean), path.join(__dirname, '..', 'boundary-gateway.js')], {
      env: {
        PATH: process.env.PATH!, BYOC_CUSTOMER: C, NATS_URL: `127.0.0.1:${link.leafPort}`,
        BYOC_GATEWAY_LOCAL_PASSWORD: link.secrets[vars.gatewayLocal], BYOC_GATEWAY_REMOTE_PASSWORD: link.secrets[vars.gatewayRemote], BYOC_PROVISIONER_PASSWORD: link.secrets[vars.provisioner], BYOC_BACKLOG_REPORTER_PASSWORD: link.secrets[vars.backlogReporter],
        BYOC_AUDIT_LOG: path.join(link.dir, 'audit.log'), BYOC_AUDIT_KEY: keyFile,
        BYOC_AGENTS: JSON.stringify(Object.fromEntries(link.agentIdentities.map((a) => [a.name, a.outbox]))),
        // The contract's rate limits would refuse all but a burst: the benchmark measures the path, not the limit.
        BYOC_RATE_SCALE: '100000',
        BYOC_MAX_IN_FLIGHT: String(N),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.on('data', (d) => { out += d; });
    gateway.stderr!.on('data', (d) => { out += d; });
    await eventually(() => out.includes('"msg":"ready"'), 10000, 'gateway ready');

    const vendor = await link.vendor();
    const raw = await link.gateway();
    const agents = await link.agent('workflow-orchestrator');
    // Warm both paths (interest propagation to the leaf, JIT).
    await throughput(raw, SUBJECT, vendor);
    await throughput(agents, OUTBOX, vendor);

    // Rounds of raw then gateway, back to back: the ratio of each round is measured under the same load (these
    // machines are shared), and the median round is reported with the spread.
    const rounds: { raw: number; gw: number; ratio: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const rawR = await throughput(raw, SUBJECT, vendor);
      const gwR = await throughput(agents, OUTBOX, vendor);
      rounds.push({ raw: rawR, gw: gwR, ratio: gwR / rawR });
    }
    rounds.sort((a, b) => a.ratio - b.ratio);
    const median = rounds[Math.floor(rounds.length / 2)];
    const rawRate = median.raw;
    const gwRate = median.gw;
    const ackedRate = await ackedThroughput(raw, vendor);
    const rawLat = await latency(raw, SUBJECT, vendor);
    const gwLat = await latency(agents, OUTBOX, vendor);

    console.log(`\ngateway benchmark: ${N} messages per throughput run, ${LATENCY_SAMPLES} paced latency samples, hub and leaf on loopback over TLS`);
    console.log(`  raw publish over the leaf link   ${rawRate.toFixed(0).padStart(8)} msg/s   p50 ${rawLat.p50.toFixed(3)} ms  p99 ${rawLat.p99.toFixed(3)} ms`);
    console.log(`  raw publish acked by the hub     ${ackedRate.toFixed(0).padStart(8)} msg/s`);
    console.log(`  through the boundary gateway     ${gwRate.toFixed(0).padStart(8)} msg/s   p50 ${gwLat.p50.toFixed(3)} ms  p99 ${gwLat.p99.toFixed(3)} ms   (canonical check, audit intent + outcome, hub-acknowledged)`);
    console.log(`  gateway / raw throughput ratio   ${(gwRate / rawRate).toFixed(2)}   (median of ${ROUNDS} rounds, range ${rounds[0].ratio.toFixed(2)} to ${rounds[rounds.length - 1].ratio.toFixed(2)}; before intents were written per batch: 0.22 to 0.32; target 0.5)`);
    console.log(`  gateway / acked raw ratio        ${(gwRate / ackedRate).toFixed(2)}`);
    console.log(`  added latency                    p50 ${(gwLat.p50 - rawLat.p50).toFixed(3)} ms  p99 ${(gwLat.p99 - rawLat.p99).toFixed(3)} ms   (target p99 < 2 ms)`);
  } finally {
    if (gateway && gateway.exitCode === null) {
      const stopped = new Promise((r) => gateway!.once('exit', r));
      gateway.kill('SIGTERM');
      await stopped;
      const last = out.trim().split('\n').filter((l) => l.includes('"msg":"stopped"')).pop();
      if (last) console.log(`  gateway counters                 ${JSON.stringify(JSON.parse(last).counters)}`);
    }
    await link.stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
