import { createHash, createPublicKey, KeyObject, verify as cryptoVerify } from 'crypto';
import { BOUNDARY_CONTRACT, BoundaryContract, CUSTOMER_ID, Direction, kindsFor, MessageKind } from '../../lib/boundary-contract';
import { ContractValidator, ContractValue, isRejection, RejectionReason, signedBody } from '../../lib/contract-validator';

/**
 * What the vendor checks of every message its ingest stream holds, before anything is stored: the vendor never
 * trusts the customer side (the gateway validated it, but the leaf is the customer's, and nats-server before
 * 2.14 does not check a leaf's publishes at the hub). Pure: no I/O, so every decision is testable alone.
 */

/** Why the vendor refused a stored crossing. The contract validator's reasons, and the vendor's own. */
export type IngestRejectionReason =
  | Exclude<RejectionReason, 'rate-limit' | 'not-declared'>
  /** The kind is in the contract but this customer opted out of it (`shareLearning: false`). */
  | 'opted-out'
  /** The subject is not `byoc.<this customer>.out.<kind>`. */
  | 'wrong-subject'
  /** A gateway-signed kind (metrics) without its signature. */
  | 'unsigned'
  /** The signature does not verify with the customer's registered audit public key. */
  | 'bad-signature';

export interface IngestRejection {
  readonly reason: IngestRejectionReason;
  /** A fixed sentence naming the rule, never the payload's content. */
  readonly detail: string;
}

export interface IngestAccepted {
  readonly kind: MessageKind;
  readonly value: ContractValue;
  /** The payload: exactly the canonical serialization of `value`. */
  readonly canonical: Buffer;
}

/** One customer as the ingest service knows it (from onboarding). */
export interface IngestCustomer {
  /** The customer ID (`CUSTOMER_ID`). */
  readonly customerId: string;
  /** The customer's setting as registered: off, opt-out kinds are refused and the projected schemas apply. @default true */
  readonly shareLearning?: boolean;
  /**
   * The public key of the customer's audit KMS key (SPKI PEM; ECDSA P-256, or Ed25519), registered at
   * onboarding: every metrics message must carry a signature that verifies with it.
   */
  readonly auditPublicKeyPem: string;
  /** The boundary contract the customer's plane and hub account were built from. @default BOUNDARY_CONTRACT */
  readonly contract?: BoundaryContract;
}

/** The customer's audit public key as registered: the key, its SPKI PEM, and which signatures it verifies. */
export interface AuditPublicKey {
  readonly key: KeyObject;
  /** SubjectPublicKeyInfo, PEM: the one form it is stored in. */
  readonly pem: string;
  readonly algorithm: 'ecdsa-p256-sha256' | 'ed25519';
  /** `sha256:<hex>` of the DER SubjectPublicKeyInfo (as `byoc pubkey` and `byoc fingerprint` print it). */
  readonly fingerprint: string;
}

/**
 * Reads an audit public key: PEM (what `byoc pubkey` writes) or DER SubjectPublicKeyInfo (what `aws kms
 * get-public-key` returns, base64-decoded). It must be the public key of an ECDSA P-256 key (the customer's audit
 * KMS key, ECC_NIST_P256) or Ed25519 (a development PEM key): the two a gateway signs metrics with. Throws an
 * Error whose message completes "the key ..." (never quoting the input).
 */
export function parseAuditPublicKey(input: string | Uint8Array): AuditPublicKey {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  const text = bytes.toString('utf8');
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new Error('is a private key: register the public key only (byoc pubkey --key <the audit key ARN> --out FILE)');
  }
  let key: KeyObject;
  try {
    key = /-----BEGIN /.test(text) ? createPublicKey(text) : createPublicKey({ key: bytes, format: 'der', type: 'spki' });
    if (key.type !== 'public') throw new Error('not public');
  } catch {
    throw new Error('is not a PEM public key (nor DER SubjectPublicKeyInfo); export it with byoc pubkey --key <the audit key ARN> (or aws kms get-public-key)');
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const p256 = key.asymmetricKeyType === 'ec' && curve === 'prime256v1';
  if (!p256 && key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`is a ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} key; the audit key is ECDSA P-256 (KMS ECC_NIST_P256, SIGN_VERIFY), or Ed25519 for a development key`);
  }
  const der = key.export({ type: 'spki', format: 'der' });
  return {
    key,
    pem: key.export({ type: 'spki', format: 'pem' }).toString(),
    algorithm: p256 ? 'ecdsa-p256-sha256' : 'ed25519',
    fingerprint: `sha256:${createHash('sha256').update(der).digest('hex')}`,
  };
}

/** The checks of one customer's crossings: exact canonical bytes, published schema, allowed kinds, signatures. */
export class CustomerCheck {
  private readonly validator: ContractValidator;
  private readonly allowed: Map<string, MessageKind>;
  private readonly auditKey: KeyObject;
  private readonly contract: BoundaryContract;

  constructor(private readonly customer: IngestCustomer) {
    this.contract = customer.contract ?? BOUNDARY_CONTRACT;
    if (!CUSTOMER_ID.test(customer.customerId)) throw new Error(`ingest: customer ID "${customer.customerId}" must match ${CUSTOMER_ID}`);
    const settings = { shareLearning: customer.shareLearning ?? true };
    const kinds = kindsFor(settings, this.contract).filter((k) => k.direction === Direction.CUSTOMER_TO_VENDOR);
    this.allowed = new Map(kinds.map((k) => [k.name, k]));
    this.validator = new ContractValidator(kinds, { ...settings, schema: 'published' });
    try {
      this.auditKey = parseAuditPublicKey(customer.auditPublicKeyPem).key;
    } catch (e) {
      throw new Error(`ingest: customer ${customer.customerId}: auditPublicKeyPem ${(e as Error).message}`);
    }
  }

  /** The kind a subject names, if it is `byoc.<customer>.out.<kind>`. */
  public kindOf(subject: string): string | undefined {
    const prefix = `byoc.${this.customer.customerId}.out.`;
    if (!subject.startsWith(prefix)) return undefined;
    const kind = subject.slice(prefix.length);
    return /^[a-z][a-z0-9-]{0,30}$/.test(kind) ? kind : undefined;
  }

  /** Checks one crossing as the hub stored it. */
  public check(subject: string, payload: Uint8Array): IngestAccepted | IngestRejection {
    const kindName = this.kindOf(subject);
    if (kindName === undefined) return { reason: 'wrong-subject', detail: `the subject is not byoc.${this.customer.customerId}.out.<kind>` };
    const kind = this.allowed.get(kindName);
    if (!kind) {
      const inContract = this.contract.kinds.some((k) => k.name === kindName && k.direction === Direction.CUSTOMER_TO_VENDOR);
      return inContract
        ? { reason: 'opted-out', detail: `the customer opted out of the ${kindName} kind (shareLearning: false)` }
        : { reason: 'unknown-kind', detail: 'not an outbound kind of the contract' };
    }
    const checked = this.validator.check(kind.name, payload);
    if (isRejection(checked)) {
      if (kind.gatewaySigned && checked.reason === 'schema' && lacksField(payload, kind.gatewaySigned.field)) {
        return { reason: 'unsigned', detail: `a ${kind.name} message must carry the gateway's ${kind.gatewaySigned.field}` };
      }
      return { reason: checked.reason as IngestRejectionReason, detail: checked.detail };
    }
    if (kind.gatewaySigned) {
      const signature = Buffer.from(checked.value[kind.gatewaySigned.field] as string, 'base64url');
      const body = signedBody(kind, checked.value);
      const ok = this.auditKey.asymmetricKeyType === 'ed25519'
        ? cryptoVerify(null, body, this.auditKey, signature)
        : cryptoVerify('sha256', body, { key: this.auditKey, dsaEncoding: 'ieee-p1363' }, signature);
      if (!ok) return { reason: 'bad-signature', detail: `the signature does not verify with customer ${this.customer.customerId}'s registered audit key` };
    }
    return { kind, value: checked.value, canonical: checked.canonical };
  }
}

/** True when the payload is a JSON object without `field` (an unsigned message rather than a broken one). */
function lacksField(payload: Uint8Array, field: string): boolean {
  try {
    const v = JSON.parse(Buffer.from(payload).toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) && !Object.prototype.hasOwnProperty.call(v, field);
  } catch {
    return false;
  }
}

export const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
