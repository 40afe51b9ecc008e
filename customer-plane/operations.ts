import { Aws, Duration, Fn, TimeZone } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ApplicationScalingAction as appscalingAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { AgentTrigger } from '../agents/catalog';
import { PropError } from '../lib/errors';
import { COLLECTOR_HEALTH_PORT } from './collector-config';

/**
 * Operations of the customer plane: container health checks, the alarms and where they go, the dashboard.
 *
 * Health checks need no code in the workloads: the agents and the gateway (Node.js, the runtime image) must
 * hold an established TCP connection to the NATS leaf, read from the task's own `/proc/net/tcp`; the leaf must
 * listen on its client port; the collector (ADOT) answers on its `health_check` extension, bound to loopback,
 * through the image's own `/healthcheck` program.
 */

/** The CloudWatch namespace of the metrics the plane derives from its workloads' logs (metric filters). */
export const PLANE_METRICS_NAMESPACE = 'BYOC/Plane';


/** A TCP port as it appears in `/proc/net/tcp`: four upper-case hex digits. */
export function procNetPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/**
 * A Node.js program that exits 0 when this network namespace (the task's) holds an ESTABLISHED TCP connection
 * to `port` on any host (IPv4 or IPv6), 1 otherwise. `/proc/net/tcp` columns: sl, local, remote, state (01 =
 * ESTABLISHED).
 */
export function connectedToPortScript(port: number): string {
  const hex = procNetPort(port);
  return `const f=require('fs');process.exit(['tcp','tcp6'].some((n)=>{try{return f.readFileSync('/proc/net/'+n,'utf8').split('\\n').slice(1)`
    + `.some((l)=>{const c=l.trim().split(/\\s+/);return c.length>3&&c[2].endsWith(':${hex}')&&c[3]==='01'})}catch(e){return false}})?0:1)`;
}

/** A shell command (busybox or GNU) that succeeds when something in this network namespace LISTENs on `port` (state 0A). */
export function listeningOnPortCommand(port: number): string {
  return `cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -Eq '^ *[0-9]+: [0-9A-F]+:${procNetPort(port)} [0-9A-F]+:0000 0A '`;
}

/**
 * Agents and the gateway: holding a connection to the NATS leaf is what makes them work. The NATS client
 * reconnects on its own, so a task is replaced only after five minutes without one (10 checks 30 s apart),
 * longer than a redeploy of the leaf (a single writer: stopped before its new task starts).
 */
export function natsClientHealthCheck(natsPort: number): ecs.HealthCheck {
  return {
    command: ['CMD', 'node', '-e', connectedToPortScript(natsPort)],
    interval: Duration.seconds(30),
    timeout: Duration.seconds(5),
    retries: 10,
    startPeriod: Duration.seconds(120),
  };
}

/** The NATS leaf: its client port is open (after the JetStream store on EFS is read; hence the long start period). */
export function natsServerHealthCheck(natsPort: number): ecs.HealthCheck {
  return {
    command: ['CMD-SHELL', listeningOnPortCommand(natsPort)],
    interval: Duration.seconds(30),
    timeout: Duration.seconds(5),
    retries: 3,
    startPeriod: Duration.seconds(120),
  };
}

/** The collector: ADOT's `/healthcheck` asks the `health_check` extension on 127.0.0.1:13133. */
export function collectorHealthCheck(): ecs.HealthCheck {
  return {
    command: ['CMD', '/healthcheck', `--port=${COLLECTOR_HEALTH_PORT}`],
    interval: Duration.seconds(30),
    timeout: Duration.seconds(5),
    retries: 3,
    startPeriod: Duration.seconds(30),
  };
}

/**
 * Log lines the workloads write (pino JSON, the message in `msg`) that the plane counts as metrics. Each names
 * the source that writes it, and a test keeps them equal to the source's text.
 */
export const COUNTED_LOG_LINES = {
  /** agents/runtime/host.ts: an item given up after its retries, published on `dead.<agent>`. */
  deadLettered: 'work item dead-lettered',
  /** customer-plane/boundary-gateway/gateway.ts: one refused message (at most 10 logged per reason per second). */
  rejected: 'boundary message rejected',
  /** The same file: the refusals of one second past those 10, counted in `suppressed`. */
  rejectedSuppressed: 'rejections not logged individually (see the audit log)',
  /** The same file: a batch whose audit intents could not be written, not sent (`messages` of them). */
  auditIntentsFailed: 'audit intents could not be written: batch not sent',
  /** customer-plane/boundary-gateway/gateway.ts: a batch to the hub not acknowledged in time (`messages` of them, unconfirmed). */
  crossingsUnacknowledged: 'crossings not acknowledged by the hub',
  /** The same file: a batch the hub refused, or that nothing received (no responders: the link is down). */
  crossingsRefused: 'crossings refused by the hub',
  /** customer-plane/boundary-gateway/main.ts: a signed audit head not written or not anchored. */
  auditHeadFailed: 'audit head not signed or anchored; the next head covers these records',
} as const;

/** The metrics of `PLANE_METRICS_NAMESPACE`. */
export const PLANE_METRICS = {
  deadLettered: 'DeadLetteredItems',
  rejections: 'BoundaryRejections',
  auditFailures: 'AuditWriteFailures',
  crossingFailures: 'CrossingFailures',
} as const;

const msgIs = (msg: string) => logs.FilterPattern.stringValue('$.msg', '=', msg);

/** A metric filter on `logGroup` that adds `value` (1, or a numeric field such as `$.suppressed`) to a plane metric per matching line. */
export function countLogLine(scope: Construct, id: string, logGroup: logs.ILogGroup, line: string, metricName: string, value = '1'): logs.MetricFilter {
  return new logs.MetricFilter(scope, id, {
    logGroup,
    filterPattern: msgIs(line),
    metricNamespace: PLANE_METRICS_NAMESPACE,
    metricName,
    metricValue: value,
  });
}

export function planeMetric(metricName: string): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: PLANE_METRICS_NAMESPACE, metricName, statistic: 'Sum', period: Duration.minutes(5) });
}

/** Where the alarms go, besides the plane's own topic. */
export interface AlarmOptions {
  /** An address subscribed to the plane's alarm topic (SNS sends a confirmation mail first). */
  readonly email?: string;
  /** An existing SNS topic of the customer's that every alarm also notifies (its key policy must let CloudWatch use its key). */
  readonly topicArn?: string;
}

/**
 * The plane's alarm topic: encrypted with the plane's key (CloudWatch may use the key for this account's
 * alarms only), HTTPS-only publishing, subscribed to by the customer.
 */
export class AlarmTopic extends Construct {
  public readonly topic: sns.Topic;
  /** Every alarm's actions: the topic, and the customer's own topic if given. */
  public readonly actions: cloudwatch.IAlarmAction[];

  constructor(scope: Construct, id: string, props: { customerId: string; key: kms.Key; options: AlarmOptions }) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Topic', {
      topicName: `byoc-${props.customerId}-alarms`,
      displayName: `BYOC ${props.customerId} alarms`,
      masterKey: props.key,
      enforceSSL: true,
    });
    props.key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsOfThisAccountToTheAlarmTopic',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: ['*'],
      conditions: {
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*` },
      },
    }));
    if (props.options.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.options.email));
    this.actions = [new cwActions.SnsAction(this.topic)];
    if (props.options.topicArn) this.actions.push(new cwActions.SnsAction(sns.Topic.fromTopicArn(this, 'CustomerTopic', props.options.topicArn)));
  }

  /** Sends `alarm`'s state changes to the topics (into alarm, and back to OK). */
  public route(alarm: cloudwatch.Alarm): cloudwatch.Alarm {
    alarm.addAlarmAction(...this.actions);
    alarm.addOkAction(...this.actions);
    return alarm;
  }
}

/** Memory of an RDS instance class in GiB, for the families the plane offers (t, m, r); undefined if unknown. */
export function rdsMemoryGiB(instanceType: string): number | undefined {
  const m = /^(?:db\.)?([tmrx])\d+[a-z]*\.(micro|small|medium|large|(\d*)xlarge)$/.exec(instanceType);
  if (!m) return undefined;
  const [, family, size, times] = m;
  const units = size === 'micro' ? 0.25 : size === 'small' ? 0.5 : size === 'medium' ? 1 : size === 'large' ? 2 : 4 * Number(times || 1);
  const perUnit = family === 't' ? 4 : family === 'm' ? 4 : 8;
  if (family !== 't' && units < 2) return undefined;
  return units * perUnit;
}

/** PostgreSQL's max_connections on RDS: LEAST(DBInstanceClassMemory / 9531392, 5000). */
export function rdsMaxConnections(memoryGiB: number): number {
  return Math.min(Math.floor((memoryGiB * 1024 ** 3) / 9531392), 5000);
}

export interface PlaneAlarmsProps {
  readonly customerId: string;
  readonly alarmTopic: AlarmTopic;
  readonly database: rds.DatabaseInstance;
  readonly databaseInstanceType: string;
  readonly allocatedStorageGiB: number;
  readonly redis: elasticache.CfnReplicationGroup;
  readonly redisNodes: number;
  readonly clusterName: string;
}

/**
 * The plane's alarms on its shared parts (each service's own running-task alarm is made with the service):
 * the database, the cache, dead-lettered work, boundary rejections, audit-chain write failures.
 */
export class PlaneAlarms extends Construct {
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: PlaneAlarmsProps) {
    super(scope, id);
    const name = (what: string) => `byoc-${props.customerId}-${what}`;
    const add = (aid: string, p: cloudwatch.AlarmProps) => {
      const alarm = props.alarmTopic.route(new cloudwatch.Alarm(this, aid, { treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING, ...p }));
      this.alarms.push(alarm);
      return alarm;
    };
    const five = Duration.minutes(5);
    const db = props.database;

    add('DatabaseCpu', {
      alarmName: name('database-cpu'),
      alarmDescription: 'PostgreSQL CPU above 80 % for 15 minutes.',
      metric: db.metricCPUUtilization({ period: five, statistic: 'Average' }),
      threshold: 80, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    const tenPercent = Math.floor(props.allocatedStorageGiB * 1024 ** 3 * 0.1);
    add('DatabaseStorage', {
      alarmName: name('database-free-storage'),
      alarmDescription: `PostgreSQL free storage below 10 % of the ${props.allocatedStorageGiB} GiB allocated.`,
      metric: db.metricFreeStorageSpace({ period: five, statistic: 'Minimum' }),
      threshold: tenPercent, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    });
    const maxConnections = rdsMaxConnections(rdsMemoryGiB(props.databaseInstanceType) ?? 4);
    add('DatabaseConnections', {
      alarmName: name('database-connections'),
      alarmDescription: `PostgreSQL connections above 80 % of max_connections (${maxConnections} for ${props.databaseInstanceType}) for 10 minutes.`,
      metric: db.metricDatabaseConnections({ period: five, statistic: 'Maximum' }),
      threshold: Math.floor(maxConnections * 0.8), evaluationPeriods: 2, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });

    // ElastiCache reports per node: the replication group's nodes are <group>-001, -002, ...
    for (let i = 1; i <= props.redisNodes; i++) {
      const node = Fn.join('-', [props.redis.ref, String(i).padStart(3, '0')]);
      const metric = (metricName: string, statistic: string) => new cloudwatch.Metric({
        namespace: 'AWS/ElastiCache', metricName, dimensionsMap: { CacheClusterId: node }, statistic, period: five,
      });
      add(`RedisCpu${i}`, {
        alarmName: name(`redis-${i}-engine-cpu`),
        alarmDescription: `Redis node ${i}: engine CPU above 80 % for 15 minutes.`,
        metric: metric('EngineCPUUtilization', 'Average'),
        threshold: 80, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      });
      add(`RedisMemory${i}`, {
        alarmName: name(`redis-${i}-memory`),
        alarmDescription: `Redis node ${i}: memory used above 80 % of maxmemory for 15 minutes.`,
        metric: metric('DatabaseMemoryUsagePercentage', 'Average'),
        threshold: 80, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      });
      add(`RedisEvictions${i}`, {
        alarmName: name(`redis-${i}-evictions`),
        alarmDescription: `Redis node ${i}: keys evicted (the agents' state does not fit in memory).`,
        metric: metric('Evictions', 'Sum'),
        threshold: 0, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      });
    }

    add('DeadLettered', {
      alarmName: name('dead-lettered'),
      alarmDescription: 'Agents dead-lettered work items (given up after their retries; on dead.<agent>). Counted from the agents\' logs.',
      metric: planeMetric(PLANE_METRICS.deadLettered),
      threshold: 0, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    add('BoundaryRejections', {
      alarmName: name('boundary-rejections'),
      alarmDescription: 'The boundary gateway refused messages (not in the contract, too large, over a rate). Counted from the gateway\'s log.',
      metric: planeMetric(PLANE_METRICS.rejections),
      threshold: 0, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    // The usage-meter hands the gateway a metrics window every minute, so a working link acknowledges crossings every
    // period; failures in three periods in a row mean the link to the hub is down (or the hub refuses).
    add('LinkCrossingFailures', {
      alarmName: name('link-crossing-failures'),
      alarmDescription: 'Crossings to the vendor hub failed or went unacknowledged in each of three 5-minute periods: the link to the hub is down or the hub refuses. Counted from the gateway\'s log.',
      metric: planeMetric(PLANE_METRICS.crossingFailures),
      threshold: 0, evaluationPeriods: 3, datapointsToAlarm: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
    add('AuditWriteFailures', {
      alarmName: name('audit-write-failures'),
      alarmDescription: 'The boundary gateway could not write to its audit chain (batches not sent, or heads not signed). Counted from the gateway\'s log.',
      metric: planeMetric(PLANE_METRICS.auditFailures),
      threshold: 0, evaluationPeriods: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    });
  }
}

/** The namespace of the ECS metrics Container Insights publishes (the plane's cluster enables it): task counts by ClusterName and ServiceName. */
export const CONTAINER_INSIGHTS_NAMESPACE = 'ECS/ContainerInsights';

/** Running tasks below desired for 15 minutes (Container Insights): the alarm every service of the plane gets. */
export function runningTasksAlarm(scope: Construct, id: string, p: { alarmName: string; clusterName: string; serviceName: string; label: string; alarmTopic: AlarmTopic }): cloudwatch.Alarm {
  const metric = (metricName: string) => new cloudwatch.Metric({
    namespace: CONTAINER_INSIGHTS_NAMESPACE, metricName, dimensionsMap: { ClusterName: p.clusterName, ServiceName: p.serviceName },
    statistic: 'Average', period: Duration.minutes(5),
  });
  return p.alarmTopic.route(new cloudwatch.Alarm(scope, id, {
    alarmName: p.alarmName,
    alarmDescription: `${p.label}: fewer tasks running than desired for 15 minutes.`,
    metric: new cloudwatch.MathExpression({
      expression: 'desired - running',
      usingMetrics: { desired: metric('DesiredTaskCount'), running: metric('RunningTaskCount') },
      label: 'tasks missing',
      period: Duration.minutes(5),
    }),
    threshold: 0, evaluationPeriods: 3, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  }));
}

/** An agent on the dashboard: its backlog is graphed; `serviceName` when it scales on its backlog (its running tasks are graphed too). */
export interface DashboardAgent {
  readonly name: string;
  /** The ECS service name of an agent that scales on its backlog (`scaling`: the event agents). */
  readonly serviceName?: string;
}

/** An ECS service's running tasks (Container Insights, which the plane's cluster enables), the highest count in each minute. */
export function runningTasksMetric(clusterName: string, serviceName: string, label: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: CONTAINER_INSIGHTS_NAMESPACE, metricName: 'RunningTaskCount', dimensionsMap: { ClusterName: clusterName, ServiceName: serviceName },
    statistic: 'Maximum', period: Duration.minutes(1), label,
  });
}

/**
 * The dashboard's widgets on the agents' backlog: each agent's `AgentBacklog` (what the gateway's backlog reporter
 * writes), and when agents scale on it, their running tasks beside it.
 */
export function backlogWidgets(p: { clusterName: string; agents: readonly DashboardAgent[] }): cloudwatch.GraphWidget[] {
  const scaled = p.agents.filter((a) => a.serviceName);
  const backlog = new cloudwatch.GraphWidget({
    title: 'Agent backlog (items waiting or unacknowledged, per agent)',
    left: p.agents.map((a) => agentBacklogMetric(a.name).with({ label: a.name })),
    leftYAxis: { min: 0 },
    width: scaled.length ? 12 : 24,
  });
  if (!scaled.length) return [backlog];
  return [backlog, new cloudwatch.GraphWidget({
    title: 'Running tasks of the agents that scale on their backlog',
    left: scaled.map((a) => runningTasksMetric(p.clusterName, a.serviceName!, a.name)),
    leftYAxis: { min: 0 },
    width: 12,
  })];
}

/**
 * The plane's dashboard: services, data stores, the counted log lines, the agents' backlog. Searches by cluster name,
 * so it needs no cross-stack reference (the running tasks of backlog-scaled agents name their services).
 */
export function planeDashboard(scope: Construct, id: string, p: {
  customerId: string; clusterName: string; database: rds.DatabaseInstance; redisGroupId: string; alarms: cloudwatch.IAlarm[]; agents?: readonly DashboardAgent[];
}): cloudwatch.Dashboard {
  const search = (metricName: string, label: string) => new cloudwatch.MathExpression({
    expression: `SEARCH('{${CONTAINER_INSIGHTS_NAMESPACE},ClusterName,ServiceName} MetricName="${metricName}" ClusterName="${p.clusterName}"', 'Average', 300)`,
    label, usingMetrics: {}, period: Duration.minutes(5),
  });
  const redis = (metricName: string) => new cloudwatch.MathExpression({
    // The replication group's nodes are <group id>-001, -002, ...: a partial match on the group's ID.
    expression: `SEARCH('{AWS/ElastiCache,CacheClusterId} MetricName="${metricName}" "${p.redisGroupId}"', 'Average', 300)`,
    label: metricName, usingMetrics: {}, period: Duration.minutes(5),
  });
  const dashboard = new cloudwatch.Dashboard(scope, id, { dashboardName: `byoc-${p.customerId}`, defaultInterval: Duration.hours(6) });
  dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: p.alarms, width: 24, height: 4 }));
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({ title: 'Running tasks by service', left: [search('RunningTaskCount', 'running')], width: 12 }),
    new cloudwatch.GraphWidget({ title: 'CPU by service', left: [search('CpuUtilized', 'CPU units')], width: 12 }),
  );
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({ title: 'PostgreSQL CPU and connections', left: [p.database.metricCPUUtilization()], right: [p.database.metricDatabaseConnections()], width: 12 }),
    new cloudwatch.GraphWidget({ title: 'PostgreSQL free storage', left: [p.database.metricFreeStorageSpace()], width: 12 }),
  );
  dashboard.addWidgets(
    new cloudwatch.GraphWidget({ title: 'Redis engine CPU', left: [redis('EngineCPUUtilization')], width: 8 }),
    new cloudwatch.GraphWidget({ title: 'Redis memory used (%)', left: [redis('DatabaseMemoryUsagePercentage')], width: 8 }),
    new cloudwatch.GraphWidget({ title: 'Redis evictions', left: [redis('Evictions')], width: 8 }),
  );
  dashboard.addWidgets(new cloudwatch.GraphWidget({
    title: 'Dead-lettered items, boundary rejections, audit write failures, crossing failures',
    left: Object.values(PLANE_METRICS).map((m) => planeMetric(m)),
    width: 24,
  }));
  if (p.agents?.length) dashboard.addWidgets(...backlogWidgets({ clusterName: p.clusterName, agents: p.agents }));
  return dashboard;
}

// Business hours ---------------------------------------------------------------------------------------

/** Days of the week as EventBridge and Application Auto Scaling cron expressions name them. */
export const WEEKDAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** One weekly window in which the agents run: on `days`, from `start` to `end` (`HH:MM`, local time, same day). */
export interface BusinessWindow {
  readonly days: Weekday[];
  /** Opening time, `HH:MM` (24-hour). */
  readonly start: string;
  /** Closing time, `HH:MM`, after `start` on the same day (split a window that crosses midnight in two). */
  readonly end: string;
}

/**
 * Business hours: outside the windows the stateless agents (request and event agents) scale to zero; they scale back
 * to one task `warmUpMinutes` before a window opens. Scheduled agents, the leaf, the gateway, the collector and the
 * data stores keep running. Work that arrives outside the windows waits on its stream (events) or fails fast
 * (requests: no responder).
 */
export interface BusinessHours {
  /** IANA time zone of the windows and holidays, such as `Europe/Berlin` (daylight saving time followed). */
  readonly timeZone: string;
  /** The weekly windows; no two may overlap (or come closer than `warmUpMinutes`) on a day. */
  readonly windows: BusinessWindow[];
  /** Dates (`YYYY-MM-DD`, in `timeZone`) on which no window opens. */
  readonly holidays?: string[];
  /**
   * Minutes before a window opens that the agents are started (task start, image pull, connections).
   * @default 10
   */
  readonly warmUpMinutes?: number;
}

/** `BusinessHours` validated, times in minutes after midnight. */
export interface ResolvedBusinessHours {
  readonly timeZone: string;
  readonly windows: { readonly days: Weekday[]; readonly start: number; readonly end: number }[];
  readonly holidays: string[];
  readonly warmUpMinutes: number;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const hhmm = (minutes: number) => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

/** Is `zone` a time zone this Node.js (ICU) knows; the same IANA names Application Auto Scaling takes. */
function isTimeZone(zone: string): boolean {
  if (!/^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The weekday of a date (`YYYY-MM-DD`) as a calendar date, whatever the zone. */
function weekdayOf(y: number, m: number, d: number): Weekday {
  return WEEKDAYS[(new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7];
}

/**
 * Validates business hours; every problem is a `PropError` naming `prop` and the element
 * (`schedule.windows[1].start`), what is wrong, and the fix.
 */
export function resolveBusinessHours(prop: string, hours: BusinessHours): ResolvedBusinessHours {
  if (!hours || typeof hours !== 'object') throw new PropError(prop, 'is not an object', 'give { timeZone, windows: [{ days, start, end }], holidays }');
  if (typeof hours.timeZone !== 'string' || !isTimeZone(hours.timeZone)) {
    throw new PropError(`${prop}.timeZone`, `${JSON.stringify(hours.timeZone)} is not a time zone`, 'give an IANA time zone name such as Europe/Berlin, America/New_York or UTC');
  }
  const warmUpMinutes = hours.warmUpMinutes ?? 10;
  if (!Number.isInteger(warmUpMinutes) || warmUpMinutes < 0 || warmUpMinutes > 120) {
    throw new PropError(`${prop}.warmUpMinutes`, `${warmUpMinutes} is out of range`, 'use a whole number of minutes from 0 to 120');
  }
  if (!Array.isArray(hours.windows) || hours.windows.length === 0) {
    throw new PropError(`${prop}.windows`, 'has no window: the agents would never run', 'give at least one window, such as { days: ["MON", "TUE", "WED", "THU", "FRI"], start: "08:00", end: "18:00" }, or leave schedule out to run always');
  }
  const windows = hours.windows.map((w, i) => {
    const at = `${prop}.windows[${i}]`;
    if (!Array.isArray(w.days) || w.days.length === 0) throw new PropError(`${at}.days`, 'has no day', `give days from ${WEEKDAYS.join(', ')}`);
    for (const d of w.days) if (!WEEKDAYS.includes(d)) throw new PropError(`${at}.days`, `${JSON.stringify(d)} is not a day`, `use ${WEEKDAYS.join(', ')}`);
    if (new Set(w.days).size !== w.days.length) throw new PropError(`${at}.days`, `${JSON.stringify(w.days)} names a day twice`, 'name each day once');
    const time = (key: 'start' | 'end') => {
      const m = HHMM.exec(String(w[key]));
      if (!m) throw new PropError(`${at}.${key}`, `${JSON.stringify(w[key])} is not a time`, 'give HH:MM on a 24-hour clock, such as "08:00" or "18:30"');
      return Number(m[1]) * 60 + Number(m[2]);
    };
    const start = time('start');
    const end = time('end');
    if (end <= start) {
      throw new PropError(`${at}.end`, `${w.end} is not after start ${w.start}`, 'give an end later the same day; split a window that crosses midnight into two (until 23:59, and from 00:00 the next day)');
    }
    if (start - warmUpMinutes < 0) {
      throw new PropError(`${at}.start`, `${w.start} leaves no room for the ${warmUpMinutes}-minute warm-up on the same day`, `start at ${hhmm(warmUpMinutes)} or later, or lower warmUpMinutes`);
    }
    return { days: [...w.days].sort((a, b) => WEEKDAYS.indexOf(a) - WEEKDAYS.indexOf(b)), start, end };
  });
  // On each day, a window's warm-up must not begin before the previous window has closed: its closing would stop what the warm-up started.
  for (const day of WEEKDAYS) {
    const today = windows.map((w, i) => ({ ...w, i })).filter((w) => w.days.includes(day)).sort((a, b) => a.start - b.start);
    for (let k = 1; k < today.length; k++) {
      const [a, b] = [today[k - 1], today[k]];
      if (b.start - warmUpMinutes < a.end) {
        const [first, second] = [a.i, b.i].sort((x, y) => x - y);
        throw new PropError(`${prop}.windows`, `windows[${first}] and windows[${second}] overlap on ${day} (${hhmm(a.start)}-${hhmm(a.end)} and ${hhmm(b.start)}-${hhmm(b.end)}${warmUpMinutes ? `, with the ${warmUpMinutes}-minute warm-up` : ''})`,
          'merge them into one window, or leave a gap of at least warmUpMinutes between them');
      }
    }
  }
  const holidays = [...(hours.holidays ?? [])];
  holidays.forEach((h, i) => {
    const m = DATE.exec(String(h));
    const valid = m && (() => {
      const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
      const date = new Date(Date.UTC(y, mo - 1, d));
      return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
    })();
    if (!valid) throw new PropError(`${prop}.holidays[${i}]`, `${JSON.stringify(h)} is not a date`, 'give YYYY-MM-DD, such as "2026-12-25"');
  });
  if (new Set(holidays).size !== holidays.length) throw new PropError(`${prop}.holidays`, 'names a date twice', 'name each date once');
  return { timeZone: hours.timeZone, windows, holidays: holidays.sort(), warmUpMinutes };
}

/** The UTC instant of local midnight starting `date` (`YYYY-MM-DD`) in `timeZone` (daylight saving time followed). */
export function localMidnightUtc(date: string, timeZone: string): Date {
  const [y, m, d] = date.split('-').map(Number);
  const offsetAt = (utcMs: number) => {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(utcMs)).map((p) => [p.type, p.value]));
    const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
    return local - utcMs;
  };
  const guess = Date.UTC(y, m - 1, d);
  let utc = guess - offsetAt(guess);
  utc = guess - offsetAt(utc);
  return new Date(utc);
}

/** The next calendar date after `date` (`YYYY-MM-DD`). */
function nextDate(date: string): string {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/**
 * Scales `service` between 0 and 1 task on business hours with Application Auto Scaling scheduled actions (in the
 * schedule's time zone): to `open` (one task by default; 0 to 1 for an agent that scales on its backlog, the floor for a
 * request agent) `warmUpMinutes` before each window opens, to zero when it closes. A weekly
 * action cannot skip a date, so a window that falls on holidays opens through several actions, each bounded by
 * StartTime and EndTime (UTC instants of the holidays' local midnights) so that none of them covers a holiday.
 */
export function scaleOnBusinessHours(service: ecs.FargateService, hours: ResolvedBusinessHours, open: { min: number; max: number } = { min: 1, max: 1 }): ecs.ScalableTaskCount {
  const scaling = service.autoScaleTaskCount({ minCapacity: 0, maxCapacity: Math.max(1, open.max) });
  const timeZone = TimeZone.of(hours.timeZone);
  const cron = (minutes: number, days: Weekday[]) => appscaling.Schedule.cron({ minute: String(minutes % 60), hour: String(Math.floor(minutes / 60)), weekDay: days.join(',') });
  hours.windows.forEach((w, i) => {
    const opening = cron(w.start - hours.warmUpMinutes, w.days);
    const closed = hours.holidays.filter((h) => {
      const [y, m, d] = h.split('-').map(Number);
      return w.days.includes(weekdayOf(y, m, d));
    });
    // Open{i} until the first holiday, then one action from the end of each holiday to the start of the next.
    const bounds = [undefined, ...closed].map((after, k) => ({
      name: after === undefined ? `Open${i}` : `Open${i}After${after.replace(/-/g, '')}`,
      startTime: after === undefined ? undefined : localMidnightUtc(nextDate(after), hours.timeZone),
      endTime: k < closed.length ? localMidnightUtc(closed[k], hours.timeZone) : undefined,
    }));
    for (const b of bounds) {
      scaling.scaleOnSchedule(b.name, { schedule: opening, timeZone, minCapacity: open.min, maxCapacity: open.max, startTime: b.startTime, endTime: b.endTime });
    }
    scaling.scaleOnSchedule(`Close${i}`, { schedule: cron(w.end, w.days), timeZone, minCapacity: 0, maxCapacity: 0 });
  });
  return scaling;
}

// Scaling on backlog ------------------------------------------------------------------------------------

/** The metric the gateway writes (EMF) per agent: items pending or unacknowledged on its durables (boundary-gateway/backlog.ts). */
export const BACKLOG_METRIC = 'AgentBacklog';
/** Its one dimension: the agent's name. */
export const BACKLOG_DIMENSION = 'Agent';

/** Does an agent scale on its backlog: with `scaling`, event agents do (from zero, see `scaleOnBacklog`). */
export function scalesOnBacklog(trigger: AgentTrigger, scaling: ResolvedScaling | undefined): boolean {
  return scaling !== undefined && trigger === AgentTrigger.EVENT;
}

/** Agents' task counts (`scaling`): event agents from zero on their backlog, request agents at a floor. */
export interface ScalingOptions {
  /**
   * Minutes an event agent's backlog must stay empty before it scales back to zero.
   * @default 15
   */
  readonly idleMinutes?: number;
  /**
   * Tasks each request/response agent keeps (0 stops them: requests then get no responder).
   * @default 1
   */
  readonly requestFloor?: number;
}

export type ResolvedScaling = Required<ScalingOptions>;

/** Validates `scaling`; a problem is a `PropError` naming the setting and the fix. */
export function resolveScaling(prop: string, scaling: ScalingOptions): ResolvedScaling {
  if (!scaling || typeof scaling !== 'object' || Array.isArray(scaling)) throw new PropError(prop, 'is not an object', 'give { idleMinutes, requestFloor } (both optional), or leave scaling out (every agent runs one task)');
  const idleMinutes = scaling.idleMinutes ?? 15;
  if (!Number.isInteger(idleMinutes) || idleMinutes < 1 || idleMinutes > 1440) {
    throw new PropError(`${prop}.idleMinutes`, `${idleMinutes} is out of range`, 'use a whole number of minutes from 1 to 1440 (one day)');
  }
  const requestFloor = scaling.requestFloor ?? 1;
  if (!Number.isInteger(requestFloor) || requestFloor < 0 || requestFloor > 10) {
    throw new PropError(`${prop}.requestFloor`, `${requestFloor} is out of range`, 'use a whole number of tasks from 0 to 10');
  }
  return { idleMinutes, requestFloor };
}

/** One agent's backlog, the highest value the gateway reported in each minute. */
export function agentBacklogMetric(agent: string): cloudwatch.Metric {
  return new cloudwatch.Metric({ namespace: PLANE_METRICS_NAMESPACE, metricName: BACKLOG_METRIC, dimensionsMap: { [BACKLOG_DIMENSION]: agent }, statistic: 'Maximum', period: Duration.minutes(1) });
}

/**
 * Step scaling of an event agent on its backlog, within the bounds `scaling` has at the time (with business hours
 * the schedule sets them: 0 to 1 in a window, 0 outside, so the backlog cannot start a task outside a window):
 * to one task in the first minute the backlog is above zero, to zero once it has been zero for `idleMinutes`.
 * Missing data (the gateway not reporting) changes nothing.
 */
export function scaleOnBacklog(scope: Construct, scaling: ecs.ScalableTaskCount, agent: string, idleMinutes: number): void {
  const metric = agentBacklogMetric(agent);
  const busy = new appscaling.StepScalingAction(scope, 'BacklogScaleOut', {
    scalingTarget: scaling,
    adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
    metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
    cooldown: Duration.minutes(1),
  });
  busy.addAdjustment({ lowerBound: 0, adjustment: 1 });
  new cloudwatch.Alarm(scope, 'BacklogAlarm', {
    alarmDescription: `${agent}: work waiting (backlog above zero); scales the agent to one task.`,
    metric, threshold: 0, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  }).addAlarmAction(new appscalingAction(busy));
  const idle = new appscaling.StepScalingAction(scope, 'BacklogScaleIn', {
    scalingTarget: scaling,
    adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
    metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
    cooldown: Duration.minutes(1),
  });
  idle.addAdjustment({ upperBound: 0, adjustment: 0 });
  new cloudwatch.Alarm(scope, 'IdleAlarm', {
    alarmDescription: `${agent}: no work for ${idleMinutes} minutes (backlog zero); scales the agent to zero.`,
    metric, threshold: 1, comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    evaluationPeriods: idleMinutes, datapointsToAlarm: idleMinutes, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  }).addAlarmAction(new appscalingAction(idle));
}
