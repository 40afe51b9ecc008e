/**
 * The plane-internal record of one attempt of one workflow step, published by every agent runtime on
 * `events.workflow.status` after each item it handled. It never crosses the boundary as it is: the
 * workflow-orchestrator derives the contract's `workflow` messages from it, the usage-meter its `usage`
 * counters and its `metrics` windows, the pattern-miner its fingerprints. It carries no payload, only what
 * those three need. Parsed strictly (`parseStepStatus`): a malformed record is refused with a reason.
 */
import { randomBytes } from 'crypto';
import { canonicalBytes } from './contract-validator';
import { AGENT_NAME_PATTERN } from './database-roles';

/** Subject every runtime publishes its step records on (declared for every agent by the catalog). */
export const STEP_STATUS_SUBJECT = 'events.workflow.status';

/** NATS headers that carry a workflow across agents (beside W3C `traceparent`/`tracestate`). */
export const WORKFLOW_HEADERS = {
  /** The workflow's ULID: set by whoever starts the workflow, kept by every agent it reaches. */
  workflowId: 'Byoc-Workflow-Id',
  /** The step number of the item within its workflow (0 for the first); an agent's publishes carry its own + 1. */
  stepId: 'Byoc-Step',
  /** Request ID for logs (kept as it was). */
  requestId: 'Byoc-Request-Id',
} as const;

export const STEP_STATUSES = ['started', 'succeeded', 'failed', 'retried', 'dead-lettered'] as const;
export type StepStatusValue = (typeof STEP_STATUSES)[number];
export const STEP_TRIGGERS = ['request', 'event', 'schedule'] as const;
export type StepTrigger = (typeof STEP_TRIGGERS)[number];

export interface StepStatus {
  readonly v: 1;
  /** ULID of the workflow. */
  readonly workflowId: string;
  /** Step number within the workflow, 0 to 999. */
  readonly stepId: number;
  readonly agent: string;
  readonly trigger: StepTrigger;
  readonly status: StepStatusValue;
  /** 200 on success, 500 on an agent error, 504 when no attempt completed. */
  readonly statusCode: number;
  /** Epoch ms when the attempt started. */
  readonly startedAt: number;
  /** Wall-clock duration of the attempt, ms (the compute the usage meter counts). */
  readonly durationMs: number;
  /** LLM tokens the attempt used (sent, received). */
  readonly llmTokensIn: number;
  readonly llmTokensOut: number;
}

export const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A new ULID (48-bit time, 80 random bits), as the contract's `workflowId` requires. */
export function newWorkflowId(now = Date.now(), random: (n: number) => Uint8Array = randomBytes): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) { time = CROCKFORD[t % 32] + time; t = Math.floor(t / 32); }
  const bytes = random(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[bytes[i] % 32];
  return time + rand;
}

const wholeIn = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** Parses one record; throws an Error naming the first problem (never quoting the input). */
export function parseStepStatus(data: Uint8Array | string): StepStatus {
  const text = typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data);
  if (text.length > 1024) throw new Error('step record: longer than 1024 characters');
  const v = JSON.parse(text) as Record<string, unknown>;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('step record: not a JSON object');
  const keys = ['v', 'workflowId', 'stepId', 'agent', 'trigger', 'status', 'statusCode', 'startedAt', 'durationMs', 'llmTokensIn', 'llmTokensOut'];
  const extra = Object.keys(v).find((k) => !keys.includes(k));
  if (extra !== undefined) throw new Error('step record: unknown field');
  if (v.v !== 1) throw new Error('step record: unsupported version');
  if (typeof v.workflowId !== 'string' || !ULID_PATTERN.test(v.workflowId)) throw new Error('step record: workflowId is not a ULID');
  if (!wholeIn(v.stepId, 0, 999)) throw new Error('step record: stepId is not a whole number from 0 to 999');
  if (typeof v.agent !== 'string' || !AGENT_NAME_PATTERN.test(v.agent)) throw new Error('step record: agent is not an agent name');
  if (!(STEP_TRIGGERS as readonly unknown[]).includes(v.trigger)) throw new Error('step record: trigger is not request, event or schedule');
  if (!(STEP_STATUSES as readonly unknown[]).includes(v.status)) throw new Error('step record: status is not a step status');
  if (!wholeIn(v.statusCode, 0, 999)) throw new Error('step record: statusCode is not 0 to 999');
  if (!wholeIn(v.startedAt, 0, 8.64e15)) throw new Error('step record: startedAt is not epoch ms');
  if (!wholeIn(v.durationMs, 0, 86400000)) throw new Error('step record: durationMs is not 0 to 86400000');
  if (!wholeIn(v.llmTokensIn, 0, 1e9) || !wholeIn(v.llmTokensOut, 0, 1e9)) throw new Error('step record: token counts are not whole numbers from 0 to 1e9');
  // Only the canonical form (sorted keys, no spaces) is accepted: no duplicate keys, no second reading.
  if (canonicalBytes(v).toString('utf8') !== text) throw new Error('step record: not in canonical form');
  return v as unknown as StepStatus;
}

/** The record's bytes (the runtime's side). */
export function encodeStepStatus(s: Omit<StepStatus, 'v'>): Uint8Array {
  const record: StepStatus = { v: 1, ...s, durationMs: Math.max(0, Math.round(s.durationMs)) };
  return new Uint8Array(canonicalBytes(record));
}
