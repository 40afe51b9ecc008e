import { BOUNDARY_CONTRACT, contractHash, Direction, Field, kindsFor, MessageKind, METRIC_ATTRIBUTES, METRIC_NAMES, RateLimit } from './boundary-contract';
import { KindLeakage, leakageBound } from './leakage';
import { NEVER_CROSS } from './nats-config';

function describeField(f: Field): string {
  switch (f.type) {
    case 'id': return `identifier \`${f.pattern}\` (at most ${f.maxLength})`;
    case 'enum': return `one of ${f.values.map((v) => `\`${v}\``).join(', ')}`;
    case 'integer': return `integer ${f.minimum} to ${f.maximum}`;
    case 'number': return `number ${f.minimum} to ${f.maximum}`;
    case 'array': return `list of at most ${f.maxItems}: ${describeField(f.items)}`;
    case 'object': return `object {${Object.entries(f.fields).map(([k, v]) => ` ${k}${f.required.includes(k) ? '' : '?'}: ${describeField(v)}`).join(';')} }`;
  }
}

/** `5/s`, `1 per 10 s`. */
function rate(r: RateLimit): string {
  const every = 1 / r.perSecond;
  const perSecond = r.perSecond >= 1 || Math.abs(every - Math.round(every)) > 1e-9 ? `${+r.perSecond.toPrecision(3)}/s` : `1 per ${Math.round(every)} s`;
  return `${perSecond}, burst ${r.burst}`;
}

/** 3094.1 → `3,094.1`, 128 → `128` (one decimal at most; no locale dependence). */
const n = (x: number) => {
  const [whole, fraction] = (Math.round(x * 10) / 10).toFixed(1).split('.');
  return `${whole.replace(/\B(?=(\d{3})+$)/g, ',')}${fraction === '0' ? '' : `.${fraction}`}`;
};
const code = (xs: readonly string[]) => xs.map((x) => `\`${x}\``).join(', ');

/** The "what crosses the plane boundary" section, generated from the contract: the reviewer's source of truth. */
export function whatCrossesMarkdown(): string {
  const shared = leakageBound(kindsFor({ shareLearning: true }), { shareLearning: true });
  const optedOut = leakageBound(kindsFor({ shareLearning: true }), { shareLearning: false });
  const leak = new Map<string, KindLeakage>(shared.kinds.map((k) => [k.kind, k]));
  const dir = (k: MessageKind) => (k.direction === Direction.CUSTOMER_TO_VENDOR ? 'out' : 'in');
  const rows = BOUNDARY_CONTRACT.kinds.map((k) => {
    const l = leak.get(k.name)!;
    return `| \`${k.name}\` | ${k.direction === Direction.CUSTOMER_TO_VENDOR ? 'customer → vendor' : 'vendor → customer'} | \`byoc.<customer>.${dir(k)}.${k.name}\` | ${k.optOut ? 'yes (`shareLearning: false`)' : 'no'} | ${k.maxBytes} | ${rate(k.rateLimit)} | ${n(l.bitsPerMessage)} | ${n(l.bitsPerSecond)} | ${k.description} |`;
  });
  const fields = BOUNDARY_CONTRACT.kinds.map((k) => {
    const l = leak.get(k.name)!;
    return [
      `**\`${k.name}\`**: closed object (no other field is accepted)`,
      ...Object.entries(k.schema.fields).map(([name, f]) => {
        const bits = l.fields.find((x) => x.field === name)!.bits;
        const notes = [
          k.schema.required.includes(name) ? '' : ' (optional)',
          `: ${describeField(f)}`,
          k.gatewaySigned?.field === name ? `; added by the gateway (base64url of a 64-byte signature over the canonical message without it), never by the sender: 0 bits from the sender` : `; ${n(bits)} bit${bits === 1 ? '' : 's'}`,
          k.revealsShape?.includes(name) ? '; removed with `shareLearning: false`' : '',
        ];
        return `- \`${name}\`${notes.join('')}`;
      }),
    ].join('\n');
  });
  const workflow = BOUNDARY_CONTRACT.kinds.filter((k) => k.revealsShape?.length);
  const optOutKinds = BOUNDARY_CONTRACT.kinds.filter((k) => k.optOut);
  const stillInbound = kindsFor({ shareLearning: false }).filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER);
  return [
    `Boundary contract v${BOUNDARY_CONTRACT.version}, hash \`${contractHash()}\` (recorded in every signed release).`,
    'Nothing else crosses: no code, prompts, agent outputs, workspace files or secrets.',
    '',
    '| kind | direction | subject | opt-out | max bytes | rate limit | bits/message | bits/s | what it carries |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '**Canonical crossing.** The gateway accepts a message only if its bytes are exactly the RFC 8785 (JSON',
    'Canonicalization Scheme) serialization of a value valid against the kind\'s schema: valid UTF-8 without a',
    'byte order mark, no whitespace, object keys sorted and each present once, strings in their one escaping,',
    'numbers in their one spelling. What it publishes, in both directions, is that serialization of the',
    'validated value (with `shareLearning: false`, of the value without the removed fields), never other bytes',
    'it received: any other encoding of a value is refused (`not-canonical`) and never forwarded; only its',
    'kind, size, SHA-256 and reason are kept (audit log, bounded rejection store), never its body. Senders',
    'encode with `canonicalize` (`canonicalBytes` in `lib/contract-validator.ts`).',
    '',
    '**Leakage bound** (`lib/leakage.ts`). Bits per message are log2 of the number of distinct valid values the',
    'sender controls, counted exactly from the schema: strings a pattern admits up to its length, enumerations,',
    'integer ranges, float64 values in a range, lists up to their length; an optional field counts its absence',
    'as one more value; a gateway-signed field carries nothing from the sender; 8 bits a byte of max bytes',
    'caps the total. The gateway enforces each rate limit as a token bucket per kind and direction, so at most:',
    '',
    '| | `shareLearning` on | `shareLearning: false` |',
    '|---|---|---|',
    `| customer → vendor, sustained | ${n(shared.outboundBitsPerSecond)} bits/s | ${n(optedOut.outboundBitsPerSecond)} bits/s |`,
    `| customer → vendor, a full burst at once | ${n(shared.outboundBurstBits)} bits | ${n(optedOut.outboundBurstBits)} bits |`,
    `| vendor → customer, sustained | ${n(shared.inboundBitsPerSecond)} bits/s | ${n(optedOut.inboundBitsPerSecond)} bits/s |`,
    `| vendor → customer, a full burst at once | ${n(shared.inboundBurstBits)} bits | ${n(optedOut.inboundBurstBits)} bits |`,
    '',
    'The bound counts what messages contain. When messages are sent, and how many, is a further channel that',
    'only the rate limits bound.',
    '',
    `**With \`shareLearning: false\`.** ${code(optOutKinds.map((k) => k.name))} ${optOutKinds.length === 1 ? 'is' : 'are'} absent from every rule and refused by the gateway. ${workflow.map((k) => {
      const kept = Object.keys(k.schema.fields).filter((f) => !k.revealsShape!.includes(f));
      return `\`${k.name}\` messages cross without ${code(k.revealsShape!)} (the gateway removes them before it serializes the message), so each still carries ${code(kept)}`;
    }).join('; ')}. What the vendor can still learn: how many workflow messages each workflow produces and when, which gives its number of steps and their timing, with their statuses and status codes; and, from \`usage\` and \`metrics\`, which agents ran and how much, per period and per minute. On a quiet plane, lining those per-agent counts up with workflow timings can suggest which agents a workflow used; the order of agents within a workflow is not sent. The opt-out is one-way: ${stillInbound.length === 1 ? 'the vendor → customer kind' : 'the vendor → customer kinds'} ${code(stillInbound.map((k) => k.name))} still ${stillInbound.length === 1 ? 'arrives' : 'arrive'}, so an opted-out customer receives what the others share and sends none of its own.`,
    '',
    ...fields.flatMap((f) => [f, '']),
    `Metrics: only ${code(METRIC_NAMES)}, with only the attributes ${code(METRIC_ATTRIBUTES)}, cross: the usage-meter aggregates the agents' step records into one window a minute and the gateway signs each window with the customer's audit key. The collector's traces and metrics stay in the customer's account (X-Ray and CloudWatch, or the customer's own OTLP endpoint); it has no logs pipeline.`,
    '',
    `Never crossing in either direction, whatever else is allowed (the leaf remote's deny rules): ${code(NEVER_CROSS)}.`,
  ].join('\n');
}

export const DOCS_START = '<!-- what-crosses:start (generated by npm run docs from lib/boundary-contract.ts; do not edit) -->';
export const DOCS_END = '<!-- what-crosses:end -->';

/** The README with its generated section replaced by the current one. */
export function withWhatCrosses(readme: string): string {
  const start = readme.indexOf(DOCS_START);
  const end = readme.indexOf(DOCS_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${DOCS_START} ... ${DOCS_END} section`);
  return `${readme.slice(0, start + DOCS_START.length)}\n${whatCrossesMarkdown()}\n${readme.slice(end)}`;
}
