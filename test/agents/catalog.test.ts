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

test('boundary subjects declare contract kinds in their direction: an outbound kind to publish, an inbound kind to receive', () => {
  const miner = AGENT_CATALOG.find((a) => a.name === 'pattern-miner')!;
  expect(miner.subjects.subscribe).toContain('boundary.inbox.learning');
  const declaring = (subscribe: string[], publish: string[]) => [{ ...miner, subjects: { subscribe: [`work.${miner.name}`, ...subscribe], publish } }];
  expect(catalogProblems(declaring(['boundary.inbox.learning', 'boundary.inbox.control'], ['boundary.outbox.fingerprint']))).toEqual([]);
  const problems = catalogProblems(declaring(['boundary.inbox.fingerprint', 'boundary.inbox.shell'], ['boundary.outbox.learning', 'boundary.inbox.control']));
  expect(problems.map((p) => [p.field, p.problem])).toEqual([
    ['catalog[0].subjects.subscribe', '"boundary.inbox.fingerprint" is not a kind of the boundary contract an agent may receive'],
    ['catalog[0].subjects.subscribe', '"boundary.inbox.shell" is not a kind of the boundary contract an agent may receive'],
    ['catalog[0].subjects.publish', '"boundary.outbox.learning" is not a kind of the boundary contract an agent may send'],
    ['catalog[0].subjects.publish', '"boundary.inbox.control" is not a kind of the boundary contract an agent may send'],
  ]);
  expect(problems[0].fix).toBe('use one of boundary.inbox.control, boundary.inbox.learning');
});
