import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { Token } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { PropError } from './errors';

/**
 * What the two planes' configuration schemas share: the builders of a setting's schema node (each with its
 * `fix` annotation, what to write instead, and optionally `expected`, what a valid value is), the turning of
 * ajv's first error into a `PropError` (`Invalid setting '<path>': <problem>. Fix: <fix>`), and the checking of
 * a construct's props against the same schema (`checkPropsWithSchema`: `Invalid prop '<path>': ...`).
 */

/**
 * A schema node with its annotations: `fix`, what to write instead; `expected`, what a valid value is (an
 * enum or pattern error then reads `"x" is not <expected>` rather than `is not one of the allowed values`).
 */
export type SettingSchema = Record<string, unknown> & { fix?: string; expected?: string };

/** The annotations the schemas carry beside JSON Schema's own keywords. */
const ANNOTATIONS = ['fix', 'expected'];

/** The regions aws-cdk-lib knows. */
export const AWS_REGIONS: readonly string[] = RegionInfo.regions.map((r) => r.name).sort();

/** CloudWatch Logs' finite retention periods, in days. */
export const LOG_RETENTION_DAYS: readonly number[] = Object.values(logs.RetentionDays)
  .filter((v): v is number => typeof v === 'number' && v !== logs.RetentionDays.INFINITE)
  .sort((a, b) => a - b);

/** A validator of `schema` (ajv, strict, all errors, in schema order, `fix` and `expected` allowed): every way a value breaks it, empty when valid. */
export function schemaValidator(schema: () => SettingSchema): (value: unknown) => ErrorObject[] {
  let validator: ValidateFunction | undefined;
  return (value) => {
    if (!validator) {
      const ajv = new Ajv({ allErrors: true, verbose: true, strict: true });
      ajv.addVocabulary(ANNOTATIONS);
      validator = ajv.compile(schema());
    }
    return validator(value) ? [] : [...(validator.errors ?? [])];
  };
}

export const bool = (description: string): SettingSchema => ({ type: 'boolean', description, fix: 'write true or false, without quotes' });
export const int = (description: string, minimum: number, maximum: number, fix = `use a whole number from ${minimum} to ${maximum}`): SettingSchema =>
  ({ type: 'integer', minimum, maximum, description, fix });
export const str = (description: string, pattern: string | undefined, fix: string, expected?: string): SettingSchema =>
  ({ type: 'string', ...(pattern ? { pattern } : {}), description, fix, ...(expected ? { expected } : {}) });
/** One of `values`. */
export const choice = (type: 'string' | 'integer', values: readonly (string | number)[], description: string, fix: string, expected?: string): SettingSchema =>
  ({ type, enum: [...values], description, fix, ...(expected ? { expected } : {}) });
export const obj = (description: string, properties: Record<string, SettingSchema>, required: string[], fix: string): SettingSchema =>
  ({ type: 'object', description, properties, required, additionalProperties: false, fix });
export const list = (description: string, items: SettingSchema, minItems: number, maxItems: number | undefined, fix: string): SettingSchema =>
  ({ type: 'array', description, items, minItems, ...(maxItems ? { maxItems } : {}), uniqueItems: true, fix });

/** An AZ name, e.g. `eu-west-1a`. */
export const AZ_PATTERN = '^[a-z]{2,4}(-[a-z]+)+-\\d[a-z]$';
/** A managed prefix list ID. */
export const PREFIX_LIST_PATTERN = '^pl-[0-9a-f]{8,17}$';
/** An S3 bucket name (not an ARN or an `s3://` URL). */
export const BUCKET_NAME_PATTERN = '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$';

/** `/database/port` as `database.port`, `/availabilityZones/0` as `availabilityZones[0]`. */
function settingPath(pointer: string, child?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  return parts.reduce((a, p) => (/^\d+$/.test(p) ? `${a}[${p}]` : a ? `${a}.${p}` : p), '');
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** How the props of a construct differ from the settings of its configuration file, for `settingSchemaError`. */
export interface PropNames {
  /** Top-level setting -> prop, e.g. `logRetentionDays` -> `logRetention`. */
  readonly rename?: Readonly<Record<string, string>>;
  /**
   * Setting (its path in the file, e.g. `logRetentionDays`) -> the fix to give a construct user instead of the
   * node's own, where the API takes another type (`logs.RetentionDays`, `ec2.InstanceType`) or other syntax.
   */
  readonly fixes?: Readonly<Record<string, string>>;
}

/**
 * The first schema error as a `PropError`: `Invalid <kind> '<path>': <problem>. Fix: <fix>` (the fix is the
 * setting's `fix`). `plane` names whose settings an unknown key is not one of; for props (`kind` `prop`),
 * `names` maps a setting to the prop it checks (see `PropNames`).
 */
export function settingSchemaError(errors: ErrorObject[], plane: string, kind: 'setting' | 'prop' = 'setting', names: PropNames = {}): PropError {
  const e = errors[0];
  const schema = (e.parentSchema ?? {}) as SettingSchema;
  const rename = names.rename ?? {};
  const named = (path: string) => path.replace(/^[^.[]+/, (top) => rename[top] ?? top);
  const fixOf = (path: string, node: SettingSchema) => names.fixes?.[path] ?? node.fix ?? 'see the configuration reference in the README';
  const error = (path: string, problem: string, f: string) => new PropError(named(path), problem, f, kind);
  const at = settingPath(e.instancePath);
  const fix = fixOf(at, schema);
  const value = JSON.stringify(e.data);
  const isNot = (generic: string) => (schema.expected ? `is not ${schema.expected}` : generic);
  switch (e.keyword) {
    case 'required': {
      // Every key missing from this object, in one message.
      const missing = errors.filter((x) => x.keyword === 'required' && x.instancePath === e.instancePath).map((x) => x.params.missingProperty as string);
      const one = missing.length === 1 ? (schema.properties as Record<string, SettingSchema>)[missing[0]]?.description as string | undefined : undefined;
      return error(missing.map((m) => settingPath(e.instancePath, m)).join(', '), 'missing', one ? `give ${missing[0]}: ${one.replace(/\.$/, '')}` : fix);
    }
    case 'additionalProperties': {
      const allowed = Object.keys(schema.properties as object).filter((k) => k !== '$schema').map((k) => (at ? k : rename[k] ?? k));
      return error(settingPath(e.instancePath, e.params.additionalProperty), `is not a ${kind} of the ${plane}`, `remove it or use one of ${allowed.join(', ')}`);
    }
    case 'type': {
      const expected = e.params.type === 'integer' ? 'a whole number' : e.params.type === 'array' ? 'a list' : `a${/^[aeiou]/.test(e.params.type) ? 'n' : ''} ${e.params.type}`;
      const unquote = typeof e.data === 'string' && ['boolean', 'integer', 'number'].includes(e.params.type) && /^(true|false|-?\d+(\.\d+)?)$/.test(e.data);
      const actual = typeOf(e.data);
      return error(at || (kind === 'setting' ? 'config' : 'props'), `is not ${expected}: ${value} is a${actual === 'object' ? 'n' : ''} ${actual}`, unquote ? `write ${e.data}, without quotes` : fix);
    }
    case 'enum': return error(at, `${value} ${isNot('is not one of the allowed values')}`, fix);
    case 'minimum': case 'maximum': return error(at, `${value} is out of range`, fix);
    case 'pattern': return error(at, `${value} ${isNot('is not in the expected form')}`, fix);
    case 'minItems': return error(at, (e.data as unknown[]).length === 0 ? 'is empty' : `has ${(e.data as unknown[]).length} items, fewer than ${e.params.limit}`, fix);
    case 'maxItems': return error(at, `has ${(e.data as unknown[]).length} items, more than ${e.params.limit}`, fix);
    case 'uniqueItems': {
      // ajv names the two positions: the later one is the item listed again.
      const [first, again] = [e.params.i as number, e.params.j as number].sort((a, b) => a - b);
      return error(`${at}[${again}]`, `${JSON.stringify((e.data as unknown[])[again])} is listed twice (also ${named(at)}[${first}])`, fix);
    }
    case 'minProperties': return error(at, `has no entries`, fix);
    default: return error(at || (kind === 'setting' ? 'config' : 'props'), `${value} ${e.message ?? 'is not valid'}`, fix);
  }
}

/**
 * A copy of `value` that a JSON Schema can judge at synth: unresolved tokens and undefined values left out
 * (a list holding a token as a whole: its length is not known either). `tokens` receives the JSON pointer of
 * each token left out, so that a required value given as a token is not taken for a missing one.
 */
export function resolvedOnly(value: unknown, tokens: Set<string> = new Set(), pointer = ''): unknown {
  if (Token.isUnresolved(value) || (Array.isArray(value) && value.some((v) => Token.isUnresolved(v)))) {
    tokens.add(pointer);
    return undefined;
  }
  if (Array.isArray(value)) return value.map((v, i) => resolvedOnly(v, tokens, `${pointer}/${i}`));
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value)
    .map(([k, v]) => [k, resolvedOnly(v, tokens, `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`)])
    .filter(([, v]) => v !== undefined));
}

/**
 * Checks a construct's props against its plane's configuration schema, the one the configuration file is
 * validated with: `values` are the props as the settings they are (each plane maps the props whose type
 * differs, and leaves out what the file cannot hold: constructs, the catalog, the contract). Tokens are left
 * out (`resolvedOnly`). Throws the first problem as `Invalid prop '<path>': <problem>. Fix: <fix>`, from the
 * same schema node (and so with the same problem and fix) as a configuration file's user gets.
 */
export function checkPropsWithSchema(validate: (value: unknown) => ErrorObject[], values: Record<string, unknown>, plane: string, names: PropNames = {}): void {
  const tokens = new Set<string>();
  const plain = resolvedOnly(values, tokens);
  const errors = validate(plain).filter((e) => !(e.keyword === 'required' && tokens.has(`${e.instancePath}/${e.params.missingProperty}`)));
  if (errors.length > 0) throw settingSchemaError(errors, plane, 'prop', names);
}
