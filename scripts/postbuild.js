// After tsc: bundle the boundary gateway into one minified file for its container (dist/boundary-gateway.js),
// and make the `byoc` CLI executable (npm links bins before `prepare` builds them on a fresh clone).
const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
esbuild.buildSync({
  entryPoints: [path.join(root, 'customer-plane', 'boundary-gateway', 'main.ts')],
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  outfile: path.join(root, 'dist', 'boundary-gateway.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
fs.chmodSync(path.join(root, 'dist', 'bin', 'byoc.js'), 0o755);
