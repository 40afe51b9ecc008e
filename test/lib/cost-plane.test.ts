import { AGENT_CATALOG } from '../../agents/catalog';
import { costItems, defaultAssumptions, estimateCost, readAssembly } from '../../lib/cost/estimate';
import { PRICES, pricesFor } from '../../lib/cost/prices';
import { synthCustomerPlane } from '../synth';

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
