import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import {
  CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { CustomerLimits, DEFAULT_LIMITS, LlmStore } from './store';
import { issueLlmProxyToken, kmsJwsSigner, LLM_TOKEN_ISSUER, LLM_TOKEN_TYPE } from './token';

/** Where the vendor keeps a customer's LLM proxy token: handed to the customer, who stores it in its plane's `llm-primary` secret. */
export const llmTokenSecretName = (customerId: string) => `byoc/customers/${customerId}/llm-proxy-token`;

export interface ProvisionLlmProxyCustomerOptions {
  readonly customerId: string;
  readonly kms: KMSClient;
  readonly dynamodb: DynamoDBClient;
  readonly secrets: SecretsManagerClient;
  /** The token signing key (the `LlmProxy` construct's `tokenSigningKey`, output `LlmProxyTokenKeyArn`): `kms:Sign`. */
  readonly tokenKeyId: string;
  /** The proxy's table (output `LlmProxyTableName`). */
  readonly table: string;
  /** The proxy's audience, `llmProxyAudience(hubHost)`. */
  readonly audience: string;
  /** @default LLM_TOKEN_ISSUER */
  readonly issuer?: string;
  /** @default DEFAULT_LIMITS */
  readonly limits?: CustomerLimits;
  /** Customer-managed KMS key for a new secret. @default - aws/secretsmanager */
  readonly secretKmsKeyId?: string;
  /** Lifetime of a newly issued token. @default LLM_TOKEN_DAYS */
  readonly validDays?: number;
  /** A held token expiring sooner than this is replaced by a new one (the old one stays admitted until it expires). @default 30 */
  readonly renewWithinDays?: number;
  /** @default - now */
  readonly now?: Date;
}

export interface ProvisionedLlmProxyCustomer {
  readonly secretName: string;
  readonly tokenId: string;
  readonly expiresAt: Date;
  /** Whether a new token was issued (else the held one was kept). */
  readonly issued: boolean;
}

/**
 * Registers a customer with the LLM proxy and gives it a token, idempotently (what `byoc customer add` calls):
 *
 * 1. reads the token held in `byoc/customers/<id>/llm-proxy-token`; keeps it when it is for this customer, this
 *    audience and issuer, signed by this key, valid for more than `renewWithinDays`, and the customer was not revoked;
 * 2. otherwise issues a new one (`issueLlmProxyToken`, signed by the KMS key);
 * 3. records the customer as active with its limits and admits the token's ID in the proxy's table
 *    (`LlmStore.registerCustomer`; a revoked customer is active again);
 * 4. stores a new token in the secret (created with tag `byoc:customer`).
 *
 * Run again it changes nothing (but `updatedAt`). Revocation is `new LlmStore(...).revokeCustomer(id, reason)`.
 */
export async function provisionLlmProxyCustomer(o: ProvisionLlmProxyCustomerOptions): Promise<ProvisionedLlmProxyCustomer> {
  const secretName = llmTokenSecretName(o.customerId);
  const issuer = o.issuer ?? LLM_TOKEN_ISSUER;
  const now = o.now ?? new Date();
  const store = new LlmStore(o.dynamodb, o.table, () => now.getTime());
  let held: string | undefined;
  let exists = true;
  try {
    held = (await o.secrets.send(new GetSecretValueCommand({ SecretId: secretName }))).SecretString;
  } catch (e) {
    if ((e as { name?: string }).name !== 'ResourceNotFoundException') throw e;
    exists = false;
  }
  const signer = kmsJwsSigner(o.kms, o.tokenKeyId);
  // A revoked customer gets a new token when reinstated: the one held before (perhaps leaked) stays refused.
  const revoked = (await store.customer(o.customerId))?.status === 'revoked';
  const kept = held && !revoked ? usableToken(held, o, issuer, await signer.keyId(), now) : undefined;
  if (kept) {
    await store.registerCustomer(o.customerId, kept.tokenId, o.limits ?? DEFAULT_LIMITS);
    return { secretName, tokenId: kept.tokenId, expiresAt: kept.expiresAt, issued: false };
  }
  const issued = await issueLlmProxyToken(signer, {
    customerId: o.customerId, audience: o.audience, issuer, validDays: o.validDays, now,
  });
  await store.registerCustomer(o.customerId, issued.tokenId, o.limits ?? DEFAULT_LIMITS);
  if (exists) {
    await o.secrets.send(new PutSecretValueCommand({ SecretId: secretName, SecretString: issued.token }));
  } else {
    await o.secrets.send(new CreateSecretCommand({
      Name: secretName,
      SecretString: issued.token,
      Description: `LLM proxy token of customer ${o.customerId} (a JWT, typ ${LLM_TOKEN_TYPE}); the customer stores it in its plane's llm-primary secret`,
      KmsKeyId: o.secretKmsKeyId,
      Tags: [{ Key: 'byoc:customer', Value: o.customerId }, { Key: 'byoc:role', Value: 'llm-proxy-token' }],
    }));
  }
  return { secretName, tokenId: issued.tokenId, expiresAt: issued.expiresAt, issued: true };
}

function usableToken(token: string, o: ProvisionLlmProxyCustomerOptions, issuer: string, keyArn: string, now: Date): { tokenId: string; expiresAt: Date } | undefined {
  try {
    const header = decodeProtectedHeader(token);
    const claims = decodeJwt(token);
    const renewAt = now.getTime() / 1000 + (o.renewWithinDays ?? 30) * 86400;
    if (header.typ !== LLM_TOKEN_TYPE || header.kid !== keyArn || claims.sub !== o.customerId || claims.aud !== o.audience || claims.iss !== issuer) return undefined;
    if (typeof claims.jti !== 'string' || typeof claims.exp !== 'number' || claims.exp <= renewAt) return undefined;
    return { tokenId: claims.jti, expiresAt: new Date(claims.exp * 1000) };
  } catch {
    return undefined;
  }
}
