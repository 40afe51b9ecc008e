#!/usr/bin/env node
/**
 * `npm run docs`: regenerates the README's "what crosses the plane boundary" section from the contract and
 * prints the leakage bound. `--check` changes nothing and fails when the section is out of date.
 */
import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../lib/app';
import { kindsFor } from '../lib/boundary-contract';
import { withWhatCrosses } from '../lib/contract-docs';
import { leakageBound } from '../lib/leakage';

const file = path.join(projectRoot(), 'README.md');
const before = fs.readFileSync(file, 'utf8');
const after = withWhatCrosses(before);
if (process.argv.includes('--check')) {
  if (before !== after) {
    console.error('README.md: the what-crosses section is out of date with lib/boundary-contract.ts: run npm run docs');
    process.exit(1);
  }
  console.log('README.md is up to date');
} else {
  fs.writeFileSync(file, after);
  console.log(before === after ? 'README.md is up to date' : 'README.md: what-crosses section regenerated');
}
for (const shareLearning of [true, false]) {
  const b = leakageBound(kindsFor({ shareLearning }), { shareLearning });
  console.log(`leakage bound (shareLearning ${shareLearning ? 'on' : 'off'}): ${b.outboundBitsPerSecond} bits/s out (burst ${b.outboundBurstBits} bits), ${b.inboundBitsPerSecond} bits/s in (burst ${b.inboundBurstBits} bits)`);
}
