/**
 * The two API shapes the proxy speaks, on both sides: the OpenAI chat-completions shape (`POST /v1/chat/completions`)
 * and the Anthropic messages shape (`POST /v1/messages`), the shapes of the agent runtime's providers
 * (`agents/runtime/llm.ts`). A request in either shape becomes one neutral, text-only form, which goes to any
 * upstream provider in its own shape, and the answer comes back in the shape the client asked in. So failover may
 * cross shapes (an OpenAI-shaped request served by an Anthropic-shaped provider) and the runtime only changes its
 * base URL. Content other than text (images, tools) and streaming are refused with a reason, never half-served.
 */

export type ApiShape = 'openai' | 'anthropic';

/** Path of each shape's completion endpoint. */
export const API_PATHS: Record<ApiShape, string> = { openai: '/v1/chat/completions', anthropic: '/v1/messages' };

export interface NeutralMessage {
  readonly role: 'user' | 'assistant';
  readonly text: string;
}

/** A completion request as the proxy handles it: what both shapes can say. */
export interface NeutralRequest {
  /** The model the client named (mapped per provider to the provider's model). */
  readonly model: string;
  readonly system: string;
  readonly messages: readonly NeutralMessage[];
  readonly maxTokens: number;
  readonly temperature?: number;
  readonly stop?: readonly string[];
}

export type StopReason = 'end' | 'max-tokens' | 'stop-sequence' | 'other';

export interface NeutralResponse {
  readonly text: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly stop: StopReason;
}

/** A request the proxy cannot serve as sent (400), with the reason it is counted under. */
export class RequestError extends Error {
  constructor(public readonly reason: 'bad-request' | 'unsupported', message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

const MAX_TOKENS_LIMIT = 1_000_000;

function textOf(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((block, i) => {
      if (block && typeof block === 'object' && (block as any).type === 'text' && typeof (block as any).text === 'string') return (block as any).text as string;
      throw new RequestError('unsupported', `${where}[${i}]: only text content is supported (type ${JSON.stringify((block as any)?.type)})`);
    }).join('');
  }
  throw new RequestError('bad-request', `${where}: content must be a string or a list of text blocks`);
}

function common(body: any, maxTokens: unknown): Pick<NeutralRequest, 'model' | 'maxTokens' | 'temperature'> {
  if (body.stream === true) throw new RequestError('unsupported', 'stream: streaming is not supported; send the request without stream');
  if (typeof body.model !== 'string' || body.model.length === 0 || body.model.length > 200) throw new RequestError('bad-request', 'model: required, a model name');
  if (!Number.isInteger(maxTokens) || (maxTokens as number) < 1 || (maxTokens as number) > MAX_TOKENS_LIMIT) {
    throw new RequestError('bad-request', `max_tokens: required, a whole number from 1 to ${MAX_TOKENS_LIMIT}`);
  }
  if (body.temperature !== undefined && (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 2)) {
    throw new RequestError('bad-request', 'temperature: a number from 0 to 2');
  }
  return { model: body.model, maxTokens: maxTokens as number, temperature: body.temperature };
}

function stops(v: unknown, name: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > 8 || list.some((s) => typeof s !== 'string')) throw new RequestError('bad-request', `${name}: a string or up to 8 strings`);
  return list as string[];
}

/** Parses a client's request body in `shape` into the neutral form. */
export function parseRequest(shape: ApiShape, body: unknown): NeutralRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RequestError('bad-request', 'the body must be a JSON object');
  const b = body as any;
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw new RequestError('bad-request', 'messages: required, a non-empty list');
  if (shape === 'openai') {
    const system: string[] = [];
    const messages: NeutralMessage[] = [];
    b.messages.forEach((m: any, i: number) => {
      const where = `messages[${i}].content`;
      if (m?.role === 'system' || m?.role === 'developer') system.push(textOf(m.content, where));
      else if (m?.role === 'user' || m?.role === 'assistant') messages.push({ role: m.role, text: textOf(m.content, where) });
      else throw new RequestError('unsupported', `messages[${i}].role: ${JSON.stringify(m?.role)} is not supported (system, user, assistant)`);
    });
    if (messages.length === 0) throw new RequestError('bad-request', 'messages: at least one user or assistant message');
    return { ...common(b, b.max_completion_tokens ?? b.max_tokens), system: system.join('\n\n'), messages, stop: stops(b.stop, 'stop') };
  }
  const messages = b.messages.map((m: any, i: number): NeutralMessage => {
    if (m?.role !== 'user' && m?.role !== 'assistant') throw new RequestError('bad-request', `messages[${i}].role: user or assistant`);
    return { role: m.role, text: textOf(m.content, `messages[${i}].content`) };
  });
  const system = b.system === undefined ? '' : textOf(b.system, 'system');
  return { ...common(b, b.max_tokens), system, messages, stop: stops(b.stop_sequences, 'stop_sequences') };
}

/** Rough input size (4 characters a token, as the runtime's budgeting) used to reserve tokens before the call. */
export function estimateInputTokens(req: NeutralRequest): number {
  const chars = req.system.length + req.messages.reduce((n, m) => n + m.text.length, 0);
  return Math.ceil(chars / 4) + 4 * (req.messages.length + 1);
}

/** The upstream request body in a provider's shape, for its model. */
export function upstreamBody(shape: ApiShape, req: NeutralRequest, model: string): Record<string, unknown> {
  if (shape === 'openai') {
    return {
      model,
      messages: [...(req.system ? [{ role: 'system', content: req.system }] : []), ...req.messages.map((m) => ({ role: m.role, content: m.text }))],
      max_tokens: req.maxTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.stop ? { stop: req.stop } : {}),
    };
  }
  return {
    model,
    max_tokens: req.maxTokens,
    ...(req.system ? { system: req.system } : {}),
    messages: req.messages.map((m) => ({ role: m.role, content: m.text })),
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.stop ? { stop_sequences: req.stop } : {}),
  };
}

/** An upstream answer that is not a completion of the expected shape: counted as the provider's failure. */
export class UpstreamShapeError extends Error {}

const count = (v: unknown) => (Number.isInteger(v) && (v as number) >= 0 ? (v as number) : 0);

/** Reads a provider's answer in its shape. */
export function parseUpstreamResponse(shape: ApiShape, body: any): NeutralResponse {
  if (!body || typeof body !== 'object') throw new UpstreamShapeError('the answer is not a JSON object');
  if (shape === 'openai') {
    const choice = body.choices?.[0];
    if (!choice || typeof choice.message?.content !== 'string') throw new UpstreamShapeError('no choices[0].message.content');
    const f = choice.finish_reason;
    return {
      text: choice.message.content,
      inputTokens: count(body.usage?.prompt_tokens),
      outputTokens: count(body.usage?.completion_tokens),
      stop: f === 'stop' ? 'end' : f === 'length' ? 'max-tokens' : 'other',
    };
  }
  if (!Array.isArray(body.content)) throw new UpstreamShapeError('no content list');
  const s = body.stop_reason;
  return {
    text: body.content.filter((c: any) => c?.type === 'text' && typeof c.text === 'string').map((c: any) => c.text).join(''),
    inputTokens: count(body.usage?.input_tokens),
    outputTokens: count(body.usage?.output_tokens),
    stop: s === 'end_turn' ? 'end' : s === 'max_tokens' ? 'max-tokens' : s === 'stop_sequence' ? 'stop-sequence' : 'other',
  };
}

/** The answer in the client's shape. */
export function clientResponse(shape: ApiShape, res: NeutralResponse, model: string, requestId: string, nowMs: number): Record<string, unknown> {
  if (shape === 'openai') {
    return {
      id: `chatcmpl-${requestId}`,
      object: 'chat.completion',
      created: Math.floor(nowMs / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: res.text }, finish_reason: res.stop === 'max-tokens' ? 'length' : 'stop' }],
      usage: { prompt_tokens: res.inputTokens, completion_tokens: res.outputTokens, total_tokens: res.inputTokens + res.outputTokens },
    };
  }
  return {
    id: `msg_${requestId}`,
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: res.text }],
    stop_reason: res.stop === 'max-tokens' ? 'max_tokens' : res.stop === 'stop-sequence' ? 'stop_sequence' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: res.inputTokens, output_tokens: res.outputTokens },
  };
}

/** How each shape authenticates upstream. */
export function upstreamHeaders(shape: ApiShape, apiKey: string): Record<string, string> {
  return shape === 'openai'
    ? { authorization: `Bearer ${apiKey}` }
    : { 'x-api-key': apiKey, 'anthropic-version': '2023-06-01' };
}
