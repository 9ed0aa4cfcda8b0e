// A flood of refused INVITEs from a peer (here: over its call rate) is answered and counted in
// full, but at `info` it does not become a flood of log lines: each B2BUA process writes the
// first ten 'request refused' lines per second per peer and reason, and the next line it writes
// says how many it left out (src/log-budget.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { freePorts, runSipp, startUas, stopAll, waitFor } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startTwoSided, type RunningPeergate } from '../helpers/peergate.js';

let pg: RunningPeergate | undefined;
afterAll(async () => { await pg?.stop(); await stopAll(); });

describe('refusal log lines under a flood', () => {
  it('every refusal answered and counted; log lines bounded per second, the rest counted in them', async () => {
    const [uasPort] = await freePorts(1) as [number];
    startUas(CORE_IP, uasPort);
    // A short T1 so the transactions' RFC 3261 windows (64×T1; Timer D stays 32 s) end within the test.
    const s = await startTwoSided(`sip:${CORE_IP}:${uasPort}`, { media: { anchoring: false }, engine: { sip_timers: { t1_ms: 100, t2_ms: 400, t4_ms: 500 } } },
      { logLevel: 'info', peer: { limits: { cps: 2, burst: 2 } } });
    pg = s.pg;
    const calls = 450;
    const r = await runSipp(['-sn', 'uac', s.target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-r', '150', '-m', String(calls), '-l', String(calls), '-d', '0'], { timeoutS: 60 });
    expect(r.successful + r.failed).toBe(calls);
    const refused = await pg.metric('peergate_refusals_total', { peer: 'carrier-a' });
    expect(refused).toBeGreaterThan(calls * 0.8);
    expect(refused).toBe(r.failed);

    const lines = pg.proc.output().split('\n').filter((l) => l.includes('"msg":"request refused"')).map((l) => JSON.parse(l) as { not_logged_before?: number });
    const leftOut = lines.reduce((n, l) => n + (l.not_logged_before ?? 0), 0);
    // ≈ 3 s of refusals in at most 2 workers (default on 2 cores): ≤ 2 × 10 lines per second.
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(2 * 10 * 6);
    expect(leftOut).toBeGreaterThan(0);
    // What was left out and counted in a later line never exceeds what was refused.
    expect(lines.length + leftOut).toBeLessThanOrEqual(refused);

    // Nothing of the flood stays: no call, slot or dialog; every transaction gone once its timers
    // run (the answered calls' client INVITEs wait out Timer D, 32 s).
    await waitFor(async () => (await pg!.metric('peergate_active_calls')) === 0, 10_000, 50, 'no active call');
    await waitFor(async () => (await pg!.metric('peergate_limit_sessions_local')) === 0, 10_000, 50, 'every slot free');
    await waitFor(async () => (await pg!.metric('peergate_engine_dialogs')) === 0, 10_000, 50, 'no engine dialog');
    await waitFor(async () => (await pg!.metric('peergate_engine_server_transactions')) + (await pg!.metric('peergate_engine_client_transactions')) === 0, 45_000, 250, 'no transaction');
    expect(await pg.metric('peergate_calls_total')).toBe(calls);
  }, 90_000);
});
