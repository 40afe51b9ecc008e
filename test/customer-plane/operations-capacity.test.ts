import { AGENT_CATALOG, AgentTrigger, DataStore } from '../../agents/catalog';
import { customerPlaneStackProps, CustomerPlaneConfig } from '../../customer-plane/config';
import { STOP_TIMEOUT_SECONDS } from '../../customer-plane/hardened-service';
import { resolveProps } from '../../customer-plane/props';
import { allResources, exampleProps, SynthesizedPlane, synthCustomerPlane } from '../synth';
import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../../lib/app';

/** Fargate Spot for the agents the catalog marks interruptible (`capacity`), on one synthesized plane. */

const byType = (plane: SynthesizedPlane, type: string) => allResources(plane.templates).filter((r) => r.type === type);
const family = (name: string) => `byoc-example-${name}`;
const INTERRUPTIBLE = AGENT_CATALOG.filter((a) => a.interruptible).map((a) => a.name);

test('the catalog marks request and event agents with no workspace and no side effect outside the plane but LLM calls', () => {
  expect(INTERRUPTIBLE.sort()).toEqual(['estimator', 'knowledge-curator', 'log-analyst', 'planner', 'qa-assistant', 'request-router', 'requirements-analyst', 'summarizer']);
  for (const a of AGENT_CATALOG.filter((x) => x.interruptible)) {
    expect([a.name, a.trigger === AgentTrigger.SCHEDULE, a.dataStores.includes(DataStore.WORKSPACE), a.secrets.filter((s) => !s.startsWith('llm-'))]).toEqual([a.name, false, false, []]);
  }
});

describe('capacity: { spot: true, onDemandBase: 1 }', () => {
  let plane: SynthesizedPlane;
  beforeAll(() => { plane = synthCustomerPlane(exampleProps({ capacity: { spot: true, onDemandBase: 1 } })); });
  const taskOf = (name: string) => byType(plane, 'AWS::ECS::TaskDefinition').find((t) => t.props.Family === family(name))!;
  const serviceOf = (name: string) => {
    const task = taskOf(name);
    return byType(plane, 'AWS::ECS::Service').find((s) => s.file === task.file && s.props.TaskDefinition.Ref === task.id)!;
  };

  test('interruptible agents: FARGATE for the on-demand base, FARGATE_SPOT for the rest, on X86_64 (Fargate Spot runs no ARM64 task)', () => {
    for (const name of INTERRUPTIBLE) {
      expect([name, serviceOf(name).props.CapacityProviderStrategy]).toEqual([name, [
        { CapacityProvider: 'FARGATE', Base: 1, Weight: 0 },
        { CapacityProvider: 'FARGATE_SPOT', Weight: 1 },
      ]]);
      expect(serviceOf(name).props.LaunchType).toBeUndefined();
      expect(taskOf(name).props.RuntimePlatform).toEqual({ CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' });
    }
  });

  test('every other agent, the leaf, the gateway and the collector stay on-demand ARM64', () => {
    const others = [...AGENT_CATALOG.filter((a) => !a.interruptible).map((a) => a.name), 'nats-leaf', 'boundary-gateway', 'otel-collector'];
    expect(others).toHaveLength(AGENT_CATALOG.length - INTERRUPTIBLE.length + 3);
    for (const name of others) {
      expect([name, serviceOf(name).props.LaunchType, serviceOf(name).props.CapacityProviderStrategy]).toEqual([name, 'FARGATE', undefined]);
      expect(taskOf(name).props.RuntimePlatform.CpuArchitecture).toBe('ARM64');
    }
  });

  test('without alarms settings: the plane\'s topic has no subscription, and every alarm notifies only it', () => {
    expect(byType(plane, 'AWS::SNS::Subscription')).toHaveLength(0);
    const alarms = byType(plane, 'AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThan(AGENT_CATALOG.length);
    for (const a of alarms) expect([a.props.AlarmName, a.props.AlarmActions.length, a.props.OKActions.length]).toEqual([a.props.AlarmName, 1, 1]);
  });

  test('the cluster offers FARGATE and FARGATE_SPOT', () => {
    const assoc = byType(plane, 'AWS::ECS::ClusterCapacityProviderAssociations');
    expect(assoc).toHaveLength(1);
    expect(assoc[0].props.CapacityProviders.sort()).toEqual(['FARGATE', 'FARGATE_SPOT']);
  });

  test('the runtime\'s drain ends 10 s before ECS kills the container, well inside Spot\'s two-minute warning', () => {
    for (const name of AGENT_CATALOG.map((a) => a.name)) {
      const c = taskOf(name).props.ContainerDefinitions[0];
      const drainMs = Number(c.Environment.find((e: any) => e.Name === 'BYOC_STOP_TIMEOUT_MS').Value);
      expect([name, c.StopTimeout, drainMs]).toEqual([name, STOP_TIMEOUT_SECONDS, (STOP_TIMEOUT_SECONDS - 10) * 1000]);
    }
    expect(STOP_TIMEOUT_SECONDS).toBeLessThanOrEqual(120);
    // The runtime accepts it (its own bound on the variable).
    expect(fs.readFileSync(path.join(projectRoot(), 'agents/runtime/config.ts'), 'utf8')).toMatch(/int\('BYOC_STOP_TIMEOUT_MS', \d+, 0, 120000\)/);
  });
});

describe('capacity is validated', () => {
  const base = exampleProps();
  test.each([
    [{ onDemandBase: 1 }, `Invalid prop 'capacity.onDemandBase': set without capacity.spot: true. Fix: set capacity.spot to true`],
    [{ spot: true, onDemandBase: 11 }, `Invalid prop 'capacity.onDemandBase': 11 is out of range. Fix: use a whole number from 0 to 10`],
    [{ spot: 'yes' }, `Invalid prop 'capacity.spot': is not a boolean`],
  ])('%j', (capacity, message) => {
    expect(() => resolveProps({ ...base, capacity } as any)).toThrow(message);
  });

  test('defaults: no Spot, no base; as a setting of the file too', () => {
    expect(resolveProps(base).capacity).toEqual({ spot: false, onDemandBase: 0 });
    const config = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'config', 'example-customer.json'), 'utf8')) as CustomerPlaneConfig;
    const dir = path.join(projectRoot(), 'config');
    expect(customerPlaneStackProps({ ...config, capacity: { spot: true } }, dir).capacity).toEqual({ spot: true });
    expect(() => customerPlaneStackProps({ ...config, capacity: { spot: true, onDemandBase: -1 } }, dir)).toThrow(/^Invalid setting 'capacity.onDemandBase': -1 is out of range/);
  });
});
