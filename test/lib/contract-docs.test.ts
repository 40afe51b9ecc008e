import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../../lib/app';
import { BOUNDARY_CONTRACT, kindsFor } from '../../lib/boundary-contract';
import { whatCrossesMarkdown, withWhatCrosses } from '../../lib/contract-docs';
import { leakageBound } from '../../lib/leakage';

const md = whatCrossesMarkdown();
/** `3094.1` as the section writes it: `3,094.1`. */
const num = (x: number) => {
  const [whole, fraction] = x.toFixed(1).split('.');
  return `${whole.replace(/\B(?=(\d{3})+$)/g, ',')}${fraction === '0' ? '' : `.${fraction}`}`;
};

test('the README\'s "what crosses" section is generated from the current contract (run npm run docs)', () => {
  const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
  expect(withWhatCrosses(readme)).toBe(readme);
});

test('the section names every kind and every field of the contract', () => {
  for (const k of BOUNDARY_CONTRACT.kinds) {
    expect(md).toContain(`| \`${k.name}\` |`);
    for (const f of Object.keys(k.schema.fields)) expect(md).toContain(`- \`${f}\``);
  }
});

test('each kind\'s row gives its rate limit, bits per message and bits per second, from the leakage bound', () => {
  const bound = leakageBound(kindsFor());
  const rows = md.split('\n').filter((l) => l.startsWith('| `'));
  expect(md).toContain('| kind | direction | subject | opt-out | max bytes | rate limit | bits/message | bits/s | what it carries |');
  for (const k of bound.kinds) {
    const cells = rows.find((r) => r.startsWith(`| \`${k.kind}\` |`))!.split(' | ');
    expect(cells[6]).toBe(num(k.bitsPerMessage));
    expect(cells[7]).toBe(num(k.bitsPerSecond));
    expect(cells[5]).toMatch(new RegExp(`, burst ${k.burst}$`));
  }
  expect(rows.find((r) => r.startsWith('| `workflow` |'))).toContain('| 5/s, burst 50 |');
  expect(rows.find((r) => r.startsWith('| `metrics` |'))).toContain('| 1 per 60 s, burst 3 |');
});

test('the totals, with and without shareLearning, and the channel the bound does not count', () => {
  const on = leakageBound(kindsFor());
  const off = leakageBound(kindsFor(), { shareLearning: false });
  expect(md).toContain(`| customer → vendor, sustained | ${num(on.outboundBitsPerSecond)} bits/s | ${num(off.outboundBitsPerSecond)} bits/s |`);
  expect(md).toContain(`| customer → vendor, a full burst at once | ${num(on.outboundBurstBits)} bits | ${num(off.outboundBurstBits)} bits |`);
  expect(md).toContain(`| vendor → customer, sustained | ${num(on.inboundBitsPerSecond)} bits/s | ${num(off.inboundBitsPerSecond)} bits/s |`);
  expect(md).toContain('When messages are sent, and how many, is a further channel');
});

test('the canonical-crossing rule and exactly what an opted-out customer still sends', () => {
  expect(md).toContain('**Canonical crossing.**');
  expect(md).toMatch(/never other bytes\s+it received/);
  expect(md).toContain('`workflow` messages cross without `agent`, `stepId`');
  expect(md).toContain('so each still carries `workflowId`, `status`, `statusCode`, `startedAt`, `durationMs`');
  expect(md).toContain('how many workflow messages each workflow produces and when');
  expect(md).toContain('`fingerprint` is absent from every rule');
  expect(md).toContain('The opt-out is one-way: the vendor → customer kinds `control`, `learning` still arrive');
  expect(md).toMatch(/- `signature`: .*added by the gateway.*0 bits from the sender/);
  expect(md).toMatch(/- `agent`: .*; 145\.4 bits; removed with `shareLearning: false`/);
});
