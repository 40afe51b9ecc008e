import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { projectRoot } from '../../lib/app';

/**
 * `npm run rehearse -- --end-to-end`: the vendor's side and the customer's, each from its own synthesized
 * templates and with its own tools. The control plane's hub nodes start from their task definitions;
 * `byoc customer add` registers the customer on them and writes its plane configuration; the vendor
 * synthesizes it, `byoc sign`s it with a KMS key, the customer `byoc verify`s it; the plane runs from the
 * verified bundle, links with the issued `.creds`, every outbound kind crosses; the customer's audit key is
 * registered and the vendor's ingest service (its built entry point) stores each kind, its learning-pool
 * publisher sends the pool back to the agent that declares it; `byoc customer revoke` cuts the link while the
 * plane runs.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-end-to-end-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('customer add, plane configuration, synth, sign, verify, link, every kind crosses and is stored by ingest, the learning pool comes back, revoke cuts the link', () => {
  const reportFile = path.join(dir, 'report.json');
  const r = spawnSync(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'rehearse.js'), '--end-to-end', '--grace', '5', '--report', reportFile], {
    encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' }, timeout: 300000,
  });
  if (!fs.existsSync(reportFile)) throw new Error(`the run wrote no report (exit ${r.status}):\n${`${r.stdout}${r.stderr}`.slice(-3000)}`);
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'));
  const failed = report.checks.filter((c: any) => !c.ok);
  expect({ status: r.status, failed }).toEqual({ status: 0, failed: [] });
  const names = report.checks.map((c: any) => c.name);
  // In this order: the vendor registers, signs and hands over; the plane links; each kind crosses; the revocation cuts it.
  const order = ['vendor hub', 'customer add', 'sign', 'pubkey', 'verify', 'link', 'crossing workflow', 'crossing metrics', 'crossing fingerprint', 'crossing usage',
    'audit key registered', 'ingest', 'learning inbound', 'customer revoke'];
  expect(order.map((n) => names.indexOf(n))).toEqual([...order.map((n) => names.indexOf(n))].sort((a, b) => a - b));
  expect(order.filter((n) => !names.includes(n))).toEqual([]);
  const byName = Object.fromEntries(report.checks.map((c: any) => [c.name, c.detail]));
  expect(byName['vendor hub']).toMatch(/^3 nodes from the control plane's synthesized task definitions/);
  expect(byName.verify).toMatch(/^verified .*: release 1\.0\.0/);
  expect(byName['crossing metrics']).toMatch(/signature verified/);
  // The vendor's ingest service stored each outbound kind; its learning-pool publisher sent the pool back.
  expect(byName.ingest).toMatch(/stored each kind in DynamoDB \(usage [1-9]\d*, metrics [1-9]\d*, workflow [1-9]\d*, fingerprint [1-9]\d*\).*0 rejections/);
  expect(byName['learning inbound']).toMatch(/came back to pattern-miner on boundary\.inbox\.learning/);
  expect(byName['customer revoke']).toMatch(/cut the leaf off without a restart/);
  expect(report.substitutions.join('\n')).toMatch(/byoc customer add/);
});
