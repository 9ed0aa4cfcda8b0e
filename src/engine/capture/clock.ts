// The time a captured message is stamped with: wall-clock milliseconds with a microsecond
// fraction. HEP carries seconds and microseconds, and a collector (Homer, sngrep) orders a
// call's messages by them, so two messages of one call a few µs apart must not share a stamp,
// as they would with Date.now()'s milliseconds. The fraction comes from the monotonic clock,
// anchored to the wall clock and re-anchored when the two drift apart (NTP slews and steps the
// wall clock only). Stamps never go backwards within the process, so one node's captures keep
// the order it handled the messages in.

const RESYNC_EVERY_MS = 10_000;
/** Drift of the anchored clock from Date.now() that a re-anchor corrects (Date.now() is whole ms). */
const RESYNC_DRIFT_MS = 2;

export interface CaptureClock { (): number }

/** A capture clock over the given monotonic and wall-clock sources (injectable for tests). */
export function captureClock(monotonicMs: () => number = () => performance.now(), wallMs: () => number = Date.now): CaptureClock {
  let offset = wallMs() - monotonicMs();
  let checkedAt = monotonicMs();
  let last = 0;
  return () => {
    const m = monotonicMs();
    if (m - checkedAt >= RESYNC_EVERY_MS) {
      checkedAt = m;
      const w = wallMs();
      if (Math.abs(w - (m + offset)) > RESYNC_DRIFT_MS) offset = w - m;
    }
    const t = m + offset;
    // One µs past the last stamp at least: ties and a re-anchor backwards keep the handling order.
    last = t > last ? t : last + 0.001;
    return last;
  };
}

/** The process's capture clock. */
export const captureNow: CaptureClock = captureClock();
