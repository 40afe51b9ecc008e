import { createHash, createPrivateKey, createPublicKey, KeyObject, sign as cryptoSign, verify as cryptoVerify } from 'crypto';
import * as fs from 'fs';
import canonicalize from 'canonicalize';

/**
 * The customer-visible audit log of every boundary crossing: JSON lines, each entry chained to the one
 * before by hash, and every so often a head signed by the gateway's key. Altering, removing or reordering
 * any entry breaks the chain; `verifyAuditLog` names the first broken entry.
 */
export interface AuditEntry {
  readonly type: 'entry';
  readonly seq: number;
  readonly at: string;
  readonly direction: 'out' | 'in';
  readonly kind: string;
  readonly subject: string;
  readonly size: number;
  /** SHA-256 of the payload (never the payload). */
  readonly sha256: string;
  /** Hash of the previous entry; 64 zeros for the first. */
  readonly prev: string;
  /** SHA-256 of this entry's canonical JSON without `hash`. */
  readonly hash: string;
}

export interface AuditHead {
  readonly type: 'head';
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  /** Ed25519 signature (base64) over the canonical JSON of the head without `signature`. */
  readonly signature: string;
}

export const GENESIS = '0'.repeat(64);
const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return sha256(canonicalize(e)!);
}

function headBody(h: Omit<AuditHead, 'signature'>): Buffer {
  return Buffer.from(canonicalize({ type: h.type, seq: h.seq, hash: h.hash, at: h.at })!, 'utf8');
}

export interface AuditLogOptions {
  readonly file: string;
  /** PEM Ed25519 private key the heads are signed with. */
  readonly signingKeyPem: string;
  /** Sign a head after this many entries. @default 1000 */
  readonly headEvery?: number;
  /** Also sign a head this often when entries were added since the last one. @default - only by count */
  readonly headIntervalMs?: number;
}

/** Appends entries (buffered) and signed heads to a log file, continuing an existing chain. */
export class AuditLogWriter {
  private seq = 0;
  private prev = GENESIS;
  private sinceHead = 0;
  private readonly key: KeyObject;
  private readonly out: fs.WriteStream;
  private readonly timer?: NodeJS.Timeout;

  constructor(private readonly options: AuditLogOptions) {
    this.key = createPrivateKey(options.signingKeyPem);
    if (fs.existsSync(options.file)) {
      const last = fs.readFileSync(options.file, 'utf8').trimEnd().split('\n').reverse()
        .map((l) => (l ? JSON.parse(l) : undefined)).find((l) => l?.type === 'entry') as AuditEntry | undefined;
      if (last) { this.seq = last.seq; this.prev = last.hash; }
    }
    this.out = fs.createWriteStream(options.file, { flags: 'a' });
    if (options.headIntervalMs) {
      this.timer = setInterval(() => { if (this.sinceHead > 0) this.head(); }, options.headIntervalMs);
      this.timer.unref();
    }
  }

  public append(e: { direction: 'out' | 'in'; kind: string; subject: string; payload: Uint8Array; at?: Date }): AuditEntry {
    const body = { type: 'entry' as const, seq: this.seq + 1, at: (e.at ?? new Date()).toISOString(), direction: e.direction, kind: e.kind, subject: e.subject, size: e.payload.length, sha256: sha256(e.payload), prev: this.prev };
    const entry: AuditEntry = { ...body, hash: entryHash(body) };
    this.out.write(`${JSON.stringify(entry)}\n`);
    this.seq = entry.seq;
    this.prev = entry.hash;
    if (++this.sinceHead >= (this.options.headEvery ?? 1000)) this.head();
    return entry;
  }

  /** Writes a signed head over the last entry. */
  public head(at = new Date()): AuditHead | undefined {
    if (this.seq === 0) return undefined;
    const body = { type: 'head' as const, seq: this.seq, hash: this.prev, at: at.toISOString() };
    const head: AuditHead = { ...body, signature: cryptoSign(null, headBody(body), this.key).toString('base64') };
    this.out.write(`${JSON.stringify(head)}\n`);
    this.sinceHead = 0;
    return head;
  }

  /** Signs a final head and flushes everything to disk. */
  public async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.sinceHead > 0) this.head();
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

export interface AuditVerification {
  readonly entries: number;
  readonly heads: number;
  /** Entries after the last signed head (not yet covered by a signature). */
  readonly unsignedTail: number;
}

/** An audit log that does not verify: the first broken line and why. */
export class AuditLogError extends Error {
  constructor(public readonly line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = 'AuditLogError';
  }
}

/** Verifies a log's chain and, with a public key, every head's signature. Throws on the first break. */
export function verifyAuditLog(file: string, publicKeyPem?: string): AuditVerification {
  const key = publicKeyPem ? createPublicKey(publicKeyPem) : undefined;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let prev = GENESIS;
  let seq = 0;
  let entries = 0;
  let heads = 0;
  let sinceHead = 0;
  lines.forEach((line, i) => {
    const n = i + 1;
    let record: AuditEntry | AuditHead;
    try {
      record = JSON.parse(line);
    } catch {
      throw new AuditLogError(n, 'not a JSON record');
    }
    if (record.type === 'entry') {
      const { hash, ...body } = record;
      if (body.seq !== seq + 1) {
        throw new AuditLogError(n, body.seq > seq + 1 ? `entry ${body.seq} follows entry ${seq}: entries ${seq + 1}..${body.seq - 1} were removed` : `entry ${body.seq} follows entry ${seq}: entries were reordered or repeated`);
      }
      if (entryHash(body) !== hash) throw new AuditLogError(n, `entry ${body.seq} does not match its hash: it was altered`);
      if (body.prev !== prev) throw new AuditLogError(n, `entry ${body.seq} does not chain to entry ${seq}: an entry before it was removed, replaced or reordered`);
      prev = hash;
      seq = body.seq;
      entries++;
      sinceHead++;
    } else if (record.type === 'head') {
      if (record.seq !== seq || record.hash !== prev) throw new AuditLogError(n, `signed head names entry ${record.seq}, but the chain is at entry ${seq}`);
      if (key && !cryptoVerify(null, headBody(record), key, Buffer.from(record.signature, 'base64'))) {
        throw new AuditLogError(n, `the signature of the head at entry ${record.seq} does not verify`);
      }
      heads++;
      sinceHead = 0;
    } else {
      throw new AuditLogError(n, `unknown record type ${JSON.stringify((record as { type?: unknown }).type)}`);
    }
  });
  return { entries, heads, unsignedTail: sinceHead };
}
