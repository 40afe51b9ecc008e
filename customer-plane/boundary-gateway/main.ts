/**
 * Entry point of the boundary gateway container (bundled by esbuild into one file). Configuration comes
 * from the environment and is validated at start; passwords arrive from Secrets Manager through ECS; the
 * audit heads and the metrics are signed by the customer's own KMS key (`BYOC_AUDIT_KEY`, a key ARN), or a
 * PEM private key file outside AWS.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { AuditLogWriter, StdoutAnchor } from '../../lib/audit-log';
import { BoundaryContract, CUSTOMER_ID } from '../../lib/boundary-contract';
import { contractFromEnvironment } from '../../lib/contract-input';
import { inboxPrefix, LEAF_USERS } from '../../lib/nats-config';
import { signerFor } from '../../lib/signer';
import { BoundaryGateway } from './gateway';
import { provisionAgents } from './provision';
import { startBacklogReporter } from './backlog';

const REQUIRED = ['BYOC_CUSTOMER', 'NATS_URL', 'BYOC_GATEWAY_LOCAL_PASSWORD', 'BYOC_GATEWAY_REMOTE_PASSWORD', 'BYOC_PROVISIONER_PASSWORD', 'BYOC_BACKLOG_REPORTER_PASSWORD', 'BYOC_AUDIT_LOG', 'BYOC_AUDIT_KEY', 'BYOC_AGENTS'] as const;

class ConfigError extends Error {}

function agentsFrom(json: string): Record<string, string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError('BYOC_AGENTS is not JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('BYOC_AGENTS is not an object of agent name to outbound kinds');
  for (const [agent, kinds] of Object.entries(parsed)) {
    if (!/^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$/.test(agent) || !Array.isArray(kinds) || kinds.some((k) => typeof k !== 'string')) {
      throw new ConfigError(`BYOC_AGENTS: entry ${JSON.stringify(agent).slice(0, 40)} is not an agent name with a list of kinds`);
    }
  }
  return parsed as Record<string, string[]>;
}

/** `BYOC_AGENT_EVENTS`: each agent and the `events.*` subjects it consumes (one durable each on the events stream). */
function eventsFrom(json: string | undefined, agents: Record<string, string[]>): Record<string, string[]> {
  if (json === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError('BYOC_AGENT_EVENTS is not JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('BYOC_AGENT_EVENTS is not an object of agent name to event subjects');
  for (const [agent, subjects] of Object.entries(parsed)) {
    if (!Object.prototype.hasOwnProperty.call(agents, agent)) throw new ConfigError(`BYOC_AGENT_EVENTS: ${JSON.stringify(agent).slice(0, 40)} is not an agent of BYOC_AGENTS`);
    if (!Array.isArray(subjects) || subjects.some((x) => typeof x !== 'string' || !/^events(\.[a-z0-9-]+)+$/.test(x))) {
      throw new ConfigError(`BYOC_AGENT_EVENTS: ${agent}'s entry is not a list of events.<...> subjects`);
    }
  }
  return parsed as Record<string, string[]>;
}

async function main(): Promise<void> {
  const log = pino({ base: { service: 'boundary-gateway' } });
  let agents: Record<string, string[]>;
  let events: Record<string, string[]> = {};
  let rateScale = 1;
  let maxInFlight = 4096;
  let contract!: BoundaryContract;
  const env = process.env as Record<(typeof REQUIRED)[number], string>;
  try {
    const missing = REQUIRED.filter((k) => !process.env[k]);
    if (missing.length > 0) throw new ConfigError(`missing ${missing.join(', ')}`);
    if (!CUSTOMER_ID.test(env.BYOC_CUSTOMER)) throw new ConfigError('BYOC_CUSTOMER is not a customer identifier');
    try {
      // The contract the construct generated the leaf's rules from (BYOC_CONTRACT, with its hash); the kit's own when unset.
      contract = contractFromEnvironment();
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
    agents = agentsFrom(env.BYOC_AGENTS);
    events = eventsFrom(process.env.BYOC_AGENT_EVENTS, agents);
    if (process.env.BYOC_RATE_SCALE !== undefined) {
      rateScale = Number(process.env.BYOC_RATE_SCALE);
      if (!(rateScale > 0 && rateScale <= 1e6)) throw new ConfigError('BYOC_RATE_SCALE is not a number from 0 to 1000000');
    }
    if (process.env.BYOC_MAX_IN_FLIGHT !== undefined) {
      maxInFlight = Number(process.env.BYOC_MAX_IN_FLIGHT);
      if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 1e6) throw new ConfigError('BYOC_MAX_IN_FLIGHT is not a whole number from 1 to 1000000');
    }
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    log.fatal({ error: e.message }, 'invalid configuration');
    process.exit(2);
  }
  const customerId = env.BYOC_CUSTOMER;
  const shareLearning = process.env.BYOC_SHARE_LEARNING !== 'false';
  const region = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/.exec(env.BYOC_AUDIT_KEY)?.[1];
  const signer = signerFor(env.BYOC_AUDIT_KEY, () => new KMSClient(region ? { region } : {}));
  // Fails here, before any connection, if the key cannot be used (wrong type, no permission, unreachable).
  await signer.publicKeyPem();

  const base = { servers: env.NATS_URL, maxReconnectAttempts: -1, reconnectTimeWait: 1000 };
  // The agents' streams and consumers exist before the gateway relays anything; the provisioner is then closed.
  const provisioner = await connect({ ...base, user: LEAF_USERS.provisioner, pass: env.BYOC_PROVISIONER_PASSWORD, inboxPrefix: inboxPrefix(customerId, LEAF_USERS.provisioner), name: 'provisioner' });
  await provisionAgents(provisioner, Object.keys(agents).map((name) => ({ name, subscribe: events[name] ?? [] })));
  await provisioner.close();
  // Each agent's backlog as a CloudWatch metric (EMF lines on stdout) every minute: what event agents scale on. Its own
  // identity may read the durables' consumer info and nothing else.
  const backlogConnection = await connect({ ...base, user: LEAF_USERS.backlog, pass: env.BYOC_BACKLOG_REPORTER_PASSWORD, inboxPrefix: inboxPrefix(customerId, LEAF_USERS.backlog), name: 'backlog-reporter' });
  const backlog = await startBacklogReporter(backlogConnection, Object.keys(agents).map((name) => ({ name, subscribe: events[name] ?? [] })), {
    onError: (agent, e) => log.warn({ agent, error: e.message }, 'agent backlog not read'),
  });

  const local = await connect({ ...base, user: LEAF_USERS.gatewayLocal, pass: env.BYOC_GATEWAY_LOCAL_PASSWORD, inboxPrefix: inboxPrefix(customerId, LEAF_USERS.gatewayLocal), name: 'boundary-gateway-local' });
  const boundary = await connect({ ...base, user: LEAF_USERS.gatewayRemote, pass: env.BYOC_GATEWAY_REMOTE_PASSWORD, inboxPrefix: inboxPrefix(customerId, LEAF_USERS.gatewayRemote), name: 'boundary-gateway-remote' });
  const audit = await AuditLogWriter.open({
    file: env.BYOC_AUDIT_LOG,
    signer,
    // Signed heads also go to stdout, which ECS ships to the customer's CloudWatch Logs: the gateway cannot
    // rewrite them there, so a truncated or rewritten log file no longer matches them.
    anchor: new StdoutAnchor(),
    headEvery: Number(process.env.BYOC_AUDIT_HEAD_EVERY ?? 1000),
    headIntervalMs: 1000 * Number(process.env.BYOC_AUDIT_HEAD_SECONDS ?? 60),
    onHeadError: (e) => log.error({ error: e.message }, 'audit head not signed or anchored; the next head covers these records'),
  });
  if (audit.recovery.tornBytes > 0 || audit.recovery.unknownOutcomes > 0) log.warn({ recovery: audit.recovery }, 'audit log recovered after an unclean stop');
  const gateway = new BoundaryGateway({ customerId, shareLearning, contract, local, boundary, audit, signer, log, agents, rateScale, maxInFlight });
  await gateway.start();
  const shutdown = async (signal: string) => {
    log.info({ signal, counters: gateway.counters }, 'stopping');
    backlog.stop();
    await gateway.stop();
    await Promise.all([local.drain(), boundary.drain(), backlogConnection.close()]);
    log.info({ counters: gateway.counters }, 'stopped');
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
