// How long the pool waits before forking the replacement of a worker that died.
//
// A worker that served a while and died (a crash, an operator's SIGKILL, the OOM killer) is
// replaced at once: the node runs short of a worker for as little time as possible. One that
// dies soon after its start is likely to die again the same way (a fault it meets at start, a
// machine out of memory): its replacements wait 1 s, then 2, 4, 8, 16 and at most 30 s, the
// crash-loop back-off operators know from systemd and Kubernetes, so a crash loop costs neither
// a core of forks nor a flood of log lines. One slot's replacement that serves past the stable
// time starts the count again. No clock of its own: the caller says how long the worker served
// (0 for one that never did).

export interface RestartBackoffOptions {
  /** A worker that served at least this long is replaced at once, and the count starts again. */
  stableMs: number;
  /** The pause after the first short-lived worker; doubled for each one after it. */
  firstMs: number;
  /** The longest pause. */
  maxMs: number;
}

export const WORKER_RESTART_BACKOFF: Readonly<RestartBackoffOptions> = { stableMs: 10_000, firstMs: 1000, maxMs: 30_000 };

export class RestartBackoff {
  /** Short-lived deaths in a row, per worker slot. */
  private readonly shortLived = new Map<number, number>();

  constructor(private readonly opts: RestartBackoffOptions = WORKER_RESTART_BACKOFF) {}

  /** The worker of `slot` died after serving `servedMs`: the pause before its replacement. */
  pause(slot: number, servedMs: number): number {
    if (servedMs >= this.opts.stableMs) {
      this.shortLived.delete(slot);
      return 0;
    }
    const n = (this.shortLived.get(slot) ?? 0) + 1;
    this.shortLived.set(slot, n);
    // The streak grows without bound in a long crash loop; the exponent stops at 30.
    return Math.min(this.opts.firstMs * 2 ** Math.min(n - 1, 30), this.opts.maxMs);
  }

  /** Short-lived deaths in a row of `slot`'s workers (0 once one served past the stable time). */
  streak(slot: number): number {
    return this.shortLived.get(slot) ?? 0;
  }
}
