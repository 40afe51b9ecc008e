// After tsc: bundle the boundary gateway and the agent runtime into one minified file each for their
// containers (dist/boundary-gateway.js, dist/agent-runtime.js),
// and make the `byoc` CLI executable (npm links bins before `prepare` builds them on a fresh clone).
const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
for (const [entry, out] of [
  [path.join(root, 'customer-plane', 'boundary-gateway', 'main.ts'), 'boundary-gateway.js'],
  [path.join(root, 'agents', 'runtime', 'main.ts'), 'agent-runtime.js'],
]) {
  esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node22',
    outfile: path.join(root, 'dist', out),
    legalComments: 'none',
    logLevel: 'warning',
  });
}
fs.chmodSync(path.join(root, 'dist', 'bin', 'byoc.js'), 0o755);
