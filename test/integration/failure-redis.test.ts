// Component failure (issue 17 item 7): Redis killed with SIGKILL while calls are up, on a
// peergate whose store is Redis (on_failure: fail_open, the default).
// Measured behaviour: established calls are not touched (they end normally with BYE on both
// legs); while Redis is down, new calls are admitted against a per-node local store that
// counts the node's live calls (the limit holds per node); Redis
// restarted empty gets the node's live sessions back within a keepalive period
// (session_ttl_s / 3); once the calls end no slot is left and the full limit is admitted.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePorts, heldCalls, startUas, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { RedisStore } from '../../src/store/redis.js';

const LIMIT = 3;
const TTL_S = 3;

let redis: TestRedis;
let node: RunningPeergate;
let sipPort: number;
let store: RedisStore;

const calls = (n: number, holdMs: number, timeoutS = 30) => heldCalls(`127.0.0.1:${sipPort}`, PEER_IP, n, holdMs, timeoutS);
/** Slots the pool's store holds for the peer (read straight from Redis). */
const slots = () => store.count('peer:carrier-a');

beforeAll(async () => {
  redis = await startRedis();
  store = new RedisStore({ url: redis.url, timeoutMs: 300, reconnectMs: 100 });
  const [uas, peer, core, ops] = await freePorts(4) as [number, number, number, number];
  sipPort = peer;
  startUas(CORE_IP, uas);
  node = await startPeergate(twoSidedPolicy(
    { peerPort: peer, corePort: core, coreTarget: `sip:${CORE_IP}:${uas}`, opsPort: ops, logLevel: 'warn', peerIp: PEER_IP, peer: { limits: { sessions: LIMIT } } },
    { store: { redis: { url: redis.url, timeout_ms: 200 } }, limits: { session_ttl_s: TTL_S }, media: { anchoring: false } },
  ), { env: { PEERGATE_NODE_ID: 'redis-fail-0' } });
}, 60_000);

afterAll(() => stopInOrder(node, store, redis));

describe('Redis killed mid-call', () => {
  it('calls continue, live sessions are put back when Redis returns, and every slot is freed', async () => {
    const held = calls(LIMIT, 7000);
    await waitFor(async () => (await node.metric('peergate_active_calls')) === LIMIT, 10_000, 50, 'calls established');
    expect(await slots()).toBe(LIMIT);

    await redis.stop(true); // SIGKILL
    await waitFor(async () => (await node.metric('peergate_store_up', { kind: 'redis' })) === 0, 5000, 50, 'store down');
    // fail_open: within a keepalive period (ttl/3) the node's live calls are counted in its
    // local store, so the limit still holds on this node: the peer is full, a new call gets 503.
    await new Promise((r) => setTimeout(r, (TTL_S * 1000) / 3 + 300));
    const during = await calls(1, 100);
    expect(during.successful).toBe(0);
    expect(during.failed).toBe(1);
    expect(await node.metric('peergate_store_fallback_total', { op: 'admit' })).toBeGreaterThanOrEqual(1);
    expect(await node.metric('peergate_limit_refusals_total', { reason: 'sessions' })).toBe(1);

    // Back, empty: the node's keepalive puts its live calls back within ttl/3 (+ reconnect).
    const back = Date.now();
    await redis.restart();
    // A fresh reader: the test's own client would wait for its reconnect backoff.
    await store.close();
    store = new RedisStore({ url: redis.url, timeoutMs: 300, reconnectMs: 100 });
    expect(await store.ready(2000)).toBe(true);
    await waitFor(async () => (await slots()) === LIMIT, TTL_S * 1000, 50, 'live sessions restored in Redis');
    const restoredMs = Date.now() - back;
    expect(restoredMs).toBeLessThan(TTL_S * 1000);
    // The limit holds with the restored sessions counted: the pool is full.
    expect((await calls(1, 100)).successful).toBe(0);
    expect(await node.metric('peergate_limit_refusals_total', { reason: 'sessions' })).toBe(2);

    const r = await held;
    expect(r.successful).toBe(LIMIT);
    expect(r.failed).toBe(0);
    await waitFor(async () => (await slots()) === 0, 3000, 50, 'slots released');
    await waitFor(async () => (await node.metric('peergate_active_calls')) === 0, 3000, 50, 'active calls 0');
    await waitFor(async () => (await node.metric('peergate_engine_dialogs')) === 0, 3000, 50, 'engine dialogs 0');
    expect(await node.metric('peergate_limit_sessions_local')).toBe(0);

    // The full limit is admitted again, and not one more.
    const again = calls(LIMIT, 4000);
    await waitFor(async () => (await slots()) === LIMIT, 10_000, 50, 'full limit admitted');
    const extra = await calls(1, 100);
    expect(extra.successful).toBe(0);
    expect((await again).successful).toBe(LIMIT);
    await waitFor(async () => (await slots()) === 0, 3000, 50, 'slots released again');
  }, 60_000);
});
