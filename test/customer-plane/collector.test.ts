import { COLLECTOR_ENV, collectorConfig, OTLP_HTTP_PORT } from '../../customer-plane/collector-config';
import { customerPlaneStackProps, CustomerPlaneConfig } from '../../customer-plane/config';
import { CustomerPlaneStack } from '../../customer-plane/stack';
import { acknowledgementsOf } from '../../lib/compliance';
import { createApp } from '../../lib/app';
import { allResources, exampleProps, SynthesizedPlane, synthCustomerPlane } from '../synth';
import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../../lib/app';

/**
 * The collector in the synthesized plane: where traces and metrics go (X-Ray and CloudWatch through the VPC's
 * endpoints, or the customer's own OTLP endpoint), with exactly the permissions that needs, and nothing toward
 * the vendor.
 */

const FAMILY = 'byoc-example-otel-collector';
const OWN_ENDPOINT = 'https://otlp.observability.example.internal:4318';

const byType = (plane: SynthesizedPlane, type: string) => allResources(plane.templates).filter((r) => r.type === type);
const taskOf = (plane: SynthesizedPlane) => byType(plane, 'AWS::ECS::TaskDefinition').find((r) => r.props.Family === FAMILY)!;
const containerOf = (plane: SynthesizedPlane) => taskOf(plane).props.ContainerDefinitions[0];
const envOf = (plane: SynthesizedPlane) => Object.fromEntries((containerOf(plane).Environment ?? []).map((e: any) => [e.Name, e.Value]));
/** The logical ID of the collector's task role, from its task definition. */
const taskRoleId = (plane: SynthesizedPlane) => taskOf(plane).props.TaskRoleArn['Fn::GetAtt'][0];
/** The statements of every identity policy attached to the collector's task role. */
function taskRoleStatements(plane: SynthesizedPlane): any[] {
  const role = taskRoleId(plane);
  return [...byType(plane, 'AWS::IAM::ManagedPolicy'), ...byType(plane, 'AWS::IAM::Policy')]
    .filter((p) => JSON.stringify(p.props.Roles ?? []).includes(`"${role}"`))
    .flatMap((p) => p.props.PolicyDocument.Statement);
}
const collectorGroupId = (plane: SynthesizedPlane) => byType(plane, 'AWS::EC2::SecurityGroup').find((r) => /^OpenTelemetry collector/.test(r.props.GroupDescription))!.id;
/** Every egress rule of the collector's security group (inline and separate resources). */
function collectorEgress(plane: SynthesizedPlane): any[] {
  const id = collectorGroupId(plane);
  const sg = byType(plane, 'AWS::EC2::SecurityGroup').find((r) => r.id === id)!;
  return [...(sg.props.SecurityGroupEgress ?? []), ...byType(plane, 'AWS::EC2::SecurityGroupEgress').filter((r) => JSON.stringify(r.props.GroupId).includes(id)).map((r) => r.props)];
}

describe('default: traces to X-Ray, metrics to CloudWatch, through the VPC endpoints', () => {
  let plane: SynthesizedPlane;
  beforeAll(() => { plane = synthCustomerPlane(); });

  test('the collector runs the generated configuration, with the region and its metrics log group', () => {
    const logGroup = byType(plane, 'AWS::Logs::LogGroup').find((r) => /^PlaneAgentMetricsLogs[0-9A-F]{8}$/.test(r.id))!;
    expect(containerOf(plane).Command).toEqual(['--config=env:BYOC_OTEL_CONFIG']);
    expect(envOf(plane)).toEqual({
      BYOC_OTEL_CONFIG: collectorConfig(),
      [COLLECTOR_ENV.region]: { Ref: 'AWS::Region' },
      [COLLECTOR_ENV.metricsLogGroup]: { Ref: logGroup.id },
    });
  });

  test('the metrics log group is encrypted with the plane\'s key, with the plane\'s retention, removed with the plane', () => {
    const logGroup = byType(plane, 'AWS::Logs::LogGroup').find((r) => /^PlaneAgentMetricsLogs[0-9A-F]{8}$/.test(r.id))!;
    expect(logGroup.props.KmsKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^PlaneKey/), 'Arn'] });
    expect(logGroup.props.RetentionInDays).toBe(365);
    expect(logGroup.resource.DeletionPolicy).toBe('Delete');
  });

  test('the task role may exactly write to that log group and put trace segments: nothing else, nothing more', () => {
    const logGroup = byType(plane, 'AWS::Logs::LogGroup').find((r) => /^PlaneAgentMetricsLogs[0-9A-F]{8}$/.test(r.id))!;
    const statements = taskRoleStatements(plane);
    expect(statements).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logGroup.id, 'Arn'] } },
      { Effect: 'Allow', Action: 'xray:PutTraceSegments', Resource: '*' },
    ]);
    // Not even the calls the exporters make only when they are missing something: no log group creation,
    // no retention or tags, no PutMetricData (EMF needs none), no X-Ray telemetry records.
    const actions = JSON.stringify(statements);
    for (const a of ['logs:CreateLogGroup', 'logs:PutRetentionPolicy', 'logs:TagResource', 'cloudwatch:', 'xray:PutTelemetryRecords', 'xray:Get']) expect(actions).not.toContain(a);
  });

  test('the one acknowledgement: IAM5 on Resource * of the task role\'s policy, for xray:PutTraceSegments', () => {
    const mine = acknowledgementsOf(plane.app).filter((a) => a.path.includes('/Collector/'));
    expect(mine).toEqual(expect.arrayContaining([
      { path: 'ByocCustomerPlane/Plane/Collector/TaskRole/Permissions', finding: 'AwsSolutions-IAM5[Resource::*]', reason: expect.stringContaining('xray:PutTraceSegments') },
    ]));
    expect(mine.filter((a) => a.path.includes('/Collector/TaskRole'))).toHaveLength(1);
  });

  test('an X-Ray interface endpoint with private DNS, behind the endpoint security group, admitting this account only', () => {
    const xray = byType(plane, 'AWS::EC2::VPCEndpoint').filter((r) => JSON.stringify(r.props.ServiceName).includes('.xray'));
    expect(xray).toHaveLength(1);
    expect(xray[0].props).toMatchObject({ VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
    expect(JSON.stringify(xray[0].props.SecurityGroupIds)).toContain('EndpointSecurityGroup');
    expect(xray[0].props.PolicyDocument.Statement).toEqual([expect.objectContaining({
      Effect: 'Allow', Principal: { AWS: '*' }, Condition: { StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } },
    })]);
    // CloudWatch Logs (where awsemf writes) has its endpoint too.
    expect(byType(plane, 'AWS::EC2::VPCEndpoint').filter((r) => JSON.stringify(r.props.ServiceName).includes('.logs'))).toHaveLength(1);
  });

  test('the collector reaches only the VPC endpoints and S3, never 0.0.0.0/0; only agents reach it, on OTLP/HTTP', () => {
    const egress = collectorEgress(plane);
    expect(egress.filter((e) => e.CidrIp === '0.0.0.0/0' || e.CidrIpv6 !== undefined)).toEqual([]);
    expect(egress.map((e) => [e.FromPort, e.ToPort, e.DestinationSecurityGroupId ? 'sg' : e.DestinationPrefixListId ? 'prefix-list' : e.CidrIp]).sort())
      .toEqual([[443, 443, 'prefix-list'], [443, 443, 'sg']]);
    expect(JSON.stringify(egress.find((e) => e.DestinationSecurityGroupId).DestinationSecurityGroupId)).toContain('EndpointSecurityGroup');
    const ingress = byType(plane, 'AWS::EC2::SecurityGroupIngress').filter((r) => JSON.stringify(r.props.GroupId).includes(collectorGroupId(plane))).map((r) => r.props);
    expect(ingress).toEqual([expect.objectContaining({ FromPort: OTLP_HTTP_PORT, ToPort: OTLP_HTTP_PORT, Description: 'OTLP traces and metrics' })]);
    expect(JSON.stringify(ingress[0].SourceSecurityGroupId)).toContain('AgentSecurityGroup');
  });

  test('nothing of the collector names the vendor', () => {
    const hub = exampleProps().vendorHub.host;
    expect(JSON.stringify(taskOf(plane))).not.toContain(hub.split('.').slice(-2).join('.'));
    expect(collectorConfig()).not.toMatch(/vpce-svc|hub\.|vendor/);
  });
});

describe('telemetry.otlpEndpoint: traces and metrics to the customer\'s own endpoint', () => {
  let plane: SynthesizedPlane;
  beforeAll(() => { plane = synthCustomerPlane(exampleProps({ telemetry: { otlpEndpoint: OWN_ENDPOINT } })); });

  test('the collector runs the configuration for that endpoint, and needs no AWS permission, log group or region', () => {
    expect(envOf(plane)).toEqual({ BYOC_OTEL_CONFIG: collectorConfig({ otlpEndpoint: OWN_ENDPOINT }) });
    expect(taskRoleStatements(plane)).toEqual([]);
    expect(byType(plane, 'AWS::Logs::LogGroup').filter((r) => /^PlaneAgentMetricsLogs[0-9A-F]{8}$/.test(r.id))).toEqual([]);
    expect(acknowledgementsOf(plane.app).filter((a) => a.path.includes('/Collector/TaskRole'))).toEqual([]);
  });

  test('the collector may reach the endpoint\'s port inside the VPC only, besides the AWS endpoints and S3', () => {
    const egress = collectorEgress(plane);
    expect(egress.filter((e) => e.CidrIp === '0.0.0.0/0' || e.CidrIpv6 !== undefined)).toEqual([]);
    const own = egress.filter((e) => e.FromPort === 4318);
    expect(own).toEqual([expect.objectContaining({ IpProtocol: 'tcp', ToPort: 4318, Description: expect.stringContaining('telemetry.otlpEndpoint') })]);
    expect(own[0].CidrIp).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/Vpc/), 'CidrBlock'] });
    expect(egress).toHaveLength(3);
  });
});

describe('telemetry.otlpEndpoint is validated', () => {
  const config = (): CustomerPlaneConfig => JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8'));
  const configDir = path.join(projectRoot(), 'config');

  test.each([
    ['http://otlp.example.internal:4318'],
    ['otlp.example.internal:4318'],
    ['https://user:pw@otlp.example.internal'],
    ['https://otlp.example.internal/?token=x'],
  ])('in the configuration file: %s is an invalid setting', (url) => {
    expect(() => customerPlaneStackProps({ ...config(), telemetry: { otlpEndpoint: url } }, configDir))
      .toThrow(/^Invalid setting 'telemetry\.otlpEndpoint'.*Fix: give the https:\/\/ URL of your own OTLP\/HTTP endpoint/s);
  });

  test('in the configuration file: an unknown key under telemetry is refused', () => {
    expect(() => customerPlaneStackProps({ ...config(), telemetry: { endpoint: OWN_ENDPOINT } } as unknown as CustomerPlaneConfig, configDir))
      .toThrow(/^Invalid setting 'telemetry\.endpoint'/);
  });

  test.each([
    ['http://otlp.example.internal:4318', /is not https/],
    ['https://otlp.example.internal/v1/traces', /signal's path/],
    ['https://user:pw@otlp.example.internal', /carries credentials/],
  ])('as a construct prop: %s fails at synth naming the prop and the fix', (url, problem) => {
    const app = createApp({ outdir: fs.mkdtempSync(path.join(require('os').tmpdir(), 'byoc-synth-')) });
    try {
      expect(() => new CustomerPlaneStack(app, 'Plane', exampleProps({ telemetry: { otlpEndpoint: url } })))
        .toThrow(new RegExp(`^Invalid prop 'telemetry\\.otlpEndpoint': .*${problem.source}.*Fix: give the https://`, 's'));
    } finally {
      fs.rmSync(app.outdir, { recursive: true, force: true });
    }
  });

  test('a valid endpoint in the configuration file reaches the stack props as given', () => {
    expect(customerPlaneStackProps({ ...config(), telemetry: { otlpEndpoint: OWN_ENDPOINT } }, configDir).telemetry).toEqual({ otlpEndpoint: OWN_ENDPOINT });
  });
});
