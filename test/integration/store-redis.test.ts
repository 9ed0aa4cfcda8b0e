// RedisStore against a real redis-server on a random loopback port: the shared behavioural
// suite with two RedisStore instances ("two nodes") on one Redis, plus pool-level properties.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomUUID } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { RedisStore } from '../../src/store/redis.js';
import { syncBans } from '../../src/store/bans.js';
import { Limits } from '../../src/sbc/limits/index.js';
import { Shield } from '../../src/engine/shield/index.js';
import { createStore, MemoryStore, ResilientStore } from '../../src/store/index.js';
import { StoreSchema } from '../../src/policy/schema.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { stopAll, waitFor } from '../helpers/procs.js';
import { storeBehaviour } from '../helpers/store-suite.js';

let redis: TestRedis;
beforeAll(async () => { redis = await startRedis(); });
afterAll(() => stopAll());

async function pair(prefix = 'pgtest:'): Promise<{ a: RedisStore; b: RedisStore; close(): Promise<void> }> {
  // A generous timeout: the test machine is shared and loaded; timeouts have their own tests.
  const a = new RedisStore({ url: redis.url, keyPrefix: prefix, timeoutMs: 1000 });
  const b = new RedisStore({ url: redis.url, keyPrefix: prefix, timeoutMs: 1000 });
  expect(await a.ready(3000)).toBe(true);
  expect(await b.ready(3000)).toBe(true);
  return { a, b, close: async () => { await a.close(); await b.close(); } };
}

storeBehaviour('RedisStore ×2 on one redis-server', () => pair());

describe('RedisStore pool properties', () => {
  it('a call-rate limit holds within ±10% across two nodes (3 s, through the limits stage)', async () => {
    const { a, b, close } = await pair();
    const peerId = `cps-${randomUUID()}`;
    const peer = { cps: 40, burst: 5 };
    const nodes = [new Limits({ store: a, nodeId: `${peerId}-a` }), new Limits({ store: b, nodeId: `${peerId}-b` })];
    let allowed = 0;
    let refusedCps = 0;
    const start = Date.now();
    const hammer = async (l: Limits) => {
      // Bounded: at most 3 s and 20,000 calls per worker.
      for (let i = 0; i < 20_000 && Date.now() - start < 3000; i++) {
        const r = await l.admit(peerId, { peer, global: {} });
        if (r.admit) { allowed++; await r.release(); } else if (r.reason === 'cps') refusedCps++;
        await new Promise((res) => setTimeout(res, 2));
      }
    };
    await Promise.all([hammer(nodes[0]!), hammer(nodes[1]!), hammer(nodes[0]!), hammer(nodes[1]!)]);
    const elapsed = (Date.now() - start) / 1000;
    const expected = peer.burst + peer.cps * elapsed;
    expect(refusedCps).toBeGreaterThan(allowed); // the offered load was well above the limit
    expect(allowed).toBeGreaterThanOrEqual(Math.floor(expected * 0.9));
    expect(allowed).toBeLessThanOrEqual(Math.ceil(expected * 1.1));
    await close();
  });

  it('key prefixes keep deployments apart', async () => {
    const x = await pair('pgx:');
    const y = await pair('pgy:');
    const s = [{ scope: 'peer:p', limit: 1 }];
    expect((await x.a.acquire(s, `x-${randomUUID()}`, 'n', 10_000)).ok).toBe(true);
    expect((await y.a.acquire(s, `y-${randomUUID()}`, 'n', 10_000)).ok).toBe(true);
    expect(await x.b.count('peer:p')).toBe(1);
    expect(await y.b.count('peer:p')).toBe(1);
    await x.a.reconcileOnStart('n');
    await y.a.reconcileOnStart('n');
    await x.close(); await y.close();
  });

  it('keepAlive walks many sessions in chunks', async () => {
    const { a, close } = await pair();
    const node = `big-${randomUUID()}`;
    const scope = `peer:${node}`;
    for (let i = 0; i < 2500; i += 250) {
      await Promise.all(Array.from({ length: 250 }, (_, j) => a.acquire([{ scope }], `${node}-${i + j}`, node, 5000)));
    }
    expect(await a.keepAlive(node, 60_000)).toBe(2500);
    expect(await a.keepAlive(node, 60_000)).toBe(2500);
    expect(await a.reconcileOnStart(node)).toBe(2500);
    expect(await a.count(scope)).toBe(0);
    await close();
  });

  it('a ban made on one node lands in the other node\'s engine shield', async () => {
    const { a, b, close } = await pair(`pgban-${randomUUID().slice(0, 6)}:`);
    await a.ban('203.0.113.9', 60_000, 'pre-existing');
    const shieldB = new Shield();
    const sync = await syncBans(b, shieldB);
    expect(shieldB.isBanned('203.0.113.9')).toBe(true); // the initial list
    await a.ban('203.0.113.10', 60_000, 'garbage');
    await waitFor(() => shieldB.isBanned('203.0.113.10'), 2000, 10, 'ban pushed to shield B');
    expect(shieldB.admit('203.0.113.10')).toBe(false);
    await a.unban('203.0.113.9');
    await waitFor(() => !shieldB.isBanned('203.0.113.9'), 2000, 10, 'unban pushed to shield B');
    sync.stop();
    shieldB.close();
    await close();
  });

  it('rejects bad names instead of corrupting session records', async () => {
    const { a, close } = await pair();
    await expect(a.acquire([{ scope: 'a\nb' }], 'x', 'n', 1000)).rejects.toThrow(TypeError);
    await expect(a.acquire([{ scope: 'p' }], '', 'n', 1000)).rejects.toThrow(TypeError);
    await expect(a.take('k', 0, 1)).rejects.toThrow(RangeError);
    await close();
  });

  it('createStore builds what the policy says', async () => {
    expect(createStore(StoreSchema.parse({}))).toBeInstanceOf(MemoryStore);
    const s = createStore(StoreSchema.parse({ redis: { url: redis.url, on_failure: 'fail_closed', key_prefix: 'pgpol:' } }));
    expect(s).toBeInstanceOf(ResilientStore);
    expect(s.kind).toBe('redis');
    await waitFor(() => s.health().state === 'up', 3000, 20, 'policy store up');
    expect(await s.seenOnce(`policy-${randomUUID()}`, 1000)).toBe(true);
    await s.close();
  });
});

/** A loopback TCP relay in this process: it can drop every connection, or stop forwarding what clients send. */
async function relay(to: number): Promise<{ url: string; dropAll(): void; holdClients(): void; close(): Promise<void> }> {
  const pairs = new Set<[Socket, Socket]>();
  let hold = false;
  const server = createServer((c) => {
    const r = connect(to, '127.0.0.1');
    const pair: [Socket, Socket] = [c, r];
    pairs.add(pair);
    c.on('data', (d) => { if (!hold) r.write(d); });
    r.on('data', (d) => c.write(d));
    const end = () => { c.destroy(); r.destroy(); pairs.delete(pair); };
    c.on('close', end); r.on('close', end); c.on('error', end); r.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    dropAll() { for (const [c, r] of pairs) { c.destroy(); r.destroy(); } },
    holdClients() { hold = true; },
    close: () => new Promise<void>((resolve) => { for (const [c, r] of pairs) { c.destroy(); r.destroy(); } server.close(() => resolve()); }),
  };
}

describe('RedisStore closed while reconnecting', () => {
  it('a close racing the ban channel\'s resubscribe leaves no unhandled rejection', async () => {
    const link = await relay(redis.port);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => { unhandled.push(e); };
    process.on('unhandledRejection', onUnhandled);
    try {
      const store = new RedisStore({ url: link.url, timeoutMs: 300, reconnectMs: 50 });
      expect(await store.ready(3000)).toBe(true);
      // The link drops; on its next ready the subscriber connection sends SUBSCRIBE, which never
      // reaches Redis; the store is closed while it is unanswered (a node stopping mid-outage).
      const sub = (store as unknown as { sub: { once(ev: 'ready', f: () => void): void } }).sub;
      const closed = new Promise<void>((resolve) => {
        sub.once('ready', () => { link.holdClients(); void store.close().then(resolve); });
      });
      link.dropAll();
      await closed;
      await new Promise((r) => setTimeout(r, 300));
      expect(unhandled.map(String)).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await link.close();
    }
  });
});
