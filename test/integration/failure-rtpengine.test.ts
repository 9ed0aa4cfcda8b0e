// Component failure (issue 17 item 7): rtpengine killed with SIGKILL while calls are up.
// Measured behaviour: established calls keep their signalling and end normally with BYE on
// both legs (their media relay is gone); new calls get 503 while no rtpengine is reachable;
// no session stays stuck (active calls, engine dialogs, session slots back to 0) and, once
// rtpengine is back, calls are admitted up to the full session limit again.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { childPids, freePorts, heldCalls, startUas, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';

const LIMIT = 3;

let rtp: TestRtpengine;
let node: RunningPeergate;
let sipPort: number;

const calls = (n: number, holdMs: number, timeoutS = 30) => heldCalls(`127.0.0.1:${sipPort}`, PEER_IP, n, holdMs, timeoutS);

beforeAll(async () => {
  rtp = await startRtpengine();
  const [uas, peer, core, ops] = await freePorts(4) as [number, number, number, number];
  sipPort = peer;
  startUas(CORE_IP, uas);
  node = await startPeergate(twoSidedPolicy(
    { peerPort: peer, corePort: core, coreTarget: `sip:${CORE_IP}:${uas}`, opsPort: ops, logLevel: 'warn', peerIp: PEER_IP, peer: { limits: { sessions: LIMIT } } },
    { media: { rtpengine: [{ address: rtp.address }], timeout_ms: 500, health_interval_ms: 200, retry_after_s: 3 } },
  ));
}, 60_000);

afterAll(() => stopInOrder(node, rtp));

// The two cases share nothing (each its own node, rtpengine and ports) and run side by side.
describe.concurrent('rtpengine killed mid-call', () => {
  it('established calls end normally, new calls get 503 until it is back, nothing stays stuck', async () => {
    const held = calls(LIMIT, 5000);
    await waitFor(async () => (await node.metric('peergate_active_calls')) === LIMIT, 10_000, 50, 'calls established');
    expect((await rtp.calls()).length).toBe(LIMIT);

    await rtp.kill();
    // The held calls keep their dialogs and end with BYE on both legs (sipp's uac and uas).
    const r = await held;
    expect(r.successful).toBe(LIMIT);
    expect(r.failed).toBe(0);
    await waitFor(async () => (await node.metric('peergate_active_calls')) === 0, 5000, 50, 'active calls back to 0');
    await waitFor(async () => (await node.metric('peergate_engine_dialogs')) === 0, 5000, 50, 'engine dialogs back to 0');
    expect(await node.metric('peergate_limit_sessions_local')).toBe(0);

    // No rtpengine: a new call is refused with 503 (not routed, not hung).
    const t0 = Date.now();
    const down = await calls(1, 100);
    expect(down.successful).toBe(0);
    expect(down.failed).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await node.metric('peergate_calls_total', { result: 'refused' })).toBe(1);
    expect(await node.metric('peergate_refusals_total', { reason: 'no_rtpengine' })).toBe(1);
    expect(await node.metric('peergate_responses_total', { class: '5xx' })).toBe(1);
    expect(await node.metric('peergate_rtpengine_up')).toBe(0);
    expect(await node.metric('peergate_active_calls')).toBe(0);

    // Back (empty): the stage finds it by health check; the full limit is available again.
    await rtp.restart();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${node.opsPort}/ready`)).status === 200, 5000, 100, 'ready again');
    const again = calls(LIMIT, 1500);
    await waitFor(async () => (await node.metric('peergate_active_calls')) === LIMIT, 10_000, 50, 'full limit admitted');
    expect((await rtp.calls()).length).toBe(LIMIT);
    const after = await again;
    expect(after.successful).toBe(LIMIT);
    await waitFor(async () => (await rtp.calls()).length === 0, 5000, 50, 'rtpengine sessions deleted');
    expect(await node.metric('peergate_active_calls')).toBe(0);
    expect(await node.metric('peergate_limit_sessions_local')).toBe(0);
  }, 60_000);
});

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe.concurrent('peergate killed with its embedded rtpengine', () => {
  it('the embedded rtpengine does not outlive peergate (no orphan holding the ports)', async () => {
    const [peer, core, ops, ng] = await freePorts(4) as [number, number, number, number];
    const base = 20000 + 2 * Math.floor(Math.random() * 19000);
    const pg = await startPeergate(twoSidedPolicy(
      { peerPort: peer, corePort: core, coreTarget: 'sip:127.0.0.3:5060', opsPort: ops, logLevel: 'warn', peerIp: PEER_IP },
      { media: { rtpengine: 'spawn', embedded: { port_min: base, port_max: base + 19, ng_port: ng } } },
    ));
    const kids = childPids(pg.proc.pid);
    expect(kids.length).toBeGreaterThanOrEqual(1);
    pg.proc.child.kill('SIGKILL');
    await pg.proc.exited;
    try {
      await waitFor(() => kids.every((k) => !alive(k)), 3000, 50, 'embedded rtpengine gone with peergate');
    } finally {
      for (const k of kids) if (alive(k)) try { process.kill(k, 'SIGKILL'); } catch { /* gone */ }
    }
  }, 60_000);
});
