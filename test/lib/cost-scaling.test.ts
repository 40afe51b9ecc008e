import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../bin/byoc';
import { estimateCost, readAssembly } from '../../lib/cost/estimate';

// Fixture templates of the customer plane's `scaling` as it synthesizes (customer-plane/operations.ts): an event agent
// on a scalable target 0..1 with step scaling on its backlog, a request agent at its floor (DesiredCount), a
// scheduled agent. Priced by hand in us-east-1 (lib/cost/prices.ts): Fargate Linux/ARM on-demand 0.03238 vCPU-h,
// 0.00356 GB-h; Fargate Spot (X86) 0.012144 vCPU-h, 0.0013335 GB-h; logs 0.50/GB (0.5 GB a task-month: 0.25 per
// 730 task-hours); alarm 0.10/month. A month is 730 h: 730 / 24 = 30.416667 days, 5 business days a week
// = 5 x 730 / 168 = 21.726190 days.
//   1 vCPU, 2 GB ARM on-demand: 0.03238 + 2 x 0.00356 = 0.0395 an hour; on Spot 0.012144 + 2 x 0.0013335 = 0.014811
//   0.25 vCPU, 0.5 GB ARM on-demand: 0.25 x 0.03238 + 0.5 x 0.00356 = 0.009875; on Spot 0.00370275

const taskDef = (cpu: string, memory: string, agent: string) => ({
  Type: 'AWS::ECS::TaskDefinition',
  Properties: {
    Cpu: cpu, Memory: memory, Family: `byoc-t-${agent}`, RequiresCompatibilities: ['FARGATE'],
    RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    ContainerDefinitions: [{ Name: 'main', Environment: [{ Name: 'BYOC_AGENT', Value: agent }] }],
  },
});
const service = (td: string, desired: number) => ({ Type: 'AWS::ECS::Service', Properties: { TaskDefinition: { Ref: td }, DesiredCount: desired } });
const resourceId = (svc: string) => ({ 'Fn::Join': ['', ['service/', { Ref: 'ClusterRef' }, '/', { 'Fn::GetAtt': [svc, 'Name'] }]] });
const target = (svc: string, min: number, max: number, actions?: unknown[]) => ({
  Type: 'AWS::ApplicationAutoScaling::ScalableTarget',
  Properties: { ServiceNamespace: 'ecs', ScalableDimension: 'ecs:service:DesiredCount', ResourceId: resourceId(svc), MinCapacity: min, MaxCapacity: max, ...(actions ? { ScheduledActions: actions } : {}) },
});
const step = (targetId: string, bound: 'MetricIntervalLowerBound' | 'MetricIntervalUpperBound', to: number) => ({
  Type: 'AWS::ApplicationAutoScaling::ScalingPolicy',
  Properties: {
    PolicyName: `${targetId}-${to}`, PolicyType: 'StepScaling', ScalingTargetId: { Ref: targetId },
    StepScalingPolicyConfiguration: { AdjustmentType: 'ExactCapacity', Cooldown: 60, MetricAggregationType: 'Maximum', StepAdjustments: [{ [bound]: 0, ScalingAdjustment: to }] },
  },
});
const alarm = (policy: string, periods: number, threshold: number) => ({
  Type: 'AWS::CloudWatch::Alarm',
  Properties: {
    AlarmActions: [{ Ref: policy }], Namespace: 'BYOC/Plane', MetricName: 'AgentBacklog', Dimensions: [{ Name: 'Agent', Value: 'echo' }],
    Statistic: 'Maximum', Period: 60, EvaluationPeriods: periods, DatapointsToAlarm: periods, Threshold: threshold,
    ComparisonOperator: threshold ? 'LessThanThreshold' : 'GreaterThanThreshold',
  },
});
const weekdays = 'MON,TUE,WED,THU,FRI';
const open = (min: number, max: number, extra: Record<string, unknown> = {}) => ({ ScheduledActionName: 'Open0', Schedule: `cron(50 7 ? * ${weekdays} *)`, Timezone: 'Europe/Berlin', ScalableTargetAction: { MinCapacity: min, MaxCapacity: max }, ...extra });
const close = { ScheduledActionName: 'Close0', Schedule: `cron(0 18 ? * ${weekdays} *)`, Timezone: 'Europe/Berlin', ScalableTargetAction: { MinCapacity: 0, MaxCapacity: 0 } };

/** The plane's agents with `scaling` (idleMinutes 15, requestFloor `floor`), and with `schedule` when `hours`. */
function plane(opts: { floor: number; hours?: boolean }): Record<string, unknown> {
  const hours = opts.hours ?? false;
  return {
    'Agents.nested.template.json': {
      Resources: {
        EchoTask: taskDef('1024', '2048', 'echo'),
        EchoService: service('EchoTask', 1),
        EchoTarget: target('EchoService', 0, 1, hours ? [open(0, 1), open(0, 1, { ScheduledActionName: 'Open0After20261225', StartTime: '2026-12-25T23:00:00.000Z' }), close] : undefined),
        EchoScaleOut: step('EchoTarget', 'MetricIntervalLowerBound', 1),
        EchoBusy: alarm('EchoScaleOut', 1, 0),
        EchoScaleIn: step('EchoTarget', 'MetricIntervalUpperBound', 0),
        EchoIdle: alarm('EchoScaleIn', 15, 1),
        AskTask: taskDef('1024', '2048', 'ask'),
        AskService: service('AskTask', opts.floor),
        ...(hours ? { AskTarget: target('AskService', 0, Math.max(1, opts.floor), [open(opts.floor, opts.floor), close]) } : {}),
        TickTask: taskDef('256', '512', 'tick'),
        TickService: service('TickTask', 1),
      },
    },
  };
}

let tmp: string;
let n = 0;
const write = (templates: Record<string, unknown>): string => {
  const dir = path.join(tmp, `a${n++}`);
  fs.mkdirSync(dir);
  for (const [f, t] of Object.entries(templates)) fs.writeFileSync(path.join(dir, f), JSON.stringify(t));
  return dir;
};
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-cost-scaling-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const agentCost = (r: ReturnType<typeof estimateCost>, agent: string) => r.byAgent.find((a) => a.agent === agent)!;

describe('scaling only (no business hours in the template)', () => {
  test('event agent by its backlog, request agent at its floor, scheduled agent as before', () => {
    const r = estimateCost(readAssembly(write(plane({ floor: 2 }))), { region: 'us-east-1' });
    // echo: 0..1 on its backlog, idle tail 15 x 60 s = 15 min: 2 h work + 4 x 15 min = 3 h a day x 30.416667 days
    //   = 91.25 task-hours x 0.0395 = 3.604375; logs 91.25 / 730 x 0.25 = 0.03125 -> 3.635625
    expect(agentCost(r, 'echo').base).toBeCloseTo(3.635625, 6);
    // ask: its floor, 2 tasks x 730 h x 0.0395 = 57.67; logs 2 x 0.25 -> 58.17
    expect(agentCost(r, 'ask').base).toBeCloseTo(58.17, 6);
    // tick: 730 x 0.009875 = 7.20875; logs 0.25 -> 7.45875
    expect(agentCost(r, 'tick').base).toBeCloseTo(7.45875, 6);
    // two alarms 0.20; total 3.635625 + 58.17 + 7.45875 + 0.20 = 69.464375
    expect(r.baseTotal).toBeCloseTo(69.464375, 6);
    const echo = r.lines.find((l) => l.name === 'echo')!;
    expect(echo.capacity).toEqual({ rule: 'backlog', idle: 0, busy: 1, tailMinutes: 15, target: 'Agents.nested.template.json#EchoTarget' });
    expect(echo.detail).toBe('0-1 task x 1 vCPU, 2 GB, ARM64, backlog: 3 h a day (2 h work + 4 x 15 min idle)');
    expect(r.byRule.map((x) => [x.rule, x.agents])).toEqual([['count', ['ask', 'tick']], ['backlog', ['echo']]]);
    expect(r.notes.join('\n')).toMatch(/1 agent scales on the backlog .* 2 h of work on each day it may run in 4 bursts, .*\(15 min in the template\)/);
  });

  test('business hours (assumed 10 h x 5 days) + Spot: the backlog inside the window, the rest as before', () => {
    const r = estimateCost(readAssembly(write(plane({ floor: 2 }))), { region: 'us-east-1', schedule: 'business', spot: true });
    // echo: 3 h (within the 10 h window) x 21.726190 days = 65.178571 task-hours x 0.014811 = 0.965360; logs 65.178571 / 730 x 0.25 = 0.022321
    expect(agentCost(r, 'echo').chosen).toBeCloseTo(0.987681, 5);
    // ask: 2 x 217.261905 h x 0.014811 = 6.435735; logs 2 x 0.297619 x 0.25 = 0.148810
    expect(agentCost(r, 'ask').chosen).toBeCloseTo(6.584545, 5);
    // tick: 217.261905 x 0.00370275 = 0.804466; logs 0.074405
    expect(agentCost(r, 'tick').chosen).toBeCloseTo(0.878871, 5);
    expect(r.chosenTotal).toBeCloseTo(0.987681 + 6.584545 + 0.878871 + 0.2, 5);
  });

  test('the busy-time assumption: more work, a cap at the whole day, fewer bursts', () => {
    const dir = write(plane({ floor: 2 }));
    // 6 h work + 4 x 15 min = 7 h x 30.416667 = 212.916667 task-hours x 0.0395 = 8.410208; logs 0.072917
    expect(agentCost(estimateCost(readAssembly(dir), { region: 'us-east-1', assumptions: { busyHoursPerDay: 6 } }), 'echo').base).toBeCloseTo(8.483125, 6);
    // 23 h + 1 h fills the day: as an always-on task, 730 x 0.0395 + 0.25 = 29.085
    expect(agentCost(estimateCost(readAssembly(dir), { region: 'us-east-1', assumptions: { busyHoursPerDay: 23 } }), 'echo').base).toBeCloseTo(29.085, 6);
    // 2 h + 1 burst x 15 min = 2.25 h x 30.416667 = 68.4375 task-hours x 0.0395 = 2.703281; logs 0.023438
    expect(agentCost(estimateCost(readAssembly(dir), { region: 'us-east-1', assumptions: { activationsPerDay: 1 } }), 'echo').base).toBeCloseTo(2.726719, 5);
  });
});

describe('scaling + business hours in the template (scheduled actions)', () => {
  test('windows read from the actions (07:50 to 18:00, 5 days; a holiday variant counted once); event agent 0..1 inside them, request agent at its floor', () => {
    const r = estimateCost(readAssembly(write(plane({ floor: 2, hours: true }))), { region: 'us-east-1', schedule: 'business' });
    const ask = r.lines.find((l) => l.name === 'ask')!;
    expect(ask.capacity!.windows!.daysPerWeek).toBe(5);
    expect(ask.capacity!.windows!.hoursPerDay).toBeCloseTo(10.166667, 6);
    // echo: 3 h a window-day (less than the 10.17 h window) x 21.726190 = 65.178571 task-hours x 0.0395 = 2.574554; logs 0.022321
    expect(agentCost(r, 'echo').chosen).toBeCloseTo(2.596875, 5);
    // ask: 2 tasks x 10.166667 h x 21.726190 days = 441.765873 task-hours x 0.0395 = 17.449752; logs 441.765873 / 730 x 0.25 = 0.151290
    expect(agentCost(r, 'ask').chosen).toBeCloseTo(17.601042, 5);
    // tick: no target: the assumed business hours, 217.261905 x 0.009875 = 2.145461; logs 0.074405
    expect(agentCost(r, 'tick').chosen).toBeCloseTo(2.219866, 5);
    expect(r.chosenTotal).toBeCloseTo(2.596875 + 17.601042 + 2.219866 + 0.2, 5);
    // always-on prices the same agents around the clock, as in the scaling-only plane: 69.464375
    expect(r.baseTotal).toBeCloseTo(69.464375, 6);
    expect(r.notes.join('\n')).toMatch(/2 agents have business hours in the template \(scheduled actions\): priced in those windows/);
    expect(r.lines.find((l) => l.name === 'echo')!.detail).toBe('0-1 task x 1 vCPU, 2 GB, ARM64, backlog: 3 h a day (2 h work + 4 x 15 min idle), windows 10.167 h x 5 days');
  });

  test('a window across the end of the week (Sunday 22:00 to Monday 02:00): 4 h on one day', () => {
    const t = plane({ floor: 2 }) as any;
    const res = t['Agents.nested.template.json'].Resources;
    res.AskTarget = target('AskService', 0, 2, [
      { ScheduledActionName: 'Close0', Schedule: 'cron(0 2 ? * MON *)', ScalableTargetAction: { MinCapacity: 0, MaxCapacity: 0 } },
      { ScheduledActionName: 'Open0', Schedule: 'cron(0 22 ? * SUN *)', ScalableTargetAction: { MinCapacity: 2, MaxCapacity: 2 } },
    ]);
    const r = estimateCost(readAssembly(write(t)), { region: 'us-east-1', schedule: 'business' });
    expect(r.lines.find((l) => l.name === 'ask')!.capacity!.windows).toEqual({ daysPerWeek: 1, hoursPerDay: 4 });
    // 2 tasks x 4 h x 730 / 168 days = 34.761905 task-hours x 0.0395 = 1.373095; logs 0.011905
    expect(agentCost(r, 'ask').chosen).toBeCloseTo(1.385, 5);
  });
});

describe('requestFloor 0 vs 2', () => {
  test('without business hours: the request agent costs nothing at 0, two tasks at 2', () => {
    const zero = estimateCost(readAssembly(write(plane({ floor: 0 }))), { region: 'us-east-1', schedule: 'business', spot: true });
    const two = estimateCost(readAssembly(write(plane({ floor: 2 }))), { region: 'us-east-1', schedule: 'business', spot: true });
    expect(agentCost(zero, 'ask')).toEqual({ agent: 'ask', base: 0, chosen: 0 });
    expect(agentCost(two, 'ask').base).toBeCloseTo(58.17, 6);
    expect(agentCost(two, 'ask').chosen).toBeCloseTo(6.584545, 5);
    // everything else the same: the totals differ by the floor's two tasks
    expect(zero.baseTotal).toBeCloseTo(69.464375 - 58.17, 6);
    expect(two.baseTotal - zero.baseTotal).toBeCloseTo(58.17, 6);
    expect(zero.lines.find((l) => l.name === 'ask')!.detail).toBe('0 tasks x 1 vCPU, 2 GB, ARM64');
  });

  test('with business hours: a floor of 0 never opens (its opening action holds 0 tasks), 2 runs two tasks in the windows', () => {
    const zero = estimateCost(readAssembly(write(plane({ floor: 0, hours: true }))), { region: 'us-east-1', schedule: 'business' });
    const two = estimateCost(readAssembly(write(plane({ floor: 2, hours: true }))), { region: 'us-east-1', schedule: 'business' });
    expect(agentCost(zero, 'ask')).toEqual({ agent: 'ask', base: 0, chosen: 0 });
    expect(agentCost(two, 'ask').chosen).toBeCloseTo(17.601042, 5);
    expect(two.chosenTotal - zero.chosenTotal).toBeCloseTo(17.601042, 5);
  });
});

describe('byoc cost with scaling', () => {
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((...a) => { out.push(a.join(' ')); });
    const error = jest.spyOn(console, 'error').mockImplementation((...a) => { err.push(a.join(' ')); });
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((s) => { err.push(String(s)); return true; });
    try {
      return { code: await main(args), out: out.join('\n'), err: err.join('') };
    } finally {
      log.mockRestore();
      error.mockRestore();
      stderr.mockRestore();
    }
  };

  test('--busy-hours-per-day: printed with the assumptions, the rules named with their agents', async () => {
    const dir = write(plane({ floor: 2 }));
    const r = await run('cost', dir, '--region', 'us-east-1', '--busy-hours-per-day', '6');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ {2}busyHoursPerDay=6 \(default 2\): /m);
    expect(r.out).toMatch(/^ {2}echo +0-1 task x 1 vCPU, 2 GB, ARM64, backlog: 7 h a day \(6 h work \+ 4 x 15 min idle\) +\$8\.48 +\$8\.48$/m);
    expect(r.out).toMatch(/^agents by pricing rule:\n {2}count \(2\): .*\n {4}ask, tick\n {2}backlog \(1\): .*\n {4}echo$/m);
    // 69.464375 - 3.635625 + 8.483125 = 74.311875
    expect(r.out.trim().split('\n').pop()).toMatch(/: \$74\.31 a month always-on, \$74\.31 always-on, on-demand/);
  });

  test('business hours in the template: the header says which agents run in the template\'s windows', async () => {
    const r = await run('cost', write(plane({ floor: 2, hours: true })), '--region', 'us-east-1', '--schedule', 'business');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[1]).toBe('agents run 217.3 h a month (10 h x 5 days a week; 2 agents in the windows of their template; backlog-scaled agents 2 h of work a day plus their idle tails), everything else 730 h');
    expect(r.out).toMatch(/^ {2}ask +2 tasks x 1 vCPU, 2 GB, ARM64, windows 10\.167 h x 5 days +\$58\.17 +\$17\.60$/m);
    expect(r.out.trim().split('\n').pop()).toMatch(/: \$69\.46 a month always-on, \$22\.62 business hours, on-demand/);
  });

  test('--busy-hours-per-day out of range is one line and exit 1', async () => {
    const r = await run('cost', write(plane({ floor: 2 })), '--busy-hours-per-day', '25');
    expect(r.code).toBe(1);
    expect(r.err.trim()).toMatch(/^byoc: Invalid setting '--busy-hours-per-day': "25" is not a number of hours from 0 to 24/);
  });
});
