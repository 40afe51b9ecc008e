import { AckPolicy, DiscardPolicy, jetstreamManager, JetStreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { NatsConnection } from '@nats-io/nats-core';
import { AGENT_DEAD_LETTER_STREAM, CONSUMER_DEFAULTS, durableOf, processedBucketOf, WORK_STREAM } from '../../lib/nats-config';

const nanos = (ms: number) => ms * 1e6;
const DAY_MS = 86400000;

/** Bounds of the agents' streams: the leaf's disk is shared, no agent can fill it. */
export const AGENT_STREAM_LIMITS = { workMaxBytes: 1024 * 1024 * 1024, deadLetterMaxBytes: 256 * 1024 * 1024, bucketMaxBytes: 64 * 1024 * 1024 } as const;

/**
 * Creates what agents use in the leaf's `AGENTS` account, as the `provisioner` (the only identity there
 * allowed the JetStream API): the work queue, the dead-letter stream, and per agent its durable consumer
 * and its processed-items bucket. Agents may only use these by name, so none can create a stream or a
 * consumer whose server-side publishes (republish, sources, mirrors, deliver subjects) would reach a
 * subject its own permissions do not. Idempotent: run at every gateway start.
 */
export async function provisionAgents(nc: NatsConnection, agents: readonly string[], consumer: { ackWaitMs?: number } = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, {
    name: WORK_STREAM, subjects: ['work.>'], retention: RetentionPolicy.Workqueue, storage: StorageType.File,
    duplicate_window: nanos(3600000), max_bytes: AGENT_STREAM_LIMITS.workMaxBytes, discard: DiscardPolicy.New,
  });
  await ensureStream(jsm, {
    name: AGENT_DEAD_LETTER_STREAM, subjects: ['dead.>'], storage: StorageType.File, max_age: nanos(30 * DAY_MS),
    max_bytes: AGENT_STREAM_LIMITS.deadLetterMaxBytes, discard: DiscardPolicy.Old,
  });
  const kvm = new Kvm(nc);
  for (const agent of agents) {
    const durable = durableOf(agent);
    try {
      await jsm.consumers.info(WORK_STREAM, durable);
    } catch {
      await jsm.consumers.add(WORK_STREAM, {
        durable_name: durable,
        filter_subject: `work.${agent}`,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(consumer.ackWaitMs ?? CONSUMER_DEFAULTS.ackWaitMs),
        // One more than the runtime's own limit: a delivery past it is dead-lettered even when every earlier
        // attempt crashed the process before it could decide.
        max_deliver: CONSUMER_DEFAULTS.maxDeliver + 1,
      });
    }
    await kvm.create(processedBucketOf(agent), { history: 1, ttl: 7 * DAY_MS, max_bytes: AGENT_STREAM_LIMITS.bucketMaxBytes });
  }
}

async function ensureStream(jsm: JetStreamManager, config: Parameters<JetStreamManager['streams']['add']>[0]): Promise<void> {
  try {
    await jsm.streams.info(config.name!);
  } catch {
    await jsm.streams.add(config);
  }
}
