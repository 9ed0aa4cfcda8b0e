// Issue #18.3: calls in progress before new calls (overload.priority_ingress). peergate is
// stopped (SIGSTOP) while a burst of new INVITEs lands in its UDP listener's receive buffer, with
// the BYEs of established calls queued behind the burst. On SIGCONT the priority ingress lets the
// BYEs through as they are read, ahead of the INVITEs read before them; the INVITEs wait their
// turn and those that waited past ingress_sojourn_ms get 503 + Retry-After (queue_sojourn).
// Every other signal is off, so the ingress is what is under test.
import { describe, expect, it, afterAll } from 'vitest';
import { burstBehindHeldCalls, burstInvite, countsLeft, LAG_BACKLOG_SIGNALS_OFF, NOTHING_LEFT, openBurst, RECEIVE_QUEUE_OFF, shedCount } from '../helpers/burst.js';
import { freePorts, startSipp, stopAll, waitFor } from '../helpers/procs.js';
import { startTwoSided } from '../helpers/peergate.js';

afterAll(stopAll);

/** 2,000 INVITEs (≈ 4.6 MB of kernel charge) leave the late BYEs room in the 4 MiB (doubled by the kernel) receive buffer. */
const BURST = 2000;
/** In-dialog requests sent behind the burst: BYEs for dialogs that do not exist, answered 481 at once. */
const LATE_BYES = 20;
const SOJOURN_MS = 20;
/** RFC 3261 T1 of the node: Timer H (64·T1) ends the burst's never-ACKed transactions after 16 s. */
const T1 = 250;

function strayBye(i: number, port: number): Buffer {
  return Buffer.from(`BYE sip:+15550001@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:${port};branch=z9hG4bK-stray-${i}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:burst@127.0.0.2>;tag=s${i}\r\nTo: <sip:+15550001@127.0.0.1>;tag=gone${i}\r\nCall-ID: stray-${i}@127.0.0.2\r\n` +
    `CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`);
}

describe('overload control: priority ingress (issue #18.3)', () => {
  it('a burst of new INVITEs far above capacity: queued BYEs are answered, INVITEs past their sojourn get 503 quickly', async () => {
    const [uasPort] = await freePorts(1) as [number];
    startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1']);
    const { pg, target, peerPort } = await startTwoSided(`sip:127.0.0.3:${uasPort}`, {
      media: { anchoring: false },
      engine: { sip_timers: { t1_ms: T1 } },
      overload: {
        ...LAG_BACKLOG_SIGNALS_OFF, ...RECEIVE_QUEUE_OFF, priority_ingress: true, ingress_sojourn_ms: SOJOURN_MS,
      },
    });
    /** ms after SIGCONT of each first 503, of each INVITE's first final answer, of each 481. */
    const refusedAt: number[] = [];
    const inviteAnsweredAt: number[] = [];
    const byeAnsweredAt: number[] = [];
    let resumed = 0;
    const burst = await openBurst((status) => {
      const at = Date.now() - resumed;
      if (status === 503) refusedAt.push(at);
      if (status === 503 || status === 483) inviteAnsweredAt.push(at);
      if (status === 481) byeAnsweredAt.push(at);
    });
    const answered = burst.answered;
    const retryAfter = burst.retryAfter;
    try {
      const heldRun = await burstBehindHeldCalls(pg, target, burst, peerPort, [
        Array.from({ length: BURST }, (_, i) => burstInvite('prio', i, burst.port)),
        Array.from({ length: LATE_BYES }, (_, i) => strayBye(i, burst.port)),
      ], () => { resumed = Date.now(); });
      await waitFor(async () => answered(503) + answered(483) === BURST, 20_000, 100, 'every INVITE of the burst answered');

      const metrics = await pg.metrics();
      const shed = (reason: string) => shedCount(metrics, reason);
      expect(shed('queue_sojourn')).toBeGreaterThan(0);
      expect(shed('receive_queue') + shed('event_loop_lag') + shed('pending_setups') + shed('worker_backlog')).toBe(0);
      expect(answered(503)).toBe(shed('queue_sojourn'));
      expect(retryAfter.size).toBe(answered(503));
      expect(answered(483)).toBeGreaterThan(0); // the first slices reached the B2BUA
      // Refusing starts as soon as INVITEs come due (a CPU-starved machine stretches the rest).
      refusedAt.sort((a, b) => a - b);
      expect(refusedAt[0]).toBeLessThan(1000);
      // Priority: the in-dialog requests read after all the burst's INVITEs were answered before most of
      // them (in the kernel's order they would come after every one; here they wait only for the
      // reading, 32 datagrams per turn of the loop, while the INVITEs go 16 per turn: about half
      // the burst was answered by then on an idle machine).
      expect(answered(481)).toBe(LATE_BYES);
      inviteAnsweredAt.sort((a, b) => a - b);
      const p90 = inviteAnsweredAt[Math.floor(0.9 * inviteAnsweredAt.length)]!;
      console.log(`priority ingress: ${answered(503)} of ${BURST} refused (queue_sojourn), first 503 after ${refusedAt[0]} ms; `
        + `481s to the late in-dialog requests by ${Math.max(...byeAnsweredAt)} ms, INVITEs answered p50/p90/last ${inviteAnsweredAt[Math.floor(inviteAnsweredAt.length / 2)]}/${p90}/${inviteAnsweredAt[inviteAnsweredAt.length - 1]} ms`);
      expect(Math.max(...byeAnsweredAt), `481s at ${byeAnsweredAt.join(',')} ms, 90 % of the INVITEs answered by ${p90} ms`).toBeLessThan(p90);
      // The established calls' BYEs, read after the burst, were answered: every call ended by its caller.
      expect(heldRun.failed, heldRun.output.slice(-2000)).toBe(0);
      expect(heldRun.successful).toBe(5);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 10_000, 100, 'calls ended');
      expect(await pg.metric('peergate_calls_total', { result: 'caller_bye' })).toBe(5);
      // Nothing of the burst is left once RFC 3261's timers ran.
      expect(await countsLeft(pg, T1)).toEqual(NOTHING_LEFT);
    } finally {
      burst.close();
      await pg.stop();
    }
  }, 120_000);
});
