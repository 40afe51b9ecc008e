import { createHash } from 'crypto';
import canonicalize from 'canonicalize';

/**
 * The boundary contract: every kind of message that may cross between the customer plane and the vendor's
 * control plane, and nothing else. Each kind has a subject scoped to the customer, a direction, a closed
 * schema (no free text: identifiers by pattern, enumerations, bounded numbers, bounded sizes) and whether
 * the customer may opt out of it. What enforces or documents the boundary is generated from this one
 * definition; its hash (`contractHash`) is part of every signed release.
 */

/** Who sends a kind of message. */
export enum Direction {
  CUSTOMER_TO_VENDOR = 'customer-to-vendor',
  VENDOR_TO_CUSTOMER = 'vendor-to-customer',
}

/** A field of a closed schema. There is no unconstrained string type. */
export type Field =
  | { readonly type: 'id'; readonly pattern: string; readonly maxLength: number }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'integer'; readonly minimum: number; readonly maximum: number }
  | { readonly type: 'number'; readonly minimum: number; readonly maximum: number }
  | { readonly type: 'array'; readonly items: Field; readonly maxItems: number }
  | { readonly type: 'object'; readonly fields: Readonly<Record<string, Field>>; readonly required: readonly string[] };

export interface MessageKind {
  /** Stable name, also the last token of the subject. */
  readonly name: string;
  readonly direction: Direction;
  /** What the kind carries, for the documentation and the review report. */
  readonly description: string;
  /** The customer may turn this kind off; turned off, it is absent from every generated rule. */
  readonly optOut: boolean;
  /** Largest payload accepted, bytes of UTF-8 JSON. */
  readonly maxBytes: number;
  /** The payload: a closed object. */
  readonly schema: Extract<Field, { type: 'object' }>;
}

const HEX64 = '^[0-9a-f]{64}$';
const ID = (maxLength = 64): Field => ({ type: 'id', pattern: `^[A-Za-z0-9][A-Za-z0-9_-]{0,${maxLength - 1}}$`, maxLength });
const AGENT: Field = { type: 'id', pattern: '^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,27}$', maxLength: 28 };
const EPOCH_MS: Field = { type: 'integer', minimum: 0, maximum: 4102444800000 };
const COUNT: Field = { type: 'integer', minimum: 0, maximum: 1e12 };
const object = (fields: Record<string, Field>, required = Object.keys(fields)): Extract<Field, { type: 'object' }> => ({ type: 'object', fields, required });

/** The OpenTelemetry metric names that may cross, and the only attributes they may carry. */
export const METRIC_NAMES = ['agent.request.duration', 'agent.request.errors', 'agent.requests', 'agent.cpu.utilization', 'agent.memory.utilization', 'agent.queue.depth'] as const;
export const METRIC_ATTRIBUTES = ['agent', 'status_code', 'trigger'] as const;

export const BOUNDARY_CONTRACT: { readonly version: number; readonly kinds: readonly MessageKind[] } = {
  version: 1,
  kinds: [
    {
      name: 'workflow',
      direction: Direction.CUSTOMER_TO_VENDOR,
      description: 'Workflow metadata: IDs, timing, agent names and status codes of each workflow step',
      optOut: false,
      maxBytes: 2048,
      schema: object({
        workflowId: ID(),
        stepId: ID(),
        agent: AGENT,
        status: { type: 'enum', values: ['started', 'succeeded', 'failed', 'retried', 'dead-lettered'] },
        statusCode: { type: 'integer', minimum: 0, maximum: 999 },
        startedAt: EPOCH_MS,
        durationMs: { type: 'integer', minimum: 0, maximum: 86400000 },
      }),
    },
    {
      name: 'metrics',
      direction: Direction.CUSTOMER_TO_VENDOR,
      description: 'Signed OpenTelemetry metrics: latency, error rates and resource utilisation per agent',
      optOut: false,
      maxBytes: 16384,
      schema: object({
        windowStart: EPOCH_MS,
        windowEnd: EPOCH_MS,
        points: {
          type: 'array',
          maxItems: 200,
          items: object({
            metric: { type: 'enum', values: METRIC_NAMES },
            agent: AGENT,
            statusCode: { type: 'integer', minimum: 0, maximum: 999 },
            trigger: { type: 'enum', values: ['request', 'event', 'schedule'] },
            value: { type: 'number', minimum: 0, maximum: 1e12 },
          }, ['metric', 'agent', 'value']),
        },
        signature: { type: 'id', pattern: '^[A-Za-z0-9_-]{86}$', maxLength: 86 },
      }),
    },
    {
      name: 'fingerprint',
      direction: Direction.CUSTOMER_TO_VENDOR,
      description: 'Anonymised pattern fingerprints for shared learning: workflow shapes, counts and hashes only',
      optOut: true,
      maxBytes: 4096,
      schema: object({
        patternHash: { type: 'id', pattern: HEX64, maxLength: 64 },
        shape: { type: 'array', maxItems: 32, items: AGENT },
        occurrences: COUNT,
        outcome: { type: 'enum', values: ['succeeded', 'failed'] },
      }),
    },
    {
      name: 'usage',
      direction: Direction.CUSTOMER_TO_VENDOR,
      description: 'Billing and usage counters per agent and period',
      optOut: false,
      maxBytes: 1024,
      schema: object({
        periodStart: EPOCH_MS,
        periodEnd: EPOCH_MS,
        agent: AGENT,
        invocations: COUNT,
        computeSeconds: COUNT,
        llmTokensIn: COUNT,
        llmTokensOut: COUNT,
      }),
    },
    {
      name: 'control',
      direction: Direction.VENDOR_TO_CUSTOMER,
      description: 'Control messages: dispatch a workflow by ID, announce a configuration version',
      optOut: false,
      maxBytes: 1024,
      schema: object({
        action: { type: 'enum', values: ['dispatch-workflow', 'set-config-version'] },
        workflowId: ID(),
        configVersion: { type: 'id', pattern: '^\\d{1,4}\\.\\d{1,4}\\.\\d{1,4}$', maxLength: 14 },
        issuedAt: EPOCH_MS,
      }, ['action', 'issuedAt']),
    },
  ],
};

/** A customer identifier: 3 to 20 lower-case letters, digits and single hyphens, starting with a letter. */
export const CUSTOMER_ID = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){2,19}$/;

/** Subject of a kind for one customer: `byoc.<customer>.<out|in>.<kind>`. */
export function subjectOf(kind: MessageKind, customerId: string): string {
  return `byoc.${customerId}.${kind.direction === Direction.CUSTOMER_TO_VENDOR ? 'out' : 'in'}.${kind.name}`;
}

/** SHA-256 (hex) of the contract's canonical JSON (RFC 8785): changes exactly when what may cross changes. */
export function contractHash(contract = BOUNDARY_CONTRACT): string {
  return createHash('sha256').update(canonicalize(contract)!, 'utf8').digest('hex');
}
