// The limits stage on a MemoryStore with a fake clock: call rate, sessions per peer and
// global, refusals and their metrics, per-source rate, strikes that ban into the real Shield.
import { describe, it, expect } from 'vitest';
import { register } from 'prom-client';
import { MemoryStore } from '../../../src/store/memory.js';
import { RedisStore } from '../../../src/store/redis.js';
import { freePort } from '../../helpers/procs.js';
import { syncBans } from '../../../src/store/bans.js';
import { Limits, GLOBAL_SCOPE, peerScope } from '../../../src/sbc/limits/index.js';
import { GlobalLimitsSchema, PeerLimitsSchema } from '../../../src/sbc/limits/schema.js';
import { Shield } from '../../../src/engine/shield/index.js';
import { systemClock, type Clock } from '../../../src/engine/transport/types.js';

async function refusals(peer: string, reason: string): Promise<number> {
  const m = register.getSingleMetric('peergate_limit_refusals_total')!;
  return (await m.get()).values.find((v) => v.labels.peer === peer && v.labels.reason === reason)?.value ?? 0;
}

/** An ordinary INVITE as the b2bua's RequestView shows it. */
const VIEW = { method: 'INVITE', uri: 'sip:+4420@x', callId: 'c', protocol: 'udp', sourceAddress: '127.0.0.2', sourcePort: 5060, body: '', get: () => undefined, getAll: () => [] };

function setup() {
  const clock = { t: 1_000_000 };
  const store = new MemoryStore({ now: () => clock.t });
  const limits = new Limits({ store, nodeId: 'n1', now: () => clock.t });
  return { clock, store, limits };
}

describe('limits stage', () => {
  it('call rate: burst, then 503 with Retry-After from the bucket, then refill', async () => {
    const { clock, limits } = setup();
    const peer = PeerLimitsSchema.parse({ cps: 2, burst: 3 });
    const global = GlobalLimitsSchema.parse({});
    const before = await refusals('pa', 'cps');
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await limits.admit('pa', { peer, global }));
    expect(got.slice(0, 3).every((a) => a.admit)).toBe(true);
    expect(got[3]).toEqual({ admit: false, status: 503, retryAfterS: 1, reason: 'cps' });
    expect(await refusals('pa', 'cps')).toBe(before + 1);
    clock.t += 500; // 2/s → one token
    expect((await limits.admit('pa', { peer, global })).admit).toBe(true);
    expect((await limits.admit('pa', { peer, global })).admit).toBe(false);
    // Another peer has its own bucket.
    expect((await limits.admit('pb', { peer, global })).admit).toBe(true);
    // A slow rate gives a longer Retry-After.
    const slow = PeerLimitsSchema.parse({ cps: 0.2, burst: 1 });
    expect((await limits.admit('ps', { peer: slow, global })).admit).toBe(true);
    expect(await limits.admit('ps', { peer: slow, global })).toMatchObject({ admit: false, retryAfterS: 5, reason: 'cps' });
  });

  it('sessions per peer and global; release frees; release is idempotent', async () => {
    const { store, limits } = setup();
    const peer = PeerLimitsSchema.parse({ sessions: 2 });
    const global = GlobalLimitsSchema.parse({ sessions: 3, retry_after_s: 9 });
    const a1 = await limits.admit('pa', { peer, global });
    const a2 = await limits.admit('pa', { peer, global });
    expect(await limits.admit('pa', { peer, global })).toEqual({ admit: false, status: 503, retryAfterS: 9, reason: 'sessions' });
    const b1 = await limits.admit('pb', { peer, global });
    expect(b1.admit).toBe(true);
    expect(await limits.admit('pb', { peer, global })).toMatchObject({ admit: false, reason: 'global_sessions' });
    // Core-side calls count against the global limit only.
    expect(await limits.admit(undefined, { global })).toMatchObject({ admit: false, reason: 'global_sessions' });
    expect(await store.count(peerScope('pa'))).toBe(2);
    expect(await store.count(GLOBAL_SCOPE)).toBe(3);
    if (!a1.admit || !a2.admit) throw new Error('expected admits');
    await a1.release();
    await a1.release();
    expect(await store.count(GLOBAL_SCOPE)).toBe(2);
    const core = await limits.admit(undefined, { global });
    expect(core.admit).toBe(true);
    expect(await store.count(peerScope('pa'))).toBe(1);
  });

  it('admitCall speaks the b2bua stage interface', async () => {
    const { store, limits } = setup();
    const policy = { limits: GlobalLimitsSchema.parse({ sessions: 1 }) } as never;
    const from = { kind: 'peer', peer: { id: 'pa', limits: PeerLimitsSchema.parse({}) } } as never;
    const r1 = await limits.admitCall(policy, from, VIEW);
    expect(r1.ok).toBe(true);
    const r2 = await limits.admitCall(policy, from, VIEW);
    expect(r2).toEqual({ ok: false, refusal: { status: 503, reason: 'Service Unavailable', label: 'limit_global_sessions', retryAfterS: 5 } });
    if (r1.ok) r1.release();
    await new Promise((r) => setImmediate(r));
    expect(await store.count(GLOBAL_SCOPE)).toBe(0);
  });

  it('an unreachable store refuses with store_unavailable, fast, instead of throwing', async () => {
    // A RedisStore pointed at a loopback port nothing listens on.
    const dead = new RedisStore({ url: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 100, reconnectMs: 1000 });
    const limits = new Limits({ store: dead, nodeId: 'x' });
    for (const peer of [{ cps: 1 }, {}]) {
      const t0 = performance.now();
      expect(await limits.admit('pa', { peer, global: {} })).toMatchObject({ admit: false, status: 503, reason: 'store_unavailable' });
      expect(performance.now() - t0).toBeLessThan(250);
    }
    expect(dead.health().state).toBe('down');
    await dead.close();
  });

  it('keeps its sessions alive on a timer and reconciles leftovers on start', async () => {
    const store = new MemoryStore();
    // A previous run of node n1 left two sessions.
    await store.acquire([{ scope: 'peer:pa' }, { scope: GLOBAL_SCOPE }], 'old1', 'n1', 60_000);
    await store.acquire([{ scope: 'peer:pa' }, { scope: GLOBAL_SCOPE }], 'old2', 'n1', 60_000);
    await store.acquire([{ scope: GLOBAL_SCOPE }], 'other', 'n2', 60_000);
    const limits = new Limits({ store, nodeId: 'n1', sessionTtlMs: 300 });
    expect(await limits.start()).toBe(2);
    expect(await store.count(GLOBAL_SCOPE)).toBe(1);
    const a = await limits.admit('pa', { peer: {}, global: { session_ttl_s: 0.3 } });
    expect(a.admit).toBe(true);
    await new Promise((r) => setTimeout(r, 700)); // > 2 ttl: alive only through the timer
    expect(await store.count(peerScope('pa'))).toBe(1);
    limits.stop();
    await new Promise((r) => setTimeout(r, 450));
    expect(await store.count(peerScope('pa'))).toBe(0);
  });

  it('per-source packet rate (external engine): drops and counts', async () => {
    const { clock, limits } = setup();
    let ok = 0;
    for (let i = 0; i < 50; i++) if (limits.checkSource('203.0.113.5', 10, 'pa')) ok++;
    expect(ok).toBe(10);
    expect(limits.checkSource('203.0.113.6', 10, 'pa')).toBe(true);
    clock.t += 100;
    expect(limits.checkSource('203.0.113.5', 10, 'pa')).toBe(true);
    expect(limits.checkSource('203.0.113.5', 10, 'pa')).toBe(false);
    expect(limits.checkSource('203.0.113.5', undefined)).toBe(true);
    const m = register.getSingleMetric('peergate_limit_source_drops_total')!;
    expect((await m.get()).values.find((v) => v.labels.peer === 'pa')?.value).toBeGreaterThanOrEqual(41);
  });

  it('strikes past the threshold ban the source in the engine shield; off without policy', async () => {
    const { clock, store, limits } = setup();
    const shieldClock: Clock = { ...systemClock, now: () => clock.t };
    const shield = new Shield({}, shieldClock);
    const sync = await syncBans(store, shield);
    const global = GlobalLimitsSchema.parse({ strikes: { threshold: 3, window_s: 10, ban_s: 60 } });
    expect(await limits.strike('198.51.100.9', 'malformed', GlobalLimitsSchema.parse({}))).toBeUndefined();
    expect(await limits.strike('198.51.100.9', 'malformed', global)).toEqual({ count: 1, banned: false });
    expect(await limits.strike('198.51.100.9', 'tls_handshake', global)).toEqual({ count: 2, banned: false });
    expect(shield.admit('198.51.100.9')).toBe(true);
    expect(await limits.strike('198.51.100.9', 'identity', global)).toEqual({ count: 3, banned: true });
    expect(shield.admit('198.51.100.9')).toBe(false);
    expect(shield.admit('198.51.100.10')).toBe(true);
    clock.t += 61_000;
    expect(shield.admit('198.51.100.9')).toBe(true);
    // An admin unban reaches the shield too.
    await store.ban('198.51.100.11', 60_000, 'admin');
    expect(shield.isBanned('198.51.100.11')).toBe(true);
    await store.unban('198.51.100.11');
    expect(shield.isBanned('198.51.100.11')).toBe(false);
    sync.stop();
    shield.close();
  });
});

describe('strike budget', () => {
  it('sends at most maxStrikesPerS strikes to the store; the rest are only counted', async () => {
    const clock = { t: 0 };
    const store = new MemoryStore({ now: () => clock.t });
    const limits = new Limits({ store, nodeId: 'n1', now: () => clock.t, maxStrikesPerS: 10 });
    const global = GlobalLimitsSchema.parse({ strikes: { threshold: 1000, window_s: 60, ban_s: 60 } });
    let recorded = 0;
    for (let i = 0; i < 100; i++) if (await limits.strike(`10.9.0.${i}`, 'flood', global)) recorded++;
    expect(recorded).toBe(10);
    const m = register.getSingleMetric('peergate_strikes_unrecorded_total')!;
    expect((await m.get()).values.find((v) => v.labels.kind === 'flood')?.value).toBe(90);
    clock.t += 1000;
    expect(await limits.strike('10.9.1.1', 'flood', global)).toEqual({ count: 1, banned: false });
  });
});

describe('limits policy schema', () => {
  it('has defaults and rejects nonsense', () => {
    expect(GlobalLimitsSchema.parse({})).toEqual({ session_ttl_s: 30, retry_after_s: 5, priority: { emergency_numbers: [], reserved_share: 0.1, identity_exempt: false } });
    expect(GlobalLimitsSchema.parse({ strikes: {} }).strikes).toEqual({ threshold: 20, window_s: 60, ban_s: 600, ban_peers: false, by_tls_identity: true });
    expect(() => GlobalLimitsSchema.parse({ sessions: -1 })).toThrow();
    expect(() => GlobalLimitsSchema.parse({ bogus: 1 })).toThrow();
    expect(() => PeerLimitsSchema.parse({ cps: 0 })).toThrow();
    expect(() => PeerLimitsSchema.parse({ sessions: 1.5 })).toThrow();
    expect(PeerLimitsSchema.parse({ resource_priority: ['ETS', 'wps'] }).resource_priority).toEqual(['ets', 'wps']);
    expect(() => PeerLimitsSchema.parse({ resource_priority: ['ets 0'] })).toThrow(/namespace/);
    expect(() => GlobalLimitsSchema.parse({ priority: { reserved_share: 1.5 } })).toThrow();
    expect(() => GlobalLimitsSchema.parse({ priority: { emergency_numbers: ['police'] } })).toThrow(/digit/);
  });
});
