import { AGENT_CATALOG, AgentSpec, AgentTrigger, DataStore } from '../../agents/catalog';
import { MAX_AGENTS_PER_GROUP } from '../../customer-plane/props';
import { MAX_LEAF_AGENTS } from '../../customer-plane/link';
import { exampleProps, synthCustomerPlane } from '../synth';

/** CloudFormation's per-stack limits. */
const MAX_RESOURCES = 500;
const MAX_TEMPLATE_BYTES = 1024 * 1024;

function syntheticCatalog(count: number, perGroup: number): AgentSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const base = AGENT_CATALOG[i % AGENT_CATALOG.length];
    return {
      ...base,
      name: `agent-${String(i).padStart(3, '0')}`,
      group: `group-${String(Math.floor(i / perGroup)).padStart(2, '0')}`,
      // Every agent uses every store and secret: the most resources and parameters an agent can have (Redis:
      // the first 99, ElastiCache's limit of users per group).
      dataStores: i < 99 ? [DataStore.POSTGRES, DataStore.REDIS, DataStore.WORKSPACE] : [DataStore.POSTGRES, DataStore.WORKSPACE],
      secrets: ['llm-primary', 'llm-secondary', 'scm-token'],
      trigger: AgentTrigger.REQUEST,
      schedule: undefined,
      subjects: { subscribe: [`work.agent-${i}`], publish: ['events.workflow.status'] },
    };
  });
}

function limits(templates: Record<string, any>) {
  return Object.entries(templates).map(([file, t]) => ({
    file,
    resources: Object.keys(t.Resources).length,
    bytes: Buffer.byteLength(JSON.stringify(t)),
    parameters: Object.keys(t.Parameters ?? {}).length,
  }));
}

test.each([
  ['the product catalog (28 agents)', AGENT_CATALOG as AgentSpec[]],
  [`${MAX_LEAF_AGENTS} agents, 20 per group (the most one leaf's task definition holds)`, syntheticCatalog(MAX_LEAF_AGENTS, 20)],
  [`${MAX_AGENTS_PER_GROUP} agents in one full group`, syntheticCatalog(MAX_AGENTS_PER_GROUP, MAX_AGENTS_PER_GROUP)],
])('%s: every stack stays within CloudFormation limits (500 resources, 1 MB, 200 parameters)', (_name, catalog) => {
  const plane = synthCustomerPlane(exampleProps({ catalog }));
  const counts = limits(plane.templates);
  for (const c of counts) {
    expect(c.resources).toBeLessThan(MAX_RESOURCES);
    expect(c.bytes).toBeLessThan(MAX_TEMPLATE_BYTES);
    expect(c.parameters).toBeLessThanOrEqual(200);
  }
  const services = Object.values(plane.templates).flatMap((t: any) => Object.values<any>(t.Resources).filter((r) => r.Type === 'AWS::ECS::Service'));
  expect(services).toHaveLength(catalog.length + 3);
  // Each agent keeps its own task role.
  const taskRoles = Object.values(plane.templates).flatMap((t: any) => Object.keys(t.Resources).filter((id) => /WorkloadTaskRole[0-9A-F]{8}$/.test(id)));
  expect(taskRoles).toHaveLength(catalog.length);
});

test('the root stack grows by one resource per group and one NATS password per agent (the leaf needs each)', () => {
  const small = limits(synthCustomerPlane(exampleProps({ catalog: syntheticCatalog(20, 20) })).templates)[0];
  const large = limits(synthCustomerPlane(exampleProps({ catalog: syntheticCatalog(60, 20) })).templates)[0];
  expect(large.resources - small.resources).toBe(2 + 40);
});

test('at the limit, the leaf\'s task definition fits ECS\'s 64 KiB with every secret reference resolved to a full ARN', () => {
  const plane = synthCustomerPlane(exampleProps({ catalog: syntheticCatalog(MAX_LEAF_AGENTS, 20) }));
  const leaf = Object.values(plane.templates).flatMap((t: any) => Object.values<any>(t.Resources))
    .find((r) => r.Type === 'AWS::ECS::TaskDefinition' && r.Properties.Family === 'byoc-example-nats-leaf');
  const secrets = leaf.Properties.ContainerDefinitions[0].Secrets.length;
  // A resolved ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:byoc/<customer>/nats/<agent>-XXXXXX) is at
  // most ~130 characters; the template's reference is shorter, so add the difference for each.
  const resolved = JSON.stringify(leaf.Properties).length + secrets * 130;
  expect(secrets).toBe(MAX_LEAF_AGENTS + 5);
  expect(resolved).toBeLessThan(64 * 1024);
});

test('more agents than one leaf\'s task definition can name fail at synth, naming the catalog', () => {
  expect(() => synthCustomerPlane(exampleProps({ catalog: syntheticCatalog(MAX_LEAF_AGENTS + 1, 20) })))
    .toThrow(/Invalid prop 'catalog': \d+ agents need a leaf configuration of \d+ KiB.*Fix: /);
});
