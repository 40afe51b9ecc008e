import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { writeReview } from '../../lib/review';
import { allResources, exampleProps, synthCustomerPlane } from '../synth';

/**
 * The review report of the real customer plane, loaded by Debian's headless Chromium from a file:// URL with
 * every host name unresolvable: a screenshot is taken and the DOM Chromium built is checked against the
 * templates (every IAM role, every security-group rule), the order of the sections and the absence of any
 * external reference.
 */
const dirs: string[] = [];
const tmp = (p: string) => { const d = fs.mkdtempSync(path.join(os.tmpdir(), `byoc-${p}-`)); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

let templates: Record<string, any>;
let dom: string;
let screenshot: string;

/** Runs headless Chromium on the report; its profile and temporary files stay in a folder removed after the test. */
function chromium(args: string[], home: string): { stdout: string; status: number | null; stderr: string } {
  const r = spawnSync('chromium', [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-breakpad', '--disable-crash-reporter',
    `--user-data-dir=${path.join(home, 'profile')}`, '--host-resolver-rules=MAP * ~NOTFOUND', ...args,
  ], { encoding: 'utf8', env: { ...process.env, HOME: home, TMPDIR: home }, timeout: 120000, maxBuffer: 64 * 1024 * 1024 });
  return { stdout: r.stdout, status: r.status, stderr: r.stderr };
}

beforeAll(() => {
  // As `npm run synth` writes it: the cdk CLI asks for each resource's construct path in its template metadata.
  const plane = synthCustomerPlane(exampleProps(), { 'aws:cdk:enable-path-metadata': true });
  templates = plane.templates;
  const out = tmp('review');
  const { files } = writeReview(plane.outdir, out);
  const home = tmp('chromium');
  const url = pathToFileURL(files.html).href;
  screenshot = path.join(out, 'report.png');
  const shot = chromium(['--window-size=1400,2400', `--screenshot=${screenshot}`, url], home);
  expect(shot.status).toBe(0);
  const dumped = chromium(['--dump-dom', url], home);
  expect(dumped.status).toBe(0);
  dom = dumped.stdout;
});

/** `data-<name>` values of the DOM's table rows, with the row's HTML. */
function rows(name: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of dom.matchAll(new RegExp(`<tr data-${name}="([^"]+)"[^>]*>([\\s\\S]*?)</tr>`, 'g'))) out.set(m[1].replace(/&amp;/g, '&'), m[2]);
  return out;
}

test('Chromium renders the report: a PNG screenshot and a DOM with the report\'s title', () => {
  const png = fs.readFileSync(screenshot);
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(png.readUInt32BE(16)).toBe(1400);
  expect(png.length).toBeGreaterThan(50_000);
  expect(dom).toMatch(/<h1>Security review: customer plane of example<\/h1>/);
});

test('every IAM role of the templates (root and nested) appears in the page, with its construct path', () => {
  const roles = allResources(templates).filter((r) => r.type === 'AWS::IAM::Role');
  expect(roles.length).toBeGreaterThan(60);
  const shown = rows('role');
  expect([...shown.keys()].sort()).toEqual(roles.map((r) => `${r.file}#${r.id}`).sort());
  for (const r of roles) expect(shown.get(`${r.file}#${r.id}`)).toContain(r.resource.Metadata['aws:cdk:path']);
});

test('every security-group rule of the templates appears in the page: rule resources and rules written in a group', () => {
  const all = allResources(templates);
  const standalone = all.filter((r) => r.type === 'AWS::EC2::SecurityGroupIngress' || r.type === 'AWS::EC2::SecurityGroupEgress')
    .map((r) => ({ key: `${r.file}#${r.id}`, rule: r.props, path: r.resource.Metadata['aws:cdk:path'] }));
  const inline = all.filter((r) => r.type === 'AWS::EC2::SecurityGroup').flatMap((g) => (['Ingress', 'Egress'] as const).flatMap((d) =>
    (g.props[`SecurityGroup${d}`] ?? []).map((rule: any, i: number) => ({ key: `${g.file}#${g.id}/${d.toLowerCase()}[${i}]`, rule, path: g.resource.Metadata['aws:cdk:path'] }))));
  const expected = [...standalone, ...inline];
  expect(standalone.length).toBeGreaterThan(25);
  const shown = rows('rule');
  expect([...shown.keys()].sort()).toEqual(expected.map((r) => r.key).sort());
  for (const r of expected) {
    const row = shown.get(r.key)!;
    expect(row).toContain(r.path);
    if (r.rule.IpProtocol === 'tcp') expect(row).toContain(`<td>${r.rule.FromPort === r.rule.ToPort ? r.rule.FromPort : `${r.rule.FromPort}-${r.rule.ToPort}`}</td>`);
  }
});

test('the questions come first, each answered, and the database question says no', () => {
  const sections = [...dom.matchAll(/<section id="([^"]+)"/g)].map((m) => m[1]);
  expect(sections[0]).toBe('questions');
  expect(sections).toEqual(expect.arrayContaining(['iam', 'network', 'contract', 'data', 'findings', 'diagram']));
  const questions = dom.slice(dom.indexOf('<section id="questions"'), dom.indexOf('</section>'));
  expect([...questions.matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1])).toEqual([
    'Can anything outside the account reach the plane?',
    'Can the plane reach the internet, and through what?',
    'What can the vendor reach, and how?',
    'Can the vendor reach my database?',
    'What leaves the account, and can I turn it off?',
  ]);
  const db = /<div class="question" id="q-database">[\s\S]*?<p class="answer">([\s\S]*?)<\/p>/.exec(dom)![1];
  expect(db).toMatch(/^No network path and no IAM permission lets the vendor reach it\./);
  expect(dom).toMatch(/<svg viewBox="0 0 \d+ \d+"[^>]*>[\s\S]*vendor account[\s\S]*<\/svg>/);
});

test('the page references nothing outside itself: no script, link, image, frame or URL but its own anchors', () => {
  expect(dom).not.toMatch(/<(script|link|img|iframe|object|embed|base)\b/i);
  expect(dom).not.toMatch(/@import/i);
  const refs = [...dom.matchAll(/\b(?:src|href|xlink:href|action|poster|data)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]);
  expect(refs.length).toBeGreaterThan(5);
  for (const r of refs) expect(r).toMatch(/^#/);
  for (const m of dom.matchAll(/url\(([^)]*)\)/g)) expect(m[1]).toMatch(/^#/);
  expect(dom).toMatch(/Content-Security-Policy" content="default-src 'none'/);
});
