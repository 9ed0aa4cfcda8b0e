// MemoryStore: the shared behavioural suite (real time), plus what only a fake clock shows.
import { describe, it, expect } from 'vitest';
import { MemoryStore } from '../../../src/store/memory.js';
import { TokenBuckets } from '../../../src/store/bucket.js';
import { storeBehaviour } from '../../helpers/store-suite.js';

storeBehaviour('MemoryStore', async () => {
  const s = new MemoryStore();
  return { a: s, b: s, close: () => s.close() };
});

describe('MemoryStore with a fake clock', () => {
  it('token bucket refills at the configured rate, to the burst and no further', async () => {
    let now = 1_000_000;
    const s = new MemoryStore({ now: () => now });
    let allowed = 0;
    // 10 s at 1 ms steps, rate 50/s, burst 5: 5 + 10 × 50 = 505 (±1 for the boundary).
    for (let i = 0; i < 10_000; i++) { if ((await s.take('k', 50, 5)).allowed) allowed++; now += 1; }
    expect(allowed).toBeGreaterThanOrEqual(504);
    expect(allowed).toBeLessThanOrEqual(506);
    now += 60_000; // a long idle refills only to the burst
    let burst = 0;
    while ((await s.take('k', 50, 5)).allowed && burst < 100) burst++;
    expect(burst).toBe(5);
    const r = await s.take('k', 50, 5);
    expect(r).toEqual({ allowed: false, retryAfterMs: 20 });
  });

  it('session expiry follows keepAlive exactly', async () => {
    let now = 0;
    const s = new MemoryStore({ now: () => now });
    const sc = [{ scope: 'p', limit: 2 }];
    await s.acquire(sc, 's1', 'n1', 1000);
    await s.acquire(sc, 's2', 'n2', 1000);
    now = 900;
    expect(await s.keepAlive('n1', 1000)).toBe(1);
    now = 1000; // s2 expires at exactly 1000
    expect(await s.count('p')).toBe(1);
    expect(s.has('s1')).toBe(true);
    expect(s.has('s2')).toBe(false);
    now = 1899;
    expect(await s.count('p')).toBe(1);
    now = 1900;
    expect(await s.count('p')).toBe(0);
    expect((await s.acquire(sc, 's3', 'n1', 1000)).ok).toBe(true);
  });

  it('replay cache is bounded', async () => {
    const s = new MemoryStore({ maxReplayKeys: 100 });
    for (let i = 0; i < 1000; i++) expect(await s.seenOnce(`k${i}`, 60_000)).toBe(true);
    // the newest are still remembered
    expect(await s.seenOnce('k999', 60_000)).toBe(false);
    expect(await s.seenOnce('k0', 60_000)).toBe(true); // evicted long ago
  });

  it('strike windows slide and listeners that throw do not break bans', async () => {
    let now = 0;
    const s = new MemoryStore({ now: () => now });
    s.onBanChange(() => { throw new Error('listener bug'); });
    const p = { threshold: 3, windowMs: 1000, banMs: 5000 };
    await s.strike('x', 'a', p); now = 500;
    await s.strike('x', 'a', p); now = 1000; // the first left the window (<= now - window)
    expect(await s.strike('x', 'a', p)).toEqual({ count: 2, banned: false });
    now = 1200;
    expect(await s.strike('x', 'a', p)).toEqual({ count: 3, banned: true });
    expect((await s.listBans()).map((b) => [b.address, b.ttlMs])).toEqual([['x', 5000]]);
    now = 6200;
    expect(await s.listBans()).toEqual([]);
  });
});

describe('TokenBuckets', () => {
  it('stays bounded under many sources and evicts full buckets first', () => {
    const tb = new TokenBuckets(1000);
    for (let i = 0; i < 5000; i++) tb.take(`10.0.${i >> 8}.${i & 255}`, 10, 2, 0);
    expect(tb.size).toBeLessThanOrEqual(1000);
    // A busy source keeps its state when idle ones are evicted.
    const b = new TokenBuckets(10);
    b.take('busy', 1, 1, 0);
    expect(b.take('busy', 1, 1, 0)).toBeGreaterThan(0);
    for (let i = 0; i < 9; i++) b.take(`idle${i}`, 1000, 1, 0);
    b.take('new', 1, 1, 500); // idle ones are full after 1 ms; busy is not (needs 1000 ms)
    expect(b.take('busy', 1, 1, 500)).toBeGreaterThan(0);
  });
});
