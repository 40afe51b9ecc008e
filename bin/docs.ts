#!/usr/bin/env node
/** `npm run docs`: regenerates the README's "what crosses the plane boundary" section from the contract. */
import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../lib/app';
import { withWhatCrosses } from '../lib/contract-docs';

const file = path.join(projectRoot(), 'README.md');
const before = fs.readFileSync(file, 'utf8');
const after = withWhatCrosses(before);
fs.writeFileSync(file, after);
console.log(before === after ? 'README.md is up to date' : 'README.md: what-crosses section regenerated');
