import { BoundaryContract } from '../../lib/boundary-contract';
import { CONTRACT_ENV, contractFromEnvironment } from '../../lib/contract-env';
import { CONSUMER_DEFAULTS, eventSubscriptionsOf, INBOX_PREFIX } from '../../lib/nats-config';
import { STEP_TRIGGERS, StepTrigger } from '../../lib/step-status';
import { parseSchedule, Schedule, ScheduleError } from './schedule';

/** The runtime's configuration, parsed and validated at start: a missing or bad value stops it with a clear message. */
export interface RuntimeConfig {
  readonly agent: string;
  readonly customerId: string;
  readonly natsUrl: string;
  readonly natsUser: string;
  /** ARN of the secret holding the NATS password (never the password itself). */
  readonly natsPasswordSecretArn: string;
  readonly inboxPrefix: string;
  /** Deliveries before a failing item goes to the dead-letter stream. */
  readonly maxDeliver: number;
  /** Redelivery delays, ms, by attempt (the last one repeats). */
  readonly backoffMs: number[];
  /** How long SIGTERM waits for in-flight items before naking them. */
  readonly stopTimeoutMs: number;
  /** The agent's catalog trigger (`BYOC_TRIGGER`): a `request` agent also serves its service subject. */
  readonly trigger: StepTrigger;
  /** The `events.*` subjects it consumes through its durables on the events stream (from `BYOC_SUBJECTS`). */
  readonly eventSubjects: string[];
  /** The inbound boundary kinds it receives from the gateway (`boundary.inbox.<kind>` in `BYOC_SUBJECTS`). */
  readonly inboxSubjects: string[];
  /** Its schedule (`BYOC_SCHEDULE`, EventBridge cron, UTC): each tick publishes one work item. */
  readonly schedule?: Schedule;
  /** The body of each scheduled work item (`BYOC_SCHEDULE_INPUT`, a JSON object, like a scheduler target's input), with `scheduledAt` added. */
  readonly scheduleInput: Record<string, unknown>;
  /** How long a request's claim holds without renewal: a task that died mid-request is taken over after it. */
  readonly requestLeaseMs: number;
  /** The plane's boundary contract (`BYOC_CONTRACT` with `BYOC_CONTRACT_HASH`; the kit's own when unset): what the platform agents build their crossings by. */
  readonly contract: BoundaryContract;
}

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`configuration ${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const NAME = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$/;

function json(variable: string, raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    throw new ConfigError(variable, 'is not JSON');
  }
}

export function loadConfig(env: Record<string, string | undefined>): RuntimeConfig {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new ConfigError(k, 'is required');
    return v;
  };
  const int = (k: string, dflt: number, min: number, max: number) => {
    const raw = env[k];
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(k, `"${raw}" is not a whole number from ${min} to ${max}`);
    return n;
  };
  for (const forbidden of ['NATS_PASSWORD', 'PGPASSWORD', 'REDIS_PASSWORD']) {
    if (env[forbidden] !== undefined) throw new ConfigError(forbidden, 'secrets are never read from plaintext environment variables; give the secret\'s ARN');
  }
  const agent = need('BYOC_AGENT');
  if (!NAME.test(agent)) throw new ConfigError('BYOC_AGENT', `"${agent}" is not an agent name`);
  const arn = need('NATS_PASSWORD_SECRET_ARN');
  if (!/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/.test(arn)) throw new ConfigError('NATS_PASSWORD_SECRET_ARN', 'is not a Secrets Manager secret ARN');
  const backoff = (env.BYOC_BACKOFF_MS ?? '1000,5000,30000').split(',').map(Number);
  if (backoff.some((b) => !Number.isInteger(b) || b < 0 || b > 3600000)) throw new ConfigError('BYOC_BACKOFF_MS', 'is not a comma-separated list of delays in ms');
  const trigger = need('BYOC_TRIGGER');
  if (!(STEP_TRIGGERS as readonly string[]).includes(trigger)) throw new ConfigError('BYOC_TRIGGER', `"${trigger}" is not ${STEP_TRIGGERS.join(', ')}`);
  let subscribe: string[] = [];
  if (env.BYOC_SUBJECTS !== undefined) {
    const parsed = json('BYOC_SUBJECTS', env.BYOC_SUBJECTS) as { subscribe?: unknown };
    if (!Array.isArray(parsed?.subscribe) || parsed.subscribe.some((x) => typeof x !== 'string')) throw new ConfigError('BYOC_SUBJECTS', 'has no "subscribe" list of subjects');
    subscribe = parsed.subscribe as string[];
  }
  let schedule: Schedule | undefined;
  if (env.BYOC_SCHEDULE !== undefined) {
    try {
      schedule = parseSchedule(env.BYOC_SCHEDULE);
    } catch (e) {
      if (e instanceof ScheduleError) throw new ConfigError('BYOC_SCHEDULE', e.message);
      throw e;
    }
  }
  if (trigger === 'schedule' && !schedule) throw new ConfigError('BYOC_SCHEDULE', 'is required for a scheduled agent');
  const scheduleInput = env.BYOC_SCHEDULE_INPUT === undefined ? {} : json('BYOC_SCHEDULE_INPUT', env.BYOC_SCHEDULE_INPUT);
  if (!scheduleInput || typeof scheduleInput !== 'object' || Array.isArray(scheduleInput)) throw new ConfigError('BYOC_SCHEDULE_INPUT', 'is not a JSON object');
  let contract: BoundaryContract;
  try {
    contract = contractFromEnvironment(env);
  } catch (e) {
    throw new ConfigError(CONTRACT_ENV.contract, (e as Error).message);
  }
  return {
    contract,
    trigger: trigger as StepTrigger,
    eventSubjects: eventSubscriptionsOf(subscribe),
    inboxSubjects: subscribe.filter((s) => s.startsWith(`${INBOX_PREFIX}.`)),
    schedule,
    scheduleInput: scheduleInput as Record<string, unknown>,
    requestLeaseMs: int('BYOC_REQUEST_LEASE_MS', CONSUMER_DEFAULTS.ackWaitMs, 500, 3600000),
    agent,
    customerId: need('BYOC_CUSTOMER'),
    natsUrl: need('NATS_URL'),
    natsUser: env.NATS_USER ?? `agent-${agent}`,
    natsPasswordSecretArn: arn,
    inboxPrefix: need('NATS_INBOX_PREFIX'),
    maxDeliver: int('BYOC_MAX_DELIVER', 5, 1, 100),
    backoffMs: backoff,
    stopTimeoutMs: int('BYOC_STOP_TIMEOUT_MS', 50000, 0, 120000),
  };
}
