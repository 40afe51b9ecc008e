import * as fs from 'fs';
import * as path from 'path';
import * as semver from 'semver';
import { projectRoot } from '../lib/app';

/**
 * The Node.js version the README states, the kit's `engines` and every installed dependency's `engines` agree:
 * the oldest Node.js the kit claims to run on satisfies each package of the lock file (npm ci warns otherwise).
 */
test('the README, engines and every dependency of the lock file agree on the oldest Node.js the kit runs on', () => {
  const root = projectRoot();
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const oldest = semver.minVersion(pkg.engines.node)!;
  expect(fs.readFileSync(path.join(root, 'README.md'), 'utf8')).toContain(`Node.js ${oldest.major} or newer`);
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
  const refusing = Object.entries<any>(lock.packages)
    .filter(([name, p]) => name !== '' && !p.dev && typeof p.engines?.node === 'string' && !semver.satisfies(oldest, p.engines.node.replace(/\.x\b/g, '')))
    .map(([name, p]) => `${name.replace(/^node_modules\//, '')} needs Node.js ${p.engines.node}`);
  expect(refusing).toEqual([]);
});
