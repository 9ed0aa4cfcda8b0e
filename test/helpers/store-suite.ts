// One behavioural test suite for every Store implementation. `open()` gives two handles on the
// same shared state ("node A" and "node B": two RedisStore instances on one Redis, or the same
// MemoryStore twice), fresh for each test. Real time, short ttls.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { BanEvent, Store } from '../../src/store/types.js';
import { waitFor } from './procs.js';

export interface SuiteTarget {
  a: Store;
  b: Store;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storeBehaviour(name: string, open: () => Promise<SuiteTarget>): void {
  describe(`Store behaviour: ${name}`, () => {
    let t: SuiteTarget;
    let a: Store;
    let b: Store;
    // Unique names per test: the shared Redis outlives a test.
    let u: string;
    beforeEach(async () => { t = await open(); a = t.a; b = t.b; u = randomUUID().slice(0, 8); });
    afterEach(async () => { await t.close(); });

    it('token bucket: burst, then refusal with a retry-after, then refill', async () => {
      const key = `tb-${u}`;
      // 2 tokens/s: the five takes below would need > 500 ms to see a refill.
      const got = [];
      for (let i = 0; i < 5; i++) got.push(await (i % 2 ? a : b).take(key, 2, 3));
      expect(got.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
      const denied = got[3]!;
      if (!denied.allowed) {
        expect(denied.retryAfterMs).toBeGreaterThan(0);
        expect(denied.retryAfterMs).toBeLessThanOrEqual(500);
      }
      await sleep(550);
      expect((await a.take(key, 2, 3)).allowed).toBe(true);
      expect((await b.take(key, 2, 3)).allowed).toBe(false);
    });

    it('session slots: limit, which scope was hit, release, idempotent acquire', async () => {
      const scope = `peer:${u}`;
      const s = [{ scope, limit: 3 }];
      for (let i = 0; i < 3; i++) expect(await (i % 2 ? a : b).acquire(s, `${u}-${i}`, 'n1', 10_000)).toEqual({ ok: true });
      expect(await a.acquire(s, `${u}-0`, 'n1', 10_000)).toEqual({ ok: true }); // already held
      expect(await b.count(scope)).toBe(3);
      expect(await a.acquire(s, `${u}-3`, 'n1', 10_000)).toEqual({ ok: false, scope, limit: 3, count: 3 });
      expect(await b.release(`${u}-1`)).toBe(true);
      expect(await b.release(`${u}-1`)).toBe(false);
      expect(await a.release(`${u}-nope`)).toBe(false);
      expect(await a.count(scope)).toBe(2);
      expect(await a.acquire(s, `${u}-3`, 'n1', 10_000)).toEqual({ ok: true });
      expect(await a.count(`peer:${u}-other`)).toBe(0);
    });

    it('admit: call-rate token first, then session slots, in one step', async () => {
      const rate = { key: `cps:${u}`, ratePerS: 2, burst: 2 };
      const s = [{ scope: `peer:${u}`, limit: 1 }, { scope: `g-${u}`, limit: 10 }];
      expect(await a.admit(rate, s, `${u}-1`, 'n1', 10_000)).toEqual({ ok: true });
      // The token is spent even though the session limit refuses.
      expect(await b.admit(rate, s, `${u}-2`, 'n1', 10_000)).toEqual({ ok: false, rateLimited: false, scope: `peer:${u}`, limit: 1, count: 1 });
      const r = await a.admit(rate, s, `${u}-3`, 'n1', 10_000);
      expect(r.ok).toBe(false);
      if (!r.ok && r.rateLimited) {
        expect(r.retryAfterMs).toBeGreaterThan(0);
        expect(r.retryAfterMs).toBeLessThanOrEqual(500);
      } else {
        throw new Error(`expected a rate refusal, got ${JSON.stringify(r)}`);
      }
      expect(await a.count(`g-${u}`)).toBe(1); // refused attempts took no slot
      // Without a rate it is acquire().
      expect(await b.release(`${u}-1`)).toBe(true);
      expect(await b.admit(undefined, s, `${u}-4`, 'n1', 10_000)).toEqual({ ok: true });
      // admit's buckets are not take()'s.
      expect((await a.take(`cps:${u}`, 2, 2)).allowed).toBe(true);
    });

    it('session slots: all scopes or none', async () => {
      const peer = `peer:${u}`;
      const global = `global-${u}`;
      const s = [{ scope: peer, limit: 5 }, { scope: global, limit: 2 }];
      expect((await a.acquire(s, `${u}-1`, 'n1', 10_000)).ok).toBe(true);
      expect((await b.acquire([{ scope: `peer:${u}-x` }, { scope: global, limit: 2 }], `${u}-2`, 'n2', 10_000)).ok).toBe(true);
      const r = await a.acquire(s, `${u}-3`, 'n1', 10_000);
      expect(r).toEqual({ ok: false, scope: global, limit: 2, count: 2 });
      expect(await a.count(peer)).toBe(1); // the peer slot was not taken either
      expect(await b.count(`peer:${u}-x`)).toBe(1); // a scope without limit still counts
    });

    it('concurrent acquires from two nodes never exceed the limit', async () => {
      const scope = `peer:${u}`;
      const s = [{ scope, limit: 25 }, { scope: `g-${u}`, limit: 1000 }];
      const results = await Promise.all(Array.from({ length: 300 }, (_, i) =>
        (i % 2 ? a : b).acquire(s, `${u}-${i}`, i % 2 ? 'na' : 'nb', 10_000)));
      expect(results.filter((r) => r.ok).length).toBe(25);
      expect(await a.count(scope)).toBe(25);
      expect(await b.count(`g-${u}`)).toBe(25);
      // Release some and race again: still exactly at the limit.
      const held = results.map((r, i) => (r.ok ? `${u}-${i}` : null)).filter((x): x is string => x !== null);
      await Promise.all(held.slice(0, 10).map((id, i) => (i % 2 ? a : b).release(id)));
      const again = await Promise.all(Array.from({ length: 100 }, (_, i) =>
        (i % 2 ? a : b).acquire(s, `${u}-again-${i}`, 'na', 10_000)));
      expect(again.filter((r) => r.ok).length).toBe(10);
      expect(await b.count(scope)).toBe(25);
    });

    it('sessions expire unless their node keeps them alive; capacity returns', async () => {
      const scope = `peer:${u}`;
      const s = [{ scope, limit: 4 }];
      const nodeA = `a-${u}`; // will "crash" (never keeps alive)
      const nodeB = `b-${u}`; // keeps alive
      for (let i = 0; i < 2; i++) expect((await a.acquire(s, `${u}-a${i}`, nodeA, 400)).ok).toBe(true);
      for (let i = 0; i < 2; i++) expect((await b.acquire(s, `${u}-b${i}`, nodeB, 400)).ok).toBe(true);
      expect((await b.acquire(s, `${u}-b9`, nodeB, 400)).ok).toBe(false);
      for (let i = 0; i < 6; i++) {
        await sleep(100);
        expect(await b.keepAlive(nodeB, 400)).toBe(2);
      }
      // 600 ms later: node A's two are gone, node B's two are alive.
      expect(await a.count(scope)).toBe(2);
      expect((await b.acquire(s, `${u}-b2`, nodeB, 400)).ok).toBe(true);
      expect((await b.acquire(s, `${u}-b3`, nodeB, 400)).ok).toBe(true);
      expect((await b.acquire(s, `${u}-b4`, nodeB, 400)).ok).toBe(false);
      expect(await a.release(`${u}-a0`)).toBe(false); // expired, nothing to release
      expect(await a.keepAlive(nodeA, 400)).toBe(0);
    });

    it('reconcileOnStart drops only what this node left behind', async () => {
      const scope = `peer:${u}`;
      const s = [{ scope, limit: 10 }, { scope: `g-${u}` }];
      for (let i = 0; i < 3; i++) await a.acquire(s, `${u}-a${i}`, `a-${u}`, 60_000);
      for (let i = 0; i < 2; i++) await b.acquire(s, `${u}-b${i}`, `b-${u}`, 60_000);
      expect(await b.count(scope)).toBe(5);
      expect(await a.reconcileOnStart(`a-${u}`)).toBe(3);
      expect(await a.count(scope)).toBe(2);
      expect(await a.count(`g-${u}`)).toBe(2);
      expect(await a.release(`${u}-a1`)).toBe(false);
      expect(await b.release(`${u}-b1`)).toBe(true);
      expect(await a.reconcileOnStart(`a-${u}`)).toBe(0);
    });

    it('replay cache: first time only, across nodes, until the ttl passes', async () => {
      const k = `jti-${u}`;
      expect(await a.seenOnce(k, 300)).toBe(true);
      expect(await b.seenOnce(k, 300)).toBe(false);
      expect(await a.seenOnce(k, 300)).toBe(false);
      expect(await b.seenOnce(`${k}-other`, 300)).toBe(true);
      await sleep(350);
      expect(await b.seenOnce(k, 300)).toBe(true);
    });

    it('bans reach every node, list with remaining ttl, unban, expire', async () => {
      const seenA: BanEvent[] = [];
      const seenB: BanEvent[] = [];
      const offA = a.onBanChange((e) => seenA.push(e));
      const offB = b.onBanChange((e) => seenB.push(e));
      const addr = `192.0.2.${Math.floor(Math.random() * 200) + 1}-${u}`;
      await a.ban(addr, 60_000, 'test');
      await waitFor(() => seenB.some((e) => e.type === 'ban' && e.address === addr), 2000, 10, 'ban event on B');
      const ev = seenB.find((e) => e.type === 'ban' && e.address === addr);
      expect(ev).toMatchObject({ type: 'ban', address: addr, ttlMs: 60_000, reason: 'test' });
      await waitFor(() => seenA.some((e) => e.type === 'ban' && e.address === addr), 2000, 10, 'ban event on A');
      const listed = (await b.listBans()).find((x) => x.address === addr);
      expect(listed?.reason).toBe('test');
      expect(listed!.ttlMs).toBeGreaterThan(59_000);
      expect(listed!.ttlMs).toBeLessThanOrEqual(60_000);
      expect(await b.unban(addr)).toBe(true);
      await waitFor(() => seenA.some((e) => e.type === 'unban' && e.address === addr), 2000, 10, 'unban event on A');
      expect((await a.listBans()).some((x) => x.address === addr)).toBe(false);
      expect(await b.unban(addr)).toBe(false);
      await a.ban(`${addr}-short`, 150, 'short');
      expect((await b.listBans()).some((x) => x.address === `${addr}-short`)).toBe(true);
      await sleep(200);
      expect((await b.listBans()).some((x) => x.address === `${addr}-short`)).toBe(false);
      offA(); offB();
    });

    it('strikes within the window ban the source, on every node', async () => {
      const src = `198.51.100.7-${u}`;
      const events: BanEvent[] = [];
      const off = b.onBanChange((e) => events.push(e));
      const policy = { threshold: 3, windowMs: 5000, banMs: 30_000 };
      expect(await a.strike(src, 'malformed', policy)).toEqual({ count: 1, banned: false });
      expect(await b.strike(src, 'refused', policy)).toEqual({ count: 2, banned: false });
      expect(await b.strike(`${src}-other`, 'refused', policy)).toEqual({ count: 1, banned: false });
      expect(await a.strike(src, 'tls', policy)).toEqual({ count: 3, banned: true });
      await waitFor(() => events.some((e) => e.type === 'ban' && e.address === src), 2000, 10, 'strike ban event');
      const ban = (await b.listBans()).find((x) => x.address === src);
      expect(ban?.reason).toMatch(/strikes: 3 .* tls/);
      // Strikes restart after a ban; old strikes leave the window.
      expect(await a.strike(src, 'malformed', policy)).toEqual({ count: 1, banned: false });
      const quick = { threshold: 3, windowMs: 150, banMs: 1000 };
      await a.strike(`${src}-w`, 'x', quick);
      await a.strike(`${src}-w`, 'x', quick);
      await sleep(200);
      expect(await b.strike(`${src}-w`, 'x', quick)).toEqual({ count: 1, banned: false });
      off();
    });

    it('health reports up', async () => {
      expect(a.health().state).toBe('up');
      expect(b.health().kind).toBe(a.kind);
    });
  });
}
