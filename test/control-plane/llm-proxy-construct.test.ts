import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { CONTROL_PLANE_STACK } from '../../bin/control-plane';
import { LLM_PROXY_ENTRY, LLM_PROXY_LISTENER_PORT, LLM_PROXY_PORTS, LlmProxy, LlmProxyProps } from '../../control-plane/llm-proxy';
import { ControlPlaneStack, ControlPlaneStackProps } from '../../control-plane/stack';
import { createApp } from '../../lib/app';
import { acknowledgementsOf, CONTROL_TOWER_PLUGIN, RECORD_ONLY_CONTEXT } from '../../lib/compliance';
import { exampleVendorProps, resourcesOf } from './synth';

const IMAGE = '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/control-plane@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9';
const PROVIDERS: LlmProxyProps['providers'] = [
  { name: 'openai', api: 'openai', baseUrl: 'https://api.openai.com', models: { fast: 'gpt-4o-mini', big: 'gpt-4o' } },
  { name: 'anthropic', api: 'anthropic', baseUrl: 'https://api.anthropic.com', models: { fast: 'claude-3-5-haiku-latest', big: 'claude-sonnet-4-0' } },
];

const tmpdirs: string[] = [];
afterAll(() => { for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true }); });

/** The control plane with an LLM proxy beside it (the way the lead will wire it), synthesized with every check. */
function synth(overrides: Partial<LlmProxyProps> = {}, vendor: Partial<ControlPlaneStackProps> = {}, context: Record<string, unknown> = {}) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-llm-proxy-cdk-'));
  tmpdirs.push(outdir);
  const app = createApp({ outdir, context });
  const props = exampleVendorProps(vendor);
  const stack = new ControlPlaneStack(app, CONTROL_PLANE_STACK, props);
  const proxy = new LlmProxy(stack.plane, 'LlmProxy', {
    hub: stack.plane.hub!,
    host: props.hub!.host,
    image: IMAGE,
    certificateSecretArn: props.hub!.tls.certificateSecretArn,
    certificateSecretKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/0f0e0d0c-0b0a-0908-0706-050403020100',
    providers: PROVIDERS,
    egress: { via: 'nat' },
    retainData: stack.plane.settings.retainData,
    logRetention: stack.plane.settings.logRetention,
    ...overrides,
  });
  return { app, stack, proxy, outdir };
}

function template(s: { app: App; stack: ControlPlaneStack }): { t: Template; json: any } {
  const assembly = s.app.synth();
  const json = JSON.parse(fs.readFileSync(path.join(assembly.directory, s.stack.templateFile), 'utf8'));
  return { t: Template.fromJSON(json), json };
}

describe('LlmProxy beside the control plane', () => {
  let built: ReturnType<typeof synth>;
  let t: Template;
  let json: any;
  beforeAll(() => {
    built = synth();
    ({ t, json } = template(built));
  });
  const id = (c: { node: { defaultChild?: any } }) => built.stack.getLogicalId(c.node.defaultChild);

  test('a listener on 443 of the hub\'s internal load balancer (so behind its endpoint service) passes TCP to the proxy\'s TLS port; health checks on the admin port', () => {
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      LoadBalancerArn: { Ref: id(built.stack.plane.hub!.loadBalancer) }, Port: LLM_PROXY_LISTENER_PORT, Protocol: 'TCP',
    });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: LLM_PROXY_PORTS.tls, Protocol: 'TCP', TargetType: 'ip', HealthCheckProtocol: 'HTTP', HealthCheckPort: String(LLM_PROXY_PORTS.admin), HealthCheckPath: '/healthz',
    });
    t.resourceCountIs('AWS::EC2::VPCEndpointService', 1);
  });

  test('the task: ARM64, read-only root, non-root, all capabilities dropped, the image by digest, its logs encrypted with retention; configured by environment, no secret value', () => {
    const [, task] = resourcesOf(json, 'AWS::ECS::TaskDefinition').find(([, r]) => r.Properties.Family === 'byoc-vendor-llm-proxy')!;
    expect(task.Properties.RuntimePlatform).toEqual({ CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
    const [container] = task.Properties.ContainerDefinitions;
    expect(container).toEqual(expect.objectContaining({ ReadonlyRootFilesystem: true, User: '10001:10001', Privileged: false, Command: ['node', LLM_PROXY_ENTRY] }));
    expect(container.LinuxParameters.Capabilities.Drop).toEqual(['ALL']);
    expect(JSON.stringify(container.Image)).toContain('@sha256:0a1b2c3d');
    expect(container.Secrets).toBeUndefined();
    const env = Object.fromEntries(container.Environment.map((e: any) => [e.Name, e.Value]));
    expect(env).toEqual(expect.objectContaining({
      BYOC_LLM_PORT: '8443', BYOC_LLM_ADMIN_PORT: '9090', BYOC_LLM_HOST: 'llm.hub.byoc.vendor.example',
      BYOC_LLM_TLS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:byoc/hub/tls-Ab12Cd',
      BYOC_LLM_TOKEN_AUDIENCE: 'https://llm.hub.byoc.vendor.example', BYOC_LLM_TOKEN_ISSUER: 'byoc-vendor',
    }));
    const providers = JSON.stringify(env.BYOC_LLM_PROVIDERS);
    for (const p of PROVIDERS) expect(providers).toContain(p.baseUrl);
    const logGroup = json.Resources[container.LogConfiguration.Options['awslogs-group'].Ref];
    expect(logGroup.Properties).toEqual(expect.objectContaining({ RetentionInDays: 365, KmsKeyId: expect.anything() }));
  });

  test('the table: on demand, point-in-time recovery, encrypted with the hub key, TTL, deletion protection with retainData', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [id(built.stack.plane.hub!.key), 'Arn'] } },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      DeletionProtectionEnabled: true,
    });
    t.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: Match.stringLikeRegexp('LLM proxy tokens') });
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'byoc/llm-proxy/providers/openai', KmsKeyId: { 'Fn::GetAtt': [id(built.stack.plane.hub!.key), 'Arn'] } });
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'byoc/llm-proxy/providers/anthropic' });
  });

  test('the task role: read the certificate and the provider keys, the token key\'s public half, get and update the table; nothing else', () => {
    const roleId = id(built.proxy.service.taskRole);
    const [, policy] = resourcesOf(json, 'AWS::IAM::ManagedPolicy').find(([, r]) => JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))!;
    const grants = policy.Properties.PolicyDocument.Statement.flatMap((s: any) => [s.Action].flat().flatMap((a: string) => [s.Resource].flat()
      .map((r: unknown) => `${a} ${JSON.stringify(r)}${s.Condition ? ` if ${JSON.stringify(s.Condition)}` : ''}`)));
    const arn = (c: any) => JSON.stringify({ 'Fn::GetAtt': [id(c), 'Arn'] });
    const via = (service: string) => ` if ${JSON.stringify({ StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', [`${service}.`, { Ref: 'AWS::Region' }, '.amazonaws.com']] } } })}`;
    const hubKey = arn(built.stack.plane.hub!.key);
    const secret = (name: string) => JSON.stringify({ Ref: id(built.proxy.providerKeys[name]) });
    expect(grants.sort()).toEqual([
      'secretsmanager:GetSecretValue "arn:aws:secretsmanager:eu-west-1:111122223333:secret:byoc/hub/tls-Ab12Cd"',
      `kms:Decrypt "arn:aws:kms:eu-west-1:111122223333:key/0f0e0d0c-0b0a-0908-0706-050403020100"${via('secretsmanager')}`,
      `secretsmanager:GetSecretValue ${secret('openai')}`, `secretsmanager:DescribeSecret ${secret('openai')}`,
      `secretsmanager:GetSecretValue ${secret('anthropic')}`, `secretsmanager:DescribeSecret ${secret('anthropic')}`,
      `kms:Decrypt ${hubKey}${via('secretsmanager')}`,
      `kms:GetPublicKey ${arn(built.proxy.tokenSigningKey)}`,
      `dynamodb:GetItem ${arn(built.proxy.table)}`, `dynamodb:UpdateItem ${arn(built.proxy.table)}`,
      `kms:Decrypt ${hubKey}${via('dynamodb')}`, `kms:GenerateDataKey ${hubKey}${via('dynamodb')}`,
    ].sort());
  });

  test('egress: the proxy in subnets of its own, routed out only through NAT; its security group sends HTTPS only; the hub\'s isolated subnets keep no route out', () => {
    const proxySubnets = built.proxy.subnets.map((s) => id(s));
    expect(built.proxy.subnets.map((s) => s.ipv4CidrBlock)).toEqual(['10.90.252.0/25', '10.90.252.128/25', '10.90.253.0/25']);
    for (const [, route] of resourcesOf(json, 'AWS::EC2::Route')) {
      const table = route.Properties.RouteTableId.Ref as string;
      const subnetOf = resourcesOf(json, 'AWS::EC2::SubnetRouteTableAssociation').find(([, a]) => a.Properties.RouteTableId.Ref === table)![1].Properties.SubnetId.Ref;
      if (route.Properties.NatGatewayId) expect(proxySubnets).toContain(subnetOf);
      else expect(json.Resources[subnetOf].Properties.MapPublicIpOnLaunch).toBe(false);
    }
    expect(resourcesOf(json, 'AWS::EC2::NatGateway')).toHaveLength(3);
    for (const isolated of built.stack.plane.hub!.network.vpc.isolatedSubnets) {
      const table = isolated.routeTable.routeTableId;
      expect(resourcesOf(json, 'AWS::EC2::Route').filter(([, r]) => JSON.stringify(r.Properties.RouteTableId) === JSON.stringify(built.stack.resolve(table)))).toEqual([]);
    }
    const [, sg] = resourcesOf(json, 'AWS::EC2::SecurityGroup').find(([lid]) => lid === built.stack.getLogicalId(built.proxy.securityGroup.node.defaultChild as any))!;
    expect(sg.Properties.SecurityGroupEgress.every((e: any) => e.FromPort === 443 && e.ToPort === 443)).toBe(true);
    expect(sg.Properties.SecurityGroupEgress.filter((e: any) => e.CidrIp === '0.0.0.0/0')).toHaveLength(1);
    expect(sg.Properties.SecurityGroupIngress ?? []).toEqual([]);
    const ingress = resourcesOf(json, 'AWS::EC2::SecurityGroupIngress').filter(([, r]) => r.Properties.GroupId['Fn::GetAtt']?.[0] === built.stack.getLogicalId(built.proxy.securityGroup.node.defaultChild as any));
    expect(ingress.map(([, r]) => r.Properties.FromPort).sort()).toEqual([8443, 9090]);
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', { ServiceName: Match.objectLike({ 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.dynamodb']] }), VpcEndpointType: 'Gateway' });
  });

  test('cfn-lint passes on the template with the proxy (W3005 only, as for the control plane alone)', () => {
    const files = fs.readdirSync(built.outdir).filter((f) => f.endsWith('.template.json')).map((f) => path.join(built.outdir, f));
    const run = spawnSync('cfn-lint', ['--format', 'json', '--', ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (run.error) throw new Error(`cfn-lint could not run (${run.error.message}): install it with 'pip install cfn-lint'`);
    const findings = JSON.parse(run.stdout || '[]') as { Rule: { Id: string }; Level: string; Message: string }[];
    expect(findings.filter((f) => f.Level === 'Error' || f.Rule.Id !== 'W3005').map((f) => `${f.Rule.Id}: ${f.Message}`)).toEqual([]);
  });

  test('fewer NAT gateways than AZs: each proxy subnet routes through one of them', () => {
    const { json: j } = template(synth({ egress: { via: 'nat', natGateways: 1 } }));
    expect(resourcesOf(j, 'AWS::EC2::NatGateway')).toHaveLength(1);
    expect(resourcesOf(j, 'AWS::EC2::Route').filter(([, r]) => r.Properties.NatGatewayId)).toHaveLength(3);
  });
});

describe('compliance: the four cdk-nag packs and Control Tower', () => {
  test.each([
    ['the example hub', {}],
    ['an internet-facing hub (its internet gateway is reused)', { hub: { ...exampleVendorProps().hub!, internetFacing: true } }],
    ['retainData off', { retainData: false, retainReleases: false }],
  ] as [string, Partial<ControlPlaneStackProps>][])('%s: every finding of the proxy is acknowledged on its one resource, and each acknowledgement is needed', (_name, vendor) => {
    const built = synth({}, vendor, { [RECORD_ONLY_CONTEXT]: true });
    let message = '';
    const validation = process.env.CDK_VALIDATION;
    process.env.CDK_VALIDATION = 'true';
    try {
      built.app.synth();
    } catch (e) {
      message = (e as Error).message;
    } finally {
      process.env.CDK_VALIDATION = validation;
    }
    const findings: string[] = [];
    if (message) {
      const report = JSON.parse(fs.readFileSync(path.join(built.outdir, 'validation-report.json'), 'utf8'));
      for (const plugin of report.pluginReports) {
        const prefix = [CONTROL_TOWER_PLUGIN, 'CloudFormation Validate'].includes(plugin.pluginName) ? `${plugin.pluginName.replace(/ /g, '-')}::` : '';
        for (const v of plugin.violations) for (const c of v.violatingConstructs) findings.push(`${prefix}${v.ruleName} @ ${c.constructPath}`);
      }
    }
    const acks = acknowledgementsOf(built.app);
    const covered = (f: string, a: { path: string; finding: string }) => { const [rule, at] = f.split(' @ '); return a.finding === rule && (at === a.path || at.startsWith(`${a.path}/`)); };
    expect(findings.filter((f) => !acks.some((a) => covered(f, a)))).toEqual([]);
    const proxyAcks = acks.filter((a) => a.path.includes('/LlmProxy/'));
    expect(proxyAcks.filter((a) => !findings.some((f) => covered(f, a)))).toEqual([]);
    expect(proxyAcks.filter((a) => a.finding.startsWith(`${CONTROL_TOWER_PLUGIN}::`))).toEqual([]);
  });
});

describe('invalid props fail at synth, naming the prop and the fix', () => {
  test.each([
    ['no provider', { providers: [] }, /Invalid prop 'llmProxy.providers': empty.*Fix: give at least one provider/],
    ['a plain-http provider', { providers: [{ ...PROVIDERS[0], baseUrl: 'http://api.openai.com' }] }, /Invalid prop 'llmProxy.providers\[0\]'.*must be https/],
    ['an unknown API shape', { providers: [{ ...PROVIDERS[0], api: 'gemini' as any }] }, /llmProxy.providers\[0\]'.*api: openai or anthropic/],
    ['no models', { providers: [{ ...PROVIDERS[0], models: {} }] }, /llmProxy.providers\[0\]'.*models/],
    ['a provider twice', { providers: [PROVIDERS[0], PROVIDERS[0]] }, /'llmProxy.providers': provider "openai" is named twice/],
    ['no egress', { egress: undefined as any }, /Invalid prop 'llmProxy.egress'.*Fix: give \{ via: 'nat' \}/],
    ['more NAT gateways than AZs', { egress: { via: 'nat', natGateways: 4 } }, /Invalid prop 'llmProxy.egress.natGateways': 4.*use 1 to 3/],
    ['a partial certificate secret ARN', { certificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:byoc/hub/tls' }, /'llmProxy.certificateSecretArn'.*complete secret ARN/],
    ['an image by tag', { image: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/byoc/control-plane:1.0' }, /Invalid prop 'llmProxy.image'.*by tag/],
  ] as [string, Partial<LlmProxyProps>, RegExp][])('%s', (_name, overrides, error) => {
    expect(() => template(synth(overrides))).toThrow(error);
  });

  test('a hub VPC whose subnets fill it leaves no /22 for the proxy: named with the fix', () => {
    const hub = { ...exampleVendorProps().hub!, vpcCidr: '10.90.0.0/18', availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c', 'eu-west-1d'] };
    expect(() => synth({}, { hub })).toThrow(/Invalid prop 'hub.vpcCidr': 10.90.0.0\/18 leaves no free \/22 at its top for the LLM proxy's subnets \(10.90.48.0\/20 is there\).*Fix: use a larger hub VPC CIDR/);
  });
});
