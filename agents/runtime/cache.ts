import Redis from 'ioredis';

export interface CacheOptions {
  /** The agent's own ElastiCache user (RBAC). @default - the default user (AUTH token) */
  readonly username?: string;
  readonly host: string;
  readonly port: number;
  /** The AUTH token, read from Secrets Manager just before connecting. */
  readonly authToken: () => Promise<string>;
  /** CA bundle (PEM) to verify the server; default: the system's roots. */
  readonly ca?: string;
  /** Key prefix: the agent's name, so agents sharing the cache cannot read each other's keys by accident. */
  readonly prefix: string;
}

/**
 * Redis as a cache, over TLS only, authenticated with the AUTH token: get, set with a TTL, delete. A cache
 * miss or an unreachable cache is not an error for the caller (`get` resolves undefined); writes report.
 */
export class Cache {
  private constructor(private readonly redis: Redis) {}

  public static async connect(o: CacheOptions): Promise<Cache> {
    const redis = new Redis({
      host: o.host,
      port: o.port,
      username: o.username,
      password: await o.authToken(),
      tls: { ca: o.ca, servername: o.host, minVersion: 'TLSv1.2' },
      keyPrefix: `${o.prefix}:`,
      lazyConnect: true,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: false,
      // An agent's own user may run only GET, SET and DEL on its own keys: no INFO ready check.
      enableReadyCheck: false,
    });
    // Keep the server's own reason (a wrong token, an untrusted certificate) rather than "connection closed".
    let reason: Error | undefined;
    redis.on('error', (e: Error) => { reason ??= e; });
    try {
      await redis.connect();
    } catch (e) {
      redis.disconnect();
      throw new Error(`cannot connect to the cache at ${o.host}:${o.port}: ${(reason ?? (e as Error)).message}`);
    }
    return new Cache(redis);
  }

  public async get(key: string): Promise<string | undefined> {
    try {
      return (await this.redis.get(key)) ?? undefined;
    } catch {
      return undefined;
    }
  }

  public async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new Error(`ttl ${ttlSeconds} must be a whole number of seconds, at least 1`);
    await this.redis.set(key, value, 'EX', ttlSeconds);
  }

  public async delete(key: string): Promise<void> {
    await this.redis.del(key);
  }

  /** Closes the connection: QUIT when it is up, else just disconnects (a connection already lost is closed). */
  public async close(): Promise<void> {
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }
}
