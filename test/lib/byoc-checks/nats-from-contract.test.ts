import { Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { AGENT_CATALOG } from '../../../agents/catalog';
import { declareNatsConfig } from '../../../lib/byoc-checks';
import { agentIdentities, leafConfig } from '../../../lib/nats-config';
import { byocFindings, PINNED } from './fixture';

const RULE = 'NatsFromContract';
const CATALOG = AGENT_CATALOG.slice(0, 3);

/** The leaf configuration the kit's generator writes for a small catalog, from the boundary contract. */
const generate = () => leafConfig({
  customerId: 'acme', shareLearning: true, agents: agentIdentities(CATALOG, { customerId: 'acme' }),
  listen: { host: '0.0.0.0', port: 4222 }, storeDir: '/data/jetstream', hubCaFile: '/tmp/hub-ca.pem',
  hub: { host: 'hub.vendor.example', port: 7422 }, hubCredentialsFile: '/tmp/hub.creds',
});

/** A leaf task: nats-server started on the configuration in BYOC_NATS_CONFIG. */
function leaf(s: Stack, id: string, config: string, declared: boolean): ecs.FargateTaskDefinition {
  const task = new ecs.FargateTaskDefinition(s, id);
  task.addContainer('main', {
    image: ecs.ContainerImage.fromRegistry(PINNED),
    command: ['sh', '-c', 'printf "%s" "$BYOC_NATS_CONFIG" > /tmp/nats.conf && exec nats-server -c /tmp/nats.conf'],
    environment: { BYOC_NATS_CONFIG: config },
  });
  if (declared) declareNatsConfig(task, { variable: 'BYOC_NATS_CONFIG', source: 'the boundary contract and the fixture catalog', generate });
  return task;
}

test('compliant: the configuration is the generator\'s output from the contract and catalog; tasks without nats-server are not concerned', () => {
  expect(byocFindings((s) => {
    leaf(s, 'Leaf', generate(), true);
    new ecs.FargateTaskDefinition(s, 'Agent').addContainer('main', { image: ecs.ContainerImage.fromRegistry(PINNED), command: ['node', 'agent.js'] });
  }, RULE)).toEqual([]);
});

test('non-compliant: a nats-server whose configuration nobody declared', () => {
  expect(byocFindings((s) => { leaf(s, 'Leaf', generate(), false); }, RULE)).toEqual(['Byoc-NatsFromContract[Undeclared] @ Fixture/Leaf/Resource']);
});

test('non-compliant: a permission added by hand to the generated text, or by an override of the template', () => {
  // An agent allowed to publish straight onto a crossing subject, past the gateway.
  const widened = generate().replace('publish: { allow: [', 'publish: { allow: ["byoc.acme.out.>", ');
  expect(widened).not.toEqual(generate());
  expect(byocFindings((s) => {
    leaf(s, 'ByHand', widened, true);
    const overridden = leaf(s, 'Overridden', generate(), true);
    (overridden.node.defaultChild as ecs.CfnTaskDefinition).addPropertyOverride('ContainerDefinitions.0.Environment.0.Value', widened);
  }, RULE)).toEqual([
    'Byoc-NatsFromContract[Edited::BYOC_NATS_CONFIG] @ Fixture/ByHand/Resource',
    'Byoc-NatsFromContract[Edited::BYOC_NATS_CONFIG] @ Fixture/Overridden/Resource',
  ]);
});
