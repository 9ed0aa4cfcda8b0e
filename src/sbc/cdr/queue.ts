// A bounded, non-blocking delivery queue for one record sink. `push` never waits and never
// throws: the call flow hands a record over and moves on. One batch is in flight at a time; a
// batch that fails is counted, kept at the head (so order holds) and retried after a backoff
// that doubles up to `maxBackoffMs`. Beyond `max` waiting lines the oldest are dropped and
// counted, so a dead sink costs bounded memory.

export interface QueueCounters {
  written(n: number): void;
  failed(n: number, err: Error): void;
  dropped(n: number): void;
}

export interface SinkQueueOptions {
  max: number;
  /** Lines per delivery. */
  batch?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class SinkQueue<T> {
  private readonly lines: T[] = [];
  private inFlight = false;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly deliver: (items: T[]) => Promise<void>,
    private readonly counters: QueueCounters,
    private readonly opts: SinkQueueOptions,
  ) {}

  /** Lines waiting (not counting a batch in flight). */
  get pending(): number { return this.lines.length; }

  push(line: T): void {
    if (this.closed) { this.counters.dropped(1); return; }
    this.lines.push(line);
    if (this.lines.length > this.opts.max) {
      const excess = this.lines.length - this.opts.max;
      this.lines.splice(0, excess);
      this.counters.dropped(excess);
    }
    this.kick();
  }

  /** Resolves when nothing is waiting or in flight, or after `timeoutMs`; true if empty. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; this.kick(); }
    if (this.idle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<boolean>((r) => this.idleWaiters.push(() => r(true))),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(false), timeoutMs); }),
    ]);
    clearTimeout(timer);
    return ok;
  }

  /** Stop accepting lines; what is still waiting after `flush` is dropped and counted. */
  async close(timeoutMs: number): Promise<void> {
    await this.flush(timeoutMs);
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.lines.length) { this.counters.dropped(this.lines.length); this.lines.length = 0; }
  }

  private idle(): boolean { return !this.inFlight && this.lines.length === 0; }

  private kick(): void {
    if (this.inFlight || this.retryTimer || this.lines.length === 0) return;
    const batch = this.lines.splice(0, this.opts.batch ?? 256);
    this.inFlight = true;
    let p: Promise<void>;
    try { p = this.deliver(batch); } catch (err) { p = Promise.reject(err as Error); }
    p.then(() => {
      this.inFlight = false;
      this.backoffMs = 0;
      this.counters.written(batch.length);
      this.next();
    }, (err: unknown) => {
      this.inFlight = false;
      this.counters.failed(batch.length, err instanceof Error ? err : new Error(String(err)));
      if (this.closed) { this.counters.dropped(batch.length); this.next(); return; }
      // Back at the head, within the bound.
      this.lines.unshift(...batch);
      if (this.lines.length > this.opts.max) {
        const excess = this.lines.length - this.opts.max;
        this.lines.splice(0, excess);
        this.counters.dropped(excess);
      }
      this.backoffMs = Math.min(this.opts.maxBackoffMs ?? 30_000, Math.max(this.opts.minBackoffMs ?? 500, this.backoffMs * 2));
      this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.kick(); }, this.backoffMs);
      this.retryTimer.unref();
    });
  }

  private next(): void {
    if (this.lines.length) { this.kick(); return; }
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}
