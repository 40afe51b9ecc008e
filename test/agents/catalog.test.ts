import { AGENT_CATALOG, AgentTrigger, catalogProblems } from '../../agents/catalog';

test('the catalog names 28 valid agents, each with a purpose, trigger, size and permissions', () => {
  expect(AGENT_CATALOG).toHaveLength(28);
  expect(catalogProblems(AGENT_CATALOG)).toEqual([]);
  for (const a of AGENT_CATALOG) {
    expect(a.purpose.length).toBeGreaterThan(20);
    expect(Object.values(AgentTrigger)).toContain(a.trigger);
    expect(a.subjects.subscribe).toContain(`work.${a.name}`);
  }
  const triggers = new Set(AGENT_CATALOG.map((a) => a.trigger));
  expect(triggers).toEqual(new Set(Object.values(AgentTrigger)));
});

test('no agent subscribes or publishes on a full wildcard or outside its own subject space', () => {
  for (const a of AGENT_CATALOG) {
    for (const s of [...a.subjects.subscribe, ...a.subjects.publish]) {
      expect(s).not.toContain('>');
      expect(s).toMatch(/^(work|events|boundary)\./);
    }
  }
});

test('catalogProblems reports every problem with its field', () => {
  const bad = [{ ...AGENT_CATALOG[0], name: 'x', cpu: 3 }, { ...AGENT_CATALOG[0], trigger: AgentTrigger.SCHEDULE }];
  expect(catalogProblems(bad).map((p) => p.field)).toEqual(['catalog[0].name', 'catalog[0].cpu', 'catalog[1].schedule']);
});
