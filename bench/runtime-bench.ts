/**
 * Part of `npm run bench`: the agent runtime against a raw JetStream consumer on the same leaf, in the same
 * run: messages/s of the runtime with a no-op agent (its per-item cost: idempotency check and record,
 * explicit ack) against a consumer that only acks; cold start to ready; bundle size.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { durableOf, inboxPrefix, secretVariables } from '../lib/nats-config';
import { eventually, startLink } from '../test/servers/link';
import { startMoto } from '../test/servers/moto';

const N = Number(process.env.BENCH_RUNTIME_MESSAGES ?? 5000);
const BUNDLE = path.join(__dirname, '..', 'agent-runtime.js');

async function main() {
  const [link, moto] = await Promise.all([startLink({ customerId: 'bench' }), startMoto()]);
  try {
    const sm = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.env.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
    const arn = (await sm.send(new CreateSecretCommand({ Name: 'bench', SecretString: link.secrets[secretVariables('bench').agent('code-reviewer')] }))).ARN!;
    // The streams and each agent's consumer, as the gateway provisions them at start.
    await link.provision();
    const nc = await link.agent('request-router'); // may publish to every agent's work subject
    const jsm = await jetstreamManager(await link.provisioner());
    const js = jetstream(nc);
    const publish = async (subject: string) => {
      for (let i = 0; i < N; i++) {
        js.publish(subject, '{}', { msgID: `${subject}-${i}` }).catch(() => undefined);
        if (i % 500 === 499) await nc.flush();
      }
      await eventually(async () => (await jsm.streams.info('WORK')).state.messages >= N, 60000, 'published');
    };

    // Raw: an agent's own durable consumer, consumed by a bare client that acks each message, nothing else.
    await publish('work.code-generator');
    const consumer = await jetstream(await link.agent('code-generator')).consumers.get('WORK', durableOf('code-generator'));
    let t = process.hrtime.bigint();
    let got = 0;
    const messages = await consumer.consume({ max_messages: 16 });
    for await (const m of messages) {
      await m.ackAck();
      if (++got === N) break;
    }
    const rawRate = N / (Number(process.hrtime.bigint() - t) / 1e9);

    // The runtime with a no-op agent, processing the same number of items.
    await publish('work.code-reviewer');
    t = process.hrtime.bigint();
    const child = spawn(process.execPath, [BUNDLE], {
      env: { PATH: process.env.PATH!, ...moto.env, BYOC_AGENT: 'code-reviewer', BYOC_TRIGGER: 'event', BYOC_AGENT_IMPL: 'noop', BYOC_CUSTOMER: 'bench', NATS_URL: `127.0.0.1:${link.leafPort}`, NATS_INBOX_PREFIX: inboxPrefix('bench', 'code-reviewer'), NATS_PASSWORD_SECRET_ARN: arn },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    await eventually(() => out.includes('"msg":"ready"'), 15000, 'runtime ready');
    const coldStartMs = Number(process.hrtime.bigint() - t) / 1e6;
    const start = process.hrtime.bigint();
    await eventually(async () => (await jsm.streams.info('WORK')).state.messages === 0, 120000, 'runtime drained the work');
    const runtimeRate = N / (Number(process.hrtime.bigint() - start) / 1e9);
    child.kill('SIGTERM');

    const bundleBytes = fs.statSync(BUNDLE).size;
    console.log(`\nagent runtime benchmark: ${N} items each, leaf on loopback`);
    console.log(`  raw JetStream consumer (ack only)   ${rawRate.toFixed(0).padStart(7)} msg/s`);
    console.log(`  runtime, no-op agent                ${runtimeRate.toFixed(0).padStart(7)} msg/s   ratio ${(runtimeRate / rawRate).toFixed(2)} (target >= 0.80)`);
    console.log(`  cold start, spawn to ready          ${coldStartMs.toFixed(0).padStart(7)} ms      (target < 400 ms; includes the Secrets Manager read and NATS connect)`);
    console.log(`  bundle size (minified)              ${(bundleBytes / 1024 / 1024).toFixed(2).padStart(7)} MB      (target < 2.5 MB)`);
  } finally {
    await link.stop();
    await moto.stop();
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
