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
import { LlmConfigError, llmFromEnv } from './llm';
import { openStores, secretsByName, Stores } from './stores';
import { platformAgent } from '../platform';

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
  const telemetry = process.env.OTEL_EXPORTER_OTLP_ENDPOINT
    ? new Telemetry(config.agent, process.env.OTEL_EXPORTER_OTLP_ENDPOINT, Number(process.env.OTEL_METRIC_EXPORT_INTERVAL ?? 15000))
    : undefined;
  // Every item runs in a span of these hooks and every header set the host publishes carries their context.
  const tracing = telemetry?.hooks ?? NO_TRACING;
  // The stores the agent declared (its database as its own user with IAM tokens, its cache), opened before it
  // takes work; its migrations applied at start under the advisory lock.
  let stores: Stores | undefined;
  const platform = platformAgent(config.agent, () => stores?.postgres, config.contract);
  let llm;
  try {
    stores = await openStores(process.env, {
      agent: config.agent, migrations: platform?.migrations ?? [], readSecret: secret,
      onPoolError: (e) => log.warn({ error: e.message }, 'database connection lost; the pool replaces it'),
    });
    // The LLM path the plane is configured for (the vendor's proxy, or the customer's own keys), when it has one.
    if (process.env.BYOC_LLM_MODE) llm = await llmFromEnv(process.env, secretsByName(process.env, secret));
  } catch (e) {
    if (e instanceof ConfigError || e instanceof LlmConfigError) {
      log.fatal({ error: e.message }, 'invalid configuration');
      process.exit(2);
    }
    throw e;
  }
  // BYOC_AGENT_IMPL (tests and benchmarks only; the plane never sets it): `noop` (what the host itself costs) or
  // `reference` (the reference agent even under a platform agent's name).
  const impl = process.env.BYOC_AGENT_IMPL;
  const agent = impl === 'noop' ? new NoopAgent() : (impl !== 'reference' && platform?.agent) || new ReferenceAgent(nc, config.agent, llm);
  const host = new RuntimeHost(nc, agent, config, ctx, (o) => telemetry?.record(o), tracing);
  host.onFatal = (e) => {
    log.fatal({ error: e.message }, 'a trigger path stopped; exiting so that the task is replaced');
    process.exit(1);
  };
  await host.start();
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'draining');
    // Each step runs whatever the one before did: a failed telemetry flush or an already closed cache connection
    // must not keep the rest from closing. The exit code says whether the items in flight were drained.
    let drained = true;
    const step = async (what: string, fn: () => Promise<unknown> | undefined) => {
      try {
        await fn();
      } catch (e) {
        if (what === 'host') drained = false;
        log.warn({ step: what, error: (e as Error).message }, 'shutdown step failed');
      }
    };
    await step('host', () => host.stop());
    await step('telemetry', () => telemetry?.shutdown()); // flushes the last spans and metrics
    await step('stores', () => stores?.close());
    await step('nats', () => nc.drain());
    log.info({ counters: host.counters }, 'stopped');
    process.exit(drained ? 0 : 1);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  log.info({ agent: config.agent, startMs: Number(process.hrtime.bigint() - started) / 1e6 }, 'ready');
}

main().catch((e) => {
  console.error(JSON.stringify({ level: 60, msg: 'agent runtime failed', error: (e as Error).message }));
  process.exit(1);
});
