import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../../lib/app';
import { CONTAINER_USER } from '../../customer-plane/hardened-service';
import { GATEWAY_ENTRY } from '../../customer-plane/link';

const dockerfile = fs.readFileSync(path.join(projectRoot(), 'agents', 'runtime', 'Dockerfile'), 'utf8');
const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => /^[A-Z]+ /.test(l));

/** The RUN guard as it runs in the build, executed by sh with a given NODE_IMAGE. */
function guard(image: string): number | null {
  const run = instructions.find((l) => l.startsWith('RUN case'))!.slice('RUN '.length);
  return spawnSync('sh', ['-c', run], { env: { NODE_IMAGE: image, PATH: process.env.PATH }, encoding: 'utf8' }).status;
}

test('the base image must be pinned by digest: the build guard accepts only name@sha256:<64 hex>', () => {
  expect(instructions[0]).toBe('ARG NODE_IMAGE');
  expect(instructions[1]).toBe('FROM ${NODE_IMAGE}');
  expect(guard(`node:20-bookworm-slim@sha256:${'a1'.repeat(32)}`)).toBe(0);
  for (const bad of ['node:20-bookworm-slim', 'node:latest', 'node@sha256:abc', `node@sha256:${'Z'.repeat(64)}`, `node@sha256:${'a'.repeat(63)}`, '']) {
    expect({ bad, status: guard(bad) }).toEqual({ bad, status: 1 });
  }
});

test('the base image must be a supported Node.js LTS line (22 or 24), and the bundles target it', () => {
  const run = instructions.find((l) => l.startsWith('RUN case "$(node --version)"'))!.slice('RUN '.length);
  const withNode = (version: string) => spawnSync('sh', ['-c', run.replace('$(node --version)', version)], { encoding: 'utf8' }).status;
  expect(withNode('v22.12.0')).toBe(0);
  expect(withNode('v24.1.0')).toBe(0);
  expect(withNode('v20.19.0')).toBe(1);
  expect(withNode('v18.20.0')).toBe(1);
  expect(fs.readFileSync(path.join(projectRoot(), 'scripts', 'postbuild.js'), 'utf8')).toContain("target: 'node22'");
  expect(dockerfile).toContain('--platform linux/arm64');
});

test('the image runs as the unprivileged user the plane expects, with the runtime and the gateway bundles', () => {
  expect(instructions).toContain(`USER ${CONTAINER_USER}`);
  expect(instructions.indexOf(`USER ${CONTAINER_USER}`)).toBeGreaterThan(instructions.findIndex((l) => l.startsWith('COPY')));
  expect(instructions).toContain('COPY dist/agent-runtime.js dist/boundary-gateway.js /app/');
  expect(GATEWAY_ENTRY).toBe('/app/boundary-gateway.js');
  expect(instructions[instructions.length - 1]).toBe('CMD ["node", "/app/agent-runtime.js"]');
  for (const f of ['agent-runtime.js', 'boundary-gateway.js']) expect(fs.existsSync(path.join(projectRoot(), 'dist', f))).toBe(true);
  expect(dockerfile).not.toMatch(/ENV [^\n]*(PASSWORD|TOKEN|SECRET|KEY)/);
});
