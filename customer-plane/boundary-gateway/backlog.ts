import { jetstreamManager, JetStreamManager } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { durableOf, eventDurableOf, EVENTS_STREAM, eventSubscriptionsOf, WORK_STREAM } from '../../lib/nats-config';
/** The plane's metric namespace (operations.ts PLANE_METRICS_NAMESPACE; not imported: the gateway bundle has no CDK; a test keeps them equal). */
export const BACKLOG_NAMESPACE = 'BYOC/Plane';

/** The metric of each agent's backlog in `BYOC/Plane`, dimension `Agent`: what event agents scale on. */
export const BACKLOG_METRIC = 'AgentBacklog';

/** An agent as the reporter sees it: its work durable and one durable per declared `events.*` subject. */
export interface BacklogAgent {
  readonly name: string;
  readonly subscribe?: readonly string[];
}

/**
 * One agent's backlog: items waiting (num_pending) and delivered but not yet acknowledged (num_ack_pending) over
 * its durables. A durable that does not exist (yet) counts zero.
 */
export async function agentBacklog(jsm: JetStreamManager, agent: BacklogAgent): Promise<number> {
  const durables: [string, string][] = [
    [WORK_STREAM, durableOf(agent.name)],
    ...eventSubscriptionsOf(agent.subscribe ?? []).map((s): [string, string] => [EVENTS_STREAM, eventDurableOf(agent.name, s)]),
  ];
  let total = 0;
  for (const [stream, durable] of durables) {
    try {
      const info = await jsm.consumers.info(stream, durable);
      total += info.num_pending + info.num_ack_pending;
    } catch (e) {
      if (!/consumer not found/i.test((e as Error).message)) throw e;
    }
  }
  return total;
}

/**
 * One CloudWatch Embedded Metric Format line: written to stdout, which ECS ships to the gateway's log group
 * (awslogs), CloudWatch Logs makes it the metric `BYOC/Plane AgentBacklog` with dimension `Agent`. No AWS
 * permission is needed beyond the log group the task writes already.
 */
export function backlogEmf(agent: string, backlog: number, at: number): string {
  return JSON.stringify({
    _aws: { Timestamp: at, CloudWatchMetrics: [{ Namespace: BACKLOG_NAMESPACE, Dimensions: [['Agent']], Metrics: [{ Name: BACKLOG_METRIC, Unit: 'Count' }] }] },
    Agent: agent,
    [BACKLOG_METRIC]: backlog,
    msg: 'agent backlog',
  });
}

/**
 * Reports every agent's backlog now and then every `intervalMs` (60 s): one EMF line per agent through `write`.
 * `nc` is the leaf's `backlog-reporter` identity (consumer info of the agents' durables, nothing else). A failed
 * read is reported through `onError` and skipped for that round (no line: the metric is missing, not zero).
 */
export async function startBacklogReporter(nc: NatsConnection, agents: readonly BacklogAgent[], opts: {
  intervalMs?: number; write?: (line: string) => void; onError?: (agent: string, e: Error) => void;
} = {}): Promise<{ first: Promise<void>; report: () => Promise<void>; stop: () => void }> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const report = async () => {
    const at = Date.now();
    for (const a of agents) {
      try {
        write(backlogEmf(a.name, await agentBacklog(jsm, a), at));
      } catch (e) {
        opts.onError?.(a.name, e as Error);
      }
    }
  };
  // The first report at once (not awaited: the gateway's start does not wait for it), then one per interval.
  const first = report();
  let running = first;
  const timer = setInterval(() => { running = running.then(report); }, opts.intervalMs ?? 60000);
  timer.unref();
  return { first, report, stop: () => clearInterval(timer) };
}
