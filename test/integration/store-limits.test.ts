// The limits stage on two "nodes" (two Limits, two RedisStores) sharing one real redis-server:
// a peer's concurrent sessions hold across the pool, a crashed node's capacity comes back within
// the session ttl, and a restarted node reconciles what it left behind.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { RedisStore } from '../../src/store/redis.js';
import { Limits, peerScope } from '../../src/sbc/limits/index.js';
import { GlobalLimitsSchema, PeerLimitsSchema } from '../../src/sbc/limits/schema.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { stopAll, waitFor } from '../helpers/procs.js';

let redis: TestRedis;
beforeAll(async () => { redis = await startRedis(); });
afterAll(() => stopAll());

async function node(id: string): Promise<{ limits: Limits; store: RedisStore }> {
  const store = new RedisStore({ url: redis.url, timeoutMs: 1000 });
  expect(await store.ready(3000)).toBe(true);
  const limits = new Limits({ store, nodeId: id, sessionTtlMs: 1000 });
  await limits.start();
  return { limits, store };
}

describe('limits across a pool on one Redis', () => {
  const peer = PeerLimitsSchema.parse({ sessions: 10, cps: 1000, burst: 1000 });
  const global = GlobalLimitsSchema.parse({ sessions: 1000, session_ttl_s: 1 });

  it('sessions hold across nodes; a crashed node\'s capacity returns; a restarted node reconciles', async () => {
    const n1 = await node('node-1');
    const n2 = await node('node-2');
    const all = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? n1 : n2).limits.admit('carrier', { peer, global })));
    expect(all.filter((a) => a.admit).length).toBe(10);
    expect(all.filter((a) => !a.admit && a.reason === 'sessions').length).toBe(50);
    expect(await n2.store.count(peerScope('carrier'))).toBe(10);
    for (const a of all) if (a.admit) await a.release();
    expect(await n1.store.count(peerScope('carrier'))).toBe(0);

    // Six calls on node-1, four on node-2; the limit is shared.
    const onN1 = 6;
    const onN2 = 4;
    for (let i = 0; i < onN1; i++) expect((await n1.limits.admit('carrier', { peer, global })).admit).toBe(true);
    for (let i = 0; i < onN2; i++) expect((await n2.limits.admit('carrier', { peer, global })).admit).toBe(true);
    expect(await n2.limits.admit('carrier', { peer, global })).toMatchObject({ admit: false, status: 503, reason: 'sessions' });
    expect(await n1.limits.admit('carrier', { peer, global })).toMatchObject({ admit: false, status: 503, reason: 'sessions' });

    // node-1 crashes: stops keeping alive, its connection gone.
    n1.limits.stop();
    await n1.store.close();
    // Within the ttl (1 s) + a keepalive period, node-1's sessions are gone; node-2's stay.
    const crashed = Date.now();
    await waitFor(async () => (await n2.store.count(peerScope('carrier'))) === onN2, 3000, 50, 'node-1 sessions expired');
    const returnedAfter = Date.now() - crashed;
    expect(returnedAfter).toBeGreaterThan(300); // not before the ttl (keepalives ran until the crash)
    expect(returnedAfter).toBeLessThan(1600);
    const refill = await Promise.all(Array.from({ length: 20 }, () => n2.limits.admit('carrier', { peer, global })));
    expect(refill.filter((a) => a.admit).length).toBe(onN1); // full capacity back
    expect(await n2.store.count(peerScope('carrier'))).toBe(10);

    // node-2 restarts (same node id) without releasing: start() drops its leftovers at once.
    n2.limits.stop();
    await n2.store.close();
    const n2b = await node('node-2');
    expect(await n2b.store.count(peerScope('carrier'))).toBe(0);
    n2b.limits.stop();
    await n2b.store.close();
  });
});
