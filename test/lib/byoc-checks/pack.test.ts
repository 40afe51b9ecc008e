import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, CfnResource, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { createApp } from '../../../lib/app';
import { BYOC_RULES, ByocChecks } from '../../../lib/byoc-checks';
import { rendered } from '../../../lib/byoc-checks/template';
import { acknowledgeFinding, cfnOf } from '../../../lib/compliance';
import * as kit from '../../../index';
import { CustomerPlaneStack } from '../../../customer-plane/stack';
import { exampleProps } from '../../synth';

const outdirs: string[] = [];
const outdir = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-checks-')); outdirs.push(d); return d; };
afterAll(() => { for (const d of outdirs) fs.rmSync(d, { recursive: true, force: true }); });

const synthError = (app: App): string => { try { app.synth(); return ''; } catch (e) { return (e as Error).message; } };

test('a customer registers the pack on their own app: a finding fails synth, and an acknowledgement on the one resource lets it pass', () => {
  const build = (acknowledge: boolean) => {
    const app = new App({ outdir: outdir() });
    Validations.of(app).addPlugins(new kit.ByocChecks(app));
    const stack = new Stack(app, 'Theirs');
    const group = new logs.LogGroup(stack, 'Logs', { retention: logs.RetentionDays.ONE_WEEK, removalPolicy: RemovalPolicy.DESTROY });
    if (acknowledge) {
      acknowledgeFinding(cfnOf(group), 'Byoc-LogGroupRetentionAndKey[NoKmsKey]', 'A fixture log group that holds no customer data, so CloudWatch\'s own key is accepted here.');
    }
    return app;
  };
  const report = synthError(build(false));
  expect(report).toContain('Theirs/Logs/Resource');
  expect(report).toContain("Acknowledge with 'Byoc::Byoc-LogGroupRetentionAndKey[NoKmsKey]'");
  expect(synthError(build(true))).toBe('');
});

test('every app of the kit runs it: createApp registers ByocChecks with the other packs', () => {
  const app = createApp({ outdir: outdir() });
  new ec2.Vpc(new Stack(app, 'Stray'), 'Vpc', { maxAzs: 2, natGateways: 1 });
  expect(synthError(app)).toMatch(/Stray\/Vpc\/IGW .*\n.*Acknowledge with 'Byoc::Byoc-NoInternetGateway'/);
});

test('one rule per file, each with its fixture test, and the rule IDs the pack announces', () => {
  const dir = path.join(__dirname, '..', '..', '..', 'lib', 'byoc-checks');
  const ruleFiles = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !['index.ts', 'declarations.ts', 'template.ts'].includes(f));
  expect(ruleFiles).toHaveLength(BYOC_RULES.length);
  for (const file of ruleFiles) {
    const exported = Object.values(require(path.join(dir, file))).filter((v) => typeof v === 'function');
    expect(BYOC_RULES.filter((r) => exported.includes(r.rule)).map((r) => r.id)).toHaveLength(1);
    expect(fs.existsSync(path.join(__dirname, file.replace(/\.ts$/, '.test.ts')))).toBe(true);
  }
  expect(new ByocChecks().ruleIds).toEqual(BYOC_RULES.map((r) => `Byoc-${r.id}`));
});

test('on the real customer plane: nothing to find, and a leaf permission or an open egress added after generation is found', () => {
  const findings = (tamper: boolean): string[] => {
    const app = createApp({ outdir: outdir(), compliancePacks: false });
    const stack = new CustomerPlaneStack(app, 'ByocCustomerPlane', exampleProps());
    if (tamper) {
      const { leaf, gateway } = stack.plane.link;
      const task = leaf.taskDefinition.node.defaultChild as CfnResource;
      const env = (rendered(task).Properties.ContainerDefinitions[0].Environment as { Name: string }[]).findIndex((e) => e.Name === 'BYOC_NATS_CONFIG');
      expect(env).toBeGreaterThanOrEqual(0);
      task.addPropertyOverride(`ContainerDefinitions.0.Environment.${env}.Value`,
        stack.plane.link.leafConfig.replace('publish: { allow: [', 'publish: { allow: ["byoc.example.out.>", '));
      gateway.service.connections.securityGroups[0].addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'tampered');
    }
    app.synth();
    return new ByocChecks().validateScope(app).violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`))
      .map((f) => f.replace(/[0-9A-F]{8}\]/, ']')).sort();
  };
  expect(findings(false)).toEqual([]);
  expect(findings(true)).toEqual([
    'Byoc-NatsFromContract[Edited::BYOC_NATS_CONFIG] @ ByocCustomerPlane/Plane/Link/NatsLeaf/Task/Resource',
    'Byoc-NoOpenEgress[PlaneGatewaySecurityGroup] @ ByocCustomerPlane/Plane/Link/BoundaryGateway/Service/Service',
  ]);
});
