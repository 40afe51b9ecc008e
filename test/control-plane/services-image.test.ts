import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { INGEST_BUNDLE, INGEST_ENTRY_POINT } from '../../control-plane/ingest/settings';
import { CONTAINER_USER } from '../../customer-plane/hardened-service';
import { projectRoot } from '../../lib/app';

/**
 * The vendor's services image (`control-plane/Dockerfile`). No Docker daemon runs here, so its instructions are
 * checked as text and its shell steps run as they are written, with sh, on the real build output.
 */

const DOCKERFILE = fs.readFileSync(path.join(projectRoot(), 'control-plane', 'Dockerfile'), 'utf8');
/** The instructions, continuation lines joined, comments dropped. */
const instructions = DOCKERFILE.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
const runs = instructions.filter((l) => l.startsWith('RUN ')).map((l) => l.slice(4));
const sh = (script: string, env: Record<string, string> = {}) => spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-services-image-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('the base image must be pinned by digest, in both stages', () => {
  expect(instructions.filter((l) => l.startsWith('FROM '))).toEqual(['FROM ${NODE_IMAGE} AS bundles', 'FROM ${NODE_IMAGE}']);
  const check = runs.find((r) => r.includes('must be pinned by digest'))!;
  const digest = 'a'.repeat(64);
  expect(sh(check, { NODE_IMAGE: `node:22-bookworm-slim@sha256:${digest}` }).status).toBe(0);
  for (const bad of ['node:22-bookworm-slim', 'node:22@sha256:abc', `node:22@sha256:${'g'.repeat(64)}`, `node:22@sha256:${digest}0`]) {
    const r = sh(check, { NODE_IMAGE: bad });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`NODE_IMAGE must be pinned by digest (name@sha256:<64 hex>), got: ${bad}`);
  }
});

test('the base image must run Node.js 22 or 24', () => {
  const check = runs.find((r) => r.includes('node --version'))!;
  const bin = fs.mkdtempSync(path.join(tmp, 'bin-'));
  const node = (version: string) => {
    fs.writeFileSync(path.join(bin, 'node'), `#!/bin/sh\necho ${version}\n`, { mode: 0o755 });
    return sh(check, { PATH: `${bin}:${process.env.PATH}` });
  };
  expect(node('v22.11.0').status).toBe(0);
  expect(node('v24.1.0').status).toBe(0);
  const old = node('v20.19.0');
  expect(old.status).toBe(1);
  expect(old.stderr).toContain('NODE_IMAGE must be Node.js 22 or 24 (a supported LTS line), got v20.19.0');
});

test('from dist/control-plane/ the image takes exactly the bundles scripts/postbuild.js writes there, none of tsc\'s output', () => {
  const dist = path.join(projectRoot(), 'dist', 'control-plane');
  expect(fs.existsSync(path.join(dist, INGEST_BUNDLE))).toBe(true);
  const postbuild = fs.readFileSync(path.join(projectRoot(), 'scripts', 'postbuild.js'), 'utf8');
  const bundles = [...postbuild.matchAll(/path\.join\('control-plane', '([^']+\.js)'\)/g)].map((m) => m[1]).sort();
  expect(bundles).toContain(INGEST_BUNDLE);

  const copy = instructions.find((l) => l.startsWith('COPY dist/control-plane/'))!;
  expect(copy).toBe('COPY dist/control-plane/ /staging/');
  const filter = runs.find((r) => r.includes('/bundles'))!;
  const staging = path.join(tmp, 'staging');
  const out = path.join(tmp, 'bundles');
  fs.cpSync(dist, staging, { recursive: true });
  const run = (from: string, to: string) => sh(filter.split('/staging/').join(`${from}/`).split('/bundles').join(to));
  const r = run(staging, out);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(fs.readdirSync(out).sort()).toEqual(bundles);
  // Each bundle is self-contained: no require of a file beside it.
  for (const b of bundles) expect(fs.readFileSync(path.join(out, b), 'utf8')).not.toMatch(/require\("\.\.?\//);

  // Without the ingest bundle (not built), the build stops, naming the fix.
  const empty = path.join(tmp, 'staging-without');
  fs.mkdirSync(empty);
  fs.copyFileSync(path.join(dist, 'hub.js'), path.join(empty, 'hub.js'));
  const missing = run(empty, path.join(tmp, 'bundles-without'));
  expect(missing.status).toBe(1);
  expect(missing.stderr).toContain(`dist/control-plane/${INGEST_BUNDLE} is missing: run npm run build first`);
});

test('the final stage: the bundles in /app, the unprivileged user the tasks run as, the ingest service by default', () => {
  const final = instructions.slice(instructions.lastIndexOf('FROM ${NODE_IMAGE}'));
  expect(final).toEqual([
    'FROM ${NODE_IMAGE}',
    'WORKDIR /app',
    'COPY --from=bundles /bundles/ /app/',
    'ENV NODE_ENV=production',
    `USER ${CONTAINER_USER}`,
    `CMD ["node", "${INGEST_ENTRY_POINT}"]`,
  ]);
  expect(INGEST_ENTRY_POINT).toBe(`/app/${INGEST_BUNDLE}`);
});
