import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { PropError } from './errors';

/**
 * What the two planes' configuration schemas share: the builders of a setting's schema node (each with its
 * `fix` annotation, what to write instead) and the turning of ajv's first error into a `PropError`:
 * `Invalid setting '<path>': <problem>. Fix: <fix>`.
 */

/** A schema node with its `fix` annotation. */
export type SettingSchema = Record<string, unknown> & { fix?: string };

/** The regions aws-cdk-lib knows. */
export const AWS_REGIONS: readonly string[] = RegionInfo.regions.map((r) => r.name).sort();

/** CloudWatch Logs' finite retention periods, in days. */
export const LOG_RETENTION_DAYS: readonly number[] = Object.values(logs.RetentionDays)
  .filter((v): v is number => typeof v === 'number' && v !== logs.RetentionDays.INFINITE)
  .sort((a, b) => a - b);

/** A validator of `schema` (ajv, strict, all errors, in schema order, `fix` allowed): every way a value breaks it, empty when valid. */
export function schemaValidator(schema: () => SettingSchema): (value: unknown) => ErrorObject[] {
  let validator: ValidateFunction | undefined;
  return (value) => {
    if (!validator) {
      const ajv = new Ajv({ allErrors: true, verbose: true, strict: true });
      ajv.addVocabulary(['fix']);
      validator = ajv.compile(schema());
    }
    return validator(value) ? [] : [...(validator.errors ?? [])];
  };
}

export const bool = (description: string): SettingSchema => ({ type: 'boolean', description, fix: 'write true or false, without quotes' });
export const int = (description: string, minimum: number, maximum: number, fix = `use a whole number from ${minimum} to ${maximum}`): SettingSchema =>
  ({ type: 'integer', minimum, maximum, description, fix });
export const str = (description: string, pattern: string | undefined, fix: string): SettingSchema =>
  ({ type: 'string', ...(pattern ? { pattern } : {}), description, fix });
export const obj = (description: string, properties: Record<string, SettingSchema>, required: string[], fix: string): SettingSchema =>
  ({ type: 'object', description, properties, required, additionalProperties: false, fix });
export const list = (description: string, items: SettingSchema, minItems: number, maxItems: number | undefined, fix: string): SettingSchema =>
  ({ type: 'array', description, items, minItems, ...(maxItems ? { maxItems } : {}), uniqueItems: true, fix });

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

/**
 * The first schema error as a `PropError`: `Invalid <kind> '<path>': <problem>. Fix: <fix>` (the fix is the
 * setting's `fix`). `plane` names whose settings an unknown key is not one of; `rename` maps top-level names,
 * e.g. `logRetentionDays` to the prop `logRetention`.
 */
export function settingSchemaError(errors: ErrorObject[], plane: string, kind: 'setting' | 'prop' = 'setting', rename: Record<string, string> = {}): PropError {
  const e = errors[0];
  const schema = (e.parentSchema ?? {}) as SettingSchema;
  const fix = schema.fix ?? 'see the configuration reference in the README';
  const named = (path: string) => path.replace(/^[^.[]+/, (top) => rename[top] ?? top);
  const error = (at: string, problem: string, f: string) => new PropError(named(at), problem, f, kind);
  const at = settingPath(e.instancePath);
  const value = JSON.stringify(e.data);
  switch (e.keyword) {
    case 'required': {
      // Every key missing from this object, in one message.
      const missing = errors.filter((x) => x.keyword === 'required' && x.instancePath === e.instancePath).map((x) => x.params.missingProperty as string);
      const one = missing.length === 1 ? (schema.properties as Record<string, SettingSchema>)[missing[0]]?.description as string | undefined : undefined;
      return error(missing.map((m) => settingPath(e.instancePath, m)).join(', '), 'missing', one ? `give ${missing[0]}: ${one.replace(/\.$/, '')}` : fix);
    }
    case 'additionalProperties': {
      const allowed = Object.keys(schema.properties as object).filter((k) => k !== '$schema');
      return error(settingPath(e.instancePath, e.params.additionalProperty), `is not a setting of the ${plane}`, `remove it or use one of ${allowed.join(', ')}`);
    }
    case 'type': {
      const expected = e.params.type === 'integer' ? 'a whole number' : e.params.type === 'array' ? 'a list' : `a${/^[aeiou]/.test(e.params.type) ? 'n' : ''} ${e.params.type}`;
      const unquote = typeof e.data === 'string' && ['boolean', 'integer', 'number'].includes(e.params.type) && /^(true|false|-?\d+(\.\d+)?)$/.test(e.data);
      const actual = typeOf(e.data);
      return error(at || 'config', `is not ${expected}: ${value} is a${actual === 'object' ? 'n' : ''} ${actual}`, unquote ? `write ${e.data}, without quotes` : fix);
    }
    case 'enum': return error(at, `${value} is not one of the allowed values`, fix);
    case 'minimum': case 'maximum': return error(at, `${value} is out of range`, fix);
    case 'pattern': return error(at, `${value} is not in the expected form`, fix);
    case 'minItems': return error(at, `has ${(e.data as unknown[]).length} items, fewer than ${e.params.limit}`, fix);
    case 'maxItems': return error(at, `has ${(e.data as unknown[]).length} items, more than ${e.params.limit}`, fix);
    case 'uniqueItems': return error(at, `${value} names an item twice`, fix);
    case 'minProperties': return error(at, `has no entries`, fix);
    default: return error(at || 'config', `${value} ${e.message ?? 'is not valid'}`, fix);
  }
}
