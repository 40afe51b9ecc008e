import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { CONTROL_PLANE_STACK } from '../../bin/control-plane';
import { IngestDeployment, IngestDeploymentProps } from '../../control-plane/ingest-deployment';
import { healthCheckCommand, INGEST_ENTRY_POINT, IngestTables, TABLE_ENV, TABLE_KEYS } from '../../control-plane/ingest/settings';
import { ControlPlaneStack, ControlPlaneStackProps } from '../../control-plane/stack';
import { createApp } from '../../lib/app';
import { acknowledgementsOf, CONTROL_TOWER_PLUGIN } from '../../lib/compliance';
import { exampleVendorProps, findingsWithoutAcknowledgements, resourcesOf } from './synth';

/**
 * The ingest service's deployment, instantiated beside the control plane in its stack (as the control plane will
 * wire it), with every compliance pack and the Control Tower controls on.
 */

const IMAGE = '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/control-plane@sha256:1f3e5a7c9b1d3f5e7a9c1b3d5f7e9a1c3b5d7f9e1a3c5b7d9f1e3a5c7b9d1f3e';
const tmpdirs: string[] = [];
const tmpdir = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-ingest-cdk-')); tmpdirs.push(d); return d; };
afterAll(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

type IngestOverrides = Partial<IngestDeploymentProps> & { withRegistryKey?: boolean };

function build(app: App, vendor: ControlPlaneStackProps, overrides: IngestOverrides = {}): { stack: ControlPlaneStack; ingest: IngestDeployment } {
  const stack = new ControlPlaneStack(app, CONTROL_PLANE_STACK, vendor);
  const { withRegistryKey, ...rest } = overrides;
  const settings = stack.plane.settings;
  const ingest = new IngestDeployment(stack, 'Ingest', {
    hub: stack.plane.hub!,
    hubCaCertificatePem: settings.hub!.tls.caCertificatePem,
    image: IMAGE,
    retainData: settings.retainData,
    logRetention: settings.logRetention,
    ...(withRegistryKey ? { registryKey: kms.Key.fromKeyArn(stack, 'RegistryKey', 'arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d') } : {}),
    ...rest,
  });
  return { stack, ingest };
}

interface Synthesized { outdir: string; json: any; ingest: IngestDeployment; stack: ControlPlaneStack }
function synth(vendor: ControlPlaneStackProps = exampleVendorProps(), overrides: IngestOverrides = {}): Synthesized {
  const outdir = tmpdir();
  const app = createApp({ outdir });
  const { stack, ingest } = build(app, vendor, overrides);
  const assembly = app.synth();
  return { outdir, stack, ingest, json: JSON.parse(fs.readFileSync(path.join(assembly.directory, stack.templateFile), 'utf8')) };
}

const idOf = (s: Synthesized, construct: { node: { defaultChild?: any } } | any) => s.stack.resolve((construct.node.defaultChild ?? construct).logicalId);

let example: Synthesized;
let transient: Synthesized;
beforeAll(() => {
  example = synth();
  transient = synth(exampleVendorProps({ retainData: false, retainReleases: false }), { withRegistryKey: true, refreshInterval: Duration.seconds(20), desiredCount: 2 });
});

const taskOf = (s: Synthesized) => s.json.Resources[idOf(s, s.ingest.service.taskDefinition)].Properties;
/** A role's statements, each action and resource list sorted (CDK orders them its own way). */
const statementsOf = (s: Synthesized, role: any) => {
  const [, policy] = resourcesOf(s.json, 'AWS::IAM::ManagedPolicy').find(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === idOf(s, role)))!;
  const sorted = (v: any) => (Array.isArray(v) ? [...v].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) : v);
  return (policy.Properties.PolicyDocument.Statement as any[]).map((st) => ({ ...st, Action: sorted(st.Action), Resource: sorted(st.Resource) }));
};
const sortedJson = (v: any[]) => [...v].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('tables', () => {
  test('one per role of the store, with its key schema, on demand, point-in-time recovery, encrypted with the ingest key', () => {
    const key = idOf(example, example.ingest.key);
    for (const role of Object.keys(TABLE_KEYS) as (keyof IngestTables)[]) {
      const table = example.json.Resources[idOf(example, example.ingest.tables[role])];
      expect(table.Type).toBe('AWS::DynamoDB::Table');
      expect(table.Properties.KeySchema).toEqual([{ AttributeName: TABLE_KEYS[role].partition, KeyType: 'HASH' }, { AttributeName: TABLE_KEYS[role].sort, KeyType: 'RANGE' }]);
      expect(table.Properties.AttributeDefinitions).toEqual([{ AttributeName: TABLE_KEYS[role].partition, AttributeType: 'S' }, { AttributeName: TABLE_KEYS[role].sort, AttributeType: 'S' }]);
      expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [key, 'Arn'] } });
    }
    expect(resourcesOf(example.json, 'AWS::DynamoDB::Table')).toHaveLength(5);
    expect(example.json.Resources[key].Properties.EnableKeyRotation).toBe(true);
  });

  test('retainData: tables, key and logs kept, deletion protection on, daily and monthly recovery points in a retained vault; off: all deleted with the stack', () => {
    const tables = (s: Synthesized) => Object.values(s.ingest.tables).map((t) => s.json.Resources[idOf(s, t)]);
    for (const t of tables(example)) {
      expect([t.DeletionPolicy, t.Properties.DeletionProtectionEnabled]).toEqual(['Retain', true]);
    }
    expect(example.json.Resources[idOf(example, example.ingest.key)].DeletionPolicy).toBe('Retain');
    const tableIds = Object.values(example.ingest.tables).map((t) => idOf(example, t)).sort();
    const selections = resourcesOf(example.json, 'AWS::Backup::BackupSelection').map(([, sel]) => sel.Properties.BackupSelection.Resources.map((r: any) => r['Fn::GetAtt']?.[0]).sort());
    expect(selections).toContainEqual(tableIds);
    const vault = resourcesOf(example.json, 'AWS::Backup::BackupVault').find(([, v]) => v.Properties.BackupVaultName === 'byoc-ingest')![1];
    expect(vault.DeletionPolicy).toBe('Retain');

    for (const t of tables(transient)) {
      expect(t.DeletionPolicy).toBe('Delete');
      expect(t.Properties.DeletionProtectionEnabled).toBe(false);
    }
    expect(transient.json.Resources[idOf(transient, transient.ingest.key)].DeletionPolicy).toBe('Delete');
    expect(resourcesOf(transient.json, 'AWS::Backup::BackupVault').filter(([, v]) => v.Properties.BackupVaultName === 'byoc-ingest')).toEqual([]);
  });
});

describe('the service', () => {
  test('ARM64 Fargate, read-only root, unprivileged user, every capability dropped, image by digest, the ingest bundle, health checked on loopback', () => {
    const task = taskOf(example);
    expect(task.RuntimePlatform).toEqual({ CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
    expect(task.RequiresCompatibilities).toEqual(['FARGATE']);
    const [container] = task.ContainerDefinitions;
    expect(container).toMatchObject({
      ReadonlyRootFilesystem: true, User: '10001:10001', Privileged: false,
      LinuxParameters: { Capabilities: { Drop: ['ALL'] }, InitProcessEnabled: true },
      Command: ['node', INGEST_ENTRY_POINT],
      HealthCheck: { Command: healthCheckCommand(), Interval: 30, Timeout: 5, Retries: 3, StartPeriod: 60 },
    });
    expect(container.LinuxParameters.Capabilities.Add).toBeUndefined();
    expect(JSON.stringify(container.Image)).toContain('@sha256:1f3e5a7c9b1d3f5e7a9c1b3d5f7e9a1c3b5d7f9e1a3c5b7d9f1e3a5c7b9d1f3e');
    expect(healthCheckCommand()[3]).toContain('host:\'127.0.0.1\',port:8081,path:\'/healthz\'');
    // Its logs: its own group, encrypted with the ingest key, kept the configured time.
    const logGroup = example.json.Resources[container.LogConfiguration.Options['awslogs-group'].Ref];
    expect(logGroup.Properties).toMatchObject({ RetentionInDays: 365, KmsKeyId: { 'Fn::GetAtt': [idOf(example, example.ingest.key), 'Arn'] } });
    const service = example.json.Resources[idOf(example, example.ingest.service.service)].Properties;
    expect(service).toMatchObject({ DesiredCount: 1, LaunchType: 'FARGATE', NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED', SecurityGroups: [{ 'Fn::GetAtt': [idOf(example, example.ingest.securityGroup), 'GroupId'] }] } } });
    expect(service.Cluster).toEqual({ Ref: idOf(example, example.stack.plane.hub!.cluster) });
    expect(taskOf(transient).ContainerDefinitions[0].Environment.find((e: any) => e.Name === 'BYOC_INGEST_REFRESH_SECONDS').Value).toBe('20');
    expect(transient.json.Resources[idOf(transient, transient.ingest.service.service)].Properties.DesiredCount).toBe(2);
  });

  test('its configuration: every hub node\'s client port over TLS with the vendor CA, the tables by name, the DynamoDB endpoint\'s own name; no secret', () => {
    const env = Object.fromEntries(taskOf(example).ContainerDefinitions[0].Environment.map((e: any) => [e.Name, e.Value]));
    expect(env.BYOC_INGEST_HUB_URLS).toBe('tls://node-0.hub.byoc.vendor.example:4222,tls://node-1.hub.byoc.vendor.example:4222,tls://node-2.hub.byoc.vendor.example:4222');
    expect(env.BYOC_INGEST_HUB_CA).toBe(example.stack.plane.settings.hub!.tls.caCertificatePem);
    for (const role of Object.keys(TABLE_ENV) as (keyof IngestTables)[]) expect(env[TABLE_ENV[role]]).toEqual({ Ref: idOf(example, example.ingest.tables[role]) });
    expect(env.BYOC_INGEST_DYNAMODB_ENDPOINT).toEqual({ 'Fn::Join': ['', ['https://', { 'Fn::Select': [1, { 'Fn::Split': [':', { 'Fn::Select': [0, { 'Fn::GetAtt': [idOf(example, example.ingest.dynamoDbEndpoint), 'DnsEntries'] }] }] }] }]] });
    expect(env).toMatchObject({ BYOC_INGEST_REGISTRY_PREFIX: 'byoc/customers/', BYOC_INGEST_REFRESH_SECONDS: '60', BYOC_INGEST_HEALTH_PORT: '8081', BYOC_INGEST_REGION: { Ref: 'AWS::Region' } });
    expect(taskOf(example).ContainerDefinitions[0].Secrets).toBeUndefined();
  });

  test('task role: list the registry, read only the customers\' ingest secrets, write only the tables with the actions the store uses, scan only the learning pool, DynamoDB uses the key; nothing else', () => {
    const table = (role: keyof IngestTables) => ({ 'Fn::GetAtt': [idOf(example, example.ingest.tables[role]), 'Arn'] });
    const statements = statementsOf(example, example.ingest.service.taskRole);
    expect(statements).toEqual([
      { Effect: 'Allow', Action: 'secretsmanager:ListSecrets', Resource: '*' },
      { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:byoc/customers/*/ingest-??????']] } },
      { Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: sortedJson([table('usage'), table('workflow'), table('learningPool'), table('rejections')]) },
      { Effect: 'Allow', Action: 'dynamodb:BatchWriteItem', Resource: table('metrics') },
      // The learning-pool publisher reads the pool to offer it back.
      { Effect: 'Allow', Action: 'dynamodb:Scan', Resource: table('learningPool') },
      { Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: table('rejections') },
      {
        Effect: 'Allow', Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'], Resource: { 'Fn::GetAtt': [idOf(example, example.ingest.key), 'Arn'] },
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['dynamodb.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
      },
    ]);
    // With a registry key: decrypt with it, through Secrets Manager only.
    const withKey = statementsOf(transient, transient.ingest.service.taskRole);
    expect(withKey).toHaveLength(8);
    expect(withKey[2]).toEqual({
      Effect: 'Allow', Action: 'kms:Decrypt', Resource: 'arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d',
      Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
    });
    // The execution role pulls the image and writes the logs, nothing of the registry or the tables.
    const execution = JSON.stringify(statementsOf(example, example.ingest.service.executionRole));
    expect(execution).toContain('ecr:BatchGetImage');
    expect(execution).toContain('repository/byoc/control-plane');
    expect(execution).not.toMatch(/secretsmanager|dynamodb/);
  });

  test('network: out only to the hub nodes\' client port and the VPC endpoints (S3 for image layers), nothing in; the hub admits it on 4222', () => {
    const sg = idOf(example, example.ingest.securityGroup);
    const props = example.json.Resources[sg].Properties;
    expect(props.SecurityGroupIngress).toBeUndefined();
    const hub = example.stack.plane.hub!;
    const nodeSg = idOf(example, hub.connections.securityGroups[0]);
    const endpointSg = idOf(example, hub.network.endpointSecurityGroup);
    const egress = [
      ...(props.SecurityGroupEgress ?? []).map((r: any) => r),
      ...resourcesOf(example.json, 'AWS::EC2::SecurityGroupEgress').filter(([, r]) => r.Properties.GroupId['Fn::GetAtt']?.[0] === sg).map(([, r]) => r.Properties),
    ].map((r: any) => [r.FromPort, r.ToPort, r.DestinationSecurityGroupId?.['Fn::GetAtt']?.[0] ?? r.DestinationPrefixListId ?? r.CidrIp]);
    expect(egress.map((e) => JSON.stringify(e)).sort()).toEqual([
      [4222, 4222, nodeSg], [443, 443, endpointSg],
      [443, 443, example.stack.resolve(hub.network.s3PrefixListId)],
    ].map((e) => JSON.stringify(e)).sort());
    const ingressFrom = (group: string) => resourcesOf(example.json, 'AWS::EC2::SecurityGroupIngress')
      .filter(([, r]) => r.Properties.SourceSecurityGroupId?.['Fn::GetAtt']?.[0] === sg && r.Properties.GroupId['Fn::GetAtt'][0] === group).map(([, r]) => [r.Properties.FromPort, r.Properties.ToPort]);
    expect(ingressFrom(nodeSg)).toEqual([[4222, 4222]]);
    expect(ingressFrom(endpointSg)).toEqual([[443, 443]]);
  });

  test('the DynamoDB interface endpoint: in the hub\'s isolated subnets, behind the endpoints\' security group, no private DNS, this account\'s principals only', () => {
    const endpoint = example.json.Resources[idOf(example, example.ingest.dynamoDbEndpoint)].Properties;
    expect(endpoint).toMatchObject({
      VpcEndpointType: 'Interface', PrivateDnsEnabled: false,
      ServiceName: 'com.amazonaws.eu-west-1.dynamodb',
      SecurityGroupIds: [{ 'Fn::GetAtt': [idOf(example, example.stack.plane.hub!.network.endpointSecurityGroup), 'GroupId'] }],
    });
    expect(endpoint.SubnetIds).toHaveLength(3);
    expect(endpoint.PolicyDocument.Statement).toEqual([{ Effect: 'Allow', Principal: { AWS: '*' }, Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:PrincipalAccount': { Ref: 'AWS::AccountId' } } } }]);
  });
});

describe('invalid props name the prop and the fix', () => {
  const attempt = (overrides: IngestOverrides) => () => build(createApp({ outdir: tmpdir(), compliancePacks: false }), exampleVendorProps(), overrides);
  test.each<[string, IngestOverrides, RegExp]>([
    ['a CA that is not a certificate', { hubCaCertificatePem: 'nope' }, /^Invalid prop 'hubCaCertificatePem': is not a PEM certificate\. Fix: give the vendor CA's certificate/],
    ['an image by tag', { image: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/control-plane:latest' }, /^Invalid prop 'image': .* names an image by tag/],
    ['a refresh interval of 0', { refreshInterval: Duration.seconds(0) }, /^Invalid prop 'refreshInterval': 0 seconds is out of range/],
    ['9 tasks', { desiredCount: 9 }, /^Invalid prop 'desiredCount': 9 is out of range\. Fix: use 1 to 4/],
    ['a memory size the CPU does not take', { cpu: 512, memoryMiB: 512 }, /^Invalid prop 'memoryMiB': 512 MiB is not a Fargate size with cpu 512\. Fix: use one of 1024, 2048, 3072, 4096/],
  ])('%s', (_name, overrides, message) => {
    expect(attempt(overrides)).toThrow(message);
  });
});


const covered = (finding: string, acks: { path: string; finding: string }[]) => {
  const [rule, at] = finding.split(' @ ');
  return acks.some((a) => a.finding === rule && (at === a.path || at.startsWith(`${a.path}/`)));
};

/** What the ingest deployment acknowledges in every variant, and only these. */
const ALWAYS = [
  'AwsSolutions-ECS2 @ Service/Task/Resource',
  'AwsSolutions-IAM5[Resource::*] @ Service/ExecutionRole/Permissions',
  'AwsSolutions-IAM5[Resource::*] @ Service/TaskRole/Permissions',
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:byoc/customers/*/ingest-??????] @ Service/TaskRole/Permissions',
];
const TABLES = ['LearningPoolTable', 'MetricsTable', 'RejectionsTable', 'UsageTable', 'WorkflowTable'];

describe.each<[string, () => ControlPlaneStackProps, IngestOverrides, string[]]>([
  ['retainData (the example)', () => exampleVendorProps(), {},
    [...ALWAYS, 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup] @ BackupPlan/Tables/Role/Resource']],
  ['retainData off, a registry key', () => exampleVendorProps({ retainData: false, retainReleases: false }), { withRegistryKey: true },
    [...ALWAYS, ...['HIPAA.Security', 'NIST.800.53.R5'].flatMap((pack) => TABLES.map((t) => `${pack}-DynamoDBInBackupPlan @ ${t}/Resource`))]],
])('compliance with the ingest deployment beside the control plane (%s)', (_name, vendor, overrides, expected) => {
  test('the 4 cdk-nag packs and Control Tower: every finding acknowledged, every acknowledgement of the ingest deployment needed, on one resource, none for Control Tower', () => {
    const { findings, app } = findingsWithoutAcknowledgements((a) => build(a, vendor(), overrides));
    const acks = acknowledgementsOf(app);
    expect(findings.filter((f) => !covered(f, acks))).toEqual([]);
    const ours = acks.filter((a) => a.path.startsWith(`${CONTROL_PLANE_STACK}/Ingest/`));
    expect(ours.filter((a) => !findings.some((f) => covered(f, [a])))).toEqual([]);
    expect(ours.filter((a) => a.finding.startsWith(`${CONTROL_TOWER_PLUGIN}::`))).toEqual([]);
    for (const a of ours) expect(a.reason.length).toBeGreaterThanOrEqual(40);
    // What the ingest deployment acknowledges, and nothing else.
    expect(ours.map((a) => `${a.finding} @ ${a.path.slice(`${CONTROL_PLANE_STACK}/Ingest/`.length)}`).sort()).toEqual([...expected].sort());
  });

  test('cfn-lint passes', () => {
    const s = synth(vendor(), overrides);
    const files = fs.readdirSync(s.outdir).filter((f) => f.endsWith('.template.json')).map((f) => path.join(s.outdir, f));
    const run = spawnSync('cfn-lint', ['--format', 'json', '--', ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (run.error) throw new Error(`cfn-lint could not run (${run.error.message}): install it with 'pip install cfn-lint'`);
    const findings = JSON.parse(run.stdout || '[]') as { Rule: { Id: string }; Level: string; Message: string }[];
    expect(findings.filter((f) => f.Level === 'Error' || f.Rule.Id !== 'W3005').map((f) => `${f.Rule.Id}: ${f.Message}`)).toEqual([]);
  });
});
