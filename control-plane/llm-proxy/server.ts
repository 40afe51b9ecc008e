import { randomUUID } from 'crypto';
import * as http from 'http';
import { Logger } from 'pino';
import { CircuitBreaker } from '../../agents/runtime/llm';
import { ProviderConfig } from './config';
import {
  API_PATHS, ApiShape, clientResponse, estimateInputTokens, NeutralRequest, NeutralResponse, parseRequest, parseUpstreamResponse,
  RequestError, upstreamBody, upstreamHeaders, UpstreamShapeError,
} from './providers';
import { CustomerRecord, LimitError, LlmStore, Reservation } from './store';
import { TokenError, TokenVerifier, VerifiedToken } from './token';

/**
 * The LLM proxy's request handling. Each request is, in order: authenticated (a per-customer JWT, `token.ts`),
 * matched to the customer its URL names (`/c/<customer>/v1/...`), checked against the customer's record (registered,
 * not revoked, the token's ID admitted), parsed (`providers.ts`), counted against the customer's requests per
 * minute and reserved against its token budget (`store.ts`, shared by every proxy task), then sent to the
 * providers that serve its model, in order, until one answers (failover; a circuit breaker per provider).
 *
 * Every request ends in one log line with the request ID, customer, token ID, model, provider, token counts,
 * status, reason, attempts and latency, and in a counter by status and reason. Neither the log, the counters nor
 * the store ever receive a prompt, a completion, or an upstream error body (which can quote the prompt): the
 * handler passes bodies only between the client and the provider.
 */

/** Every reason a request ends with, refusals included: what the log's `reason` and the counters name. */
export type Outcome =
  | 'ok' | 'not-found' | 'method-not-allowed' | 'customer-mismatch' | 'unknown-customer' | 'revoked-customer' | 'revoked-token'
  | 'too-large' | 'bad-request' | 'unsupported' | 'unknown-model' | 'rate-limit' | 'token-budget' | 'upstream-rejected'
  | 'all-providers-failed' | 'store-unavailable' | 'internal-error' | TokenError['reason'];

/** A URL the proxy serves: `/c/<customer>/v1/chat/completions` (OpenAI shape) or `/c/<customer>/v1/messages` (Anthropic shape). */
const ROUTE = /^\/c\/([a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,19})(\/v1\/chat\/completions|\/v1\/messages)$/;
const REQUEST_ID = /^[0-9A-Za-z_-]{8,64}$/;
/** Upstream statuses after which the next provider is tried: the provider's trouble, not the request's. */
const FAILOVER_STATUSES = new Set([401, 403, 408, 409, 425, 429]);

export interface ProviderKeys {
  /** The provider's API key (cached by the implementation). */
  get(provider: ProviderConfig): Promise<string>;
}

export interface LlmProxyHandlerOptions {
  readonly verifier: TokenVerifier;
  readonly store: LlmStore;
  readonly providers: readonly ProviderConfig[];
  readonly keys: ProviderKeys;
  readonly log: Logger;
  readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** @default 3 */
  readonly breakerThreshold?: number;
  /** @default 30000 */
  readonly breakerResetMs?: number;
}

interface Attempt {
  readonly provider: string;
  /** `ok`, `http-<status>`, `timeout`, `network`, `bad-answer`, `no-key` or `circuit-open`: never an upstream body. */
  readonly outcome: string;
}

class Refusal extends Error {
  constructor(public readonly status: number, public readonly reason: Outcome, message: string, public readonly retryAfter?: number) {
    super(message);
  }
}

type UpstreamResult =
  | { kind: 'ok'; provider: string; response: NeutralResponse }
  | { kind: 'rejected'; provider: string; status: number; body: string; contentType: string }
  | { kind: 'failed' };

export class LlmProxyHandler {
  /** Requests by `<status> <reason>`, since start. */
  public readonly counters = new Map<string, number>();
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(private readonly options: LlmProxyHandlerOptions) {
    for (const p of options.providers) this.breakers.set(p.name, new CircuitBreaker(options.breakerThreshold ?? 3, options.breakerResetMs ?? 30000));
  }

  /** The breaker state of each provider. */
  public breakerStates(): Record<string, string> {
    return Object.fromEntries([...this.breakers].map(([name, b]) => [name, b.state]));
  }

  /** Prometheus text of the counters and breakers (for the admin port, never the proxy port). */
  public metricsText(): string {
    const lines = ['# TYPE byoc_llm_requests_total counter'];
    for (const [key, n] of [...this.counters].sort()) {
      const [status, reason] = key.split(' ');
      lines.push(`byoc_llm_requests_total{status="${status}",reason="${reason}"} ${n}`);
    }
    lines.push('# TYPE byoc_llm_provider_circuit_open gauge');
    for (const [name, b] of this.breakers) lines.push(`byoc_llm_provider_circuit_open{provider="${name}"} ${b.state === 'open' ? 1 : 0}`);
    return `${lines.join('\n')}\n`;
  }

  public readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void this.serve(req, res);
  };

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const header = req.headers['byoc-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    const line: Record<string, unknown> = { reqId: requestId };
    let status = 500;
    let reason: Outcome = 'internal-error';
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    try {
      const route = ROUTE.exec((req.url ?? '').split('?')[0]);
      if (!route) throw new Refusal(404, 'not-found', 'no such path: POST /c/<customer>/v1/chat/completions or /c/<customer>/v1/messages');
      if (req.method !== 'POST') throw new Refusal(405, 'method-not-allowed', 'only POST');
      const shape: ApiShape = route[2] === API_PATHS.openai ? 'openai' : 'anthropic';
      line.api = shape;

      const token = await this.authenticate(req);
      line.customer = token.customerId;
      line.tokenId = token.tokenId;
      if (route[1] !== token.customerId) throw new Refusal(403, 'customer-mismatch', `the token is for customer ${token.customerId}, the URL names ${route[1]}`);
      const customer = await this.customerOf(token);

      const neutral = await this.readRequest(req, shape);
      line.model = neutral.model;
      const eligible = this.options.providers.filter((p) => p.models[neutral.model] !== undefined);
      if (eligible.length === 0) throw new Refusal(400, 'unknown-model', `no provider serves model ${neutral.model}`);

      await this.limit(() => this.options.store.admitRequest(customer));
      const reservation = await this.limit(() => this.options.store.reserveTokens(customer, estimateInputTokens(neutral) + neutral.maxTokens));
      line.reservedTokens = reservation.tokens;
      const attempts: Attempt[] = [];
      line.attempts = attempts;
      let result: UpstreamResult;
      try {
        result = await this.callProviders(eligible, neutral, attempts, abort.signal);
      } catch (e) {
        await this.settle(reservation, 0);
        throw e;
      }
      if (result.kind === 'ok') {
        const { response } = result;
        line.provider = result.provider;
        line.inputTokens = response.inputTokens;
        line.outputTokens = response.outputTokens;
        await this.settle(reservation, response.inputTokens + response.outputTokens);
        status = 200;
        reason = 'ok';
        this.send(res, 200, requestId, JSON.stringify(clientResponse(shape, response, neutral.model, requestId, Date.now())), { 'byoc-llm-provider': result.provider });
      } else if (result.kind === 'rejected') {
        // The provider refused the request itself (400, 404, 413, 422 ...): another provider would too. Its body
        // goes back to the client, who sent the request, and nowhere else (it may quote the prompt).
        line.provider = result.provider;
        await this.settle(reservation, 0);
        status = result.status;
        reason = 'upstream-rejected';
        this.send(res, result.status, requestId, result.body, { 'content-type': result.contentType, 'byoc-llm-provider': result.provider, 'byoc-refusal': reason });
      } else {
        await this.settle(reservation, 0);
        throw new Refusal(502, 'all-providers-failed', `no provider answered: ${attempts.map((a) => `${a.provider} ${a.outcome}`).join(', ')}`);
      }
    } catch (e) {
      let refusal: Refusal;
      if (e instanceof Refusal) refusal = e;
      else if (e instanceof TokenError) refusal = new Refusal(401, e.reason, e.message);
      else if (e instanceof RequestError) refusal = new Refusal(400, e.reason, e.message);
      else if (e instanceof LimitError) refusal = new Refusal(429, e.reason, e.message, e.retryAfterSeconds);
      else {
        refusal = new Refusal(500, 'internal-error', 'internal error');
        // The error's class and name only: a message could carry anything.
        line.error = (e as Error)?.name ?? typeof e;
      }
      status = refusal.status;
      reason = refusal.reason;
      if (!res.headersSent && !res.destroyed) {
        this.send(res, refusal.status, requestId, JSON.stringify({ type: 'error', error: { type: refusal.reason, message: refusal.message } }),
          { 'byoc-refusal': refusal.reason, ...(refusal.retryAfter !== undefined ? { 'retry-after': String(refusal.retryAfter) } : {}) });
      }
    } finally {
      const key = `${status} ${reason}`;
      this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
      line.status = status;
      line.reason = reason;
      line.latencyMs = Number((process.hrtime.bigint() - started) / 1000000n);
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      this.options.log[level](line, 'llm request');
    }
  }

  private send(res: http.ServerResponse, status: number, requestId: string, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': requestId, 'cache-control': 'no-store', ...headers });
    res.end(body);
  }

  private async authenticate(req: http.IncomingMessage): Promise<VerifiedToken> {
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : undefined;
    const apiKey = req.headers['x-api-key'];
    return this.options.verifier.verify(bearer ?? (typeof apiKey === 'string' ? apiKey.trim() : undefined));
  }

  private async customerOf(token: VerifiedToken): Promise<CustomerRecord> {
    let customer: CustomerRecord | undefined;
    try {
      customer = await this.options.store.customer(token.customerId);
    } catch {
      throw new Refusal(503, 'store-unavailable', 'the proxy cannot read its store; retry later');
    }
    if (!customer) throw new Refusal(403, 'unknown-customer', `customer ${token.customerId} is not registered with the proxy`);
    if (customer.status !== 'active') throw new Refusal(403, 'revoked-customer', `customer ${token.customerId} is revoked`);
    if (!customer.tokenIds.includes(token.tokenId)) throw new Refusal(403, 'revoked-token', 'this token was revoked or replaced; use the customer\'s current token');
    return customer;
  }

  private async limit<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof LimitError) throw e;
      throw new Refusal(503, 'store-unavailable', 'the proxy cannot reach its store; retry later');
    }
  }

  private async settle(reservation: Reservation, used: number): Promise<void> {
    try {
      await this.options.store.settle(reservation, used);
    } catch {
      // The reservation stays counted in full: the budget errs on the customer's side of its limit, never over it.
    }
  }

  private async readRequest(req: http.IncomingMessage, shape: ApiShape): Promise<NeutralRequest> {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) throw new RequestError('bad-request', 'content-type must be application/json');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.options.maxBodyBytes) throw new Refusal(413, 'too-large', `the body is larger than ${this.options.maxBodyBytes} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > this.options.maxBodyBytes) throw new Refusal(413, 'too-large', `the body is larger than ${this.options.maxBodyBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new RequestError('bad-request', 'the body is not JSON');
    }
    return parseRequest(shape, body);
  }

  private async callProviders(providers: readonly ProviderConfig[], neutral: NeutralRequest, attempts: Attempt[], clientGone: AbortSignal): Promise<UpstreamResult> {
    for (const provider of providers) {
      if (clientGone.aborted) break;
      const breaker = this.breakers.get(provider.name)!;
      if (!breaker.allows()) { attempts.push({ provider: provider.name, outcome: 'circuit-open' }); continue; }
      let apiKey: string;
      try {
        apiKey = await this.options.keys.get(provider);
      } catch {
        breaker.failure();
        attempts.push({ provider: provider.name, outcome: 'no-key' });
        continue;
      }
      const signal = AbortSignal.any([AbortSignal.timeout(this.options.upstreamTimeoutMs), clientGone]);
      let res: Response;
      try {
        res = await fetch(`${provider.baseUrl.replace(/\/+$/, '')}${API_PATHS[provider.api]}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...upstreamHeaders(provider.api, apiKey) },
          body: JSON.stringify(upstreamBody(provider.api, neutral, provider.models[neutral.model])),
          signal,
          redirect: 'error',
        });
      } catch {
        breaker.failure();
        attempts.push({ provider: provider.name, outcome: signal.aborted && !clientGone.aborted ? 'timeout' : 'network' });
        continue;
      }
      if (res.ok) {
        try {
          const response = parseUpstreamResponse(provider.api, await res.json());
          breaker.success();
          attempts.push({ provider: provider.name, outcome: 'ok' });
          return { kind: 'ok', provider: provider.name, response };
        } catch (e) {
          breaker.failure();
          attempts.push({ provider: provider.name, outcome: e instanceof UpstreamShapeError || e instanceof SyntaxError ? 'bad-answer' : 'network' });
          continue;
        }
      }
      const body = await res.text().catch(() => '');
      attempts.push({ provider: provider.name, outcome: `http-${res.status}` });
      if (res.status >= 500 || FAILOVER_STATUSES.has(res.status)) {
        // 429 is the provider's throttle, not a fault: it moves on without opening the breaker.
        if (res.status !== 429) breaker.failure();
        continue;
      }
      breaker.success();
      return { kind: 'rejected', provider: provider.name, status: res.status, body, contentType: res.headers.get('content-type') ?? 'application/json' };
    }
    return { kind: 'failed' };
  }
}

/** The admin port's handler: `/healthz` (the load balancer's health check) and `/metrics`. */
export function adminHandler(handler: LlmProxyHandler, ready: () => boolean): http.RequestListener {
  return (req, res) => {
    if (req.url === '/healthz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'starting\n');
    } else if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(handler.metricsText());
    } else {
      res.writeHead(404);
      res.end();
    }
  };
}
