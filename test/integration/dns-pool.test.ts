// RFC 6404 §4.8, border element pooling behind DNS: two `peergate start` nodes (A, B) behind
// one SRV name share the calls of a caller that follows RFC 3263 — here a third peergate (X)
// routing to `sip:pool.test` with OPTIONS probing. When B dies, X's probes mark it down and
// every call goes to A without waiting for B. When B drains instead (POST /admin/drain), it
// still answers OPTIONS but refuses new INVITEs with 503 + Retry-After; X, following RFC 3263
// §4.3, moves each refused call on to A, while the call B already holds completes and B exits 0.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startDns, type RunningDns } from '../helpers/dns.js';
import { freePorts, runSipp, startSipp, stopAll, scratchDir, waitFor } from '../helpers/procs.js';
import { listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';

const CORE_IP = '127.0.0.3';
let dns: RunningDns;
let x: RunningPeergate;
let a: RunningPeergate;
let b: RunningPeergate;
let p: Record<'xPeer' | 'xCore' | 'xOps' | 'aPeer' | 'aCore' | 'aOps' | 'bPeer' | 'bCore' | 'bOps' | 'uas', number>;

function node(peerPort: number, corePort: number, ops: number) {
  return {
    listen: [listener('peer-udp', peerPort), listener('core-udp', corePort)],
    core: { targets: [`sip:${CORE_IP}:${p.uas}`] },
    media: { anchoring: false },
    ops: { port: ops },
    log: { level: 'warn' },
    peers: [{ id: 'edge-x', match: { addresses: ['127.0.0.1/32'] } }],
    routes: [{ from: 'peers', to: 'core' }],
  };
}

async function answered(n: RunningPeergate): Promise<number> {
  return n.metric('peergate_call_setup_seconds_count');
}

beforeAll(async () => {
  const list = await freePorts(10);
  p = { xPeer: list[0]!, xCore: list[1]!, xOps: list[2]!, aPeer: list[3]!, aCore: list[4]!, aOps: list[5]!, bPeer: list[6]!, bCore: list[7]!, bOps: list[8]!, uas: list[9]! };
  dns = await startDns([{
    origin: 'pool.test', signed: false, ttl: 30,
    records: [`_sip._udp IN SRV 10 50 ${p.aPeer} a`, `_sip._udp IN SRV 10 50 ${p.bPeer} b`, 'a IN A 127.0.0.1', 'b IN A 127.0.0.1'].join('\n'),
  }]);
  startSipp(['-sn', 'uas', '-i', CORE_IP, '-p', String(p.uas), '-aa'], scratchDir('pool-uas-'));
  [a, b] = await Promise.all([startPeergate(node(p.aPeer, p.aCore, p.aOps)), startPeergate(node(p.bPeer, p.bCore, p.bOps))]);
  x = await startPeergate({
    listen: [listener('peer-udp', p.xPeer), listener('core-udp', p.xCore)],
    dns: { resolvers: [`127.0.0.1:${dns.resolverPort}`] },
    core: { targets: [`sip:${CORE_IP}:${p.uas}`] },
    media: { anchoring: false },
    failover: { no_answer_ms: 8000 },
    ops: { port: p.xOps },
    log: { level: 'warn' },
    peers: [{
      id: 'pool', match: { addresses: ['127.0.0.9/32'] }, targets: ['sip:pool.test'],
      health: { probe: true, interval_ms: 300, timeout_ms: 250, failure_threshold: 2, success_threshold: 1 },
    }],
    routes: [{ from: 'core', to: 'pool' }],
  });
}, 120_000);

afterAll(async () => {
  await Promise.all([x?.stop(), a?.stop(), b?.stop()]);
  await dns?.stop();
  await stopAll();
});

describe('a pool of two peergate nodes behind one SRV name', () => {
  it('shares calls across both nodes, and avoids a dead node at once', async () => {
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${p.xCore}`, '-i', CORE_IP, '-p', '0', '-s', '+15550100', '-m', '16', '-r', '8', '-d', '50'], { timeoutS: 60 });
    expect(r.successful, r.output.slice(-1500)).toBe(16);
    const [onA, onB] = [await answered(a), await answered(b)];
    expect(onA + onB).toBe(16);
    // 50/50 weights over 16 calls: both get a share (P(all on one) ≈ 3e-5).
    expect(onA).toBeGreaterThan(0);
    expect(onB).toBeGreaterThan(0);

    await b.stop();
    await waitFor(async () => (await x.metric('peergate_target_up', { target: `udp:127.0.0.1:${p.bPeer}` })) === 0, 15_000, 100, 'node B probed down');
    const t0 = Date.now();
    const after = await runSipp(['-sn', 'uac', `127.0.0.1:${p.xCore}`, '-i', CORE_IP, '-p', '0', '-s', '+15550100', '-m', '6', '-r', '6', '-d', '50'], { timeoutS: 60 });
    expect(after.successful, after.output.slice(-1500)).toBe(6);
    expect(await answered(a)).toBe(onA + 6);
    // No call waited for the dead node (failover.no_answer_ms is 8 s).
    expect(Date.now() - t0).toBeLessThan(6000);
  });

  it('moves new calls off a draining node while its call in progress completes, then it exits 0', async () => {
    // B was stopped above: start it again with the same node policy and wait for X to probe it up.
    b = await startPeergate(node(p.bPeer, p.bCore, p.bOps));
    await waitFor(async () => (await x.metric('peergate_target_up', { target: `udp:127.0.0.1:${p.bPeer}` })) === 1, 15_000, 100, 'node B probed up again');

    // A call held on B across the drain: sent to B directly (a pool member is also reachable by
    // its own address), so that it lands on B whatever SRV weighting picks.
    const held = runSipp(['-sn', 'uac', `127.0.0.1:${p.bPeer}`, '-i', '127.0.0.1', '-p', '0', '-s', '+15550101', '-m', '1', '-d', '6000'], { timeoutS: 30 });
    await waitFor(async () => (await b.metric('peergate_active_calls')) === 1, 10_000, 50, 'call held on node B');
    const [onA, onB] = [await answered(a), await answered(b)];
    const invitesToB = () => b.metric('peergate_requests_total', { method: 'INVITE' });
    const refusedByB = () => b.metric('peergate_refusals_total', { reason: 'draining' });
    const [invitesB0, refusedB0] = [await invitesToB(), await refusedByB()];

    const drain = await b.admin('/admin/drain', { method: 'POST' });
    expect(drain.status).toBe(202);
    expect(await drain.json()).toMatchObject({ draining: true, calls: 1 });
    expect((await fetch(`http://127.0.0.1:${p.bOps}/ready`)).status).toBe(503);

    // 24 new calls through X while B drains: every one is answered, all by A. With 50/50 weights
    // X offers B some of them (P(none) = 2^-24); B refuses those with 503 and X fails over to A.
    const t0 = Date.now();
    const during = await runSipp(['-sn', 'uac', `127.0.0.1:${p.xCore}`, '-i', CORE_IP, '-p', '0', '-s', '+15550100', '-m', '24', '-r', '24', '-d', '50'], { timeoutS: 60 });
    expect(during.successful, during.output.slice(-1500)).toBe(24);
    expect(during.failed).toBe(0);
    expect(await answered(a)).toBe(onA + 24);
    // Every INVITE X offered B after the drain began was refused there, none reached B's core.
    const refused = (await refusedByB()) - refusedB0;
    expect(refused).toBeGreaterThan(0);
    expect((await invitesToB()) - invitesB0).toBe(refused);
    expect(await answered(b)).toBe(onB);
    // Failover on a 503 is immediate: no call waited for failover.no_answer_ms (8 s).
    expect(Date.now() - t0).toBeLessThan(6000);
    // The held call was still up on B through all of it.
    expect(await b.metric('peergate_active_calls')).toBe(1);

    // It completes normally (caller's BYE answered), then B, with no call left, exits 0.
    const heldResult = await held;
    expect(heldResult.successful, heldResult.output.slice(-1500)).toBe(1);
    expect(heldResult.failed).toBe(0);
    const code = await Promise.race([b.proc.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10_000))]);
    expect(code, b.proc.output().slice(-3000)).toBe(0);
    expect(b.proc.output()).not.toMatch(/drain deadline/);
  }, 90_000);
});
