/** LLM calls: providers behind one interface, a circuit breaker per provider, failover, timeouts, context budgeting. */
import * as http from 'http';
import * as https from 'https';
import { LookupFunction } from 'net';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/**
 * One completion, with its token counts as the provider (or the vendor's proxy) reported them. The runtime
 * counts them into the item's usage: `ctx.recordLlmTokens(c.inputTokens, c.outputTokens)` after each call.
 */
export interface Completion {
  readonly text: string;
  readonly provider: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export interface CompletionRequest {
  readonly model: string;
  readonly messages: ChatMessage[];
  readonly maxTokens: number;
}

export interface LlmProvider {
  readonly name: string;
  complete(req: CompletionRequest, signal: AbortSignal): Promise<Omit<Completion, 'provider'>>;
}

/**
 * How a provider's requests travel. Node's `https` rather than the global `fetch`: `fetch` takes no CA (it
 * trusts the system's roots, plus NODE_EXTRA_CA_CERTS for the whole process), and `undici`'s `Agent`, which
 * could, is not a dependency; `https.request` takes the CA list per request, replacing the system's roots.
 */
export interface Transport {
  /** PEM certificates the server's must chain to, and only those. @default the system's roots */
  readonly ca?: readonly string[];
  /** Resolves host names. @default DNS (tests point a name at loopback with it) */
  readonly lookup?: LookupFunction;
}

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

async function postJson(url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal, transport: Transport = {}): Promise<any> {
  const u = new URL(url);
  const payload = Buffer.from(JSON.stringify(body));
  const options: https.RequestOptions = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers },
    signal,
    ...(transport.lookup ? { lookup: transport.lookup } : {}),
    ...(u.protocol === 'https:' ? { ca: transport.ca ? [...transport.ca] : undefined, rejectUnauthorized: true, minVersion: 'TLSv1.2' as const } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? https : http).request(u, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        // Never the body of an error: it can quote the prompt.
        if (!res.statusCode || res.statusCode < 200 || res.statusCode > 299) return reject(new Error(`HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Error('the answer is not JSON'));
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The OpenAI chat-completions API shape (also served by many compatible gateways). */
export class OpenAiProvider implements LlmProvider {
  constructor(public readonly name: string, private readonly baseUrl: string, private readonly apiKey: () => Promise<string>, private readonly transport: Transport = {}) {}

  public async complete(req: CompletionRequest, signal: AbortSignal) {
    const out = await postJson(`${this.baseUrl}/v1/chat/completions`, { authorization: `Bearer ${await this.apiKey()}` },
      { model: req.model, messages: req.messages, max_tokens: req.maxTokens }, signal, this.transport);
    return { text: String(out.choices?.[0]?.message?.content ?? ''), inputTokens: out.usage?.prompt_tokens ?? 0, outputTokens: out.usage?.completion_tokens ?? 0 };
  }
}

/** The Anthropic messages API shape. */
export class AnthropicProvider implements LlmProvider {
  constructor(public readonly name: string, private readonly baseUrl: string, private readonly apiKey: () => Promise<string>, private readonly transport: Transport = {}) {}

  public async complete(req: CompletionRequest, signal: AbortSignal) {
    const system = req.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
    const out = await postJson(`${this.baseUrl}/v1/messages`, { 'x-api-key': await this.apiKey(), 'anthropic-version': '2023-06-01' },
      { model: req.model, max_tokens: req.maxTokens, ...(system ? { system } : {}), messages: req.messages.filter((m) => m.role !== 'system') }, signal, this.transport);
    return { text: (out.content ?? []).filter((c: { type: string }) => c.type === 'text').map((c: { text: string }) => c.text).join(''), inputTokens: out.usage?.input_tokens ?? 0, outputTokens: out.usage?.output_tokens ?? 0 };
  }
}

/** Closed: calls go through. After `failureThreshold` failures in a row: open, calls are refused until `resetAfterMs`, then one trial call (half-open). */
export class CircuitBreaker {
  private failures = 0;
  private openedAt?: number;
  constructor(private readonly failureThreshold = 3, private readonly resetAfterMs = 30000, private readonly now: () => number = Date.now) {}

  public get state(): 'closed' | 'open' | 'half-open' {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.resetAfterMs ? 'half-open' : 'open';
  }

  public allows(): boolean {
    return this.state !== 'open';
  }

  public success(): void {
    this.failures = 0;
    this.openedAt = undefined;
  }

  public failure(): void {
    this.failures++;
    if (this.state === 'half-open' || this.failures >= this.failureThreshold) this.openedAt = this.now();
  }
}

export class ContextBudgetError extends Error {}

/** Rough token estimate (4 characters a token) used to stay inside a model's window. */
export const estimateTokens = (text: string) => Math.ceil(text.length / 4);

/**
 * Fits a conversation into a context window by dropping whole messages, oldest first, keeping the system
 * messages and the latest message: never truncating a message mid-way.
 */
export function fitContext(messages: ChatMessage[], contextWindow: number, maxTokens: number): ChatMessage[] {
  const budget = contextWindow - maxTokens;
  const cost = (ms: ChatMessage[]) => ms.reduce((n, m) => n + estimateTokens(m.content) + 4, 0);
  const system = messages.filter((m) => m.role === 'system');
  const rest = messages.filter((m) => m.role !== 'system');
  while (rest.length > 1 && cost([...system, ...rest]) > budget) rest.shift();
  if (cost([...system, ...rest]) > budget) throw new ContextBudgetError(`the system prompt and the latest message need ${cost([...system, ...rest])} tokens, the window leaves ${budget}`);
  return [...system, ...rest];
}

export interface ProviderTier {
  readonly provider: LlmProvider;
  readonly model: string;
  readonly contextWindow: number;
}

/** Calls the primary provider, then the secondary, each guarded by its own breaker and a timeout. */
export class LlmClient {
  public readonly breakers = new Map<string, CircuitBreaker>();

  constructor(private readonly tiers: readonly ProviderTier[], private readonly timeoutMs = 60000, breaker: () => CircuitBreaker = () => new CircuitBreaker()) {
    if (tiers.length === 0) throw new Error('at least one provider is required');
    for (const t of tiers) this.breakers.set(t.provider.name, breaker());
  }

  public async complete(messages: ChatMessage[], maxTokens: number): Promise<Completion> {
    const reasons: string[] = [];
    for (const tier of this.tiers) {
      const breaker = this.breakers.get(tier.provider.name)!;
      if (!breaker.allows()) { reasons.push(`${tier.provider.name}: circuit open`); continue; }
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), this.timeoutMs);
      try {
        const fitted = fitContext(messages, tier.contextWindow, maxTokens);
        const out = await tier.provider.complete({ model: tier.model, messages: fitted, maxTokens }, controller.signal);
        breaker.success();
        return { ...out, provider: tier.provider.name };
      } catch (e) {
        if (e instanceof ContextBudgetError) throw e;
        breaker.failure();
        reasons.push(`${tier.provider.name}: ${controller.signal.aborted ? `timed out after ${this.timeoutMs} ms` : (e as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    }
    throw new Error(`every LLM provider failed: ${reasons.join('; ')}`);
  }
}

/** The providers' public endpoints, for `own-keys` secrets that name none. */
export const PROVIDER_BASE_URLS = { openai: 'https://api.openai.com', anthropic: 'https://api.anthropic.com' } as const;
export type ProviderApi = keyof typeof PROVIDER_BASE_URLS;

/**
 * What an `own-keys` secret (`llm-primary`, `llm-secondary`) holds: JSON naming the provider's API shape, the key,
 * the model, optionally the base URL (HTTPS; plain HTTP only to loopback) and the model's context window. Read at
 * start for the provider; the key is read again at every call (a rotated key is used at once).
 */
export interface OwnKeySecret {
  readonly api: ProviderApi;
  readonly apiKey: string;
  readonly model: string;
  readonly baseUrl?: string;
  readonly contextWindow?: number;
}

export interface LlmFromEnvOptions {
  /** With `vendor-proxy` (required): one of the proxy's client model names. With `own-keys`, each secret names its model. */
  readonly model?: string;
  /** The model's context window in tokens (with `own-keys`, a secret's `contextWindow` wins). @default 128000 */
  readonly contextWindow?: number;
  /** @default 60000 */
  readonly timeoutMs?: number;
  /** Resolves host names: tests point the proxy's name at loopback; the name is still what TLS checks. @default DNS */
  readonly lookup?: LookupFunction;
}

export class LlmConfigError extends Error {
  constructor(what: string, problem: string) {
    super(`LLM configuration ${what}: ${problem}`);
    this.name = 'LlmConfigError';
  }
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

function parseOwnKey(name: string, raw: string): OwnKeySecret {
  let v: Partial<OwnKeySecret>;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new LlmConfigError(name, 'with own-keys, the secret holds JSON: {"api":"openai"|"anthropic","apiKey":"...","model":"...","baseUrl"?:"https://..."}');
  }
  if (!v || typeof v !== 'object' || !(typeof v.api === 'string' && v.api in PROVIDER_BASE_URLS)) throw new LlmConfigError(name, `"api" must be ${Object.keys(PROVIDER_BASE_URLS).join(' or ')}`);
  if (typeof v.apiKey !== 'string' || !v.apiKey) throw new LlmConfigError(name, '"apiKey" is required');
  if (typeof v.model !== 'string' || !v.model) throw new LlmConfigError(name, '"model" is required');
  if (v.contextWindow !== undefined && (!Number.isInteger(v.contextWindow) || v.contextWindow < 1)) throw new LlmConfigError(name, '"contextWindow" must be a whole number of tokens');
  if (v.baseUrl !== undefined) checkUrl(name, String(v.baseUrl));
  return v as OwnKeySecret;
}

function checkUrl(what: string, raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new LlmConfigError(what, `"${raw}" is not a URL`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) throw new LlmConfigError(what, `"${raw}" is not an https:// URL`);
  return u;
}

/**
 * The agent's LLM client for the path the plane is configured for (`BYOC_LLM_MODE`, set by the customer plane
 * for the agents that hold `llm-*` secrets):
 *
 * - `vendor-proxy`: one provider, the vendor's LLM proxy at `BYOC_LLM_PROXY_URL` (`https://llm.<hub>/c/<customer>`),
 *   in the OpenAI shape, over TLS trusting only `BYOC_LLM_PROXY_CA` (the vendor's CA, not the system's roots; the
 *   name in the URL is what the certificate must name), the bearer token being `llm-primary`'s value (read at
 *   every call). The proxy fails over between the vendor's providers; here, a breaker guards the proxy.
 * - `own-keys`: the customer's providers, `llm-primary` then `llm-secondary` when the agent holds it (JSON, see
 *   `OwnKeySecret`), each behind its own breaker, failing over in that order.
 *
 * `secret` reads one of the agent's secrets by its catalog name (`secretsByName` in stores.ts). Every
 * completion carries its token counts: record them with `ctx.recordLlmTokens(c.inputTokens, c.outputTokens)`.
 */
export async function llmFromEnv(env: Record<string, string | undefined>, secret: (name: string) => Promise<string>, options: LlmFromEnvOptions = {}): Promise<LlmClient> {
  const mode = env.BYOC_LLM_MODE;
  const contextWindow = options.contextWindow ?? 128000;
  const timeoutMs = options.timeoutMs ?? 60000;
  if (mode === 'vendor-proxy') {
    const raw = env.BYOC_LLM_PROXY_URL;
    if (!raw) throw new LlmConfigError('BYOC_LLM_PROXY_URL', 'is required with vendor-proxy');
    const url = checkUrl('BYOC_LLM_PROXY_URL', raw);
    if (url.protocol !== 'https:') throw new LlmConfigError('BYOC_LLM_PROXY_URL', `"${raw}" is not an https:// URL`);
    const ca = env.BYOC_LLM_PROXY_CA;
    if (!ca || !ca.includes('-----BEGIN CERTIFICATE-----')) throw new LlmConfigError('BYOC_LLM_PROXY_CA', 'is required with vendor-proxy: the PEM CA the proxy\'s certificate chains to');
    if (!options.model) throw new LlmConfigError('model', 'is required with vendor-proxy: one of the model names the vendor\'s proxy serves');
    const proxy = new OpenAiProvider('vendor-proxy', raw.replace(/\/+$/, ''), () => secret('llm-primary'), { ca: [ca], lookup: options.lookup });
    return new LlmClient([{ provider: proxy, model: options.model, contextWindow }], timeoutMs);
  }
  if (mode === 'own-keys') {
    let declared: string[] = [];
    try {
      declared = Object.keys(JSON.parse(env.BYOC_SECRET_ARNS ?? '{}'));
    } catch {
      throw new LlmConfigError('BYOC_SECRET_ARNS', 'is not JSON');
    }
    const names = ['llm-primary', 'llm-secondary'].filter((n) => declared.includes(n));
    if (!names.includes('llm-primary')) throw new LlmConfigError('llm-primary', 'own-keys needs the agent to hold the llm-primary secret');
    const tiers: ProviderTier[] = [];
    for (const name of names) {
      const first = parseOwnKey(name, await secret(name));
      const apiKey = async () => parseOwnKey(name, await secret(name)).apiKey;
      const base = (first.baseUrl ?? PROVIDER_BASE_URLS[first.api]).replace(/\/+$/, '');
      const transport = { lookup: options.lookup };
      const provider = first.api === 'openai' ? new OpenAiProvider(name, base, apiKey, transport) : new AnthropicProvider(name, base, apiKey, transport);
      tiers.push({ provider, model: first.model, contextWindow: first.contextWindow ?? contextWindow });
    }
    return new LlmClient(tiers, timeoutMs);
  }
  throw new LlmConfigError('BYOC_LLM_MODE', `${JSON.stringify(mode)} is not vendor-proxy or own-keys (the plane sets it for agents holding llm-* secrets when its llm prop is set)`);
}
