/** LLM calls: providers behind one interface, a circuit breaker per provider, failover, timeouts, context budgeting. */

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

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

async function postJson(url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

/** The OpenAI chat-completions API shape (also served by many compatible gateways). */
export class OpenAiProvider implements LlmProvider {
  constructor(public readonly name: string, private readonly baseUrl: string, private readonly apiKey: () => Promise<string>) {}

  public async complete(req: CompletionRequest, signal: AbortSignal) {
    const out = await postJson(`${this.baseUrl}/v1/chat/completions`, { authorization: `Bearer ${await this.apiKey()}` },
      { model: req.model, messages: req.messages, max_tokens: req.maxTokens }, signal);
    return { text: String(out.choices?.[0]?.message?.content ?? ''), inputTokens: out.usage?.prompt_tokens ?? 0, outputTokens: out.usage?.completion_tokens ?? 0 };
  }
}

/** The Anthropic messages API shape. */
export class AnthropicProvider implements LlmProvider {
  constructor(public readonly name: string, private readonly baseUrl: string, private readonly apiKey: () => Promise<string>) {}

  public async complete(req: CompletionRequest, signal: AbortSignal) {
    const system = req.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
    const out = await postJson(`${this.baseUrl}/v1/messages`, { 'x-api-key': await this.apiKey(), 'anthropic-version': '2023-06-01' },
      { model: req.model, max_tokens: req.maxTokens, ...(system ? { system } : {}), messages: req.messages.filter((m) => m.role !== 'system') }, signal);
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
