// Issue #18.3: overload control sees the B2BUA workers. With `workers: 2` one worker's event
// loop is stalled (SIGSTOP: the limit of a saturated loop, its INVITEs wait on the wire socket)
// while the primary stays idle: its own lag, receive queue and setups in progress (mark 2,000)
// see nothing, the worker-backlog signal does. New INVITEs then get a quick 503 with
// Retry-After (reason worker_backlog) while the established calls' BYEs, on both workers, are
// answered; once the worker runs again the shedding ends and calls go through.
import { describe, expect, it, afterAll } from 'vitest';
import { burstInvite, countsLeft, NOTHING_LEFT, openBurst, shedCount } from '../helpers/burst.js';
import { freePorts, heldCalls, runSipp, startSipp, stopAll, waitFor } from '../helpers/procs.js';
import { startTwoSided, type RunningPeergate } from '../helpers/peergate.js';

afterAll(stopAll);

/** INVITEs sent while the worker is stopped: BATCH every TICK_MS for STALL_MS (≈ 400/s). */
const BATCH = 20;
const TICK_MS = 50;
const STALL_MS = 1500;
/** RFC 3261 T1 of the node (policy engine.sip_timers): half the RFC's 500 ms, so the stall's
 *  never-ACKed transactions are gone after Timer H = 64*T1 = 16 s (not 32 s), while their
 *  final responses are still retransmitted no faster than twice the RFC's schedule. */
const T1 = 250;

async function workerPids(pg: RunningPeergate): Promise<number[]> {
  const r = await pg.admin('/admin/calls');
  const calls = (await r.json() as { calls: { worker_pid: number }[] }).calls;
  return [...new Set(calls.map((c) => c.worker_pid))];
}


describe('overload control: the workers\' backlog (issue #18.3)', () => {
  it('a stalled worker sheds new INVITEs quickly (worker_backlog); in-dialog requests still succeed; recovery after', async () => {
    const [uasPort] = await freePorts(1) as [number];
    startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1']);
    const { pg, target, peerPort } = await startTwoSided(`sip:127.0.0.3:${uasPort}`, { workers: 2, media: { anchoring: false }, engine: { sip_timers: { t1_ms: T1 } } });
    const sentAt = new Map<string, number>();
    const refusedAfterMs: number[] = [];
    // A retransmission (the burst never ACKs) is counted once.
    const burst = await openBurst((status, callId) => {
      if (status === 503) refusedAfterMs.push(Date.now() - (sentAt.get(callId) ?? NaN));
    });
    const answered = burst.answered;
    try {
      // Four established calls, two per worker (round-robin), whose BYEs leave during the stall.
      const held = heldCalls(target, '127.0.0.2', 4, 1200);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 4, 10_000, 50, 'four calls up');
      const pids = await workerPids(pg);
      expect(pids.length).toBe(2);
      expect(await pg.metric('peergate_overload_loss_percent')).toBe(0);

      // The workers report their delay (an idle loop's timer drift is a fraction of a ms, never 0).
      await waitFor(async () => (await pg.metric('peergate_worker_event_loop_delay_seconds')) > 0, 5000, 100, 'worker delay reports arriving');
      const stalled = pids[0]!;
      process.kill(stalled, 'SIGSTOP');
      const stoppedAt = Date.now();
      let sent = 0;
      let firstRefusalMs: number | undefined;
      try {
        while (Date.now() - stoppedAt < STALL_MS) {
          for (let k = 0; k < BATCH; k++, sent++) {
            sentAt.set(`stall-${sent}@127.0.0.2`, Date.now());
            burst.socket.send(burstInvite('stall', sent, burst.port), peerPort, '127.0.0.1');
          }
          if (firstRefusalMs === undefined && answered(503) > 0) firstRefusalMs = Date.now() - stoppedAt;
          await new Promise((r) => setTimeout(r, TICK_MS));
        }
        // Still stopped: silent past its period, the worker counts as fully busy.
        await waitFor(async () => (await pg.metric('peergate_overload_loop_utilisation_ratio')) === 1, 2000, 50, 'the stopped worker counted as busy');
      } finally {
        process.kill(stalled, 'SIGCONT');
      }
      const refusedDuringStall = answered(503);

      const heldRun = await held;
      await waitFor(() => answered(503) + answered(483) === sent, 20_000, 100, 'every INVITE sent during the stall answered');
      const metrics = await pg.metrics();
      // Refused while the worker was stopped, early in the stall, each at once by the primary.
      expect(refusedDuringStall).toBeGreaterThan(0);
      expect(firstRefusalMs).toBeLessThan(STALL_MS);
      refusedAfterMs.sort((a, b) => a - b);
      expect(refusedAfterMs[Math.floor(refusedAfterMs.length / 2)]).toBeLessThan(250);
      expect(burst.retryAfter.size).toBe(answered(503));
      expect(shedCount(metrics, 'worker_backlog')).toBeGreaterThan(0);
      const reasons = ['event_loop_lag', 'receive_queue', 'pending_setups', 'transactions', 'dialogs', 'worker_backlog', 'queue_sojourn'];
      expect(reasons.reduce((a, r) => a + shedCount(metrics, r), 0)).toBe(answered(503));
      expect(answered(483)).toBeGreaterThan(0); // the rest reached the B2BUA
      expect(metrics).toMatch(/^peergate_worker_event_loop_delay_seconds /m);
      // The established calls' BYEs (some to the stopped worker, retransmitted by SIPp) were answered.
      expect(heldRun.failed, heldRun.output.slice(-2000)).toBe(0);
      expect(heldRun.successful).toBe(4);

      // Recovery: the shedding ends, new calls go through on both workers, nothing more refused.
      await waitFor(async () => (await pg.metric('peergate_overload_loss_percent')) === 0, 10_000, 100, 'loss back to 0');
      const shedBefore = await pg.metric('peergate_shed_total');
      const after = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '20', '-r', '20'], { timeoutS: 30 });
      expect(after.failed, after.output.slice(-2000)).toBe(0);
      expect(after.successful).toBe(20);
      expect(await pg.metric('peergate_shed_total')).toBe(shedBefore);
      // Nothing of the burst is left once RFC 3261's timers ran (refused and 483-answered INVITEs
      // were never ACKed: their transactions wait out Timer H, 64*T1), on either worker.
      expect(await countsLeft(pg, T1)).toEqual(NOTHING_LEFT);
      // The busiest loop's utilisation, back from 1 now that the node is idle: far from its
      // ceiling. Read after the run, not before the stall: a node just started still compiles
      // its hot path (BENCHMARKS.md "CPU per call against the rate"), and on a busy machine a
      // loop waiting for a core counts as busy (0.59 was read there once under two CPU hogs).
      const idleUtilisation = await waitFor(async () => {
        const u = await pg.metric('peergate_overload_loop_utilisation_ratio');
        return u > 0 && u < 0.5 ? u : undefined;
      }, 5000, 100, 'the idle node\'s utilisation between 0 and 0.5');
      expect(idleUtilisation).toBeLessThan(0.5);
    } finally {
      burst.close();
      await pg.stop();
    }
  }, 120_000);

  it('a worker killed with SIGKILL: its last report is forgotten, nothing is shed while it is replaced', async () => {
    const [uasPort] = await freePorts(1) as [number];
    startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1']);
    const { pg, target } = await startTwoSided(`sip:127.0.0.3:${uasPort}`, { workers: 2, media: { anchoring: false } });
    try {
      const held = heldCalls(target, '127.0.0.2', 2, 8000);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 2, 10_000, 50, 'two calls up');
      const pids = await workerPids(pg);
      expect(pids.length).toBe(2);
      await waitFor(async () => (await pg.metric('peergate_worker_event_loop_delay_seconds')) > 0, 5000, 100, 'worker delay reports arriving');
      process.kill(pids[0]!, 'SIGKILL');
      // A dead worker's silence would read as a growing delay (then stale after 2 s): calls during
      // those 2 s go to the live worker and none is refused.
      const during = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '50', '-r', '20'], { timeoutS: 30 });
      expect(during.failed, during.output.slice(-2000)).toBe(0);
      expect(during.successful).toBe(50);
      expect(await pg.metric('peergate_shed_total')).toBe(0);
      await held; // the killed worker's call ended by the engine (BYE): SIPp counts it failed
    } finally {
      await pg.stop();
    }
  }, 120_000);
});
