// Cost per call of the limits stage (call rate + session slot in peer and global scopes, then
// release), with the in-memory store and with RedisStore on a real local redis-server, in one
// run. Prints medians of several rounds.
//   npx tsx bench/limits.bench.ts [calls-per-round] [rounds]
import { MemoryStore } from '../src/store/memory.js';
import { Redis } from 'ioredis';
import { RedisStore } from '../src/store/redis.js';
import { Limits } from '../src/sbc/limits/index.js';
import type { Store } from '../src/store/types.js';
import { startRedis } from '../test/helpers/redis.js';
import { stopAll } from '../test/helpers/procs.js';

const CALLS = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 7);
const peer = { cps: 1e9, burst: 1e9, sessions: 1e9 };
const global = { sessions: 1e9, session_ttl_s: 60, retry_after_s: 5 };

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

/** Sequential: the latency a single call setup sees (µs per admit+release). */
async function sequential(limits: Limits): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const a = await limits.admit('bench-peer', { peer, global });
    if (!a.admit) throw new Error(`refused: ${a.reason}`);
    await a.release();
  }
  return ((performance.now() - t0) * 1000) / CALLS;
}

/** 64 calls in flight: throughput a busy node gets (admits+releases per second). */
async function concurrent(limits: Limits): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < CALLS) {
      next++;
      const a = await limits.admit('bench-peer', { peer, global });
      if (a.admit) await a.release();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, worker));
  return CALLS / ((performance.now() - t0) / 1000);
}

async function run(name: string, store: Store): Promise<void> {
  const limits = new Limits({ store, nodeId: `bench-${name}` });
  await sequential(limits); // warm-up (JIT, script cache)
  const seq: number[] = [];
  const conc: number[] = [];
  for (let r = 0; r < ROUNDS; r++) { seq.push(await sequential(limits)); conc.push(await concurrent(limits)); }
  console.log(`${name.padEnd(8)} admit+release: median ${median(seq).toFixed(1)} µs/call sequential; ` +
    `median ${Math.round(median(conc))} calls/s with 64 in flight  (${ROUNDS} rounds × ${CALLS} calls)`);
}

const redis = await startRedis();
try {
  await run('memory', new MemoryStore());
  // Baseline: one bare round trip (PING) on the same machine, to read the numbers against.
  const raw = new Redis(redis.url);
  const pings: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) await raw.ping();
    pings.push(((performance.now() - t0) * 1000) / CALLS);
  }
  raw.disconnect();
  console.log(`redis    PING round trip: median ${median(pings).toFixed(1)} µs (admit+release is 2 round trips)`);
  const rs = new RedisStore({ url: redis.url, timeoutMs: 1000 });
  if (!(await rs.ready(3000))) throw new Error('redis not ready');
  const stats = new Redis(redis.url);
  await stats.config('RESETSTAT');
  await run('redis', rs);
  await rs.close();
  // Time spent inside Redis per script call (independent of the network and of this process).
  const info = await stats.info('commandstats');
  stats.disconnect();
  const m = /cmdstat_evalsha:calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/.exec(info);
  if (m) console.log(`redis    server time per script call (admit or release): ${m[2]} µs over ${m[1]} calls`);
} finally {
  await stopAll();
}
