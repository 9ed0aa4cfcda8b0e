// The answer cache of the stub resolver: positive answers for their TTL, negative ones
// (NXDOMAIN, NODATA) per RFC 2308, failures briefly, all clamped by the policy and bounded in
// count (least recently used evicted). Entries remember whether they were authenticated,
// so a `dnssec: required` lookup never takes an unauthenticated answer from the cache.
//
// Contract: get(key) → the entry while fresh, else undefined (and it is dropped);
// set(key, value, ttlS, negative) stores with the clamped TTL. Time comes from `now()`
// (fake clocks in tests).
export interface CacheLimits {
  maxEntries: number;
  minTtlS: number;
  maxTtlS: number;
  negativeTtlS: number;
}

interface Entry<V> { value: V; expiresAt: number }

export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(private readonly limits: CacheLimits, private readonly now: () => number = Date.now) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) { this.entries.delete(key); return undefined; }
    // Map order is the LRU order: move to the back.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** `negative`: NXDOMAIN/NODATA or a failure; its TTL is capped by negative_ttl_s. */
  set(key: string, value: V, ttlS: number, negative: boolean): void {
    const { minTtlS, maxTtlS, negativeTtlS } = this.limits;
    const ttl = negative ? Math.min(Math.max(ttlS, 0), negativeTtlS) : Math.min(Math.max(ttlS, minTtlS), maxTtlS);
    if (ttl <= 0) { this.entries.delete(key); return; }
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + ttl * 1000 });
    while (this.entries.size > this.limits.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get size(): number { return this.entries.size; }

  clear(): void { this.entries.clear(); }
}
