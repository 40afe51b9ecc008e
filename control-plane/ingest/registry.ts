import { GetSecretValueCommand, ListSecretsCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CUSTOMER_ID } from '../../lib/boundary-contract';
import { parseAuditPublicKey } from './check';
import { IngestCustomerConfig } from './service';
import { CUSTOMER_SECRET_PREFIX, INGEST_SECRET } from './settings';

/**
 * The customer registry as the ingest service reads it. Registration (`byoc customer add|revoke|cancel`,
 * `lib/customers.ts`) keeps one secret per customer for it, `byoc/customers/<id>/ingest`, holding an
 * `IngestRecord`: the customer's settings, its status, the customer's audit public key once registered, and the
 * `.creds` of the customer's vendor ingest user. It is the only secret of a customer the service may read: the
 * NATS accounts' keys and the leaf's credentials stay in the registration's other secrets. A cancellation of the
 * customer's subscription is a tag on that secret (`byoc:cancelled-at`), read by the retention sweep.
 *
 * The registry is listed (names, tags and version IDs, nothing decrypted) and each secret's value is read only when
 * its current version is one not read before, so a periodic re-read costs one ListSecrets call per 100 customers.
 */

export const INGEST_RECORD_FORMAT = 'byoc-ingest/1';

/** The tags on a customer's secrets (`byoc customer list` reads them without decrypting anything). */
export const REGISTRY_TAGS = {
  customer: 'byoc:customer',
  awsAccount: 'byoc:aws-account',
  status: 'byoc:status',
  role: 'byoc:role',
  /** On the ingest secret: the registered audit public key's fingerprint (`sha256:<hex>`), or `none`. */
  auditKey: 'byoc:audit-key',
  /**
   * On the ingest secret, once the customer's subscription is cancelled (`byoc customer cancel`): when, as
   * `formatCancelledAt` writes it. The retention sweep (`retention.ts`) reads it; written once, never moved.
   */
  cancelledAt: 'byoc:cancelled-at',
} as const;

const CANCELLED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** No cancellation this kit records is older: an earlier time is a mistake, and would delete a customer's data at once. */
export const EARLIEST_CANCELLATION = '2020-01-01T00:00:00.000Z';

/** The value of the `byoc:cancelled-at` tag: the time in ISO 8601, UTC, to the millisecond (`2026-11-23T22:07:59.000Z`). */
export function formatCancelledAt(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/**
 * The time (epoch ms) a `byoc:cancelled-at` tag records. Throws an Error naming what is wrong with it: only
 * the form `formatCancelledAt` writes is a time (no other spelling, no epoch number, no date that does not exist),
 * and none before `EARLIEST_CANCELLATION`.
 */
export function parseCancelledAt(value: string): number {
  const quoted = JSON.stringify(value.slice(0, 40));
  if (!CANCELLED_AT.test(value)) throw new Error(`${quoted} is not a time as YYYY-MM-DDTHH:MM:SS.sssZ`);
  const ms = Date.parse(value);
  if (!Number.isFinite(ms) || formatCancelledAt(ms) !== value) throw new Error(`${quoted} is not a time that exists`);
  if (ms < Date.parse(EARLIEST_CANCELLATION)) throw new Error(`${quoted} is before ${EARLIEST_CANCELLATION.slice(0, 10)}, earlier than any cancellation`);
  return ms;
}

/** The name of a customer's ingest secret. */
export const ingestSecretName = (customerId: string, prefix: string = CUSTOMER_SECRET_PREFIX) => `${prefix}${customerId}/${INGEST_SECRET}`;

/** The value of `byoc/customers/<id>/ingest`: a secret (it holds the vendor ingest user's seed). */
export interface IngestRecord {
  readonly format: typeof INGEST_RECORD_FORMAT;
  readonly customerId: string;
  readonly shareLearning: boolean;
  readonly status: 'active' | 'revoked';
  /** The customer's audit public key (SPKI PEM), once the vendor registered it (`add --audit-public-key`). */
  readonly auditPublicKeyPem?: string;
  /** The `.creds` of the customer's vendor ingest user (`vendorUser` of `lib/nats-auth.ts`). */
  readonly creds: string;
}

/** The record in a fixed key order, so the same content is the same string (and writing it again is no new version). */
export function ingestRecordJson(r: IngestRecord): string {
  return `${JSON.stringify({
    format: r.format, customerId: r.customerId, shareLearning: r.shareLearning, status: r.status,
    ...(r.auditPublicKeyPem !== undefined ? { auditPublicKeyPem: r.auditPublicKeyPem } : {}),
    creds: r.creds,
  }, null, 2)}\n`;
}

/** Parses and checks a record; throws an Error naming what is wrong (never quoting the value). */
export function parseIngestRecord(text: string, customerId: string): IngestRecord {
  let r: Partial<Record<keyof IngestRecord, unknown>>;
  try {
    r = JSON.parse(text);
  } catch {
    throw new Error('is not JSON');
  }
  if (!r || typeof r !== 'object' || r.format !== INGEST_RECORD_FORMAT) throw new Error(`is not a ${INGEST_RECORD_FORMAT} record`);
  if (r.customerId !== customerId) throw new Error(`is the record of another customer than ${customerId}`);
  if (typeof r.shareLearning !== 'boolean') throw new Error('has no shareLearning setting');
  if (r.status !== 'active' && r.status !== 'revoked') throw new Error('has no status active or revoked');
  if (typeof r.creds !== 'string' || !/-----BEGIN NATS USER JWT-----/.test(r.creds) || !/-----BEGIN USER NKEY SEED-----/.test(r.creds)) {
    throw new Error('holds no .creds (user JWT and seed)');
  }
  if (r.auditPublicKeyPem !== undefined) {
    if (typeof r.auditPublicKeyPem !== 'string') throw new Error('has an audit public key that is not a PEM string');
    try {
      parseAuditPublicKey(r.auditPublicKeyPem);
    } catch (e) {
      throw new Error(`has an audit public key that ${(e as Error).message}`);
    }
  }
  return r as IngestRecord;
}

/** The cancellations recorded on the registry's ingest secrets (their tags only: no value is read). */
export interface Cancellations {
  /** Customer ID to the time its subscription was cancelled (epoch ms), what `sweepRetention` takes. */
  readonly cancelledAt: ReadonlyMap<string, number>;
  /** Customers whose recorded time is not one, with why: neither cancelled nor ignored, reported by the caller. */
  readonly malformed: readonly { readonly customerId: string; readonly reason: string }[];
}

/** The registry as read. */
export interface Registry {
  /** Every customer the service can check: active ones get a consumer, revoked ones none. */
  readonly customers: IngestCustomerConfig[];
  /** Active customers whose audit public key is not registered yet: no consumer (their crossings wait in the stream). */
  readonly awaitingAuditKey: string[];
  /** Secrets that could not be used, with why (never their content): no consumer. */
  readonly invalid: { readonly customerId: string; readonly reason: string }[];
}

export interface RegistryReaderOptions {
  /** @default CUSTOMER_SECRET_PREFIX */
  readonly prefix?: string;
}

interface Listed {
  readonly customerId: string;
  readonly arn: string;
  readonly versionId?: string;
  readonly tags: Readonly<Record<string, string>>;
}

interface Cached {
  readonly versionId: string;
  readonly record?: IngestRecord;
  readonly error?: string;
}

/**
 * Reads the registry from Secrets Manager. Keeps what it decrypted by secret version: call `load` as often as
 * the service should notice registrations; only a new or changed secret is read again.
 */
export class RegistryReader {
  private readonly prefix: string;
  private readonly cache = new Map<string, Cached>();
  /** Secret values read (GetSecretValue calls) since the reader was made. */
  public valuesRead = 0;

  constructor(private readonly sm: SecretsManagerClient, o: RegistryReaderOptions = {}) {
    this.prefix = o.prefix ?? CUSTOMER_SECRET_PREFIX;
  }

  /** The ingest secrets under the prefix (not deleted ones): names, tags and version IDs, no value. */
  private async list(): Promise<Listed[]> {
    const escaped = this.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const name = new RegExp(`^${escaped}([^/]+)/${INGEST_SECRET}$`);
    const found: Listed[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.sm.send(new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [this.prefix] }], NextToken, MaxResults: 100 }));
      for (const s of page.SecretList ?? []) {
        const m = name.exec(s.Name ?? '');
        if (!m || s.DeletedDate || !s.ARN) continue;
        const current = Object.entries(s.SecretVersionsToStages ?? {}).find(([, stages]) => stages.includes('AWSCURRENT'))?.[0];
        const tags = Object.fromEntries((s.Tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
        found.push({ customerId: m[1], arn: s.ARN, versionId: current, tags });
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return found.sort((a, b) => a.customerId.localeCompare(b.customerId));
  }

  /**
   * The cancellations as recorded now (one ListSecrets call per 100 customers, nothing decrypted): what the
   * retention sweep reads before each run. Throws when Secrets Manager cannot be read.
   */
  public async cancellations(): Promise<Cancellations> {
    const cancelledAt = new Map<string, number>();
    const malformed: { customerId: string; reason: string }[] = [];
    for (const f of await this.list()) {
      const value = f.tags[REGISTRY_TAGS.cancelledAt];
      // A name without a customer identifier is reported by load(); no item of the tables can carry it.
      if (value === undefined || !CUSTOMER_ID.test(f.customerId)) continue;
      try {
        cancelledAt.set(f.customerId, parseCancelledAt(value));
      } catch (e) {
        malformed.push({ customerId: f.customerId, reason: `the tag ${REGISTRY_TAGS.cancelledAt} ${(e as Error).message}` });
      }
    }
    return { cancelledAt, malformed };
  }

  /** Lists the ingest secrets under the prefix and returns the registry. Throws when Secrets Manager cannot be read. */
  public async load(): Promise<Registry> {
    const found = await this.list();
    const registry: Registry = { customers: [], awaitingAuditKey: [], invalid: [] };
    for (const f of found) {
      if (!CUSTOMER_ID.test(f.customerId)) {
        registry.invalid.push({ customerId: f.customerId, reason: 'the secret\'s name holds no customer identifier' });
        continue;
      }
      let entry = this.cache.get(f.arn);
      if (!entry || !f.versionId || entry.versionId !== f.versionId) {
        const out = await this.sm.send(new GetSecretValueCommand({ SecretId: f.arn }));
        this.valuesRead++;
        try {
          entry = { versionId: out.VersionId ?? '', record: parseIngestRecord(out.SecretString ?? '', f.customerId) };
        } catch (e) {
          entry = { versionId: out.VersionId ?? '', error: `the secret ${(e as Error).message}` };
        }
        this.cache.set(f.arn, entry);
      }
      if (!entry.record) {
        registry.invalid.push({ customerId: f.customerId, reason: entry.error! });
        continue;
      }
      const r = entry.record;
      // Revoked when either says so: revocation writes the tag, then the value; a revocation cut short between
      // the two still stops the consumer.
      const status = r.status === 'revoked' || f.tags[REGISTRY_TAGS.status] === 'revoked' ? 'revoked' : 'active';
      if (r.auditPublicKeyPem === undefined) {
        if (status === 'active') registry.awaitingAuditKey.push(f.customerId);
        continue;
      }
      registry.customers.push({ customerId: f.customerId, shareLearning: r.shareLearning, status, auditPublicKeyPem: r.auditPublicKeyPem, creds: r.creds });
    }
    for (const arn of [...this.cache.keys()]) if (!found.some((f) => f.arn === arn)) this.cache.delete(arn);
    return registry;
  }
}
