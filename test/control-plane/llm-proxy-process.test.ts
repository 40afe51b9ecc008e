import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { projectRoot } from '../../lib/app';
import { LLM_ENV } from '../../control-plane/llm-proxy/config';
import { LlmStore } from '../../control-plane/llm-proxy/store';
import { issueLlmProxyToken, kmsJwsSigner, llmProxyAudience, llmProxyHost, signJws } from '../../control-plane/llm-proxy/token';
import { freePort, testCertificates } from '../servers/nats';
import { FakeProvider, LlmBackends, startFakeProvider, startLlmBackends } from './llm-proxy-harness';

/**
 * The built bundle (`npm run build` writes dist/control-plane/llm-proxy-server.js) run as a real process, as its
 * container runs it: configured by environment variables, its certificate and providers' keys from Secrets
 * Manager and its token key from KMS (moto), serving TLS for llm.<hub host> with the hub's certificate.
 */
const BUNDLE = path.join(projectRoot(), 'dist', 'control-plane', 'llm-proxy-server.js');
const HUB = 'hub.test.example';

let backends: LlmBackends;
let primary: FakeProvider;
let secondary: FakeProvider;
let tmp: string;
let ca: string;
let env: Record<string, string>;

beforeAll(async () => {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build first`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-llm-proxy-'));
  const tls = testCertificates(tmp, `DNS:${HUB},DNS:*.${HUB}`);
  ca = fs.readFileSync(tls.ca, 'utf8');
  backends = await startLlmBackends();
  primary = await startFakeProvider('primary', 'openai', 'sk-primary');
  secondary = await startFakeProvider('secondary', 'anthropic', 'sk-secondary');
  const tlsSecret = await backends.secret('byoc/hub/tls', JSON.stringify({ cert: fs.readFileSync(tls.cert, 'utf8'), key: fs.readFileSync(tls.key, 'utf8') }));
  env = {
    ...backends.moto.env,
    [LLM_ENV.host]: llmProxyHost(HUB),
    [LLM_ENV.listenHost]: '127.0.0.1',
    [LLM_ENV.tlsSecretArn]: tlsSecret,
    [LLM_ENV.tokenKey]: backends.tokenKeyArn,
    [LLM_ENV.table]: backends.table,
    [LLM_ENV.providers]: JSON.stringify([
      { name: 'primary', api: 'openai', baseUrl: primary.baseUrl, apiKeySecretArn: await backends.secret('llm/primary', 'sk-primary'), models: { fast: 'gpt-fast' } },
      { name: 'secondary', api: 'anthropic', baseUrl: secondary.baseUrl, apiKeySecretArn: await backends.secret('llm/secondary', 'sk-secondary'), models: { fast: 'claude-fast' } },
    ]),
  };
});

afterAll(async () => {
  await primary?.stop();
  await secondary?.stop();
  await backends?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Running { child: ChildProcess; port: number; adminPort: number; stdout: () => string; output: () => string; exited: Promise<number | null> }

async function startProxyProcess(extra: Record<string, string> = {}): Promise<Running> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [BUNDLE], {
    env: { PATH: process.env.PATH ?? '', ...env, [LLM_ENV.port]: String(port), [LLM_ENV.adminPort]: String(adminPort), ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stdout = '';
  child.stdout!.on('data', (d) => { output += d; stdout += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the proxy exited (${child.exitCode}): ${output.slice(-1000)}`);
    const ok = await fetch(`http://127.0.0.1:${adminPort}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 300) { child.kill('SIGKILL'); throw new Error(`the proxy did not become healthy: ${output.slice(-1000)}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, adminPort, stdout: () => stdout, output: () => output, exited };
}

/** POSTs over TLS to 127.0.0.1 as llm.<hub host> (SNI and name check), trusting only the test CA: what an agent does. */
function postTls(port: number, urlPath: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: urlPath, method: 'POST', servername: llmProxyHost(HUB), ca, rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => require('tls').checkServerIdentity(llmProxyHost(HUB), cert),
      headers: { 'content-type': 'application/json', ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || 'null'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('the bundle serves TLS as llm.<hub host>, fails over, refuses another type of token, counts, logs neither prompt nor completion, and stops on SIGTERM', async () => {
  const proxy = await startProxyProcess();
  const signer = kmsJwsSigner(backends.kms, backends.tokenKeyArn);
  const issued = await issueLlmProxyToken(signer, { customerId: 'acme', audience: llmProxyAudience(HUB) });
  await new LlmStore(backends.dynamodb, backends.table).registerCustomer('acme', issued.tokenId);
  const marks = { prompt: 'PROMPT-MARK-0d9e51', system: 'SYSTEM-MARK-a7c3f2', completion: 'COMPLETION-MARK-5b16e8' };
  primary.mode = 'fail';
  secondary.completion = `Here: ${marks.completion}`;

  const served = await postTls(proxy.port, '/c/acme/v1/chat/completions', { authorization: `Bearer ${issued.token}`, 'byoc-request-id': 'req-0123456789' },
    { model: 'fast', max_tokens: 30, messages: [{ role: 'system', content: marks.system }, { role: 'user', content: marks.prompt }] });
  expect(served.status).toBe(200);
  expect(served.body.choices[0].message.content).toBe(`Here: ${marks.completion}`);
  expect(served.headers['byoc-llm-provider']).toBe('secondary');
  expect(primary.requests[0].body.messages[1].content).toBe(marks.prompt);

  const telemetryToken = await signJws(signer, { typ: 'byoc-telemetry+jwt' }, {
    iss: 'byoc-vendor', aud: llmProxyAudience(HUB), sub: 'acme', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60, jti: issued.tokenId,
  });
  const refused = await postTls(proxy.port, '/c/acme/v1/messages', { 'x-api-key': telemetryToken }, { model: 'fast', max_tokens: 5, messages: [{ role: 'user', content: marks.prompt }] });
  expect({ status: refused.status, reason: refused.body.error.type }).toEqual({ status: 401, reason: 'wrong-type' });

  const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  expect(metrics).toContain('byoc_llm_requests_total{status="200",reason="ok"} 1');
  expect(metrics).toContain('byoc_llm_requests_total{status="401",reason="wrong-type"} 1');

  proxy.child.kill('SIGTERM');
  expect(await proxy.exited).toBe(0);
  // stdout is the log (one JSON line each); stderr holds only Node's own warnings, and is searched too.
  const output = proxy.output();
  const lines = proxy.stdout().trim().split('\n').map((l) => JSON.parse(l));
  expect(lines.find((l) => l.reqId === 'req-0123456789')).toEqual(expect.objectContaining({
    service: 'llm-proxy', customer: 'acme', model: 'fast', provider: 'secondary', status: 200, reason: 'ok', inputTokens: 11, outputTokens: 7,
    attempts: [{ provider: 'primary', outcome: 'http-503' }, { provider: 'secondary', outcome: 'ok' }],
  }));
  expect(lines.map((l) => l.msg)).toEqual(['ready', 'llm request', 'llm request', 'stopping', 'stopped']);
  const stored = await backends.tableDump();
  for (const mark of Object.values(marks)) {
    expect(output).not.toContain(mark);
    expect(stored).not.toContain(mark);
  }
});

test('a configuration problem stops the bundle with exit 2, naming the variable; a certificate that does not cover the name too', async () => {
  const missing = spawnSync(process.execPath, [BUNDLE], { env: { PATH: process.env.PATH ?? '', ...env, [LLM_ENV.table]: '' }, encoding: 'utf8' });
  expect(missing.status).toBe(2);
  expect(missing.stdout).toContain('configuration BYOC_LLM_TABLE: is required');
  const plaintext = spawnSync(process.execPath, [BUNDLE], { env: { PATH: process.env.PATH ?? '', ...env, OPENAI_API_KEY: 'sk-x' }, encoding: 'utf8' });
  expect(plaintext.status).toBe(2);
  expect(plaintext.stdout).toContain('configuration OPENAI_API_KEY: secrets are never read from plaintext environment variables');
  const otherName = spawnSync(process.execPath, [BUNDLE], { env: { PATH: process.env.PATH ?? '', ...env, [LLM_ENV.host]: 'llm.elsewhere.example' }, encoding: 'utf8', timeout: 60000 });
  expect(otherName.status).toBe(2);
  expect(otherName.stdout).toContain('the certificate does not cover llm.elsewhere.example');
});
