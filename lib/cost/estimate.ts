import * as fs from 'fs';
import * as path from 'path';
import { settingError } from '../errors';
import { Price, PRICE_TABLE_DATE, pricesFor, RegionPrices } from './prices';

/**
 * `byoc cost`: the monthly cost of a synthesized plane, estimated from its templates (the root stack and its
 * nested stacks) and the pinned price table of lib/cost/prices.ts. What the templates do not say (GB through
 * the endpoints, GB of logs, what the data stores hold) comes from named assumptions, printed with the result.
 */

/** Hours in a month, as AWS's pricing pages count them (8,760 / 12). */
export const HOURS_PER_MONTH = 730;

/** Where a cost belongs in the breakdown. */
export type Component = 'agents' | 'leaf' | 'gateway' | 'collector' | 'hub' | 'services' | 'data stores' | 'network' | 'security' | 'observability';
export const COMPONENTS: readonly Component[] = ['agents', 'leaf', 'gateway', 'collector', 'hub', 'services', 'data stores', 'network', 'security', 'observability'];

/** How the plane runs: around the clock or business hours, agents on on-demand Fargate or on Fargate Spot. */
export interface Scenario {
  /** `business`: stateless agents run only in business hours (scaled to zero outside); everything else stays. */
  readonly schedule: 'always' | 'business';
  /** Agents on Fargate Spot (leaf, gateway, collector and the rest stay on-demand). */
  readonly spot: boolean;
}
export const ALWAYS_ON_DEMAND: Scenario = { schedule: 'always', spot: false };

/** Usage the templates do not state. Each has a default, printed with every estimate. */
export interface Assumptions {
  readonly businessHoursPerDay: number;
  readonly businessDaysPerWeek: number;
  readonly endpointGbMonth: number;
  readonly natGbMonth: number;
  readonly logGbPerTaskMonth: number;
  readonly flowLogGbMonth: number;
  readonly efsGb: number;
  readonly efsReadGbMonth: number;
  readonly efsWriteGbMonth: number;
  readonly nlbLcu: number;
  readonly dynamoDbWritesMillionPerTable: number;
  readonly dynamoDbReadsMillionPerTable: number;
  readonly dynamoDbGbPerTable: number;
  readonly containerInsightsMetricsPerService: number;
  readonly containerInsightsMetricsPerCluster: number;
  readonly busyHoursPerDay: number;
  readonly activationsPerDay: number;
}

/** Each assumption's default and meaning. */
export const ASSUMPTIONS: { readonly [K in keyof Assumptions]: { readonly default: number; readonly meaning: string } } = {
  businessHoursPerDay: { default: 10, meaning: 'hours a business day the agents run (--schedule business)' },
  businessDaysPerWeek: { default: 5, meaning: 'business days a week (--schedule business)' },
  endpointGbMonth: { default: 50, meaning: 'GB a month processed by all interface VPC endpoints together (image pulls, logs, secrets, KMS)' },
  natGbMonth: { default: 20, meaning: 'GB a month through all NAT gateways together (when the template has any)' },
  logGbPerTaskMonth: { default: 0.5, meaning: 'GB of logs a task ingests in a month running around the clock (less when it runs less)' },
  flowLogGbMonth: { default: 2, meaning: 'GB of VPC flow logs a flow log ingests a month' },
  efsGb: { default: 20, meaning: 'GB stored on each EFS file system (Standard class)' },
  efsReadGbMonth: { default: 20, meaning: 'GB read a month from each EFS file system (Elastic Throughput)' },
  efsWriteGbMonth: { default: 10, meaning: 'GB written a month to each EFS file system (Elastic Throughput)' },
  nlbLcu: { default: 1, meaning: 'average load balancer capacity units of each network load balancer' },
  dynamoDbWritesMillionPerTable: { default: 1, meaning: 'million write request units a month per on-demand DynamoDB table' },
  dynamoDbReadsMillionPerTable: { default: 1, meaning: 'million read request units a month per on-demand DynamoDB table' },
  dynamoDbGbPerTable: { default: 1, meaning: 'GB stored per DynamoDB table (also backed up when point-in-time recovery is on)' },
  containerInsightsMetricsPerService: { default: 20, meaning: 'metrics Container Insights publishes per ECS service (service and task-family dimensions; fewer hours when its tasks run fewer)' },
  containerInsightsMetricsPerCluster: { default: 10, meaning: 'metrics Container Insights publishes per ECS cluster' },
  busyHoursPerDay: { default: 2, meaning: 'hours of work (backlog above zero) a backlog-scaled agent has on each day it may run (--busy-hours-per-day)' },
  activationsPerDay: { default: 4, meaning: 'bursts that hours of work come in a day; each ends with the agent\'s idle minutes at zero backlog before it scales in' },
};

export function defaultAssumptions(): Assumptions {
  return Object.fromEntries(Object.entries(ASSUMPTIONS).map(([k, v]) => [k, v.default])) as unknown as Assumptions;
}

/** `KEY=VALUE` of `--assume`: a known assumption and a number at least 0; anything else is a one-line error. */
export function parseAssumption(text: string, previous: Partial<Assumptions> = {}): Partial<Assumptions> {
  const m = /^([A-Za-z0-9]+)=(.+)$/.exec(text);
  const keys = Object.keys(ASSUMPTIONS);
  if (!m || !keys.includes(m[1])) {
    throw settingError('--assume', `"${text}" is not KEY=VALUE with a known KEY`, `use one of ${keys.join(', ')}`);
  }
  const value = Number(m[2]);
  if (!Number.isFinite(value) || value < 0) throw settingError(`--assume ${m[1]}`, `"${m[2]}" is not a number of at least 0`, `give e.g. ${m[1]}=${ASSUMPTIONS[m[1] as keyof Assumptions].default}`);
  if (((m[1] === 'businessHoursPerDay' || m[1] === 'busyHoursPerDay') && value > 24) || (m[1] === 'businessDaysPerWeek' && value > 7)) {
    throw settingError(`--assume ${m[1]}`, `${value} is more than a ${m[1] === 'businessDaysPerWeek' ? 'week has days (7)' : 'day has hours (24)'}`, 'give a smaller number');
  }
  return { ...previous, [m[1]]: value };
}

/** The hours a month the agents run on a schedule. */
export function scheduledHours(schedule: Scenario['schedule'], a: Assumptions): number {
  return schedule === 'always' ? HOURS_PER_MONTH : a.businessHoursPerDay * a.businessDaysPerWeek * HOURS_PER_MONTH / (7 * 24);
}

/** The templates of a synthesized cloud assembly (root and nested stacks), and the region its manifest names. */
export interface Assembly {
  readonly dir: string;
  /** Template JSON by file name. */
  readonly templates: Record<string, Template>;
  /** The region of the assembly's stacks, when they are not environment-agnostic. */
  readonly region?: string;
}

export interface Template {
  readonly Resources?: Record<string, { readonly Type: string; readonly Properties?: Record<string, any>; readonly Metadata?: Record<string, any> }>;
}

/** Reads every `*.template.json` of an assembly folder (root stacks and their nested stacks). */
export function readAssembly(dir: string): Assembly {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw settingError('ASSEMBLY', `${dir} is not a folder`, 'give a synthesized cloud assembly, e.g. cdk.out/customer-plane (npm run synth writes it)');
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.template.json')).sort();
  if (files.length === 0) {
    throw settingError('ASSEMBLY', `${dir} has no *.template.json: it is not a synthesized cloud assembly`, 'give e.g. cdk.out/customer-plane (npm run synth writes it)');
  }
  const templates: Record<string, Template> = {};
  for (const f of files) {
    try {
      templates[f] = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    } catch (e) {
      throw settingError(`ASSEMBLY ${f}`, `${path.join(dir, f)} is not JSON (${(e as Error).message})`, 'synthesize the assembly again');
    }
  }
  let region: string | undefined;
  const manifest = path.join(dir, 'manifest.json');
  if (fs.existsSync(manifest)) {
    const artifacts = Object.values<any>(JSON.parse(fs.readFileSync(manifest, 'utf8')).artifacts ?? {});
    for (const a of artifacts) {
      const m = typeof a.environment === 'string' ? /^aws:\/\/[^/]+\/(.+)$/.exec(a.environment) : null;
      if (m && m[1] !== 'unknown-region') region = m[1];
    }
  }
  return { dir, templates, region };
}

/** One priced thing: a service's compute or logs, a database, an endpoint, a key. */
export interface CostItem {
  readonly component: Component;
  /** Agent name, service family, or what the item is (e.g. `RDS postgres db.t4g.medium Multi-AZ`). */
  readonly name: string;
  /** The agent it belongs to (agents' compute and logs). */
  readonly agent?: string;
  /** `compute`, `logs`, or the kind of resource. */
  readonly kind: string;
  /** `<template file>#<logical ID>` of the resources it prices. */
  readonly resources: string[];
  /** How the figure is reached, e.g. `1 task x 0.25 vCPU, 0.5 GB, ARM64`. */
  readonly detail: string;
  /** CPU architecture of a service's tasks (compute items). */
  readonly arch?: 'X86_64' | 'ARM64';
  /** How an agent's task count is read from its template (agents' items). */
  readonly capacity?: AgentCapacity;
  /** USD a month in a scenario. */
  cost(s: Scenario): number;
}

/** Resource types that cost nothing by themselves (or are priced through another resource). */
const FREE_TYPES = new Set([
  // Configuration without an hourly or monthly charge of its own (a metric filter's custom metrics are priced with the alarms).
  'AWS::Logs::MetricFilter', 'AWS::ECS::ClusterCapacityProviderAssociations',
  'AWS::CDK::Metadata', 'AWS::CloudFormation::Stack', 'AWS::IAM::Role', 'AWS::IAM::ManagedPolicy', 'AWS::IAM::Policy', 'AWS::IAM::InstanceProfile',
  'AWS::EC2::VPC', 'AWS::EC2::Subnet', 'AWS::EC2::RouteTable', 'AWS::EC2::SubnetRouteTableAssociation', 'AWS::EC2::Route', 'AWS::EC2::InternetGateway',
  'AWS::EC2::VPCGatewayAttachment', 'AWS::EC2::SecurityGroup', 'AWS::EC2::SecurityGroupIngress', 'AWS::EC2::SecurityGroupEgress',
  'AWS::EC2::VPCEndpointService', 'AWS::EC2::VPCEndpointServicePermissions', 'AWS::KMS::Alias', 'AWS::Logs::LogGroup',
  'AWS::ECS::TaskDefinition', 'AWS::ApplicationAutoScaling::ScalableTarget', 'AWS::ApplicationAutoScaling::ScalingPolicy',
  'AWS::SNS::TopicPolicy', 'AWS::SNS::Subscription', 'AWS::Scheduler::ScheduleGroup', 'AWS::RDS::DBParameterGroup', 'AWS::RDS::DBSubnetGroup', 'AWS::ElastiCache::SubnetGroup',
  'AWS::ElastiCache::User', 'AWS::ElastiCache::UserGroup', 'AWS::EFS::MountTarget', 'AWS::EFS::AccessPoint', 'AWS::ElasticLoadBalancingV2::Listener',
  'AWS::ElasticLoadBalancingV2::TargetGroup', 'AWS::Route53::RecordSet', 'AWS::S3::BucketPolicy',
]);

/** Resource types that cost by use only, which no template states: listed, not priced. */
const USAGE_ONLY: Record<string, string> = {
  'AWS::S3::Bucket': 'storage and requests',
  'AWS::ECR::Repository': 'image storage (GB-month)',
  'AWS::Backup::BackupVault': 'backup storage (GB-month)',
  'AWS::Backup::BackupPlan': 'backup storage (GB-month)',
  'AWS::Backup::BackupSelection': 'backup storage (GB-month)',
  'AWS::Lambda::Function': 'invocations (the custom resources run at deploy time: cents)',
  'AWS::ServiceDiscovery::Service': 'Cloud Map registered instances and DNS queries',
  'AWS::SNS::Topic': 'publishes and deliveries',
  'AWS::Scheduler::Schedule': 'invocations (the first 14 million a month are free)',
  'AWS::Events::Rule': 'custom events published (AWS service events are free)',
};

function containerInsightsOn(clusterProps: Record<string, any>): boolean {
  return Array.isArray(clusterProps.ClusterSettings) && clusterProps.ClusterSettings
    .some((x: any) => x?.Name === 'containerInsights' && (x.Value === 'enabled' || x.Value === 'enhanced'));
}

/** What the estimate could not price: resource types with why, and how many. */
export interface NotPriced {
  readonly type: string;
  readonly count: number;
  readonly reason: string;
}

interface Ctx {
  readonly prices: RegionPrices;
  readonly a: Assumptions;
  readonly file: string;
  readonly id: string;
  readonly resources: Record<string, { Type: string; Properties?: Record<string, any>; Metadata?: Record<string, any> }>;
  /** A cluster of the assembly has Container Insights on (services reach their cluster across nested stacks). */
  readonly containerInsights: boolean;
}

const monthly = (p: Price, units: number) => p.usd * units;
const fmt = (n: number) => Number(n.toFixed(3)).toString();

/** A numeric property (CloudFormation allows numbers as strings); a token or anything else is an error naming it. */
function num(c: Ctx, prop: string, value: unknown, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n)) {
    throw settingError(`${c.file}#${c.id}.${prop}`, `${JSON.stringify(value)} is not a number the estimate can read`, 'synthesize the plane with a literal value for it');
  }
  return n;
}

function where(c: Ctx): string {
  return `${c.file}#${c.id}`;
}

/**
 * How many tasks an agent runs and when, read from its service's template: its `DesiredCount`, the Application Auto
 * Scaling target on it (MinCapacity, MaxCapacity), the target's scheduled actions (weekly windows) and its step-scaling
 * policies with the alarms that drive them.
 *
 * - `count`: a fixed number of tasks whenever the agent may run: the `DesiredCount` (no scalable target; with
 *   `scaling`, a request agent's floor), or the count a scalable target holds without policies (with business hours
 *   in the template, the floor its window-opening actions set).
 * - `backlog`: step scaling on work waiting: `idle` tasks (0 for the plane's event agents) until the backlog is above
 *   zero, then `busy` tasks (the scale-out's exact capacity) until the backlog has been zero for `tailMinutes` (the
 *   scale-in alarm's evaluation time). Priced with the busy-time assumption: `busyHoursPerDay` of work in
 *   `activationsPerDay` bursts, each followed by the tail.
 */
export interface AgentCapacity {
  readonly rule: 'count' | 'backlog';
  /** Tasks with no work waiting (`count`: the count). */
  readonly idle: number;
  /** Tasks with work waiting (`count`: the count). */
  readonly busy: number;
  /** `backlog`: minutes at zero backlog before the scale-in. */
  readonly tailMinutes?: number;
  /** The weekly windows of the target's scheduled actions: days a week a window opens, hours each is open (warm-up included). */
  readonly windows?: { readonly daysPerWeek: number; readonly hoursPerDay: number };
  /** The scalable target's `<template>#<logical ID>`, if any. */
  readonly target?: string;
}

const WEEK_DAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'];

/** The logical IDs a CloudFormation value references (`Ref`, `Fn::GetAtt`), anywhere inside it. */
function referencedIds(v: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(v)) v.forEach((x) => referencedIds(x, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'Ref' && typeof x === 'string') out.add(x);
      else if (k === 'Fn::GetAtt' && Array.isArray(x) && typeof x[0] === 'string') out.add(x[0]);
      else referencedIds(x, out);
    }
  }
  return out;
}

/** Days (0 = Monday) of an Application Auto Scaling cron's day-of-week field: `MON,TUE`, `MON-FRI`, `*`. */
function cronDays(c: Ctx, field: string): number[] {
  if (field === '*' || field === '?') return [0, 1, 2, 3, 4, 5, 6];
  return field.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map((d) => WEEK_DAYS.indexOf(d.toUpperCase()));
    if (from < 0 || (part.includes('-') && (to === undefined || to < from))) {
      throw settingError(`${where(c)}.ScheduledActions`, `day-of-week "${field}" is not one the estimate reads`, 'use day names such as MON,TUE or MON-FRI');
    }
    return part.includes('-') ? Array.from({ length: to - from + 1 }, (_x, i) => from + i) : [from];
  });
}

/**
 * The weekly windows a target's scheduled actions make: an action whose MaxCapacity is above zero opens (its
 * Min/MaxCapacity hold in the window), one whose MaxCapacity is zero closes. Weekly crons only
 * (`cron(M H ? * DAYS *)`); actions bounded by StartTime/EndTime (the plane's holidays) count as every week.
 */
function scheduleWindows(c: Ctx, actions: unknown): { daysPerWeek: number; hoursPerDay: number; min: number; max: number } | undefined {
  if (actions === undefined) return undefined;
  if (!Array.isArray(actions)) throw settingError(`${where(c)}.ScheduledActions`, 'is not a list', 'synthesize with literal scheduled actions');
  const events = new Map<string, { at: number; open: boolean; min: number; max: number }>();
  for (const a of actions as any[]) {
    const m = /^cron\((\d{1,2}) (\d{1,2}) [?*] \* ([A-Za-z,*?-]+)(?: \*)?\)$/.exec(String(a?.Schedule));
    if (!m) {
      throw settingError(`${where(c)}.ScheduledActions`, `schedule ${JSON.stringify(a?.Schedule)} of ${a?.ScheduledActionName ?? 'an action'} is not a weekly cron the estimate reads`,
        'use cron(MINUTE HOUR ? * DAYS *) actions, or price this agent by hand');
    }
    const min = num(c, 'ScheduledActions.ScalableTargetAction.MinCapacity', a.ScalableTargetAction?.MinCapacity, 0);
    const max = num(c, 'ScheduledActions.ScalableTargetAction.MaxCapacity', a.ScalableTargetAction?.MaxCapacity);
    for (const d of cronDays(c, m[3])) {
      const at = d * 1440 + Number(m[2]) * 60 + Number(m[1]);
      events.set(`${at}:${max > 0}`, { at, open: max > 0, min, max });
    }
  }
  const sorted = [...events.values()].sort((x, y) => x.at - y.at || Number(x.open) - Number(y.open));
  if (sorted.length === 0) return undefined;
  if (!sorted.some((e) => !e.open)) return { daysPerWeek: 7, hoursPerDay: 24, min: Math.max(...sorted.map((e) => e.min)), max: Math.max(...sorted.map((e) => e.max)) };
  // A sweep around the week: the state at Monday 00:00 is the one the week's last action left.
  let open = sorted[sorted.length - 1].open;
  let since = 0;
  let minutes = 0;
  let openings = 0;
  for (const e of sorted) {
    if (open && !e.open) minutes += e.at - since;
    if (!open && e.open) { openings++; since = e.at; }
    open = e.open;
  }
  if (open) minutes += 7 * 1440 - since;
  const opens = sorted.filter((e) => e.open);
  return {
    daysPerWeek: openings, hoursPerDay: openings ? minutes / 60 / openings : 0,
    min: opens.length ? Math.max(...opens.map((e) => e.min)) : 0, max: opens.length ? Math.max(...opens.map((e) => e.max)) : 0,
  };
}

/** An agent service's capacity, from its scalable target (same template), scheduled actions and step-scaling policies. */
function agentCapacity(c: Ctx, desired: number): AgentCapacity {
  const entry = Object.entries(c.resources).find(([, r]) => r.Type === 'AWS::ApplicationAutoScaling::ScalableTarget'
    && r.Properties?.ServiceNamespace === 'ecs' && referencedIds(r.Properties?.ResourceId).has(c.id));
  if (!entry) return { rule: 'count', idle: desired, busy: desired };
  const [targetId, target] = entry;
  const tc: Ctx = { ...c, id: targetId };
  const p = target.Properties ?? {};
  const windows = scheduleWindows(tc, p.ScheduledActions);
  const min = windows ? windows.min : num(tc, 'MinCapacity', p.MinCapacity);
  const max = windows ? windows.max : num(tc, 'MaxCapacity', p.MaxCapacity);
  const where_ = `${c.file}#${targetId}`;
  const win = windows && { daysPerWeek: windows.daysPerWeek, hoursPerDay: windows.hoursPerDay };
  const policies = Object.entries(c.resources).filter(([, r]) => r.Type === 'AWS::ApplicationAutoScaling::ScalingPolicy'
    && (r.Properties?.ScalingTargetId?.Ref === targetId || referencedIds(r.Properties?.ScalingTargetId).has(targetId)));
  if (policies.length === 0) {
    const count = windows ? min : Math.min(max, Math.max(min, desired));
    return { rule: 'count', idle: count, busy: count, ...(win ? { windows: win } : {}), target: where_ };
  }
  let busy: number | undefined;
  let tailMinutes: number | undefined;
  for (const [policyId, policy] of policies) {
    const pc: Ctx = { ...c, id: policyId };
    const pp = policy.Properties ?? {};
    const config = pp.StepScalingPolicyConfiguration;
    if (pp.PolicyType !== 'StepScaling' || config?.AdjustmentType !== 'ExactCapacity' || !Array.isArray(config.StepAdjustments)) {
      throw settingError(`${where(pc)}.PolicyType`, `${pp.PolicyType ?? 'a policy'} with ${config?.AdjustmentType ?? 'no'} adjustment is not a scaling the estimate models (step scaling to an exact capacity only)`,
        'price this agent by hand, or scale it with ExactCapacity step policies');
    }
    const to = Math.max(...config.StepAdjustments.map((x: any) => num(pc, 'StepScalingPolicyConfiguration.StepAdjustments.ScalingAdjustment', x.ScalingAdjustment)));
    if (to > min) {
      busy = Math.max(busy ?? 0, Math.min(max, to));
    } else {
      // The scale-in: its alarm's evaluation time at zero backlog is the tail every burst of work ends with.
      const alarms = Object.values(c.resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm' && referencedIds(r.Properties?.AlarmActions).has(policyId));
      for (const alarm of alarms) {
        const ap = alarm.Properties ?? {};
        const ac = { ...c, id: Object.entries(c.resources).find(([, r]) => r === alarm)![0] };
        const minutes = num(ac, 'DatapointsToAlarm', ap.DatapointsToAlarm ?? ap.EvaluationPeriods) * num(ac, 'Period', ap.Period, 60) / 60;
        tailMinutes = Math.max(tailMinutes ?? 0, minutes);
      }
    }
  }
  if (busy === undefined) {
    const count = windows ? min : Math.min(max, Math.max(min, desired));
    return { rule: 'count', idle: count, busy: count, ...(win ? { windows: win } : {}), target: where_ };
  }
  // No scale-in alarm: once work arrives the agent keeps its busy tasks for the rest of the window.
  return { rule: 'backlog', idle: min, busy, tailMinutes: tailMinutes ?? Infinity, ...(win ? { windows: win } : {}), target: where_ };
}

/** The days a month an agent may run and the hours on each, in a scenario: around the clock, its template's windows, or the assumed business hours. */
function runDays(cap: AgentCapacity | undefined, s: Scenario, a: Assumptions): { days: number; hours: number } {
  const w = s.schedule === 'always' ? { daysPerWeek: 7, hoursPerDay: 24 }
    : cap?.windows ?? { daysPerWeek: a.businessDaysPerWeek, hoursPerDay: a.businessHoursPerDay };
  return { days: w.daysPerWeek * HOURS_PER_MONTH / (7 * 24), hours: w.hoursPerDay };
}

/** Hours a day a backlog-scaled agent has its busy tasks: the work, plus the idle tail after each burst, within the day's window. */
export function activeHoursPerDay(cap: AgentCapacity, windowHours: number, a: Assumptions): number {
  if (cap.rule !== 'backlog') return windowHours;
  const tail = cap.tailMinutes === undefined || !Number.isFinite(cap.tailMinutes) ? windowHours : a.activationsPerDay * cap.tailMinutes / 60;
  return Math.min(windowHours, a.busyHoursPerDay + tail);
}

/** Task-hours a month of an agent in a scenario. */
export function agentTaskHours(cap: AgentCapacity, s: Scenario, a: Assumptions): number {
  const { days, hours } = runDays(cap, s, a);
  return days * (cap.idle * hours + (cap.busy - cap.idle) * activeHoursPerDay(cap, hours, a));
}

/** Hours a month an agent has at least one task (Container Insights publishes its metrics then). */
function agentServiceHours(cap: AgentCapacity, s: Scenario, a: Assumptions): number {
  const { days, hours } = runDays(cap, s, a);
  return cap.idle > 0 ? days * hours : cap.busy > 0 ? days * activeHoursPerDay(cap, hours, a) : 0;
}

/** What the breakdown adds to an agent's detail: `backlog: 3 h a day (2 h work + 4 x 15 min idle)`, the template's windows. */
export function capacityDetail(cap: AgentCapacity, a: Assumptions): string {
  const win = cap.windows ? `windows ${fmt(cap.windows.hoursPerDay)} h x ${cap.windows.daysPerWeek} days` : '';
  if (cap.rule === 'count') return win;
  const tail = cap.tailMinutes !== undefined && Number.isFinite(cap.tailMinutes) ? `${a.activationsPerDay} x ${fmt(cap.tailMinutes)} min idle` : 'no scale-in';
  return `backlog: ${fmt(activeHoursPerDay(cap, 24, a))} h a day (${a.busyHoursPerDay} h work + ${tail})${win ? `, ${win}` : ''}`;
}

/** The ECS services of a template: compute (and logs) of each task, by component and agent. */
function ecsService(c: Ctx, props: Record<string, any>): CostItem[] {
  const ref = props.TaskDefinition?.Ref;
  const td = typeof ref === 'string' ? c.resources[ref] : undefined;
  if (!td || td.Type !== 'AWS::ECS::TaskDefinition') {
    throw settingError(`${where(c)}.TaskDefinition`, 'the service does not reference a task definition of its own template', 'keep a service and its task definition in one stack');
  }
  const tdCtx = { ...c, id: ref as string };
  const tp = td.Properties ?? {};
  const launchType = props.LaunchType ?? 'FARGATE';
  if (launchType !== 'FARGATE' || (tp.RequiresCompatibilities && !tp.RequiresCompatibilities.includes('FARGATE'))) {
    throw settingError(`${where(c)}.LaunchType`, `${launchType} tasks are not in the price table (Fargate only)`, 'run the service on Fargate, or price its instances by hand');
  }
  const vcpu = num(tdCtx, 'Cpu', tp.Cpu) / 1024;
  const gb = num(tdCtx, 'Memory', tp.Memory) / 1024;
  const ephemeral = Math.max(0, num(tdCtx, 'EphemeralStorage.SizeInGiB', tp.EphemeralStorage?.SizeInGiB, 20) - 20);
  const arch: 'X86_64' | 'ARM64' = tp.RuntimePlatform?.CpuArchitecture === 'ARM64' ? 'ARM64' : 'X86_64';
  const tasks = num(c, 'DesiredCount', props.DesiredCount, 1);
  const templateSpot = spotShare(c, props.CapacityProviderStrategy, tasks);
  const env = (tp.ContainerDefinitions ?? []).flatMap((d: any) => d.Environment ?? []);
  const agent = env.find((e: any) => e.Name === 'BYOC_AGENT' && typeof e.Value === 'string')?.Value as string | undefined;
  const family = typeof tp.Family === 'string' ? tp.Family : (c.resources[c.id]?.Metadata?.['aws:cdk:path'] ?? c.id);
  const component: Component = agent ? 'agents'
    : /nats-leaf|NatsLeaf/.test(family) ? 'leaf'
      : /gateway/i.test(family) ? 'gateway'
        : /collector/i.test(family) ? 'collector'
          : /nats-hub|NatsHub/.test(family) ? 'hub' : 'services';
  const name = agent ?? family;
  // Agents: their task count and when it runs, read from the template's scaling; everything else runs its DesiredCount around the clock.
  const capacity = component === 'agents' ? agentCapacity(c, tasks) : undefined;
  const taskHours = (s: Scenario) => capacity ? agentTaskHours(capacity, s, c.a) : tasks * HOURS_PER_MONTH;
  const serviceHours = (s: Scenario) => capacity ? agentServiceHours(capacity, s, c.a) : tasks ? HOURS_PER_MONTH : 0;
  const share = (s: Scenario) => component === 'agents' && s.spot ? 1 : templateSpot;
  const rate = (r: { vcpuHour: Price; gbHour: Price; ephemeralGbHour: Price }) => vcpu * r.vcpuHour.usd + gb * r.gbHour.usd + ephemeral * r.ephemeralGbHour.usd;
  const onDemand = rate(c.prices.fargate.onDemand[arch]);
  // Fargate Spot runs X86_64 tasks only: an ARM64 task on Spot is priced as the X86_64 task it must become.
  const spot = rate(c.prices.fargate.spotX86_64);
  const resources = [where(c), `${c.file}#${ref}`];
  return [
    {
      component, name, agent, kind: 'compute', resources: capacity?.target ? [...resources, capacity.target] : resources, arch, ...(capacity ? { capacity } : {}),
      detail: `${capacity?.rule === 'backlog' ? `${capacity.idle}-${capacity.busy}` : capacity ? capacity.idle : tasks} task${(capacity?.busy ?? tasks) === 1 ? '' : 's'} x ${fmt(vcpu)} vCPU, ${fmt(gb)} GB${ephemeral ? `, +${ephemeral} GB ephemeral` : ''}, ${arch}`
        + `${templateSpot ? `, ${fmt(templateSpot * 100)}% Spot in the template` : ''}${capacity && capacityDetail(capacity, c.a) ? `, ${capacityDetail(capacity, c.a)}` : ''}`,
      cost: (s) => taskHours(s) * ((1 - share(s)) * onDemand + share(s) * spot),
    },
    {
      component, name, agent, kind: 'logs', resources,
      detail: `${c.a.logGbPerTaskMonth} GB a task-month of logs`,
      cost: (s) => (taskHours(s) / HOURS_PER_MONTH) * monthly(c.prices.logsIngestGb, c.a.logGbPerTaskMonth),
    },
    ...(c.containerInsights ? [{
      component, name, agent, kind: 'metrics', resources,
      detail: `${c.a.containerInsightsMetricsPerService} Container Insights metrics`,
      // Published while the service has tasks: an agent scaled to zero publishes none.
      cost: (s: Scenario) => (serviceHours(s) / HOURS_PER_MONTH) * monthly(c.prices.metricMonth, c.a.containerInsightsMetricsPerService),
    }] : []),
  ];
}

/** The share of a service's tasks a capacity provider strategy puts on FARGATE_SPOT (0 without one). */
function spotShare(c: Ctx, strategy: unknown, tasks: number): number {
  if (strategy === undefined) return 0;
  if (!Array.isArray(strategy) || strategy.length === 0) throw settingError(`${where(c)}.CapacityProviderStrategy`, 'is not a list of providers', 'synthesize with a literal strategy');
  const providers = strategy.map((p: any) => {
    if (p.CapacityProvider !== 'FARGATE' && p.CapacityProvider !== 'FARGATE_SPOT') {
      throw settingError(`${where(c)}.CapacityProviderStrategy`, `capacity provider ${JSON.stringify(p.CapacityProvider)} is not in the price table`, 'use FARGATE and FARGATE_SPOT');
    }
    return { spot: p.CapacityProvider === 'FARGATE_SPOT', base: num(c, 'CapacityProviderStrategy.Base', p.Base, 0), weight: num(c, 'CapacityProviderStrategy.Weight', p.Weight, 0) };
  });
  if (tasks === 0) return 0;
  const base = Math.min(tasks, providers.reduce((n, p) => n + p.base, 0));
  const spotBase = Math.min(base, providers.filter((p) => p.spot).reduce((n, p) => n + p.base, 0));
  const weights = providers.reduce((n, p) => n + p.weight, 0);
  const spotWeight = providers.filter((p) => p.spot).reduce((n, p) => n + p.weight, 0);
  return (spotBase + (weights ? (tasks - base) * spotWeight / weights : 0)) / tasks;
}

function rdsInstance(c: Ctx, p: Record<string, any>): CostItem[] {
  const engine = p.Engine;
  if (engine !== 'postgres') {
    throw settingError(`${where(c)}.Engine`, `RDS engine ${JSON.stringify(engine)} is not in the price table (PostgreSQL only)`, 'add its prices to lib/cost/prices.ts');
  }
  const cls = p.DBInstanceClass;
  const classPrices = typeof cls === 'string' ? c.prices.rdsPostgres[cls] : undefined;
  if (!classPrices) {
    throw settingError(`${where(c)}.DBInstanceClass`, `DB instance class ${JSON.stringify(cls)} is not in the price table of ${c.prices.region} (${PRICE_TABLE_DATE})`,
      `use one of ${Object.keys(c.prices.rdsPostgres).join(', ')}, or add its price to lib/cost/prices.ts with its source and date`);
  }
  const storageType = p.StorageType ?? 'gp2';
  if (storageType !== 'gp2' && storageType !== 'gp3') {
    throw settingError(`${where(c)}.StorageType`, `storage type ${JSON.stringify(storageType)} is not in the price table (gp2 and gp3 only)`, 'add its prices to lib/cost/prices.ts');
  }
  const multiAz = p.MultiAZ === true || p.MultiAZ === 'true';
  const gbs = num(c, 'AllocatedStorage', p.AllocatedStorage);
  const az = multiAz ? 'multiAz' : 'singleAz';
  return [{
    component: 'data stores', name: `RDS ${engine} ${cls}${multiAz ? ' Multi-AZ' : ''}`, kind: 'rds', resources: [where(c)],
    detail: `${cls}${multiAz ? ' Multi-AZ' : ''}, ${gbs} GB ${storageType}`,
    cost: () => monthly(classPrices[az], HOURS_PER_MONTH) + monthly(c.prices.rdsStorageGbMonth[az], gbs),
  }];
}

function cacheNodes(c: Ctx, p: Record<string, any>, nodes: number): CostItem[] {
  const engine = p.Engine ?? 'redis';
  if (engine !== 'redis') {
    throw settingError(`${where(c)}.Engine`, `ElastiCache engine ${JSON.stringify(engine)} is not in the price table (Redis OSS only)`, 'add its prices to lib/cost/prices.ts');
  }
  const type = p.CacheNodeType;
  const nodePrice = typeof type === 'string' ? c.prices.elasticacheRedis[type] : undefined;
  if (!nodePrice) {
    throw settingError(`${where(c)}.CacheNodeType`, `cache node type ${JSON.stringify(type)} is not in the price table of ${c.prices.region} (${PRICE_TABLE_DATE})`,
      `use one of ${Object.keys(c.prices.elasticacheRedis).join(', ')}, or add its price to lib/cost/prices.ts with its source and date`);
  }
  return [{
    component: 'data stores', name: `ElastiCache ${engine} ${nodes} x ${type}`, kind: 'elasticache', resources: [where(c)],
    detail: `${nodes} node${nodes === 1 ? '' : 's'} x ${type}`,
    cost: () => nodes * monthly(nodePrice, HOURS_PER_MONTH),
  }];
}

/** The items one resource is priced as: `undefined` when its type is free, `null` when it is not priced. */
function priceResource(c: Ctx, type: string, p: Record<string, any>): CostItem[] | undefined | null {
  const { prices, a } = c;
  const one = (component: Component, name: string, kind: string, detail: string, usd: number): CostItem[] =>
    [{ component, name, kind, resources: [where(c)], detail, cost: () => usd }];
  switch (type) {
    case 'AWS::ECS::Service':
      return ecsService(c, p);
    case 'AWS::RDS::DBInstance':
      return rdsInstance(c, p);
    case 'AWS::ElastiCache::ReplicationGroup':
      return cacheNodes(c, p, p.NumCacheClusters !== undefined ? num(c, 'NumCacheClusters', p.NumCacheClusters)
        : num(c, 'NumNodeGroups', p.NumNodeGroups, 1) * (1 + num(c, 'ReplicasPerNodeGroup', p.ReplicasPerNodeGroup, 0)));
    case 'AWS::ElastiCache::CacheCluster':
      return cacheNodes(c, p, num(c, 'NumCacheNodes', p.NumCacheNodes, 1));
    case 'AWS::EFS::FileSystem':
      return one('data stores', 'EFS file systems', 'efs', `each ${a.efsGb} GB Standard, ${a.efsReadGbMonth} GB read and ${a.efsWriteGbMonth} GB written a month`,
        monthly(prices.efsStandardGbMonth, a.efsGb) + monthly(prices.efsElasticReadGb, a.efsReadGbMonth) + monthly(prices.efsElasticWriteGb, a.efsWriteGbMonth));
    case 'AWS::DynamoDB::Table': {
      if ((p.BillingMode ?? 'PROVISIONED') !== 'PAY_PER_REQUEST') {
        throw settingError(`${where(c)}.BillingMode`, 'provisioned DynamoDB capacity is not in the price table (on-demand only)', 'use BillingMode PAY_PER_REQUEST or add provisioned prices to lib/cost/prices.ts');
      }
      const pitr = p.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled === true;
      return one('data stores', 'DynamoDB tables (on-demand)', 'dynamodb',
        `each ${a.dynamoDbWritesMillionPerTable} M writes, ${a.dynamoDbReadsMillionPerTable} M reads, ${a.dynamoDbGbPerTable} GB${pitr ? ' + PITR' : ''}`,
        monthly(prices.dynamoDbWriteMillion, a.dynamoDbWritesMillionPerTable) + monthly(prices.dynamoDbReadMillion, a.dynamoDbReadsMillionPerTable)
        + monthly(prices.dynamoDbGbMonth, a.dynamoDbGbPerTable) + (pitr ? monthly(prices.dynamoDbPitrGbMonth, a.dynamoDbGbPerTable) : 0));
    }
    case 'AWS::EC2::VPCEndpoint': {
      if ((p.VpcEndpointType ?? 'Gateway') !== 'Interface') return undefined; // gateway endpoints (S3, DynamoDB) are free
      if (!Array.isArray(p.SubnetIds)) throw settingError(`${where(c)}.SubnetIds`, 'is not a list: the number of AZs is unknown', 'synthesize with the subnets listed');
      const azs = p.SubnetIds.length;
      return one('network', 'interface VPC endpoints', 'vpc-endpoint', `${azs} AZ${azs === 1 ? '' : 's'} each`, azs * monthly(prices.interfaceEndpointAzHour, HOURS_PER_MONTH));
    }
    case 'AWS::EC2::NatGateway':
      return one('network', 'NAT gateways', 'nat-gateway', 'per gateway', monthly(prices.natGatewayHour, HOURS_PER_MONTH));
    case 'AWS::EC2::EIP':
      return one('network', 'public IPv4 addresses', 'public-ipv4', 'per address', monthly(prices.publicIpv4Hour, HOURS_PER_MONTH));
    case 'AWS::ElasticLoadBalancingV2::LoadBalancer':
      if (p.Type !== 'network') return null;
      return one('network', 'network load balancers', 'nlb', `per NLB, ${a.nlbLcu} LCU`, monthly(prices.nlbHour, HOURS_PER_MONTH) + monthly(prices.nlbLcuHour, a.nlbLcu * HOURS_PER_MONTH));
    case 'AWS::EC2::FlowLog':
      return one('network', 'VPC flow logs', 'flow-log', `${a.flowLogGbMonth} GB a month each`, monthly(prices.logsIngestGb, a.flowLogGbMonth));
    case 'AWS::Route53::HostedZone':
    case 'AWS::ServiceDiscovery::PrivateDnsNamespace':
      return one('network', 'private hosted zones', 'hosted-zone', 'per zone', monthly(prices.hostedZoneMonth, 1));
    case 'AWS::ECS::Cluster':
      if (!containerInsightsOn(p)) return undefined;
      return one('observability', 'Container Insights (cluster metrics)', 'metrics', `${a.containerInsightsMetricsPerCluster} metrics per cluster`, monthly(prices.metricMonth, a.containerInsightsMetricsPerCluster));
    case 'AWS::CloudWatch::Alarm':
      return one('observability', 'CloudWatch alarms', 'alarm', 'per alarm', monthly(prices.alarmMonth, 1));
    case 'AWS::CloudWatch::Dashboard':
      return one('observability', 'CloudWatch dashboards', 'dashboard', 'per dashboard', monthly(prices.dashboardMonth, 1));
    case 'AWS::KMS::Key':
      return one('security', 'KMS keys', 'kms-key', 'per key', monthly(prices.kmsKeyMonth, 1));
    case 'AWS::SecretsManager::Secret':
      return one('security', 'Secrets Manager secrets', 'secret', 'per secret', monthly(prices.secretMonth, 1));
    default:
      if (FREE_TYPES.has(type) || type.startsWith('Custom::')) return undefined;
      return null;
  }
}

/** Every priced item of an assembly's templates, and what was left unpriced. */
export function costItems(assembly: Assembly, prices: RegionPrices, a: Assumptions): { items: CostItem[]; notPriced: NotPriced[]; ecsServices: string[] } {
  const items: CostItem[] = [];
  const unpriced = new Map<string, number>();
  const ecsServices: string[] = [];
  const containerInsights = Object.values(assembly.templates).some((t) => Object.values(t.Resources ?? {})
    .some((r) => r.Type === 'AWS::ECS::Cluster' && containerInsightsOn(r.Properties ?? {})));
  for (const [file, t] of Object.entries(assembly.templates)) {
    const resources = t.Resources ?? {};
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type === 'AWS::ECS::Service') ecsServices.push(`${file}#${id}`);
      const priced = priceResource({ prices, a, file, id, resources, containerInsights }, r.Type, r.Properties ?? {});
      if (priced === null) unpriced.set(r.Type, (unpriced.get(r.Type) ?? 0) + 1);
      else if (priced) items.push(...priced);
    }
  }
  // Data through the interface endpoints and NAT gateways is usage: one item each, when the plane has any.
  if (items.some((i) => i.kind === 'vpc-endpoint')) {
    items.push({ component: 'network', name: 'interface VPC endpoints', kind: 'vpc-endpoint-data', resources: [], detail: `${a.endpointGbMonth} GB processed a month`, cost: () => monthly(prices.interfaceEndpointGb, a.endpointGbMonth) });
  }
  if (items.some((i) => i.kind === 'nat-gateway')) {
    items.push({ component: 'network', name: 'NAT gateways', kind: 'nat-gateway-data', resources: [], detail: `${a.natGbMonth} GB processed a month`, cost: () => monthly(prices.natGatewayGb, a.natGbMonth) });
  }
  const notPriced = [...unpriced].map(([type, count]) => ({ type, count, reason: USAGE_ONLY[type] ?? 'not in the price table' }))
    .sort((x, y) => x.type.localeCompare(y.type));
  return { items, notPriced, ecsServices };
}

/** A line of the breakdown: the items of one name in one component, in the base scenario and the chosen one. */
export interface CostLine {
  readonly component: Component;
  readonly name: string;
  readonly agent?: string;
  readonly count: number;
  readonly detail: string;
  readonly base: number;
  readonly chosen: number;
  readonly resources: string[];
  /** Agents: the rule its task count is priced by, as read from the template. */
  readonly capacity?: AgentCapacity;
}

export interface CostReport {
  readonly assembly: string;
  readonly region: string;
  readonly regionFrom: 'option' | 'assembly' | 'default';
  readonly priceTableDate: string;
  readonly hoursPerMonth: number;
  readonly scenario: Scenario;
  readonly agentHoursPerMonth: number;
  readonly assumptions: Assumptions;
  readonly lines: CostLine[];
  readonly byComponent: { component: Component; base: number; chosen: number }[];
  /** Per agent: compute and logs. */
  readonly byAgent: { agent: string; base: number; chosen: number }[];
  /** Totals of the four scenarios. */
  readonly scenarios: { schedule: Scenario['schedule']; spot: boolean; total: number }[];
  /** Always-on, capacity as the template declares it. */
  readonly baseTotal: number;
  readonly chosenTotal: number;
  /** chosenTotal / baseTotal. */
  readonly ratio: number;
  readonly ecsServices: number;
  readonly templates: number;
  readonly notPriced: NotPriced[];
  /** The agents priced by each rule (`count`: a fixed count; `backlog`: the busy-time assumption). */
  readonly byRule: { rule: AgentCapacity['rule']; meaning: string; agents: string[] }[];
  readonly notes: string[];
}

/** What each pricing rule of an agent's task count means, as the breakdown prints it. */
export const RULES: Record<AgentCapacity['rule'], string> = {
  count: 'a fixed task count whenever the agent may run: its DesiredCount (a request agent\'s floor with scaling), or what its scalable target holds in its windows',
  backlog: 'step scaling on its backlog (from zero): its busy tasks for busyHoursPerDay of work a day, plus its idle minutes after each of activationsPerDay bursts',
};

export interface EstimateOptions {
  readonly region?: string;
  readonly schedule?: Scenario['schedule'];
  readonly spot?: boolean;
  readonly assumptions?: Partial<Assumptions>;
}

/** Estimates the monthly cost of an assembly, always-on as templated and in the chosen scenario. */
export function estimateCost(assembly: Assembly, options: EstimateOptions = {}): CostReport {
  const schedule = options.schedule ?? 'always';
  if (schedule !== 'always' && schedule !== 'business') throw settingError('--schedule', `"${schedule as string}" is not a schedule`, 'use business or always');
  const regionName = options.region ?? assembly.region ?? 'us-east-1';
  const regionFrom = options.region ? 'option' : assembly.region ? 'assembly' : 'default';
  const prices = pricesFor(regionName);
  const a: Assumptions = { ...defaultAssumptions(), ...options.assumptions };
  const scenario: Scenario = { schedule, spot: options.spot ?? false };
  const { items, notPriced, ecsServices } = costItems(assembly, prices, a);

  // One line per name in a component (an agent's compute and logs are one line; the 46 secrets are one line).
  const lines = new Map<string, { component: Component; name: string; agent?: string; items: CostItem[] }>();
  for (const i of items) {
    const key = `${i.component}\u0000${i.name}`;
    const l = lines.get(key) ?? { component: i.component, name: i.name, agent: i.agent, items: [] };
    l.items.push(i);
    lines.set(key, l);
  }
  const sum = (xs: CostItem[], s: Scenario) => xs.reduce((n, i) => n + i.cost(s), 0);
  const costLines: CostLine[] = [...lines.values()].map((l) => {
    const perService = (i: CostItem) => (i.kind === 'logs' || i.kind === 'metrics') && i.resources.length > 0 && l.items.some((x) => x.kind === 'compute');
    const counted = l.items.filter((i) => !perService(i) && !i.kind.endsWith('-data'));
    const details = [...new Set(l.items.filter((i) => !perService(i)).map((i) => i.detail))];
    return {
      component: l.component, name: l.name, ...(l.agent ? { agent: l.agent } : {}), count: Math.max(1, counted.length),
      detail: details.length === 1 ? details[0] : counted.length > 1 && l.items.every((i) => i.detail === l.items[0].detail) ? l.items[0].detail : details.join('; '),
      base: sum(l.items, ALWAYS_ON_DEMAND), chosen: sum(l.items, scenario), resources: [...new Set(l.items.flatMap((i) => i.resources))],
      ...(l.items.find((i) => i.capacity) ? { capacity: l.items.find((i) => i.capacity)!.capacity } : {}),
    };
  }).sort((x, y) => COMPONENTS.indexOf(x.component) - COMPONENTS.indexOf(y.component) || y.base - x.base || x.name.localeCompare(y.name));
  const byComponent = COMPONENTS.map((component) => {
    const ls = costLines.filter((l) => l.component === component);
    return { component, base: ls.reduce((n, l) => n + l.base, 0), chosen: ls.reduce((n, l) => n + l.chosen, 0), lines: ls.length };
  }).filter((c) => c.lines > 0).map(({ component, base, chosen }) => ({ component, base, chosen }));
  const byAgent = costLines.filter((l) => l.agent).map((l) => ({ agent: l.agent as string, base: l.base, chosen: l.chosen }));
  const total = (s: Scenario) => sum(items, s);
  const baseTotal = total(ALWAYS_ON_DEMAND);
  const chosenTotal = total(scenario);
  const armAgentsOnSpot = scenario.spot && items.some((i) => i.component === 'agents' && i.arch === 'ARM64');
  const agentLines = costLines.filter((l) => l.capacity);
  const backlog = agentLines.filter((l) => l.capacity!.rule === 'backlog');
  const windowed = agentLines.filter((l) => l.capacity!.windows);
  const byRule = (['count', 'backlog'] as const).map((rule) => ({ rule, meaning: RULES[rule], agents: agentLines.filter((l) => l.capacity!.rule === rule).map((l) => l.name).sort() }))
    .filter((r) => r.agents.length > 0);
  const notes = [
    `prices of ${PRICE_TABLE_DATE} from lib/cost/prices.ts: written from AWS's published prices as known on that date, not fetched; check the source pages before quoting`,
    ...(regionFrom === 'default' ? ['the assembly is environment-agnostic: priced in us-east-1 (give --region)'] : []),
    ...(armAgentsOnSpot ? ['Fargate Spot runs X86_64 tasks only: ARM64 agents on Spot are priced as X86_64 Spot tasks (their images must then be built for X86_64 too)'] : []),
    ...(schedule === 'business' ? ['business hours: agents scale to zero outside the windows; leaf, gateway, collector, hub, services, data stores and the network run around the clock'] : []),
    ...(backlog.length ? [`${plural(backlog.length, 'agent')} ${backlog.length === 1 ? 'scales' : 'scale'} on the backlog (step scaling in the template), priced at ${a.busyHoursPerDay} h of work on each day it may run`
      + ` in ${a.activationsPerDay} bursts, each followed by the idle minutes before the scale-in (${[...new Set(backlog.map((l) => fmt(l.capacity!.tailMinutes!)))].join(', ')} min in the template);`
      + ' both are assumptions: --busy-hours-per-day, --assume activationsPerDay=N'] : []),
    ...(windowed.length ? [schedule === 'business'
      ? `${plural(windowed.length, 'agent')} ${windowed.length === 1 ? 'has' : 'have'} business hours in the template (scheduled actions): priced in those windows (warm-up included, holidays not subtracted), the other agents in the assumed ${a.businessHoursPerDay} h x ${a.businessDaysPerWeek} days`
      : `${plural(windowed.length, 'agent')} ${windowed.length === 1 ? 'has' : 'have'} business hours in the template (scheduled actions): --schedule business prices their windows; always-on prices them around the clock`] : []),
  ];
  return {
    assembly: assembly.dir, region: regionName, regionFrom, priceTableDate: PRICE_TABLE_DATE, hoursPerMonth: HOURS_PER_MONTH, scenario,
    agentHoursPerMonth: scheduledHours(schedule, a), assumptions: a, lines: costLines, byComponent, byAgent,
    scenarios: (['always', 'business'] as const).flatMap((sch) => [false, true].map((spot) => ({ schedule: sch, spot, total: total({ schedule: sch, spot }) }))),
    baseTotal, chosenTotal, ratio: baseTotal ? chosenTotal / baseTotal : 1, ecsServices: ecsServices.length,
    templates: Object.keys(assembly.templates).length, notPriced, byRule, notes,
  };
}

export function scenarioName(s: Scenario): string {
  return `${s.schedule === 'always' ? 'always-on' : 'business hours'}${s.spot ? ' + Spot' : ', on-demand'}`;
}

const usd = (n: number) => `$${n.toFixed(2)}`;
const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The report as a readable table. */
export function formatCost(r: CostReport): string {
  const chosenName = scenarioName(r.scenario);
  const windowed = r.lines.filter((l) => l.capacity?.windows).length;
  const rows: [string, string, string, string][] = [['', 'detail', 'always-on, as templated', chosenName]];
  for (const c of r.byComponent) {
    const ls = r.lines.filter((l) => l.component === c.component);
    rows.push([c.component + (c.component === 'agents' ? ` (${ls.length})` : ''), '', usd(c.base), usd(c.chosen)]);
    for (const l of ls) rows.push([`  ${l.count > 1 ? `${l.count} x ` : ''}${l.name}`, l.detail, usd(l.base), usd(l.chosen)]);
  }
  rows.push(['total a month', '', usd(r.baseTotal), usd(r.chosenTotal)]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i].length)));
  const width = widths.reduce((n, w) => n + w, 0) + 6;
  const table: string[] = [];
  rows.forEach((row, n) => {
    if (row[0] === 'total a month') table.push('-'.repeat(width));
    table.push(`${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2].padStart(widths[2])}  ${row[3].padStart(widths[3])}`.trimEnd());
    if (n === 0) table.push('-'.repeat(width));
  });
  const assumptions = (Object.keys(ASSUMPTIONS) as (keyof Assumptions)[])
    .map((k) => `  ${k}=${r.assumptions[k]}${r.assumptions[k] === ASSUMPTIONS[k].default ? '' : ` (default ${ASSUMPTIONS[k].default})`}: ${ASSUMPTIONS[k].meaning}`);
  return [
    `${r.assembly}: ${plural(r.templates, 'template')}, ${plural(r.ecsServices, 'ECS service')}, priced in ${r.region}${r.regionFrom === 'option' ? '' : r.regionFrom === 'assembly' ? ' (the assembly\'s region)' : ' (default)'}`,
    `agents run ${r.agentHoursPerMonth.toFixed(1)} h a month (${r.scenario.schedule === 'always' ? 'always on' : `${r.assumptions.businessHoursPerDay} h x ${r.assumptions.businessDaysPerWeek} days a week`}`
      + `${r.scenario.schedule === 'business' && windowed ? `; ${plural(windowed, 'agent')} in the windows of ${windowed === 1 ? 'its' : 'their'} template` : ''}`
      + `${r.byRule.some((x) => x.rule === 'backlog') ? `; backlog-scaled agents ${r.assumptions.busyHoursPerDay} h of work a day plus their idle tails` : ''}), everything else ${r.hoursPerMonth} h`,
    '',
    ...table,
    `ratio ${chosenName} / always-on: ${r.ratio.toFixed(3)}`,
    '',
    'scenarios (total a month):',
    ...r.scenarios.map((s) => `  ${scenarioName(s).padEnd(28)} ${usd(s.total).padStart(10)}  (${(r.baseTotal ? s.total / r.baseTotal : 1).toFixed(3)} of always-on)`),
    '',
    'assumptions (--assume KEY=VALUE):',
    ...assumptions,
    ...(r.byRule.length ? ['', 'agents by pricing rule:', ...r.byRule.flatMap((x) => [`  ${x.rule} (${x.agents.length}): ${x.meaning}`, `    ${x.agents.join(', ')}`])] : []),
    ...(r.notPriced.length ? ['', 'not priced (cost by use only):', ...r.notPriced.map((n) => `  ${n.count} x ${n.type}: ${n.reason}`)] : []),
    '',
    'notes:',
    ...r.notes.map((n) => `  ${n}`),
  ].join('\n');
}

/** The closing line of `byoc cost`. */
export function costSummary(r: CostReport): string {
  return `estimated ${r.assembly} in ${r.region}: ${usd(r.baseTotal)} a month always-on, ${usd(r.chosenTotal)} ${scenarioName(r.scenario)} (ratio ${r.ratio.toFixed(3)}); ${plural(r.ecsServices, 'ECS service')} in ${plural(r.templates, 'template')}, prices of ${r.priceTableDate}`;
}
