// Overload control must not take a slow callee for an overloaded node (issue #18.3). Calls that
// wait seconds for their first ringing (a mobile callee being paged, a slow downstream network:
// post-dial delay) are INVITEs without a provisional response beyond 100 Trying, thousands of
// them at a carrier's rate, while the node itself idles. Counting them as the app's backlog
// (overload.pending_high, 2,000 by default until 2026-12-07) refused new calls from every peer:
// 250 calls/s with 10 s of post-dial delay keep ≈ 2,500 of them waiting. With the defaults
// every call here is answered and nothing is shed; what the node holds is gone once RFC 3261's
// timers ran.
import { describe, expect, it, afterAll } from 'vitest';
import { join } from 'node:path';
import { countsLeft, NOTHING_LEFT, shedCount } from '../helpers/burst.js';
import { freePorts, runSipp, startSipp, stopAll } from '../helpers/procs.js';
import { startTwoSided } from '../helpers/peergate.js';
import { SIPP_DIR } from '../helpers/engine.js';

afterAll(stopAll);

const RATE = 250;
const SECONDS = 11;
const TOTAL = RATE * SECONDS;
/** Post-dial delay: the uas's pause between its 100 Trying and its 180 (ms). */
const PDD_MS = 10_000;
/** RFC 3261 T1 of the node (policy engine.sip_timers), as in stuck-load.test.ts: Timers J/L/M run 16 s. */
const T1 = 250;

describe('overload control and a slow callee (issue #18.3)', () => {
  it(`${RATE} calls/s with ${PDD_MS / 1000} s of post-dial delay: no call shed, all answered, nothing left`, async () => {
    const [uasPort] = await freePorts(1) as [number];
    startSipp(['-sf', join(SIPP_DIR, 'uas-slow-ring.xml'), '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1',
      '-d', String(PDD_MS), '-max_socket', '5000']);
    const { pg, target } = await startTwoSided(`sip:127.0.0.3:${uasPort}`, {
      media: { anchoring: false },
      engine: { sip_timers: { t1_ms: T1 } },
      // A target that rings this late is no dead one (failover.no_answer_ms, 5 s by default).
      failover: { no_answer_ms: PDD_MS + 5_000 },
      peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    });
    try {
      const r = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
        '-r', String(RATE), '-m', String(TOTAL), '-l', String(TOTAL), '-d', '0', '-max_socket', '5000'], { timeoutS: SECONDS + PDD_MS / 1000 + 40 });
      const metrics = await pg.metrics();
      for (const reason of ['pending_setups', 'event_loop_lag', 'receive_queue', 'worker_backlog', 'transactions', 'dialogs']) {
        expect(shedCount(metrics, reason), reason).toBe(0);
      }
      expect(r.failed, r.output.slice(-6000)).toBe(0);
      expect(r.successful).toBe(TOTAL);
      expect(await countsLeft(pg, T1)).toEqual(NOTHING_LEFT);
      expect(await pg.metric('peergate_calls_total', { result: 'caller_bye' })).toBe(TOTAL);
    } finally {
      await pg.stop();
    }
  }, 150_000);
});
