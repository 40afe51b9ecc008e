// Bundles the boundary gateway into one minified file for its container image: dist/boundary-gateway.js.
const esbuild = require('esbuild');
const path = require('path');
esbuild.buildSync({
  entryPoints: [path.join(__dirname, '..', 'customer-plane', 'boundary-gateway', 'main.ts')],
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  outfile: path.join(__dirname, '..', 'dist', 'boundary-gateway.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
