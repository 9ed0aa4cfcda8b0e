// Issue #18.3 / #16.1: the kernel's receive queue as an overload signal, end to end. peergate is
// stopped (SIGSTOP) while a burst of INVITEs lands in its UDP listener's receive buffer: the
// event loop cannot see that backlog (no lag while stopped), the queue can. On SIGCONT the gate
// reads the queue and sheds new INVITEs with 503 + Retry-After (reason receive_queue) while the
// BYEs of established calls, queued behind the burst, are still answered.
import { describe, expect, it, afterAll } from 'vitest';
import { burstBehindHeldCalls, burstInvite, countsLeft, LAG_BACKLOG_SIGNALS_OFF, NOTHING_LEFT, openBurst, shedCount } from '../helpers/burst.js';
import { freePorts, startSipp, stopAll, waitFor } from '../helpers/procs.js';
import { startTwoSided } from '../helpers/peergate.js';

afterAll(stopAll);

const BURST = 3000;
/** RFC 3261 T1 of the node (policy engine.sip_timers): half the RFC's 500 ms, so the burst's
 *  never-ACKed transactions are gone after Timer H = 64*T1 = 16 s (not 32 s), while their
 *  final responses are still retransmitted no faster than twice the RFC's schedule. */
const T1 = 250;

describe('overload control: the UDP receive queue (issue #18.3)', () => {
  it('a backlog the event loop cannot see sheds new INVITEs (receive_queue); queued BYEs are still answered', async () => {
    const [uasPort] = await freePorts(1) as [number];
    startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1']);
    // Lag, the app's backlog and the workers' delay are left out (high marks, or off): the receive
    // queue is the signal under test. (The burst admitted after SIGCONT reaches the workers at
    // once, and their delay would rightly shed a share of it too.)
    const { pg, target, peerPort } = await startTwoSided(`sip:127.0.0.3:${uasPort}`, {
      media: { anchoring: false },
      engine: { sip_timers: { t1_ms: T1 } },
      overload: { ...LAG_BACKLOG_SIGNALS_OFF },
      // With a warm-up, as operators run it: the listeners open after it, and the queue signal
      // must watch them (it once watched the sockets bound at the engine's start: none).
      warmup: { calls: 100, rate: 200 },
    });
    // Call-IDs answered, by status (the burst never ACKs: final responses are retransmitted).
    const burst = await openBurst();
    const answered = burst.answered;
    const retryAfter = burst.retryAfter;
    try {
      // Five calls held 3 s: their BYEs leave SIPp while peergate is stopped, behind the burst.
      const heldRun = await burstBehindHeldCalls(pg, target, burst, peerPort, [Array.from({ length: BURST }, (_, i) => burstInvite('burst', i, burst.port))]);
      await waitFor(async () => answered(503) + answered(483) === BURST, 20_000, 100, 'every INVITE of the burst answered');

      const metrics = await pg.metrics();
      const shed = (reason: string) => shedCount(metrics, reason);
      expect(shed('receive_queue')).toBeGreaterThan(0);
      expect(shed('event_loop_lag') + shed('pending_setups') + shed('worker_backlog')).toBe(0);
      // Every refusal is one the sender heard, with Retry-After; the rest reached the B2BUA.
      expect(answered(503)).toBe(shed('receive_queue'));
      expect(retryAfter.size).toBe(answered(503));
      expect(answered(483)).toBeGreaterThan(0);
      expect(metrics).toMatch(/^peergate_udp_receive_queue_ratio /m);
      expect(metrics).toMatch(/^peergate_udp_receive_queue_bytes /m);
      // The established calls' BYEs, queued with the burst, were answered: every call ended by its caller.
      expect(heldRun.failed, heldRun.output.slice(-2000)).toBe(0);
      expect(heldRun.successful).toBe(5);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 10_000, 100, 'calls ended');
      expect(await pg.metric('peergate_calls_total', { result: 'caller_bye' })).toBe(5);
      // Nothing of the burst is left once RFC 3261's timers ran: the refused and the 483-answered
      // INVITEs were never ACKed by the burst socket, so their transactions wait out Timer H (64*T1).
      expect(await countsLeft(pg, T1)).toEqual(NOTHING_LEFT);
    } finally {
      burst.close();
      await pg.stop();
    }
  }, 120_000);
});
