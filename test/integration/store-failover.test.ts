// Redis outages against a real redis-server: killed, restarted empty, and hung (SIGSTOP).
// Calls must fail within the timeout (never hang), on_failure must apply, and the store must
// recover by itself when Redis is back.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { randomUUID } from 'node:crypto';
import { register } from 'prom-client';
import { RedisStore } from '../../src/store/redis.js';
import { ResilientStore } from '../../src/store/resilient.js';
import { StoreUnavailableError, type BanEvent } from '../../src/store/types.js';
import { Limits } from '../../src/sbc/limits/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { stopAll, waitFor } from '../helpers/procs.js';

const TIMEOUT = 150;

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = register.getSingleMetric(name);
  if (!m) return NaN;
  const v = (await m.get()).values.filter((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v.reduce((s, x) => s + x.value, 0);
}

/** Run `fn` and return how long it took, with its outcome. */
async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = performance.now();
  try { const value = await fn(); return { ms: performance.now() - t0, value }; }
  catch (error) { return { ms: performance.now() - t0, error }; }
}

let redis: TestRedis;
const open: { close(): Promise<void> }[] = [];
beforeEach(async () => { redis = await startRedis(); });
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  try { redis.resume(); } catch { /* not paused or gone */ }
  await stopAll();
});

function store(): RedisStore {
  const s = new RedisStore({ url: redis.url, timeoutMs: TIMEOUT, reconnectMs: 100 });
  open.push(s);
  return s;
}

describe('Redis outage', () => {
  it('killed: calls fail fast with StoreUnavailableError, health and metrics say down, recovery without restart', async () => {
    const s = store();
    expect(await s.ready(3000)).toBe(true);
    const resyncs: BanEvent[] = [];
    s.onBanChange((e) => { if (e.type === 'resync') resyncs.push(e); });
    expect((await s.acquire([{ scope: 'peer:p', limit: 5 }], 'before', 'n1', 30_000)).ok).toBe(true);
    expect(await metric('peergate_store_up', { kind: 'redis' })).toBe(1);
    const errorsBefore = await metric('peergate_store_errors_total', { kind: 'redis' });

    await redis.stop(true); // SIGKILL: no goodbye on the socket
    for (let i = 0; i < 20; i++) {
      const r = await timed(() => s.acquire([{ scope: 'peer:p', limit: 5 }], `during-${i}`, 'n1', 30_000));
      expect(r.error).toBeInstanceOf(StoreUnavailableError);
      expect(r.ms).toBeLessThan(TIMEOUT + 100);
    }
    const t = await timed(() => s.take('k', 10, 10));
    expect(t.error).toBeInstanceOf(StoreUnavailableError);
    expect(t.ms).toBeLessThan(TIMEOUT + 100);
    expect(s.health().state).toBe('down');
    expect(s.health().lastError).toBeTruthy();
    expect(await metric('peergate_store_up', { kind: 'redis' })).toBe(0);
    expect(await metric('peergate_store_errors_total', { kind: 'redis' })).toBeGreaterThanOrEqual(errorsBefore + 21);

    await redis.restart(); // empty: no persistence
    await waitFor(() => s.health().state === 'up', 5000, 20, 'store up again');
    expect(await metric('peergate_store_up', { kind: 'redis' })).toBe(1);
    expect((await s.acquire([{ scope: 'peer:p', limit: 5 }], 'after', 'n1', 30_000)).ok).toBe(true);
    expect(await s.count('peer:p')).toBe(1);
    await waitFor(() => resyncs.length >= 1, 5000, 20, 'ban resync after resubscribe');
  });

  it('hung (SIGSTOP): every call is bounded by the timeout; resumes by itself', async () => {
    const s = store();
    expect(await s.ready(3000)).toBe(true);
    redis.pause();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      timed(() => s.acquire([{ scope: 'peer:h', limit: 5 }], `hung-${i}`, 'n1', 30_000))));
    for (const r of results) {
      expect(r.error).toBeInstanceOf(StoreUnavailableError);
      expect(r.ms).toBeLessThan(TIMEOUT + 150);
    }
    expect((await timed(() => s.seenOnce('x', 1000))).ms).toBeLessThan(TIMEOUT + 150);
    expect(s.health().state).toBe('down');
    redis.resume();
    // The timed-out acquires ran late in Redis; their compensating releases ran right after.
    await waitFor(async () => (await s.count('peer:h')) === 0, 5000, 50, 'no phantom sessions');
    expect((await s.acquire([{ scope: 'peer:h', limit: 5 }], `resumed-${randomUUID()}`, 'n1', 30_000)).ok).toBe(true);
    expect(s.health().state).toBe('up');
  });
});

describe('Redis down at start', () => {
  it('a node started while Redis is down fails fast, then works (bans too) once Redis is up', async () => {
    await redis.stop();
    const a = store();
    const b = store();
    const r = await timed(() => a.take('k', 1, 1));
    expect(r.error).toBeInstanceOf(StoreUnavailableError);
    expect(r.ms).toBeLessThan(TIMEOUT + 100);
    expect(a.health().state).toBe('down');
    await redis.restart();
    expect(await a.ready(5000)).toBe(true);
    expect(await b.ready(5000)).toBe(true);
    const events: BanEvent[] = [];
    b.onBanChange((e) => events.push(e));
    await a.ban('192.0.2.77', 10_000, 'late start');
    await waitFor(() => events.some((e) => e.type === 'ban' && e.address === '192.0.2.77'), 3000, 20, 'ban event after late start');
  });
});

describe('Redis restarted empty', () => {
  it('each node puts its live sessions back within a keepalive period', async () => {
    const s = store();
    expect(await s.ready(3000)).toBe(true);
    const limits = new Limits({ store: s, nodeId: 'restore-1', sessionTtlMs: 900 });
    await limits.start();
    const global = { sessions: 100 };
    const held = await Promise.all([1, 2, 3].map(() => limits.admit('pr', { peer: { sessions: 5 }, global })));
    expect(held.every((h) => h.admit)).toBe(true);
    const gone = await limits.admit('pr', { peer: { sessions: 5 }, global });
    if (gone.admit) await gone.release(); // released: must not come back
    expect(await s.count('peer:pr')).toBe(3);
    await redis.restart();
    await waitFor(() => s.health().state === 'up', 5000, 20, 'store up again');
    await waitFor(async () => (await s.count('peer:pr')) === 3, 3000, 50, 'sessions restored');
    expect(await s.count('global')).toBe(3);
    // And the limit holds with the restored sessions counted.
    const more = await Promise.all([1, 2, 3].map(() => limits.admit('pr', { peer: { sessions: 5 }, global })));
    expect(more.filter((m) => m.admit).length).toBe(2);
    limits.stop();
  });
});

describe('on_failure through the limits stage', () => {
  const peer = { cps: 1000, burst: 1000, sessions: 2 };
  const global = { sessions: 100, retry_after_s: 7, session_ttl_s: 30 };

  it('fail_open: limits hold locally while Redis is down, and Redis is used again when it returns', async () => {
    const shared = store();
    expect(await shared.ready(3000)).toBe(true);
    const rs = new ResilientStore(shared, { onFailure: 'fail_open', probeMs: 200 });
    const limits = new Limits({ store: rs, nodeId: 'open-1' });

    const held = await limits.admit('pa', { peer, global });
    expect(held.admit).toBe(true);
    expect(await shared.count('peer:pa')).toBe(1);

    await redis.stop(true);
    const r1 = await timed(() => limits.admit('pa', { peer, global }));
    expect(r1.value?.admit).toBe(true); // served locally
    expect(r1.ms).toBeLessThan(TIMEOUT + 100);
    const r2 = await timed(() => limits.admit('pa', { peer, global }));
    expect(r2.value?.admit).toBe(true);
    const r3 = await timed(() => limits.admit('pa', { peer, global }));
    expect(r3.value).toMatchObject({ admit: false, status: 503, reason: 'sessions', retryAfterS: 7 }); // local limit: 2
    expect(r3.ms).toBeLessThan(TIMEOUT + 100);
    expect(await metric('peergate_store_fallback_total', { op: 'admit' })).toBeGreaterThanOrEqual(3);
    if (r1.value?.admit) await r1.value.release(); // released locally
    expect((await limits.admit('pa', { peer, global })).admit).toBe(true);

    await redis.restart();
    await waitFor(() => shared.health().state === 'up', 5000, 20, 'store up again');
    const back = await limits.admit('pa', { peer, global });
    expect(back.admit).toBe(true);
    expect(await shared.count('peer:pa')).toBe(1); // Redis restarted empty; the new call is in it
    if (held.admit) await held.release(); // a session from before the outage: harmless
    await rs.local.close();
  });

  it('fail_closed: 503 store_unavailable at once while Redis is down, admits again when it returns', async () => {
    const shared = store();
    expect(await shared.ready(3000)).toBe(true);
    const limits = new Limits({ store: new ResilientStore(shared, { onFailure: 'fail_closed', probeMs: 200 }), nodeId: 'closed-1' });
    expect((await limits.admit('pc', { peer, global })).admit).toBe(true);
    await redis.stop(true);
    const before = await metric('peergate_limit_refusals_total', { peer: 'pc', reason: 'store_unavailable' });
    for (let i = 0; i < 10; i++) {
      const r = await timed(() => limits.admit('pc', { peer, global }));
      expect(r.value).toEqual({ admit: false, status: 503, retryAfterS: 7, reason: 'store_unavailable' });
      expect(r.ms).toBeLessThan(TIMEOUT + 100);
    }
    expect(await metric('peergate_limit_refusals_total', { peer: 'pc', reason: 'store_unavailable' })).toBe(before + 10);
    await redis.restart();
    await waitFor(async () => (await limits.admit('pc', { peer, global })).admit, 5000, 50, 'admits again');
  });
});
