import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { METRIC_ATTRIBUTES, METRIC_NAMES } from '../../lib/boundary-contract';
import { leafConfig } from '../../lib/nats-config';
import { collectorConfig } from '../../customer-plane/collector-config';
import { JETSTREAM_DIR, NATS_CLIENT_PORT } from '../../customer-plane/link';
import { allResources, exampleProps, synthCustomerPlane } from '../synth';

const containerNamed = (templates: Record<string, any>, family: string) => {
  const task = allResources(templates).find((r) => r.type === 'AWS::ECS::TaskDefinition' && r.props.Family === family)!;
  return task.props.ContainerDefinitions[0];
};
const envOf = (c: any) => Object.fromEntries((c.Environment ?? []).map((e: any) => [e.Name, e.Value]));

describe('what is tested is what is deployed', () => {
  const plane = synthCustomerPlane();
  const leaf = containerNamed(plane.templates, 'byoc-example-nats-leaf');

  test('the leaf runs exactly the generated configuration, and nats-server accepts it', () => {
    const deployed = envOf(leaf).BYOC_NATS_CONFIG;
    expect(deployed).toBe(leafConfig({ customerId: 'example', listen: { host: '0.0.0.0', port: NATS_CLIENT_PORT }, storeDir: JETSTREAM_DIR }));
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-leaf-')), 'nats.conf');
    fs.writeFileSync(file, deployed);
    const env = { ...process.env, BYOC_GATEWAY_PASSWORD: 'x', BYOC_AGENTS_PASSWORD: 'x', BYOC_LEAF_REMOTE_URL: 'tls://u:p@127.0.0.1:7422' };
    expect(execFileSync('nats-server', ['-t', '-c', file], { env, encoding: 'utf8', stdio: 'pipe' })).toBe('');
  });

  test('the leaf\'s secrets come from Secrets Manager through ECS, never through the environment', () => {
    expect(leaf.Secrets.map((s: any) => s.Name).sort()).toEqual(['BYOC_AGENTS_PASSWORD', 'BYOC_GATEWAY_PASSWORD', 'BYOC_LEAF_REMOTE_URL']);
    for (const s of leaf.Secrets) expect(JSON.stringify(s.ValueFrom)).toMatch(/PlaneLink\w+Secret|PlaneLink\w+(Password|Url)/);
  });

  test('the gateway runs the bundled gateway with its password and audit key from Secrets Manager', () => {
    const gateway = containerNamed(plane.templates, 'byoc-example-boundary-gateway');
    expect(gateway.Command).toEqual(['node', '/app/boundary-gateway.js']);
    expect(gateway.Secrets.map((s: any) => s.Name).sort()).toEqual(['BYOC_AUDIT_SIGNING_KEY', 'BYOC_GATEWAY_PASSWORD']);
    expect(envOf(gateway)).toMatchObject({ BYOC_CUSTOMER: 'example', BYOC_SHARE_LEARNING: 'true', BYOC_AUDIT_LOG: '/audit/boundary-audit.log' });
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
});

test('a vendor hub endpoint service gets a PrivateLink endpoint only the leaf may reach, outbound', () => {
  const service = 'com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0';
  const plane = synthCustomerPlane(exampleProps({ vendorHubEndpointService: service }));
  plane.root.hasResourceProperties('AWS::EC2::VPCEndpoint', { ServiceName: service, VpcEndpointType: 'Interface', PrivateDnsEnabled: false });
  const ingress = allResources(plane.templates).filter((r) => r.type === 'AWS::EC2::SecurityGroupIngress' && r.props.FromPort === 7422);
  expect(ingress).toHaveLength(1);
  expect(JSON.stringify(ingress[0].props.SourceSecurityGroupId)).toContain('NatsLeafSecurityGroup');
});

test('with shareLearning: false the deployed leaf and gateway know no fingerprint kind', () => {
  const plane = synthCustomerPlane(exampleProps({ shareLearning: false }));
  expect(envOf(containerNamed(plane.templates, 'byoc-example-nats-leaf')).BYOC_NATS_CONFIG).not.toContain('fingerprint');
  expect(envOf(containerNamed(plane.templates, 'byoc-example-boundary-gateway')).BYOC_SHARE_LEARNING).toBe('false');
});

test('the collector configuration: metrics only, the contract\'s names and attributes only', () => {
  const config = collectorConfig();
  expect(config).toMatch(/pipelines:\n\s+metrics:/);
  expect(config).not.toMatch(/^\s+(traces|logs):/m);
  for (const name of METRIC_NAMES) expect(config).toContain(`name == "${name}"`);
  expect(config).toContain(`keep_keys(attributes, [${METRIC_ATTRIBUTES.map((a) => `"${a}"`).join(', ')}])`);
});
