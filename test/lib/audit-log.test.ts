import { generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AuditLogError, AuditLogWriter, verifyAuditLog } from '../../lib/audit-log';

const pair = () => {
  const k = generateKeyPairSync('ed25519');
  return { priv: k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), pub: k.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
};
const keys = pair();

async function writeLog(entries = 25, headEvery = 10): Promise<string> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-audit-')), 'audit.log');
  const w = new AuditLogWriter({ file, signingKeyPem: keys.priv, headEvery });
  for (let i = 0; i < entries; i++) w.append({ direction: i % 5 ? 'out' : 'in', kind: 'workflow', subject: 'byoc.example.out.workflow', payload: Buffer.from(`{"n":${i}}`) });
  await w.close();
  return file;
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').trimEnd().split('\n');
const write = (file: string, ls: string[]) => fs.writeFileSync(file, `${ls.join('\n')}\n`);
const entryLine = (ls: string[], seq: number) => ls.findIndex((l) => JSON.parse(l).type === 'entry' && JSON.parse(l).seq === seq);

test('a log verifies: every entry chained, every head signed', async () => {
  const file = await writeLog();
  expect(verifyAuditLog(file, keys.pub)).toEqual({ entries: 25, heads: 3, unsignedTail: 0 });
  const first = JSON.parse(lines(file)[0]);
  expect(Object.keys(first).sort()).toEqual(['at', 'direction', 'hash', 'kind', 'prev', 'seq', 'sha256', 'size', 'subject', 'type']);
});

test('a reopened log continues the chain', async () => {
  const file = await writeLog(5, 100);
  const w = new AuditLogWriter({ file, signingKeyPem: keys.priv });
  w.append({ direction: 'out', kind: 'usage', subject: 's', payload: Buffer.from('{}') });
  await w.close();
  expect(verifyAuditLog(file, keys.pub).entries).toBe(6);
});

test.each([
  ['altering an entry', (ls: string[]) => { const i = entryLine(ls, 7); const e = JSON.parse(ls[i]); e.size += 1; ls[i] = JSON.stringify(e); return ls; }, /entry 7 does not match its hash: it was altered/],
  ['altering an entry and its hash', (ls: string[]) => { const i = entryLine(ls, 7); const e = JSON.parse(ls[i]); e.kind = 'usage'; const { hash: _h, ...b } = e; void _h; e.hash = require('crypto').createHash('sha256').update(require('canonicalize')(b)).digest('hex'); ls[i] = JSON.stringify(e); return ls; }, /entry 8 does not chain to entry 7/],
  ['removing an entry', (ls: string[]) => { ls.splice(entryLine(ls, 12), 1); return ls; }, /entry 13 follows entry 11: entries 12..12 were removed/],
  ['reordering two entries', (ls: string[]) => { const a = entryLine(ls, 3); const b = entryLine(ls, 4); [ls[a], ls[b]] = [ls[b], ls[a]]; return ls; }, /entry 4 follows entry 2/],
  ['a head signed with another key', (ls: string[]) => { const i = ls.findIndex((l) => JSON.parse(l).type === 'head'); const h = JSON.parse(ls[i]); h.signature = Buffer.alloc(64).toString('base64'); ls[i] = JSON.stringify(h); return ls; }, /signature of the head at entry 10 does not verify/],
  ['a line that is not JSON', (ls: string[]) => { ls[4] = 'garbage'; return ls; }, /line 5: not a JSON record/],
])('%s is detected, naming the first broken entry', async (_name, tamper, message) => {
  const file = await writeLog();
  write(file, tamper(lines(file)));
  expect(() => verifyAuditLog(file, keys.pub)).toThrow(AuditLogError);
  expect(() => verifyAuditLog(file, keys.pub)).toThrow(message);
});

test('a truncated tail is reported as not covered by a signed head', async () => {
  const file = await writeLog(25, 10);
  const ls = lines(file);
  write(file, ls.slice(0, entryLine(ls, 23) + 1));
  expect(verifyAuditLog(file, keys.pub)).toEqual({ entries: 23, heads: 2, unsignedTail: 3 });
});

test('with an interval, a head is signed over entries added since the last one, without waiting for the count', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-audit-')), 'audit.log');
  const w = new AuditLogWriter({ file, signingKeyPem: keys.priv, headEvery: 1000, headIntervalMs: 50 });
  w.append({ direction: 'out', kind: 'usage', subject: 's', payload: Buffer.from('{}') });
  await new Promise((r) => setTimeout(r, 200));
  w.append({ direction: 'out', kind: 'usage', subject: 's', payload: Buffer.from('{}') });
  await w.close();
  const types = lines(file).map((l) => JSON.parse(l).type);
  expect(types).toEqual(['entry', 'head', 'entry', 'head']); // one timed head, one at close, none while idle
  expect(verifyAuditLog(file, keys.pub)).toEqual({ entries: 2, heads: 2, unsignedTail: 0 });
});
