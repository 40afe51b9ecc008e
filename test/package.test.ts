import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { KIT_FEATURE_FLAGS, cdkJsonContext, projectRoot } from '../lib/app';
import { contractHash } from '../lib/boundary-contract';

/**
 * The kit as a consumer gets it: `npm pack` of the built checkout, the tarball installed into an empty project
 * beside the consumer's own aws-cdk-lib and constructs (the peer dependencies), a plain JavaScript app on the
 * public API, and the packed `byoc` CLI run through `npx` as a customer would. Needs `npm run build` first,
 * as every test does; the install reads the local npm cache first and asks the registry only for what it lacks.
 */

const ROOT = projectRoot();
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string; version: string; main: string; types: string; bin: Record<string, string>;
  peerDependencies: Record<string, string>; devDependencies: Record<string, string>; dependencies: Record<string, string>;
};
const FLAG = '@aws-cdk/aws-ec2:restrictDefaultSecurityGroup';

let work: string;
let project: string;
let tarball: string;
let packed: string[];

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1', ...env } });
}

/** stderr without npm's own warnings about this machine's npm configuration. */
const errOf = (r: SpawnSyncReturns<string>) => r.stderr.split('\n').filter((l) => !l.startsWith('npm warn')).join('\n');

function ok(r: SpawnSyncReturns<string>): string {
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** A consumer's app on the public API only: the example configuration and a catalog of its own two agents. */
const APP = `
const path = require('path');
const byoc = require(${JSON.stringify(PKG.name)});
const app = byoc.createApp({ outdir: process.argv[2] });
const props = byoc.loadCustomerPlaneConfig(path.join(__dirname, 'example-customer.json'));
const agent = (name, rest) => ({ name, group: 'books', cpu: 256, memoryMiB: 512, secrets: [], ...rest,
  subjects: { subscribe: [byoc.workSubject(name)], publish: ['events.books.done'] } });
const catalog = [
  agent('ledger-sync', { purpose: 'Copies invoices into the ledger.', trigger: byoc.AgentTrigger.REQUEST, dataStores: [byoc.DataStore.POSTGRES] }),
  agent('nightly-report', { purpose: 'Writes the nightly summary.', trigger: byoc.AgentTrigger.SCHEDULE, schedule: 'cron(0 2 * * ? *)', dataStores: [byoc.DataStore.WORKSPACE] }),
];
// The vendor's own contract: the kit's, shipped as JSON, narrowed to what this product sends (no learning pool).
const kit = byoc.loadContractFile(require.resolve(${JSON.stringify(`${PKG.name}/config/boundary-contract.json`)}));
const contract = { version: 1, kinds: kit.kinds.filter((k) => k.name !== 'fingerprint' && k.name !== 'learning') };
if (byoc.catalogProblems(catalog, contract).length) throw new Error(JSON.stringify(byoc.catalogProblems(catalog, contract)));
new byoc.CustomerPlaneStack(app, 'ByocCustomerPlane', { ...props, catalog, contract });
console.log(JSON.stringify({ flag: app.node.tryGetContext(${JSON.stringify(FLAG)}) }));
app.synth();
`;

/** The vendor's side, from the example configuration the package ships. */
const VENDOR_APP = `
const byoc = require(${JSON.stringify(PKG.name)});
const app = byoc.createApp({ outdir: process.argv[2] });
new byoc.ControlPlaneStack(app, 'ByocControlPlane', byoc.loadControlPlaneConfig(require.resolve(${JSON.stringify(`${PKG.name}/config/example-vendor.json`)})));
app.synth();
`;

/** A stack the kit's checks must refuse: an S3 bucket with none of the settings the nag packs ask for. */
const BAD_APP = `
const { Stack } = require('aws-cdk-lib');
const s3 = require('aws-cdk-lib/aws-s3');
const { createApp } = require(${JSON.stringify(PKG.name)});
const app = createApp({ outdir: process.argv[2] });
new s3.Bucket(new Stack(app, 'Plain'), 'Bucket');
app.synth();
`;

/** Typed use of the public API: resolved through the package's \`types\`. */
const TYPED = `
import { App } from 'aws-cdk-lib';
import { AgentSpec, CustomerPlaneStack, CustomerPlaneStackProps, createApp, verifyBundle, Verified } from '${PKG.name}';
const app: App = createApp();
declare const props: CustomerPlaneStackProps;
const catalog: readonly AgentSpec[] = props.catalog ?? [];
new CustomerPlaneStack(app, 'P', { ...props, catalog });
const v: Verified = verifyBundle('bundle', 'public.pem');
export const version: string = v.release.version;
// @ts-expect-error: a catalog entry needs a name
const wrong: AgentSpec = { purpose: 'x' };
export { wrong };
`;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-package-'));
  const out = ok(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT));
  const [info] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(work, info.filename);
  packed = info.files.map((f) => f.path);
  project = path.join(work, 'consumer');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  for (const f of ['example-customer.json', 'example-vendor-hub-ca.pem']) fs.copyFileSync(path.join(ROOT, 'config', f), path.join(project, f));
  fs.writeFileSync(path.join(project, 'app.js'), APP);
  fs.writeFileSync(path.join(project, 'bad.js'), BAD_APP);
  fs.writeFileSync(path.join(project, 'vendor.js'), VENDOR_APP);
  ok(run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error',
    tarball, `aws-cdk-lib@${PKG.devDependencies['aws-cdk-lib']}`, `constructs@${PKG.devDependencies.constructs}`], project));
}, 300_000);

afterAll(() => { if (work) fs.rmSync(work, { recursive: true, force: true }); });

test('package.json: a scoped public package whose main, types and bin are in the tarball; aws-cdk-lib and constructs are peers', () => {
  expect(PKG.name).toMatch(/^@[a-z0-9-]+\/[a-z0-9-]+$/);
  expect(PKG).not.toHaveProperty('private');
  for (const file of [PKG.main, PKG.types, PKG.bin.byoc]) expect(packed).toContain(file);
  expect(PKG.main).toBe('dist/index.js');
  for (const peer of ['aws-cdk-lib', 'constructs']) {
    expect(PKG.dependencies).not.toHaveProperty(peer);
    // The checkout builds and tests with exactly the version the peer range starts at.
    expect(PKG.peerDependencies[peer]).toBe(`^${PKG.devDependencies[peer]}`);
  }
});

test('the tarball ships the compiled kit and the runtime assets it needs, and no tests, benchmarks, rehearsal or sources', () => {
  for (const asset of ['dist/deploy-time/index.js', 'dist/rds-ca-bundle.pem', 'dist/agent-runtime.js', 'dist/boundary-gateway.js',
    'dist/control-plane/byoc-ingest.js', 'agents/runtime/Dockerfile', 'control-plane/Dockerfile', 'config/example-customer.json']) {
    expect(packed).toContain(asset);
  }
  expect(packed.filter((f) => /^dist\/(test|bench|rehearsal)\/|^dist\/bin\/(rehearse|docs)\.|\.test\.|(?<!\.d)\.ts$/.test(f))).toEqual([]);
  // Every compiled module comes from a source of the checkout: nothing left in dist/ by a moved or deleted file
  // (`npm pack` without --ignore-scripts empties dist/ in prepack and builds it again in prepare).
  const bundles = ['dist/agent-runtime.js', 'dist/boundary-gateway.js', 'dist/deploy-time/index.js', 'dist/control-plane/llm-proxy-server.js', 'dist/control-plane/byoc-ingest.js'];
  const compiled = packed.filter((f) => /^dist\/.*\.(js|d\.ts)$/.test(f) && !bundles.includes(f));
  expect(compiled.filter((f) => !fs.existsSync(path.join(ROOT, f.slice('dist/'.length).replace(/(\.d\.ts|\.js)$/, '.ts'))))).toEqual([]);
  expect(compiled).toEqual(expect.arrayContaining(['dist/customer-plane/customer-plane.js', 'dist/lib/boundary-contract.d.ts']));
});

test('the feature flags createApp applies are the ones the checkout\'s cdk.json gives cdk commands', () => {
  expect(KIT_FEATURE_FLAGS).toEqual(cdkJsonContext());
});

test('a JavaScript app synthesizes a customer plane with its own two-agent catalog from the installed package', () => {
  const outdir = path.join(work, 'assembly');
  // A consumer's cdk.json (the CLI passes its context in CDK_CONTEXT_JSON) cannot switch off a flag the kit's templates were checked with.
  const r = run(process.execPath, ['app.js', outdir], project, { CDK_CONTEXT_JSON: JSON.stringify({ [FLAG]: false }) });
  expect({ status: r.status, out: r.stdout.trim() }).toEqual({ status: 0, out: JSON.stringify({ flag: true }) });
  // The kit's modules came from the installed package, beside the consumer's one aws-cdk-lib.
  expect(fs.existsSync(path.join(project, 'node_modules', 'aws-cdk-lib'))).toBe(true);
  expect(fs.existsSync(path.join(project, 'node_modules', ...PKG.name.split('/'), 'node_modules', 'aws-cdk-lib'))).toBe(false);
  const templates = fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json')).map((f) => fs.readFileSync(path.join(outdir, f), 'utf8'));
  const services = templates.flatMap((t) => Object.values((JSON.parse(t) as { Resources: Record<string, { Type: string }> }).Resources))
    .filter((res) => res.Type === 'AWS::ECS::Service');
  // Two agents plus the plane's own services (collector, NATS leaf, gateway), and none of the product's catalog.
  const text = templates.join('\n');
  expect({ ledger: text.includes('ledger-sync'), report: text.includes('nightly-report'), productAgent: text.includes('request-router') })
    .toEqual({ ledger: true, report: true, productAgent: false });
  expect(services.length).toBe(2 + 3);
  // The vendor's own contract, recorded in the template and given to the gateway: not the kit's.
  const root = JSON.parse(fs.readFileSync(path.join(outdir, 'ByocCustomerPlane.template.json'), 'utf8'));
  const record = root.Metadata['Byoc::BoundaryContract'];
  expect({ version: record.version, kinds: JSON.parse(record.contract).kinds.map((k: { name: string }) => k.name), kit: record.hash === contractHash() })
    .toEqual({ version: 1, kinds: ['workflow', 'metrics', 'usage', 'control'], kit: false });
  const hashes = Object.values(root.Resources as Record<string, { Type: string; Properties: any }>).filter((r) => r.Type === 'AWS::ECS::TaskDefinition')
    .flatMap((r) => r.Properties.ContainerDefinitions).flatMap((c: { Environment?: { Name: string; Value: unknown }[] }) => c.Environment ?? [])
    .filter((e) => e.Name === 'BYOC_CONTRACT_HASH').map((e) => e.Value);
  expect(hashes).toEqual([record.hash]);
  // The deploy-time function's code came from the package's own dist/deploy-time.
  expect(fs.readdirSync(outdir).some((f) => f.startsWith('asset.') && fs.existsSync(path.join(outdir, f, 'index.js')))).toBe(true);
});

test('a JavaScript app synthesizes the control plane from the installed package and its example configuration', () => {
  const outdir = path.join(work, 'control-assembly');
  const r = run(process.execPath, ['vendor.js', outdir], project);
  expect({ status: r.status, err: errOf(r) }).toEqual({ status: 0, err: '' });
  const template = JSON.parse(fs.readFileSync(path.join(outdir, 'ByocControlPlane.template.json'), 'utf8')) as { Resources: Record<string, { Type: string }> };
  expect(Object.values(template.Resources).filter((res) => res.Type === 'AWS::ECR::Repository').length).toBeGreaterThanOrEqual(4);
});

test('createApp from the installed package brings the nag packs: an unacknowledged finding fails the consumer\'s synth', () => {
  const r = run(process.execPath, ['bad.js', path.join(work, 'bad-assembly')], project);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/AwsSolutions-S1/);
});

test('TypeScript finds the public API\'s declarations through `types`', () => {
  fs.writeFileSync(path.join(project, 'typed.ts'), TYPED);
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = run(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'commonjs', '--target', 'es2022',
    '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--types', 'node', 'typed.ts'], project);
  expect({ status: r.status, out: r.stdout }).toEqual({ status: 0, out: '' });
});

test('the packed byoc runs through npx: --version, keygen, sign and verify of that plane, a changed file refused', () => {
  const npx = (...args: string[]) => run('npx', ['--no-install', 'byoc', ...args], project, { BYOC_STATE_DIR: path.join(work, 'state') });
  expect(ok(npx('--version')).trim()).toBe(PKG.version);
  const keys = path.join(work, 'keys');
  ok(npx('keygen', '--out', keys));
  const bundle = path.join(work, 'bundle');
  expect(ok(npx('sign', path.join(work, 'assembly'), '--key', path.join(keys, 'private.pem'), '--out', bundle, '--version', '1.0.0',
    '--hub-endpoint', 'tls://hub.byoc.vendor.example:7422'))).toMatch(/^signed .*: release 1\.0\.0 of customer example's plane, 3 images/);
  const verified = npx('verify', bundle, '--public-key', path.join(keys, 'public.pem'));
  expect({ status: verified.status, out: verified.stdout }).toEqual({ status: 0, out: expect.stringMatching(/^verified \S+: release 1\.0\.0 of customer example's plane, \d+ files, signed by sha256:[0-9a-f]{64}/) });
  const template = path.join(bundle, 'ByocCustomerPlane.template.json');
  fs.appendFileSync(template, ' ');
  const refused = npx('verify', bundle, '--public-key', path.join(keys, 'public.pem'));
  expect({ status: refused.status, err: errOf(refused) }).toEqual({ status: 1, err: 'byoc: file ByocCustomerPlane.template.json was changed after signing (SHA-256 mismatch)\n' });
});
