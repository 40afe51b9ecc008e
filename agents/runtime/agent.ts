import { StepTrigger } from '../../lib/step-status';

/** What an agent does, pluggable: the runtime host gives it work items and a context. */
export interface WorkItem {
  /** Stable identifier of the message (its `Nats-Msg-Id`, else its stream sequence): the idempotency key. */
  readonly id: string;
  readonly subject: string;
  readonly data: Uint8Array;
  /** Request ID carried in NATS headers across agents, for logs. */
  readonly requestId: string;
  /** 1 on the first delivery. */
  readonly attempt: number;
  /** The path the item came by: a request, an event, a scheduled tick (a plain work item: the agent's catalog trigger). */
  readonly trigger: StepTrigger;
  /** The workflow it belongs to (ULID, from the `Byoc-Workflow-Id` header, new at a workflow's first step). */
  readonly workflowId: string;
  /** Its step within the workflow (`Byoc-Step`, 0 at the first). */
  readonly stepId: number;
}

export interface AgentContext {
  /** Structured logger: user data as fields, never interpolated into the message. */
  readonly log: { info(fields: object, msg: string): void; warn(fields: object, msg: string): void };
  /** Reads a secret from Secrets Manager at point of use; not cached by the host. */
  secret(name: string): Promise<string>;
  /**
   * Publishes to another agent (`work.<agent>`, stored by JetStream) or an event (`events.*`, stored by
   * JetStream), carrying the current item's request ID, its workflow ID and the next step number. What a
   * retried item publishes again (same item, same order) is stored once.
   */
  publish(subject: string, data: string | Uint8Array): Promise<void>;
  /** Counts LLM tokens the current item used (the LLM client calls it): its step record carries the totals. */
  recordLlmTokens(tokensIn: number, tokensOut: number): void;
}

export interface Agent {
  readonly name: string;
  /**
   * Handles one item. Resolves when done (for a request, with the reply's body); throws to have it
   * redelivered (with backoff) or dead-lettered.
   */
  handle(item: WorkItem, ctx: AgentContext): Promise<void | string | Uint8Array>;
}
