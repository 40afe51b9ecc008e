/**
 * Entry point of the boundary gateway container (bundled by esbuild into one file). Configuration comes
 * from the environment and is validated at start; secrets arrive from Secrets Manager through ECS.
 */
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { AuditLogWriter } from '../../lib/audit-log';
import { inboxPrefix } from '../../lib/nats-config';
import { BoundaryGateway } from './gateway';

const REQUIRED = ['BYOC_CUSTOMER', 'NATS_URL', 'BYOC_GATEWAY_PASSWORD', 'BYOC_AUDIT_LOG', 'BYOC_AUDIT_SIGNING_KEY'] as const;

async function main(): Promise<void> {
  const log = pino({ base: { service: 'boundary-gateway' } });
  const missing = REQUIRED.filter((k) => !process.env[k]);
  if (missing.length > 0) {
    log.fatal({ missing }, 'missing configuration');
    process.exit(2);
  }
  const env = process.env as Record<(typeof REQUIRED)[number], string>;
  const customerId = env.BYOC_CUSTOMER;
  const shareLearning = process.env.BYOC_SHARE_LEARNING !== 'false';
  const common = { servers: env.NATS_URL, pass: env.BYOC_GATEWAY_PASSWORD, inboxPrefix: inboxPrefix(customerId), name: 'boundary-gateway' };
  const local = await connect({ ...common, user: 'gateway-local' });
  const boundary = await connect({ ...common, user: 'gateway' });
  const audit = new AuditLogWriter({ file: env.BYOC_AUDIT_LOG, signingKeyPem: env.BYOC_AUDIT_SIGNING_KEY, headEvery: Number(process.env.BYOC_AUDIT_HEAD_EVERY ?? 1000), headIntervalMs: 1000 * Number(process.env.BYOC_AUDIT_HEAD_SECONDS ?? 60) });
  const gateway = new BoundaryGateway({ customerId, shareLearning, local, boundary, audit, log });
  await gateway.start();
  const shutdown = async (signal: string) => {
    log.info({ signal, counters: gateway.counters }, 'stopping');
    await gateway.stop();
    await Promise.all([local.drain(), boundary.drain()]);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  // Ready marker for supervisors and tests.
  log.info({ counters: gateway.counters }, 'ready');
}

main().catch((e) => {
  console.error(JSON.stringify({ level: 60, msg: 'boundary gateway failed', error: (e as Error).message }));
  process.exit(1);
});
