import { Direction, Field, kindsFor, MessageKind, projectedOut, ShareSettings } from './boundary-contract';

/**
 * The leakage bound of the boundary contract: how many bits a sender can put in one message of each kind,
 * and so, with the kind's rate limit, in one second. Bits per message are log2 of the number of distinct
 * values the sender controls: the gateway publishes only the canonical serialization of a valid value, so
 * each distinct value is one distinct message, and nothing else about the bytes survives. Counts are exact
 * (big integers) for the contract's field types: identifiers by counting the strings their pattern and
 * maxLength admit, enumerations, integer ranges, float64 values in a range, bounded lists and closed
 * objects; a kind's count is further bounded by its maxBytes. Gateway-signed fields and fields the
 * settings remove carry nothing from the sender.
 *
 * Not counted, and stated in the documentation: when and how often a message is sent (timing and count
 * are channels too, bounded by the rate limit but not by this number).
 */

// --- Patterns: a small regular-expression compiler for the subset the contract uses, to count matches. ---

type Node =
  | { readonly t: 'chars'; readonly set: ReadonlySet<string> }
  | { readonly t: 'seq'; readonly items: readonly Node[] }
  | { readonly t: 'alt'; readonly options: readonly Node[] }
  | { readonly t: 'repeat'; readonly node: Node; readonly min: number; readonly max: number }
  | { readonly t: 'look'; readonly set: ReadonlySet<string> };

const range = (from: string, to: string) => Array.from({ length: to.charCodeAt(0) - from.charCodeAt(0) + 1 }, (_, i) => String.fromCharCode(from.charCodeAt(0) + i));
const DIGITS = range('0', '9');
const WORD = [...range('a', 'z'), ...range('A', 'Z'), ...DIGITS, '_'];

/**
 * Parses an anchored pattern (`^...$`) made of literals, classes (`[a-z0-9_-]`, `\d`, `\w`), groups,
 * alternation, quantifiers and single-class lookaheads `(?=[...])`. Anything else (unanchored, `.`,
 * negated classes, backreferences, lookbehind) is refused: its count would not be finite or not exact.
 */
function parsePattern(pattern: string): Node {
  if (!pattern.startsWith('^') || !pattern.endsWith('$') || pattern.endsWith('\\$')) throw new Error(`pattern ${pattern}: only anchored patterns (^...$) can be counted`);
  const src = pattern.slice(1, -1);
  let i = 0;
  const fail = (what: string): never => { throw new Error(`pattern ${pattern}: ${what} at ${i + 1} is not supported for counting`); };
  const escape = (): string[] => {
    const c = src[i++];
    if (c === 'd') return DIGITS;
    if (c === 'w') return WORD;
    if (c === undefined || /[a-zA-Z0-9]/.test(c)) return fail(`escape \\${c ?? ''}`);
    return [c];
  };
  const parseClass = (): Set<string> => {
    i++; // [
    if (src[i] === '^') fail('a negated class');
    const set = new Set<string>();
    while (src[i] !== ']') {
      if (i >= src.length) fail('an unclosed class');
      let chars: string[];
      if (src[i] === '\\') { i++; chars = escape(); } else chars = [src[i++]];
      if (chars.length === 1 && src[i] === '-' && src[i + 1] !== ']' && i + 1 < src.length) {
        i++;
        let to: string[];
        if (src[i] === '\\') { i++; to = escape(); } else to = [src[i++]];
        if (to.length !== 1 || to[0] < chars[0]) fail('a range');
        chars = range(chars[0], to[0]);
      }
      for (const c of chars) set.add(c);
    }
    i++; // ]
    return set;
  };
  const parseAlt = (): Node => {
    const options = [parseSeq()];
    while (src[i] === '|') { i++; options.push(parseSeq()); }
    return options.length === 1 ? options[0] : { t: 'alt', options };
  };
  const parseSeq = (): Node => {
    const items: Node[] = [];
    while (i < src.length && src[i] !== '|' && src[i] !== ')') {
      let atom: Node;
      const c = src[i];
      if (c === '(') {
        if (src.startsWith('(?=', i)) {
          i += 3;
          const inner = parseAlt();
          if (src[i++] !== ')') fail('an unclosed group');
          if (inner.t !== 'chars') fail('a lookahead other than one class');
          items.push({ t: 'look', set: (inner as { set: ReadonlySet<string> }).set });
          continue;
        }
        if (src.startsWith('(?', i) && !src.startsWith('(?:', i)) fail('a group kind');
        i += src.startsWith('(?:', i) ? 3 : 1;
        atom = parseAlt();
        if (src[i++] !== ')') fail('an unclosed group');
      } else if (c === '[') {
        atom = { t: 'chars', set: parseClass() };
      } else if (c === '\\') {
        i++;
        atom = { t: 'chars', set: new Set(escape()) };
      } else if ('.^$*+?{}]'.includes(c)) {
        return fail(`"${c}"`);
      } else {
        i++;
        atom = { t: 'chars', set: new Set([c]) };
      }
      const q = /^(?:\{(\d+)(?:(,)(\d*))?\}|([*+?]))/.exec(src.slice(i));
      if (q) {
        i += q[0].length;
        if (src[i] === '?' || src[i] === '+') fail('a lazy or possessive quantifier');
        const [min, max] = q[4] === '*' ? [0, Infinity] : q[4] === '+' ? [1, Infinity] : q[4] === '?' ? [0, 1]
          : [Number(q[1]), q[2] ? (q[3] ? Number(q[3]) : Infinity) : Number(q[1])];
        if (max < min) fail('a quantifier');
        atom = { t: 'repeat', node: atom, min, max };
      }
      items.push(atom);
    }
    return items.length === 1 ? items[0] : { t: 'seq', items };
  };
  const node = parseAlt();
  if (i !== src.length) fail(`"${src[i]}"`);
  return node;
}

/** Thompson NFA: character edges, and epsilon edges that may carry a lookahead (the next character's class). */
interface Nfa {
  readonly chars: Map<number, { set: ReadonlySet<string>; to: number }[]>;
  readonly eps: Map<number, { to: number; look?: ReadonlySet<string> }[]>;
  next: number;
}

function build(nfa: Nfa, node: Node, from: number, maxLength: number): number {
  const fresh = () => nfa.next++;
  const eps = (a: number, b: number, look?: ReadonlySet<string>) => { nfa.eps.set(a, [...(nfa.eps.get(a) ?? []), { to: b, look }]); };
  switch (node.t) {
    case 'chars': {
      const to = fresh();
      nfa.chars.set(from, [...(nfa.chars.get(from) ?? []), { set: node.set, to }]);
      return to;
    }
    case 'look': {
      const to = fresh();
      eps(from, to, node.set);
      return to;
    }
    case 'seq': return node.items.reduce((at, item) => build(nfa, item, at, maxLength), from);
    case 'alt': {
      const to = fresh();
      for (const o of node.options) eps(build(nfa, o, from, maxLength), to);
      return to;
    }
    case 'repeat': {
      // Unrolled: min mandatory copies, then optional ones up to max (an unbounded max is capped by
      // maxLength, since every copy of a node that matters consumes at least one character or none at all).
      const max = Math.min(node.max, node.min + maxLength);
      let at = from;
      for (let k = 0; k < node.min; k++) at = build(nfa, node.node, at, maxLength);
      const end = fresh();
      eps(at, end);
      for (let k = node.min; k < max; k++) {
        at = build(nfa, node.node, at, maxLength);
        eps(at, end);
      }
      return end;
    }
  }
}

/** Characters any match of the pattern can contain (for a pattern `parsePattern` accepts). */
export function patternAlphabet(pattern: string): Set<string> {
  const out = new Set<string>();
  const walk = (n: Node): void => {
    if (n.t === 'chars') n.set.forEach((c) => out.add(c));
    else if (n.t === 'seq') n.items.forEach(walk);
    else if (n.t === 'alt') n.options.forEach(walk);
    else if (n.t === 'repeat') walk(n.node);
  };
  walk(parsePattern(pattern));
  return out;
}

/**
 * Exactly how many strings of at most `maxLength` characters the anchored pattern matches (as Ajv tests
 * them: the pattern and maxLength both hold). Counted by determinizing the NFA on the fly and summing the
 * strings that reach an accepting state at each length: ambiguity in the pattern cannot inflate the count.
 */
export function countPatternMatches(pattern: string, maxLength: number): bigint {
  const nfa: Nfa = { chars: new Map(), eps: new Map(), next: 1 };
  const accept = build(nfa, parsePattern(pattern), 0, maxLength);
  const alphabet = [...patternAlphabet(pattern)].sort();
  // A configuration is an NFA state with the lookahead classes still pending on the next character.
  type Config = { state: number; look?: ReadonlySet<string> };
  const keyOf = (cs: Config[]) => cs.map((c) => `${c.state}${c.look ? `:${[...c.look].sort().join('')}` : ''}`).sort().filter((k, j, a) => a.indexOf(k) === j).join(' ');
  const closure = (start: Config[]): Config[] => {
    const seen = new Map<string, Config>();
    const stack = [...start];
    while (stack.length) {
      const c = stack.pop()!;
      const k = `${c.state}${c.look ? `:${[...c.look].sort().join('')}` : ''}`;
      if (seen.has(k)) continue;
      seen.set(k, c);
      for (const e of nfa.eps.get(c.state) ?? []) {
        const look = e.look && c.look ? new Set([...c.look].filter((x) => e.look!.has(x))) : (e.look ?? c.look);
        stack.push({ state: e.to, look });
      }
    }
    return [...seen.values()];
  };
  const states = new Map<string, Config[]>();
  const intern = (cs: Config[]) => { const k = keyOf(cs); if (!states.has(k)) states.set(k, cs); return k; };
  const transitions = new Map<string, Map<string, number>>();
  const step = (k: string): Map<string, number> => {
    let t = transitions.get(k);
    if (t) return t;
    t = new Map();
    for (const ch of alphabet) {
      const next: Config[] = [];
      for (const c of states.get(k)!) {
        if (c.look && !c.look.has(ch)) continue;
        for (const e of nfa.chars.get(c.state) ?? []) if (e.set.has(ch)) next.push({ state: e.to });
      }
      if (next.length) {
        const nk = intern(closure(next));
        t.set(nk, (t.get(nk) ?? 0) + 1);
      }
    }
    transitions.set(k, t);
    return t;
  };
  const accepting = (k: string) => states.get(k)!.some((c) => c.state === accept && !c.look);
  let layer = new Map<string, bigint>([[intern(closure([{ state: 0 }])), 1n]]);
  let total = 0n;
  for (let len = 0; len <= maxLength && layer.size; len++) {
    for (const [k, n] of layer) if (accepting(k)) total += n;
    const next = new Map<string, bigint>();
    for (const [k, n] of layer) for (const [nk, chars] of step(k)) next.set(nk, (next.get(nk) ?? 0n) + n * BigInt(chars));
    layer = next;
  }
  return total;
}

// --- Fields ---

/** Position of a float64 on the number line, -0 and 0 being one value (RFC 8785 writes both as `0`). */
function floatOrdinal(x: number): bigint {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  return x < 0 ? -bits : bits;
}

/** How many float64 values lie in [min, max] (finite, -0 counted as 0). */
export function countFloats(min: number, max: number): bigint {
  if (!(Number.isFinite(min) && Number.isFinite(max)) || max < min) throw new Error(`number range [${min}, ${max}] is not a finite range`);
  return floatOrdinal(max) - floatOrdinal(min) + 1n;
}

/** How many distinct valid values a field has (exact, for the contract's closed schemas). */
export function countValues(field: Field): bigint {
  switch (field.type) {
    case 'id': return countPatternMatches(field.pattern, field.maxLength);
    case 'enum': return BigInt(new Set(field.values).size);
    case 'integer': return BigInt(Math.floor(field.maximum)) - BigInt(Math.ceil(field.minimum)) + 1n;
    case 'number': return countFloats(field.minimum, field.maximum);
    case 'array': {
      // Lists of 0 to maxItems items: sum of items^n.
      const items = countValues(field.items);
      let total = 0n;
      let power = 1n;
      for (let n = 0; n <= field.maxItems; n++) { total += power; power *= items; }
      return total;
    }
    case 'object': return Object.entries(field.fields).reduce((p, [k, f]) => p * (field.required.includes(k) ? countValues(f) : countValues(f) + 1n), 1n);
  }
}

/** log2 of a big integer, to double precision. */
export function log2(n: bigint): number {
  if (n <= 0n) throw new Error('log2 of a non-positive count');
  const bits = n.toString(2).length;
  if (bits <= 1000) return Math.log2(Number(n));
  const shift = bits - 64;
  return Math.log2(Number(n >> BigInt(shift))) + shift;
}

// --- The bound ---

/** Rounded up to one decimal: a bound stays a bound. */
const up = (x: number) => Math.max(0, Math.ceil(x * 10 - 1e-9) / 10);

export interface FieldLeakage {
  readonly field: string;
  /** log2 of the field's distinct values (an optional field counts absence as one more value). */
  readonly bits: number;
  /** Why a field carries nothing from the sender. */
  readonly note?: 'gateway-signed' | 'removed (shareLearning off)';
}

export interface KindLeakage {
  readonly kind: string;
  readonly direction: Direction;
  readonly bitsPerMessage: number;
  /** Whether the schema or the kind's maxBytes (8 bits a byte) gives the smaller bound. */
  readonly boundBy: 'schema' | 'maxBytes';
  readonly perSecond: number;
  readonly burst: number;
  /** Sustained: bitsPerMessage x perSecond. */
  readonly bitsPerSecond: number;
  /** What a full bucket lets out at once: bitsPerMessage x burst. */
  readonly burstBits: number;
  readonly fields: readonly FieldLeakage[];
}

export interface LeakageBound {
  readonly kinds: readonly KindLeakage[];
  /** Customer to vendor: the most bits per second that can leave the account (sustained), and at once. */
  readonly outboundBitsPerSecond: number;
  readonly outboundBurstBits: number;
  /** Vendor to customer. */
  readonly inboundBitsPerSecond: number;
  readonly inboundBurstBits: number;
}

/**
 * The leakage bound of a set of kinds for the customer's settings: opt-out kinds are absent and
 * shape-revealing fields removed when `shareLearning` is off, as the gateway does.
 */
export function leakageBound(kinds: readonly MessageKind[] = kindsFor(), settings: ShareSettings = {}): LeakageBound {
  const share = settings.shareLearning ?? true;
  const crossing = kinds.filter((k) => share || !k.optOut);
  const exact = crossing.map((k) => {
    const removed = projectedOut(k, settings);
    const fields = Object.entries(k.schema.fields).map(([name, f]) => {
      if (k.gatewaySigned?.field === name) return { field: name, count: 1n, note: 'gateway-signed' as const };
      if (removed.includes(name)) return { field: name, count: 1n, note: 'removed (shareLearning off)' as const };
      const n = countValues(f);
      return { field: name, count: k.schema.required.includes(name) ? n : n + 1n };
    });
    const schemaBits = log2(fields.reduce((p, f) => p * f.count, 1n));
    // Every message is at most maxBytes bytes: at most sum over lengths of 256^length distinct messages.
    const byteBits = 8 * (k.maxBytes + 1) - Math.log2(255);
    const bits = Math.min(schemaBits, byteBits);
    return { k, fields, bits, boundBy: schemaBits <= byteBits ? 'schema' as const : 'maxBytes' as const };
  });
  const total = (d: Direction, per: (e: typeof exact[number]) => number) => up(exact.filter((e) => e.k.direction === d).reduce((s, e) => s + per(e), 0));
  return {
    kinds: exact.map(({ k, fields, bits, boundBy }) => ({
      kind: k.name,
      direction: k.direction,
      bitsPerMessage: up(bits),
      boundBy,
      perSecond: k.rateLimit.perSecond,
      burst: k.rateLimit.burst,
      bitsPerSecond: up(bits * k.rateLimit.perSecond),
      burstBits: up(bits * k.rateLimit.burst),
      fields: fields.map((f) => ({ field: f.field, bits: up(log2(f.count)), ...(f.note ? { note: f.note } : {}) })),
    })),
    outboundBitsPerSecond: total(Direction.CUSTOMER_TO_VENDOR, (e) => e.bits * e.k.rateLimit.perSecond),
    outboundBurstBits: total(Direction.CUSTOMER_TO_VENDOR, (e) => e.bits * e.k.rateLimit.burst),
    inboundBitsPerSecond: total(Direction.VENDOR_TO_CUSTOMER, (e) => e.bits * e.k.rateLimit.perSecond),
    inboundBurstBits: total(Direction.VENDOR_TO_CUSTOMER, (e) => e.bits * e.k.rateLimit.burst),
  };
}
