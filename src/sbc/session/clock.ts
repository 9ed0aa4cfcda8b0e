// The session module's clock: node's timers, unref'd (src/clock.ts is the interface tests fake).
import type { Clock } from '../../clock.js';

export type { Clock };

/** A clock that may also tell monotonic time (the deadline queue prefers it: deadlines.ts). */
export type SessionClock = Clock & { elapsed?(): number };

/** Node's timers, unref'd: a call's timer never keeps the process alive on its own. */
export const systemClock: SessionClock = {
  now: () => Date.now(),
  elapsed: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
