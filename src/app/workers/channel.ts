// Request/response and one-way notices over a Node IPC channel (child_process.fork's
// `process.send` / `child.send`), the only link between the primary and its B2BUA workers.
//   { k: 'q', id, m, a }            request: method m with arguments a
//   { k: 'r', id, ok, v | e }       its answer (e: { message, unavailable? })
//   { k: 'n', m, a }                notice: no answer
// Requests are bounded by a timeout (except those the caller marks long, such as "tell me
// when you are idle"), and every pending one is rejected when the channel closes, so a dead
// peer never hangs a call setup or the admin API.

/** The two ends of a fork: ChildProcess on the primary, `process` in the worker. */
export interface IpcEndpoint {
  send?(msg: object): boolean;
  on(event: 'message', fn: (msg: unknown) => void): unknown;
  off(event: 'message', fn: (msg: unknown) => void): unknown;
  readonly connected?: boolean;
}

export type Handler = (...args: never[]) => unknown;

interface Pending { resolve(v: unknown): void; reject(e: unknown): void; timer: NodeJS.Timeout | undefined }

interface Wire { k?: unknown; id?: unknown; m?: unknown; a?: unknown; ok?: unknown; v?: unknown; e?: unknown }

export class Channel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private readonly onMessage = (msg: unknown) => this.receive(msg as Wire);

  constructor(
    private readonly end: IpcEndpoint,
    private readonly handlers: Record<string, Handler>,
    private readonly timeoutMs = 5000,
  ) {
    end.on('message', this.onMessage);
  }

  /** Ask the other side; rejects on its error, on timeout (unless `long`) and when the channel closes. */
  call(m: string, args: unknown[] = [], opts: { long?: boolean } = {}): Promise<unknown> {
    if (this.closed || !this.end.send || this.end.connected === false) return Promise.reject({ unavailable: true, message: 'worker channel closed' });
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = opts.long ? undefined : setTimeout(() => {
        this.pending.delete(id);
        reject({ unavailable: true, message: `no answer to ${m} within ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      timer?.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.post({ k: 'q', id, m, a: args });
    });
  }

  /** Tell the other side; nothing comes back. */
  notify(m: string, args: unknown[] = []): void {
    if (!this.closed) this.post({ k: 'n', m, a: args });
  }

  /** Reject everything pending; later calls reject at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.end.off('message', this.onMessage);
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject({ unavailable: true, message: 'worker channel closed' }); }
    this.pending.clear();
  }

  private post(msg: object): void {
    try {
      if (this.end.connected !== false) this.end.send?.(msg as object);
    } catch { /* the other side is gone: its exit is handled by the owner */ }
  }

  private receive(msg: Wire): void {
    if (typeof msg !== 'object' || msg === null) return;
    if (msg.k === 'r' && typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.v); else p.reject(msg.e);
      return;
    }
    if ((msg.k !== 'q' && msg.k !== 'n') || typeof msg.m !== 'string') return;
    const h = Object.hasOwn(this.handlers, msg.m) ? this.handlers[msg.m] : undefined;
    const args = (Array.isArray(msg.a) ? msg.a : []) as never[];
    if (msg.k === 'n') {
      try { void Promise.resolve(h?.(...args)).catch(() => undefined); } catch { /* a notice has no answer */ }
      return;
    }
    const id = msg.id;
    void (async () => {
      try {
        if (!h) throw { unavailable: false, message: `unknown request ${msg.m as string}` };
        const v = await h(...args);
        this.post({ k: 'r', id, ok: true, v: v === undefined ? null : v });
      } catch (err) {
        const e = err instanceof Error ? { unavailable: false, message: err.message } : err;
        this.post({ k: 'r', id, ok: false, e });
      }
    })();
  }
}
