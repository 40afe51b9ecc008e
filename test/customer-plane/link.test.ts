import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { METRIC_NAMES } from '../../lib/boundary-contract';
import { agentIdentities, leafConfig, secretVariables } from '../../lib/nats-config';
import { AGENT_CATALOG } from '../../agents/catalog';
import { projectRoot } from '../../lib/app';
import { EgressMode } from '../../customer-plane/props';
import { collectorConfig } from '../../customer-plane/collector-config';
import { HUB_CA_FILE, HUB_CREDENTIALS_FILE, JETSTREAM_DIR, NATS_CLIENT_PORT } from '../../customer-plane/link';
import { allResources, exampleProps, synthCustomerPlane } from '../synth';

const containerNamed = (templates: Record<string, any>, family: string) => {
  const task = allResources(templates).find((r) => r.type === 'AWS::ECS::TaskDefinition' && r.props.Family === family)!;
  return task.props.ContainerDefinitions[0];
};
const envOf = (c: any) => Object.fromEntries((c.Environment ?? []).map((e: any) => [e.Name, e.Value]));

describe('what is tested is what is deployed', () => {
  const plane = synthCustomerPlane();
  const leaf = containerNamed(plane.templates, 'byoc-example-nats-leaf');
  const gateway = containerNamed(plane.templates, 'byoc-example-boundary-gateway');
  const vars = secretVariables('example');

  test('the leaf runs exactly the generated configuration (every agent its own user), and nats-server accepts it', () => {
    const deployed = envOf(leaf).BYOC_NATS_CONFIG;
    const settings = { customerId: 'example', shareLearning: true };
    expect(deployed).toBe(leafConfig({ ...settings, agents: agentIdentities(AGENT_CATALOG, settings), listen: { host: '0.0.0.0', port: NATS_CLIENT_PORT }, storeDir: JETSTREAM_DIR,
      hubCaFile: HUB_CA_FILE, hub: { host: 'hub.byoc.vendor.example', port: 7422 }, hubCredentialsFile: HUB_CREDENTIALS_FILE }));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-leaf-'));
    try {
      const file = path.join(dir, 'nats.conf');
      fs.writeFileSync(file, deployed.replace(HUB_CA_FILE, path.join(projectRoot(), 'config', 'example-vendor-hub-ca.pem')));
      const env: Record<string, string> = { ...process.env as Record<string, string> };
      for (const s of leaf.Secrets) env[s.Name] = 'x';
      expect(execFileSync('nats-server', ['-t', '-c', file], { env, encoding: 'utf8', stdio: 'pipe' })).toBe('');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every password the leaf reads as a $VARIABLE is generated from letters only: nats-server refuses one starting with a digit', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-leaf-'));
    try {
      const file = path.join(dir, 'nats.conf');
      fs.writeFileSync(file, envOf(leaf).BYOC_NATS_CONFIG.replace(HUB_CA_FILE, path.join(projectRoot(), 'config', 'example-vendor-hub-ca.pem')));
      const run = (value: string) => {
        const env: Record<string, string> = { ...process.env as Record<string, string> };
        for (const s of leaf.Secrets) env[s.Name] = value;
        try { execFileSync('nats-server', ['-t', '-c', file], { env, stdio: 'pipe' }); return 'accepted'; } catch { return 'refused'; }
      };
      // What a generator with digits produces now and then (a number, a size suffix, a digit: read as `1k`, then
      // garbage), and what it produces without them.
      expect([run('1k9RkaXbQz'), run('2G9xRkaXbQ'), run('RkaXbQzWmn')]).toEqual(['refused', 'refused', 'accepted']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const secrets = allResources(plane.templates).filter((r) => r.type === 'AWS::SecretsManager::Secret');
    const refs = leaf.Secrets.map((s: any) => s.ValueFrom.Ref).filter((id: string) => id !== undefined);
    expect(refs.length).toBe(leaf.Secrets.length);
    for (const id of refs) {
      const secret = secrets.find((r) => r.id === id);
      expect({ id, ...secret!.props.GenerateSecretString }).toEqual({ id, PasswordLength: 48, ExcludePunctuation: true, ExcludeNumbers: true });
    }
  });

  test('the leaf dials the pinned hub with the issued .creds, written readable by its user only, and trusts only the vendor CA', () => {
    expect(envOf(leaf).BYOC_NATS_CONFIG).toContain(`url: "tls://hub.byoc.vendor.example:7422"\n      credentials: "${HUB_CREDENTIALS_FILE}"`);
    // What the shell makes of the start command's credential steps, run as the container would (into a temporary file).
    const steps: string[] = leaf.Command[2].split(' && ');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-leaf-'));
    try {
      const file = path.join(dir, 'hub.creds');
      const script = [steps[0], ...steps.filter((c) => c.includes(HUB_CREDENTIALS_FILE)).map((c) => c.replace(HUB_CREDENTIALS_FILE, file))].join(' && ');
      expect(steps[0]).toBe('umask 077');
      expect(steps).toContain(`unset ${vars.leafHubCredentials}`);
      const creds = '-----BEGIN NATS USER JWT-----\neyJ...\n------END NATS USER JWT------';
      execFileSync('sh', ['-c', script], { env: { PATH: process.env.PATH!, [vars.leafHubCredentials]: creds }, encoding: 'utf8' });
      expect(fs.readFileSync(file, 'utf8')).toBe(`${creds}\n`);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(envOf(leaf).BYOC_HUB_CA).toBe(fs.readFileSync(path.join(projectRoot(), 'config', 'example-vendor-hub-ca.pem'), 'utf8'));
    expect(envOf(leaf).BYOC_NATS_CONFIG).toContain(`ca_file: "${HUB_CA_FILE}"`);
  });

  test('the leaf\'s secrets come from Secrets Manager through ECS, never through the environment: one per agent, distinct gateway identities', () => {
    const names = leaf.Secrets.map((s: any) => s.Name).sort();
    expect(names).toEqual([vars.gatewayLocal, vars.gatewayRemote, vars.leafHubCredentials, vars.provisioner, vars.backlogReporter, ...AGENT_CATALOG.map((a) => vars.agent(a.name))].sort());
    const refs = leaf.Secrets.map((s: any) => JSON.stringify(s.ValueFrom));
    expect(new Set(refs).size).toBe(refs.length); // every identity its own secret
  });

  test('the gateway signs with the plane\'s KMS key (no private key to fill), reads its own two passwords and the provisioner\'s', () => {
    expect(gateway.Command).toEqual(['node', '/app/boundary-gateway.js']);
    expect(gateway.Secrets.map((s: any) => s.Name).sort()).toEqual([vars.gatewayLocal, vars.gatewayRemote, vars.provisioner, vars.backlogReporter].sort());
    const env = envOf(gateway);
    expect(env).toMatchObject({ BYOC_CUSTOMER: 'example', BYOC_SHARE_LEARNING: 'true', BYOC_AUDIT_LOG: '/audit/boundary-audit.log' });
    expect(JSON.stringify(env.BYOC_AUDIT_KEY)).toContain('AuditKey');
    expect(JSON.parse(env.BYOC_AGENTS)).toMatchObject({ 'usage-meter': ['usage', 'metrics'], 'pattern-miner': ['fingerprint'], 'workflow-orchestrator': ['workflow'], 'code-reviewer': [] });
    const key = allResources(plane.templates).find((r) => r.type === 'AWS::KMS::Key' && r.props.KeySpec === 'ECC_NIST_P256')!;
    expect(key.props.KeyUsage).toBe('SIGN_VERIFY');
    const deny = key.props.KeyPolicy.Statement.find((st: any) => st.Sid === 'OnlyTheBoundaryGatewaySigns');
    expect(deny).toMatchObject({ Effect: 'Deny', Action: 'kms:Sign' });
    expect(JSON.stringify(deny.Condition)).toContain('BoundaryGatewayTaskRole');
    // Only the gateway's role is granted Sign.
    const signers = allResources(plane.templates).filter((r) => r.type === 'AWS::IAM::ManagedPolicy' && JSON.stringify(r.props.PolicyDocument).includes('kms:Sign'));
    expect(signers.map((r) => r.id)).toEqual([expect.stringMatching(/BoundaryGateway/)]);
  });

  test('the leaf and the gateway are single writers: stopped before a new task starts', () => {
    for (const family of ['byoc-example-nats-leaf', 'byoc-example-boundary-gateway']) {
      const task = allResources(plane.templates).find((r) => r.type === 'AWS::ECS::TaskDefinition' && r.props.Family === family)!;
      const service = allResources(plane.templates).find((r) => r.type === 'AWS::ECS::Service' && JSON.stringify(r.props.TaskDefinition).includes(task.id))!;
      expect(service.props.DeploymentConfiguration).toMatchObject({ MinimumHealthyPercent: 0, MaximumPercent: 100 });
      expect(service.props.DesiredCount).toBe(1);
    }
  });

  test('agents connect as their own NATS user with their own password and inbox prefix', () => {
    const reviewer = containerNamed(plane.templates, 'byoc-example-code-reviewer');
    expect(envOf(reviewer)).toMatchObject({ NATS_USER: 'agent-code-reviewer', NATS_INBOX_PREFIX: '_INBOX_example.code-reviewer' });
  });

  test('the collector runs the generated metrics-only configuration', () => {
    const collector = containerNamed(plane.templates, 'byoc-example-otel-collector');
    expect(envOf(collector).BYOC_OTEL_CONFIG).toBe(collectorConfig());
  });

  test('nothing may connect to the gateway, and only agents and the gateway to the leaf', () => {
    const sgs = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroup');
    const id = (desc: RegExp) => sgs.find((r) => desc.test(r.props.GroupDescription))!.id;
    const ingress = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroupIngress').map((r) => r.props);
    expect(ingress.filter((i) => JSON.stringify(i.GroupId).includes(id(/^Boundary gateway/)))).toEqual([]);
    const intoLeaf = ingress.filter((i) => JSON.stringify(i.GroupId).includes(id(/^NATS leaf/)));
    expect(intoLeaf.map((i) => JSON.stringify(i.SourceSecurityGroupId)).map((s) => (s.includes('AgentSecurityGroup') ? 'agents' : s.includes('GatewaySecurityGroup') ? 'gateway' : s)).sort()).toEqual(['agents', 'gateway']);
  });

  test('PrivateLink (the default path): an endpoint only the leaf may reach, and the hub\'s name resolves to it in the VPC', () => {
    plane.root.hasResourceProperties('AWS::EC2::VPCEndpoint', { ServiceName: 'com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0', VpcEndpointType: 'Interface' });
    plane.root.hasResourceProperties('AWS::Route53::HostedZone', { Name: 'hub.byoc.vendor.example.' });
    plane.root.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'hub.byoc.vendor.example.', Type: 'A' });
    const ingress = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroupIngress' && r.props.FromPort === 7422);
    expect(ingress).toHaveLength(1);
    expect(JSON.stringify(ingress[0].props.SourceSecurityGroupId)).toContain('NatsLeafSecurityGroup');
    // The leaf's only way out besides the AWS endpoints and S3: the hub endpoint on the hub's port.
    const leafSg = allResources(plane.templates).find((r) => r.type === 'AWS::EC2::SecurityGroup' && /^NATS leaf/.test(r.props.GroupDescription))!;
    const egress = [...(leafSg.props.SecurityGroupEgress ?? []), ...allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroupEgress' && JSON.stringify(r.props.GroupId).includes(leafSg.id)).map((r) => r.props)];
    expect(egress.filter((e: any) => e.CidrIp === '0.0.0.0/0')).toEqual([]);
    expect(egress.filter((e: any) => e.FromPort === 7422)).toHaveLength(1);
  });
});

test('without PrivateLink, the leaf may reach exactly the hub\'s addresses and port, through NAT', () => {
  const hub = { ...exampleProps().vendorHub, endpointService: undefined, cidrs: ['203.0.113.10/32'] };
  const plane = synthCustomerPlane(exampleProps({ vendorHub: hub, egress: EgressMode.NAT }));
  const egress = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroupEgress' && r.props.FromPort === 7422).map((r) => r.props);
  const inline = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroup').flatMap((r) => r.props.SecurityGroupEgress ?? []).filter((e: any) => e.FromPort === 7422);
  expect([...egress, ...inline].map((e: any) => e.CidrIp)).toEqual(['203.0.113.10/32']);
  expect(allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::VPCEndpoint' && String(r.props.ServiceName).includes('vpce-svc'))).toEqual([]);
});

test('with shareLearning: false the deployed leaf and gateway know no fingerprint kind', () => {
  const plane = synthCustomerPlane(exampleProps({ shareLearning: false }));
  expect(envOf(containerNamed(plane.templates, 'byoc-example-nats-leaf')).BYOC_NATS_CONFIG).not.toContain('fingerprint');
  expect(envOf(containerNamed(plane.templates, 'byoc-example-boundary-gateway')).BYOC_SHARE_LEARNING).toBe('false');
});

test('the collector exports nothing towards the vendor: traces to X-Ray, metrics to CloudWatch, only the contract\'s metric names', () => {
  const config = JSON.parse(collectorConfig().split('\n').filter((l) => !l.startsWith('#')).join('\n'));
  expect(Object.keys(config.exporters).sort()).toEqual(['awsemf', 'awsxray']);
  expect(Object.keys(config.service.pipelines).sort()).toEqual(['metrics', 'traces']);
  const filter = JSON.stringify(config.processors['filter/contract-metrics']);
  for (const name of METRIC_NAMES) expect(filter).toContain(`name == \\"${name}\\"`);
});
