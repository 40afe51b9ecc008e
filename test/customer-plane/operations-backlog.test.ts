import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { AGENT_CATALOG, AgentTrigger } from '../../agents/catalog';
import { buildCustomerPlaneApp } from '../../bin/customer-plane';
import { BACKLOG_NAMESPACE, BACKLOG_METRIC as GATEWAY_METRIC, backlogEmf } from '../../customer-plane/boundary-gateway/backlog';
import { BACKLOG_METRIC, BusinessHours, PLANE_METRICS_NAMESPACE, resolveScaling } from '../../customer-plane/operations';
import { projectRoot } from '../../lib/app';
import { PropError } from '../../lib/errors';
import { allResources, exampleProps, SynthesizedPlane, synthCustomerPlane } from '../synth';

/** `scaling`: event agents from zero on their backlog, request agents at a floor, with business hours; validation. */

const byType = (plane: SynthesizedPlane, type: string) => allResources(plane.templates).filter((r) => r.type === type);
const HOURS: BusinessHours = { timeZone: 'Europe/Berlin', windows: [{ days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], start: '08:00', end: '18:00' }] };
const names = (trigger: AgentTrigger) => AGENT_CATALOG.filter((a) => a.trigger === trigger).map((a) => a.name);
const EVENT = names(AgentTrigger.EVENT);
const REQUEST = names(AgentTrigger.REQUEST);
const SCHEDULED = names(AgentTrigger.SCHEDULE);

let plane: SynthesizedPlane;
beforeAll(() => { plane = synthCustomerPlane(exampleProps({ schedule: HOURS, scaling: { idleMinutes: 20, requestFloor: 2 } })); });
const serviceOf = (name: string) => {
  const task = byType(plane, 'AWS::ECS::TaskDefinition').find((t) => t.props.Family === `byoc-example-${name}`)!;
  return byType(plane, 'AWS::ECS::Service').find((s) => s.file === task.file && s.props.TaskDefinition.Ref === task.id)!;
};

describe('scaling with business hours on the synthesized plane', () => {
  const targetOf = (name: string) => {
    const service = serviceOf(name);
    return byType(plane, 'AWS::ApplicationAutoScaling::ScalableTarget').find((t) => t.file === service.file && JSON.stringify(t.props.ResourceId).includes(`"${service.id}"`));
  };
  const policiesOf = (name: string) => {
    const t = targetOf(name)!;
    return byType(plane, 'AWS::ApplicationAutoScaling::ScalingPolicy').filter((p) => p.file === t.file && p.props.ScalingTargetId?.Ref === t.id);
  };
  const alarmsOn = (policy: { file: string; id: string }) => byType(plane, 'AWS::CloudWatch::Alarm')
    .filter((a) => a.file === policy.file && JSON.stringify(a.props.AlarmActions ?? []).includes(`"${policy.id}"`));

  test('event agents: 0 to 1 task, opened 0..1 by the schedule, closed 0..0', () => {
    expect(EVENT.length).toBeGreaterThan(0);
    for (const name of EVENT) {
      const t = targetOf(name)!;
      expect([name, t.props.MinCapacity, t.props.MaxCapacity]).toEqual([name, 0, 1]);
      const actions = t.props.ScheduledActions as any[];
      expect(actions.find((a) => a.ScheduledActionName === 'Open0').ScalableTargetAction).toEqual({ MinCapacity: 0, MaxCapacity: 1 });
      expect(actions.find((a) => a.ScheduledActionName === 'Close0').ScalableTargetAction).toEqual({ MinCapacity: 0, MaxCapacity: 0 });
    }
  });

  test('event agents: step scaling to exactly one task when the backlog is above zero, to zero after idleMinutes at zero', () => {
    for (const name of EVENT) {
      const policies = policiesOf(name);
      expect([name, policies.length]).toEqual([name, 2]);
      const out = policies.find((p) => p.props.StepScalingPolicyConfiguration.StepAdjustments[0].ScalingAdjustment === 1)!;
      const inn = policies.find((p) => p.props.StepScalingPolicyConfiguration.StepAdjustments[0].ScalingAdjustment === 0)!;
      expect(out.props.PolicyType).toBe('StepScaling');
      expect(out.props.StepScalingPolicyConfiguration).toEqual({
        AdjustmentType: 'ExactCapacity', Cooldown: 60, MetricAggregationType: 'Maximum',
        StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
      });
      expect(inn.props.StepScalingPolicyConfiguration).toEqual({
        AdjustmentType: 'ExactCapacity', Cooldown: 60, MetricAggregationType: 'Maximum',
        StepAdjustments: [{ MetricIntervalUpperBound: 0, ScalingAdjustment: 0 }],
      });
      const metric = { Namespace: 'BYOC/Plane', MetricName: 'AgentBacklog', Dimensions: [{ Name: 'Agent', Value: name }], Statistic: 'Maximum', Period: 60 };
      const [busy] = alarmsOn(out);
      expect(alarmsOn(out)).toHaveLength(1);
      expect(busy.props).toMatchObject({ ...metric, Threshold: 0, ComparisonOperator: 'GreaterThanThreshold', EvaluationPeriods: 1, TreatMissingData: 'notBreaching' });
      const [idle] = alarmsOn(inn);
      expect(alarmsOn(inn)).toHaveLength(1);
      expect(idle.props).toMatchObject({ ...metric, Threshold: 1, ComparisonOperator: 'LessThanThreshold', EvaluationPeriods: 20, DatapointsToAlarm: 20, TreatMissingData: 'notBreaching' });
    }
  });

  test('request agents: the floor as desired count and, in the window, as min and max; no backlog scaling', () => {
    for (const name of REQUEST) {
      expect([name, serviceOf(name).props.DesiredCount]).toEqual([name, 2]);
      const t = targetOf(name)!;
      expect([name, t.props.MinCapacity, t.props.MaxCapacity]).toEqual([name, 0, 2]);
      const actions = t.props.ScheduledActions as any[];
      expect(actions.find((a) => a.ScheduledActionName === 'Open0').ScalableTargetAction).toEqual({ MinCapacity: 2, MaxCapacity: 2 });
      expect(policiesOf(name)).toEqual([]);
    }
  });

  test('scheduled agents, the leaf, the gateway and the collector: one task, no scaling at all', () => {
    for (const name of [...SCHEDULED, 'nats-leaf', 'boundary-gateway', 'otel-collector']) {
      expect([name, serviceOf(name).props.DesiredCount, targetOf(name)]).toEqual([name, 1, undefined]);
    }
    // Nothing in the plane can scale past the floor: every target's maximum is at most 2 (request agents), event agents 1.
    expect(byType(plane, 'AWS::ApplicationAutoScaling::ScalableTarget').every((t) => t.props.MaxCapacity <= 2)).toBe(true);
    expect(byType(plane, 'AWS::ApplicationAutoScaling::ScalingPolicy')).toHaveLength(2 * EVENT.length);
  });

  test('the metric scaled on is the one the gateway writes', () => {
    expect([BACKLOG_NAMESPACE, GATEWAY_METRIC]).toEqual([PLANE_METRICS_NAMESPACE, BACKLOG_METRIC]);
  });
});

/** A dashboard's body as JSON, each CloudFormation token in it replaced by `<token N>` (kept in `tokens`). */
function dashboardBody(plane: SynthesizedPlane): { widgets: any[]; tokens: any[] } {
  const [dashboard] = byType(plane, 'AWS::CloudWatch::Dashboard');
  const body = dashboard.props.DashboardBody;
  const parts: unknown[] = typeof body === 'string' ? [body] : body['Fn::Join'][1];
  const tokens: any[] = [];
  const text = parts.map((x) => typeof x === 'string' ? x : `<token ${tokens.push(x) - 1}>`).join('');
  return { widgets: JSON.parse(text).widgets, tokens };
}
const widget = (widgets: any[], title: RegExp) => widgets.filter((w) => title.test(w.properties?.title ?? ''));

// What the gateway's backlog reporter writes, read from one of its EMF lines: namespace, metric name, dimension.
const emitted = JSON.parse(backlogEmf('some-agent', 3, 0))._aws.CloudWatchMetrics[0] as { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] };

describe('dashboard: the agents\' backlog', () => {
  test('the reporter writes one metric with one dimension (what the widget graphs per agent)', () => {
    expect(emitted.Dimensions).toHaveLength(1);
    expect(emitted.Dimensions[0]).toHaveLength(1);
    expect(emitted.Metrics).toHaveLength(1);
  });

  test('without scaling: every agent\'s backlog, by the reporter\'s namespace, name and dimension; no running-tasks widget', () => {
    const { widgets } = dashboardBody(synthCustomerPlane());
    const [backlog] = widget(widgets, /backlog/i);
    expect(widget(widgets, /backlog/i)).toHaveLength(1);
    expect(backlog.width).toBe(24);
    const metrics = backlog.properties.metrics as any[];
    expect(metrics.map((m) => m.slice(0, 4))).toEqual(AGENT_CATALOG.map((a) => [emitted.Namespace, emitted.Metrics[0].Name, emitted.Dimensions[0][0], a.name]));
    for (const m of metrics) expect(m[4]).toMatchObject({ label: m[3], stat: 'Maximum', period: 60 });
  });

  test('with scaling: the backlog of every agent, and the running tasks (Container Insights) of each event agent\'s service', () => {
    const { widgets, tokens } = dashboardBody(plane);
    const [backlog] = widget(widgets, /^Agent backlog/);
    expect(backlog.properties.metrics.map((m: any[]) => m.slice(0, 4))).toEqual(AGENT_CATALOG.map((a) => [emitted.Namespace, emitted.Metrics[0].Name, emitted.Dimensions[0][0], a.name]));
    const [running] = widget(widgets, /^Running tasks of the agents that scale on their backlog/);
    const metrics = running.properties.metrics as any[];
    expect(metrics.map((m) => [m[0], m[1], m[2], m[3], m[4], m[6].label])).toEqual(EVENT.map((name) => ['ECS/ContainerInsights', 'RunningTaskCount', 'ClusterName', `byoc-${plane.stack.plane.settings.customerId}`, 'ServiceName', name]));
    // AWS's own namespace and names (restated: they are AWS's, not ours). The plane's cluster has Container Insights on: the metric exists.
    expect(byType(plane, 'AWS::ECS::Cluster')[0].props.ClusterSettings).toEqual([{ Name: 'containerInsights', Value: 'enabled' }]);
    // Each ServiceName is the agent's own service: the nested stack's output of that service's name.
    for (const m of metrics) {
      const token = tokens[Number(/^<token (\d+)>$/.exec(m[5])![1])];
      const [stackId, output] = token['Fn::GetAtt'];
      expect(output).toMatch(/^Outputs\./);
      const key = output.slice('Outputs.'.length);
      expect(byType(plane, 'AWS::CloudFormation::Stack').map((s) => s.id)).toContain(stackId);
      const [value] = Object.values<any>(plane.templates).filter((t) => t.Outputs?.[key]).map((t) => t.Outputs[key].Value);
      expect([m[6].label, value]).toEqual([m[6].label, { 'Fn::GetAtt': [serviceOf(m[6].label).id, 'Name'] }]);
    }
  });
});

describe('scaling settings', () => {
  test('defaults: 15 idle minutes, a floor of one', () => {
    expect(resolveScaling('scaling', {})).toEqual({ idleMinutes: 15, requestFloor: 1 });
    expect(resolveScaling('scaling', { idleMinutes: 1, requestFloor: 0 })).toEqual({ idleMinutes: 1, requestFloor: 0 });
  });

  test.each([
    [{ idleMinutes: 0 }, /scaling\.idleMinutes.*0 is out of range.*1 to 1440/],
    [{ idleMinutes: 2.5 }, /scaling\.idleMinutes/],
    [{ requestFloor: 11 }, /scaling\.requestFloor.*11 is out of range.*0 to 10/],
    [{ requestFloor: -1 }, /scaling\.requestFloor/],
  ])('props %j refused', (scaling, message) => {
    expect(() => resolveScaling('scaling', scaling as any)).toThrow(PropError);
    expect(() => resolveScaling('scaling', scaling as any)).toThrow(message);
  });

  test('in a configuration file, a bad scaling is a setting error naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-scaling-'));
    try {
      const config = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8'));
      config.vendorHub.caCertificateFile = path.join(projectRoot(), 'config', config.vendorHub.caCertificateFile);
      const run = (scaling: unknown) => {
        const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.json`);
        fs.writeFileSync(file, JSON.stringify({ ...config, scaling }));
        try {
          buildCustomerPlaneApp(new App({ outdir: path.join(dir, 'out'), context: { config: file } }));
        } catch (e) {
          return (e as Error).message;
        }
        return 'no error';
      };
      expect(run({ idleMinutes: 0 })).toMatch(/^Invalid setting 'scaling\.idleMinutes'/);
      expect(run({ requestFloor: 11 })).toMatch(/^Invalid setting 'scaling\.requestFloor'/);
      expect(run({ idle: 5 })).toMatch(/^Invalid setting 'scaling/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
