import { MessageKind } from '../../lib/boundary-contract';

/**
 * One token bucket per kind and direction, sized by the contract's `rateLimit` (tokens per second, burst):
 * what bounds the information that can leave (or enter) through the link per second.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number; perMs: number; burst: number }>();

  constructor(kinds: readonly MessageKind[], scale = 1, private readonly now: () => number = () => performance.now()) {
    if (!(scale > 0)) throw new Error(`rate scale ${scale} must be a positive number`);
    for (const k of kinds) {
      const { perSecond, burst } = k.rateLimit;
      this.buckets.set(`${k.direction}:${k.name}`, { tokens: burst * scale, at: this.now(), perMs: (perSecond * scale) / 1000, burst: burst * scale });
    }
  }

  /** Takes one token for a message of `kind` in `direction` ('out' or 'in'); false when the bucket is empty. */
  public take(direction: 'out' | 'in', kind: string): boolean {
    const b = this.buckets.get(`${direction === 'out' ? 'customer-to-vendor' : 'vendor-to-customer'}:${kind}`);
    if (!b) return false;
    const t = this.now();
    b.tokens = Math.min(b.burst, b.tokens + (t - b.at) * b.perMs);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
