import { ChildProcess, spawn } from 'child_process';
import { createHash, generateKeyPairSync } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import canonicalize from 'canonicalize';
import * as esbuild from 'esbuild';
import {
  anchorHeadsFromLines, AuditHead, AuditLogError, AuditLogWriter, AuditRecord, HeadAnchor, IntentInput, readAnchorFile, StdoutAnchor, verifyAuditLog,
} from '../../lib/audit-log';
import { Signer, signerFor } from '../../lib/signer';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'byoc-audit-'));
  dirs.push(d);
  return d;
};
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

function keyPair(type: 'ed25519' | 'ec') {
  const k = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const file = path.join(tmp(), 'private.pem');
  fs.writeFileSync(file, k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  return { file, pub: k.publicKey.export({ type: 'spki', format: 'pem' }).toString(), signer: signerFor(file) };
}
const ed = keyPair('ed25519');
const PAYLOAD_MARK = 'customer-secret-payload';

const intentOf = (i: number, o: Partial<IntentInput> = {}): IntentInput => ({
  direction: i % 5 ? 'out' : 'in', kind: 'workflow', subject: 'byoc.example.out.workflow', agent: 'planner', msgId: `m-${i}`, payload: Buffer.from(`{"${PAYLOAD_MARK}":${i}}`), ...o,
});
const tick = () => new Promise((r) => setImmediate(r));

/**
 * A log of `n` messages, each intent then delivered (every 7th failed), two rejections; heads by count; closed.
 * It yields after every record, so a head started by count is written right after the record it covers.
 */
async function writeLog(n = 25, headEvery = 10, anchor?: HeadAnchor, file = path.join(tmp(), 'audit.log')): Promise<string> {
  const w = await AuditLogWriter.open({ file, signer: ed.signer, headEvery, anchor });
  for (let i = 0; i < n; i++) {
    const seq = w.intent(intentOf(i));
    await tick();
    w.outcome(seq, i % 7 ? 'delivered' : 'failed', i % 7 ? undefined : 'publish failed: connection closed');
    await tick();
    if (i === 3 || i === 17) w.rejection({ direction: 'out', kind: 'workflow', subject: 'boundary.outbox.workflow', agent: 'planner', size: 12, sha256: 'c'.repeat(64), reason: 'schema', detail: '/agent must match pattern' });
    await tick();
  }
  await w.close();
  return file;
}

const lines = (file: string) => fs.readFileSync(file, 'utf8').trimEnd().split('\n');
const records = (file: string) => lines(file).map((l) => JSON.parse(l) as AuditRecord);
const write = (file: string, ls: string[]) => fs.writeFileSync(file, `${ls.join('\n')}\n`);
const lineOf = (ls: string[], seq: number) => ls.findIndex((l) => JSON.parse(l).seq === seq);
const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
/** Recomputes the hash of a record after it was edited, as a forger would. */
const rehash = (r: Record<string, unknown>) => { delete r.hash; r.hash = sha256(canonicalize(r)!); return JSON.stringify(r); };
const verify = (file: string, o: Parameters<typeof verifyAuditLog>[1] = {}) => verifyAuditLog(file, { publicKeyPem: ed.pub, ...o });

describe('writing', () => {
  test('one hash chain of intents, outcomes, rejections and signed heads; hashes and sizes, never payloads', async () => {
    const file = await writeLog();
    expect(verify(file)).toEqual({
      records: 25 * 2 + 2 + 6, intents: 25, outcomes: { delivered: 21, unconfirmed: 0, failed: 4, unknown: 0 }, openIntents: 0, rejections: 2, notes: 0,
      heads: 6, anchoredHeadsChecked: 0, unsignedTail: 0, incompleteTailBytes: 0, signaturesChecked: true, lastSeq: 58,
    });
    const rs = records(file);
    expect(rs.map((r) => r.seq)).toEqual(rs.map((_, i) => i + 1));
    expect(fs.readFileSync(file, 'utf8')).not.toContain(PAYLOAD_MARK);
    expect(rs[0]).toEqual({
      type: 'intent', seq: 1, at: expect.any(String), direction: 'in', kind: 'workflow', subject: 'byoc.example.out.workflow', agent: 'planner', msgId: 'm-0',
      size: Buffer.byteLength(`{"${PAYLOAD_MARK}":0}`), sha256: sha256(`{"${PAYLOAD_MARK}":0}`), prev: '0'.repeat(64), hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(rs[1]).toMatchObject({ type: 'outcome', seq: 2, intent: 1, result: 'failed', detail: 'publish failed: connection closed' });
    for (const r of rs) { // hash = sha256 of the RFC 8785 form without hash, chained by prev
      const { hash, ...body } = r;
      expect(sha256(canonicalize(body)!)).toBe(hash);
    }
    const heads = rs.filter((r) => r.type === 'head');
    for (const h of heads) {
      if (h.type !== 'head') continue;
      expect(h.head).toEqual({ type: 'head', seq: expect.any(Number), hash: rs[h.head.seq - 1].hash, at: expect.any(String), alg: 'ed25519', signature: expect.any(String) });
      expect(h.head.seq).toBeLessThan(h.seq);
    }
    expect(heads[heads.length - 1].seq).toBe(58); // close() signs a final head over everything
  });

  test('the writer canonicalizes exactly as canonicalize does, whatever the strings hold', async () => {
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: ed.signer });
    const odd = ['é', '\u2028', '"quoted"\\', '\u0000\u001f', '😀', '\ud800', 'a'.repeat(300)];
    for (const s of odd) w.outcome(w.intent(intentOf(1, { kind: s, subject: s, agent: s, msgId: s })), 'unconfirmed', s);
    w.rejection({ direction: 'in', kind: odd[1], subject: odd[2], size: 0, sha256: 'd'.repeat(64), reason: odd[3], detail: odd[4] });
    await w.close();
    for (const r of records(file)) {
      const { hash, ...body } = r;
      expect(sha256(canonicalize(body)!)).toBe(hash);
    }
    expect(verify(file).intents).toBe(odd.length);
  });

  test('each append is in the file when it returns (writeSync, no fsync); a batch is one write; heads are fsynced', async () => {
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: ed.signer, headEvery: 1000 });
    // Watch (call through) the real fs module the writer uses: one write per call, fsync only for heads.
    const nodeFs = jest.requireActual<typeof fs>('fs');
    const writes = jest.spyOn(nodeFs, 'writeSync');
    const fsyncs = jest.spyOn(nodeFs, 'fsyncSync');
    try {
      const seq = w.intent(intentOf(0));
      expect(records(file).map((r) => r.seq)).toEqual([seq]); // another reader sees it at once
      const seqs = w.intents(Array.from({ length: 100 }, (_, i) => intentOf(i + 1)));
      expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => seq + 1 + i));
      w.outcomes(seqs.map((intentSeq) => ({ intentSeq, result: 'delivered' as const })));
      expect(writes).toHaveBeenCalledTimes(3);
      expect(fsyncs).not.toHaveBeenCalled();
      expect(records(file)).toHaveLength(201);
      const head = await w.head();
      expect(head).toMatchObject({ seq: 201, hash: records(file)[200].hash });
      expect(fsyncs).toHaveBeenCalledTimes(1);
      expect(await w.head()).toBeUndefined(); // nothing new to sign
    } finally {
      writes.mockRestore();
      fsyncs.mockRestore();
    }
    await w.close();
  });

  test('bad input is refused with the field named, and nothing is written', async () => {
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: ed.signer });
    const seq = w.intent(intentOf(0));
    expect(() => w.intent({ ...intentOf(1), direction: 'sideways' as 'out' })).toThrow('intents[0].direction must be "out" or "in", got "sideways"');
    expect(() => w.intents([intentOf(1), { ...intentOf(2), payload: 'text' as unknown as Uint8Array }])).toThrow('intents[1].payload must be a Uint8Array');
    expect(() => w.intent({ ...intentOf(1), agent: 7 as unknown as string })).toThrow('intents[0].agent must be a string when given');
    expect(() => w.rejection({ direction: 'out', kind: 'k', subject: 's', size: 1, sha256: 'not-a-hash', reason: 'r', detail: 'd' })).toThrow('rejection.sha256 must be 64 lower-case hex digits');
    expect(() => w.outcome(seq + 5, 'delivered')).toThrow(`record ${seq + 5} is not an intent awaiting its outcome`);
    expect(() => w.outcome(seq, 'unknown' as 'delivered')).toThrow('result must be delivered, unconfirmed or failed');
    expect(() => w.outcomes([{ intentSeq: seq, result: 'delivered' }, { intentSeq: seq, result: 'failed' }])).toThrow(`outcomes[1]: record ${seq} is not an intent awaiting its outcome`);
    expect(records(file)).toHaveLength(1);
    w.outcome(seq, 'delivered');
    expect(() => w.outcome(seq, 'delivered')).toThrow(`record ${seq} is not an intent awaiting its outcome`);
    await w.close();
    expect(() => w.intent(intentOf(3))).toThrow(/is closed/);
    await expect(AuditLogWriter.open({ file, signer: ed.signer, headEvery: 0 })).rejects.toThrow('headEvery must be a positive integer, got 0');
  });

  test('close() gives intents still open an explicit unknown outcome', async () => {
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: ed.signer });
    const [a, b] = w.intents([intentOf(0), intentOf(1)]);
    w.outcome(a, 'delivered');
    await w.close();
    expect(records(file).find((r) => r.type === 'outcome' && r.intent === b)).toMatchObject({ result: 'unknown', detail: 'the audit log was closed before the outcome was known' });
    expect(verify(file).outcomes).toEqual({ delivered: 1, unconfirmed: 0, failed: 0, unknown: 1 });
  });
});

describe('heads', () => {
  test('signing is asynchronous: appends continue, and the head names the record it was computed at', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const slow: Signer = { algorithm: ed.signer.algorithm, publicKeyPem: () => ed.signer.publicKeyPem(), sign: async (d) => { await gate; return ed.signer.sign(d); } };
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: slow, headEvery: 4 });
    for (let i = 0; i < 2; i++) w.outcome(w.intent(intentOf(i)), 'delivered'); // 4 records: a head starts at record 4
    await tick();
    for (let i = 2; i < 5; i++) w.outcome(w.intent(intentOf(i)), 'delivered'); // appended while it is being signed
    expect(records(file).filter((r) => r.type === 'head')).toHaveLength(0);
    release();
    await new Promise((r) => setTimeout(r, 20));
    const rs = records(file);
    expect(rs[10]).toMatchObject({ type: 'head', seq: 11, head: { seq: 4, hash: rs[3].hash } });
    expect(verify(file, { acceptUnsignedTail: true })).toMatchObject({ heads: 1, unsignedTail: 6 });
    await w.close();
    expect(verify(file)).toMatchObject({ heads: 2, unsignedTail: 0 });
  });

  test('by interval when records were added, not while idle', async () => {
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: ed.signer, headEvery: 1000, headIntervalMs: 30 });
    w.outcome(w.intent(intentOf(0)), 'delivered');
    await new Promise((r) => setTimeout(r, 200));
    w.outcome(w.intent(intentOf(1)), 'delivered');
    await w.close();
    expect(records(file).map((r) => r.type)).toEqual(['intent', 'outcome', 'head', 'intent', 'outcome', 'head']);
  });

  test('every head goes to the anchor too: StdoutAnchor writes {"auditHead":...} lines, anchorHeadsFromLines reads them back', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => { text += d; });
    const file = await writeLog(25, 10, new StdoutAnchor(out));
    const inFile = records(file).flatMap((r) => (r.type === 'head' ? [r.head] : []));
    const anchorLines = text.trimEnd().split('\n');
    expect(anchorLines.map((l) => JSON.parse(l))).toEqual(inFile.map((auditHead) => ({ auditHead })));
    expect(anchorHeadsFromLines(anchorLines)).toEqual(inFile);
    expect(verify(file, { anchorHeads: anchorHeadsFromLines(anchorLines) })).toMatchObject({ anchoredHeadsChecked: 6 });

    // The same heads as the places a reviewer gets them from: a pino log line, a CloudWatch event, an S3 export.
    const h = inFile[0];
    const other = ['{"level":30,"msg":"ready"}', 'not json at all', ''];
    expect(anchorHeadsFromLines([
      ...other,
      JSON.stringify({ level: 30, time: 1, auditHead: h, msg: 'audit head' }),
      JSON.stringify({ timestamp: 1, message: JSON.stringify({ auditHead: h }), ingestionTime: 2 }),
      `2026-01-01T00:00:00.000Z ${JSON.stringify({ auditHead: h })}`,
    ])).toEqual([h, h, h]);
    expect(() => anchorHeadsFromLines(['{"auditHead": {"type":"head"}}'])).toThrow('anchor line 1: its "auditHead" is not a signed head naming a positive record seq');
    expect(() => anchorHeadsFromLines(['ok', 'auditHead: truncated {"au'])).toThrow('anchor line 2 mentions auditHead but holds no JSON object with an "auditHead" field');

    // A file as `aws logs filter-log-events` prints it.
    const exported = path.join(tmp(), 'events.json');
    fs.writeFileSync(exported, JSON.stringify({ events: anchorLines.map((message, i) => ({ logStreamName: 'gateway/x', timestamp: i, message })) }, null, 2));
    expect(readAnchorFile(exported)).toEqual(inFile);
  });

  test('a head that cannot be signed is reported, and the next one covers its records; close() rejects if it cannot sign', async () => {
    let fail = true;
    const flaky: Signer = { algorithm: 'ed25519', publicKeyPem: () => ed.signer.publicKeyPem(), sign: async (d) => { if (fail) throw new Error('KMS unavailable'); return ed.signer.sign(d); } };
    const errors: string[] = [];
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: flaky, headEvery: 2, onHeadError: (e) => errors.push(e.message) });
    w.outcome(w.intent(intentOf(0)), 'delivered');
    await tick(); await tick();
    expect(errors).toEqual(['KMS unavailable']);
    expect(records(file).some((r) => r.type === 'head')).toBe(false);
    fail = false;
    w.outcome(w.intent(intentOf(1)), 'delivered');
    await new Promise((r) => setTimeout(r, 20));
    expect(records(file).filter((r) => r.type === 'head').map((r) => r.type === 'head' && r.head.seq)).toEqual([4]);
    fail = true;
    w.intent(intentOf(2));
    await expect(w.close()).rejects.toThrow('KMS unavailable');
    expect(() => verify(file)).toThrow(/2 records after record 4 \(the last one a signed head covers\) are not signed/);
  });

  test('an ECDSA P-256 key signs heads (DER), verified by algorithm of the public key', async () => {
    const ec = keyPair('ec');
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: ec.signer, headEvery: 3 });
    for (let i = 0; i < 5; i++) { w.outcome(w.intent(intentOf(i)), 'delivered'); await tick(); }
    await w.close();
    expect(verifyAuditLog(file, { publicKeyPem: ec.pub })).toMatchObject({ heads: expect.any(Number), signaturesChecked: true });
    expect(records(file).find((r) => r.type === 'head')).toMatchObject({ head: { alg: 'ecdsa-p256-sha256' } });
    expect(() => verifyAuditLog(file, { publicKeyPem: ed.pub })).toThrow(/head at record \d+ is signed with ecdsa-p256-sha256, but the public key is ed25519/);
    expect(() => verifyAuditLog(file, { publicKeyPem: keyPair('ec').pub })).toThrow(/the signature of the head at record \d+ does not verify/);
  });
});

describe('opening an existing log', () => {
  test('a clean log needs no repair and the chain continues', async () => {
    const file = await writeLog(5, 100);
    const w = await AuditLogWriter.open({ file, signer: ed.signer });
    expect(w.recovery).toEqual({ tornBytes: 0, unknownOutcomes: 0, resumedAtSeq: 12 });
    w.outcome(w.intent(intentOf(9)), 'delivered');
    await w.close();
    expect(verify(file)).toMatchObject({ intents: 6, lastSeq: 15, heads: 2 });
  });

  test.each<[string, (line: string) => string, string]>([
    ['an incomplete last line (no newline)', (line) => line.slice(0, 57), 'line 13: incomplete last line (57 bytes without a newline)'],
    ['an unparsable last line', () => `${'\u0000'.repeat(40)}\n`, 'line 13: not a JSON record'],
    ['an incomplete line after an unparsable one', (line) => `{"type":"int\n${line.slice(0, 20)}`, 'line 13: not a JSON record'],
  ])('%s is cut away, and a note says what was removed', async (_name, tail, before) => {
    const file = await writeLog(5, 100);
    const torn = Buffer.from(tail(lines(await writeLog(1, 100))[0]));
    fs.appendFileSync(file, torn);
    expect(() => verify(file)).toThrow(before);
    const w = await AuditLogWriter.open({ file, signer: ed.signer });
    expect(w.recovery).toEqual({ tornBytes: torn.length, unknownOutcomes: 0, resumedAtSeq: 12 });
    await w.close();
    expect(records(file)[12]).toMatchObject({
      type: 'note', seq: 13, note: 'torn-tail-repaired', bytes: torn.length, sha256: sha256(torn),
      detail: expect.stringMatching(new RegExp(`^removed ${torn.length} bytes after record 12: an incomplete last line`)),
    });
    expect(verify(file)).toMatchObject({ notes: 1, lastSeq: 14 });
  });

  test('a log still being written verifies with acceptUnsignedTail, its incomplete last line set aside', async () => {
    const file = await writeLog(5, 100);
    fs.appendFileSync(file, '{"type":"intent","seq":13');
    expect(verify(file, { acceptUnsignedTail: true })).toMatchObject({ incompleteTailBytes: 25, lastSeq: 12 });
  });

  test.each([
    ['an altered record', (ls: string[]) => { const r = JSON.parse(ls[4]); r.size += 1; ls[4] = JSON.stringify(r); }, 'line 5: record 5 does not match its hash: it was altered'],
    ['an unparsable line before the last', (ls: string[]) => { ls[6] = 'garbage'; }, 'line 7: not a JSON record'],
    ['a removed record', (ls: string[]) => { ls.splice(2, 1); }, 'line 3: record 4 follows record 2: records 3..3 were removed'],
  ])('%s: refuses to start, naming the line, and leaves the file as it was', async (_name, tamper, message) => {
    const file = await writeLog(5, 100);
    const ls = lines(file);
    tamper(ls);
    write(file, ls);
    const before = fs.readFileSync(file);
    await expect(AuditLogWriter.open({ file, signer: ed.signer })).rejects.toThrow(new AuditLogError(0, message).message);
    expect(fs.readFileSync(file)).toEqual(before);
  });
});

describe('verification fails on any tampering', () => {
  const firstHead = (ls: string[]) => ls.findIndex((l) => JSON.parse(l).type === 'head');
  test.each<[string, (ls: string[]) => void, string | RegExp]>([
    ['an altered record', (ls) => { const r = JSON.parse(ls[6]); r.subject = 'byoc.example.out.usage'; ls[6] = JSON.stringify(r); }, 'line 7: record 7 does not match its hash: it was altered'],
    ['an altered record with its hash recomputed', (ls) => { const r = JSON.parse(ls[6]); r.size = 1; ls[6] = rehash(r); }, 'line 8: record 8 does not chain to record 7: a record before it was removed, replaced or reordered'],
    ['a removed record', (ls) => { ls.splice(11, 1); }, 'line 12: record 13 follows record 11: records 12..12 were removed'],
    ['two records swapped', (ls) => { [ls[2], ls[3]] = [ls[3], ls[2]]; }, 'line 3: record 4 follows record 2: records 3..3 were removed'],
    ['a repeated record', (ls) => { ls.splice(5, 0, ls[4]); }, 'line 6: record 5 follows record 5: records were reordered or repeated'],
    ['a field added (and rehashed)', (ls) => { const r = JSON.parse(ls[0]); r.payload = 'x'; ls[0] = rehash(r); }, 'line 1: intent record has unexpected field "payload"'],
    ['an outcome pointing elsewhere (rehashed)', (ls) => { const r = JSON.parse(ls[1]); r.intent = 2; ls[1] = rehash(r); }, 'line 2: outcome record 2 names record 2, which is not an intent awaiting its outcome'],
    ['a head with another signature', (ls) => { const i = firstHead(ls); const r = JSON.parse(ls[i]); r.head.signature = Buffer.alloc(64, 1).toString('base64'); ls[i] = rehash(r); }, /line \d+: the signature of the head at record \d+ does not verify/],
    ['a head moved to another record (rehashed)', (ls) => { const i = firstHead(ls); const r = JSON.parse(ls[i]); r.head.seq -= 1; ls[i] = rehash(r); }, /line \d+: head names record \d+ with a hash that is not that record's/],
    ['a line that is not JSON', (ls) => { ls[4] = 'garbage'; }, 'line 5: not a JSON record'],
    ['an unknown record type', (ls) => { const r = JSON.parse(ls[4]); r.type = 'entry'; ls[4] = rehash(r); }, 'line 5: unknown record type "entry"'],
    ['the chain rebuilt after record 5 by someone without the key', (ls) => {
      let prev = JSON.parse(ls[4]).hash as string;
      for (let i = 5; i < ls.length; i++) {
        const r = JSON.parse(ls[i]);
        if (r.type === 'intent') r.subject = 'byoc.example.out.usage';
        r.prev = prev;
        ls[i] = rehash(r);
        prev = r.hash;
      }
    }, /line \d+: head names record \d+ with a hash that is not that record's/],
  ])('%s', async (_name, tamper, message) => {
    const file = await writeLog();
    const ls = lines(file);
    tamper(ls);
    write(file, ls);
    expect(() => verify(file)).toThrow(AuditLogError);
    expect(() => verify(file)).toThrow(message);
  });

  test('an empty file, and a log without any signed head, prove nothing', async () => {
    const empty = path.join(tmp(), 'empty.log');
    fs.writeFileSync(empty, '');
    expect(() => verify(empty)).toThrow(`${empty} is empty: no record, nothing signed`);
    const file = await writeLog(3, 1000); // one head, from close()
    write(file, lines(file).filter((l) => JSON.parse(l).type !== 'head'));
    expect(() => verify(file)).toThrow('no signed head: nothing in this log is signed');
    expect(() => verify(file, { acceptUnsignedTail: true })).toThrow('no signed head: nothing in this log is signed');
  });

  test('records after the last signed head fail unless accepted (a log still being written)', async () => {
    const file = await writeLog(25, 10);
    const ls = lines(file);
    const cut = lineOf(ls, 50); // records after the head over record 45, before the next head
    write(file, ls.slice(0, cut + 1));
    expect(() => verify(file)).toThrow(/^line 45: 6 records after record 43 \(the last one a signed head covers\) are not signed: .*pass --accept-unsigned-tail/);
    expect(verify(file, { acceptUnsignedTail: true })).toMatchObject({ unsignedTail: 6, lastSeq: 50 });
  });

  test('signed heads deleted after some point (the chain rebuilt without them) fail even with acceptUnsignedTail', async () => {
    // A writer whose clock stands at a known time: its heads are signed "at" that time.
    const signedAt = Date.parse('2026-03-01T12:00:00.000Z');
    const file = path.join(tmp(), 'audit.log');
    const w = await AuditLogWriter.open({ file, signer: ed.signer, headEvery: 10, now: () => new Date(signedAt) });
    for (let i = 0; i < 25; i++) {
      w.outcome(w.intent(intentOf(i)), 'delivered');
      await tick();
    }
    await w.close();
    const all = records(file) as unknown as Record<string, unknown>[];
    const firstHead = all.findIndex((r) => r.type === 'head');
    expect(all.filter((r) => r.type === 'head').length).toBeGreaterThan(2);
    // Keep everything up to the first head; after it, drop every head and rebuild seq, prev and hash.
    const kept = [...all.slice(0, firstHead + 1), ...all.slice(firstHead + 1).filter((r) => r.type !== 'head')];
    const renumber = new Map(kept.map((r, i) => [r.seq as number, i + 1]));
    let prev = '0'.repeat(64);
    write(file, kept.map((r) => {
      if (r.type === 'outcome') r.intent = renumber.get(r.intent as number);
      r.seq = renumber.get(r.seq as number);
      r.prev = prev;
      const line = r.type === 'head' ? JSON.stringify(r) : rehash(r);
      prev = r.hash as string;
      return line;
    }));
    const covered = (all[firstHead].head as AuditHead).seq;
    const tail = kept.length - firstHead - 1;
    expect(() => verify(file)).toThrow(new RegExp(`^line ${firstHead + 2}: ${tail} records after record ${covered} \\(the last one a signed head covers\\) are not signed: `));
    // Ten minutes after that head: a running gateway would have signed heads since, so they were deleted.
    const later = new Date(signedAt + 10 * 60000);
    expect(() => verify(file, { acceptUnsignedTail: true, now: later })).toThrow(
      `line ${firstHead + 2}: ${tail} records after record ${covered} (the last one a signed head covers) are not signed, and that head was signed at 2026-03-01T12:00:00.000Z, 600 s before ${later.toISOString()}: a running gateway signs one at least every minute`);
    // Within the window (a log still being written, its next head due), the tail is accepted; the window is a setting.
    expect(verify(file, { acceptUnsignedTail: true, now: new Date(signedAt + 30000) })).toMatchObject({ unsignedTail: tail, heads: 1 });
    expect(verify(file, { acceptUnsignedTail: true, now: later, unsignedTailWindowMs: 11 * 60000 })).toMatchObject({ unsignedTail: tail });
  });

  test('a log cut at a signed head verifies on its own, and fails against the anchor', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => { text += d; });
    const file = await writeLog(25, 10, new StdoutAnchor(out));
    const anchorHeads = anchorHeadsFromLines(text.split('\n'));
    const ls = lines(file);
    const lastHeads = ls.map((l, i) => [JSON.parse(l), i] as const).filter(([r]) => r.type === 'head');
    const [secondLast, i] = lastHeads[lastHeads.length - 2];
    write(file, ls.slice(0, i + 1)); // the last signed head and everything it covered are gone
    expect(verify(file)).toMatchObject({ lastSeq: secondLast.seq, unsignedTail: 0 }); // nothing in the file shows it
    const last = anchorHeads[anchorHeads.length - 1];
    expect(() => verify(file, { anchorHeads })).toThrow(`the log ends at record ${secondLast.seq} but a head anchored at ${last.at} names record ${last.seq}: the log was truncated or rewritten`);
  });

  test('a log rewritten under an anchored head fails against the anchor, and so does a forged anchored head', async () => {
    const heads: AuditHead[] = [];
    const file = await writeLog(25, 10, { put: (h) => { heads.push(h); } });
    // Rewrite record 3 and rebuild the chain after it, dropping the heads (the forger has no key to sign new ones).
    const kept = records(file).filter((r) => r.type !== 'head') as unknown as Record<string, unknown>[];
    const renumber = new Map(kept.map((r, i) => [r.seq as number, i + 1]));
    let prev = '0'.repeat(64);
    write(file, kept.map((r) => {
      if (r.seq === 3) r.msgId = 'forged';
      if (r.type === 'outcome') r.intent = renumber.get(r.intent as number);
      r.seq = renumber.get(r.seq as number);
      r.prev = prev;
      const line = rehash(r);
      prev = r.hash as string;
      return line;
    }));
    expect(() => verify(file)).toThrow('no signed head');
    expect(() => verify(file, { anchorHeads: heads, acceptUnsignedTail: true })).toThrow(/^line 10: record 10 is not the record a head anchored at \S+ names \(hash [0-9a-f]{12}\.\.\., found [0-9a-f]{12}\.\.\.\): the log was truncated or rewritten$/);

    const file2 = await writeLog(5, 100);
    const real = records(file2).flatMap((r) => (r.type === 'head' ? [r.head] : []));
    const forged = { ...real[0], signature: Buffer.alloc(64).toString('base64') };
    expect(() => verify(file2, { anchorHeads: [forged] })).toThrow(`the signature of the head anchored at ${forged.at} at record ${forged.seq} does not verify`);
    expect(verify(file2, { anchorHeads: [...real, ...real] })).toMatchObject({ anchoredHeadsChecked: 1 });
  });
});

describe('kill -9', () => {
  let script: string;
  beforeAll(() => {
    script = path.join(tmp(), 'audit-writer.js');
    esbuild.buildSync({ entryPoints: [path.join(__dirname, 'fixtures', 'audit-writer.ts')], bundle: true, platform: 'node', target: 'node20', outfile: script, logLevel: 'warning' });
  });

  const children = new Set<ChildProcess>();
  afterEach(() => { for (const c of children) c.kill('SIGKILL'); children.clear(); });

  /** Starts the writer; resolves its stdout lines as they come, and its exit. */
  function run(file: string, mode: string, count = 0) {
    const child = spawn(process.execPath, [script, file, ed.file, mode, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    const waiters: (() => void)[] = [];
    child.stdout!.on('data', (d) => { out += d; waiters.splice(0).forEach((w) => w()); });
    child.stderr!.on('data', (d) => { err += d; });
    const exited = new Promise<NodeJS.Signals | number | null>((r) => child.once('exit', (code, signal) => { children.delete(child); waiters.splice(0).forEach((w) => w()); r(signal ?? code); }));
    const messages = () => out.split('\n').slice(0, -1).map((l) => JSON.parse(l));
    const until = async (ok: (m: Record<string, unknown>[]) => boolean) => {
      while (!ok(messages())) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`writer exited: ${err}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    return { child, exited, messages, until, stderr: () => err };
  }

  test('a crash leaves an explicit unknown outcome for exactly the intents without one', async () => {
    const file = path.join(tmp(), 'audit.log');
    const c = run(file, 'crash', 40);
    expect(await c.exited).toBe('SIGKILL');
    const intents = c.messages().find((m) => m.intents)!.intents as number[];
    const before = verify(file, { acceptUnsignedTail: true });
    expect(before).toMatchObject({ intents: 45, openIntents: 25, rejections: 1, heads: 1, unsignedTail: 5, outcomes: { delivered: 20, unknown: 0 } });

    const w = await AuditLogWriter.open({ file, signer: ed.signer });
    expect(w.recovery).toEqual({ tornBytes: 0, unknownOutcomes: 25, resumedAtSeq: before.lastSeq });
    await w.close();
    const unknown = records(file).filter((r) => r.type === 'outcome' && r.result === 'unknown');
    expect(unknown.map((r) => r.type === 'outcome' && r.intent)).toEqual(intents.slice(20));
    expect(unknown[0]).toMatchObject({ detail: 'gateway stopped before the outcome was known' });
    expect(verify(file)).toMatchObject({ openIntents: 0, outcomes: { delivered: 20, unknown: 25 } });
  });

  /** Kills the writer, reads what it left: the chain must hold right away; returns what the next start must repair. */
  async function killAndInspect(c: ReturnType<typeof run>, file: string) {
    c.child.kill('SIGKILL');
    const exit = await c.exited;
    if (exit !== 'SIGKILL') throw new Error(`writer exited with ${exit} before it was killed: ${c.stderr()}`);
    const bytes = fs.readFileSync(file);
    const torn = bytes.subarray(bytes.lastIndexOf(10) + 1);
    const v = verifyAuditLog(file, { publicKeyPem: ed.pub, acceptUnsignedTail: true });
    expect(v.incompleteTailBytes).toBe(torn.length);
    return { v, torn: { bytes: torn.length, sha256: sha256(torn) }, next: { tornBytes: torn.length, unknownOutcomes: v.openIntents, resumedAtSeq: v.lastSeq } };
  }

  /** Opens the log in this process as the next start would, then closes it: everything signed, nothing open. */
  async function reopenAndClose(file: string, expected: { tornBytes: number; unknownOutcomes: number; resumedAtSeq: number }) {
    const w = await AuditLogWriter.open({ file, signer: ed.signer });
    expect(w.recovery).toEqual(expected);
    expect(verifyAuditLog(file, { publicKeyPem: ed.pub, acceptUnsignedTail: true }).openIntents).toBe(0);
    await w.close();
    return verifyAuditLog(file, { publicKeyPem: ed.pub });
  }

  test('killed at random points while writing: every returned intent is in the log, the chain holds, every open intent gets an unknown outcome', async () => {
    const file = path.join(tmp(), 'audit.log');
    let next = { tornBytes: 0, unknownOutcomes: 0, resumedAtSeq: 0 };
    let unknown = 0;
    const torn: { bytes: number; sha256: string }[] = [];
    const anchorHeads: AuditHead[] = [];
    for (let kill = 0; kill < 8; kill++) {
      const c = run(file, 'loop');
      await c.until((m) => m.some((x) => x.recovery));
      expect(c.messages()[0].recovery).toEqual(next); // the writer's own start repaired what the last kill left
      const batches = 1 + Math.floor(Math.random() * 4);
      await c.until((m) => m.filter((x) => x.returned).length >= batches && (kill > 0 || m.some((x) => x.auditHead)));
      await new Promise((r) => setTimeout(r, Math.random() * 10));
      const k = await killAndInspect(c, file);
      const returned = Math.max(...c.messages().filter((x) => x.returned).map((x) => x.returned as number));
      expect(k.v.lastSeq).toBeGreaterThanOrEqual(returned); // what the writer returned (and a gateway then published) is in the file
      expect(k.v.openIntents).toBeGreaterThan(0);
      if (k.torn.bytes) torn.push(k.torn);
      unknown += k.v.openIntents;
      next = k.next;
      anchorHeads.push(...anchorHeadsFromLines(c.messages().map((m) => JSON.stringify(m))));
    }
    const v = await reopenAndClose(file, next);
    expect(v).toMatchObject({ openIntents: 0, notes: torn.length, unsignedTail: 0 });
    expect(v.outcomes.unknown).toBe(unknown);
    // Every head a killed writer anchored is in the log, naming the record it signed.
    expect(verifyAuditLog(file, { publicKeyPem: ed.pub, anchorHeads }).anchoredHeadsChecked).toBe(anchorHeads.length);
    expect(anchorHeads.length).toBeGreaterThan(0);
  });

  test('killed inside a large write: the torn last line is cut away at the next start, with a note', async () => {
    const file = path.join(tmp(), 'audit.log');
    let next = { tornBytes: 0, unknownOutcomes: 0, resumedAtSeq: 0 };
    const notes: { bytes: number; sha256: string }[] = [];
    for (let attempt = 0; notes.length < 3 && attempt < 20; attempt++) {
      const c = run(file, 'large', 48);
      await c.until((m) => m.some((x) => x.large !== undefined));
      expect(c.messages()[0].recovery).toEqual(next);
      const before = c.messages().find((x) => x.large !== undefined)!.large as number;
      // Kill as soon as the big write has begun: the file grows only while the kernel copies it.
      const deadline = Date.now() + 20000;
      while (fs.statSync(file).size === before && Date.now() < deadline) { /* spin: the event loop would be too slow */ }
      const k = await killAndInspect(c, file);
      if (k.torn.bytes) notes.push(k.torn);
      next = k.next;
    }
    expect(notes.length).toBe(3);
    const v = await reopenAndClose(file, next);
    expect(records(file).filter((r) => r.type === 'note').map((r) => r.type === 'note' && { bytes: r.bytes, sha256: r.sha256 })).toEqual(notes);
    expect(v).toMatchObject({ notes: 3, openIntents: 0 });
  });
});
