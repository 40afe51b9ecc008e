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
}

export interface AgentContext {
  /** Structured logger: user data as fields, never interpolated into the message. */
  readonly log: { info(fields: object, msg: string): void; warn(fields: object, msg: string): void };
  /** Reads a secret from Secrets Manager at point of use; not cached by the host. */
  secret(name: string): Promise<string>;
  /**
   * Publishes to another agent (`work.<agent>`, stored by JetStream) or an event (`events.*`), carrying
   * the current item's request ID in the `Byoc-Request-Id` header.
   */
  publish(subject: string, data: string | Uint8Array): Promise<void>;
}

export interface Agent {
  readonly name: string;
  /** Handles one item. Resolves when done; throws to have it redelivered (with backoff) or dead-lettered. */
  handle(item: WorkItem, ctx: AgentContext): Promise<void>;
}
