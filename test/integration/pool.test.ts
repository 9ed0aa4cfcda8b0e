// A pool of two SBEs (two `peergate start` processes) sharing one real Redis (RFC 6404 §4.8,
// §4.9): a peer's concurrent-session limit holds across the pool, the excess gets 503, a
// node that dies releases its sessions within the expiry time, and Redis outages follow
// the policy without hanging call setup.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket } from 'node:dgram';
import { childPids, freePorts, heldCalls, runSipp, startUas, waitFor, stopInOrder, type Proc } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const LIMIT = 4;
const TTL_S = 3;
const CPS = 10;
const BURST = 5;

let redis: TestRedis;
let uasPort: number;
const nodes: RunningPeergate[] = [];
const sipPorts: number[] = [];

async function startNode(i: number, onFailure: 'fail_open' | 'fail_closed' = 'fail_closed'): Promise<RunningPeergate> {
  const [peer, core, ops] = await freePorts(3);
  sipPorts[i] = peer!;
  return startPeergate({
    listen: [listener('peer-udp', peer!), listener('core-udp', core!)],
    core: { targets: [`sip:${CORE_IP}:${uasPort}`] },
    store: { redis: { url: redis.url, on_failure: onFailure, timeout_ms: 200 } },
    limits: { session_ttl_s: TTL_S, strikes: { threshold: 5, window_s: 30, ban_s: 120 } },
    media: { rtpengine: 'spawn', embedded: { port_min: 46000 + i * 200 + (ops! % 10) * 20, port_max: 46000 + i * 200 + (ops! % 10) * 20 + 19 } },
    ops: { port: ops },
    log: { level: 'warn' },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, limits: { sessions: LIMIT, cps: CPS, burst: BURST } }],
    routes: [{ from: 'peers', to: 'core' }],
  }, { env: { PEERGATE_NODE_ID: `node-${i}` } });
}

const calls = (node: number, n: number, holdMs: number) => heldCalls(`127.0.0.1:${sipPorts[node]}`, PEER_IP, n, holdMs);

beforeAll(async () => {
  redis = await startRedis();
  [uasPort] = await freePorts(1) as [number];
  startUas(CORE_IP, uasPort);
  // The two nodes are independent processes: started side by side.
  nodes.push(...await Promise.all([startNode(0), startNode(1)]));
}, 90_000);

afterAll(() => stopInOrder(...nodes, redis));

describe('a pool of two SBEs on one Redis', () => {
  it('never exceeds the peer session limit across both nodes; the excess gets 503', async () => {
    const [a, b] = await Promise.all([calls(0, 3, 3000), calls(1, 3, 3000)]);
    expect(a.successful + b.successful).toBe(LIMIT);
    expect(a.failed + b.failed).toBe(6 - LIMIT);
    const refused = (await nodes[0]!.metric('peergate_limit_refusals_total', { reason: 'sessions' })) +
      (await nodes[1]!.metric('peergate_limit_refusals_total', { reason: 'sessions' }));
    expect(refused).toBe(6 - LIMIT);
  });

  it('holds the peer call rate across the pool within ±10% over 10 s', async () => {
    // 2× the limit, half to each node; calls are short so the session limit never bites.
    const attempt = (node: number) => runSipp(['-sn', 'uac', `127.0.0.1:${sipPorts[node]}`, '-i', PEER_IP, '-p', '0', '-t', 'u1',
      '-s', '+15551230000', '-m', String(CPS * 10), '-r', String(CPS), '-l', String(LIMIT), '-d', '0'], { timeoutS: 30 });
    const [a, b] = await Promise.all([attempt(0), attempt(1)]);
    const admitted = a.successful + b.successful;
    const expected = CPS * 10 + BURST;
    expect(admitted).toBeGreaterThanOrEqual(Math.floor(expected * 0.9));
    expect(admitted).toBeLessThanOrEqual(Math.ceil(expected * 1.1));
  });

  it('bans a source that keeps sending garbage on both nodes', async () => {
    const GARBAGE_IP = '127.0.0.7';
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, GARBAGE_IP, () => r()));
    const lp = sock.address().port;
    // Well-framed enough to be answered 400 (a Via), but no From/To/Call-ID/CSeq: garbage.
    for (let i = 0; i < 10; i++) sock.send(`INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ${GARBAGE_IP}:${lp};branch=z9hG4bK-g${i}\r\n\r\n`, sipPorts[0]!, '127.0.0.1');
    const banned = async (node: RunningPeergate) => {
      const { bans } = await (await node.admin('/admin/bans')).json() as { bans: Array<{ address: string }> };
      return bans.some((b) => b.address === GARBAGE_IP);
    };
    await waitFor(() => banned(nodes[0]!), 5000, 100, 'ban on node 0');
    await waitFor(() => banned(nodes[1]!), 5000, 100, 'ban on node 1');
    // Node 1's shield now drops that source before parsing: it never learns anything.
    const before = await nodes[1]!.metric('peergate_engine_shield_dropped_total', { reason: 'ban' });
    const got: string[] = [];
    sock.on('message', (m) => got.push(m.toString()));
    sock.send(`OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ${GARBAGE_IP}:${lp};branch=z9hG4bK-o\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`, sipPorts[1]!, '127.0.0.1');
    await waitFor(async () => (await nodes[1]!.metric('peergate_engine_shield_dropped_total', { reason: 'ban' })) > before, 5000, 100, 'shield drop on node 1');
    expect(got).toEqual([]);
    sock.close();
  });

  it('releases a killed node\'s sessions within the expiry time', async () => {
    // Node 0 holds long calls, then dies without releasing them.
    let sipp: Proc | undefined;
    const held = runSipp(['-sn', 'uac', `127.0.0.1:${sipPorts[0]}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-m', String(LIMIT), '-r', String(LIMIT), '-l', String(LIMIT), '-d', '5000'], { timeoutS: 10, onStart: (p) => { sipp = p; } });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await calls(1, 1, 100)).successful).toBe(0); // pool full
    const orphans = childPids(nodes[0]!.proc.pid);
    nodes[0]!.proc.child.kill('SIGKILL');
    for (const pid of orphans) try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
    await new Promise((r) => setTimeout(r, (TTL_S + 1) * 1000));
    const after = await calls(1, LIMIT, 500);
    expect(after.successful).toBe(LIMIT);
    // The held calls' caller is done with: its BYEs go to the dead node (no answer until SIPp's
    // 10 s timeout). Stopped now rather than waited for.
    await sipp?.stop();
    await held;
  });

  it('with Redis down a fail_closed node answers 503 promptly, and recovers by itself', async () => {
    await redis.stop();
    const t0 = Date.now();
    const down = await calls(1, 1, 100);
    expect(down.successful).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    await redis.restart();
    await new Promise((r) => setTimeout(r, 1500));
    const up = await calls(1, 2, 100);
    expect(up.successful).toBe(2);
  });
});
