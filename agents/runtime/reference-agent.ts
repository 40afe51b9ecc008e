import { createHash } from 'crypto';
import { Kvm, KV } from '@nats-io/kv';
import { NatsConnection } from '@nats-io/nats-core';
import { Agent, AgentContext, WorkItem } from './agent';

import { processedBucketOf } from '../../lib/nats-config';

/** Key prefix of the reference agent's results in its own bucket. */
export const RESULT_PREFIX = 'result.';

/**
 * The reference agent: records one result per work item in its own bucket (`result.<hash>`), created once per item ID
 * (a second create fails, so the effect happens once however often the item arrives). A payload
 * `{"sleepMs": n}` makes it work that long; `{"poison": true}` makes it fail every time; `{"forward": subject}`
 * hands a message on to another agent.
 */
export class ReferenceAgent implements Agent {
  public readonly name = 'reference';
  private results?: KV;

  constructor(private readonly nc: NatsConnection, private readonly agent: string) {}

  public async handle(item: WorkItem, ctx: AgentContext): Promise<void> {
    const body = JSON.parse(new TextDecoder().decode(item.data)) as { sleepMs?: number; poison?: boolean; forward?: string };
    if (body.sleepMs) await new Promise((r) => setTimeout(r, body.sleepMs));
    if (body.poison) throw new Error('poison payload: the agent cannot process this item');
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
