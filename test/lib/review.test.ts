import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AGENT_CATALOG, DataStore } from '../../agents/catalog';
import { Assembly, readModel, review } from '../../lib/review';
import { accessOf } from '../../lib/review/report';
import { allResources, exampleProps, synthCustomerPlane } from '../synth';

/**
 * The review report's facts and answers, read from the real customer plane (one synth), and from copies of its
 * assembly changed the way a bad change would change it: the answers follow the templates.
 */
const dirs: string[] = [];
const tmp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`)); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

let assembly: string;
let templates: Record<string, any>;
let root: string;

beforeAll(() => {
  const plane = synthCustomerPlane(exampleProps(), { 'aws:cdk:enable-path-metadata': true });
  assembly = plane.outdir;
  templates = plane.templates;
  root = Object.keys(templates).find((f) => !f.includes('.nested.'))!;
});

/** The answer to one question, as text. */
function answer(r: ReturnType<typeof review>, id: string): string {
  const q = r.document.sections[0].blocks.map((b) => ('question' in b ? b.question : undefined)).find((x) => x?.id === id)!;
  return (Array.isArray(q.answer) ? q.answer : [q.answer]).map((x: any) => (typeof x === 'string' ? x : Object.values(x)[0])).join('');
}

/** A copy of the assembly with its root template changed by `edit`. */
function changed(edit: (t: any) => void): string {
  const dir = path.join(tmp('review-copy'), 'assembly');
  fs.cpSync(assembly, dir, { recursive: true });
  const file = path.join(dir, root);
  const t = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(t);
  fs.writeFileSync(file, JSON.stringify(t));
  return dir;
}

const idOf = (t: any, type: string, pathEnd: string) => Object.entries<any>(t.Resources).find(([, r]) => r.Type === type && r.Metadata?.['aws:cdk:path']?.endsWith(pathEnd))![0];

test('the model reads every template, role, rule and acknowledgement of the assembly, nested stacks included', () => {
  const m = readModel(new Assembly(assembly));
  const all = allResources(templates);
  expect(m.assembly.templates.map((t) => t.file).sort()).toEqual(Object.keys(templates).sort());
  expect(m.roles).toHaveLength(all.filter((r) => r.type === 'AWS::IAM::Role').length);
  const inline = all.filter((r) => r.type === 'AWS::EC2::SecurityGroup').reduce((n, g) => n + (g.props.SecurityGroupIngress ?? []).length + (g.props.SecurityGroupEgress ?? []).length, 0);
  expect(m.rules).toHaveLength(all.filter((r) => /^AWS::EC2::SecurityGroup(Ingress|Egress)$/.test(r.type)).length + inline);
  const acks = all.flatMap((r) => r.resource.Metadata?.cdk_nag?.rules_to_suppress ?? []);
  expect(m.acknowledgements).toHaveLength(acks.length);
  expect(m.acknowledgements.filter((a) => a.automatic)).toHaveLength(acks.filter((a: any) => a.id.startsWith('CloudFormation-Validate::')).length);
  // Every statement of every managed policy is attributed to the role the policy is attached to.
  const policyStatements = all.filter((r) => r.type === 'AWS::IAM::ManagedPolicy').reduce((n, p) => n + [].concat(p.props.PolicyDocument.Statement).length * p.props.Roles.length, 0);
  expect(m.roles.reduce((n, r) => n + r.statements.length, 0)).toBe(policyStatements);
});

test('one workload row per agent of the catalog, with its own task role, database user, secrets and NATS subjects', () => {
  const r = review(assembly);
  const agents = r.model.workloads.filter((w) => w.kind === 'agent');
  expect(agents.map((w) => w.name).sort()).toEqual(AGENT_CATALOG.map((a) => a.name).sort());
  const roles = new Set(agents.map((w) => w.taskRole?.resource));
  expect(roles.size).toBe(agents.length);
  for (const spec of AGENT_CATALOG) {
    const row = /<tr data-workload="([^"]+)"[^>]*>([\s\S]*?)<\/tr>/g;
    const html = [...r.html.matchAll(row)].find((x) => x[1] === spec.name)![2];
    if (spec.dataStores.includes(DataStore.POSTGRES)) expect(html).toContain(`dbuser:byoc-example-postgres.DbiResourceId/agent_${spec.name.replace(/-/g, '_')}`);
    else expect(html).not.toContain('rds-db:connect');
    for (const s of spec.secrets) expect(html).toContain(`byoc/example/${s}`);
    expect(html).toContain(`work.${spec.name}`);
  }
});

test('the real plane\'s answers: nothing reaches in, no internet, the vendor cannot reach the database, fingerprints can be turned off', () => {
  const r = review(assembly);
  expect(answer(r, 'q-outside')).toMatch(/^No\. Nothing in the templates accepts a connection/);
  const endpoints = allResources(templates).filter((x) => x.type === 'AWS::EC2::VPCEndpoint');
  expect(answer(r, 'q-internet')).toBe(`No. No route table has a route to an internet or NAT gateway; traffic leaves the VPC only through its ${endpoints.length} VPC endpoints: ${endpoints
    .map((e) => (typeof e.props.ServiceName === 'string' ? e.props.ServiceName : e.props.ServiceName['Fn::Join'][1][2].slice(1))).join(', ')}.`);
  expect(answer(r, 'q-vendor')).toMatch(/3 images, every one pinned by digest.*2 kinds of control message \(control, learning\)/);
  expect(answer(r, 'q-database')).toMatch(/^No network path and no IAM permission lets the vendor reach it\. 1 database \(byoc-example-postgres\) admits connections only from 2 security groups/);
  expect(answer(r, 'q-leaves')).toMatch(/only workflow, metrics, fingerprint, usage messages .*fingerprint can be turned off \(shareLearning: false; on in these templates\)/);
  expect(r.markdown.indexOf('## Questions answered first')).toBeLessThan(r.markdown.indexOf('## IAM'));
});

test('a route to an internet gateway and a database open to an address range turn the answers to yes', () => {
  const dir = changed((t) => {
    const table = idOf(t, 'AWS::EC2::RouteTable', 'IsolatedSubnet1/RouteTable');
    const dbGroup = idOf(t, 'AWS::EC2::SecurityGroup', 'Data/PostgresSecurityGroup/Resource');
    t.Resources.TestIgw = { Type: 'AWS::EC2::InternetGateway', Metadata: { 'aws:cdk:path': 'ByocCustomerPlane/Test/Igw' } };
    t.Resources.TestRoute = { Type: 'AWS::EC2::Route', Properties: { RouteTableId: { Ref: table }, DestinationCidrBlock: '0.0.0.0/0', GatewayId: { Ref: 'TestIgw' } }, Metadata: { 'aws:cdk:path': 'ByocCustomerPlane/Test/Route' } };
    t.Resources.TestDbOpen = { Type: 'AWS::EC2::SecurityGroupIngress', Properties: { GroupId: { 'Fn::GetAtt': [dbGroup, 'GroupId'] }, CidrIp: '203.0.113.0/24', IpProtocol: 'tcp', FromPort: 5433, ToPort: 5433 }, Metadata: { 'aws:cdk:path': 'ByocCustomerPlane/Test/DbOpen' } };
  });
  const r = review(dir);
  expect(answer(r, 'q-outside')).toMatch(/^Yes, through 2 entries/);
  expect(r.markdown).toContain('ingress from 203.0.113.0/24 to Plane/Data/PostgresSecurityGroup on tcp 5433');
  expect(answer(r, 'q-internet')).toMatch(/^Yes: 1 route to internet gateways/);
  expect(answer(r, 'q-database')).toMatch(/^Possibly\. The database admits address ranges \(203\.0\.113\.0\/24\)/);
  expect(answer(r, 'q-leaves')).toContain('The plane also has a route to the internet');
});

test('a role with database access trusted by another account makes the database reachable, and is named', () => {
  const dir = changed((t) => {
    const key = idOf(t, 'AWS::KMS::Key', 'Plane/Key/Resource');
    t.Resources[key].Properties.KeyPolicy.Statement.push({ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::999999999999:root' }, Action: 'kms:Decrypt', Resource: '*' });
  });
  const r = review(dir);
  expect(answer(r, 'q-outside')).toMatch(/^Yes, through 1 entry/);
  expect(r.markdown).toContain('key policy of Plane/Key allows AWS arn:aws:iam::999999999999:root kms:Decrypt');
  const nested = Object.keys(templates).find((f) => f.includes('Agentsengineering'))!;
  const dir2 = path.join(tmp('review-trust'), 'assembly');
  fs.cpSync(assembly, dir2, { recursive: true });
  const t = JSON.parse(fs.readFileSync(path.join(dir2, nested), 'utf8'));
  const role = idOf(t, 'AWS::IAM::Role', 'code-generator/Workload/TaskRole/Resource');
  t.Resources[role].Properties.AssumeRolePolicyDocument.Statement.push({ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::999999999999:root' }, Action: 'sts:AssumeRole' });
  fs.writeFileSync(path.join(dir2, nested), JSON.stringify(t));
  const r2 = review(dir2);
  expect(answer(r2, 'q-database')).toMatch(/^Possibly\. Roles with database access trust outside principals \(Plane\/Agents-engineering\/code-generator\/Workload\/TaskRole\)/);
});

test('a workload allowed to connect to the vendor\'s endpoint is named among what leaves the account', () => {
  expect(answer(review(assembly), 'q-leaves')).toContain('Connections to the vendor\'s endpoint: Plane/Link/NatsLeaf on tcp 7422; what those send');
  const dir = changed((t) => {
    const agents = idOf(t, 'AWS::EC2::SecurityGroup', 'Plane/AgentSecurityGroup/Resource');
    const hub = idOf(t, 'AWS::EC2::SecurityGroup', 'Link/HubEndpointSecurityGroup/Resource');
    t.Resources.TestAgentsToHub = { Type: 'AWS::EC2::SecurityGroupEgress', Properties: { GroupId: { 'Fn::GetAtt': [agents, 'GroupId'] }, DestinationSecurityGroupId: { 'Fn::GetAtt': [hub, 'GroupId'] }, IpProtocol: 'tcp', FromPort: 443, ToPort: 443 } };
  });
  expect(answer(review(dir), 'q-leaves')).toMatch(/Connections to the vendor's endpoint: Plane\/Link\/NatsLeaf on tcp 7422; agent code-generator, [^;]*agent pattern-miner[^;]* on tcp 443; what those send leaves the account too\./);
});

test('with learning not shared, the report says fingerprints are off and the contract table shows what still crosses', () => {
  const dir = changed((t) => {
    for (const r of Object.values<any>(t.Resources)) {
      for (const c of r.Type === 'AWS::ECS::TaskDefinition' ? r.Properties.ContainerDefinitions : []) {
        for (const e of c.Environment ?? []) {
          if (e.Name === 'BYOC_SHARE_LEARNING') e.Value = 'false';
          if (e.Name === 'BYOC_NATS_CONFIG') e.Value = e.Value.replace(/"byoc\.example\.out\.fingerprint",?\s*/g, '');
        }
      }
    }
  });
  const r = review(dir);
  expect(answer(r, 'q-leaves')).toMatch(/only workflow, metrics, usage messages .*1822\.9 bits\/s.*fingerprint can be turned off \(shareLearning: false; off in these templates\)/);
  expect(r.markdown).toMatch(/\| \*\*workflow\*\* \| customer-to-vendor \|[^\n]*\| yes \(without agent, stepId\) \|/);
  expect(r.markdown).toMatch(/\| \*\*fingerprint\*\* \|[^\n]*\| yes \| no \|/);
});

test('every wildcard statement is highlighted, acknowledgements carry their reasons, CDK\'s own are grouped', () => {
  const r = review(assembly);
  const m = r.model;
  const wild = m.roles.flatMap((x) => x.statements).filter((s) => s.actions.some((a) => a.includes('*')) || s.resources.some((x) => x.includes('*')));
  expect(wild.length).toBeGreaterThan(25);
  const statementsTable = r.html.slice(r.html.indexOf('<table id="statements"'), r.html.indexOf('</table>', r.html.indexOf('<table id="statements"')));
  expect([...statementsTable.matchAll(/<tr data-statement="[^"]+" class="warn-row">/g)]).toHaveLength(wild.length);
  expect(statementsTable).toContain('<code class="wild" title="wildcard">*</code>');
  for (const a of m.acknowledgements.filter((x) => !x.automatic)) expect(r.markdown).toContain(a.reason);
  const automatic = r.html.slice(r.html.indexOf('<table id="automatic"'), r.html.indexOf('</table>', r.html.indexOf('<table id="automatic"')));
  const w3010 = m.acknowledgements.filter((x) => x.rule === 'CloudFormation-Validate::W3010').length;
  expect(w3010).toBeGreaterThan(300);
  expect(automatic).toMatch(new RegExp(`<code>CloudFormation-Validate::W3010</code></td><td>[^<]+</td><td>${w3010}</td>`));
});

test('every data store with its key, backup, retention and deletion, read from the templates', () => {
  const r = review(assembly);
  const all = allResources(templates);
  const logGroups = all.filter((x) => x.type === 'AWS::Logs::LogGroup');
  expect(r.model.dataStores.filter((d) => d.kind === 'log group')).toHaveLength(logGroups.length);
  for (const d of r.model.dataStores.filter((x) => x.kind === 'log group')) expect(d.retention).toBe(`${d.resource.props.RetentionInDays} days`);
  const db = r.model.dataStores.find((d) => d.resource.type === 'AWS::RDS::DBInstance')!;
  expect(db).toMatchObject({ key: '{Plane/Key}.Arn', backup: 'automated backups 7 days, Multi-AZ standby', deletion: 'DeletionPolicy Delete, UpdateReplacePolicy Delete; deletion protection on', deletedWithStack: false });
  expect(r.model.dataStores.filter((d) => d.resource.type === 'AWS::SecretsManager::Secret')).toHaveLength(all.filter((x) => x.type === 'AWS::SecretsManager::Secret').length);
});

test('Control Tower results from validation-report.json: acknowledged ones with their reasons, a violation flagged first', () => {
  const dir = changed(() => undefined);
  const construct = (p: string) => ({ constructPath: p, cloudFormationResource: { templatePath: root, logicalId: 'X' } });
  fs.writeFileSync(path.join(dir, 'validation-report.json'), JSON.stringify({ version: '55.0.0', title: 'Validation Report', pluginReports: [{
    pluginName: 'ControlTower', pluginVersion: '0.0.62', conclusion: 'failure',
    violations: [{ ruleName: 'rds_instance_deletion_protection_enabled_check', description: '[CT.RDS.PR.13]: Require deletion protection', violatingConstructs: [construct('ByocCustomerPlane/Plane/Data/Postgres/Resource')] }],
    suppressedViolations: [{ ruleName: 'elbv2_logging_enabled_check', description: '[CT.ELASTICLOADBALANCING.PR.6]: Require access logging', violatingConstructs: [construct('ByocCustomerPlane/Lb/Resource')], reason: 'The listener passes TCP through; nothing to log here.' }],
  }] }));
  const r = review(dir);
  expect(r.markdown).toMatch(/## Questions answered first\n\n\*\*The last synth failed validation \(ControlTower: 1 violation, listed under validation results\)/);
  expect(r.markdown).toContain('| ControlTower | rds_instance_deletion_protection_enabled_check: [CT.RDS.PR.13]: Require deletion protection | `ByocCustomerPlane/Plane/Data/Postgres/Resource` | VIOLATION |   |');
  expect(r.markdown).toContain('| ControlTower | elbv2_logging_enabled_check: [CT.ELASTICLOADBALANCING.PR.6]: Require access logging | `ByocCustomerPlane/Lb/Resource` | acknowledged | The listener passes TCP through; nothing to log here. |');
  expect(review(assembly).markdown).toContain('No Control Tower finding, acknowledged or not, in this assembly.');
});

test('access levels of IAM actions by their verb', () => {
  expect(['s3:GetObject', 'kms:Decrypt', 'secretsmanager:DescribeSecret', 'elasticfilesystem:ClientMount'].map(accessOf)).toEqual(['read', 'read', 'read', 'read']);
  expect(['secretsmanager:PutSecretValue', 'logs:PutLogEvents', 'kms:Sign', 'elasticfilesystem:ClientWrite'].map(accessOf)).toEqual(['write', 'write', 'write', 'write']);
  expect(['rds-db:connect', 's3:*', '*'].map(accessOf)).toEqual(['both', 'both', 'both']);
});
