import { ApiShape } from './providers';
import { LLM_TOKEN_ISSUER } from './token';

/**
 * The proxy's configuration, from environment variables (the task definition's), validated at start: a missing
 * or bad value stops it with the variable's name and the problem. No secret value is read from the environment:
 * the TLS key and the providers' API keys come from Secrets Manager by ARN, the token key is a KMS key.
 */
export const LLM_ENV = {
  /** TLS port the proxy listens on (the load balancer's 443 forwards here). */
  port: 'BYOC_LLM_PORT',
  /** Plain HTTP port of `/healthz` (the load balancer's health check) and `/metrics`; never behind a listener. */
  adminPort: 'BYOC_LLM_ADMIN_PORT',
  listenHost: 'BYOC_LLM_LISTEN_HOST',
  /** The proxy's DNS name, `llm.<hub host>`: its certificate must cover it. */
  host: 'BYOC_LLM_HOST',
  /** ARN of the secret holding `{"cert": "<PEM chain>", "key": "<PEM key>"}` (the hub's certificate). */
  tlsSecretArn: 'BYOC_LLM_TLS_SECRET_ARN',
  /** The KMS key (ARN) that signs customers' tokens; the proxy reads its public key only. */
  tokenKey: 'BYOC_LLM_TOKEN_KEY',
  tokenIssuer: 'BYOC_LLM_TOKEN_ISSUER',
  tokenAudience: 'BYOC_LLM_TOKEN_AUDIENCE',
  /** The DynamoDB table of customers, rate windows and budgets. */
  table: 'BYOC_LLM_TABLE',
  /** JSON list of upstream providers, in failover order (see `ProviderConfig`). */
  providers: 'BYOC_LLM_PROVIDERS',
  upstreamTimeoutMs: 'BYOC_LLM_UPSTREAM_TIMEOUT_MS',
  maxBodyBytes: 'BYOC_LLM_MAX_BODY_BYTES',
  breakerThreshold: 'BYOC_LLM_BREAKER_THRESHOLD',
  breakerResetMs: 'BYOC_LLM_BREAKER_RESET_MS',
  /** How long a provider's API key read from Secrets Manager is used before it is read again. */
  keyTtlMs: 'BYOC_LLM_KEY_TTL_MS',
} as const;

/** One upstream LLM provider. */
export interface ProviderConfig {
  /** Name in logs and metrics: letters, digits, hyphens. */
  readonly name: string;
  /** The provider's API shape. */
  readonly api: ApiShape;
  /** Base URL, `https://...` (the shape's path is appended); plain `http://` only on loopback, for development. */
  readonly baseUrl: string;
  /** ARN of the Secrets Manager secret whose value is the provider's API key. */
  readonly apiKeySecretArn: string;
  /** The models the provider serves: model a client names -> the provider's model name. */
  readonly models: Readonly<Record<string, string>>;
}

export interface LlmProxyConfig {
  readonly port: number;
  readonly adminPort: number;
  readonly listenHost: string;
  readonly host: string;
  readonly tlsSecretArn: string;
  readonly tokenKey: string;
  readonly tokenIssuer: string;
  readonly tokenAudience: string;
  readonly table: string;
  readonly providers: readonly ProviderConfig[];
  readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly breakerThreshold: number;
  readonly breakerResetMs: number;
  readonly keyTtlMs: number;
}

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`configuration ${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Problems of one provider entry but its key's ARN (empty when valid); shared with the `LlmProxy` construct's validation. */
export function providerProblems(p: any, at: string, allowLoopbackHttp: boolean): string[] {
  const problems: string[] = [];
  if (!p || typeof p !== 'object') return [`${at}: not an object`];
  if (typeof p.name !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(p.name)) problems.push(`${at}.name: 1 to 32 lower-case letters, digits and hyphens`);
  if (p.api !== 'openai' && p.api !== 'anthropic') problems.push(`${at}.api: openai or anthropic`);
  let url: URL | undefined;
  try { url = new URL(p.baseUrl); } catch { problems.push(`${at}.baseUrl: not a URL`); }
  if (url) {
    const httpOk = allowLoopbackHttp && url.protocol === 'http:' && LOOPBACK.has(url.hostname);
    if (url.protocol !== 'https:' && !httpOk) problems.push(`${at}.baseUrl: must be https:// (plain http only on loopback, for development)`);
    if (url.search || url.hash || url.username) problems.push(`${at}.baseUrl: no query, fragment or credentials`);
  }
  const models = p.models;
  if (!models || typeof models !== 'object' || Array.isArray(models) || Object.keys(models).length === 0
    || Object.entries(models).some(([k, v]) => !k || typeof v !== 'string' || !v)) {
    problems.push(`${at}.models: a non-empty map of model names (what clients name -> the provider's name)`);
  }
  return problems;
}

export function loadLlmProxyConfig(env: Record<string, string | undefined>): LlmProxyConfig {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new ConfigError(k, 'is required');
    return v;
  };
  const int = (k: string, dflt: number, min: number, max: number) => {
    const raw = env[k];
    if (raw === undefined || raw === '') return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(k, `"${raw}" is not a whole number from ${min} to ${max}`);
    return n;
  };
  for (const forbidden of ['BYOC_LLM_TLS_KEY', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY']) {
    if (env[forbidden] !== undefined) throw new ConfigError(forbidden, 'secrets are never read from plaintext environment variables; give the secret\'s ARN');
  }
  const host = need(LLM_ENV.host);
  if (!/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/.test(host)) throw new ConfigError(LLM_ENV.host, `"${host}" is not a DNS name`);
  const tlsSecretArn = need(LLM_ENV.tlsSecretArn);
  if (!SECRET_ARN.test(tlsSecretArn)) throw new ConfigError(LLM_ENV.tlsSecretArn, 'is not a Secrets Manager secret ARN');
  let providers: ProviderConfig[];
  try {
    providers = JSON.parse(need(LLM_ENV.providers));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(LLM_ENV.providers, 'is not JSON');
  }
  if (!Array.isArray(providers) || providers.length === 0) throw new ConfigError(LLM_ENV.providers, 'must be a non-empty JSON list of providers');
  const problems = providers.flatMap((p, i) => [
    ...providerProblems(p, `[${i}]`, true),
    ...(typeof p?.apiKeySecretArn === 'string' && SECRET_ARN.test(p.apiKeySecretArn) ? [] : [`[${i}].apiKeySecretArn: a Secrets Manager secret ARN`]),
  ]);
  if (problems.length > 0) throw new ConfigError(LLM_ENV.providers, problems.join('; '));
  if (new Set(providers.map((p) => p.name)).size !== providers.length) throw new ConfigError(LLM_ENV.providers, 'provider names must be distinct');
  return {
    port: int(LLM_ENV.port, 8443, 1, 65535),
    adminPort: int(LLM_ENV.adminPort, 9090, 1, 65535),
    listenHost: env[LLM_ENV.listenHost] || '0.0.0.0',
    host,
    tlsSecretArn,
    tokenKey: need(LLM_ENV.tokenKey),
    tokenIssuer: env[LLM_ENV.tokenIssuer] || LLM_TOKEN_ISSUER,
    tokenAudience: env[LLM_ENV.tokenAudience] || `https://${host}`,
    table: need(LLM_ENV.table),
    providers,
    upstreamTimeoutMs: int(LLM_ENV.upstreamTimeoutMs, 120000, 100, 900000),
    maxBodyBytes: int(LLM_ENV.maxBodyBytes, 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    breakerThreshold: int(LLM_ENV.breakerThreshold, 3, 1, 100),
    breakerResetMs: int(LLM_ENV.breakerResetMs, 30000, 0, 3600000),
    keyTtlMs: int(LLM_ENV.keyTtlMs, 300000, 0, 86400000),
  };
}
