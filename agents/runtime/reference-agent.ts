import { createHash } from 'crypto';
import { Kvm, KV } from '@nats-io/kv';
import { NatsConnection } from '@nats-io/nats-core';
import { Agent, AgentContext, WorkItem } from './agent';
import type { LlmClient } from './llm';

import { processedBucketOf } from '../../lib/nats-config';

/** Key prefix of the reference agent's results in its own bucket. */
export const RESULT_PREFIX = 'result.';

/**
 * The reference agent: records one result per work item in its own bucket (`result.<hash>`), created once per item ID
 * (a second create fails, so the effect happens once however often the item arrives). A payload
 * `{"sleepMs": n}` makes it work that long; `{"poison": true}` makes it fail every time; `{"forward": subject}`
 * hands a message on to another agent; `{"ask": text}` sends the text to the LLM the plane is configured for and
 * records the tokens it used (the item's step record carries them to the usage-meter).
 */
export class ReferenceAgent implements Agent {
  public readonly name = 'reference';
  private results?: KV;

  constructor(private readonly nc: NatsConnection, private readonly agent: string, private readonly llm?: LlmClient) {}

  public async handle(item: WorkItem, ctx: AgentContext): Promise<void> {
    const body = JSON.parse(new TextDecoder().decode(item.data)) as { sleepMs?: number; poison?: boolean; forward?: string; ask?: string };
    if (body.sleepMs) await new Promise((r) => setTimeout(r, body.sleepMs));
    if (body.poison) throw new Error('poison payload: the agent cannot process this item');
    if (typeof body.ask === 'string') {
      if (!this.llm) throw new Error('this agent has no LLM path (the plane sets BYOC_LLM_MODE for the agents holding llm-* secrets)');
      const c = await this.llm.complete([{ role: 'user', content: body.ask }], 256);
      ctx.recordLlmTokens(c.inputTokens, c.outputTokens);
    }
    if (body.forward) await ctx.publish(body.forward, JSON.stringify({ from: item.id }));
    this.results ??= await new Kvm(this.nc).open(processedBucketOf(this.agent));
    const key = `${RESULT_PREFIX}${createHash('sha256').update(item.id).digest('hex')}`;
    try {
      await this.results.create(key, item.id);
    } catch (e) {
      if (!/wrong last sequence|exists/i.test((e as Error).message)) throw e;
      ctx.log.info({ id: item.id }, 'result already recorded');
    }
  }
}

/** An agent that does nothing: what the host itself costs per item (the benchmark's subject). */
export class NoopAgent implements Agent {
  public readonly name = 'noop';
  public async handle(): Promise<void> {}
}
