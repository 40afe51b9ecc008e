/**
 * One measured synth in a fresh process: `node synth-child.js KIND OUTDIR`. Prints one JSON line:
 * wall time of loading and synthesizing, peak RSS, and resources per template.
 */
import * as fs from 'fs';
import * as path from 'path';

const started = process.hrtime.bigint();
const [kind, outdir] = process.argv.slice(2);

/* eslint-disable @typescript-eslint/no-require-imports */
const { createApp } = require('../lib/app');
const { Stack } = require('aws-cdk-lib');
const app = createApp({ outdir });
switch (kind) {
  case 'empty': {
    // A template needs one resource: a wait-condition handle is inert and has no properties to check.
    const { CfnWaitConditionHandle } = require('aws-cdk-lib');
    new CfnWaitConditionHandle(new Stack(app, 'Empty'), 'Nothing');
    break;
  }
  case 'customer-plane':
    require('../bin/customer-plane').buildCustomerPlaneApp(app);
    break;
  case 'customer-plane-60': {
    const { CustomerPlaneStack } = require('../customer-plane/stack');
    const { loadCustomerPlaneConfig } = require('../customer-plane/config');
    const { AGENT_CATALOG } = require('../agents/catalog');
    const { projectRoot } = require('../lib/app');
    const catalog = Array.from({ length: 60 }, (_, i) => ({
      ...AGENT_CATALOG[i % AGENT_CATALOG.length],
      name: `agent-${String(i).padStart(3, '0')}`,
      group: `group-${String(Math.floor(i / 20)).padStart(2, '0')}`,
    }));
    const props = loadCustomerPlaneConfig(path.join(projectRoot(), 'config', 'example-customer.json'));
    new CustomerPlaneStack(app, 'ByocCustomerPlane', { ...props, catalog });
    break;
  }
  case 'control-plane':
    require('../bin/control-plane').buildControlPlaneApp(app);
    break;
  default:
    throw new Error(`unknown app ${kind}`);
}
app.synth();
const ms = Number(process.hrtime.bigint() - started) / 1e6;
const templates = fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json'));
const resources = Object.fromEntries(templates.map((f) => [f, Object.keys(JSON.parse(fs.readFileSync(path.join(outdir, f), 'utf8')).Resources ?? {}).length]));
console.log(JSON.stringify({ kind, ms, maxRssMiB: process.resourceUsage().maxRSS / 1024, resources }));
