import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';
import { Writable } from 'stream';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import pino from 'pino';
import { AnthropicProvider, LlmClient, OpenAiProvider } from '../../agents/runtime/llm';
import { ProviderConfig } from '../../control-plane/llm-proxy/config';
import { provisionLlmProxyCustomer } from '../../control-plane/llm-proxy/provision';
import { LlmProxyHandler } from '../../control-plane/llm-proxy/server';
import { CustomerLimits, LlmStore } from '../../control-plane/llm-proxy/store';
import {
  derToJose, issueLlmProxyToken, JwsSigner, kmsJwsSigner, kmsPublicKey, LLM_TOKEN_TYPE, llmProxyAudience, signJws, TokenVerifier,
} from '../../control-plane/llm-proxy/token';
import { FakeProvider, LlmBackends, startFakeProvider, startLlmBackends } from './llm-proxy-harness';

const HUB = 'hub.test.example';
const AUDIENCE = llmProxyAudience(HUB);
const ISSUER = 'byoc-vendor';
const NOW = Date.UTC(2030, 0, 15, 12, 0, 30);

let backends: LlmBackends;
let signer: JwsSigner;
let verifier: TokenVerifier;
let primary: FakeProvider;
let secondary: FakeProvider;
let providers: ProviderConfig[];
const servers: http.Server[] = [];
const logLines: string[] = [];

/** A pino logger whose lines land in `logLines` (what the process would write to stdout). */
const logger = () => pino({ base: { service: 'llm-proxy' } }, new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } }));

interface Proxy { url: string; handler: LlmProxyHandler; store: LlmStore }

/** One proxy task: its own handler and HTTP server, sharing the store (moto's DynamoDB) with every other. */
async function startProxy(options: { now?: number; timeoutMs?: number } = {}): Promise<Proxy> {
  const store = new LlmStore(backends.dynamodb, backends.table, () => options.now ?? NOW);
  const handler = new LlmProxyHandler({
    verifier, store, providers, log: logger(),
    keys: { get: async (p) => (await backends.secrets.send(new GetSecretValueCommand({ SecretId: p.apiKeySecretArn }))).SecretString! },
    upstreamTimeoutMs: options.timeoutMs ?? 30000,
    maxBodyBytes: 64 * 1024,
    breakerThreshold: 2,
    breakerResetMs: 3600000,
  });
  const server = http.createServer(handler.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, handler, store };
}

async function register(customerId: string, limits: CustomerLimits = { requestsPerMinute: 1000, tokensPerPeriod: 1_000_000, period: 'day' }): Promise<string> {
  const issued = await issueLlmProxyToken(signer, { customerId, audience: AUDIENCE, issuer: ISSUER });
  await new LlmStore(backends.dynamodb, backends.table, () => NOW).registerCustomer(customerId, issued.tokenId, limits);
  return issued.token;
}

const claims = (customerId: string, extra: Record<string, unknown> = {}) => ({
  iss: ISSUER, aud: AUDIENCE, sub: customerId, iat: Math.floor(NOW / 1000), exp: Math.floor(NOW / 1000) + 3600, jti: 'not-registered', ...extra,
});

interface Reply { status: number; body: any; headers: Headers }

async function post(url: string, customer: string, api: 'openai' | 'anthropic', body: unknown, auth?: { bearer?: string; apiKey?: string }): Promise<Reply> {
  const path = api === 'openai' ? '/v1/chat/completions' : '/v1/messages';
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth?.bearer) headers.authorization = `Bearer ${auth.bearer}`;
  if (auth?.apiKey) headers['x-api-key'] = auth.apiKey;
  const res = await fetch(`${url}/c/${customer}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const openaiBody = (prompt: string, extra: Record<string, unknown> = {}) => ({ model: 'fast', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: prompt }], max_tokens: 50, ...extra });
const anthropicBody = (prompt: string) => ({ model: 'fast', max_tokens: 50, system: 'Be brief.', messages: [{ role: 'user', content: prompt }] });

beforeAll(async () => {
  backends = await startLlmBackends();
  signer = kmsJwsSigner(backends.kms, backends.tokenKeyArn);
  const { publicKey, keyArn } = await kmsPublicKey(backends.kms, backends.tokenKeyArn);
  verifier = new TokenVerifier({ publicKey, keyId: keyArn, audience: AUDIENCE, issuer: ISSUER, clockToleranceSeconds: 0 });
  primary = await startFakeProvider('primary', 'openai', 'sk-primary-key');
  secondary = await startFakeProvider('secondary', 'anthropic', 'sk-secondary-key');
  providers = [
    { name: 'primary', api: 'openai', baseUrl: primary.baseUrl, apiKeySecretArn: await backends.secret('llm/primary', primary.apiKey), models: { fast: 'gpt-fast', big: 'gpt-big' } },
    { name: 'secondary', api: 'anthropic', baseUrl: secondary.baseUrl, apiKeySecretArn: await backends.secret('llm/secondary', secondary.apiKey), models: { fast: 'claude-fast' } },
  ];
});

afterAll(async () => {
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  await primary?.stop();
  await secondary?.stop();
  await backends?.stop();
});

beforeEach(() => {
  for (const p of [primary, secondary]) { p.mode = 'ok'; p.requests.length = 0; p.gate = undefined; }
});

describe('tokens', () => {
  test('derToJose turns DER ECDSA signatures into the raw r || s that verifies (200 signatures: short and high-bit r and s)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`message ${i}`);
      const raw = derToJose(cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'der' }));
      expect(raw).toHaveLength(64);
      expect(cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
    }
    expect(() => derToJose(Buffer.from('3006020101020101ff', 'hex'))).toThrow(/not a DER ECDSA signature/);
  });

  test('a token issued through KMS verifies with jose and says typ, kid, iss, aud, sub, jti, iat and exp', async () => {
    const issued = await issueLlmProxyToken(signer, { customerId: 'acme', audience: AUDIENCE, issuer: ISSUER, now: new Date(NOW), validDays: 30 });
    const [header, payload] = issued.token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header).toEqual({ typ: LLM_TOKEN_TYPE, alg: 'ES256', kid: (await kmsPublicKey(backends.kms, backends.tokenKeyArn)).keyArn });
    expect(payload).toEqual({ iss: ISSUER, aud: AUDIENCE, sub: 'acme', iat: Math.floor(NOW / 1000), exp: Math.floor(NOW / 1000) + 30 * 86400, jti: issued.tokenId });
    // Tokens are verified on the real clock: one issued in 2030 is not valid yet; one issued now is.
    await expect(verifier.verify(issued.token)).rejects.toThrow(expect.objectContaining({ reason: 'not-yet-valid' }));
    const current = await issueLlmProxyToken(signer, { customerId: 'acme', audience: AUDIENCE, issuer: ISSUER });
    await expect(verifier.verify(current.token)).resolves.toEqual(expect.objectContaining({ customerId: 'acme', tokenId: current.tokenId }));
  });
});

describe('authentication and customers (each refusal precise and counted)', () => {
  let proxy: Proxy;
  let good: string;
  beforeAll(async () => {
    // Tokens are checked on the real clock; the store's clock is fixed (rate windows, budget periods).
    proxy = await startProxy();
    good = await register('acme');
  });

  const sign = (header: Record<string, unknown>, c: Record<string, unknown>) => signJws(signer, header, c);
  const live = (customerId: string, extra: Record<string, unknown> = {}) => claims(customerId, { iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600, ...extra });

  test('a valid token, as Bearer or as x-api-key, is served', async () => {
    expect((await post(proxy.url, 'acme', 'openai', openaiBody('hello'), { bearer: good })).status).toBe(200);
    expect((await post(proxy.url, 'acme', 'anthropic', anthropicBody('hello'), { apiKey: good })).status).toBe(200);
  });

  test.each([
    ['no token', async () => undefined, 401, 'missing-token'],
    ['not a JWS', async () => 'sk-a-provider-key', 401, 'malformed-token'],
    ['another type (a telemetry token)', async () => sign({ typ: 'byoc-telemetry+jwt' }, live('acme')), 401, 'wrong-type'],
    ['no type', async () => sign({}, live('acme')), 401, 'wrong-type'],
    ['another audience', async () => sign({ typ: LLM_TOKEN_TYPE }, live('acme', { aud: 'https://ingest.hub.test.example' })), 401, 'wrong-audience'],
    ['another issuer', async () => sign({ typ: LLM_TOKEN_TYPE }, live('acme', { iss: 'someone-else' })), 401, 'wrong-issuer'],
    ['expired', async () => sign({ typ: LLM_TOKEN_TYPE }, live('acme', { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })), 401, 'expired'],
    ['not yet valid', async () => sign({ typ: LLM_TOKEN_TYPE }, live('acme', { nbf: Math.floor(Date.now() / 1000) + 3600 })), 401, 'not-yet-valid'],
    ['no jti', async () => sign({ typ: LLM_TOKEN_TYPE }, live('acme', { jti: undefined })), 401, 'missing-claim'],
    ['signed by another key', async () => {
      const other = kmsJwsSigner(backends.kms, await backends.otherKey());
      return signJws(other, { typ: LLM_TOKEN_TYPE }, live('acme'));
    }, 401, 'unknown-key'],
    ['signed by another key under the trusted kid', async () => {
      const other = kmsJwsSigner(backends.kms, await backends.otherKey());
      return signJws({ keyId: signer.keyId, sign: other.sign }, { typ: LLM_TOKEN_TYPE }, live('acme'));
    }, 401, 'bad-signature'],
    ['alg none', async () => `${Buffer.from(JSON.stringify({ alg: 'none', typ: LLM_TOKEN_TYPE })).toString('base64url')}.${Buffer.from(JSON.stringify(live('acme'))).toString('base64url')}.`, 401, 'wrong-algorithm'],
    ['HS256 with the public key as secret', async () => {
      const { createHmac } = await import('crypto');
      const input = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: LLM_TOKEN_TYPE, kid: backends.tokenKeyArn })).toString('base64url')}.${Buffer.from(JSON.stringify(live('acme'))).toString('base64url')}`;
      return `${input}.${createHmac('sha256', 'public').update(input).digest('base64url')}`;
    }, 401, 'wrong-algorithm'],
    ['valid, but for another customer than the URL names', async () => good, 403, 'customer-mismatch', 'globex'],
    ['valid signature, customer never registered', async () => sign({ typ: LLM_TOKEN_TYPE }, live('initech')), 403, 'unknown-customer', 'initech'],
    ['valid signature, token ID never admitted', async () => sign({ typ: LLM_TOKEN_TYPE }, live('acme', { jti: 'forged-id' })), 403, 'revoked-token'],
  ] as [string, () => Promise<string | undefined>, number, string, string?][])('%s: refused', async (_name, token, status, reason, urlCustomer = 'acme') => {
    const before = proxy.handler.counters.get(`${status} ${reason}`) ?? 0;
    const reply = await post(proxy.url, urlCustomer, 'openai', openaiBody('hello'), { bearer: await token() });
    expect({ status: reply.status, reason: reply.body.error.type, header: reply.headers.get('byoc-refusal') }).toEqual({ status, reason, header: reason });
    expect(proxy.handler.counters.get(`${status} ${reason}`)).toBe(before + 1);
    expect(proxy.handler.metricsText()).toContain(`byoc_llm_requests_total{status="${status}",reason="${reason}"} ${before + 1}`);
    expect(primary.requests).toHaveLength(0);
  });

  test('revoking a token refuses it at once; revoking the customer refuses all its tokens; provisioning again reinstates with a new token', async () => {
    const second = await issueLlmProxyToken(signer, { customerId: 'hooli', audience: AUDIENCE, issuer: ISSUER });
    const first = await issueLlmProxyToken(signer, { customerId: 'hooli', audience: AUDIENCE, issuer: ISSUER });
    await proxy.store.registerCustomer('hooli', first.tokenId);
    await proxy.store.registerCustomer('hooli', second.tokenId);
    expect((await post(proxy.url, 'hooli', 'openai', openaiBody('x'), { bearer: first.token })).status).toBe(200);
    await proxy.store.revokeToken('hooli', first.tokenId);
    expect((await post(proxy.url, 'hooli', 'openai', openaiBody('x'), { bearer: first.token })).body.error.type).toBe('revoked-token');
    expect((await post(proxy.url, 'hooli', 'openai', openaiBody('x'), { bearer: second.token })).status).toBe(200);
    await proxy.store.revokeCustomer('hooli', 'contract ended');
    const refused = await post(proxy.url, 'hooli', 'openai', openaiBody('x'), { bearer: second.token });
    expect({ status: refused.status, reason: refused.body.error.type }).toEqual({ status: 403, reason: 'revoked-customer' });
  });
});

describe('serving, translation and failover', () => {
  let proxy: Proxy;
  let token: string;
  beforeAll(async () => {
    proxy = await startProxy({ timeoutMs: 1500 });
    const issued = await issueLlmProxyToken(signer, { customerId: 'acme', audience: AUDIENCE, issuer: ISSUER });
    await proxy.store.registerCustomer('acme', issued.tokenId, { requestsPerMinute: 10000, tokensPerPeriod: 10_000_000, period: 'month' });
    token = issued.token;
  });

  test('an OpenAI-shaped request is served by the OpenAI-shaped primary with its key and model; usage is counted in the budget', async () => {
    const before = await proxy.store.tokensUsed('acme', 'month');
    const reply = await post(proxy.url, 'acme', 'openai', openaiBody('What is 2+2?', { temperature: 0.2, stop: ['END'] }), { bearer: token });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('byoc-llm-provider')).toBe('primary');
    expect(reply.body).toEqual(expect.objectContaining({
      object: 'chat.completion', model: 'fast',
      choices: [{ index: 0, message: { role: 'assistant', content: 'completion from primary' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
    }));
    expect(primary.requests).toHaveLength(1);
    expect(primary.requests[0].headers.authorization).toBe('Bearer sk-primary-key');
    expect(primary.requests[0].body).toEqual({ model: 'gpt-fast', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 2+2?' }], max_tokens: 50, temperature: 0.2, stop: ['END'] });
    expect(await proxy.store.tokensUsed('acme', 'month')).toBe(before + 18);
  });

  test('the agent runtime\'s own providers (agents/runtime/llm.ts) work with the proxy as their base URL and the token as their key', async () => {
    const base = `${proxy.url}/c/acme`;
    const client = new LlmClient([
      { provider: new OpenAiProvider('proxy-openai', base, async () => token), model: 'fast', contextWindow: 8000 },
      { provider: new AnthropicProvider('proxy-anthropic', base, async () => token), model: 'fast', contextWindow: 8000 },
    ]);
    const out = await client.complete([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Through the proxy' }], 40);
    expect(out).toEqual({ text: 'completion from primary', provider: 'proxy-openai', inputTokens: 11, outputTokens: 7 });
    const anthropic = await new AnthropicProvider('proxy-anthropic', base, async () => token)
      .complete({ model: 'fast', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Anthropic shape' }], maxTokens: 40 }, new AbortController().signal);
    expect(anthropic).toEqual({ text: 'completion from primary', inputTokens: 11, outputTokens: 7 });
    expect(primary.requests.map((r) => r.body.messages.at(-1).content)).toEqual(['Through the proxy', 'Anthropic shape']);
  });

  test('an Anthropic-shaped request is answered in the Anthropic shape, by whichever provider serves it', async () => {
    const reply = await post(proxy.url, 'acme', 'anthropic', anthropicBody('Hi'), { apiKey: token });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual(expect.objectContaining({
      type: 'message', role: 'assistant', model: 'fast', content: [{ type: 'text', text: 'completion from primary' }],
      stop_reason: 'end_turn', usage: { input_tokens: 11, output_tokens: 7 },
    }));
    expect(primary.requests[0].body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
  });

  test('the primary failing (503) fails over to the Anthropic-shaped secondary, with its key and model; the client sees its own shape', async () => {
    primary.mode = 'fail';
    const reply = await post(proxy.url, 'acme', 'openai', openaiBody('Fail over please'), { bearer: token });
    expect(reply.status).toBe(200);
    expect(reply.headers.get('byoc-llm-provider')).toBe('secondary');
    expect(reply.body.choices[0].message.content).toBe('completion from secondary');
    expect(primary.requests).toHaveLength(1);
    expect(secondary.requests).toHaveLength(1);
    expect(secondary.requests[0].headers['x-api-key']).toBe('sk-secondary-key');
    expect(secondary.requests[0].body).toEqual({ model: 'claude-fast', max_tokens: 50, system: 'Be brief.', messages: [{ role: 'user', content: 'Fail over please' }] });
    const line = JSON.parse(logLines.filter((l) => l.includes('"llm request"')).pop()!);
    expect(line).toEqual(expect.objectContaining({ customer: 'acme', model: 'fast', provider: 'secondary', status: 200, reason: 'ok', inputTokens: 11, outputTokens: 7,
      attempts: [{ provider: 'primary', outcome: 'http-503' }, { provider: 'secondary', outcome: 'ok' }] }));
  });

  test('after two failures the primary\'s circuit is open: requests go straight to the secondary', async () => {
    primary.mode = 'fail';
    await post(proxy.url, 'acme', 'openai', openaiBody('again'), { bearer: token });
    expect(proxy.handler.breakerStates().primary).toBe('open');
    primary.requests.length = 0;
    const reply = await post(proxy.url, 'acme', 'openai', openaiBody('skip the primary'), { bearer: token });
    expect(reply.status).toBe(200);
    expect(primary.requests).toHaveLength(0);
    expect(JSON.parse(logLines.pop()!).attempts).toEqual([{ provider: 'primary', outcome: 'circuit-open' }, { provider: 'secondary', outcome: 'ok' }]);
    expect(proxy.handler.metricsText()).toContain('byoc_llm_provider_circuit_open{provider="primary"} 1');
  });

  test('a provider that never answers times out and the next one serves', async () => {
    const other = await startProxy({ timeoutMs: 300 });
    primary.mode = 'hang';
    const reply = await post(other.url, 'acme', 'anthropic', anthropicBody('slow'), { apiKey: token });
    expect(reply.status).toBe(200);
    expect(JSON.parse(logLines.pop()!).attempts).toEqual([{ provider: 'primary', outcome: 'timeout' }, { provider: 'secondary', outcome: 'ok' }]);
  });

  test('a request the provider rejects (400) is not failed over: the client gets the provider\'s answer, the budget is refunded', async () => {
    const other = await startProxy();
    primary.mode = 'reject';
    const before = await other.store.tokensUsed('acme', 'month');
    const reply = await post(other.url, 'acme', 'openai', openaiBody('bad request'), { bearer: token });
    expect(reply.status).toBe(400);
    expect(reply.headers.get('byoc-refusal')).toBe('upstream-rejected');
    expect(reply.body.error.type).toBe('invalid_request_error');
    expect(secondary.requests).toHaveLength(0);
    expect(await other.store.tokensUsed('acme', 'month')).toBe(before);
  });

  test('when every provider fails: 502 all-providers-failed naming each attempt, and the reservation is refunded', async () => {
    const other = await startProxy();
    primary.mode = 'fail';
    secondary.mode = 'fail';
    const before = await other.store.tokensUsed('acme', 'month');
    const reply = await post(other.url, 'acme', 'openai', openaiBody('nobody home'), { bearer: token });
    expect({ status: reply.status, reason: reply.body.error.type }).toEqual({ status: 502, reason: 'all-providers-failed' });
    expect(reply.body.error.message).toBe('no provider answered: primary http-503, secondary http-503');
    expect(await other.store.tokensUsed('acme', 'month')).toBe(before);
  });

  test.each([
    ['streaming', openaiBody('x', { stream: true }), 400, 'unsupported'],
    ['an image', { model: 'fast', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:,' } }] }] }, 400, 'unsupported'],
    ['a tool role', { model: 'fast', max_tokens: 5, messages: [{ role: 'tool', content: 'x' }] }, 400, 'unsupported'],
    ['no max_tokens', { model: 'fast', messages: [{ role: 'user', content: 'x' }] }, 400, 'bad-request'],
    ['a model nobody serves', openaiBody('x', { model: 'huge' }), 400, 'unknown-model'],
    ['not JSON', '{"model": ', 400, 'bad-request'],
    ['more than the body limit', openaiBody('x'.repeat(70 * 1024)), 413, 'too-large'],
  ] as [string, unknown, number, string][])('%s: refused, and no provider is called', async (_name, body, status, reason) => {
    const reply = await post(proxy.url, 'acme', 'openai', body, { bearer: token });
    expect({ status: reply.status, reason: reply.body.error.type }).toEqual({ status, reason });
    expect(primary.requests.length + secondary.requests.length).toBe(0);
  });
});

describe('limits shared by several proxy tasks (DynamoDB conditional updates)', () => {
  test('requests per minute: 12 concurrent requests over two tasks, limit 5: exactly 5 served, 7 refused with 429 rate-limit and Retry-After', async () => {
    const [a, b] = [await startProxy({ now: NOW }), await startProxy({ now: NOW })];
    const token = await register('ratelimited', { requestsPerMinute: 5, tokensPerPeriod: 1_000_000, period: 'day' });
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => post((i % 2 ? a : b).url, 'ratelimited', 'openai', openaiBody(`r${i}`), { bearer: token })));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(5);
    const refused = replies.filter((r) => r.status !== 200);
    expect(refused.map((r) => `${r.status} ${r.body.error.type} ${r.headers.get('retry-after')}`)).toEqual(Array(7).fill('429 rate-limit 30'));
    // The next minute has its own window.
    const later = await startProxy({ now: NOW + 60000 });
    expect((await post(later.url, 'ratelimited', 'openai', openaiBody('next minute'), { bearer: token })).status).toBe(200);
  });

  test('token budget: reservations held by requests in flight on two tasks never exceed it; usage is settled to what providers counted', async () => {
    const [a, b] = [await startProxy({ now: NOW }), await startProxy({ now: NOW })];
    // Each request reserves its estimated input (11) and max_tokens (137): 148. Two fit in 300, a third does not.
    const token = await register('budgeted', { requestsPerMinute: 1000, tokensPerPeriod: 300, period: 'day' });
    let release!: () => void;
    primary.gate = new Promise((resolve) => { release = resolve; });
    const body = { model: 'fast', max_tokens: 137, messages: [{ role: 'user', content: 'twelve chars' }] };
    const early: Reply[] = [];
    const pending = Array.from({ length: 6 }, (_, i) => post((i % 2 ? a : b).url, 'budgeted', 'openai', body, { bearer: token }).then((r) => { early.push(r); return r; }));
    // Until the provider answers, two reservations (296 of 300) are held: every other request is refused.
    // Wait until each request was either answered or reached the provider.
    for (let i = 0; early.length + primary.requests.length < 6 && i < 600; i++) await new Promise((r) => setTimeout(r, 50));
    expect(primary.requests).toHaveLength(2);
    expect(early.map((r) => `${r.status} ${r.body.error.type}`)).toEqual(Array(4).fill('429 token-budget'));
    // Until the end of the UTC day (NOW is 12:00:30).
    expect(Number(early[0].headers.get('retry-after'))).toBe(43170);
    release();
    const all = await Promise.all(pending);
    expect(all.filter((r) => r.status === 200)).toHaveLength(2);
    // Settled to the provider's counts (11 + 7 each), so room is left for more.
    expect(await a.store.tokensUsed('budgeted', 'day')).toBe(36);
    primary.gate = undefined;
    expect((await post(a.url, 'budgeted', 'openai', body, { bearer: token })).status).toBe(200);
    expect(await a.store.tokensUsed('budgeted', 'day')).toBe(54);
    // A request larger than the whole budget is refused without reserving.
    const huge = await post(b.url, 'budgeted', 'openai', { ...body, max_tokens: 400 }, { bearer: token });
    expect({ status: huge.status, reason: huge.body.error.type }).toEqual({ status: 429, reason: 'token-budget' });
    // The next day has a budget of its own.
    const tomorrow = await startProxy({ now: NOW + 86400000 });
    expect(await tomorrow.store.tokensUsed('budgeted', 'day')).toBe(0);
  });
});

describe('no prompt or completion is stored or logged', () => {
  test('prompts, system prompts, completions and providers\' error bodies quoting the prompt reach neither the log nor the store', async () => {
    const proxy = await startProxy();
    const token = await register('secretive');
    const marks = { prompt: 'PROMPT-MARK-7f3a9c', system: 'SYSTEM-MARK-2b8e1d', completion: 'COMPLETION-MARK-c41f0e', rejected: 'REJECTED-MARK-95d2aa', failed: 'FAILED-MARK-6e7b13' };
    logLines.length = 0;
    primary.completion = `The answer is ${marks.completion}.`;
    secondary.completion = `Also ${marks.completion}.`;
    try {
      const ok = await post(proxy.url, 'secretive', 'openai', { model: 'fast', max_tokens: 20, messages: [{ role: 'system', content: marks.system }, { role: 'user', content: marks.prompt }] }, { bearer: token });
      expect(ok.body.choices[0].message.content).toContain(marks.completion);
      const translated = await post(proxy.url, 'secretive', 'anthropic', { model: 'big', max_tokens: 20, system: marks.system, messages: [{ role: 'user', content: marks.prompt }] }, { apiKey: token });
      expect(translated.status).toBe(200);
      primary.mode = 'reject';
      const rejected = await post(proxy.url, 'secretive', 'openai', openaiBody(marks.rejected), { bearer: token });
      expect(JSON.stringify(rejected.body)).toContain(marks.rejected);
      primary.mode = 'fail';
      secondary.mode = 'fail';
      const failed = await post(proxy.url, 'secretive', 'openai', openaiBody(marks.failed), { bearer: token });
      expect(failed.status).toBe(502);
    } finally {
      primary.completion = 'completion from primary';
      secondary.completion = 'completion from secondary';
    }
    const log = logLines.join('');
    expect(logLines.filter((l) => l.includes('"llm request"'))).toHaveLength(4);
    const stored = await backends.tableDump();
    for (const mark of Object.values(marks)) {
      expect(log).not.toContain(mark);
      expect(stored).not.toContain(mark);
    }
    // What the log does hold: who, which model and provider, how many tokens, the outcome.
    expect(JSON.parse(logLines[0])).toEqual(expect.objectContaining({ customer: 'secretive', model: 'fast', provider: 'primary', inputTokens: 11, outputTokens: 7, status: 200 }));
  });
});

describe('provisioning a customer (what byoc customer add calls)', () => {
  test('issues a token into byoc/customers/<id>/llm-proxy-token and registers it; run again it keeps it; after a revocation it issues a new one', async () => {
    const proxy = await startProxy();
    const options = {
      customerId: 'umbrella', kms: backends.kms, dynamodb: backends.dynamodb, secrets: backends.secrets, tokenKeyId: backends.tokenKeyArn,
      table: backends.table, audience: AUDIENCE, issuer: ISSUER, limits: { requestsPerMinute: 60, tokensPerPeriod: 100000, period: 'month' as const },
    };
    const first = await provisionLlmProxyCustomer(options);
    expect(first).toEqual(expect.objectContaining({ secretName: 'byoc/customers/umbrella/llm-proxy-token', issued: true }));
    const token = (await backends.secrets.send(new GetSecretValueCommand({ SecretId: first.secretName }))).SecretString!;
    expect((await post(proxy.url, 'umbrella', 'openai', openaiBody('hi'), { bearer: token })).status).toBe(200);
    expect(await proxy.store.customer('umbrella')).toEqual(expect.objectContaining({ status: 'active', requestsPerMinute: 60, tokensPerPeriod: 100000, period: 'month', tokenIds: [first.tokenId] }));

    const again = await provisionLlmProxyCustomer(options);
    expect(again).toEqual({ ...first, issued: false });
    expect((await backends.secrets.send(new GetSecretValueCommand({ SecretId: first.secretName }))).SecretString).toBe(token);

    await proxy.store.revokeCustomer('umbrella', 'unpaid');
    const reinstated = await provisionLlmProxyCustomer(options);
    expect(reinstated.issued).toBe(true);
    expect(reinstated.tokenId).not.toBe(first.tokenId);
    const fresh = (await backends.secrets.send(new GetSecretValueCommand({ SecretId: first.secretName }))).SecretString!;
    expect((await post(proxy.url, 'umbrella', 'openai', openaiBody('hi'), { bearer: token })).body.error.type).toBe('revoked-token');
    expect((await post(proxy.url, 'umbrella', 'openai', openaiBody('hi'), { bearer: fresh })).status).toBe(200);
  });
});
