// RedisStore on Redis Cluster (three masters) and through Sentinel: the same behavioural suite
// as standalone. On the cluster this proves the key layout: every multi-key script stays in one
// hash slot, and bans published on one shard reach subscribers on any node.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { RedisStore } from '../../src/store/redis.js';
import { startRedisCluster, startRedisSentinel, type TestRedisCluster, type TestRedisSentinel } from '../helpers/redis.js';
import { stopAll } from '../helpers/procs.js';
import { storeBehaviour } from '../helpers/store-suite.js';

let cluster: TestRedisCluster;
let sentinel: TestRedisSentinel;
beforeAll(async () => {
  [cluster, sentinel] = await Promise.all([startRedisCluster(), startRedisSentinel()]);
}, 30_000);
afterAll(() => stopAll());

async function ready(s: RedisStore): Promise<RedisStore> {
  expect(await s.ready(5000)).toBe(true);
  return s;
}

storeBehaviour('RedisStore ×2 on a 3-master Redis Cluster', async () => {
  const a = await ready(new RedisStore({ cluster: { nodes: cluster.nodes }, keyPrefix: 'pgc:', timeoutMs: 1000 }));
  // The second node knows only one seed: discovery does the rest.
  const b = await ready(new RedisStore({ cluster: { nodes: [cluster.nodes[2]!] }, keyPrefix: 'pgc:', timeoutMs: 1000 }));
  return { a, b, close: async () => { await a.close(); await b.close(); } };
});

storeBehaviour('RedisStore ×2 through Redis Sentinel', async () => {
  const opts = { sentinel: { name: sentinel.name, sentinels: [sentinel.sentinel] }, keyPrefix: 'pgs:', timeoutMs: 1000 };
  const a = await ready(new RedisStore(opts));
  const b = await ready(new RedisStore(opts));
  return { a, b, close: async () => { await a.close(); await b.close(); } };
});

describe('cluster key layout', () => {
  it('generic token buckets (take) spread over the shards', async () => {
    const s = await ready(new RedisStore({ cluster: { nodes: cluster.nodes }, keyPrefix: 'pgc:', timeoutMs: 1000 }));
    for (let i = 0; i < 30; i++) expect((await s.take(`cps:peer-${i}`, 10, 1)).allowed).toBe(true);
    // 30 bucket keys over 3 masters: more than one shard must hold some.
    const { Cluster } = await import('ioredis');
    const c = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })));
    c.on('error', () => { /* reported by the assertions */ });
    await new Promise((r) => c.once('ready', r));
    const counts = await Promise.all(c.nodes('master').map((m) => m.dbsize()));
    expect(counts.filter((n) => n > 0).length).toBeGreaterThan(1);
    c.disconnect();
    await s.close();
  });
});
