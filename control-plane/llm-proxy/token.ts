import { createPublicKey, KeyObject, randomUUID } from 'crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { errors as joseErrors, jwtVerify } from 'jose';

/**
 * The LLM proxy's per-customer tokens: compact JWS (RFC 7515) JWTs signed ES256 by the vendor's asymmetric KMS
 * key (`ECC_NIST_P256`, `SIGN_VERIFY`), verified by the proxy with `jose` against that key's public key.
 *
 * Why KMS and not a private JWK in a secret: the private key never exists outside KMS (nothing to copy, ship or
 * leak; each signature is a CloudTrail event naming who issued a token), like the bundle signing key and the
 * customers' audit keys. jose cannot sign through KMS, so issuance builds the JWS itself (header and claims as
 * base64url JSON, KMS's DER ECDSA signature turned into JOSE's raw `r || s`); verification is plain jose
 * (`jwtVerify` with the algorithm, `typ`, issuer and audience pinned), against the public key the proxy reads
 * from KMS at start (`kms:GetPublicKey` only).
 */

/** The JOSE `typ` header of an LLM proxy token: a token of any other type (a telemetry or ingest token) is refused. */
export const LLM_TOKEN_TYPE = 'byoc-llm+jwt';
/** The only signature algorithm: ECDSA P-256 with SHA-256, what an `ECC_NIST_P256` KMS key signs. */
export const LLM_TOKEN_ALG = 'ES256';
/** Default issuer (`iss`): the vendor. */
export const LLM_TOKEN_ISSUER = 'byoc-vendor';
/** Default lifetime of an issued token. Revocation does not wait for it (see `LlmStore.revokeCustomer`). */
export const LLM_TOKEN_DAYS = 365;

export { llmProxyAudience, llmProxyHost } from './endpoint';

/** Signs a JWS signing input; returns the signature in JOSE's raw form (`r || s`, 64 bytes for ES256). */
export interface JwsSigner {
  /** The `kid` header: the KMS key's ARN. */
  readonly keyId: () => Promise<string>;
  sign(signingInput: Buffer): Promise<Buffer>;
}

/** Turns a DER ECDSA-Sig-Value (`SEQUENCE { INTEGER r, INTEGER s }`) into JOSE's fixed-length `r || s`. */
export function derToJose(der: Buffer, size = 32): Buffer {
  let at = 0;
  const expect = (tag: number) => {
    if (der[at++] !== tag) throw new Error('not a DER ECDSA signature');
    let len = der[at++];
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = (len << 8) | der[at++];
    }
    return len;
  };
  const seqLen = expect(0x30);
  if (at + seqLen !== der.length) throw new Error('not a DER ECDSA signature');
  const part = () => {
    const len = expect(0x02);
    let v = der.subarray(at, at + len);
    at += len;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new Error('ECDSA integer longer than the curve');
    return Buffer.concat([Buffer.alloc(size - v.length), v]);
  };
  const r = part();
  const s = part();
  if (at !== der.length) throw new Error('not a DER ECDSA signature');
  return Buffer.concat([r, s]);
}

/** A signer over an asymmetric KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`): needs `kms:Sign` and `kms:GetPublicKey` (the `kid`, the key's ARN, as the proxy reads it). */
export function kmsJwsSigner(client: KMSClient, keyId: string): JwsSigner {
  let arn: string | undefined;
  return {
    keyId: async () => {
      if (!arn) arn = (await client.send(new GetPublicKeyCommand({ KeyId: keyId }))).KeyId!;
      return arn;
    },
    sign: async (input) => {
      const out = await client.send(new SignCommand({ KeyId: keyId, Message: input, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }));
      return derToJose(Buffer.from(out.Signature!));
    },
  };
}

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Builds and signs a compact JWS from a header and claims (the header's `alg` is always ES256, `kid` the signer's). */
export async function signJws(signer: JwsSigner, header: Record<string, unknown>, claims: Record<string, unknown>): Promise<string> {
  const input = `${b64url({ ...header, alg: LLM_TOKEN_ALG, kid: await signer.keyId() })}.${b64url(claims)}`;
  const signature = await signer.sign(Buffer.from(input));
  return `${input}.${signature.toString('base64url')}`;
}

export interface IssueLlmTokenOptions {
  readonly customerId: string;
  /** The proxy's audience, `llmProxyAudience(hubHost)`. */
  readonly audience: string;
  /** @default LLM_TOKEN_ISSUER */
  readonly issuer?: string;
  /** @default LLM_TOKEN_DAYS */
  readonly validDays?: number;
  /** @default - now */
  readonly now?: Date;
}

export interface IssuedLlmToken {
  readonly token: string;
  /** The token's `jti`: the proxy admits it only while it is among the customer's active token IDs. */
  readonly tokenId: string;
  readonly expiresAt: Date;
}

/**
 * Issues a customer's LLM proxy token: `typ` `byoc-llm+jwt`, `sub` the customer, `aud` the proxy, `iss` the
 * vendor, `iat`/`exp`, and a fresh `jti`. It is valid at the proxy once `LlmStore.registerCustomer` has recorded
 * its `jti` (`provisionLlmProxyCustomer` does both).
 */
export async function issueLlmProxyToken(signer: JwsSigner, options: IssueLlmTokenOptions): Promise<IssuedLlmToken> {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const days = options.validDays ?? LLM_TOKEN_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new Error(`validDays ${days}: give a whole number of days from 1 to 3650`);
  const exp = iat + days * 86400;
  const tokenId = randomUUID();
  const token = await signJws(signer, { typ: LLM_TOKEN_TYPE }, {
    iss: options.issuer ?? LLM_TOKEN_ISSUER, aud: options.audience, sub: options.customerId, iat, exp, jti: tokenId,
  });
  return { token, tokenId, expiresAt: new Date(exp * 1000) };
}

/** Why a token was refused (401): each a precise, countable reason. */
export type TokenRefusal =
  | 'missing-token' | 'malformed-token' | 'wrong-algorithm' | 'wrong-type' | 'unknown-key' | 'bad-signature'
  | 'wrong-issuer' | 'wrong-audience' | 'expired' | 'not-yet-valid' | 'missing-claim';

export class TokenError extends Error {
  constructor(public readonly reason: TokenRefusal, message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** What a verified token says. */
export interface VerifiedToken {
  readonly customerId: string;
  readonly tokenId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export interface TokenVerifierOptions {
  readonly publicKey: KeyObject;
  /** The `kid` tokens must carry (the KMS key's ARN). */
  readonly keyId: string;
  readonly audience: string;
  readonly issuer: string;
  /** Clock skew tolerated on `exp`/`nbf`/`iat`, seconds. @default 30 */
  readonly clockToleranceSeconds?: number;
}

/** The public key of a KMS signing key, checked to be ECDSA P-256 for signing. Needs `kms:GetPublicKey`. */
export async function kmsPublicKey(client: KMSClient, keyId: string): Promise<{ publicKey: KeyObject; keyArn: string }> {
  const out = await client.send(new GetPublicKeyCommand({ KeyId: keyId }));
  const publicKey = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' });
  if (out.KeyUsage !== 'SIGN_VERIFY' || publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`KMS key ${keyId} is not an ECC_NIST_P256 SIGN_VERIFY key`);
  }
  return { publicKey, keyArn: out.KeyId! };
}

/** Verifies LLM proxy tokens with jose: ES256 only, `typ` pinned, `kid` the configured key, issuer and audience exact. */
export class TokenVerifier {
  constructor(private readonly options: TokenVerifierOptions) {}

  public async verify(token: string | undefined): Promise<VerifiedToken> {
    if (!token) throw new TokenError('missing-token', 'no token: send it as "authorization: Bearer <token>" or "x-api-key: <token>"');
    const parts = token.split('.');
    if (parts.length !== 3) throw new TokenError('malformed-token', 'not a compact JWS');
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    } catch {
      throw new TokenError('malformed-token', 'the JWS header is not base64url JSON');
    }
    if (header.alg !== LLM_TOKEN_ALG) throw new TokenError('wrong-algorithm', `alg ${JSON.stringify(header.alg)}: only ${LLM_TOKEN_ALG} is accepted`);
    if (header.typ !== LLM_TOKEN_TYPE) throw new TokenError('wrong-type', `typ ${JSON.stringify(header.typ)}: an LLM proxy token has typ ${LLM_TOKEN_TYPE}`);
    if (header.kid !== this.options.keyId) throw new TokenError('unknown-key', 'signed by a key this proxy does not trust (kid)');
    try {
      const { payload } = await jwtVerify(token, this.options.publicKey, {
        algorithms: [LLM_TOKEN_ALG],
        typ: LLM_TOKEN_TYPE,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceSeconds ?? 30,
        requiredClaims: ['sub', 'jti', 'iat', 'exp'],
      });
      if (payload.iat! > Date.now() / 1000 + (this.options.clockToleranceSeconds ?? 30)) throw new TokenError('not-yet-valid', 'issued in the future (iat)');
      return { customerId: payload.sub!, tokenId: payload.jti!, issuedAt: payload.iat!, expiresAt: payload.exp! };
    } catch (e) {
      if (e instanceof TokenError) throw e;
      if (e instanceof joseErrors.JWTExpired) throw new TokenError('expired', 'the token has expired');
      if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw new TokenError('bad-signature', 'the signature does not verify');
      if (e instanceof joseErrors.JWTClaimValidationFailed) {
        const reason: TokenRefusal = e.claim === 'aud' ? 'wrong-audience' : e.claim === 'iss' ? 'wrong-issuer'
          : e.claim === 'nbf' || e.claim === 'iat' ? 'not-yet-valid' : e.reason === 'missing' ? 'missing-claim' : 'malformed-token';
        throw new TokenError(reason, `claim ${e.claim}: ${e.message}`);
      }
      if (e instanceof joseErrors.JOSEError) throw new TokenError('malformed-token', e.message);
      throw e;
    }
  }
}
