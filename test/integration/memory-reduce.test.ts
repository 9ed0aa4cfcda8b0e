// Policy key `memory` (src/app/memory-reducer.ts): `peergate start` with two workers reduces
// its memory once the burst of call set-ups is over and the engine is quiet — not while the
// set-ups' transactions are alive, and once per burst — and the held calls go on: their BYEs
// (in-dialog requests after the reduction) end them on both legs. Real SIPp on both sides.
// SIP timers are shortened (T1 50 ms: transactions end after 64 × T1 = 3.2 s) so the quiet
// comes within seconds.
import { describe, it, expect, afterAll } from 'vitest';
import { freePorts, heldCalls, startUas, stopAll, waitFor } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy } from '../helpers/peergate.js';

afterAll(() => stopAll());

describe('memory reduction after a burst', () => {
  it('runs once the engine is quiet after the set-ups, once per burst; held calls go on', async () => {
    const [uasPort, peerPort, corePort, opsPort] = await freePorts(4) as [number, number, number, number];
    startUas(CORE_IP, uasPort);
    const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'warn' }, {
      media: { anchoring: false }, lifecycle: { drain_timeout_s: 0 }, workers: 2,
      engine: { sip_timers: { t1_ms: 50, t2_ms: 400, t4_ms: 500 } },
      memory: { burst_transactions: 10, quiet_transactions: 0, quiet_s: 2 },
    }), { readyTimeoutMs: 60_000 });
    try {
      const reductions = () => pg.metric('peergate_memory_reductions_total');
      const n = 8;
      const offered = heldCalls(`127.0.0.1:${peerPort}`, PEER_IP, n, 15_000);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === n, 20_000, 50, `${n} calls up`);
      // The set-ups' transactions are alive: not quiet, no reduction.
      expect(await pg.metric('peergate_engine_server_transactions') + await pg.metric('peergate_engine_client_transactions')).toBeGreaterThan(0);
      expect(await reductions()).toBe(0);
      // Their 3.2 s, then 2 s quiet (sampled every 2 s).
      await waitFor(async () => (await reductions()) === 1, 15_000, 200, 'one memory reduction');
      expect(await pg.metric('peergate_memory_reduction_pause_seconds')).toBeGreaterThan(0);
      expect(await pg.metric('peergate_active_calls')).toBe(n);
      // Still quiet, same burst: no second reduction.
      await new Promise((r) => setTimeout(r, 5000));
      expect(await reductions()).toBe(1);
      // The calls end by SIPp's BYEs, relayed through the reduced processes.
      const r = await offered;
      expect(r.failed, r.output.slice(-2000)).toBe(0);
      expect(r.successful).toBe(n);
      await waitFor(async () => (await pg.metric('peergate_calls_total', { peer: 'carrier-a', result: 'caller_bye' })) === n, 5000, 100, `${n} calls ended by BYE`);
      expect(await pg.metric('peergate_active_calls')).toBe(0);
    } finally {
      await pg.stop();
    }
    expect(pg.proc.child.exitCode).toBe(0);
  }, 90_000);
});
