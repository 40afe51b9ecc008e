import { AckPolicy, DiscardPolicy, jetstreamManager, JetStreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { NatsConnection } from '@nats-io/nats-core';
import { AGENT_DEAD_LETTER_STREAM, CONSUMER_DEFAULTS, durableOf, eventDurableOf, EVENTS_PREFIX, EVENTS_STREAM, eventSubscriptionsOf, processedBucketOf, WORK_STREAM } from '../../lib/nats-config';

const nanos = (ms: number) => ms * 1e6;
const DAY_MS = 86400000;

/** Bounds of the agents' streams: the leaf's disk is shared, no agent can fill it. */
export const AGENT_STREAM_LIMITS = {
  workMaxBytes: 1024 * 1024 * 1024, deadLetterMaxBytes: 256 * 1024 * 1024, bucketMaxBytes: 64 * 1024 * 1024,
  eventsMaxBytes: 1024 * 1024 * 1024, eventsMaxAgeDays: 7,
} as const;

/** An agent as the provisioner sees it: its name, and its declared subscriptions (for its event consumers). */
export interface ProvisionedAgent {
  readonly name: string;
  /** Its catalog subscriptions; each `events.*` one gets its own durable on the events stream. @default [] */
  readonly subscribe?: readonly string[];
}

/**
 * Creates what agents use in the leaf's `AGENTS` account, as the `provisioner` (the only identity there
 * allowed the JetStream API): the work queue, the events stream, the dead-letter stream, and per agent its
 * durable consumer on the work queue, one durable per declared event subject, and its processed-items
 * bucket. Agents may only use these by name, so none can create a stream or a consumer whose server-side
 * publishes (republish, sources, mirrors, deliver subjects) would reach a subject its own permissions do
 * not. Idempotent: run at every gateway start. An agent given by name only gets no event consumer.
 */
export async function provisionAgents(nc: NatsConnection, agents: readonly (string | ProvisionedAgent)[], consumer: { ackWaitMs?: number } = {}): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, {
    name: WORK_STREAM, subjects: ['work.>'], retention: RetentionPolicy.Workqueue, storage: StorageType.File,
    duplicate_window: nanos(3600000), max_bytes: AGENT_STREAM_LIMITS.workMaxBytes, discard: DiscardPolicy.New,
  });
  // Interest retention: an event is removed once every agent that declared its subject acknowledged it (an
  // event nobody declared is not kept); bounded in age and size, the oldest going first when it is full.
  // The duplicate window lets a runtime republish what a retried item publishes without doubling it.
  await ensureStream(jsm, {
    name: EVENTS_STREAM, subjects: [`${EVENTS_PREFIX}.>`], retention: RetentionPolicy.Interest, storage: StorageType.File,
    duplicate_window: nanos(3600000), max_age: nanos(AGENT_STREAM_LIMITS.eventsMaxAgeDays * DAY_MS),
    max_bytes: AGENT_STREAM_LIMITS.eventsMaxBytes, discard: DiscardPolicy.Old,
  });
  await ensureStream(jsm, {
    name: AGENT_DEAD_LETTER_STREAM, subjects: ['dead.>'], storage: StorageType.File, max_age: nanos(30 * DAY_MS),
    max_bytes: AGENT_STREAM_LIMITS.deadLetterMaxBytes, discard: DiscardPolicy.Old,
  });
  const kvm = new Kvm(nc);
  const durableConfig = (durable: string, subject: string) => ({
    durable_name: durable,
    filter_subject: subject,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(consumer.ackWaitMs ?? CONSUMER_DEFAULTS.ackWaitMs),
    // Unlimited: the runtime counts an item's attempts itself (in its processed-items bucket) and
    // dead-letters it after its limit. nats-server 2.9 keeps delivering to the pulls a killed task left until
    // they expire; a server-side limit would let those deliveries, which reach no one, use an item up and
    // drop it silently.
    max_deliver: -1,
  });
  for (const entry of agents) {
    const agent = typeof entry === 'string' ? { name: entry } : entry;
    await ensureConsumer(jsm, WORK_STREAM, durableConfig(durableOf(agent.name), `work.${agent.name}`));
    for (const subject of eventSubscriptionsOf(agent.subscribe ?? [])) {
      await ensureConsumer(jsm, EVENTS_STREAM, durableConfig(eventDurableOf(agent.name, subject), subject));
    }
    await kvm.create(processedBucketOf(agent.name), { history: 1, ttl: 7 * DAY_MS, max_bytes: AGENT_STREAM_LIMITS.bucketMaxBytes });
  }
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, config: Parameters<JetStreamManager['consumers']['add']>[1]): Promise<void> {
  let existing;
  try {
    existing = await jsm.consumers.info(stream, config.durable_name!);
  } catch {
    await jsm.consumers.add(stream, config);
    return;
  }
  // A consumer provisioned by an earlier version (a server-side delivery limit) is brought up to date.
  if (existing.config.max_deliver !== config.max_deliver) {
    await jsm.consumers.update(stream, config.durable_name!, { max_deliver: config.max_deliver });
  }
}

async function ensureStream(jsm: JetStreamManager, config: Parameters<JetStreamManager['streams']['add']>[0]): Promise<void> {
  try {
    await jsm.streams.info(config.name!);
  } catch {
    await jsm.streams.add(config);
  }
}
