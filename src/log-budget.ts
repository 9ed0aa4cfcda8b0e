// A budget of log lines per kind, so a flood cannot turn into a flood of log lines. A refused
// request is one cheap datagram for whoever sends it and, at `info`, one JSON line for us and
// for whatever reads our stdout (journald, a shipper, a disk). Every refusal is still counted in
// the metrics; the log keeps the first lines of each kind per second and says how many it left out.

export interface LineBudgetOptions {
  /** Lines of one kind written per window before the rest are left out. */
  linesPerWindow?: number;
  windowMs?: number;
  /** Kinds tracked at once; more are forgotten oldest first (their left-out counts with them). */
  maxKinds?: number;
  now?: () => number;
}

interface Kind { windowStart: number; written: number; leftOut: number }

export class LineBudget {
  private readonly kinds = new Map<string, Kind>();
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly maxKinds: number;
  private readonly now: () => number;

  constructor(o: LineBudgetOptions = {}) {
    this.perWindow = o.linesPerWindow ?? 10;
    this.windowMs = o.windowMs ?? 1000;
    this.maxKinds = o.maxKinds ?? 1024;
    this.now = o.now ?? Date.now;
  }

  /**
   * Whether a line of `kind` may be written now: undefined if not (it is counted as left out),
   * else how many lines of that kind were left out since the last one written (0 when none).
   */
  take(kind: string): number | undefined {
    const t = this.now();
    let k = this.kinds.get(kind);
    if (k === undefined) {
      if (this.kinds.size >= this.maxKinds) this.kinds.delete(this.kinds.keys().next().value!);
      k = { windowStart: t, written: 0, leftOut: 0 };
      this.kinds.set(kind, k);
    } else if (t - k.windowStart >= this.windowMs) {
      k.windowStart = t;
      k.written = 0;
    }
    if (k.written >= this.perWindow) { k.leftOut++; return undefined; }
    k.written++;
    const leftOut = k.leftOut;
    k.leftOut = 0;
    return leftOut;
  }
}
