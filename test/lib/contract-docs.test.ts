import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../../lib/app';
import { BOUNDARY_CONTRACT } from '../../lib/boundary-contract';
import { whatCrossesMarkdown, withWhatCrosses } from '../../lib/contract-docs';

test('the README\'s "what crosses" section is generated from the current contract (run npm run docs)', () => {
  const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
  expect(withWhatCrosses(readme)).toBe(readme);
});

test('the section names every kind and every field of the contract', () => {
  const md = whatCrossesMarkdown();
  for (const k of BOUNDARY_CONTRACT.kinds) {
    expect(md).toContain(`| \`${k.name}\` |`);
    for (const f of Object.keys(k.schema.fields)) expect(md).toContain(`- \`${f}\``);
  }
});
