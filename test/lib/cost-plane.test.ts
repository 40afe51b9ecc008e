import { AGENT_CATALOG, AgentTrigger } from '../../agents/catalog';
import { costItems, defaultAssumptions, estimateCost, readAssembly } from '../../lib/cost/estimate';
import { PRICES, pricesFor } from '../../lib/cost/prices';
import { exampleProps, synthCustomerPlane } from '../synth';

// The customer plane of the example configuration, synthesized once (into a temp folder test/synth.ts removes).
const plane = synthCustomerPlane();

test('every ECS service of the customer plane (root and nested templates) is priced, every agent by name', () => {
  const assembly = readAssembly(plane.outdir);
  const { items, ecsServices } = costItems(assembly, pricesFor('eu-west-1'), defaultAssumptions());
  const inTemplates = Object.entries(plane.templates).flatMap(([file, t]) => Object.entries<any>(t.Resources ?? {})
    .filter(([, r]) => r.Type === 'AWS::ECS::Service').map(([id]) => `${file}#${id}`));
  expect(inTemplates.length).toBe(AGENT_CATALOG.length + 3);
  expect(ecsServices.sort()).toEqual(inTemplates.sort());
  for (const s of inTemplates) {
    const compute = items.filter((i) => i.kind === 'compute' && i.resources.includes(s));
    expect({ s, priced: compute.length === 1 && compute[0].cost({ schedule: 'always', spot: false }) > 0 }).toEqual({ s, priced: true });
  }

  const r = estimateCost(assembly, { region: 'eu-west-1', schedule: 'business', spot: true });
  expect(r.byAgent.map((a) => a.agent).sort()).toEqual(AGENT_CATALOG.map((a) => a.name).sort());
  for (const c of ['leaf', 'gateway', 'collector'] as const) expect(r.lines.filter((l) => l.component === c)).toHaveLength(1);
  // The data stores the plane declares are priced: PostgreSQL, Redis and EFS.
  expect(r.lines.filter((l) => l.component === 'data stores').map((l) => l.name.split(' ')[0]).sort()).toEqual(['EFS', 'ElastiCache', 'RDS']);
  // Business hours and Spot change the agents only.
  for (const c of r.byComponent) {
    if (c.component === 'agents') expect(c.chosen).toBeLessThan(c.base / 3);
    else expect(c.chosen).toBeCloseTo(c.base, 9);
  }
  expect(r.chosenTotal).toBeLessThan(r.baseTotal);
  // Nothing of the plane is unknown to the table: only usage-priced types are left unpriced.
  expect(r.notPriced.map((n) => n.reason)).not.toContain('not in the price table');

  // Every region of the table prices the plane (its instance classes and node types are in each).
  for (const region of Object.keys(PRICES)) expect(estimateCost(assembly, { region }).baseTotal).toBeGreaterThan(0);
});

test('with scaling: event agents priced by their backlog, request agents at the floor, scheduled agents as without', () => {
  const scaled = synthCustomerPlane(exampleProps({ scaling: { idleMinutes: 20, requestFloor: 2 } }));
  const a = defaultAssumptions();
  const compute = (outdir: string) => Object.fromEntries(costItems(readAssembly(outdir), pricesFor('eu-west-1'), a).items
    .filter((i) => i.component === 'agents' && i.kind === 'compute').map((i) => [i.agent!, i]));
  const before = compute(plane.outdir);
  const after = compute(scaled.outdir);
  const always = { schedule: 'always', spot: false } as const;
  for (const spec of AGENT_CATALOG) {
    const [b, s] = [before[spec.name], after[spec.name]];
    // Without scaling every agent runs its one task (DesiredCount, no scalable target).
    expect([spec.name, b.capacity]).toEqual([spec.name, { rule: 'count', idle: 1, busy: 1 }]);
    if (spec.trigger === AgentTrigger.EVENT) {
      // Read from the template: target 0..1, scale-out to exactly 1, scale-in after 20 one-minute periods at zero.
      expect([spec.name, s.capacity]).toEqual([spec.name, { rule: 'backlog', idle: 0, busy: 1, tailMinutes: 20, target: expect.stringMatching(/#.*TaskCountTarget/) }]);
      // 2 h of work + 4 x 20 min = 3 h 20 min a day: 10 / 72 of the always-on task.
      expect(s.cost(always)).toBeCloseTo(b.cost(always) * (10 / 3) / 24, 9);
    } else if (spec.trigger === AgentTrigger.REQUEST) {
      expect([spec.name, s.capacity]).toEqual([spec.name, { rule: 'count', idle: 2, busy: 2 }]);
      expect(s.cost(always)).toBeCloseTo(2 * b.cost(always), 9);
    } else {
      expect([spec.name, s.capacity]).toEqual([spec.name, b.capacity]);
      expect(s.cost(always)).toBeCloseTo(b.cost(always), 9);
    }
  }
  const r = estimateCost(readAssembly(scaled.outdir), { region: 'eu-west-1' });
  expect(r.byRule.find((x) => x.rule === 'backlog')!.agents).toEqual(AGENT_CATALOG.filter((s) => s.trigger === AgentTrigger.EVENT).map((s) => s.name).sort());
  expect(r.notes.join('\n')).toMatch(/scale on the backlog .*\(20 min in the template\)/);
  expect(estimateCost(readAssembly(plane.outdir), { region: 'eu-west-1' }).byRule.map((x) => x.rule)).toEqual(['count']);
});
