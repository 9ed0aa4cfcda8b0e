// Component failure (issue 17 item 7): one peergate node of a two-node pool sharing Redis
// killed with SIGKILL while it and the other node hold calls.
// Measured behaviour: the killed node's calls are lost (no BYE is sent on either leg: the
// endpoints end them by their own timers); the surviving node's calls continue and end
// normally; the dead node's session slots leave the pool's count within session_ttl_s (no
// keepalive refreshes them), after which the survivor is admitted up to the full limit; a
// node restarted with the same node id drops whatever it still held at once and takes calls.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePorts, heldCalls, startSipp, startUas, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { RedisStore } from '../../src/store/redis.js';

const LIMIT = 4;
const TTL_S = 3;

let redis: TestRedis;
let store: RedisStore;
let uasPort: number;
const nodes: RunningPeergate[] = [];
const sipPorts: number[] = [];

async function startNode(i: number, ttlS = TTL_S): Promise<RunningPeergate> {
  const [peer, core, ops] = await freePorts(3) as [number, number, number];
  sipPorts[i] = peer;
  return startPeergate(twoSidedPolicy(
    { peerPort: peer, corePort: core, coreTarget: `sip:${CORE_IP}:${uasPort}`, opsPort: ops, logLevel: 'warn', peerIp: PEER_IP, peer: { limits: { sessions: LIMIT } } },
    { store: { redis: { url: redis.url, on_failure: 'fail_closed', timeout_ms: 200 } }, limits: { session_ttl_s: ttlS }, media: { anchoring: false } },
  ), { env: { PEERGATE_NODE_ID: `pool-fail-${i}` } });
}

const uacArgs = (node: number, n: number, holdMs: number) =>
  ['-sn', 'uac', `127.0.0.1:${sipPorts[node]}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-m', String(n), '-r', String(n), '-l', String(n), '-d', String(holdMs)];
const calls = (node: number, n: number, holdMs: number) => heldCalls(`127.0.0.1:${sipPorts[node]}`, PEER_IP, n, holdMs);
const slots = () => store.count('peer:carrier-a');

beforeAll(async () => {
  redis = await startRedis();
  store = new RedisStore({ url: redis.url, timeoutMs: 300, reconnectMs: 100 });
  [uasPort] = await freePorts(1) as [number];
  startUas(CORE_IP, uasPort);
  // The two nodes are independent processes: started side by side.
  nodes.push(...await Promise.all([startNode(0), startNode(1)]));
}, 90_000);

afterAll(() => stopInOrder(...nodes, store, redis));

describe('a pool node killed mid-call', () => {
  it('the survivor carries on at once, the dead node\'s slots are freed within session_ttl_s', async () => {
    // Node 0 holds 3 calls (long), node 1 holds 1: the pool is full.
    const onDead = startSipp(uacArgs(0, 3, 30_000));
    await waitFor(async () => (await nodes[0]!.metric('peergate_active_calls')) === 3, 10_000, 50, 'node 0 calls up');
    const survivor = calls(1, 1, 8000);
    await waitFor(async () => (await slots()) === LIMIT, 10_000, 50, 'pool full');
    expect((await calls(1, 1, 100)).successful).toBe(0);

    nodes[0]!.proc.child.kill('SIGKILL');
    const t0 = Date.now();
    await nodes[0]!.proc.exited;
    // The survivor answers at once (its slot count still includes the dead node's calls).
    const meanwhile = await calls(1, 1, 100);
    expect(meanwhile.successful).toBe(0); // still full until the dead node's slots expire
    await waitFor(async () => (await slots()) === 1, TTL_S * 1000 + 2000, 50, 'dead node\'s slots expired');
    const expiredMs = Date.now() - t0;
    expect(expiredMs).toBeLessThanOrEqual(TTL_S * 1000 + 300);

    // Slots freed: the survivor is admitted up to the full limit (1 held + 3 new), not one more.
    const more = calls(1, LIMIT - 1, 3000);
    await waitFor(async () => (await slots()) === LIMIT, 10_000, 50, 'full limit on the survivor');
    expect((await calls(1, 1, 100)).successful).toBe(0);
    expect((await more).successful).toBe(LIMIT - 1);
    const s = await survivor;
    expect(s.successful).toBe(1);
    expect(s.failed).toBe(0);
    await waitFor(async () => (await slots()) === 0, 3000, 50, 'no slot left');
    await waitFor(async () => (await nodes[1]!.metric('peergate_active_calls')) === 0, 3000, 50, 'survivor active calls 0');
    await waitFor(async () => (await nodes[1]!.metric('peergate_engine_dialogs')) === 0, 3000, 50, 'survivor engine dialogs 0');
    await onDead.stop();

    // The dead node comes back under the same node id and takes calls.
    nodes[0] = await startNode(0);
    expect((await calls(0, 2, 500)).successful).toBe(2);
    await waitFor(async () => (await slots()) === 0, 3000, 50, 'no slot left after the restarted node\'s calls');
  }, 90_000);

  it('a node killed and restarted at once drops its leftover slots when it starts', async () => {
    // A long ttl on node 0, so only the restart (reconcileOnStart) can free its slots in time.
    await nodes[0]!.stop();
    nodes[0] = await startNode(0, 60);
    const onDead = startSipp(uacArgs(0, 3, 30_000));
    await waitFor(async () => (await slots()) === 3, 10_000, 50, 'node 0 calls up');
    nodes[0]!.proc.child.kill('SIGKILL');
    await nodes[0]!.proc.exited;
    expect(await slots()).toBe(3);
    nodes[0] = await startNode(0, 60);
    await onDead.stop();
    expect(await slots()).toBe(0); // dropped before the node was ready, not 60 s later
    expect((await calls(1, LIMIT, 500)).successful).toBe(LIMIT);
  }, 60_000);
});
