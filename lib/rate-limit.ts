import { Direction, MessageKind, RateLimit } from './boundary-contract';
import { Rejection } from './contract-validator';

/**
 * A token bucket: starts full with `burst` tokens, refills at `perSecond` (fractions allowed) up to `burst`;
 * each message takes one token or is refused. Over any interval of T seconds it lets through at most
 * `burst + perSecond x T` messages, which is what the leakage bound (`lib/leakage.ts`) assumes.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /** @param now a monotonic clock in milliseconds (default `performance.now`) */
  constructor(private readonly limit: RateLimit, private readonly now: () => number = () => performance.now()) {
    if (!(limit.perSecond > 0 && Number.isFinite(limit.perSecond)) || !(Number.isInteger(limit.burst) && limit.burst >= 1)) {
      throw new Error(`a rate limit needs perSecond > 0 and an integer burst >= 1 (got ${limit.perSecond}/s, burst ${limit.burst})`);
    }
    this.tokens = limit.burst;
    this.last = now();
  }

  /** Takes a token if there is one. */
  public take(): boolean {
    const t = this.now();
    // A clock that goes backwards refills nothing.
    if (t > this.last) {
      this.tokens = Math.min(this.limit.burst, this.tokens + ((t - this.last) / 1000) * this.limit.perSecond);
      this.last = t;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token (0 when one is available now). */
  public waitMs(): number {
    const t = this.now();
    const tokens = Math.min(this.limit.burst, this.tokens + (Math.max(0, t - this.last) / 1000) * this.limit.perSecond);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / this.limit.perSecond) * 1000);
  }
}

/** The contract's rate limits for a set of kinds: one bucket per kind and direction, as the gateway enforces them. */
export class ContractRateLimiter {
  private readonly buckets = new Map<string, { kind: MessageKind; bucket: TokenBucket }>();

  constructor(kinds: readonly MessageKind[], now?: () => number) {
    for (const kind of kinds) this.buckets.set(`${kind.direction}:${kind.name}`, { kind, bucket: new TokenBucket(kind.rateLimit, now) });
  }

  /**
   * Takes a token for one message of the kind, or says why not. A kind without a bucket is `unknown-kind`:
   * the limiter never lets through what it has no limit for.
   */
  public take(direction: Direction, kindName: string): Rejection | undefined {
    const entry = this.buckets.get(`${direction}:${kindName}`);
    if (!entry) return { reason: 'unknown-kind', detail: `"${kindName.slice(0, 64)}" has no ${direction} rate limit for this customer` };
    if (entry.bucket.take()) return undefined;
    const { perSecond, burst } = entry.kind.rateLimit;
    return { reason: 'rate-limit', detail: `${kindName} ${direction}: more than ${+perSecond.toPrecision(3)}/s (burst ${burst}); next in ${entry.bucket.waitMs()} ms` };
  }
}
