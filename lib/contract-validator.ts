import Ajv, { ValidateFunction } from 'ajv';
import { Field, MessageKind } from './boundary-contract';

/** JSON Schema of a contract field: every object closed, every string bounded and patterned. */
export function jsonSchemaOf(field: Field): Record<string, unknown> {
  switch (field.type) {
    case 'id': return { type: 'string', pattern: field.pattern, maxLength: field.maxLength };
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

/** Why a payload was refused: a stable reason code and a detail without the payload's content. */
export interface Rejection {
  readonly reason: 'unknown-kind' | 'oversize' | 'not-utf8' | 'not-json' | 'schema';
  readonly detail: string;
}

/** Validators for a set of kinds: `check(kind, payload)` returns undefined for a valid payload. */
export class ContractValidator {
  private readonly validators = new Map<string, { kind: MessageKind; validate: ValidateFunction }>();

  constructor(kinds: readonly MessageKind[]) {
    const ajv = new Ajv({ allErrors: false, strict: true });
    for (const kind of kinds) this.validators.set(kind.name, { kind, validate: ajv.compile(jsonSchemaOf(kind.schema)) });
  }

  public kinds(): string[] {
    return [...this.validators.keys()];
  }

  public check(kindName: string, payload: Uint8Array): Rejection | undefined {
    const entry = this.validators.get(kindName);
    if (!entry) return { reason: 'unknown-kind', detail: `"${kindName.slice(0, 64)}" is not a kind of the contract for this customer` };
    if (payload.length > entry.kind.maxBytes) return { reason: 'oversize', detail: `${payload.length} bytes, the limit of ${kindName} is ${entry.kind.maxBytes}` };
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
    } catch {
      return { reason: 'not-utf8', detail: 'payload is not UTF-8' };
    }
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
    return undefined;
  }
}
