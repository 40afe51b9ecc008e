import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { AGENT_CATALOG, AgentSpec, AgentTrigger, DataStore } from '../../agents/catalog';
import { MAX_AGENTS_PER_GROUP } from '../../customer-plane/props';
import { buildCustomerPlaneApp } from '../../bin/customer-plane';
import { BusinessHours, localMidnightUtc, resolveBusinessHours } from '../../customer-plane/operations';
import { projectRoot } from '../../lib/app';
import { PropError } from '../../lib/errors';
import { allResources, exampleProps, SynthesizedPlane, synthCustomerPlane } from '../synth';
import * as os from 'os';

/** Business hours (`schedule`): scheduled scaling of the stateless agents, and the validation of the setting. */

const byType = (plane: SynthesizedPlane, type: string) => allResources(plane.templates).filter((r) => r.type === type);
const WEEKDAYS_ = ['MON', 'TUE', 'WED', 'THU', 'FRI'] as const;
const HOURS: BusinessHours = {
  timeZone: 'Europe/Berlin',
  windows: [
    { days: [...WEEKDAYS_], start: '08:00', end: '12:30' },
    { days: [...WEEKDAYS_], start: '13:30', end: '18:00' },
    { days: ['SAT'], start: '09:00', end: '13:00' },
  ],
  // 2026-12-25 is a Friday (two windows that day), 2026-12-26 a Saturday (one), 2026-12-27 a Sunday (none).
  holidays: ['2026-12-25', '2026-12-26', '2026-12-27'],
  warmUpMinutes: 15,
};
const STATELESS = AGENT_CATALOG.filter((a) => a.trigger !== AgentTrigger.SCHEDULE).map((a) => a.name);

describe('schedule on the synthesized plane', () => {
  let plane: SynthesizedPlane;
  beforeAll(() => { plane = synthCustomerPlane(exampleProps({ schedule: HOURS })); });
  const targets = () => byType(plane, 'AWS::ApplicationAutoScaling::ScalableTarget');
  const serviceName = (t: any) => JSON.stringify(t.props.ResourceId);
  const serviceOfFamily = (name: string) => {
    const task = byType(plane, 'AWS::ECS::TaskDefinition').find((t) => t.props.Family === `byoc-example-${name}`)!;
    return byType(plane, 'AWS::ECS::Service').find((s) => s.file === task.file && s.props.TaskDefinition.Ref === task.id)!;
  };
  const targetOf = (name: string) => {
    const service = serviceOfFamily(name);
    return targets().find((t) => t.file === service.file && serviceName(t).includes(`"${service.id}"`));
  };

  test('one scalable target (0 to 1 task) for each request and event agent, none for anything else', () => {
    expect(targets()).toHaveLength(STATELESS.length);
    for (const name of STATELESS) {
      const t = targetOf(name)!;
      expect([name, t.props.ServiceNamespace, t.props.ScalableDimension, t.props.MinCapacity, t.props.MaxCapacity]).toEqual([name, 'ecs', 'ecs:service:DesiredCount', 0, 1]);
    }
    for (const name of [...AGENT_CATALOG.filter((a) => a.trigger === AgentTrigger.SCHEDULE).map((a) => a.name), 'nats-leaf', 'boundary-gateway', 'otel-collector']) {
      expect([name, targetOf(name)]).toEqual([name, undefined]);
    }
    // No other scaling of anything: the data stores are not ECS services, and the leaf, gateway and collector have no target.
    expect(STATELESS).not.toContain('usage-meter');
  });

  test('each window: up to one task warmUpMinutes before it opens, down to zero when it closes, in the schedule\'s time zone', () => {
    const actions = targetOf('planner')!.props.ScheduledActions as any[];
    // Bounds (StartTime, EndTime) come from holidays: see the next test.
    const byName = Object.fromEntries(actions.map(({ StartTime: _s, EndTime: _e, ...a }) => [a.ScheduledActionName, a]));
    const expectAction = (name: string, schedule: string, capacity: number) => expect(byName[name]).toEqual({
      ScheduledActionName: name, Schedule: schedule, Timezone: 'Europe/Berlin', ScalableTargetAction: { MinCapacity: capacity, MaxCapacity: capacity },
    });
    expectAction('Open0', 'cron(45 7 ? * MON,TUE,WED,THU,FRI *)', 1);
    expectAction('Close0', 'cron(30 12 ? * MON,TUE,WED,THU,FRI *)', 0);
    expectAction('Open1', 'cron(15 13 ? * MON,TUE,WED,THU,FRI *)', 1);
    expectAction('Close1', 'cron(0 18 ? * MON,TUE,WED,THU,FRI *)', 0);
    expectAction('Open2', 'cron(45 8 ? * SAT *)', 1);
    expectAction('Close2', 'cron(0 13 ? * SAT *)', 0);
  });

  test('holidays: each window that falls on one opens through actions bounded by the holidays\' local midnights (UTC); a day with no window needs nothing', () => {
    const actions = targetOf('planner')!.props.ScheduledActions as any[];
    const opens = actions.filter((a) => a.ScheduledActionName.startsWith('Open')).map((a) => [a.ScheduledActionName, a.Schedule, a.StartTime, a.EndTime]);
    // Europe/Berlin in December is UTC+1: local midnight of the 25th is 23:00 UTC on the 24th.
    expect(opens).toEqual([
      ['Open0', 'cron(45 7 ? * MON,TUE,WED,THU,FRI *)', undefined, '2026-12-24T23:00:00Z'],
      ['Open0After20261225', 'cron(45 7 ? * MON,TUE,WED,THU,FRI *)', '2026-12-25T23:00:00Z', undefined],
      ['Open1', 'cron(15 13 ? * MON,TUE,WED,THU,FRI *)', undefined, '2026-12-24T23:00:00Z'],
      ['Open1After20261225', 'cron(15 13 ? * MON,TUE,WED,THU,FRI *)', '2026-12-25T23:00:00Z', undefined],
      ['Open2', 'cron(45 8 ? * SAT *)', undefined, '2026-12-25T23:00:00Z'],
      ['Open2After20261226', 'cron(45 8 ? * SAT *)', '2026-12-26T23:00:00Z', undefined],
    ]);
    for (const a of actions.filter((x) => x.ScheduledActionName.startsWith('Open'))) expect(a.ScalableTargetAction).toEqual({ MinCapacity: 1, MaxCapacity: 1 });
    expect(actions).toHaveLength(6 + 3);
  });

  test('local midnight in UTC follows the zone and its daylight saving time', () => {
    expect([
      localMidnightUtc('2026-07-01', 'Europe/Berlin'), localMidnightUtc('2026-03-29', 'Europe/Berlin'), localMidnightUtc('2026-12-25', 'America/New_York'),
      localMidnightUtc('2026-12-25', 'Asia/Kolkata'), localMidnightUtc('2026-12-25', 'UTC'),
    ].map((d) => d.toISOString())).toEqual(['2026-06-30T22:00:00.000Z', '2026-03-28T23:00:00.000Z', '2026-12-25T05:00:00.000Z', '2026-12-24T18:30:00.000Z', '2026-12-25T00:00:00.000Z']);
  });

  test('the scalable targets use the ECS service-linked role: no role of the plane\'s', () => {
    for (const t of targets()) expect(JSON.stringify(t.props.RoleARN)).toContain('AWSServiceRoleForApplicationAutoScaling_ECSService');
  });
});

describe('schedule is validated at synth, naming the element and the fix', () => {
  const bad = (change: Partial<BusinessHours>) => ({ ...HOURS, ...change });
  test.each([
    ['unknown time zone', bad({ timeZone: 'Europe/Atlantis' }), `Invalid prop 'schedule.timeZone': "Europe/Atlantis" is not a time zone. Fix: give an IANA time zone name`],
    ['not a time', bad({ windows: [{ days: ['MON'], start: '8:00', end: '18:00' }] }), `Invalid prop 'schedule.windows[0].start': "8:00" is not a time. Fix: give HH:MM on a 24-hour clock`],
    ['hour 24', bad({ windows: [{ days: ['MON'], start: '08:00', end: '24:00' }] }), `Invalid prop 'schedule.windows[0].end': "24:00" is not a time`],
    ['end before start', bad({ windows: [{ days: ['MON'], start: '22:00', end: '02:00' }] }), `Invalid prop 'schedule.windows[0].end': 02:00 is not after start 22:00. Fix: give an end later the same day; split a window that crosses midnight`],
    ['overlap', bad({ windows: [{ days: ['MON', 'TUE'], start: '08:00', end: '12:00' }, { days: ['TUE'], start: '11:00', end: '15:00' }] }),
      `Invalid prop 'schedule.windows': windows[0] and windows[1] overlap on TUE (08:00-12:00 and 11:00-15:00, with the 15-minute warm-up). Fix: merge them`],
    ['closer than the warm-up', bad({ windows: [{ days: ['WED'], start: '13:10', end: '14:00' }, { days: ['WED'], start: '08:00', end: '13:00' }] }),
      `Invalid prop 'schedule.windows': windows[0] and windows[1] overlap on WED (08:00-13:00 and 13:10-14:00, with the 15-minute warm-up)`],
    ['warm-up before midnight', bad({ windows: [{ days: ['MON'], start: '00:05', end: '06:00' }] }), `Invalid prop 'schedule.windows[0].start': 00:05 leaves no room for the 15-minute warm-up on the same day. Fix: start at 00:15 or later`],
    ['unknown day', bad({ windows: [{ days: ['MONDAY' as any], start: '08:00', end: '09:00' }] }), `Invalid prop 'schedule.windows[0].days': "MONDAY" is not a day. Fix: use MON, TUE, WED, THU, FRI, SAT, SUN`],
    ['no windows', bad({ windows: [] }), `Invalid prop 'schedule.windows': has no window: the agents would never run`],
    ['not a date', bad({ holidays: ['2026-02-30'] }), `Invalid prop 'schedule.holidays[0]': "2026-02-30" is not a date. Fix: give YYYY-MM-DD`],
    ['warm-up out of range', bad({ warmUpMinutes: 180 }), `Invalid prop 'schedule.warmUpMinutes': 180 is out of range`],
  ])('%s', (_name, hours, message) => {
    expect(() => resolveBusinessHours('schedule', hours)).toThrow(PropError);
    expect(() => resolveBusinessHours('schedule', hours)).toThrow(message);
  });

  test('adjacent windows with no warm-up are fine; the result is in minutes, days in week order', () => {
    expect(resolveBusinessHours('schedule', { timeZone: 'UTC', warmUpMinutes: 0, windows: [{ days: ['FRI', 'MON'], start: '12:00', end: '18:00' }, { days: ['MON'], start: '08:00', end: '12:00' }] })).toEqual({
      timeZone: 'UTC', warmUpMinutes: 0, holidays: [],
      windows: [{ days: ['MON', 'FRI'], start: 720, end: 1080 }, { days: ['MON'], start: 480, end: 720 }],
    });
  });

  test('in a configuration file, a bad schedule is a setting error with the same path', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-schedule-'));
    try {
      const config = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8'));
      config.vendorHub.caCertificateFile = path.join(projectRoot(), 'config', config.vendorHub.caCertificateFile);
      const run = (schedule: unknown) => {
        const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
        fs.writeFileSync(file, JSON.stringify({ ...config, schedule }));
        try {
          buildCustomerPlaneApp(new App({ outdir: path.join(dir, 'out'), context: { config: file } }));
        } catch (e) {
          return (e as Error).message;
        }
        return 'no error';
      };
      expect(run({ timeZone: 'Europe/Berlin', windows: [{ days: ['MON'], start: '8am', end: '18:00' }] }))
        .toMatch(/^Invalid setting 'schedule\.windows\[0\]\.start': "8am" is not a time\. Fix: give HH:MM on a 24-hour clock/);
      expect(run({ timeZone: 'Europe/Berlin', windows: [{ days: ['MON'], start: '08:00', end: '18:00' }, { days: ['MON'], start: '17:00', end: '19:00' }] }))
        .toMatch(/^Invalid setting 'schedule\.windows': windows\[0\] and windows\[1\] overlap on MON/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test(`a full group (${MAX_AGENTS_PER_GROUP} agents) with business hours and Spot stays within CloudFormation's 500 resources per stack`, () => {
  const catalog: AgentSpec[] = Array.from({ length: MAX_AGENTS_PER_GROUP }, (_, i) => ({
    ...AGENT_CATALOG[0],
    name: `agent-${String(i).padStart(3, '0')}`,
    group: 'full',
    trigger: AgentTrigger.REQUEST,
    dataStores: [DataStore.POSTGRES, DataStore.REDIS],
    secrets: ['llm-primary', 'llm-secondary'],
    interruptible: true,
    subjects: { subscribe: [`work.agent-${i}`], publish: ['events.workflow.status'] },
  }));
  // Three windows and twelve holidays, every one on a weekday: 6 + 12 to 24 scheduled actions per agent.
  const holidays = ['2026-01-01', '2026-04-03', '2026-04-06', '2026-05-01', '2026-05-14', '2026-05-25', '2026-10-03', '2026-12-24', '2026-12-25', '2026-12-31', '2027-01-01', '2027-03-26'];
  const plane = synthCustomerPlane(exampleProps({ catalog, schedule: { ...HOURS, holidays }, capacity: { spot: true } }));
  const [file, group] = Object.entries(plane.templates).find(([f]) => f.includes('.nested.'))!;
  // Written without indentation: under CDK's warning at 80 % of CloudFormation's 1 MB (synth would have stopped on it).
  const bytes = fs.statSync(path.join(plane.outdir, file)).size;
  expect(bytes).toBeLessThan(800 * 1000);
  expect(fs.readFileSync(path.join(plane.outdir, file), 'utf8')).not.toContain('\n');
  const count = (type: string) => Object.values<any>(group.Resources).filter((r) => r.Type === type).length;
  expect(count('AWS::ApplicationAutoScaling::ScalableTarget')).toBe(MAX_AGENTS_PER_GROUP);
  expect(count('AWS::CloudWatch::Alarm')).toBe(MAX_AGENTS_PER_GROUP);
  expect(count('AWS::Logs::MetricFilter')).toBe(MAX_AGENTS_PER_GROUP);
  expect(Object.keys(group.Resources).length).toBeLessThanOrEqual(500);
});
