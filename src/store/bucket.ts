// In-process token buckets: the MemoryStore's rate limits, and the app-side per-source
// packets-per-second check (runs per request, so synchronous and allocation-light).

interface Bucket { tokens: number; ts: number; fullAfterMs: number }

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  /** `maxKeys` bounds memory under a flood of spoofed sources. */
  constructor(private readonly maxKeys = 100_000) {}

  get size(): number { return this.buckets.size; }

  /**
   * Take one token. Returns 0 when allowed, otherwise the ms until a token is available.
   * `now` is in ms (monotonic or wall, but the same source for every call).
   */
  take(key: string, ratePerS: number, burst: number, now: number): number {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      b = { tokens: burst, ts: now, fullAfterMs: (burst * 1000) / ratePerS };
      this.buckets.set(key, b);
    } else {
      b.fullAfterMs = (burst * 1000) / ratePerS;
      const elapsed = now - b.ts;
      if (elapsed > 0) {
        const t = b.tokens + (elapsed * ratePerS) / 1000;
        b.tokens = t > burst ? burst : t;
        b.ts = now;
      }
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / ratePerS));
  }

  delete(key: string): void { this.buckets.delete(key); }
  clear(): void { this.buckets.clear(); }

  /**
   * Make room: a bucket idle long enough to be full again is the same as no bucket, so drop
   * those first; if a flood keeps every bucket busy, drop the oldest-inserted tenth.
   */
  private evict(now: number): void {
    for (const [k, b] of this.buckets) if (now - b.ts >= b.fullAfterMs) this.buckets.delete(k);
    if (this.buckets.size < this.maxKeys) return;
    let drop = Math.ceil(this.maxKeys / 10);
    for (const k of this.buckets.keys()) {
      if (drop-- <= 0) break;
      this.buckets.delete(k);
    }
  }
}
