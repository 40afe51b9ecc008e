import { ChildProcess, spawn } from 'child_process';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import * as fs from 'fs';
import { LookupFunction } from 'net';
import * as os from 'os';
import * as path from 'path';
import { projectRoot } from '../../lib/app';
import { LLM_ENV } from '../../control-plane/llm-proxy/config';
import { llmProxyBaseUrl } from '../../control-plane/llm-proxy/endpoint';
import { LlmStore } from '../../control-plane/llm-proxy/store';
import { issueLlmProxyToken, kmsJwsSigner, llmProxyAudience, llmProxyHost } from '../../control-plane/llm-proxy/token';
import { ChatMessage, llmFromEnv } from '../../agents/runtime/llm';
import { secretsByName } from '../../agents/runtime/stores';
import { FakeProvider, LlmBackends, startFakeProvider, startLlmBackends } from '../control-plane/llm-proxy-harness';
import { freePort, testCertificates } from '../servers/nats';

/**
 * llmFromEnv against the real LLM proxy (the built bundle, run as its container runs it, with moto and local
 * provider stand-ins: test/control-plane/llm-proxy-harness.ts) and, for own-keys, against the stand-ins directly.
 * The agent's secrets are in moto's Secrets Manager and reached by name through BYOC_SECRET_ARNS, as in the plane.
 */
const BUNDLE = path.join(projectRoot(), 'dist', 'control-plane', 'llm-proxy-server.js');
const HUB = 'hub.test.example';
const CUSTOMER = 'acme';

let tmp: string;
let ca: string;
let backends: LlmBackends;
let primary: FakeProvider;
let secondary: FakeProvider;
let proxy: { child: ChildProcess; port: number; output: () => string };
let tokenArn: string;

/** Every name the agent looks up goes to loopback: the URL's name is still what TLS sends and checks. */
const lookups: string[] = [];
const toLoopback: LookupFunction = ((hostname: string, options: { all?: boolean }, callback: (...a: unknown[]) => void) => {
  lookups.push(hostname);
  if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}) as unknown as LookupFunction;

const messages: ChatMessage[] = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }];
const readSecret = async (arn: string) => (await backends.secrets.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString ?? '';

function proxyEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    BYOC_LLM_MODE: 'vendor-proxy',
    BYOC_LLM_PROXY_URL: llmProxyBaseUrl(HUB, CUSTOMER).replace(llmProxyHost(HUB), `${llmProxyHost(HUB)}:${proxy.port}`),
    BYOC_LLM_PROXY_CA: ca,
    BYOC_SECRET_ARNS: JSON.stringify({ 'llm-primary': tokenArn }),
    ...extra,
  };
}

beforeAll(async () => {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-llm-env-'));
  const tls = testCertificates(tmp, `DNS:${HUB},DNS:*.${HUB}`);
  ca = fs.readFileSync(tls.ca, 'utf8');
  backends = await startLlmBackends();
  primary = await startFakeProvider('primary', 'openai', 'sk-primary');
  secondary = await startFakeProvider('secondary', 'anthropic', 'sk-secondary');
  const tlsSecret = await backends.secret('byoc/hub/tls', JSON.stringify({ cert: fs.readFileSync(tls.cert, 'utf8'), key: fs.readFileSync(tls.key, 'utf8') }));
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [BUNDLE], {
    env: {
      PATH: process.env.PATH ?? '', ...backends.moto.env,
      [LLM_ENV.host]: llmProxyHost(HUB), [LLM_ENV.listenHost]: '127.0.0.1', [LLM_ENV.tlsSecretArn]: tlsSecret, [LLM_ENV.tokenKey]: backends.tokenKeyArn,
      [LLM_ENV.table]: backends.table, [LLM_ENV.port]: String(port), [LLM_ENV.adminPort]: String(adminPort),
      [LLM_ENV.providers]: JSON.stringify([
        { name: 'primary', api: 'openai', baseUrl: primary.baseUrl, apiKeySecretArn: await backends.secret('llm/primary', 'sk-primary'), models: { fast: 'gpt-fast' } },
        { name: 'secondary', api: 'anthropic', baseUrl: secondary.baseUrl, apiKeySecretArn: await backends.secret('llm/secondary', 'sk-secondary'), models: { fast: 'claude-fast' } },
      ]),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  proxy = { child, port, output: () => output };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the proxy exited (${child.exitCode}): ${output.slice(-1000)}`);
    if (await fetch(`http://127.0.0.1:${adminPort}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error(`the proxy did not become healthy: ${output.slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const issued = await issueLlmProxyToken(kmsJwsSigner(backends.kms, backends.tokenKeyArn), { customerId: CUSTOMER, audience: llmProxyAudience(HUB) });
  await new LlmStore(backends.dynamodb, backends.table).registerCustomer(CUSTOMER, issued.tokenId);
  // What the customer does with the token the vendor issued: stores it in the plane's llm-primary secret.
  tokenArn = await backends.secret(`byoc/${CUSTOMER}/llm-primary`, issued.token);
}, 90_000);

afterAll(async () => {
  if (proxy && proxy.child.exitCode === null) {
    const exited = new Promise((r) => proxy.child.once('exit', r));
    proxy.child.kill('SIGTERM');
    await exited;
  }
  await primary?.stop();
  await secondary?.stop();
  await backends?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('vendor-proxy: the proxy over TLS, trusting only its CA, with the llm-primary token', () => {
  test('a completion goes through the real proxy and comes back with its token counts', async () => {
    primary.mode = 'ok';
    primary.usage = { input: 21, output: 9 };
    const llm = await llmFromEnv(proxyEnv(), secretsByName(proxyEnv(), readSecret), { model: 'fast', lookup: toLoopback });
    const before = primary.requests.length;
    const c = await llm.complete(messages, 40);
    expect(c).toEqual({ text: 'completion from primary', provider: 'vendor-proxy', inputTokens: 21, outputTokens: 9 });
    // The proxy mapped the client's model name to the provider's, with the vendor's key: the request did go through it.
    expect(primary.requests.slice(before).map((r) => ({ model: r.body.model, key: r.headers.authorization }))).toEqual([{ model: 'gpt-fast', key: 'Bearer sk-primary' }]);
    expect(lookups).toContain(llmProxyHost(HUB));
    // The proxy fails over between the vendor's providers; the agent sees one answer and its counts.
    primary.mode = 'fail';
    secondary.usage = { input: 5, output: 3 };
    expect(await llm.complete(messages, 40)).toEqual({ text: 'completion from secondary', provider: 'vendor-proxy', inputTokens: 5, outputTokens: 3 });
    primary.mode = 'ok';
  });

  test('a certificate from another CA, or for another name, is refused; so is a token the proxy did not issue', async () => {
    const requests = primary.requests.length + secondary.requests.length;
    const other = fs.readFileSync(testCertificates(tmp, `DNS:${HUB},DNS:*.${HUB}`).ca, 'utf8');
    const strangerCa = await llmFromEnv(proxyEnv({ BYOC_LLM_PROXY_CA: other }), secretsByName(proxyEnv(), readSecret), { model: 'fast', lookup: toLoopback });
    await expect(strangerCa.complete(messages, 40)).rejects.toThrow(/every LLM provider failed: vendor-proxy: (unable to verify the first certificate|self.signed certificate|unable to get local issuer certificate)/);
    // Same CA, a name its certificate does not cover (the name is looked up to the same proxy).
    const env = proxyEnv({ BYOC_LLM_PROXY_URL: `https://llm.elsewhere.example:${proxy.port}/c/${CUSTOMER}` });
    const wrongName = await llmFromEnv(env, secretsByName(env, readSecret), { model: 'fast', lookup: toLoopback });
    await expect(wrongName.complete(messages, 40)).rejects.toThrow(/vendor-proxy: Hostname\/IP does not match certificate's altnames: Host: llm\.elsewhere\.example/);
    const forged = await backends.secret(`byoc/${CUSTOMER}/forged`, 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln');
    const badToken = await llmFromEnv(proxyEnv(), secretsByName(proxyEnv({ BYOC_SECRET_ARNS: JSON.stringify({ 'llm-primary': forged }) }), readSecret), { model: 'fast', lookup: toLoopback });
    await expect(badToken.complete(messages, 40)).rejects.toThrow('every LLM provider failed: vendor-proxy: HTTP 401');
    expect(primary.requests.length + secondary.requests.length).toBe(requests);
    await expect(llmFromEnv(proxyEnv({ BYOC_LLM_PROXY_CA: '' }), async () => '', { model: 'fast' })).rejects.toThrow(/BYOC_LLM_PROXY_CA: is required with vendor-proxy/);
    await expect(llmFromEnv(proxyEnv(), async () => '', {})).rejects.toThrow(/model: is required with vendor-proxy/);
    await expect(llmFromEnv(proxyEnv({ BYOC_LLM_PROXY_URL: 'http://llm.hub.test.example/c/acme' }), async () => '', { model: 'fast' })).rejects.toThrow(/is not an https:\/\/ URL/);
  });
});

describe('own-keys: the customer\'s providers with its keys, failing over with a breaker each', () => {
  test('primary then secondary, each in its own API shape with the key from its secret, token counts reported', async () => {
    const primaryArn = await backends.secret(`byoc/${CUSTOMER}/own/llm-primary`, JSON.stringify({ api: 'openai', apiKey: 'sk-primary', model: 'gpt-own', baseUrl: primary.baseUrl }));
    const secondaryArn = await backends.secret(`byoc/${CUSTOMER}/own/llm-secondary`, JSON.stringify({ api: 'anthropic', apiKey: 'sk-secondary', model: 'claude-own', baseUrl: secondary.baseUrl }));
    const env = { BYOC_LLM_MODE: 'own-keys', BYOC_SECRET_ARNS: JSON.stringify({ 'llm-primary': primaryArn, 'llm-secondary': secondaryArn, 'scm-token': 'arn:unused' }) };
    const llm = await llmFromEnv(env, secretsByName(env, readSecret), { timeoutMs: 5000 });
    primary.mode = 'ok';
    primary.usage = { input: 13, output: 4 };
    const before = primary.requests.length;
    expect(await llm.complete(messages, 40)).toEqual({ text: 'completion from primary', provider: 'llm-primary', inputTokens: 13, outputTokens: 4 });
    expect(primary.requests[before].body.model).toBe('gpt-own');
    primary.mode = 'fail';
    secondary.usage = { input: 8, output: 2 };
    for (let i = 0; i < 3; i++) {
      expect(await llm.complete(messages, 40)).toEqual({ text: 'completion from secondary', provider: 'llm-secondary', inputTokens: 8, outputTokens: 2 });
    }
    expect(secondary.requests[secondary.requests.length - 1]).toMatchObject({ headers: { 'x-api-key': 'sk-secondary' }, body: { model: 'claude-own', system: 'be brief' } });
    expect(llm.breakers.get('llm-primary')!.state).toBe('open');
    const primaryCalls = primary.requests.length;
    await llm.complete(messages, 40);
    expect(primary.requests.length).toBe(primaryCalls); // open: not called
    primary.mode = 'ok';
  });

  test('a secret that is not the expected JSON, a missing llm-primary, or a plaintext URL elsewhere stop it at start', async () => {
    const plain = await backends.secret(`byoc/${CUSTOMER}/own/plain`, 'sk-just-a-key');
    const env = { BYOC_LLM_MODE: 'own-keys', BYOC_SECRET_ARNS: JSON.stringify({ 'llm-primary': plain }) };
    await expect(llmFromEnv(env, secretsByName(env, readSecret))).rejects.toThrow(/LLM configuration llm-primary: with own-keys, the secret holds JSON/);
    const remote = await backends.secret(`byoc/${CUSTOMER}/own/remote`, JSON.stringify({ api: 'openai', apiKey: 'k', model: 'm', baseUrl: 'http://api.example.com' }));
    const env2 = { BYOC_LLM_MODE: 'own-keys', BYOC_SECRET_ARNS: JSON.stringify({ 'llm-primary': remote }) };
    await expect(llmFromEnv(env2, secretsByName(env2, readSecret))).rejects.toThrow('LLM configuration llm-primary: "http://api.example.com" is not an https:// URL');
    await expect(llmFromEnv({ BYOC_LLM_MODE: 'own-keys', BYOC_SECRET_ARNS: '{}' }, async () => '')).rejects.toThrow(/own-keys needs the agent to hold the llm-primary secret/);
    await expect(llmFromEnv({}, async () => '')).rejects.toThrow(/BYOC_LLM_MODE: undefined is not vendor-proxy or own-keys/);
  });
});
