// How busy an event loop is: the share of wall time it spent outside its wait for I/O since the
// last reading (Node's performance.eventLoopUtilization). Overload control reads it per control
// interval in the primary and in each B2BUA worker (worker-backlog.ts) and exports the busiest
// (metrics.ts): whether a node that sheds is at its ceiling, which its queue's delay cannot say.
// Time a runnable loop waits for a core counts as busy; a wake-up delayed while it was idle does not.
import { performance } from 'node:perf_hooks';

/** A reader of this process's loop utilisation (0–1) over the time since its previous call
 *  (the first call: since it was made). */
export function loopUtilisation(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return Number.isFinite(u) ? Math.min(1, Math.max(0, u)) : 0;
  };
}
