import { createHash, createPublicKey, KeyObject } from 'crypto';
import * as fs from 'fs';
import { CloudWatchLogsClient, paginateFilterLogEvents } from '@aws-sdk/client-cloudwatch-logs';
import canonicalize from 'canonicalize';
import { Algorithm, BundleError, fingerprint, Signer, verifySignature } from './signer';

/**
 * The customer-visible audit log of every boundary crossing (runs inside the gateway container: no CDK here).
 *
 * One JSON line per record, every record in ONE hash chain: `seq` counts from 1, `prev` is the hash of the
 * record before (64 zeros for the first), `hash` is SHA-256 of the record's canonical JSON (RFC 8785)
 * without `hash`. Records carry the SHA-256 and size of a payload, never the payload. The record types:
 *
 * - `intent`: a message is about to cross (written, with `writeSync`, before it is published): direction,
 *   kind, subject, the agent that handed it, its message ID.
 * - `outcome`: what became of an intent (`intent` names its seq): `delivered`, `unconfirmed`, `failed`, or
 *   `unknown` when the gateway stopped before it knew (written at the next start: a crash leaves an explicit
 *   unknown, never silence).
 * - `rejection`: a message that did not cross: kind, size, hash, reason.
 * - `note`: something the writer did to the file itself (a torn last line it removed).
 * - `head`: a signed head, `{type:'head', seq, hash, at, alg, signature}` in its `head` field, naming an
 *   earlier record (`seq`) and that record's `hash`. Signing is asynchronous, so records may be appended
 *   between the record a head names and the head's own line. A head is also handed to a `HeadAnchor`,
 *   somewhere the gateway cannot rewrite, so that cutting the log at a signed head shows.
 */
export type AuditDirection = 'out' | 'in';
export type OutcomeResult = 'delivered' | 'unconfirmed' | 'failed';
export type RecordedOutcome = OutcomeResult | 'unknown';

/** A signed statement: "record `seq` of this log had hash `hash`". The signature covers everything else. */
export interface AuditHead {
  readonly type: 'head';
  /** The record the head covers (and with the chain, every record before it). */
  readonly seq: number;
  /** That record's hash. */
  readonly hash: string;
  readonly at: string;
  readonly alg: Algorithm;
  /** Base64 signature over the canonical JSON of the head without `signature` (ECDSA: DER). */
  readonly signature: string;
}

interface Chained { readonly seq: number; readonly at: string; readonly prev: string; readonly hash: string }
export interface IntentRecord extends Chained {
  readonly type: 'intent';
  readonly direction: AuditDirection;
  readonly kind: string;
  readonly subject: string;
  readonly agent?: string;
  readonly msgId?: string;
  readonly size: number;
  readonly sha256: string;
}
export interface OutcomeRecord extends Chained {
  readonly type: 'outcome';
  /** Seq of the intent this is the outcome of. */
  readonly intent: number;
  readonly result: RecordedOutcome;
  readonly detail?: string;
}
export interface RejectionRecord extends Chained, RejectionInput {
  readonly type: 'rejection';
}
export interface NoteRecord extends Chained {
  readonly type: 'note';
  readonly note: 'torn-tail-repaired';
  readonly detail: string;
  readonly bytes?: number;
  readonly sha256?: string;
}
export interface HeadRecord extends Chained {
  readonly type: 'head';
  readonly head: AuditHead;
}
export type AuditRecord = IntentRecord | OutcomeRecord | RejectionRecord | NoteRecord | HeadRecord;

/** Somewhere heads go that the gateway cannot rewrite (its CloudWatch log stream, through stdout). */
export interface HeadAnchor {
  put(head: AuditHead): Promise<void> | void;
}

export interface IntentInput {
  readonly direction: AuditDirection;
  readonly kind: string;
  readonly subject: string;
  /** Who handed the message to the gateway. */
  readonly agent?: string;
  readonly msgId?: string;
  readonly payload: Uint8Array;
}

export interface OutcomeInput {
  readonly intentSeq: number;
  readonly result: OutcomeResult;
  readonly detail?: string;
}

export interface RejectionInput {
  readonly direction: AuditDirection;
  readonly kind: string;
  readonly subject: string;
  readonly agent?: string;
  readonly size: number;
  /** SHA-256 (hex) of the rejected payload. */
  readonly sha256: string;
  readonly reason: string;
  readonly detail: string;
}

export interface AuditLogOpenOptions {
  readonly file: string;
  /** Signs the heads: a PEM key or a KMS key (`signerFor` in lib/signer). */
  readonly signer: Signer;
  /** Where every head also goes. @default - heads are only in the file */
  readonly anchor?: HeadAnchor;
  /** Sign a head after this many records. @default 1000 */
  readonly headEvery?: number;
  /** Also sign a head this often when records were added since the last one. @default - only by count */
  readonly headIntervalMs?: number;
  /** @default - the system clock */
  readonly now?: () => Date;
  /**
   * Called when a head started by count or interval could not be signed, written or anchored (the next
   * one retries and covers the same records). `head()` and `close()` reject instead.
   * @default - a process warning
   */
  readonly onHeadError?: (e: Error) => void;
}

/** What `open` found and repaired. */
export interface AuditRecovery {
  /** Bytes of an incomplete last line removed (a `note` record says so). */
  readonly tornBytes: number;
  /** Intents without an outcome, now closed with an `unknown` outcome. */
  readonly unknownOutcomes: number;
  /** The last intact record of the existing log (0 for a new one). */
  readonly resumedAtSeq: number;
}

export const GENESIS = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;
const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** An audit log that does not verify (or cannot be opened): the line (0: the log as a whole) and why. */
export class AuditLogError extends Error {
  constructor(public readonly line: number, public readonly reason: string) {
    super(line > 0 ? `line ${line}: ${reason}` : reason);
    this.name = 'AuditLogError';
  }
}

function headBody(h: Omit<AuditHead, 'signature'>): Buffer {
  return Buffer.from(canonicalize({ type: h.type, seq: h.seq, hash: h.hash, at: h.at, alg: h.alg })!, 'utf8');
}

// ---------------------------------------------------------------------------------------------------------
// Record shapes: every field is checked, nothing else is accepted.

type FieldType = 'string' | 'count' | 'seq' | 'hex64' | 'direction' | 'result' | 'note' | 'head';
const COMMON: Record<string, FieldType> = { type: 'string', seq: 'seq', at: 'string', prev: 'hex64', hash: 'hex64' };
const SHAPES: Record<AuditRecord['type'], { required: Record<string, FieldType>; optional: Record<string, FieldType> }> = {
  intent: { required: { direction: 'direction', kind: 'string', subject: 'string', size: 'count', sha256: 'hex64' }, optional: { agent: 'string', msgId: 'string' } },
  outcome: { required: { intent: 'seq', result: 'result' }, optional: { detail: 'string' } },
  rejection: { required: { direction: 'direction', kind: 'string', subject: 'string', size: 'count', sha256: 'hex64', reason: 'string', detail: 'string' }, optional: { agent: 'string' } },
  note: { required: { note: 'note', detail: 'string' }, optional: { bytes: 'count', sha256: 'hex64' } },
  head: { required: { head: 'head' }, optional: {} },
};
const ALGORITHMS: readonly Algorithm[] = ['ed25519', 'ecdsa-p256-sha256'];

function fieldProblem(t: FieldType, v: unknown): string | undefined {
  switch (t) {
    case 'string': return typeof v === 'string' ? undefined : 'a string';
    case 'count': return Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : 'a non-negative integer';
    case 'seq': return Number.isSafeInteger(v) && (v as number) >= 1 ? undefined : 'a positive integer';
    case 'hex64': return typeof v === 'string' && HEX64.test(v) ? undefined : '64 lower-case hex digits';
    case 'direction': return v === 'out' || v === 'in' ? undefined : '"out" or "in"';
    case 'result': return ['delivered', 'unconfirmed', 'failed', 'unknown'].includes(v as string) ? undefined : 'delivered, unconfirmed, failed or unknown';
    case 'note': return v === 'torn-tail-repaired' ? undefined : '"torn-tail-repaired"';
    case 'head': return headProblem(v);
  }
}

/** Why `v` is not a well-formed AuditHead, or undefined. */
function headProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'a signed head object';
  const h = v as Record<string, unknown>;
  const extra = Object.keys(h).filter((k) => !['type', 'seq', 'hash', 'at', 'alg', 'signature'].includes(k));
  if (extra.length) return `a signed head without other fields (found ${extra.join(', ')})`;
  if (h.type !== 'head') return 'a signed head (type "head")';
  if (!Number.isSafeInteger(h.seq) || (h.seq as number) < 1) return 'a signed head naming a positive record seq';
  if (typeof h.hash !== 'string' || !HEX64.test(h.hash)) return 'a signed head with a 64-hex-digit hash';
  if (typeof h.at !== 'string') return 'a signed head with a time';
  if (!ALGORITHMS.includes(h.alg as Algorithm)) return `a signed head with alg ${ALGORITHMS.join(' or ')}`;
  if (typeof h.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(h.signature)) return 'a signed head with a base64 signature';
  return undefined;
}

/** Per record type: every field in key order (RFC 8785 sorts keys by UTF-16 code units), and which are required. */
const FIELDS = Object.fromEntries(Object.entries(SHAPES).map(([type, shape]) => {
  const all: Record<string, FieldType> = { ...COMMON, ...shape.required, ...shape.optional };
  const fields = Object.keys(all).sort().map((k) => ({ k, t: all[k], required: k in COMMON || k in shape.required }));
  return [type, { fields, names: new Set(Object.keys(all)) }];
})) as Record<AuditRecord['type'], { fields: { k: string; t: FieldType; required: boolean }[]; names: Set<string> }>;

function checkShape(r: Record<string, unknown>, n: number): AuditRecord {
  const type = r.type as AuditRecord['type'];
  const shape = Object.prototype.hasOwnProperty.call(FIELDS, type) ? FIELDS[type] : undefined;
  if (!shape) throw new AuditLogError(n, `unknown record type ${JSON.stringify(r.type)}`);
  for (const { k, t, required } of shape.fields) {
    const v = r[k];
    if (v === undefined) {
      if (required) throw new AuditLogError(n, `${type} record has no "${k}"`);
      continue;
    }
    const p = fieldProblem(t, v);
    if (p) throw new AuditLogError(n, `${type} record: "${k}" must be ${p}`);
  }
  for (const k in r) {
    if (!shape.names.has(k)) {
      const extra = Object.keys(r).filter((x) => !shape.names.has(x));
      throw new AuditLogError(n, `${type} record has unexpected field${extra.length > 1 ? 's' : ''} ${extra.map((x) => `"${x}"`).join(', ')}`);
    }
  }
  return r as unknown as AuditRecord;
}

/**
 * The writer's canonical JSON of a record without `hash`: the same text as `canonicalize(record)` (the verifier
 * uses canonicalize, so any difference would fail verification), without sorting keys for every record.
 */
function canonicalRecord(r: Record<string, unknown>): string {
  let s = '';
  for (const { k } of FIELDS[r.type as AuditRecord['type']].fields) {
    const v = r[k];
    if (v === undefined || k === 'hash') continue;
    s += `${s ? ',' : '{'}"${k}":${typeof v === 'object' ? canonicalize(v) : JSON.stringify(v)}`;
  }
  return `${s}}`;
}

// ---------------------------------------------------------------------------------------------------------
// Reading: lines with byte offsets, in bounded memory.

const CHUNK = 1 << 20;

/** Calls `onLine` for every newline-terminated line; returns where they end and the bytes after the last newline. */
function scanLines(fd: number, onLine: (text: string, n: number, offset: number) => void): { end: number; partial: Buffer; lines: number } {
  const chunk = Buffer.allocUnsafe(CHUNK);
  let carry = Buffer.alloc(0);
  let carryOffset = 0; // file offset of carry[0]
  let pos = 0;
  let n = 0;
  for (;;) {
    const got = fs.readSync(fd, chunk, 0, CHUNK, pos);
    if (got === 0) break;
    pos += got;
    const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, got)]) : chunk.subarray(0, got);
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      onLine(buf.toString('utf8', start, nl), ++n, carryOffset + start);
      start = nl + 1;
    }
    carry = Buffer.from(buf.subarray(start));
    carryOffset += start;
  }
  return { end: carryOffset, partial: carry, lines: n };
}

function parseLine(text: string, n: number): Record<string, unknown> {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw new AuditLogError(n, 'not a JSON record');
  }
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new AuditLogError(n, 'not a JSON record');
  return r as Record<string, unknown>;
}

/**
 * The chain as it is read, one record at a time: seq, prev and hash of each record, the shape of each,
 * outcomes against open intents, and each head against the record it names. Memory is bounded by the
 * records not yet covered by a head and the intents still open.
 */
class ChainReader {
  public seq = 0;
  public prev = GENESIS;
  public records = 0;
  public intents = 0;
  public rejections = 0;
  public notes = 0;
  public heads = 0;
  public readonly outcomes = { delivered: 0, unconfirmed: 0, failed: 0, unknown: 0 };
  /** Intents without an outcome yet: seq → line. */
  public readonly open = new Map<number, number>();
  /** Seq the latest head covers (0: none). */
  public covered = 0;
  /** When the latest head was signed (its signed `at`). */
  public lastHeadAt?: string;
  /** Records after `covered`: seq → hash, and whether it is a head line (not itself in need of a head). */
  private readonly uncovered = new Map<number, { hash: string; head: boolean }>();
  /** Non-head records after `covered`. */
  public unsignedTail = 0;
  public firstUnsignedLine = 0;
  private readonly unsignedLines: number[] = [];

  constructor(private readonly onRecord?: (r: AuditRecord, n: number) => void) {}

  public add(raw: Record<string, unknown>, n: number): AuditRecord {
    const r = checkShape(raw, n);
    if (r.seq !== this.seq + 1) {
      throw new AuditLogError(n, r.seq > this.seq + 1
        ? `record ${r.seq} follows record ${this.seq}: records ${this.seq + 1}..${r.seq - 1} were removed`
        : `record ${r.seq} follows record ${this.seq}: records were reordered or repeated`);
    }
    const { hash, ...body } = r;
    if (sha256(canonicalize(body)!) !== hash) throw new AuditLogError(n, `record ${r.seq} does not match its hash: it was altered`);
    if (r.prev !== this.prev) throw new AuditLogError(n, `record ${r.seq} does not chain to record ${this.seq}: a record before it was removed, replaced or reordered`);
    switch (r.type) {
      case 'intent':
        this.intents++;
        this.open.set(r.seq, n);
        break;
      case 'outcome':
        if (!this.open.delete(r.intent)) {
          throw new AuditLogError(n, `outcome record ${r.seq} names record ${r.intent}, which is not an intent awaiting its outcome (not an intent, later, or already given an outcome)`);
        }
        this.outcomes[r.result]++;
        break;
      case 'rejection': this.rejections++; break;
      case 'note': this.notes++; break;
      case 'head': this.coverHead(r.head, n); break;
    }
    this.onRecord?.(r, n);
    this.seq = r.seq;
    this.prev = hash;
    this.records++;
    this.uncovered.set(r.seq, { hash, head: r.type === 'head' });
    if (r.type !== 'head') {
      this.unsignedTail++;
      this.unsignedLines.push(n);
    }
    return r;
  }

  private coverHead(h: AuditHead, n: number): void {
    if (h.seq <= this.covered) throw new AuditLogError(n, `head names record ${h.seq}, but an earlier head already covers record ${this.covered}: heads were reordered or repeated`);
    const named = this.uncovered.get(h.seq);
    if (!named) throw new AuditLogError(n, `head names record ${h.seq}, but the log before this line ends at record ${this.seq}`);
    if (named.hash !== h.hash) throw new AuditLogError(n, `head names record ${h.seq} with a hash that is not that record's: the record or the head was altered`);
    for (const [seq, u] of this.uncovered) {
      if (seq > h.seq) break;
      this.uncovered.delete(seq);
      if (!u.head) {
        this.unsignedTail--;
        this.unsignedLines.shift();
      }
    }
    this.covered = h.seq;
    this.lastHeadAt = h.at;
    this.heads++;
  }

  /** Line of the first record no head covers. */
  public firstUnsigned(): number {
    return this.unsignedLines[0] ?? 0;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing.

/**
 * Appends intents, outcomes, rejections and signed heads to a log file, continuing (and first checking and
 * repairing) an existing chain. Every append is on disk (in the page cache, which outlives a killed process)
 * before it returns; heads are fsynced.
 */
export class AuditLogWriter {
  /** Opens (or creates) a log: verifies the existing chain, removes a torn last line, closes open intents as unknown. */
  public static async open(o: AuditLogOpenOptions): Promise<AuditLogWriter> {
    const headEvery = o.headEvery ?? 1000;
    if (!Number.isSafeInteger(headEvery) || headEvery < 1) throw new RangeError(`headEvery must be a positive integer, got ${o.headEvery}`);
    if (o.headIntervalMs !== undefined && !(o.headIntervalMs > 0)) throw new RangeError(`headIntervalMs must be a positive number of milliseconds, got ${o.headIntervalMs}`);
    const fd = fs.openSync(o.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o640);
    try {
      return new AuditLogWriter(o, fd, headEvery);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** What opening found and repaired. */
  public readonly recovery: AuditRecovery;
  private seq = 0;
  private prev = GENESIS;
  private size = 0;
  private readonly open = new Set<number>();
  /** Non-head records appended in total, and how many of them the latest started head covers. */
  private written = 0;
  private coveredWritten = 0;
  private signing?: Promise<AuditHead | undefined>;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private fdClosed = false;
  private readonly now: () => Date;

  private constructor(private readonly o: AuditLogOpenOptions, private readonly fd: number, private readonly headEvery: number) {
    this.now = o.now ?? (() => new Date());
    this.recovery = this.recover();
  }

  private recover(): AuditRecovery {
    const reader = new ChainReader();
    let held: { text: string; n: number; offset: number } | undefined;
    const { end, partial } = scanLines(this.fd, (text, n, offset) => {
      if (held) reader.add(parseLine(held.text, held.n), held.n);
      held = { text, n, offset };
    });
    // The last complete line: a record, or (unparsable) the start of what an unfinished write left.
    let validEnd = end;
    if (held) {
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = parseLine(held.text, held.n);
      } catch {
        validEnd = held.offset;
      }
      if (parsed) reader.add(parsed, held.n);
    }
    const fileSize = end + partial.length;
    this.seq = reader.seq;
    this.prev = reader.prev;
    this.written = reader.records - reader.heads;
    this.coveredWritten = this.written - reader.unsignedTail;
    const resumedAtSeq = reader.seq;
    let tornBytes = 0;
    if (fileSize > validEnd) {
      tornBytes = fileSize - validEnd;
      const torn = Buffer.alloc(tornBytes);
      fs.readSync(this.fd, torn, 0, tornBytes, validEnd);
      fs.ftruncateSync(this.fd, validEnd);
      this.size = validEnd;
      this.append([this.line({
        type: 'note', note: 'torn-tail-repaired', bytes: tornBytes, sha256: sha256(torn),
        detail: `removed ${tornBytes} bytes after record ${resumedAtSeq}: an incomplete last line, left by a write the gateway did not finish (a message is published only after its intent is written, so none of it crossed)`,
      }, this.now().toISOString())]);
    } else {
      this.size = fileSize;
    }
    const unknown = [...reader.open.keys()];
    if (unknown.length) {
      const at = this.now().toISOString();
      this.append(unknown.map((intent) => this.line({ type: 'outcome', intent, result: 'unknown', detail: 'gateway stopped before the outcome was known' }, at)));
    }
    if (tornBytes || unknown.length) fs.fsyncSync(this.fd);
    if (this.o.headIntervalMs) {
      this.timer = setInterval(() => { if (this.written > this.coveredWritten && !this.signing) this.autoHead(); }, this.o.headIntervalMs);
      this.timer.unref();
    }
    return { tornBytes, unknownOutcomes: unknown.length, resumedAtSeq };
  }

  /** Records that a message is about to cross; publish it only after this returns. Returns the intent's seq. */
  public intent(e: IntentInput): number {
    return this.intents([e])[0];
  }

  /** Intents of a batch, in one write. */
  public intents(es: readonly IntentInput[]): number[] {
    this.assertOpen();
    es.forEach((e, i) => checkInput(e, `intents[${i}]`, { kind: 'string', subject: 'string' }, ['agent', 'msgId'], () => e.payload instanceof Uint8Array ? undefined : 'payload must be a Uint8Array'));
    const at = this.now().toISOString();
    const seqs = this.append(es.map((e) => this.line({
      type: 'intent', direction: e.direction, kind: e.kind, subject: e.subject, agent: e.agent, msgId: e.msgId, size: e.payload.length, sha256: sha256(e.payload),
    }, at)));
    for (const s of seqs) this.open.add(s);
    return seqs;
  }

  /** Records what became of an intent. Returns the outcome record's seq. */
  public outcome(intentSeq: number, result: OutcomeResult, detail?: string): number {
    return this.outcomes([{ intentSeq, result, detail }])[0];
  }

  /** Outcomes of a batch, in one write. */
  public outcomes(os: readonly OutcomeInput[]): number[] {
    this.assertOpen();
    const seen = new Set<number>();
    os.forEach((o, i) => {
      if (!['delivered', 'unconfirmed', 'failed'].includes(o.result)) throw new TypeError(`outcomes[${i}].result must be delivered, unconfirmed or failed, got ${JSON.stringify(o.result)}`);
      if (o.detail !== undefined && typeof o.detail !== 'string') throw new TypeError(`outcomes[${i}].detail must be a string`);
      if (!this.open.has(o.intentSeq) || seen.has(o.intentSeq)) {
        throw new RangeError(`outcomes[${i}]: record ${o.intentSeq} is not an intent awaiting its outcome (not written by this writer, or its outcome is already recorded)`);
      }
      seen.add(o.intentSeq);
    });
    const at = this.now().toISOString();
    const seqs = this.append(os.map((o) => this.line({ type: 'outcome', intent: o.intentSeq, result: o.result, detail: o.detail }, at)));
    for (const o of os) this.open.delete(o.intentSeq);
    return seqs;
  }

  /** Records a message that did not cross: its size, hash and reason, never its body. */
  public rejection(e: RejectionInput): number {
    this.assertOpen();
    checkInput(e, 'rejection', { kind: 'string', subject: 'string', reason: 'string', detail: 'string' }, ['agent'], () => {
      if (!Number.isSafeInteger(e.size) || e.size < 0) return 'size must be a non-negative integer';
      return typeof e.sha256 === 'string' && HEX64.test(e.sha256) ? undefined : 'sha256 must be 64 lower-case hex digits';
    });
    return this.append([this.line({
      type: 'rejection', direction: e.direction, kind: e.kind, subject: e.subject, agent: e.agent, size: e.size, sha256: e.sha256, reason: e.reason, detail: e.detail,
    }, this.now().toISOString())])[0];
  }

  /**
   * Signs a head over the last record, writes it (fsynced) and hands it to the anchor. Resolves to undefined
   * when every record is already covered. Waits for a head being signed first.
   */
  public head(): Promise<AuditHead | undefined> {
    if (this.fdClosed) return Promise.reject(new Error(`audit log ${this.o.file} is closed`));
    const run = async (): Promise<AuditHead | undefined> => {
      if (this.written === this.coveredWritten) return undefined;
      const covers = this.written;
      const before = this.coveredWritten;
      this.coveredWritten = covers;
      try {
        const body = { type: 'head' as const, seq: this.seq, hash: this.prev, at: this.now().toISOString(), alg: this.o.signer.algorithm };
        const head: AuditHead = { ...body, signature: (await this.o.signer.sign(headBody(body))).toString('base64') };
        this.append([this.line({ type: 'head', head }, this.now().toISOString())]);
        fs.fsyncSync(this.fd);
        await this.o.anchor?.put(head);
        return head;
      } catch (e) {
        // Not signed or not written: the next head covers these records too.
        if (this.coveredWritten === covers) this.coveredWritten = before;
        throw e;
      }
    };
    const p = (this.signing ?? Promise.resolve(undefined)).catch(() => undefined).then(run);
    this.signing = p;
    const clear = () => { if (this.signing === p) this.signing = undefined; };
    p.then(clear, clear);
    return p;
  }

  /** Closes still-open intents as unknown, signs a final head, fsyncs and closes the file. */
  public async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true; // no more appends from callers
    if (this.timer) clearInterval(this.timer);
    try {
      await this.signing?.catch(() => undefined);
      if (this.open.size) {
        const at = this.now().toISOString();
        this.append([...this.open].map((intent) => this.line({ type: 'outcome', intent, result: 'unknown', detail: 'the audit log was closed before the outcome was known' }, at)));
        this.open.clear();
      }
      await this.head();
      fs.fsyncSync(this.fd);
    } finally {
      this.fdClosed = true;
      fs.closeSync(this.fd);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`audit log ${this.o.file} is closed`);
  }

  private autoHead(): void {
    this.head().catch((e: Error) => {
      if (this.o.onHeadError) this.o.onHeadError(e);
      else process.emitWarning(`audit log ${this.o.file}: could not sign or anchor a head: ${e.message}`, 'AuditHeadWarning');
    });
  }

  /** One record as a line, advancing seq and prev (`append` restores them if the write fails). */
  private line(body: Record<string, unknown>, at: string): { text: string; seq: number; prev: string; head: boolean } {
    const prev = this.prev;
    body.seq = ++this.seq;
    body.at = at;
    body.prev = prev;
    this.prev = sha256(canonicalRecord(body));
    body.hash = this.prev;
    return { text: `${JSON.stringify(body)}\n`, seq: this.seq, prev, head: body.type === 'head' };
  }

  /** Writes lines with one write; on failure removes any part written and rewinds seq and prev. */
  private append(lines: { text: string; seq: number; prev: string; head: boolean }[]): number[] {
    if (lines.length === 0) return [];
    const buf = Buffer.from(lines.map((l) => l.text).join(''), 'utf8');
    let off = 0;
    try {
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      if (off > 0) fs.ftruncateSync(this.fd, this.size);
      this.seq = lines[0].seq - 1;
      this.prev = lines[0].prev;
      throw e;
    }
    this.size += buf.length;
    const records = lines.filter((l) => !l.head).length;
    this.written += records;
    if (records && this.written - this.coveredWritten >= this.headEvery && !this.signing && !this.closed) this.autoHead();
    return lines.map((l) => l.seq);
  }
}

function checkInput(e: { direction: unknown } & object, what: string, strings: Record<string, 'string'>, optional: string[], more: () => string | undefined): void {
  const r = e as Record<string, unknown>;
  if (r.direction !== 'out' && r.direction !== 'in') throw new TypeError(`${what}.direction must be "out" or "in", got ${JSON.stringify(r.direction)}`);
  for (const k of Object.keys(strings)) if (typeof r[k] !== 'string') throw new TypeError(`${what}.${k} must be a string`);
  for (const k of optional) if (r[k] !== undefined && typeof r[k] !== 'string') throw new TypeError(`${what}.${k} must be a string when given`);
  const p = more();
  if (p) throw new TypeError(`${what}.${p}`);
}

// ---------------------------------------------------------------------------------------------------------
// The anchor: stdout, which ECS's awslogs driver ships to a log group the gateway's task role cannot write.

/** Writes each head as one JSON line `{"auditHead":{...}}` (to stdout by default). */
export class StdoutAnchor implements HeadAnchor {
  constructor(private readonly out: Pick<NodeJS.WritableStream, 'write'> = process.stdout) {}

  public put(head: AuditHead): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out.write(`${JSON.stringify({ auditHead: head })}\n`, (err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }
}

/**
 * The heads in exported log lines: `{"auditHead":{...}}` lines (also inside a longer JSON log line), CloudWatch
 * log events (`{"message": "..."}`), and lines prefixed with a timestamp (a CloudWatch export to S3). Lines
 * that do not mention `auditHead` are other log output and are skipped; one that mentions it but does not hold
 * a well-formed head is an error.
 */
export function anchorHeadsFromLines(lines: readonly string[]): AuditHead[] {
  const heads: AuditHead[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line.includes('auditHead')) return;
    const head = headOfLine(line);
    if (head === undefined) throw new AuditLogError(0, `anchor line ${i + 1} mentions auditHead but holds no JSON object with an "auditHead" field`);
    const problem = headProblem(head);
    if (problem) throw new AuditLogError(0, `anchor line ${i + 1}: its "auditHead" is not ${problem}`);
    heads.push(head as AuditHead);
  });
  return heads;
}

function headOfLine(line: string): unknown {
  const brace = line.indexOf('{');
  if (brace === -1) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line.slice(brace));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if ('auditHead' in o) return o.auditHead;
  if (typeof o.message === 'string') return headOfLine(o.message);
  return undefined;
}

/** Heads in a file of exported log lines, or in the JSON output of `aws logs filter-log-events` (`{"events": [...]}`). */
export function readAnchorFile(file: string): AuditHead[] {
  const text = fs.readFileSync(file, 'utf8');
  try {
    const doc = JSON.parse(text) as { events?: { message?: unknown }[] };
    if (doc && Array.isArray(doc.events)) return anchorHeadsFromLines(doc.events.map((e) => String(e.message ?? '')));
  } catch {
    // Not one JSON document: lines.
  }
  return anchorHeadsFromLines(text.split('\n'));
}

/** Reads the heads back from the gateway's CloudWatch log group (FilterLogEvents, every page). */
export async function fetchAnchorHeads(o: { logGroupName: string; logStreamNamePrefix?: string; client?: CloudWatchLogsClient; pageSize?: number }): Promise<AuditHead[]> {
  const client = o.client ?? new CloudWatchLogsClient({});
  const lines: string[] = [];
  const pages = paginateFilterLogEvents({ client, pageSize: o.pageSize }, {
    logGroupName: o.logGroupName,
    logStreamNamePrefix: o.logStreamNamePrefix,
    filterPattern: '"auditHead"',
  });
  for await (const page of pages) {
    for (const e of page.events ?? []) {
      if (o.logStreamNamePrefix && e.logStreamName && !e.logStreamName.startsWith(o.logStreamNamePrefix)) continue;
      lines.push(e.message ?? '');
    }
  }
  return anchorHeadsFromLines(lines);
}

// ---------------------------------------------------------------------------------------------------------
// Verification.

export interface AuditVerifyOptions {
  /** The audit public key (SPKI PEM, Ed25519 or ECDSA P-256): every head's signature is checked. @default - signatures are not checked */
  readonly publicKeyPem?: string;
  /** Heads from the anchor (`fetchAnchorHeads`, `readAnchorFile`): each must name a record of this log, with its hash. */
  readonly anchorHeads?: readonly AuditHead[];
  /**
   * Accept records after the last signed head (a log still being written), as long as that head is recent:
   * signed at most `unsignedTailWindowMs` before `now`. @default false
   */
  readonly acceptUnsignedTail?: boolean;
  /**
   * How old the last signed head may be when records follow it and `acceptUnsignedTail` is set. A running
   * gateway signs a head at least every `BYOC_AUDIT_HEAD_SECONDS` (60) while records are added, so an older
   * last head means the heads after it were deleted (or the gateway stopped without its final head).
   * @default 120000 (twice the gateway's 60 s)
   */
  readonly unsignedTailWindowMs?: number;
  /** The time the window is measured to. @default - now */
  readonly now?: Date;
}

export interface AuditVerification {
  /** Every record, heads included. */
  readonly records: number;
  readonly intents: number;
  readonly outcomes: { delivered: number; unconfirmed: number; failed: number; unknown: number };
  /** Intents without an outcome yet (in flight in a log still being written). */
  readonly openIntents: number;
  readonly rejections: number;
  readonly notes: number;
  readonly heads: number;
  /** Distinct anchored heads found to name a record of this log with its hash. */
  readonly anchoredHeadsChecked: number;
  /** Records (not heads) after the record the last signed head covers. */
  readonly unsignedTail: number;
  /** Bytes of an incomplete last line (only with acceptUnsignedTail). */
  readonly incompleteTailBytes: number;
  readonly signaturesChecked: boolean;
  /** The last record's seq. */
  readonly lastSeq: number;
}

function publicKeyOf(pem: string): { key: KeyObject; pem: string; algorithm: Algorithm; fingerprint: string } {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new AuditLogError(0, 'the public key is not a PEM public key');
  }
  const algorithm: Algorithm | undefined = key.asymmetricKeyType === 'ed25519' ? 'ed25519'
    : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ecdsa-p256-sha256' : undefined;
  if (!algorithm) throw new AuditLogError(0, `the public key is a ${key.asymmetricKeyType} key; audit heads are signed with Ed25519 or ECDSA P-256`);
  return { key, pem, algorithm, fingerprint: fingerprint(pem) };
}

function checkSignature(h: AuditHead, key: ReturnType<typeof publicKeyOf>, line: number, what: string): void {
  if (h.alg !== key.algorithm) throw new AuditLogError(line, `${what} at record ${h.seq} is signed with ${h.alg}, but the public key is ${key.algorithm}`);
  try {
    verifySignature(headBody(h), Buffer.from(h.signature, 'base64'), key);
  } catch (e) {
    if (e instanceof BundleError) throw new AuditLogError(line, `the signature of the ${what} at record ${h.seq} does not verify (${e.message})`);
    throw e;
  }
}

/**
 * Verifies a log: the chain (any altered, removed, reordered or repeated record), every record's shape,
 * every outcome against its intent, every head against the record it names and (with a public key) its
 * signature; that something is signed and nothing after the last signed head is unsigned (unless
 * accepted); and that every anchored head names a record of this log with that record's hash (a log cut at
 * a signed head, or rewritten, fails here). Throws AuditLogError on the first problem.
 */
export function verifyAuditLog(file: string, o: AuditVerifyOptions = {}): AuditVerification {
  const key = o.publicKeyPem !== undefined ? publicKeyOf(o.publicKeyPem) : undefined;
  const anchors = new Map<number, AuditHead[]>();
  const seenAnchors = new Set<string>();
  (o.anchorHeads ?? []).forEach((h, i) => {
    const problem = headProblem(h);
    if (problem) throw new AuditLogError(0, `anchored head ${i + 1} is not ${problem}`);
    const id = `${h.seq}/${h.hash}/${h.signature}`;
    if (seenAnchors.has(id)) return;
    seenAnchors.add(id);
    if (key) checkSignature(h, key, 0, `head anchored at ${h.at}`);
    anchors.set(h.seq, [...(anchors.get(h.seq) ?? []), h]);
  });
  let anchoredHeadsChecked = 0;
  const reader = new ChainReader((r, n) => {
    if (r.type === 'head' && key) checkSignature(r.head, key, n, 'head');
    for (const h of anchors.get(r.seq) ?? []) {
      if (h.hash !== r.hash) throw new AuditLogError(n, `record ${r.seq} is not the record a head anchored at ${h.at} names (hash ${h.hash.slice(0, 12)}..., found ${r.hash.slice(0, 12)}...): the log was truncated or rewritten`);
      anchoredHeadsChecked++;
    }
  });
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new AuditLogError(0, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let scanned: ReturnType<typeof scanLines>;
  try {
    scanned = scanLines(fd, (text, n) => { reader.add(parseLine(text, n), n); });
  } finally {
    fs.closeSync(fd);
  }
  const incompleteTailBytes = scanned.partial.length;
  if (incompleteTailBytes && !o.acceptUnsignedTail) {
    throw new AuditLogError(scanned.lines + 1, `incomplete last line (${incompleteTailBytes} bytes without a newline): the gateway stopped in the middle of a write (it removes this at its next start); pass --accept-unsigned-tail (acceptUnsignedTail) to verify a log still being written`);
  }
  if (reader.records === 0) throw new AuditLogError(0, `${file} is empty: no record, nothing signed`);
  for (const [seq, hs] of anchors) {
    if (seq > reader.seq) {
      throw new AuditLogError(0, `the log ends at record ${reader.seq} but a head anchored at ${hs[0].at} names record ${seq}: the log was truncated or rewritten`);
    }
  }
  if (reader.heads === 0) throw new AuditLogError(0, 'no signed head: nothing in this log is signed');
  const tail = `${reader.unsignedTail} record${reader.unsignedTail > 1 ? 's' : ''} after record ${reader.covered} (the last one a signed head covers)`;
  if (reader.unsignedTail > 0 && !o.acceptUnsignedTail) {
    throw new AuditLogError(reader.firstUnsigned(), `${tail} ${reader.unsignedTail > 1 ? 'are' : 'is'} not signed: anyone able to write the file could have added or changed ${reader.unsignedTail > 1 ? 'them' : 'it'}; pass --accept-unsigned-tail (acceptUnsignedTail) to verify a log still being written`);
  }
  if (reader.unsignedTail > 0) {
    // A live writer signs a head at least every interval while records are added: a last head older than
    // the window, with records after it, is a log whose later heads were deleted (the chain rebuilt without them).
    const windowMs = o.unsignedTailWindowMs ?? 120000;
    const now = o.now ?? new Date();
    const signedAt = Date.parse(reader.lastHeadAt!);
    if (!(now.getTime() - signedAt <= windowMs)) {
      throw new AuditLogError(reader.firstUnsigned(), `${tail} ${reader.unsignedTail > 1 ? 'are' : 'is'} not signed, and that head was signed at ${reader.lastHeadAt}, ${Number.isNaN(signedAt) ? 'an unreadable time' : `${Math.round((now.getTime() - signedAt) / 1000)} s before ${now.toISOString()}`}: a running gateway signs one at least every minute while records are added, so signed heads after it were deleted (or the gateway stopped without its final head: restart it and verify after its next head). An unsigned tail is accepted only after a head at most ${windowMs / 1000} s old`);
    }
  }
  return {
    records: reader.records,
    intents: reader.intents,
    outcomes: { ...reader.outcomes },
    openIntents: reader.open.size,
    rejections: reader.rejections,
    notes: reader.notes,
    heads: reader.heads,
    anchoredHeadsChecked,
    unsignedTail: reader.unsignedTail,
    incompleteTailBytes,
    signaturesChecked: key !== undefined,
    lastSeq: reader.seq,
  };
}
