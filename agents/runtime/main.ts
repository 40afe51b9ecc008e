/**
 * Entry point of every agent container (bundled by esbuild into dist/agent-runtime.js). Configuration is
 * validated at start; the NATS password is read from Secrets Manager, never from the environment.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { ConfigError, loadConfig } from './config';
import { HostContext, RuntimeHost } from './host';
import { NO_TRACING } from './tracing-hooks';
import { Telemetry } from './telemetry';
import { NoopAgent, ReferenceAgent } from './reference-agent';

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const log = pino({ base: { service: 'agent-runtime' } });
  let config;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      log.fatal({ error: e.message }, 'invalid configuration');
      process.exit(2);
    }
    throw e;
  }
  const secrets = new SecretsManagerClient({});
  // Read at point of use and not kept: the value lives only in this call and the connection options.
  const secret = async (arn: string) => (await secrets.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString ?? '';
  const nc = await connect({ servers: config.natsUrl, user: config.natsUser, pass: await secret(config.natsPasswordSecretArn), inboxPrefix: config.inboxPrefix, name: `agent-${config.agent}` });
  const ctx: HostContext = { log: { info: (f, m) => log.info(f, m), warn: (f, m) => log.warn(f, m) }, secret };
  const agent = process.env.BYOC_AGENT_IMPL === 'noop' ? new NoopAgent() : new ReferenceAgent(nc, config.agent);
  const telemetry = process.env.OTEL_EXPORTER_OTLP_ENDPOINT
    ? new Telemetry(config.agent, process.env.OTEL_EXPORTER_OTLP_ENDPOINT, Number(process.env.OTEL_METRIC_EXPORT_INTERVAL ?? 15000))
    : undefined;
  // Every item runs in a span of these hooks and every header set the host publishes carries their context.
  const tracing = NO_TRACING;
  const host = new RuntimeHost(nc, agent, config, ctx, (o) => telemetry?.record(o), tracing);
  host.onFatal = (e) => {
    log.fatal({ error: e.message }, 'a trigger path stopped; exiting so that the task is replaced');
    process.exit(1);
  };
  await host.start();
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'draining');
    await host.stop();
    await telemetry?.shutdown(); // flushes the last metrics
    await nc.drain();
    log.info({ counters: host.counters }, 'stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  log.info({ agent: config.agent, startMs: Number(process.hrtime.bigint() - started) / 1e6 }, 'ready');
}

main().catch((e) => {
  console.error(JSON.stringify({ level: 60, msg: 'agent runtime failed', error: (e as Error).message }));
  process.exit(1);
});
