import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { CfnResource } from 'aws-cdk-lib';
import { AGENT_CATALOG } from '../../agents/catalog';
import { LLM_PROXY_PORT } from '../../control-plane/llm-proxy/endpoint';
import { customerPlaneStackProps } from '../../customer-plane/config';
import { EgressMode } from '../../customer-plane/props';
import { CustomerPlaneStack } from '../../customer-plane/stack';
import { createApp } from '../../lib/app';
import { exampleProps, synthCustomerPlane, SynthesizedPlane } from '../synth';

/** `llm`: where the agents that hold an LLM key send their calls (the vendor's proxy, or the providers). */
const LLM_AGENTS = AGENT_CATALOG.filter((a) => a.secrets.some((s) => s.startsWith('llm-'))).map((a) => a.name).sort();

/** Each agent's container environment, and its service's security groups as the root stack passes them (JSON). */
function agents(plane: SynthesizedPlane): Record<string, { env: Record<string, string>; groups: string }> {
  const out: Record<string, { env: Record<string, string>; groups: string }> = {};
  const root = plane.root.toJSON();
  for (const [name, t] of Object.entries(plane.groups)) {
    const nested = plane.stack.plane.agentGroups[name].nestedStackResource as CfnResource;
    const parameters = root.Resources[plane.stack.getLogicalId(nested)].Properties.Parameters ?? {};
    const json = t.toJSON();
    for (const [taskId, r] of Object.entries<any>(json.Resources)) {
      if (r.Type !== 'AWS::ECS::TaskDefinition') continue;
      const env = Object.fromEntries(r.Properties.ContainerDefinitions[0].Environment.map((e: any) => [e.Name, e.Value]));
      const service = Object.values<any>(json.Resources).find((s) => s.Type === 'AWS::ECS::Service' && s.Properties.TaskDefinition.Ref === taskId);
      const groups = service.Properties.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups.map((g: any) => (g.Ref && parameters[g.Ref]) ?? g);
      out[env.BYOC_AGENT] = { env, groups: JSON.stringify(groups) };
    }
  }
  return out;
}

/** The logical ID of the LLM agents' security group in the root template, if any. */
const llmGroupId = (plane: SynthesizedPlane) => Object.entries<any>(plane.root.toJSON().Resources)
  .find(([, r]) => r.Type === 'AWS::EC2::SecurityGroup' && /^LLM agents/.test(r.Properties.GroupDescription))?.[0];
const HUB_ENDPOINT_GROUP = /LinkHubEndpointSecurityGroup/;

describe('default: no path to an LLM', () => {
  test('no LLM security group, record or variable', () => {
    const plane = synthCustomerPlane();
    expect(llmGroupId(plane)).toBeUndefined();
    expect(Object.keys(agents(plane))).toHaveLength(AGENT_CATALOG.length);
    expect(JSON.stringify(plane.root.toJSON())).not.toContain('llm.');
    for (const a of Object.values(agents(plane))) expect(a.env.BYOC_LLM_MODE).toBeUndefined();
  });
});

describe('llm: vendor-proxy', () => {
  let plane: SynthesizedPlane;
  beforeAll(() => { plane = synthCustomerPlane(exampleProps({ llm: { via: 'vendor-proxy' } })); });

  test('llm.<hub host> resolves to the hub endpoint, in the hub\'s private zone', () => {
    const host = exampleProps().vendorHub.host;
    plane.root.hasResourceProperties('AWS::Route53::RecordSet', { Name: `llm.${host}.`, Type: 'A' });
  });

  test('only the agents holding an LLM key get the LLM security group, the proxy\'s URL for this customer and the vendor CA', () => {
    const groupId = llmGroupId(plane)!;
    const all = agents(plane);
    const hub = exampleProps().vendorHub;
    const customerId = exampleProps().customerId;
    expect(Object.keys(all).filter((n) => all[n].groups.includes(`"${groupId}"`)).sort()).toEqual(LLM_AGENTS);
    for (const [name, a] of Object.entries(all)) {
      if (LLM_AGENTS.includes(name)) {
        expect(a.env).toEqual(expect.objectContaining({ BYOC_LLM_MODE: 'vendor-proxy', BYOC_LLM_PROXY_URL: `https://llm.${hub.host}/c/${customerId}`, BYOC_LLM_PROXY_CA: hub.caCertificatePem }));
      } else {
        expect(a.env.BYOC_LLM_PROXY_URL).toBeUndefined();
      }
    }
  });

  test('the LLM security group reaches the hub endpoint on the proxy\'s port only; nothing else gets that port', () => {
    const json = plane.root.toJSON();
    const groupId = llmGroupId(plane)!;
    const egress = Object.values<any>(json.Resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroupEgress' && r.Properties.GroupId['Fn::GetAtt']?.[0] === groupId);
    expect(egress.map((r) => [r.Properties.FromPort, r.Properties.ToPort, r.Properties.DestinationSecurityGroupId['Fn::GetAtt'][0]])).toEqual([[LLM_PROXY_PORT, LLM_PROXY_PORT, expect.stringMatching(HUB_ENDPOINT_GROUP)]]);
    expect(json.Resources[groupId].Properties.SecurityGroupEgress ?? []).toEqual([]);
    const ingress443 = Object.values<any>(json.Resources).filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && HUB_ENDPOINT_GROUP.test(r.Properties.GroupId['Fn::GetAtt']?.[0] ?? '') && r.Properties.FromPort === LLM_PROXY_PORT);
    expect(ingress443.map((r) => r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0])).toEqual([groupId]);
  });
});

describe('llm: own-keys', () => {
  test('with egress: nat, the LLM agents (only) may send HTTPS anywhere; no proxy record', () => {
    const plane = synthCustomerPlane(exampleProps({ llm: { via: 'own-keys' }, egress: EgressMode.NAT }));
    const json = plane.root.toJSON();
    const groupId = llmGroupId(plane)!;
    expect(json.Resources[groupId].Properties.SecurityGroupEgress).toEqual([{ CidrIp: '0.0.0.0/0', Description: expect.stringContaining('own-keys'), FromPort: 443, IpProtocol: 'tcp', ToPort: 443 }]);
    const all = agents(plane);
    expect(Object.keys(all).filter((n) => all[n].groups.includes(`"${groupId}"`)).sort()).toEqual(LLM_AGENTS);
    expect(all[LLM_AGENTS[0]].env.BYOC_LLM_MODE).toBe('own-keys');
    expect(JSON.stringify(json)).not.toContain(`llm.${exampleProps().vendorHub.host}`);
  });
});

describe('invalid settings fail at synth, naming the setting and the fix', () => {
  const synthOnly = (props: ReturnType<typeof exampleProps>) => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-llm-'));
    try {
      new CustomerPlaneStack(createApp({ outdir }), 'ByocCustomerPlane', props);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  };
  test.each([
    ['own-keys without a route out', { llm: { via: 'own-keys' } }, /Invalid prop 'llm': own-keys with egress: none.*Fix: set egress: nat, or use \{ via: 'vendor-proxy' \}/],
    ['vendor-proxy without the endpoint service', { llm: { via: 'vendor-proxy' }, egress: EgressMode.NAT, vendorHub: { ...exampleProps().vendorHub, endpointService: undefined, cidrs: ['203.0.113.10/32'] } },
      /Invalid prop 'llm': vendor-proxy without vendorHub.endpointService.*Fix: give vendorHub.endpointService/],
    ['an unknown way', { llm: { via: 'internet' } }, /Invalid prop 'llm.via': "internet" is not a way to reach an LLM.*Fix: use \{ via: 'vendor-proxy' \} or \{ via: 'own-keys' \}/],
  ] as [string, any, RegExp][])('%s', (_name, overrides, error) => {
    expect(() => synthOnly(exampleProps(overrides))).toThrow(error);
  });

  test('the configuration file takes llm.via and refuses other keys in it', () => {
    const base = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'config', 'example-customer.json'), 'utf8'));
    const dir = path.join(__dirname, '..', '..', 'config');
    expect(customerPlaneStackProps({ ...base, llm: { via: 'vendor-proxy' } }, dir).llm).toEqual({ via: 'vendor-proxy' });
    expect(() => customerPlaneStackProps({ ...base, llm: { via: 'vendor-proxy', url: 'x' } }, dir)).toThrow(/Invalid setting 'llm.url': is not a setting of the customer plane/);
  });
});
