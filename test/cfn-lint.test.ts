import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';
import { readTemplates, synthControlPlane, synthCustomerPlane, exampleProps } from './synth';

/**
 * Warnings accepted, each with the reason it cannot make a deploy fail. Anything else cfn-lint reports,
 * error or warning, fails the test.
 */
const ACCEPTED_WARNINGS: Record<string, string> = {
  // CDK's own custom-resource provider (restrictDefaultSecurityGroup) lists a DependsOn that a GetAtt
  // already implies: redundant, harmless.
  W3005: 'redundant DependsOn in the CDK-generated custom resource provider',
};

interface Finding { Rule: { Id: string }; Level: string; Message: string; Filename: string }

function lint(dir: string): Finding[] {
  const files = Object.keys(readTemplates(dir)).map((f) => path.join(dir, f));
  expect(files.length).toBeGreaterThan(0);
  const run = spawnSync('cfn-lint', ['--format', 'json', '--', ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.error) throw new Error(`cfn-lint could not run (${run.error.message}): install it with 'pip install cfn-lint'`);
  return JSON.parse(run.stdout || '[]');
}

const unacceptable = (findings: Finding[]) => findings
  .filter((f) => f.Level === 'Error' || !(f.Rule.Id in ACCEPTED_WARNINGS))
  .map((f) => `${f.Rule.Id} ${path.basename(f.Filename)}: ${f.Message}`);

beforeAll(() => {
  execFileSync('cfn-lint', ['--version']);
});

test.each([
  ['default', {}],
  ['retainData', { retainData: true }],
])('cfn-lint passes every template of the customer plane (%s), nested stacks included', (_name, overrides) => {
  const plane = synthCustomerPlane(exampleProps(overrides));
  expect(unacceptable(lint(plane.outdir))).toEqual([]);
});

test('cfn-lint passes the control plane', () => {
  expect(unacceptable(lint(synthControlPlane().outdir))).toEqual([]);
});

test('cfn-lint catches what it is here for: a deprecated engine version fails the check', () => {
  const plane = synthCustomerPlane();
  const fs = require('fs');
  const file = path.join(plane.outdir, 'ByocCustomerPlane.template.json');
  const t = JSON.parse(fs.readFileSync(file, 'utf8'));
  const db = Object.values<any>(t.Resources).find((r) => r.Type === 'AWS::RDS::DBInstance');
  db.Properties.EngineVersion = '16.1';
  fs.writeFileSync(file, JSON.stringify(t));
  expect(unacceptable(lint(plane.outdir)).join('\n')).toMatch(/16\.1/);
});
