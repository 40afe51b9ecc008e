import { Cache } from '../../agents/runtime/cache';
import { startRedisTls } from '../servers/redis';

const PASSWORD = 'redis-auth-token-from-secrets-manager';
let redis: Awaited<ReturnType<typeof startRedisTls>>;
beforeAll(async () => { redis = await startRedisTls(PASSWORD); });
afterAll(async () => { await redis?.stop(); });

test('caches over TLS with the AUTH token, with a TTL and a per-agent prefix', async () => {
  let reads = 0;
  const cache = await Cache.connect({ host: '127.0.0.1', port: redis.port, ca: redis.ca, prefix: 'summarizer', authToken: async () => { reads++; return PASSWORD; } });
  try {
    expect(reads).toBe(1);
    expect(await cache.get('k')).toBeUndefined();
    await cache.set('k', 'v', 60);
    expect(await cache.get('k')).toBe('v');
    const other = await Cache.connect({ host: '127.0.0.1', port: redis.port, ca: redis.ca, prefix: 'planner', authToken: async () => PASSWORD });
    expect(await other.get('k')).toBeUndefined(); // another agent's prefix
    await other.close();
    await cache.set('short', 'x', 1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await cache.get('short')).toBeUndefined();
    await expect(cache.set('k', 'v', 0)).rejects.toThrow(/at least 1/);
  } finally {
    await cache.close();
  }
});

test('a wrong AUTH token and an unverified server are refused', async () => {
  await expect(Cache.connect({ host: '127.0.0.1', port: redis.port, ca: redis.ca, prefix: 'x', authToken: async () => 'wrong' })).rejects.toThrow(/WRONGPASS|invalid username-password|NOAUTH/i);
  // Without the CA, the server's certificate is not trusted: no plaintext or unverified fallback.
  await expect(Cache.connect({ host: '127.0.0.1', port: redis.port, prefix: 'x', authToken: async () => PASSWORD })).rejects.toThrow(/self.signed|unable to (verify|get)/i);
});
