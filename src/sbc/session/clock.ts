// The session module's clock: node's timers, unref'd (src/clock.ts is the interface tests fake).
import type { Clock } from '../../clock.js';

export type { Clock };

/** Node's timers, unref'd: a call's timer never keeps the process alive on its own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
