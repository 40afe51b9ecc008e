/**
 * Where customers' agents reach the vendor's LLM proxy, shared by the proxy, its construct and the customer plane
 * (which imports nothing else of the proxy): `https://llm.<hub host>/c/<customer>`, on 443 of the hub's
 * PrivateLink endpoint, with a certificate for `llm.<hub host>` from the vendor CA (the hub's, `*.<hub host>`).
 */

/** The port customers reach the proxy on: a listener of the hub's load balancer, behind its endpoint service. */
export const LLM_PROXY_PORT = 443;

/** The proxy's DNS name under the hub's: covered by the hub certificate's `*.<host>`. */
export const llmProxyHost = (hubHost: string) => `llm.${hubHost}`;

/** The audience (`aud`) of the proxy's tokens: its URL. */
export const llmProxyAudience = (hubHost: string) => `https://${llmProxyHost(hubHost)}`;

/** The path prefix of one customer's requests: `/c/<customer>` (the token's `sub` must be that customer). */
export const customerBasePath = (customerId: string) => `/c/${customerId}`;

/** What a customer's runtime uses as its providers' base URL. */
export const llmProxyBaseUrl = (hubHost: string, customerId: string) => `${llmProxyAudience(hubHost)}${customerBasePath(customerId)}`;
