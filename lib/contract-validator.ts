import { isUtf8 } from 'buffer';
import Ajv, { ValidateFunction } from 'ajv';
import canonicalize from 'canonicalize';
import { anchoredPattern, Field, MessageKind, projectedOut, publishedSchema, senderSchema, ShareSettings } from './boundary-contract';

/** JSON Schema of a contract field: every object closed, every string bounded and patterned. */
export function jsonSchemaOf(field: Field): Record<string, unknown> {
  switch (field.type) {
    case 'id': return { type: 'string', pattern: anchoredPattern(field.pattern), maxLength: field.maxLength };
    case 'enum': return { type: 'string', enum: [...field.values] };
    case 'integer': return { type: 'integer', minimum: field.minimum, maximum: field.maximum };
    case 'number': return { type: 'number', minimum: field.minimum, maximum: field.maximum };
    case 'array': return { type: 'array', items: jsonSchemaOf(field.items), maxItems: field.maxItems };
    case 'object': return {
      type: 'object',
      properties: Object.fromEntries(Object.entries(field.fields).map(([k, f]) => [k, jsonSchemaOf(f)])),
      required: [...field.required],
      additionalProperties: false,
    };
  }
}

/**
 * Stable reason codes. `rate-limit`, `not-declared` and `opted-out` are decided by the gateway (a kind's token
 * bucket is empty; the sender did not declare the kind; the customer opted out of it with `shareLearning:
 * false`), the others by `ContractValidator.check`.
 */
export type RejectionReason = 'unknown-kind' | 'oversize' | 'not-utf8' | 'not-json' | 'schema' | 'not-canonical' | 'rate-limit' | 'not-declared' | 'opted-out';

/** Why a payload was refused: a stable reason code and a detail without the payload's content. */
export interface Rejection {
  readonly reason: RejectionReason;
  readonly detail: string;
}

/** A JSON object as the contract's schemas admit it. */
export type ContractValue = { readonly [field: string]: unknown };

/** An accepted payload: the validated value, and the only bytes that may be published for it. */
export interface Accepted {
  /** The value that crosses (with `shareLearning` off, without the shape-revealing fields). */
  readonly value: ContractValue;
  /** `canonicalize(value)` as UTF-8: what the gateway publishes, never the bytes it received. */
  readonly canonical: Buffer;
}

export type CheckResult = Accepted | Rejection;

/** Discriminates `check()`'s result. */
export function isRejection(r: CheckResult): r is Rejection {
  return (r as Rejection).reason !== undefined;
}

export interface ValidatorOptions extends ShareSettings {
  /**
   * Which side validates: `sender` is the gateway, checking what agents (or, inbound, the vendor) hand it
   * against `senderSchema` and projecting for the settings; `published` is the receiving side (the hub),
   * checking what the gateway published against `publishedSchema` (gateway-signed fields included).
   * @default 'sender'
   */
  readonly schema?: 'sender' | 'published';
  /**
   * Decide with the one-pass canonical parser first. Off, every payload takes the reference path (JSON.parse,
   * JSON Schema, comparison with the serialization): same decisions, slower; the tests compare the two.
   * @default true
   */
  readonly canonicalParser?: boolean;
}

/**
 * RFC 8785 (JSON Canonicalization Scheme) specialised to one schema, in two forms.
 *
 * - A serializer, for values the schema has accepted: keys sorted once (by UTF-16 code units, as
 *   `canonicalize` sorts), primitives written as `canonicalize` writes them (`JSON.stringify`; for numbers
 *   the ECMAScript Number-to-String that RFC 8785 adopts).
 * - A parser that accepts exactly the canonical serializations of valid values and builds the value: keys
 *   in sorted order, each at most once, no whitespace, strings in their one escaping, numbers in their one
 *   spelling, and every schema constraint. It replaces JSON.parse, the JSON Schema check and the comparison
 *   with the serialization on the accepting path (the gateway's common case) in one pass over the text.
 *
 * The reference path (JSON.parse, Ajv, serialize and compare) decides every input the parser refuses, with
 * the precise reason; the tests check on a hostile corpus and on random values that both accept the same
 * inputs, build the same values, and that `canonicalize(value)` is the input.
 */
type Serializer = (v: unknown) => string;
/** Parses the canonical form of a value at `p`: the position after it and the value in `out.v`, or -1. */
type Parser = (text: string, p: number, out: ParseOut) => number;
interface ParseOut { v: unknown; projected?: string }

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;

function serializerOf(field: Field): Serializer {
  switch (field.type) {
    case 'id': case 'enum': case 'number': return (v) => JSON.stringify(v);
    case 'integer': return Number.isSafeInteger(field.minimum) && Number.isSafeInteger(field.maximum) ? (v) => String(v) : (v) => JSON.stringify(v);
    case 'array': {
      const item = serializerOf(field.items);
      return (v) => {
        const a = v as unknown[];
        let s = '[';
        for (let i = 0; i < a.length; i++) s += (i === 0 ? '' : ',') + item(a[i]);
        return `${s}]`;
      };
    }
    case 'object': {
      const parts = Object.keys(field.fields).sort().map((k) => ({ key: k, prefix: `${JSON.stringify(k)}:`, ser: serializerOf(field.fields[k]), required: field.required.includes(k) }));
      return (v) => {
        const o = v as Record<string, unknown>;
        let s = '{';
        let first = true;
        for (const f of parts) {
          if (!f.required && !hasOwn(o, f.key)) continue;
          s += (first ? '' : ',') + f.prefix + f.ser(o[f.key]);
          first = false;
        }
        return `${s}}`;
      };
    }
  }
}

/**
 * A JSON string at `p` in its canonical form: a string without backslash or control character is its own
 * canonical form (the text is valid UTF-8, so it has no lone surrogate); one with escapes must be exactly
 * what `JSON.stringify` writes for its value.
 */
function parseString(text: string, p: number, out: ParseOut): number {
  if (text.charCodeAt(p) !== QUOTE) return -1;
  let escaped = false;
  let i = p + 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) break;
    if (!(c >= 0x20)) return -1; // a control character, or the end of the text (NaN)
    if (c === BACKSLASH) { escaped = true; i++; }
    i++;
  }
  if (!escaped) {
    out.v = text.slice(p + 1, i);
    return i + 1;
  }
  const token = text.slice(p, i + 1);
  let s: string;
  try {
    s = JSON.parse(token) as string;
  } catch {
    return -1;
  }
  if (JSON.stringify(s) !== token) return -1;
  out.v = s;
  return i + 1;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Any JSON number at `p`, accepted only in the spelling `JSON.stringify` gives its value. */
function numberParser(minimum: number, maximum: number, integer: boolean): Parser {
  return (text, p, out) => {
    NUMBER.lastIndex = p;
    const m = NUMBER.exec(text);
    if (!m) return -1;
    const v = Number(m[0]);
    if (!Number.isFinite(v) || JSON.stringify(v) !== m[0] || v < minimum || v > maximum || (integer && !Number.isInteger(v))) return -1;
    out.v = v;
    return p + m[0].length;
  };
}

function parserOf(field: Field): Parser {
  switch (field.type) {
    case 'enum': {
      const values = new Set<string>(field.values);
      return (text, p, out) => {
        const end = parseString(text, p, out);
        return end >= 0 && values.has(out.v as string) ? end : -1;
      };
    }
    case 'id': {
      // As Ajv checks it: the pattern with the `u` flag, maxLength in code points.
      const re = new RegExp(anchoredPattern(field.pattern), 'u');
      return (text, p, out) => {
        const end = parseString(text, p, out);
        if (end < 0) return -1;
        const s = out.v as string;
        return re.test(s) && (s.length <= field.maxLength || [...s].length <= field.maxLength) ? end : -1;
      };
    }
    case 'integer': {
      const { minimum, maximum } = field;
      if (!(Number.isSafeInteger(minimum) && Number.isSafeInteger(maximum))) return numberParser(minimum, maximum, true);
      // A safe integer is written as its decimal digits: no leading zero, no `-0`, no fraction or exponent
      // (what follows the digits must be the next structural character, which the caller checks).
      return (text, p, out) => {
        let i = p;
        const negative = text.charCodeAt(i) === 45;
        if (negative) i++;
        const start = i;
        let n = 0;
        for (let d = text.charCodeAt(i) - 48; d >= 0 && d <= 9 && i - start < 16; d = text.charCodeAt(i) - 48) { n = n * 10 + d; i++; }
        const digits = i - start;
        if (digits === 0 || (digits > 1 && text.charCodeAt(start) === 48) || (negative && n === 0)) return -1;
        const c = text.charCodeAt(i);
        if ((c >= 48 && c <= 57) || c === 46 || c === 69 || c === 101) return -1; // more digits, a fraction, an exponent
        const v = negative ? -n : n;
        if (v < minimum || v > maximum) return -1;
        out.v = v;
        return i;
      };
    }
    case 'number': return numberParser(field.minimum, field.maximum, false);
    case 'array': {
      const item = parserOf(field.items);
      const { maxItems } = field;
      return (text, p, out) => {
        if (text.charCodeAt(p) !== 91) return -1;
        p++;
        const a: unknown[] = [];
        if (text.charCodeAt(p) !== 93) {
          for (;;) {
            p = item(text, p, out);
            if (p < 0 || a.length === maxItems) return -1;
            a.push(out.v);
            if (text.charCodeAt(p) !== COMMA) break;
            p++;
          }
          if (text.charCodeAt(p) !== 93) return -1;
        }
        out.v = a;
        return p + 1;
      };
    }
    case 'object': return objectParser(field, []);
  }
}

/**
 * A closed object with its fields in sorted order, each at most once: a key out of order, repeated or
 * unknown is left over and refused. With fields to drop, it also writes the canonical serialization of the
 * object without them to `out.projected`: the canonical text of each kept member, as read, joined by commas
 * (canonical form is member by member, so removing members leaves the rest canonical).
 */
function objectParser(field: Extract<Field, { type: 'object' }>, drop: readonly string[]): Parser {
  const parts = Object.keys(field.fields).sort().map((k) => ({ key: k, prefix: `${JSON.stringify(k)}:`, parse: parserOf(field.fields[k]), required: field.required.includes(k), kept: !drop.includes(k) }));
  const projecting = drop.length > 0;
  return (text, p, out) => {
    if (text.charCodeAt(p) !== 123) return -1;
    p++;
    const o: Record<string, unknown> = {};
    let first = true;
    let projected = '{';
    for (const f of parts) {
      const at = first ? p : p + 1;
      if ((first || text.charCodeAt(p) === COMMA) && text.startsWith(f.prefix, at)) {
        p = f.parse(text, at + f.prefix.length, out);
        if (p < 0) return -1;
        o[f.key] = out.v;
        first = false;
        if (projecting && f.kept) projected += (projected.length > 1 ? ',' : '') + text.slice(at, p);
      } else if (f.required) {
        return -1;
      }
    }
    if (text.charCodeAt(p) !== 125) return -1;
    out.v = o;
    if (projecting) out.projected = `${projected}}`;
    return p + 1;
  };
}

interface Entry {
  readonly kind: MessageKind;
  /** The canonical parser of the kind's schema; with fields to drop, it also writes the projected text. */
  readonly parse: Parser;
  readonly validate: ValidateFunction;
  readonly serialize: Serializer;
  /** Fields removed before publishing, and the serializer of what remains. */
  readonly drop: readonly string[];
  readonly serializePublished: Serializer;
}

/**
 * Validators for a set of kinds. `check(kind, bytes)` accepts only bytes that are exactly the RFC 8785
 * serialization of a value valid against the kind's schema, and returns that value with the bytes to
 * publish; anything else (another encoding of a valid value included) is a `Rejection`.
 */
export class ContractValidator {
  private readonly entries = new Map<string, Entry>();
  private readonly canonicalParser: boolean;

  constructor(kinds: readonly MessageKind[], options: ValidatorOptions = {}) {
    this.canonicalParser = options.canonicalParser ?? true;
    const ajv = new Ajv({ allErrors: false, strict: true });
    for (const kind of kinds) {
      const received = options.schema === 'published' ? publishedSchema(kind, options) : senderSchema(kind);
      const drop = options.schema === 'published' ? [] : projectedOut(kind, options);
      const published: Field = { type: 'object', fields: Object.fromEntries(Object.entries(received.fields).filter(([k]) => !drop.includes(k))), required: received.required.filter((k) => !drop.includes(k)) };
      this.entries.set(kind.name, {
        kind,
        parse: objectParser(received, drop),
        validate: ajv.compile(jsonSchemaOf(received)),
        serialize: serializerOf(received),
        drop,
        serializePublished: serializerOf(published),
      });
    }
  }

  public kinds(): string[] {
    return [...this.entries.keys()];
  }

  public check(kindName: string, payload: Uint8Array): CheckResult {
    const entry = this.entries.get(kindName);
    if (!entry) return { reason: 'unknown-kind', detail: `"${kindName.slice(0, 64)}" is not a kind of the contract for this customer` };
    if (payload.length > entry.kind.maxBytes) return { reason: 'oversize', detail: `${payload.length} bytes, the limit of ${kindName} is ${entry.kind.maxBytes}` };
    // Valid UTF-8 makes bytes and text one-to-one: whatever holds of the text below holds of the bytes.
    if (!isUtf8(payload)) return { reason: 'not-utf8', detail: 'payload is not UTF-8' };
    const text = (Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)).toString('utf8');
    if (this.canonicalParser) {
      const out: ParseOut = { v: undefined };
      if (entry.parse(text, 0, out) === text.length) {
        if (entry.drop.length === 0) return { value: out.v as ContractValue, canonical: Buffer.from(payload) };
        return { value: this.project(entry, out.v as ContractValue), canonical: Buffer.from(out.projected!, 'utf8') };
      }
    }
    return this.reference(entry, text, payload);
  }

  /** JSON.parse, the JSON Schema, then the comparison with the serialization: the precise reason for a refusal. */
  private reference(entry: Entry, text: string, payload: Uint8Array): CheckResult {
    if (text.charCodeAt(0) === 0xfeff) return { reason: 'not-canonical', detail: 'payload starts with a byte order mark' };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { reason: 'not-json', detail: 'payload is not JSON' };
    }
    if (!entry.validate(value)) {
      const e = entry.validate.errors![0];
      // The path and the rule, never the offending value or an unknown key: either may be exactly what
      // must not cross. (Paths name only keys the contract itself defines.)
      return { reason: 'schema', detail: `${e.instancePath || '/'} ${e.keyword}` };
    }
    // The value is valid; the text must be its one serialization. A duplicate key, an escape, a number's
    // spelling, whitespace, key order or a byte order mark would each differ here.
    if (entry.serialize(value) !== text) return { reason: 'not-canonical', detail: nonCanonicalDetail(text) };
    return this.accept(entry, value as ContractValue, payload);
  }

  private accept(entry: Entry, value: ContractValue, payload: Uint8Array): Accepted {
    // The payload is, byte for byte, the canonical serialization of the value: a copy of it is that serialization.
    if (entry.drop.length === 0) return { value, canonical: Buffer.from(payload) };
    const projected = this.project(entry, value);
    return { value: projected, canonical: Buffer.from(entry.serializePublished(projected), 'utf8') };
  }

  private project(entry: Entry, value: ContractValue): ContractValue {
    const projected: Record<string, unknown> = {};
    for (const k of Object.keys(value)) if (!entry.drop.includes(k)) projected[k] = value[k];
    return projected;
  }

  /**
   * An accepted value of a gateway-signed kind with its signature field added: `signature` is the 64 raw
   * bytes of a signature over `accepted.canonical` (which is `signedBody` of the result), carried as base64url.
   */
  public withSignature(kindName: string, accepted: Accepted, signature: Uint8Array): Accepted {
    const kind = this.entries.get(kindName)?.kind;
    if (!kind?.gatewaySigned) throw new Error(`${kindName} is not a gateway-signed kind of this validator`);
    if (signature.length !== 64) throw new Error(`a ${kindName} signature is 64 raw bytes (Ed25519, or ECDSA P-256 r||s), this one is ${signature.length}`);
    const value = { ...accepted.value, [kind.gatewaySigned.field]: Buffer.from(signature).toString('base64url') };
    return { value, canonical: Buffer.from(canonicalize(value)!, 'utf8') };
  }
}

/** The bytes a gateway signature covers: the canonical value without the signed field. */
export function signedBody(kind: MessageKind, value: ContractValue): Buffer {
  if (!kind.gatewaySigned) throw new Error(`${kind.name} is not a gateway-signed kind`);
  const { [kind.gatewaySigned.field]: _signature, ...body } = value;
  return Buffer.from(canonicalize(body)!, 'utf8');
}

/** How a sender encodes a value for the gateway: its RFC 8785 serialization, the only encoding accepted. */
export function canonicalBytes(value: unknown): Buffer {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('the value has no JSON serialization');
  return Buffer.from(text, 'utf8');
}

/**
 * Why a valid JSON text is not its canonical serialization, as a fixed sentence (the text's content is never
 * echoed). Runs only on rejection; a duplicate key is named first, being the one that hides a second value.
 */
function nonCanonicalDetail(text: string): string {
  const problems = new Set<string>();
  const objects: { keys: Set<string>; last?: string; expectKey: boolean }[] = [];
  const inObject: boolean[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      problems.add('whitespace outside strings');
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const raw = text.slice(i, j + 1);
      const s = JSON.parse(raw) as string;
      if (JSON.stringify(s) !== raw) problems.add('a string is not in its one escaping (RFC 8785 3.2.2.2)');
      const o = inObject[inObject.length - 1] ? objects[objects.length - 1] : undefined;
      if (o?.expectKey) {
        if (o.keys.has(s)) return 'an object has a duplicate key';
        if (o.last !== undefined && s < o.last) problems.add('object keys are not sorted (RFC 8785 3.2.3)');
        o.keys.add(s);
        o.last = s;
        o.expectKey = false;
      }
      i = j + 1;
    } else if (c === '{' || c === '[') {
      inObject.push(c === '{');
      if (c === '{') objects.push({ keys: new Set(), expectKey: true });
      i++;
    } else if (c === '}' || c === ']') {
      if (inObject.pop()) objects.pop();
      i++;
    } else if (c === ',') {
      if (inObject[inObject.length - 1]) objects[objects.length - 1].expectKey = true;
      i++;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const raw = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i))![0];
      if (JSON.stringify(Number(raw)) !== raw) problems.add('a number is not in its one spelling (RFC 8785 3.2.2.3)');
      i += raw.length;
    } else {
      i++; // ':', true, false, null
    }
  }
  return problems.size > 0 ? [...problems].sort().join('; ') : 'payload is not the RFC 8785 serialization of its value';
}
