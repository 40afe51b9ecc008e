import * as fs from 'fs';
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import canonicalize from 'canonicalize';
import { BoundaryContract, checkContract, contractHash, Direction, Field } from './boundary-contract';
import { PropError } from './errors';
import { CONTRACT_ENV, contractFromEnvironment as contractFromEnv, contractJson } from './contract-env';
import { countValues } from './leakage';

export { CONTRACT_ENV, contractEnvironment, contractJson } from './contract-env';

/**
 * A boundary contract given from outside the kit: a vendor's own (through the constructs' `contract` prop or a
 * `--contract` file), or the one a service reads from its environment. The kit's own contract is checked when
 * its module loads; any other is taken only after this module has proven it enforceable as written:
 * - its shape, with ajv against `CONTRACT_JSON_SCHEMA` (closed objects, bounded sizes, every field of a closed
 *   type: there is no free-text field type);
 * - what a schema cannot say (`checkContract`): unique kind names, fields named by `revealsShape` and
 *   `gatewaySigned` exist, plain field names, ranges with minimum <= maximum;
 * - every identifier pattern is one the leakage bound can count exactly (`lib/leakage.ts`), so the review
 *   report can state the most bits per second the contract lets out of the account.
 * The services that enforce it (the boundary gateway, the agents that send its kinds, the vendor's ingest)
 * receive it as `BYOC_CONTRACT` with its hash in `BYOC_CONTRACT_HASH`, and the stack carries it in its
 * template metadata (`CONTRACT_METADATA`), where signing, `byoc review` and `byoc diff` read it.
 */

/** The template metadata key under which a plane's stack records the contract it was built from. */
export const CONTRACT_METADATA = 'Byoc::BoundaryContract';

/** Bounds of a contract document, generous for any product and small enough to keep every check cheap. */
const MAX_KINDS = 64;
const MAX_FIELDS = 64;
const MAX_ITEMS = 1000;
const MAX_ENUM_VALUES = 1000;
/** The leaf's `max_payload`: no kind may be larger than what the leaf carries. */
const MAX_KIND_BYTES = 1048576;

const ref = (name: string) => ({ $ref: `#/$defs/${name}` });
const closed = (properties: Record<string, unknown>, required: string[]) => ({ type: 'object', properties, required, additionalProperties: false });
const finite = { type: 'number', minimum: -Number.MAX_VALUE, maximum: Number.MAX_VALUE };

/** JSON Schema (2020-12 subset ajv's default draft-07 reads) of a contract document: for editors and for `validateContract`. */
export const CONTRACT_JSON_SCHEMA = {
  $id: 'https://byoc-kit.dev/schemas/boundary-contract.json',
  title: 'BYOC boundary contract',
  description: 'Every kind of message that may cross between a customer plane and the vendor\'s control plane, and nothing else.',
  ...closed({
    $schema: { type: 'string' },
    version: { type: 'integer', minimum: 1, maximum: 1000000, description: 'Raise it with every change of what may cross.' },
    kinds: { type: 'array', minItems: 1, maxItems: MAX_KINDS, items: ref('kind') },
  }, ['version', 'kinds']),
  $defs: {
    kind: closed({
      name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,30}$', description: 'Also the last token of the subject byoc.<customer>.<out|in>.<name>.' },
      direction: { enum: Object.values(Direction) },
      description: { type: 'string', minLength: 1, maxLength: 300 },
      optOut: { type: 'boolean' },
      maxBytes: { type: 'integer', minimum: 2, maximum: MAX_KIND_BYTES },
      rateLimit: closed({ perSecond: { type: 'number', exclusiveMinimum: 0, maximum: 10000 }, burst: { type: 'integer', minimum: 1, maximum: 100000 } }, ['perSecond', 'burst']),
      revealsShape: { type: 'array', items: { type: 'string' }, uniqueItems: true, maxItems: MAX_FIELDS },
      gatewaySigned: closed({ field: { type: 'string' } }, ['field']),
      schema: ref('object'),
    }, ['name', 'direction', 'description', 'optOut', 'maxBytes', 'rateLimit', 'schema']),
    field: {
      type: 'object',
      required: ['type'],
      properties: { type: { enum: ['id', 'enum', 'integer', 'number', 'array', 'object'] } },
      allOf: [
        { if: { properties: { type: { const: 'id' } } }, then: ref('id') },
        { if: { properties: { type: { const: 'enum' } } }, then: ref('enum') },
        { if: { properties: { type: { const: 'integer' } } }, then: ref('integer') },
        { if: { properties: { type: { const: 'number' } } }, then: ref('number') },
        { if: { properties: { type: { const: 'array' } } }, then: ref('array') },
        { if: { properties: { type: { const: 'object' } } }, then: ref('object') },
      ],
    },
    id: closed({ type: { const: 'id' }, pattern: { type: 'string', minLength: 3, maxLength: 512 }, maxLength: { type: 'integer', minimum: 1, maximum: 4096 } }, ['type', 'pattern', 'maxLength']),
    enum: closed({ type: { const: 'enum' }, values: { type: 'array', minItems: 1, maxItems: MAX_ENUM_VALUES, uniqueItems: true, items: { type: 'string', maxLength: 256 } } }, ['type', 'values']),
    integer: closed({ type: { const: 'integer' }, minimum: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }, maximum: { type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } }, ['type', 'minimum', 'maximum']),
    number: closed({ type: { const: 'number' }, minimum: finite, maximum: finite }, ['type', 'minimum', 'maximum']),
    array: closed({ type: { const: 'array' }, items: ref('field'), maxItems: { type: 'integer', minimum: 1, maximum: MAX_ITEMS } }, ['type', 'items', 'maxItems']),
    object: closed({
      type: { const: 'object' },
      fields: { type: 'object', maxProperties: MAX_FIELDS, additionalProperties: ref('field') },
      required: { type: 'array', items: { type: 'string' }, uniqueItems: true },
    }, ['type', 'fields', 'required']),
  },
} as const;

let validator: ValidateFunction | undefined;
function schemaErrors(value: unknown): ErrorObject[] {
  if (!validator) validator = new Ajv({ allErrors: false, strict: true, strictTypes: false }).compile(CONTRACT_JSON_SCHEMA);
  return validator(value) ? [] : [...(validator.errors ?? [])];
}

/** `/kinds/2/schema/fields/x` as `kinds[2].schema.fields.x`. */
function pathOf(pointer: string): string {
  return pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((a, p) => (/^\d+$/.test(p) ? `${a}[${p}]` : a ? `${a}.${p}` : p), '');
}

function problemOf(e: ErrorObject): string {
  switch (e.keyword) {
    case 'additionalProperties': return `has an unknown key "${e.params.additionalProperty as string}"`;
    case 'required': return `misses "${e.params.missingProperty as string}"`;
    case 'enum': return `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const': return `must be ${JSON.stringify(e.params.allowedValue)}`;
    default: return e.message ?? e.keyword;
  }
}

/** Ranges with minimum <= maximum, and what `checkContract` cannot see in a nested field. */
function fieldProblem(at: string, f: Field): [string, string] | undefined {
  switch (f.type) {
    case 'integer':
    case 'number':
      return f.minimum <= f.maximum ? undefined : [at, `minimum ${f.minimum} is above maximum ${f.maximum}`];
    case 'array': return fieldProblem(`${at}.items`, f.items);
    case 'object': {
      for (const [name, sub] of Object.entries(f.fields)) {
        const p = fieldProblem(`${at}.fields.${name}`, sub);
        if (p) return p;
      }
      return undefined;
    }
    default: return undefined;
  }
}

/** Every identifier field of a kind, with its path. */
function idFields(at: string, f: Field): [string, Extract<Field, { type: 'id' }>][] {
  if (f.type === 'id') return [[at, f]];
  if (f.type === 'array') return idFields(`${at}.items`, f.items);
  if (f.type === 'object') return Object.entries(f.fields).flatMap(([name, sub]) => idFields(`${at}.fields.${name}`, sub));
  return [];
}

/**
 * `value` as a boundary contract, or a `PropError` naming the first problem under `prop` (`contract.kinds[1].schema…`)
 * and the fix. The result is a deep copy: later changes to `value` change nothing.
 */
export function validateContract(value: unknown, prop = 'contract', kind: 'prop' | 'setting' = 'prop'): BoundaryContract {
  const fail = (at: string, problem: string, fix: string): never => { throw new PropError(at ? `${prop}.${at}` : prop, problem, fix, kind); };
  let copy: unknown;
  try {
    copy = JSON.parse(canonicalize(value) ?? 'null');
  } catch (e) {
    fail('', `is not JSON data (${(e as Error).message})`, 'give a plain object: version and kinds, numbers, strings, booleans, lists and objects only');
  }
  const errors = schemaErrors(copy);
  if (errors.length > 0) {
    const e = errors[0];
    fail(pathOf(e.instancePath), problemOf(e), 'write it as the boundary contract\'s JSON Schema (config/boundary-contract.schema.json) describes; the kit\'s own contract (BOUNDARY_CONTRACT) is a complete example');
  }
  // An editor's `$schema` pointer is not part of what may cross (nor of the hash).
  const { $schema: _schema, ...contract } = copy as BoundaryContract & { $schema?: string };
  void _schema;
  try {
    checkContract(contract);
  } catch (e) {
    fail('kinds', (e as Error).message, 'correct the kind it names');
  }
  contract.kinds.forEach((k, i) => {
    const range = fieldProblem('schema', k.schema);
    if (range) fail(`kinds[${i}].${range[0]}`, range[1], 'give a minimum at or below the maximum');
    for (const [at, f] of idFields('schema', k.schema)) {
      try {
        new RegExp(f.pattern, 'u');
        countValues(f);
      } catch (e) {
        fail(`kinds[${i}].${at}.pattern`, (e as Error).message,
          'write an anchored pattern (^...$) of literals, classes, groups, alternation and quantifiers, so that the values it admits can be counted and the leakage bound stays exact');
      }
    }
  });
  return contract;
}

/** Reads a contract file (JSON, as `config/boundary-contract.json`), checked by `validateContract`; errors name `option` and the file. */
export function loadContractFile(file: string, option = '--contract'): BoundaryContract {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PropError(option, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of a boundary contract JSON file, such as config/boundary-contract.json', 'setting');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PropError(option, `${file} is not JSON (${(e as Error).message})`, 'write the contract as JSON, as config/boundary-contract.json is written', 'setting');
  }
  return validateContract(value, option, 'setting');
}

/**
 * The contract a service enforces, from its environment (`contractFromEnvironment` of `lib/contract-env.ts`), checked in
 * full by `validateContract`: what the boundary gateway and the vendor's ingest use.
 */
export function contractFromEnvironment(env: NodeJS.ProcessEnv = process.env): BoundaryContract {
  return contractFromEnv(env, (value) => validateContract(value, CONTRACT_ENV.contract, 'setting'));
}

/** What a template records about its contract (`CONTRACT_METADATA`), read back. */
export interface ContractRecord {
  readonly version: number;
  readonly hash: string;
  readonly contract: BoundaryContract;
}

/**
 * The record a stack puts in its template metadata: version, hash and the contract as its canonical JSON text (a
 * string: CloudFormation metadata takes no fractional numbers, and rate limits have them).
 */
export function contractRecord(contract: BoundaryContract): { version: number; hash: string; contract: string } {
  return { version: contract.version, hash: contractHash(contract), contract: contractJson(contract) };
}

/**
 * The contract a synthesized template was built from (its `Metadata` under `CONTRACT_METADATA`), checked: valid, and
 * with the hash it states. Undefined when the template records none.
 */
export function contractOfTemplate(template: { Metadata?: Record<string, unknown> }): ContractRecord | undefined {
  const record = template.Metadata?.[CONTRACT_METADATA] as { version?: unknown; hash?: unknown; contract?: unknown } | undefined;
  if (record === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = typeof record.contract === 'string' ? JSON.parse(record.contract) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) throw new Error(`the template's ${CONTRACT_METADATA}.contract is not the contract's JSON text`);
  const contract = validateContract(parsed, `Metadata.${CONTRACT_METADATA}.contract`, 'setting');
  const hash = contractHash(contract);
  if (record.hash !== hash || record.version !== contract.version) {
    throw new Error(`the template's ${CONTRACT_METADATA} states contract v${String(record.version)} ${String(record.hash).slice(0, 12)}, but the contract it holds is v${contract.version} ${hash.slice(0, 12)}`);
  }
  return { version: contract.version, hash, contract };
}
