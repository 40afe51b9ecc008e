import { generateKeyPairSync, randomBytes, sign, verify } from 'crypto';
import canonicalize from 'canonicalize';
import { BOUNDARY_CONTRACT, checkContract, Field, kindsFor, MessageKind, publishedSchema, senderSchema } from '../../lib/boundary-contract';
import { Accepted, canonicalBytes, CheckResult, ContractValidator, isRejection, Rejection, RejectionReason, signedBody } from '../../lib/contract-validator';

/**
 * The gateway publishes `canonical`, never the bytes it received. What must hold for every input, however
 * hostile: it is refused, or `canonical` is byte for byte `canonicalize(value)` AND the input itself. So no
 * encoding choice of the sender (duplicate keys, escapes, number spelling, whitespace, byte order mark, key
 * order, invalid UTF-8) can carry anything beyond the value's fields.
 */

const kind = (name: string) => BOUNDARY_CONTRACT.kinds.find((k) => k.name === name)!;
const gateway = new ContractValidator(BOUNDARY_CONTRACT.kinds);
const reference = new ContractValidator(BOUNDARY_CONTRACT.kinds, { canonicalParser: false });
const REASONS: RejectionReason[] = ['unknown-kind', 'oversize', 'not-utf8', 'not-json', 'schema', 'not-canonical'];
const SECRET = 'DB_PASSWORD=hunter2';

/** Seeded PRNG (mulberry32): the same corpus on every run. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
type Rng = ReturnType<typeof rng>;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rng, min: number, max: number) => min + Math.floor(r() * (max - min + 1));

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** A ULID as the runtime makes one: 48-bit milliseconds, 80 random bits, Crockford base32. */
function ulid(r: Rng, time = 1790000000000): string {
  let t = time;
  let s = '';
  for (let i = 0; i < 10; i++) { s = CROCKFORD[t % 32] + s; t = Math.floor(t / 32); }
  for (let i = 0; i < 16; i++) s += CROCKFORD[int(r, 0, 31)];
  return s;
}

const samples: Record<string, Record<string, unknown>> = {
  workflow: { workflowId: '01KBQ8ZK3M4N5P6Q7R8S9T0VWX', stepId: 3, agent: 'code-reviewer', status: 'succeeded', statusCode: 200, startedAt: 1790000000000, durationMs: 1234 },
  metrics: {
    windowStart: 1790000000000,
    windowEnd: 1790000060000,
    points: [
      { metric: 'agent.requests', agent: 'planner', statusCode: 200, trigger: 'event', value: 12 },
      { metric: 'agent.cpu.utilization', agent: 'code-reviewer', value: 0.25 },
    ],
  },
  fingerprint: { patternHash: 'ab'.repeat(32), shape: ['planner', 'code-generator'], occurrences: 3, outcome: 'succeeded' },
  usage: { periodStart: 1790000000000, periodEnd: 1790000300000, agent: 'usage-meter', invocations: 12, computeSeconds: 30, llmTokensIn: 1000, llmTokensOut: 0 },
  control: { action: 'set-config-version', workflowId: '01KBQ8ZK3M4N5P6Q7R8S9T0VWY', configVersion: '1.20.3', issuedAt: 1790000000000 },
  learning: { patternHash: 'cd'.repeat(32), shape: ['planner', 'code-generator', 'code-reviewer'], succeeded: 41, failed: 2, publishedAt: 1790000000000 },
};

/** What must hold of one input; returns a description of what does not, or undefined. */
function violation(k: string, bytes: Uint8Array, v = gateway, ref = reference): string | undefined {
  const r = v.check(k, bytes);
  const q = ref.check(k, bytes);
  if (isRejection(r) !== isRejection(q)) return `the canonical parser ${isRejection(r) ? 'refused' : 'accepted'} what the reference path ${isRejection(q) ? 'refused' : 'accepted'}`;
  if (isRejection(r)) {
    if (!REASONS.includes(r.reason)) return `unknown reason ${r.reason}`;
    if (/hunter2|DB_PASSWORD|polluted/.test(r.detail)) return `the detail echoes content: ${r.detail}`;
    return undefined;
  }
  const a = r as Accepted;
  if (!a.canonical.equals(Buffer.from(canonicalize(a.value)!, 'utf8'))) return 'canonical is not canonicalize(value)';
  if (!a.canonical.equals(Buffer.from(bytes))) return 'canonical is not the input';
  if (!(q as Accepted).canonical.equals(a.canonical) || JSON.stringify(a.value) !== JSON.stringify((q as Accepted).value)) return 'the two paths built different values';
  return undefined;
}

// --- A tree form of JSON that can hold what a value cannot: duplicate keys and any member order. ---
type Tree = null | boolean | number | string | Tree[] | { members: [string, Tree][] };
const treeOf = (v: unknown): Tree => {
  if (Array.isArray(v)) return v.map(treeOf);
  if (v !== null && typeof v === 'object') return { members: Object.keys(v).sort().map((k) => [k, treeOf((v as Record<string, unknown>)[k])]) };
  return v as Tree;
};
const emit = (t: Tree): string => {
  if (Array.isArray(t)) return `[${t.map(emit).join(',')}]`;
  if (t !== null && typeof t === 'object') return `{${t.members.map(([k, v]) => `${JSON.stringify(k)}:${emit(v)}`).join(',')}}`;
  return JSON.stringify(t);
};
/** Every object in a tree, with a way to rebuild the tree with that object's members replaced. */
function objectsOf(t: Tree, rebuild: (x: Tree) => Tree = (x) => x): { members: [string, Tree][]; replace: (m: [string, Tree][]) => Tree }[] {
  if (Array.isArray(t)) return t.flatMap((item, i) => objectsOf(item, (x) => rebuild(t.map((y, j) => (j === i ? x : y)))));
  if (t === null || typeof t !== 'object') return [];
  const here = { members: t.members, replace: (m: [string, Tree][]) => rebuild({ members: m }) };
  return [here, ...t.members.flatMap(([k, v], i) => objectsOf(v, (x) => rebuild({ members: t.members.map((m, j) => (j === i ? [k, x] : m)) })))];
}

/** Spans of string and number tokens in a JSON text. */
function tokens(text: string): { type: 'string' | 'number'; start: number; end: number }[] {
  const out: { type: 'string' | 'number'; start: number; end: number }[] = [];
  for (let i = 0; i < text.length;) {
    if (text[i] === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out.push({ type: 'string', start: i, end: j + 1 });
      i = j + 1;
    } else if (/[-0-9]/.test(text[i])) {
      const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i))!;
      out.push({ type: 'number', start: i, end: i + m[0].length });
      i += m[0].length;
    } else i++;
  }
  return out;
}
const splice = (s: string, start: number, end: number, by: string) => s.slice(0, start) + by + s.slice(end);
const hex4 = (c: string, upper: boolean) => { const h = c.charCodeAt(0).toString(16).padStart(4, '0'); return `\\u${upper ? h.toUpperCase() : h}`; };

/** The hostile corpus for one kind: [what, bytes]. */
function hostileCorpus(k: MessageKind, sample: Record<string, unknown>): [string, Buffer][] {
  const r = rng(k.name.length * 7919);
  const t = canonicalize(sample)!;
  const tree = treeOf(sample);
  const out: [string, Buffer][] = [];
  const add = (what: string, s: string | Buffer) => out.push([what, Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8')]);

  // Duplicate keys at every depth: before and after, the same value, another valid value, free text.
  for (const o of objectsOf(tree)) {
    o.members.forEach(([key, value], i) => {
      const others: Tree[] = [value, SECRET, 0, 1790000000001, { members: [['x', SECRET]] }, typeof value === 'string' ? `${value}` : value];
      for (const dup of others) {
        add(`duplicate ${key} before`, emit(o.replace([...o.members.slice(0, i), [key, dup], ...o.members.slice(i)])));
        add(`duplicate ${key} after`, emit(o.replace([...o.members.slice(0, i + 1), [key, dup], ...o.members.slice(i + 1)])));
        add(`duplicate ${key} at the end`, emit(o.replace([...o.members, [key, dup]])));
      }
    });
    // Keys reordered: every adjacent swap, reversed, random shuffles.
    for (let i = 0; i + 1 < o.members.length; i++) {
      const m = [...o.members];
      [m[i], m[i + 1]] = [m[i + 1], m[i]];
      add('adjacent keys swapped', emit(o.replace(m)));
    }
    if (o.members.length > 1) add('keys reversed', emit(o.replace([...o.members].reverse())));
    for (let n = 0; n < 10; n++) add('keys shuffled', emit(o.replace([...o.members].sort(() => r() - 0.5))));
    // Extra fields, prototype pollution included, first, last and in sorted place.
    for (const extra of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'zzz', 'AAA', 'signature', '']) {
      for (const value of [{ members: [['polluted', SECRET]] }, SECRET, 1, null] as Tree[]) {
        add(`extra ${extra} first`, emit(o.replace([[extra, value], ...o.members])));
        add(`extra ${extra} last`, emit(o.replace([...o.members, [extra, value]])));
        add(`extra ${extra} sorted`, emit(o.replace(([...o.members, [extra, value]] as [string, Tree][]).sort(([a], [b]) => (a < b ? -1 : 1)))));
      }
    }
    // Each field missing, each value of another type.
    o.members.forEach(([key], i) => {
      add(`${key} missing`, emit(o.replace(o.members.filter((_, j) => j !== i))));
      for (const v of [null, true, SECRET, [], { members: [] }, [SECRET], -1, 1e300] as Tree[]) add(`${key} of another type`, emit(o.replace(o.members.map((m, j) => (j === i ? [key, v] : m)))));
    });
  }

  // Strings: escapes of ASCII (upper and lower hex), escaped slash, lone surrogates, NUL, non-ASCII.
  for (const tok of tokens(t).filter((x) => x.type === 'string')) {
    const body = t.slice(tok.start + 1, tok.end - 1);
    for (const at of [0, body.length - 1, Math.floor(body.length / 2)]) {
      const p = tok.start + 1 + at;
      for (const upper of [false, true]) add('ASCII as a \\u escape', splice(t, p, p + 1, hex4(body[at], upper)));
      for (const by of ['\\/', '/', '\\ud800', '\\udc00', '\\ud83d\\ude00', '\u{1F600}', '\\u0000', '\u0000', '\\n', '\t', 'é', 'e\u0301', '\u2028', '\\"', '\\\\', '\u00a0']) {
        add('a string character replaced', splice(t, p, p + 1, by));
        add('a string character inserted', splice(t, p, p, by));
      }
    }
    add('the string replaced by free text', splice(t, tok.start, tok.end, JSON.stringify(SECRET)));
  }

  // Numbers: other spellings of the same value, out of range, huge, tiny.
  for (const tok of tokens(t).filter((x) => x.type === 'number')) {
    const raw = t.slice(tok.start, tok.end);
    const x = Number(raw);
    const spellings = [`${raw}.0`, `${raw}.00`, `${raw}e0`, `${raw}E0`, `${raw}e+0`, `${raw}e-0`, `0${raw}`, `00${raw}`, `+${raw}`, `-${raw}`, `${x * 10}e-1`, `${x / 10}e1`, x.toExponential(), x.toExponential().toUpperCase(), `${raw} `, ` ${raw}`, `${raw}.`, `.${raw}`, `0x${x.toString(16)}`,
      '-0', '-0.0', '0.0', '0e0', '1e400', '-1e400', '1e-400', '9007199254740993', `1${'0'.repeat(400)}`, '1e21', '123456789012345678901234567890', 'NaN', 'Infinity', '1_000'];
    for (const s of spellings) add(`number ${raw} spelled ${s.slice(0, 20)}`, splice(t, tok.start, tok.end, s));
  }

  // Whitespace anywhere, byte order marks, other encodings.
  for (let p = 0; p <= t.length; p++) for (const ws of [' ', '\t', '\n', '\r']) add('whitespace inserted', splice(t, p, p, ws));
  add('whitespace everywhere', JSON.stringify(sample, null, 2));
  add('BOM first', `\ufeff${t}`);
  add('BOM last', `${t}\ufeff`);
  add('UTF-16LE with BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(t, 'utf16le')]));
  add('UTF-16BE with BOM', Buffer.from([0xfe, 0xff, ...Buffer.from(t, 'utf16le').swap16()]));
  add('UTF-32', Buffer.from([...t].flatMap((c) => [c.charCodeAt(0), 0, 0, 0])));

  // Invalid UTF-8 at the start, in the first string, at the end: overlong forms ('/', '"', 'a', NUL),
  // CESU-8 surrogates, truncated sequences, bytes that never occur, code points above U+10FFFF.
  const bad = [[0xc0, 0xaf], [0xc0, 0xa2], [0xc1, 0xa1], [0xc0, 0x80], [0xe0, 0x80, 0xaf], [0xf0, 0x80, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80],
    [0xe2, 0x82], [0xc3], [0x80], [0xbf], [0xfe], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80]];
  const firstString = t.indexOf('"', t.indexOf(':')) + 1;
  for (const b of bad) {
    for (const p of [0, firstString, t.length]) add(`invalid UTF-8 ${Buffer.from(b).toString('hex')} at ${p}`, Buffer.concat([Buffer.from(t.slice(0, p)), Buffer.from(b), Buffer.from(t.slice(p))]));
    add('invalid UTF-8 replacing a string character', Buffer.concat([Buffer.from(t.slice(0, firstString)), Buffer.from(b), Buffer.from(t.slice(firstString + 1))]));
  }
  // NUL bytes.
  for (const p of [0, 1, firstString, t.length - 1, t.length]) add('NUL byte', Buffer.concat([Buffer.from(t.slice(0, p)), Buffer.from([0]), Buffer.from(t.slice(p))]));

  // Nesting depth, in place of each value and as the whole payload.
  for (const depth of [1, 64, 1000, 5000]) {
    const arrays = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    add(`nested arrays ${depth}`, arrays);
    add(`nested objects ${depth}`, objects);
    for (const tok of tokens(t).slice(0, 6)) add(`value replaced by nesting ${depth}`, splice(t, tok.start, tok.end, arrays));
  }

  // Oversize, trailing content, truncation, other JSON texts.
  add('padded to the limit with spaces', `${t}${' '.repeat(k.maxBytes - t.length)}`);
  add('one byte over the limit', `${t}${' '.repeat(k.maxBytes - t.length + 1)}`);
  add('far over the limit', t + ' '.repeat(k.maxBytes * 4));
  add('twice', t + t);
  add('trailing garbage', `${t}x`);
  add('trailing comma', `${t.slice(0, -1)},}`);
  for (let n = 0; n < t.length; n++) add('truncated', t.slice(0, n));
  for (const s of ['', 'null', 'true', '0', '"x"', '[]', '{}', '[{}]', JSON.stringify([sample]), `[${t}]`, `{"${k.name}":${t}}`]) add(`the text ${s.slice(0, 12)}`, s);
  return out;
}

describe('canonical crossing: a hostile corpus for every kind', () => {
  test.each(BOUNDARY_CONTRACT.kinds.map((k) => [k.name]))('%s: every input is refused, or crosses as exactly its canonical self', (name) => {
    const k = kind(name);
    const sample = samples[name];
    const t = canonicalize(sample)!;
    const accepted = gateway.check(name, Buffer.from(t));
    expect(isRejection(accepted)).toBe(false);
    expect((accepted as Accepted).canonical.toString()).toBe(t);
    expect((accepted as Accepted).value).toEqual(sample);

    const corpus = hostileCorpus(k, sample);
    expect(corpus.length).toBeGreaterThan(500);
    const failures: string[] = [];
    let sameValueRefused = 0;
    for (const [what, bytes] of corpus) {
      const v = violation(name, bytes);
      if (v) failures.push(`${what}: ${v}`);
      // Any other encoding of the very same value must be refused: the canonical form is unique.
      let same: boolean;
      try { same = canonicalize(JSON.parse(bytes.toString('utf8'))) === t; } catch { continue; }
      if (!bytes.equals(Buffer.from(t)) && same) {
        if (!isRejection(gateway.check(name, bytes))) failures.push(`${what}: another encoding of the sample was accepted`);
        else sameValueRefused++;
      }
    }
    expect(failures.slice(0, 20)).toEqual([]);
    expect(sameValueRefused).toBeGreaterThan(100);
  });

  test('a duplicate key smuggling free text is refused as not canonical, naming the duplicate and not the text', () => {
    const t = canonicalize(samples.workflow)!;
    const smuggled = `{"workflowId":"${SECRET}",${t.slice(1)}`.replace('"agent":', '"agent":"x","agent":');
    for (const payload of [`{"workflowId":"${SECRET}",${t.slice(1)}`, smuggled]) {
      const r = gateway.check('workflow', Buffer.from(payload));
      expect(r).toEqual({ reason: 'not-canonical', detail: 'an object has a duplicate key' });
    }
    // The last of duplicate keys is what JSON.parse keeps: this one is valid, and still refused.
    const valid = t.replace('"workflowId":', `"workflowId":"${'0'.repeat(26)}","workflowId":`);
    expect(JSON.parse(valid)).toEqual(samples.workflow);
    expect(gateway.check('workflow', Buffer.from(valid))).toEqual({ reason: 'not-canonical', detail: 'an object has a duplicate key' });
  });

  test('each kind of encoding trick has its own stable reason and a detail without content', () => {
    const t = canonicalize(samples.workflow)!;
    const r = (s: string | Buffer) => gateway.check('workflow', Buffer.isBuffer(s) ? s : Buffer.from(s)) as Rejection;
    expect(r(t.replace(',', ', '))).toEqual({ reason: 'not-canonical', detail: 'whitespace outside strings' });
    expect(r(`\ufeff${t}`)).toEqual({ reason: 'not-canonical', detail: 'payload starts with a byte order mark' });
    expect(r(t.replace('"code-reviewer"', '"code\\u002dreviewer"'))).toEqual({ reason: 'not-canonical', detail: 'a string is not in its one escaping (RFC 8785 3.2.2.2)' });
    expect(r(t.replace('"statusCode":200', '"statusCode":2e2'))).toEqual({ reason: 'not-canonical', detail: 'a number is not in its one spelling (RFC 8785 3.2.2.3)' });
    expect(r(t.replace('"statusCode":200', '"statusCode":200.0'))).toEqual({ reason: 'not-canonical', detail: 'a number is not in its one spelling (RFC 8785 3.2.2.3)' });
    expect(r(canonicalize({ ...samples.workflow, stepId: 0 })!.replace('"stepId":0', '"stepId":-0'))).toEqual({ reason: 'not-canonical', detail: 'a number is not in its one spelling (RFC 8785 3.2.2.3)' });
    expect(r(JSON.stringify(samples.workflow))).toEqual({ reason: 'not-canonical', detail: 'object keys are not sorted (RFC 8785 3.2.3)' });
    expect(r(Buffer.concat([Buffer.from(t.slice(0, -2)), Buffer.from([0xc0, 0xaf]), Buffer.from('}')]))).toEqual({ reason: 'not-utf8', detail: 'payload is not UTF-8' });
    expect(r(t.replace('"code-reviewer"', `"${SECRET}"`))).toEqual({ reason: 'schema', detail: '/agent pattern' });
    expect(r(t.slice(0, -1))).toEqual({ reason: 'not-json', detail: 'payload is not JSON' });
    expect(r(t + ' '.repeat(2048))).toEqual({ reason: 'oversize', detail: `${t.length + 2048} bytes, the limit of workflow is 2048` });
    expect(gateway.check(SECRET, Buffer.from(t))).toEqual({ reason: 'unknown-kind', detail: `"${SECRET}" is not a kind of the contract for this customer` });
  });

  test('accepts a Uint8Array view into a larger buffer (as NATS hands messages over) and returns a copy', () => {
    const t = canonicalize(samples.usage)!;
    const big = Buffer.from(`xxxx${t}yyyy`);
    const view = new Uint8Array(big.buffer, big.byteOffset + 4, t.length);
    const r = gateway.check('usage', view) as Accepted;
    expect(r.canonical.toString()).toBe(t);
    big.fill(0);
    expect(r.canonical.toString()).toBe(t);
  });
});

// --- Random valid values: a generator for every field of the contract. ---
const agentName = (r: Rng) => {
  const len = int(r, 3, 28);
  let s = pick(r, [...'abcdefghijklmnopqrstuvwxyz']);
  while (s.length < len) {
    const last = s.length === len - 1 || s.endsWith('-');
    s += pick(r, [...'abcdefghijklmnopqrstuvwxyz0123456789', ...(last ? [] : ['-', '-', '-'])]);
  }
  return s;
};
const PATTERNS: Record<string, (r: Rng) => string> = {
  '^[0-7][0-9A-HJKMNP-TV-Z]{25}$': (r) => (r() < 0.5 ? ulid(r, int(r, 0, 2 ** 48 - 1)) : pick(r, ['0', '7']) + Array.from({ length: 25 }, () => pick(r, [...CROCKFORD])).join('')),
  '^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$': agentName,
  '^[0-9a-f]{64}$': (r) => Array.from({ length: 64 }, () => pick(r, [...'0123456789abcdef'])).join(''),
  '^\\d{1,4}\\.\\d{1,4}\\.\\d{1,4}$': (r) => [0, 1, 2].map(() => String(int(r, 0, 10 ** int(r, 1, 4) - 1))).join('.'),
  '^[A-Za-z0-9_-]{85}[AQgw]$': (r) => Buffer.from(Array.from({ length: 64 }, () => int(r, 0, 255))).toString('base64url'),
};
function randomValue(f: Field, r: Rng): unknown {
  switch (f.type) {
    case 'id': {
      const gen = PATTERNS[f.pattern];
      if (!gen) throw new Error(`no generator for the pattern ${f.pattern}: add one`);
      return gen(r);
    }
    case 'enum': return pick(r, f.values);
    case 'integer': return pick(r, [f.minimum, f.maximum, int(r, f.minimum, f.maximum), int(r, f.minimum, Math.min(f.maximum, f.minimum + 1000))]);
    case 'number': return pick(r, [f.minimum, f.maximum, r() * f.maximum, int(r, f.minimum, f.maximum), r() * 1e-7, 5e-324, 0.1, 1 / 3, 123456789.125, 1e-6 * int(r, 1, 999)].filter((x) => x >= f.minimum && x <= f.maximum));
    case 'array': return Array.from({ length: pick(r, [0, 1, int(r, 0, Math.min(f.maxItems, 40)), f.maxItems]) }, () => randomValue(f.items, r));
    case 'object': {
      // Fields in a random order: the serialization, not the sender's order, decides.
      const entries = Object.entries(f.fields).filter(([k]) => f.required.includes(k) || r() < 0.5).sort(() => r() - 0.5);
      return Object.fromEntries(entries.map(([k, sub]) => [k, randomValue(sub, r)]));
    }
  }
}

describe('canonical crossing: random valid values', () => {
  test.each(BOUNDARY_CONTRACT.kinds.map((k) => [k.name]))('%s: canonicalize(value) is accepted, identical, and builds the same value', (name) => {
    const k = kind(name);
    const r = rng(name.charCodeAt(0));
    let accepted = 0;
    for (let n = 0; n < 400; n++) {
      const value = randomValue(senderSchema(k), r) as Record<string, unknown>;
      const bytes = canonicalBytes(value);
      const result = gateway.check(name, bytes);
      if (bytes.length > k.maxBytes) {
        expect(result).toMatchObject({ reason: 'oversize' });
        continue;
      }
      if (isRejection(result)) throw new Error(`refused ${bytes.toString()}: ${result.reason} ${result.detail}`);
      expect(result.canonical.equals(bytes)).toBe(true);
      expect(result.value).toEqual(value);
      expect(violation(name, bytes)).toBeUndefined();
      accepted++;
    }
    expect(accepted).toBeGreaterThan(100);
  });

  test('random byte mutations of valid messages: refused, or exactly canonical; both paths agree', () => {
    const r = rng(42);
    const failures: string[] = [];
    for (const k of BOUNDARY_CONTRACT.kinds) {
      for (let n = 0; n < 300; n++) {
        const bytes = Buffer.from(canonicalBytes(randomValue(senderSchema(k), r)).subarray(0, k.maxBytes));
        for (let m = int(r, 1, 3); m > 0; m--) {
          const p = int(r, 0, bytes.length - 1);
          const op = int(r, 0, 2);
          const byte = pick(r, [int(r, 0, 255), ...Buffer.from('"\\{}[],:0123456789.eE-+ \u00e9')]);
          const mutated = op === 0 ? Buffer.concat([bytes.subarray(0, p), Buffer.from([byte]), bytes.subarray(p + 1)])
            : op === 1 ? Buffer.concat([bytes.subarray(0, p), Buffer.from([byte]), bytes.subarray(p)])
              : Buffer.concat([bytes.subarray(0, p), bytes.subarray(p + 1)]);
          const v = violation(k.name, mutated);
          if (v) failures.push(`${k.name} ${JSON.stringify(mutated.toString('latin1'))}: ${v}`);
        }
      }
    }
    expect(failures.slice(0, 20)).toEqual([]);
  });
});

describe('shareLearning: false', () => {
  const optedOut = new ContractValidator(kindsFor({ shareLearning: false }), { shareLearning: false });
  const optedOutReference = new ContractValidator(kindsFor({ shareLearning: false }), { shareLearning: false, canonicalParser: false });
  const hub = new ContractValidator(kindsFor({ shareLearning: false }), { shareLearning: false, schema: 'published' });

  test('workflow messages cross without agent and stepId, canonically, and the hub validates what arrives', () => {
    const r = rng(7);
    for (let n = 0; n < 300; n++) {
      const value = randomValue(senderSchema(kind('workflow')), r) as Record<string, unknown>;
      const bytes = canonicalBytes(value);
      const a = optedOut.check('workflow', bytes) as Accepted;
      const { agent: _agent, stepId: _stepId, ...projected } = value;
      expect(a.value).toEqual(projected);
      expect(a.canonical.toString()).toBe(canonicalize(projected));
      expect((optedOutReference.check('workflow', bytes) as Accepted).canonical.equals(a.canonical)).toBe(true);
      expect(a.canonical.toString()).not.toMatch(/"agent"|"stepId"/);
      const arrived = hub.check('workflow', a.canonical) as Accepted;
      expect(arrived.canonical.equals(a.canonical)).toBe(true);
    }
    expect(Object.keys(publishedSchema(kind('workflow'), { shareLearning: false }).fields).sort()).toEqual(['durationMs', 'startedAt', 'status', 'statusCode', 'workflowId']);
    // The hub refuses the fields an opted-out customer does not send.
    expect(hub.check('workflow', canonicalBytes(samples.workflow))).toEqual({ reason: 'schema', detail: '/ additionalProperties' });
  });

  test('the sender still sends the whole message (the runtime does not know the setting), and hostile encodings still fail', () => {
    const { agent: _a, stepId: _s, ...projected } = samples.workflow;
    expect(optedOut.check('workflow', canonicalBytes(projected))).toMatchObject({ reason: 'schema' });
    const failures = hostileCorpus(kind('workflow'), samples.workflow).map(([what, bytes]) => [what, violationProjected(bytes)]).filter(([, v]) => v);
    expect(failures.slice(0, 20)).toEqual([]);
    function violationProjected(bytes: Buffer): string | undefined {
      const a = optedOut.check('workflow', bytes);
      const b = optedOutReference.check('workflow', bytes);
      if (isRejection(a) !== isRejection(b)) return 'the two paths disagree';
      if (isRejection(a)) return /hunter2|polluted/.test(a.detail) ? 'the detail echoes content' : undefined;
      const { agent: _x, stepId: _y, ...p } = JSON.parse(bytes.toString()) as Record<string, unknown>;
      if (canonicalize(JSON.parse(bytes.toString())) !== bytes.toString()) return 'a non-canonical input was accepted';
      return a.canonical.toString() === canonicalize(p) && a.canonical.equals((b as Accepted).canonical) ? undefined : 'canonical is not the projection';
    }
  });

  test('fingerprints are no kind of the validator at all', () => {
    expect(optedOut.kinds()).not.toContain('fingerprint');
    expect(optedOut.check('fingerprint', canonicalBytes(samples.fingerprint))).toMatchObject({ reason: 'unknown-kind' });
  });

  test('the opt-out is one-way: learnings from the pool are still received, unchanged', () => {
    expect(optedOut.kinds()).toContain('learning');
    const bytes = canonicalBytes(samples.learning);
    expect((optedOut.check('learning', bytes) as Accepted).canonical.equals(bytes)).toBe(true);
  });
});

describe('metrics are signed by the gateway, not by the sender', () => {
  const metrics = kind('metrics');
  const hub = new ContractValidator(BOUNDARY_CONTRACT.kinds, { schema: 'published' });

  test('the sender schema has no signature; a sender that supplies one is refused', () => {
    expect(metrics.gatewaySigned).toEqual({ field: 'signature' });
    expect(Object.keys(senderSchema(metrics).fields)).not.toContain('signature');
    expect(Object.keys(publishedSchema(metrics).fields)).toContain('signature');
    const withSignature = canonicalBytes({ ...samples.metrics, signature: Buffer.alloc(64).toString('base64url') });
    expect(gateway.check('metrics', withSignature)).toEqual({ reason: 'schema', detail: '/ additionalProperties' });
    expect(hub.check('metrics', canonicalBytes(samples.metrics))).toEqual({ reason: 'schema', detail: '/ required' });
  });

  test('the gateway signs the canonical message; the hub validates the result and verifies the signature', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const accepted = gateway.check('metrics', canonicalBytes(samples.metrics)) as Accepted;
    const signed = gateway.withSignature('metrics', accepted, sign(null, accepted.canonical, privateKey));
    expect(signed.canonical.toString()).toBe(canonicalize(signed.value));
    const arrived = hub.check('metrics', signed.canonical) as Accepted;
    expect(arrived.canonical.equals(signed.canonical)).toBe(true);
    expect(signedBody(metrics, arrived.value).equals(accepted.canonical)).toBe(true);
    expect(verify(null, signedBody(metrics, arrived.value), publicKey, Buffer.from(arrived.value.signature as string, 'base64url'))).toBe(true);
    // Any 64 bytes fit the pattern; 63 or 65 do not, nor a kind without a gateway signature.
    for (let n = 0; n < 200; n++) expect(isRejection(hub.check('metrics', gateway.withSignature('metrics', accepted, randomBytes(64)).canonical))).toBe(false);
    expect(() => gateway.withSignature('metrics', accepted, randomBytes(63))).toThrow('a metrics signature is 64 raw bytes (Ed25519, or ECDSA P-256 r||s), this one is 63');
    expect(() => gateway.withSignature('workflow', accepted, randomBytes(64))).toThrow('workflow is not a gateway-signed kind of this validator');
    const tampered = JSON.parse(signed.canonical.toString());
    tampered.signature = `${tampered.signature.slice(0, 85)}B`; // the last character of 64 bytes carries 2 bits
    expect(hub.check('metrics', canonicalBytes(tampered))).toEqual({ reason: 'schema', detail: '/signature pattern' });
  });
});

describe('the contract', () => {
  test('version 3: runtime identifiers, a rate limit per kind, shape-revealing fields marked', () => {
    expect(BOUNDARY_CONTRACT.version).toBe(3);
    const r = rng(1);
    const wf = kind('workflow');
    expect(wf.revealsShape).toEqual(['agent', 'stepId']);
    expect(wf.schema.fields.stepId).toEqual({ type: 'integer', minimum: 0, maximum: 999 });
    for (const id of [ulid(r), ulid(r, 0), ulid(r, 2 ** 48 - 1)]) expect(isRejection(gateway.check('workflow', canonicalBytes({ ...samples.workflow, workflowId: id })))).toBe(false);
    for (const id of ['wf-1', '81KBQ8ZK3M4N5P6Q7R8S9T0VWX', '01KBQ8ZK3M4N5P6Q7R8S9T0VWI', '01kbq8zk3m4n5p6q7r8s9t0vwx', '01KBQ8ZK3M4N5P6Q7R8S9T0VW']) {
      expect(gateway.check('workflow', canonicalBytes({ ...samples.workflow, workflowId: id }))).toEqual({ reason: 'schema', detail: '/workflowId pattern' });
    }
    for (const k of BOUNDARY_CONTRACT.kinds) expect(k.rateLimit.perSecond * 60).toBeLessThanOrEqual(300);
  });

  test('checkContract refuses what could not be enforced as written', () => {
    const wf = kind('workflow');
    const bad: [string, MessageKind[]][] = [
      ['the name must be unique', [wf, wf]],
      ['rateLimit needs perSecond > 0', [{ ...wf, rateLimit: { perSecond: 0, burst: 1 } }]],
      ['rateLimit needs perSecond > 0', [{ ...wf, rateLimit: { perSecond: 1, burst: 0.5 } }]],
      ['nope is not a field of its schema', [{ ...wf, revealsShape: ['nope'] }]],
      ['nope is not a field of its schema', [{ ...wf, gatewaySigned: { field: 'nope' } }]],
      ['a gateway-signed field cannot be projected out', [{ ...wf, gatewaySigned: { field: 'agent' } }]],
      ['field name "constructor" is not a plain identifier', [{ ...wf, schema: { ...wf.schema, fields: { ...wf.schema.fields, constructor: { type: 'integer' as const, minimum: 0, maximum: 1 } } } }]],
      ['field name "__proto__" is not a plain identifier', [{ ...wf, revealsShape: undefined, schema: { type: 'object', fields: JSON.parse('{"__proto__":{"type":"integer","minimum":0,"maximum":1}}'), required: [] } }]],
      ['required field ghost is not declared', [{ ...wf, schema: { ...wf.schema, required: ['ghost'] } }]],
    ];
    for (const [message, kinds] of bad) expect(() => checkContract({ kinds })).toThrow(message);
    expect(() => checkContract(BOUNDARY_CONTRACT)).not.toThrow();
  });

  test('every result is either accepted or a rejection, and isRejection tells them apart', () => {
    const results: CheckResult[] = [gateway.check('usage', canonicalBytes(samples.usage)), gateway.check('usage', Buffer.from('{}'))];
    expect(results.map(isRejection)).toEqual([false, true]);
  });
});
