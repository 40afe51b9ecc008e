import { headers as natsHeaders, Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, JetStreamClient, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { Logger } from 'pino';
import { AuditLogWriter } from '../../lib/audit-log';
import { Direction, MessageKind, subjectOf } from '../../lib/boundary-contract';
import { ContractValidator, Rejection } from '../../lib/contract-validator';
import { crossingKinds, DEAD_LETTER_STREAM, INBOX_PREFIX, LinkSettings, OUTBOX_PREFIX, REJECTED_PREFIX } from '../../lib/nats-config';

export interface GatewayOptions extends LinkSettings {
  /** Connection to the leaf's AGENTS account, as `gateway-local`. */
  readonly local: NatsConnection;
  /** Connection to the leaf's BOUNDARY account (the one linked to the hub), as `gateway`. */
  readonly boundary: NatsConnection;
  readonly audit: AuditLogWriter;
  readonly log: Logger;
}

export interface GatewayCounters {
  crossedOut: number;
  crossedIn: number;
  rejected: Record<string, number>;
  deadLetterFailures: number;
}

/**
 * The boundary gateway: the only process that may publish on crossing subjects. Agents hand messages to it
 * on `boundary.outbox.<kind>`; it validates each against the contract, publishes the valid ones on the
 * customer's crossing subject, and records every crossing in the audit log. Control messages from the
 * vendor are validated the same way before they reach the agents on `boundary.inbox.<kind>`. Whatever
 * fails is counted, logged as fields (never the payload) and kept on a local dead-letter stream.
 */
export class BoundaryGateway {
  public readonly counters: GatewayCounters = { crossedOut: 0, crossedIn: 0, rejected: {}, deadLetterFailures: 0 };
  private readonly outbound: ContractValidator;
  private readonly inbound: ContractValidator;
  private readonly kinds: MessageKind[];
  private readonly subs: Subscription[] = [];
  private js?: JetStreamClient;
  private pending = new Set<Promise<unknown>>();

  constructor(private readonly o: GatewayOptions) {
    this.kinds = crossingKinds(o);
    this.outbound = new ContractValidator(this.kinds.filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR));
    this.inbound = new ContractValidator(this.kinds.filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER));
  }

  /** Ensures the dead-letter stream, then starts relaying. */
  public async start(): Promise<void> {
    const jsm = await jetstreamManager(this.o.local);
    const config = { name: DEAD_LETTER_STREAM, subjects: [`${REJECTED_PREFIX}.>`], storage: StorageType.File, retention: RetentionPolicy.Limits, max_age: 30 * 86400 * 1e9 };
    try {
      await jsm.streams.info(DEAD_LETTER_STREAM);
    } catch {
      await jsm.streams.add(config);
    }
    this.js = jetstream(this.o.local);
    this.subs.push(this.o.local.subscribe(`${OUTBOX_PREFIX}.>`, { queue: 'boundary-gateway', callback: (err, m) => { if (!err) this.outboundMessage(m); } }));
    for (const kind of this.kinds.filter((k) => k.direction === Direction.VENDOR_TO_CUSTOMER)) {
      this.subs.push(this.o.boundary.subscribe(subjectOf(kind, this.o.customerId), { callback: (err, m) => { if (!err) this.inboundMessage(kind, m); } }));
    }
    await Promise.all([this.o.local.flush(), this.o.boundary.flush()]);
    this.o.log.info({ kinds: this.kinds.map((k) => `${k.direction}:${k.name}`) }, 'boundary gateway started');
  }

  private outboundMessage(m: Msg): void {
    const kind = m.subject.slice(OUTBOX_PREFIX.length + 1);
    const rejection = this.outbound.check(kind, m.data);
    if (rejection) return this.reject('out', kind, m, rejection);
    const subject = `byoc.${this.o.customerId}.out.${kind}`;
    this.o.boundary.publish(subject, m.data);
    this.o.audit.append({ direction: 'out', kind, subject, payload: m.data });
    this.counters.crossedOut++;
  }

  private inboundMessage(kind: MessageKind, m: Msg): void {
    const rejection = this.inbound.check(kind.name, m.data);
    if (rejection) return this.reject('in', kind.name, m, rejection);
    this.o.local.publish(`${INBOX_PREFIX}.${kind.name}`, m.data);
    this.o.audit.append({ direction: 'in', kind: kind.name, subject: m.subject, payload: m.data });
    this.counters.crossedIn++;
  }

  private reject(direction: 'out' | 'in', kind: string, m: Msg, r: Rejection): void {
    this.counters.rejected[r.reason] = (this.counters.rejected[r.reason] ?? 0) + 1;
    // Fields only: the payload may be exactly what must not cross, so it is neither logged nor forwarded.
    this.o.log.warn({ direction, kind: kind.slice(0, 64), subject: m.subject.slice(0, 128), size: m.data.length, reason: r.reason, detail: r.detail }, 'boundary message rejected');
    const h = natsHeaders();
    h.set('Byoc-Reject-Reason', r.reason);
    h.set('Byoc-Reject-Detail', r.detail);
    h.set('Byoc-Direction', direction);
    h.set('Byoc-Original-Subject', m.subject.slice(0, 256));
    const safeKind = /^[a-z0-9-]{1,64}$/.test(kind) ? kind : 'unknown';
    const stored = this.js!.publish(`${REJECTED_PREFIX}.${direction}.${safeKind}`, m.data, { headers: h })
      .catch((e: Error) => {
        this.counters.deadLetterFailures++;
        this.o.log.error({ direction, kind: safeKind, reason: r.reason, error: e.message }, 'could not store a rejected message on the dead-letter stream');
      });
    this.pending.add(stored);
    void stored.finally(() => this.pending.delete(stored));
  }

  /** Stops taking messages, waits for dead-letter writes, signs a final audit head. */
  public async stop(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    await Promise.all([this.o.local.flush(), this.o.boundary.flush()]);
    await Promise.all(this.pending);
    await this.o.audit.close();
  }
}
