import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { projectRoot } from '../../lib/app';

/**
 * `npm run rehearse` on the plane as synthesized, and on a plane broken the way a first deploy breaks: the
 * rehearsal must pass on the first and fail on the second, naming the container that would crash.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-rehearse-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function rehearse(...args: string[]): { status: number | null; report: any; output: string } {
  const reportFile = path.join(dir, `report-${Date.now()}.json`);
  const r = spawnSync(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'rehearse.js'), '--grace', '10', '--report', reportFile, ...args], {
    encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' }, timeout: 240000,
  });
  const output = `${r.stdout}${r.stderr}`;
  if (!fs.existsSync(reportFile)) throw new Error(`the rehearsal wrote no report (exit ${r.status}):\n${output.slice(-3000)}`);
  return { status: r.status, report: JSON.parse(fs.readFileSync(reportFile, 'utf8')), output };
}

const byName = (report: any) => Object.fromEntries(report.checks.map((c: any) => [c.name, c]));

test('the plane runs from its own templates: it links, works, sends each outbound kind, and its audit log verifies', () => {
  const { status, report, output } = rehearse();
  const checks = byName(report);
  const failed = report.checks.filter((c: any) => !c.ok);
  expect({ status, failed }).toEqual({ status: 0, failed: [] });
  expect(report.ok).toBe(true);
  // What ECS would run: the leaf, the gateway, and one agent of each trigger, each started and stopped.
  const services = report.started.map((s: any) => s.service);
  expect(services).toEqual(expect.arrayContaining(['byoc-example-nats-leaf', 'byoc-example-boundary-gateway']));
  expect(services.length).toBeGreaterThanOrEqual(5);
  for (const s of services) {
    expect(checks[`up ${s}`].ok).toBe(true);
    expect(checks[`stop ${s}`].ok).toBe(true);
  }
  expect(checks.link.ok).toBe(true);
  expect(checks['work item'].detail).toMatch(/recorded its result and acknowledged it/);
  for (const kind of ['workflow', 'metrics', 'fingerprint', 'usage']) expect(checks[`crossing ${kind}`].ok).toBe(true);
  expect(checks['crossing metrics'].detail).toMatch(/signature verified/);
  // The four the rehearsal sent, and whatever the running platform agents sent meanwhile (a workflow message, a
  // metrics window): every crossing delivered, none failed or left without an outcome.
  const outcomes = JSON.parse(/"outcomes":(\{[^}]*\})/.exec(checks['audit log'].detail)![1]);
  expect(outcomes.delivered).toBeGreaterThanOrEqual(4);
  expect(outcomes).toMatchObject({ unconfirmed: 0, failed: 0, unknown: 0 });
  // The deploy-time function's database roles, on a real PostgreSQL set up as RDS creates it.
  expect(checks['database roles'].detail).toMatch(/answered SUCCESS; (\d+) agents have an IAM-only login role \(member of rds_iam\) and \1 a schema of their own/);
  // First deploy: the leaf stays up without the vendor's credentials; it links once they are stored.
  expect(checks['leaf before credentials'].ok).toBe(true);
  // ElastiCache's users from the template, applied to a real Redis: each agent its own keys only.
  expect(checks['redis users'].detail).toMatch(/^\d+ agents' users each write their own keys and no other agent's; the default user is off$/);
  // What it could not run is said, with the reason.
  expect(report.skipped.map((s: any) => s.what)).toEqual(expect.arrayContaining(['service byoc-example-otel-collector']));
  expect(output).toMatch(/rehearsal: PASSED/);
});

test('a plane whose gateway would crash on first create fails the rehearsal, naming the gateway', () => {
  // The gateway's task definition loses one of its secrets: the container exits at start.
  const mutate = path.join(dir, 'drop-gateway-secret.js');
  fs.writeFileSync(mutate, `
    const fs = require('fs'); const path = require('path');
    module.exports.default = (assembly) => {
      const file = path.join(assembly, 'ByocCustomerPlane.template.json');
      const t = JSON.parse(fs.readFileSync(file, 'utf8'));
      for (const r of Object.values(t.Resources)) {
        if (r.Type !== 'AWS::ECS::TaskDefinition' || !/boundary-gateway/.test(JSON.stringify(r.Properties.Family))) continue;
        const c = r.Properties.ContainerDefinitions[0];
        c.Secrets = c.Secrets.filter((s) => s.Name !== 'BYOC_PROVISIONER_PASSWORD');
      }
      fs.writeFileSync(file, JSON.stringify(t));
    };`);
  const { status, report } = rehearse('--mutate', mutate);
  expect(status).toBe(1);
  expect(report.ok).toBe(false);
  const failure = report.checks.find((c: any) => !c.ok);
  expect(failure.detail).toMatch(/byoc-example-boundary-gateway exited/);
  expect(failure.detail).toMatch(/BYOC_PROVISIONER_PASSWORD/);
});
