import { X509Certificate } from 'crypto';
import * as http from 'http';
import * as https from 'https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pino from 'pino';
import { ConfigError, loadLlmProxyConfig, ProviderConfig } from './config';
import { adminHandler, LlmProxyHandler, ProviderKeys } from './server';
import { LlmStore } from './store';
import { kmsPublicKey, TokenVerifier } from './token';

/**
 * The LLM proxy's process (bundled to `dist/control-plane/llm-proxy.js`): reads its configuration from the
 * environment (`config.ts`), its TLS certificate from Secrets Manager and its token key's public half from KMS,
 * then serves TLS on `BYOC_LLM_PORT` and `/healthz` and `/metrics` on `BYOC_LLM_ADMIN_PORT`. SIGTERM stops
 * accepting, lets requests in flight finish (up to 50 s, under ECS's 60 s stop timeout) and exits 0.
 * Exit 2: a configuration problem, named.
 */
async function main(): Promise<void> {
  // Synchronous writes: no line is lost or reordered when the process exits (SIGTERM, a configuration error).
  const log = pino({ base: { service: 'llm-proxy' } }, pino.destination({ dest: 1, sync: true }));
  let config;
  try {
    config = loadLlmProxyConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      log.fatal(e.message);
      process.exit(2);
    }
    throw e;
  }
  const secrets = new SecretsManagerClient({});
  const tls = JSON.parse((await secrets.send(new GetSecretValueCommand({ SecretId: config.tlsSecretArn }))).SecretString ?? '{}');
  if (typeof tls.cert !== 'string' || typeof tls.key !== 'string') {
    log.fatal(`configuration BYOC_LLM_TLS_SECRET_ARN: the secret must hold {"cert": "<PEM chain>", "key": "<PEM key>"}`);
    process.exit(2);
  }
  if (!new X509Certificate(tls.cert).checkHost(config.host)) {
    log.fatal(`configuration BYOC_LLM_HOST: the certificate does not cover ${config.host} (issue it for the hub's name and *.<name>)`);
    process.exit(2);
  }
  const { publicKey, keyArn } = await kmsPublicKey(new KMSClient({}), config.tokenKey);
  const verifier = new TokenVerifier({ publicKey, keyId: keyArn, audience: config.tokenAudience, issuer: config.tokenIssuer });

  const cache = new Map<string, { value: string; at: number }>();
  const keys: ProviderKeys = {
    get: async (p: ProviderConfig) => {
      const hit = cache.get(p.name);
      if (hit && Date.now() - hit.at < config.keyTtlMs) return hit.value;
      const value = (await secrets.send(new GetSecretValueCommand({ SecretId: p.apiKeySecretArn }))).SecretString;
      if (!value) throw new Error('empty');
      cache.set(p.name, { value: value.trim(), at: Date.now() });
      return value.trim();
    },
  };

  const handler = new LlmProxyHandler({
    verifier,
    store: new LlmStore(new DynamoDBClient({}), config.table),
    providers: config.providers,
    keys,
    log,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    maxBodyBytes: config.maxBodyBytes,
    breakerThreshold: config.breakerThreshold,
    breakerResetMs: config.breakerResetMs,
  });
  let ready = false;
  const server = https.createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handler.handle);
  server.requestTimeout = config.upstreamTimeoutMs * 2 + 30000;
  const admin = http.createServer(adminHandler(handler, () => ready));
  await Promise.all([
    new Promise<void>((resolve, reject) => server.once('error', reject).listen(config.port, config.listenHost, resolve)),
    new Promise<void>((resolve, reject) => admin.once('error', reject).listen(config.adminPort, config.listenHost, resolve)),
  ]);
  ready = true;
  log.info({ host: config.host, port: config.port, adminPort: config.adminPort, providers: config.providers.map((p) => `${p.name} (${p.api})`) }, 'ready');

  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    ready = false;
    log.info('stopping');
    const force = setTimeout(() => { log.warn('requests still in flight after 50 s; exiting'); process.exit(0); }, 50000);
    force.unref();
    server.close(() => {
      admin.close(() => {
        log.info('stopped');
        process.exit(0);
      });
    });
    server.closeIdleConnections();
  });
}

main().catch((e) => {
  // The error's message only: the proxy's start reads no request, so it cannot hold a prompt.
  process.stderr.write(`llm-proxy: ${(e as Error)?.message ?? e}\n`);
  process.exit(1);
});
