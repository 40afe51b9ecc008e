import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { AGENT_CATALOG } from '../../agents/catalog';
import { COLLECTOR_HEALTH_PORT } from '../../customer-plane/collector-config';
import { NATS_CLIENT_PORT } from '../../customer-plane/link';
import {
  connectedToPortScript, COUNTED_LOG_LINES, listeningOnPortCommand, PLANE_METRICS, PLANE_METRICS_NAMESPACE, procNetPort, rdsMaxConnections, rdsMemoryGiB,
} from '../../customer-plane/operations';
import { resolveProps } from '../../customer-plane/props';
import { CustomerPlaneStack } from '../../customer-plane/stack';
import { App } from 'aws-cdk-lib';
import { projectRoot } from '../../lib/app';
import { allResources, exampleProps, SynthesizedPlane, synthCustomerPlane } from '../synth';

/**
 * Health checks, alarms and the dashboard of the synthesized customer plane (one synth for the file), and the
 * health commands run for real against sockets of this machine.
 */

const byType = (plane: SynthesizedPlane, type: string) => allResources(plane.templates).filter((r) => r.type === type);
const containerOf = (r: { props: any }) => r.props.ContainerDefinitions[0];
const CUSTOMER = 'example';
const ALARM_EMAIL = 'ops@example.com';
const CUSTOMER_TOPIC = 'arn:aws:sns:eu-west-1:111122223333:customer-pager';

let plane: SynthesizedPlane;
beforeAll(() => { plane = synthCustomerPlane(exampleProps({ alarms: { email: ALARM_EMAIL, topicArn: CUSTOMER_TOPIC } })); });

describe('health checks', () => {
  test('every task definition of the plane has a container health check', () => {
    const tasks = byType(plane, 'AWS::ECS::TaskDefinition');
    expect(tasks).toHaveLength(AGENT_CATALOG.length + 3);
    for (const t of tasks) expect([t.props.Family, containerOf(t).HealthCheck?.Command?.length > 0]).toEqual([t.props.Family, true]);
  });

  test('agents and the gateway: node checks for an established connection to the leaf\'s port; replaced after 5 minutes without', () => {
    const agentsAndGateway = byType(plane, 'AWS::ECS::TaskDefinition').filter((t) => !/(nats-leaf|otel-collector)$/.test(t.props.Family));
    expect(agentsAndGateway).toHaveLength(AGENT_CATALOG.length + 1);
    for (const t of agentsAndGateway) {
      expect(containerOf(t).HealthCheck).toEqual({
        Command: ['CMD', 'node', '-e', connectedToPortScript(NATS_CLIENT_PORT)], Interval: 30, Timeout: 5, Retries: 10, StartPeriod: 120,
      });
    }
    expect(connectedToPortScript(NATS_CLIENT_PORT)).toContain(`:${procNetPort(4222)}'`);
    expect(procNetPort(4222)).toBe('107E');
  });

  test('the leaf: its client port is listening (sh, in the -alpine image); the collector: ADOT\'s /healthcheck on the loopback extension', () => {
    const family = (f: string) => byType(plane, 'AWS::ECS::TaskDefinition').find((t) => t.props.Family === `byoc-${CUSTOMER}-${f}`)!;
    expect(containerOf(family('nats-leaf')).HealthCheck).toEqual({
      Command: ['CMD-SHELL', listeningOnPortCommand(NATS_CLIENT_PORT)], Interval: 30, Timeout: 5, Retries: 3, StartPeriod: 120,
    });
    const collector = containerOf(family('otel-collector'));
    expect(collector.HealthCheck).toEqual({ Command: ['CMD', '/healthcheck', `--port=${COLLECTOR_HEALTH_PORT}`], Interval: 30, Timeout: 5, Retries: 3, StartPeriod: 30 });
    const config = JSON.parse(collector.Environment.find((e: any) => e.Name === 'BYOC_OTEL_CONFIG').Value.replace(/^#.*\n/, ''));
    expect(config.extensions).toEqual({ health_check: { endpoint: `127.0.0.1:${COLLECTOR_HEALTH_PORT}` } });
    expect(config.service.extensions).toEqual(['health_check']);
  });
});

describe('the health commands, run here against real sockets', () => {
  const sockets: net.Socket[] = [];
  let server: net.Server;
  let port: number;
  beforeEach(async () => {
    server = net.createServer((s) => { sockets.push(s); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const runNode = (p: number) => spawnSync(process.execPath, ['-e', connectedToPortScript(p)]).status;
  const runSh = (p: number) => spawnSync('sh', ['-c', listeningOnPortCommand(p)]).status;

  test('the agents\' check passes while a connection to the port is established, fails without one', async () => {
    expect(runNode(port)).toBe(1);
    const client = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    expect(runNode(port)).toBe(0);
    client.destroy();
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(runNode(port)).toBe(1);
  });

  test('the leaf\'s check passes while the port listens, fails once it is closed', async () => {
    expect(runSh(port)).toBe(0);
    await new Promise((resolve) => server.close(resolve));
    expect(runSh(port)).toBe(1);
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
});

describe('alarm topic', () => {
  test('one SNS topic, encrypted with the plane\'s key, HTTPS-only publishing, the customer\'s address subscribed', () => {
    const topics = byType(plane, 'AWS::SNS::Topic');
    expect(topics).toHaveLength(1);
    expect(topics[0].props.TopicName).toBe(`byoc-${CUSTOMER}-alarms`);
    expect(topics[0].props.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^PlaneKey/), 'Arn'] });
    const policy = byType(plane, 'AWS::SNS::TopicPolicy')[0].props.PolicyDocument.Statement;
    expect(policy).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    const subs = byType(plane, 'AWS::SNS::Subscription');
    expect(subs.map((s) => [s.props.Protocol, s.props.Endpoint])).toEqual([['email', ALARM_EMAIL]]);
  });

  test('the key lets CloudWatch alarms of this account (only) use it for the topic', () => {
    const key = byType(plane, 'AWS::KMS::Key').find((k) => /^PlaneKey/.test(k.id))!;
    const statement = key.props.KeyPolicy.Statement.find((s: any) => s.Sid === 'CloudWatchAlarmsOfThisAccountToTheAlarmTopic');
    expect(statement.Principal).toEqual({ Service: 'cloudwatch.amazonaws.com' });
    expect(statement.Action).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(statement.Condition.StringEquals).toEqual({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
  });
});

describe('alarms', () => {
  const alarms = () => byType(plane, 'AWS::CloudWatch::Alarm');
  const named = (name: string) => alarms().find((a) => a.props.AlarmName === `byoc-${CUSTOMER}-${name}`)!;
  const redisNodes = 1 + (exampleProps().cache?.replicas ?? 1);

  test('every alarm notifies the plane\'s topic and the customer\'s, into alarm and back to OK', () => {
    const expected = 3 + 3 * redisNodes + 4 + AGENT_CATALOG.length + 3;
    expect(alarms()).toHaveLength(expected);
    for (const a of alarms()) {
      for (const actions of [a.props.AlarmActions, a.props.OKActions]) {
        expect(actions).toHaveLength(2);
        expect(actions).toContain(CUSTOMER_TOPIC);
        expect(JSON.stringify(actions)).toMatch(/PlaneAlarmsTopic[0-9A-F]{8}|referencetoByocCustomerPlanePlaneAlarmsTopic/);
      }
    }
  });

  test('RDS: CPU above 80 % for 15 minutes, free storage below 10 % of the allocation, connections above 80 % of max_connections', () => {
    const dim = [{ Name: 'DBInstanceIdentifier', Value: { Ref: expect.stringMatching(/^PlaneDataPostgres/) } }];
    expect(named('database-cpu').props).toMatchObject({ Namespace: 'AWS/RDS', MetricName: 'CPUUtilization', Dimensions: dim, Threshold: 80, EvaluationPeriods: 3, Period: 300, ComparisonOperator: 'GreaterThanThreshold' });
    const gib = exampleProps().database?.allocatedStorageGiB ?? 50;
    expect(named('database-free-storage').props).toMatchObject({ MetricName: 'FreeStorageSpace', Threshold: Math.floor(gib * 1024 ** 3 * 0.1), ComparisonOperator: 'LessThanThreshold', Statistic: 'Minimum' });
    // db.t4g.medium: 4 GiB, max_connections = 4 GiB / 9531392 = 450.
    expect(rdsMemoryGiB('db.t4g.medium')).toBe(4);
    expect(rdsMaxConnections(4)).toBe(450);
    expect(named('database-connections').props).toMatchObject({ MetricName: 'DatabaseConnections', Threshold: 360, Statistic: 'Maximum' });
    expect([rdsMemoryGiB('db.r6g.2xlarge'), rdsMemoryGiB('db.m7g.large'), rdsMemoryGiB('db.t3.micro'), rdsMemoryGiB('db.x2g.large')]).toEqual([64, 8, 1, 16]);
  });

  test('Redis: engine CPU, memory and evictions on each node of the replication group', () => {
    for (let i = 1; i <= redisNodes; i++) {
      const node = [{ Name: 'CacheClusterId', Value: { 'Fn::Join': ['-', [{ Ref: expect.stringMatching(/^PlaneDataRedis/) }, `00${i}`]] } }];
      expect(named(`redis-${i}-engine-cpu`).props).toMatchObject({ Namespace: 'AWS/ElastiCache', MetricName: 'EngineCPUUtilization', Dimensions: node, Threshold: 80 });
      expect(named(`redis-${i}-memory`).props).toMatchObject({ MetricName: 'DatabaseMemoryUsagePercentage', Dimensions: node, Threshold: 80 });
      expect(named(`redis-${i}-evictions`).props).toMatchObject({ MetricName: 'Evictions', Dimensions: node, Threshold: 0, Statistic: 'Sum' });
    }
  });

  test('every ECS service: desired minus running tasks (Container Insights) above 0 for 15 minutes', () => {
    const services = ['nats-leaf', 'boundary-gateway', 'otel-collector', ...AGENT_CATALOG.map((a) => a.name)];
    for (const s of services) {
      const a = named(`${s}-tasks`);
      expect([s, a?.props.Threshold, a?.props.EvaluationPeriods, a?.props.TreatMissingData]).toEqual([s, 0, 3, 'notBreaching']);
      const [expr, desired, running] = a.props.Metrics;
      expect(expr).toMatchObject({ Expression: 'desired - running', ReturnData: true });
      for (const [m, name] of [[desired, 'DesiredTaskCount'], [running, 'RunningTaskCount']] as const) {
        expect(m.MetricStat.Metric).toMatchObject({ Namespace: 'ECS/ContainerInsights', MetricName: name });
        expect(m.MetricStat.Metric.Dimensions).toContainEqual({ Name: 'ClusterName', Value: `byoc-${CUSTOMER}` });
        expect(m.MetricStat.Metric.Dimensions).toContainEqual({ Name: 'ServiceName', Value: { 'Fn::GetAtt': [expect.any(String), 'Name'] } });
      }
    }
  });

  test('dead-lettered items, boundary rejections, audit write failures and failed crossings: counted from the workloads\' log lines, any is an alarm', () => {
    for (const [name, metric] of [['dead-lettered', PLANE_METRICS.deadLettered], ['boundary-rejections', PLANE_METRICS.rejections], ['audit-write-failures', PLANE_METRICS.auditFailures]]) {
      expect(named(name).props).toMatchObject({ Namespace: PLANE_METRICS_NAMESPACE, MetricName: metric, Statistic: 'Sum', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
    const filters = byType(plane, 'AWS::Logs::MetricFilter');
    const counting = (metric: string) => filters.filter((f) => f.props.MetricTransformations[0].MetricName === metric);
    // One filter on each agent's log group.
    expect(counting(PLANE_METRICS.deadLettered)).toHaveLength(AGENT_CATALOG.length);
    expect(counting(PLANE_METRICS.deadLettered)[0].props.FilterPattern).toBe(`{ $.msg = "${COUNTED_LOG_LINES.deadLettered}" }`);
    expect(counting(PLANE_METRICS.rejections).map((f) => [f.props.FilterPattern, f.props.MetricTransformations[0].MetricValue]).sort()).toEqual([
      [`{ $.msg = "${COUNTED_LOG_LINES.rejected}" }`, '1'],
      [`{ $.msg = "${COUNTED_LOG_LINES.rejectedSuppressed}" }`, '$.suppressed'],
    ]);
    expect(counting(PLANE_METRICS.crossingFailures).map((f) => [f.props.FilterPattern, f.props.MetricTransformations[0].MetricValue]).sort()).toEqual([
      [`{ $.msg = "${COUNTED_LOG_LINES.crossingsUnacknowledged}" }`, '$.messages'],
      [`{ $.msg = "${COUNTED_LOG_LINES.crossingsRefused}" }`, '$.messages'],
    ]);
    expect(counting(PLANE_METRICS.auditFailures).map((f) => [f.props.FilterPattern, f.props.MetricTransformations[0].MetricValue]).sort()).toEqual([
      [`{ $.msg = "${COUNTED_LOG_LINES.auditHeadFailed}" }`, '1'],
      [`{ $.msg = "${COUNTED_LOG_LINES.auditIntentsFailed}" }`, '$.messages'],
    ]);
  });

  test('the link being down: crossings failed or unacknowledged in three 5-minute periods in a row', () => {
    expect(named('link-crossing-failures').props).toMatchObject({
      Namespace: PLANE_METRICS_NAMESPACE, MetricName: PLANE_METRICS.crossingFailures, Statistic: 'Sum', Period: 300,
      Threshold: 0, EvaluationPeriods: 3, DatapointsToAlarm: 3, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'notBreaching',
    });
  });

  test('the counted lines are the ones the sources log (a reworded message would silence its alarm)', () => {
    const source = (f: string) => fs.readFileSync(path.join(projectRoot(), f), 'utf8');
    expect(source('agents/runtime/host.ts')).toContain(`'${COUNTED_LOG_LINES.deadLettered}'`);
    const gateway = source('customer-plane/boundary-gateway/gateway.ts');
    for (const line of [COUNTED_LOG_LINES.rejected, COUNTED_LOG_LINES.rejectedSuppressed, COUNTED_LOG_LINES.auditIntentsFailed, COUNTED_LOG_LINES.crossingsUnacknowledged, COUNTED_LOG_LINES.crossingsRefused]) {
      expect(gateway).toContain(`'${line}'`);
    }
    expect(source('customer-plane/boundary-gateway/main.ts')).toContain(`'${COUNTED_LOG_LINES.auditHeadFailed}'`);
  });
});

describe('dashboard', () => {
  test('one dashboard: alarm status, tasks by service, PostgreSQL, Redis, the counted lines', () => {
    const dashboards = byType(plane, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0].props.DashboardName).toBe(`byoc-${CUSTOMER}`);
    const body = JSON.stringify(dashboards[0].props.DashboardBody);
    for (const title of ['Alarms', 'Running tasks by service', 'PostgreSQL CPU and connections', 'PostgreSQL free storage', 'Redis engine CPU', 'Redis evictions']) expect(body).toContain(title);
    expect(body).toContain(`ClusterName=\\\\\\"byoc-${CUSTOMER}\\\\\\"`);
    for (const m of Object.values(PLANE_METRICS)) expect(body).toContain(m);
  });
});

describe('alarms settings are validated', () => {
  test.each([
    [{ email: 'ops at example.com' }, `Invalid prop 'alarms.email': "ops at example.com" is not an e-mail address. Fix: give the address that receives the alarms`],
    [{ topicArn: 'customer-pager' }, `Invalid prop 'alarms.topicArn': "customer-pager" is not an SNS topic ARN. Fix: give arn:aws:sns:REGION:ACCOUNT:NAME`],
    [{ email: 42 }, `Invalid prop 'alarms.email': is not a string`],
  ])('%j', (alarms, message) => {
    expect(() => resolveProps({ ...exampleProps(), alarms } as any)).toThrow(message);
  });

  test('a topic of another region is refused: alarms notify topics of their own region only', () => {
    const props = exampleProps({ env: { account: '111122223333', region: 'eu-west-1' }, alarms: { topicArn: 'arn:aws:sns:us-east-1:111122223333:pager' } });
    expect(() => new CustomerPlaneStack(new App(), 'Plane', props))
      .toThrow(`Invalid prop 'alarms.topicArn': is in us-east-1, but the plane runs in eu-west-1. Fix: give a topic in eu-west-1`);
  });
});
