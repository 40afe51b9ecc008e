import { BOUNDARY_CONTRACT, Direction, Field, kindsFor, MessageKind } from '../../lib/boundary-contract';
import { countFloats, countPatternMatches, countValues, leakageBound, log2, patternAlphabet } from '../../lib/leakage';
import { TokenBuckets } from '../../customer-plane/boundary-gateway/rate-limit';

/** Every string over `alphabet` up to `maxLength` that the pattern (as Ajv runs it: `u` flag) and maxLength admit. */
function bruteForce(pattern: string, alphabet: string, maxLength: number): bigint {
  const re = new RegExp(pattern, 'u');
  let count = 0n;
  let layer = [''];
  for (let len = 0; len <= maxLength; len++) {
    for (const s of layer) if (re.test(s)) count++;
    if (len < maxLength) layer = layer.flatMap((s) => [...alphabet].map((c) => s + c));
  }
  return count;
}

describe('counting the strings a pattern admits', () => {
  test.each([
    ['^[a-c](?:[a-c0]|-(?=[a-c0])){0,4}$', 'abc0-x', 5],
    ['^[a-b](?:[ab1]|-(?=[ab1])){2,5}$', 'ab1-', 6],
    ['^(?:ab|a|b)+$', 'abc', 6],
    ['^a*b?$', 'ab', 6],
    ['^\\d{1,2}\\.\\d{1,2}$', '0123456789.a', 5],
    ['^[0-2][0-2A]{2}$', '012A3', 4],
    ['^(?:x|y(?=z)|z)*$', 'xyz', 6],
    ['^(?:a|a)(?:b|b)$', 'ab', 3],
    ['^[-a]-?[a-]$', '-a', 4],
  ])('%s: as many matches as the regular-expression engine finds over "%s" up to length %d', (pattern, alphabet, maxLength) => {
    expect(countPatternMatches(pattern, maxLength)).toBe(bruteForce(pattern, alphabet, maxLength));
  });

  test('the contract\'s patterns: ULID 128 bits, SHA-256 hex 256 bits, versions, agent names by their recurrence', () => {
    expect(countPatternMatches('^[0-7][0-9A-HJKMNP-TV-Z]{25}$', 26)).toBe(2n ** 128n);
    expect(countPatternMatches('^[0-9a-f]{64}$', 64)).toBe(16n ** 64n);
    expect(countPatternMatches('^\\d{1,4}\\.\\d{1,4}\\.\\d{1,4}$', 14)).toBe(11110n ** 3n);
    expect(countPatternMatches('^[A-Za-z0-9_-]{85}[AQgw]$', 86)).toBe(2n ** 512n);
    // Agent names: a letter, then letters, digits and single inner hyphens, 3 to 28 long. After the first
    // letter, a = tails ending in a letter or digit, h = tails ending in a hyphen.
    let a = 1n;
    let h = 0n;
    let total = 0n;
    for (let len = 1; len <= 28; len++) {
      if (len >= 3) total += 26n * a;
      [a, h] = [36n * (a + h), a];
    }
    const agents = countPatternMatches('^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$', 28);
    expect(agents).toBe(total);
    expect(Math.round(log2(agents) * 10) / 10).toBe(145.3);
    // maxLength below the pattern's own bound cuts the count; brute force agrees on the real pattern at length 4.
    expect(countPatternMatches('^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$', 4)).toBe(bruteForce('^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$', 'abcdefghijklmnopqrstuvwxyz0123456789-', 4));
  });

  test('patterns whose count would not be finite or exact are refused', () => {
    for (const p of ['[a-z]+', '^[a-z]+', '^.{3}$', '^[^a]{3}$', '^(a)\\1$', '^(?!a)b$', '^(?<=a)b$', '^a{2,1}$', '^\\s$', '^a+?$']) {
      expect(() => countPatternMatches(p, 5)).toThrow(/pattern .*(anchored|not supported)/);
    }
    expect([...patternAlphabet('^[a-c]x\\.\\d?$')].sort().join('')).toBe('.0123456789abcx');
  });
});

describe('counting values', () => {
  test('float64 values in a range, -0 and 0 being one value', () => {
    expect(countFloats(0, 0)).toBe(1n);
    expect(countFloats(-0, 0)).toBe(1n);
    expect(countFloats(1, 1)).toBe(1n);
    expect(countFloats(1, 2)).toBe(2n ** 52n + 1n); // every mantissa of the binade [1, 2), then 2
    expect(countFloats(0, 1)).toBe(0x3ff0000000000000n + 1n);
    expect(countFloats(-1, 1)).toBe(2n * 0x3ff0000000000000n + 1n);
    expect(countFloats(0, Number.MIN_VALUE)).toBe(2n);
    expect(log2(countFloats(0, 1e12))).toBeLessThan(64);
    expect(() => countFloats(1, 0)).toThrow('is not a finite range');
    expect(() => countFloats(0, Infinity)).toThrow('is not a finite range');
  });

  test('enumerations, integer ranges, lists, closed objects with optional fields', () => {
    expect(countValues({ type: 'enum', values: ['a', 'b', 'c', 'd'] })).toBe(4n);
    expect(countValues({ type: 'integer', minimum: 0, maximum: 7 })).toBe(8n);
    expect(countValues({ type: 'integer', minimum: -3, maximum: 3 })).toBe(7n);
    // Lists of 0 to 3 items of 2 values: 1 + 2 + 4 + 8.
    expect(countValues({ type: 'array', maxItems: 3, items: { type: 'enum', values: ['x', 'y'] } })).toBe(15n);
    // A required field of 4 values and an optional one of 8 (absent is a 9th): 4 x 9.
    const o: Field = { type: 'object', fields: { a: { type: 'enum', values: ['1', '2', '3', '4'] }, b: { type: 'integer', minimum: 0, maximum: 7 } }, required: ['a'] };
    expect(countValues(o)).toBe(36n);
    expect(countValues({ type: 'id', pattern: '^[ab]{1,2}$', maxLength: 2 })).toBe(6n);
    expect(countValues({ type: 'id', pattern: '^[ab]{1,2}$', maxLength: 1 })).toBe(2n);
  });

  test('log2 of counts far beyond a double', () => {
    expect(log2(1n)).toBe(0);
    expect(log2(2n ** 5000n)).toBe(5000);
    expect(log2(3n * 2n ** 4000n)).toBeCloseTo(4000 + Math.log2(3), 9);
    expect(() => log2(0n)).toThrow();
  });
});

describe('the leakage bound', () => {
  const kindOf = (over: Partial<MessageKind>): MessageKind => ({
    name: 'k', direction: Direction.CUSTOMER_TO_VENDOR, description: '', optOut: false, maxBytes: 1024, rateLimit: { perSecond: 2, burst: 10 },
    schema: { type: 'object', fields: {}, required: [] }, ...over,
  });
  // 16 x 8 x (1 + 4) values: 4 + 3 + log2(5) bits.
  const small = kindOf({
    name: 'small',
    schema: {
      type: 'object',
      fields: { a: { type: 'enum', values: Array.from({ length: 16 }, (_, i) => `v${i}`) }, b: { type: 'integer', minimum: 0, maximum: 7 }, c: { type: 'enum', values: ['w', 'x', 'y', 'z'] }, sig: { type: 'id', pattern: '^[A-Z]{86}$', maxLength: 86 } },
      required: ['a', 'b', 'sig'],
    },
    gatewaySigned: { field: 'sig' },
    revealsShape: ['b'],
  });
  const shared = kindOf({ name: 'shared', optOut: true, rateLimit: { perSecond: 0.5, burst: 1 }, schema: { type: 'object', fields: { n: { type: 'integer', minimum: 1, maximum: 1024 } }, required: ['n'] } });
  const inbound = kindOf({ name: 'in', direction: Direction.VENDOR_TO_CUSTOMER, rateLimit: { perSecond: 1, burst: 3 }, schema: { type: 'object', fields: { x: { type: 'enum', values: ['a', 'b'] } }, required: ['x'] } });

  test('per kind: bits per message, per second and per burst; gateway-signed fields count nothing', () => {
    const b = leakageBound([small, shared, inbound]);
    const s = b.kinds.find((k) => k.kind === 'small')!;
    const bits = 4 + 3 + Math.log2(5);
    expect(s).toEqual({
      kind: 'small', direction: Direction.CUSTOMER_TO_VENDOR, bitsPerMessage: 9.4, boundBy: 'schema', perSecond: 2, burst: 10,
      bitsPerSecond: Math.ceil(bits * 2 * 10) / 10, burstBits: Math.ceil(bits * 10 * 10) / 10,
      fields: [{ field: 'a', bits: 4 }, { field: 'b', bits: 3 }, { field: 'c', bits: 2.4 }, { field: 'sig', bits: 0, note: 'gateway-signed' }],
    });
    expect(b.kinds.find((k) => k.kind === 'shared')).toMatchObject({ bitsPerMessage: 10, bitsPerSecond: 5, burstBits: 10 });
    expect(b.outboundBitsPerSecond).toBe(Math.ceil((bits * 2 + 10 * 0.5) * 10) / 10);
    expect(b.outboundBurstBits).toBe(Math.ceil((bits * 10 + 10) * 10) / 10);
    expect(b.inboundBitsPerSecond).toBe(1);
    expect(b.inboundBurstBits).toBe(3);
  });

  test('with shareLearning off: opt-out kinds are gone and shape-revealing fields count nothing', () => {
    const b = leakageBound([small, shared, inbound], { shareLearning: false });
    expect(b.kinds.map((k) => k.kind)).toEqual(['small', 'in']);
    const s = b.kinds[0];
    expect(s.fields.find((f) => f.field === 'b')).toEqual({ field: 'b', bits: 0, note: 'removed (shareLearning off)' });
    expect(s.bitsPerMessage).toBe(Math.ceil((4 + Math.log2(5)) * 10) / 10);
    expect(b.outboundBitsPerSecond).toBe(Math.ceil((4 + Math.log2(5)) * 2 * 10) / 10);
  });

  test('maxBytes caps a schema that admits more than the bytes can hold', () => {
    const wide = kindOf({ maxBytes: 10, schema: { type: 'object', fields: { l: { type: 'array', maxItems: 100, items: { type: 'integer', minimum: 0, maximum: 255 } } }, required: ['l'] } });
    const k = leakageBound([wide]).kinds[0];
    expect(k.boundBy).toBe('maxBytes');
    expect(k.bitsPerMessage).toBe(Math.ceil((8 * 11 - Math.log2(255)) * 10) / 10);
  });

  test('the contract\'s bound, as the documentation states it', () => {
    const on = leakageBound(kindsFor());
    const off = leakageBound(kindsFor(), { shareLearning: false });
    const byKind = Object.fromEntries(on.kinds.map((k) => [k.kind, [k.bitsPerMessage, k.bitsPerSecond]]));
    expect(byKind).toEqual({ workflow: [363.9, 1819.3], metrics: [44471, 741.2], fingerprint: [4947.5, 494.8], usage: [388.6, 38.9], control: [211.3, 211.3], learning: [5028.2, 502.9] });
    expect([on.outboundBitsPerSecond, on.inboundBitsPerSecond, off.outboundBitsPerSecond, off.inboundBitsPerSecond]).toEqual([3094.1, 714.1, 1822.9, 714.1]);
    // The pool's learnings still arrive with shareLearning off: the opt-out is one-way.
    expect(off.kinds.find((k) => k.kind === 'learning')).toMatchObject({ direction: Direction.VENDOR_TO_CUSTOMER, bitsPerMessage: 5028.2 });
    expect(off.kinds.find((k) => k.kind === 'workflow')!.bitsPerMessage).toBe(208.6);
    // The identifiers the runtime generates carry what they must and no more.
    const wf = on.kinds.find((k) => k.kind === 'workflow')!.fields;
    expect(wf.find((f) => f.field === 'workflowId')!.bits).toBe(128);
    expect(wf.find((f) => f.field === 'stepId')!.bits).toBe(10);
    expect(on.kinds.find((k) => k.kind === 'metrics')!.fields.find((f) => f.field === 'signature')).toEqual({ field: 'signature', bits: 0, note: 'gateway-signed' });
    expect(BOUNDARY_CONTRACT.kinds.every((k) => on.kinds.find((x) => x.kind === k.name)!.boundBy === 'schema')).toBe(true);
  });
});

describe('the rate limits the bound assumes, as the gateway enforces them', () => {
  const kinds = (perSecond: number, burst: number): MessageKind[] => [{ ...BOUNDARY_CONTRACT.kinds[0], rateLimit: { perSecond, burst } }];

  test('a token bucket lets a burst through, then perSecond: never more than burst + perSecond x T', () => {
    let now = 0;
    const buckets = new TokenBuckets(kinds(0.5, 3), 1, () => now);
    const take = () => buckets.take('out', 'workflow');
    expect([take(), take(), take(), take()]).toEqual([true, true, true, false]);
    now = 1999;
    expect(take()).toBe(false);
    now = 2000;
    expect(take()).toBe(true);
    now = 1e6; // a long pause refills up to the burst, not beyond
    expect(Array.from({ length: 5 }, take).filter(Boolean)).toHaveLength(3);

    // Dense arrivals over hours: never more than the bound, at any time.
    let t = 0;
    const slow = new TokenBuckets(kinds(1 / 60, 3), 1, () => t);
    let passed = 0;
    let over = 0;
    for (let i = 0; i < 20000; i++) {
      t += Math.floor(((i * 7919) % 100) / 3);
      if (slow.take('out', 'workflow')) passed++;
      if (passed > 3 + (t / 1000) / 60) over++;
    }
    expect(over).toBe(0);
    expect(passed).toBe(3 + Math.floor(t / 60000));
  });

  test('one bucket per kind and direction, from the contract; no bucket, no crossing', () => {
    let now = 0;
    const buckets = new TokenBuckets(BOUNDARY_CONTRACT.kinds, 1, () => now);
    const take = (d: 'out' | 'in', k: string, n: number) => Array.from({ length: n }, () => buckets.take(d, k));
    expect(take('out', 'workflow', 51)).toEqual([...Array(50).fill(true), false]);
    expect(buckets.take('out', 'usage')).toBe(true); // another kind, another bucket
    expect(take('in', 'control', 6)).toEqual([true, true, true, true, true, false]);
    expect(take('in', 'learning', 21)).toEqual([...Array(20).fill(true), false]); // inbound kinds each have their own bucket
    expect(buckets.take('in', 'workflow')).toBe(false); // no inbound workflow kind
    now = 1000;
    expect(take('out', 'workflow', 6)).toEqual([true, true, true, true, true, false]);
  });
});
