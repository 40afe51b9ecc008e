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
}

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`configuration ${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const NAME = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$/;

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
  return {
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
