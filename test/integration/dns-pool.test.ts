// RFC 6404 §4.8, border element pooling behind DNS: two `peergate start` nodes (A, B) behind
// one SRV name share the calls of a caller that follows RFC 3263 — here a third peergate (X)
// routing to `sip:pool.test` with OPTIONS probing. When B dies, X's probes mark it down and
// every call goes to A without waiting for B.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startDns, type RunningDns } from '../helpers/dns.js';
import { freePorts, runSipp, startSipp, stopAll, scratchDir, waitFor } from '../helpers/procs.js';
import { startPeergate, type RunningPeergate } from '../helpers/peergate.js';

const CORE_IP = '127.0.0.3';
let dns: RunningDns;
let x: RunningPeergate;
let a: RunningPeergate;
let b: RunningPeergate;
let p: Record<'xPeer' | 'xCore' | 'xOps' | 'aPeer' | 'aCore' | 'aOps' | 'bPeer' | 'bCore' | 'bOps' | 'uas', number>;

function node(peerPort: number, corePort: number, ops: number) {
  return {
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerPort },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: corePort },
    ],
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
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: p.xPeer },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: p.xCore },
    ],
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
});
