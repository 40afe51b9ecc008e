import * as http from 'http';
import { AddressInfo } from 'net';
import { AnthropicProvider, ChatMessage, CircuitBreaker, ContextBudgetError, fitContext, LlmClient, OpenAiProvider } from '../../agents/runtime/llm';

/** A local HTTP server speaking one provider's API shape; `mode` decides how it answers. */
async function fakeProvider(shape: 'openai' | 'anthropic') {
  const state = { mode: 'ok' as 'ok' | 'fail' | 'hang', requests: [] as { path: string; headers: http.IncomingHttpHeaders; body: any }[] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      state.requests.push({ path: req.url!, headers: req.headers, body: JSON.parse(body) });
      if (state.mode === 'hang') return;
      if (state.mode === 'fail') { res.writeHead(503); res.end('{"error":"overloaded"}'); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(shape === 'openai'
        ? { choices: [{ message: { role: 'assistant', content: `openai says hi` } }], usage: { prompt_tokens: 11, completion_tokens: 3 } }
        : { content: [{ type: 'text', text: 'anthropic says hi' }], usage: { input_tokens: 12, output_tokens: 4 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { state, url, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const key = (k: string) => async () => k;
const messages: ChatMessage[] = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }];

test('each provider is called in its own API shape, with its key read at the call', async () => {
  const [openai, anthropic] = await Promise.all([fakeProvider('openai'), fakeProvider('anthropic')]);
  try {
    const a = await new OpenAiProvider('p', openai.url, key('sk-o')).complete({ model: 'm1', messages, maxTokens: 50 }, new AbortController().signal);
    expect(a).toEqual({ text: 'openai says hi', inputTokens: 11, outputTokens: 3 });
    expect(openai.state.requests[0]).toMatchObject({ path: '/v1/chat/completions', headers: { authorization: 'Bearer sk-o' }, body: { model: 'm1', messages, max_tokens: 50 } });
    const b = await new AnthropicProvider('s', anthropic.url, key('sk-a')).complete({ model: 'm2', messages, maxTokens: 50 }, new AbortController().signal);
    expect(b).toEqual({ text: 'anthropic says hi', inputTokens: 12, outputTokens: 4 });
    expect(anthropic.state.requests[0]).toMatchObject({ path: '/v1/messages', headers: { 'x-api-key': 'sk-a' }, body: { model: 'm2', system: 'be brief', messages: [{ role: 'user', content: 'hello' }], max_tokens: 50 } });
  } finally {
    await Promise.all([openai.close(), anthropic.close()]);
  }
});

test('the breaker opens after repeated failures, calls fail over to the secondary, and it closes again after a successful trial', async () => {
  const [primary, secondary] = await Promise.all([fakeProvider('openai'), fakeProvider('anthropic')]);
  let now = 0;
  try {
    const client = new LlmClient([
      { provider: new OpenAiProvider('primary', primary.url, key('a')), model: 'big', contextWindow: 8000 },
      { provider: new AnthropicProvider('secondary', secondary.url, key('b')), model: 'other', contextWindow: 8000 },
    ], 2000, () => new CircuitBreaker(3, 30000, () => now));
    expect((await client.complete(messages, 100)).provider).toBe('primary');

    primary.state.mode = 'fail';
    for (let i = 0; i < 3; i++) expect((await client.complete(messages, 100)).provider).toBe('secondary');
    expect(client.breakers.get('primary')!.state).toBe('open');
    const primaryCalls = primary.state.requests.length;
    expect((await client.complete(messages, 100)).provider).toBe('secondary');
    expect(primary.state.requests.length).toBe(primaryCalls); // open: the primary is not even tried

    primary.state.mode = 'ok';
    now += 30000; // reset time passes: one trial call goes to the primary
    expect(client.breakers.get('primary')!.state).toBe('half-open');
    expect((await client.complete(messages, 100)).provider).toBe('primary');
    expect(client.breakers.get('primary')!.state).toBe('closed');
  } finally {
    await Promise.all([primary.close(), secondary.close()]);
  }
});

test('a provider that does not answer times out and the call fails over; when all fail, every reason is given', async () => {
  const [primary, secondary] = await Promise.all([fakeProvider('openai'), fakeProvider('anthropic')]);
  try {
    primary.state.mode = 'hang';
    const client = new LlmClient([
      { provider: new OpenAiProvider('primary', primary.url, key('a')), model: 'big', contextWindow: 8000 },
      { provider: new AnthropicProvider('secondary', secondary.url, key('b')), model: 'other', contextWindow: 8000 },
    ], 200);
    expect((await client.complete(messages, 100)).provider).toBe('secondary');
    secondary.state.mode = 'fail';
    await expect(client.complete(messages, 100)).rejects.toThrow(/primary: timed out after 200 ms; secondary: HTTP 503/);
  } finally {
    await Promise.all([primary.close(), secondary.close()]);
  }
});

test('context budgeting drops whole old messages, keeps the system prompt and the latest message, never cuts one', () => {
  const long = (n: number) => 'x'.repeat(n);
  const convo: ChatMessage[] = [
    { role: 'system', content: long(400) },
    { role: 'user', content: long(2000) }, { role: 'assistant', content: long(2000) },
    { role: 'user', content: long(400) },
  ];
  const fitted = fitContext(convo, 600, 100);
  expect(fitted).toEqual([convo[0], convo[3]]);
  expect(fitContext(convo, 100000, 100)).toEqual(convo);
  expect(() => fitContext(convo, 150, 100)).toThrow(ContextBudgetError);
});
