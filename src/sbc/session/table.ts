// The established calls of this B2BUA, and the periodic reconciliation that ends any call whose
// dialog is gone on either leg or whose media stopped (issue #16.2: nothing holds a slot for ever).
//
// Contract:
// * `sweep()` looks at every call once. A leg is gone when drachtio-srf says so (`connected`
//   false) or, with the embedded engine, when the engine no longer holds that dialog. A call
//   seen with a leg gone on two sweeps in a row is ended `dialog_gone` (BYE on both legs, Reason
//   481): one sweep of grace lets a BYE that is on its way to the app end the call normally.
// * Calls anchored on rtpengine are asked for their last media packet: no packet for longer than
//   the call's media timeout, or rtpengine no longer knowing the call (its own --timeout deleted
//   it), ends the call `media_timeout`.
// * `start()` runs sweeps on a timer; `stop()` ends the timer (calls are untouched).
import type { Clock } from './clock.js';
import type { CallSession, PeergateEnding } from './call.js';

/** Media activity of an anchored call: ms since epoch of its last packet, or `gone` when rtpengine dropped it. */
export type MediaActivity = { lastPacketMs: number } | 'gone' | undefined;

export interface SessionTableOptions {
  clock: Clock;
  /** With the embedded engine: whether the engine still holds the dialog with this drachtio id. */
  dialogExists?: (dialogId: string) => boolean;
  /** rtpengine's view of an anchored call. */
  mediaActivity?: (callId: string) => Promise<MediaActivity>;
}

export class SessionTable {
  private readonly calls = new Map<string, CallSession>();
  private timer: unknown;
  private sweeping = false;

  constructor(private readonly o: SessionTableOptions) {}

  get size(): number { return this.calls.size; }

  add(call: CallSession, media: { anchored: boolean; timeoutS: number }): void {
    if (call.isEnded) return;
    // The call carries its own table entry (one record per call rather than one more object).
    call.anchored = media.anchored;
    call.mediaTimeoutS = media.timeoutS;
    call.table = this;
    this.calls.set(call.id, call);
  }

  remove(id: string): void { this.calls.delete(id); }

  get(id: string): CallSession | undefined { return this.calls.get(id); }

  /** End one call from our side (admin, drain): false when it is not up. */
  end(id: string, result: PeergateEnding): boolean {
    const c = this.calls.get(id);
    if (!c) return false;
    void c.end(result);
    return true;
  }

  /** End every call from our side; returns how many. */
  endAll(result: PeergateEnding): number {
    const all = [...this.calls.values()];
    for (const c of all) void c.end(result);
    return all.length;
  }

  /** Run a sweep every `intervalS` seconds (re-read each time, so a policy reload applies). */
  start(intervalS: () => number): void {
    const tick = () => {
      this.timer = this.o.clock.setTimeout(() => { void this.sweep().finally(tick); }, intervalS() * 1000);
    };
    tick();
  }

  stop(): void {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One reconciliation pass; resolves with the calls it ended, by result. */
  async sweep(): Promise<Record<string, number>> {
    const ended: Record<string, number> = {};
    if (this.sweeping) return ended;
    this.sweeping = true;
    const count = (r: string) => { ended[r] = (ended[r] ?? 0) + 1; };
    try {
      const now = this.o.clock.now();
      const media: Array<Promise<void>> = [];
      for (const c of [...this.calls.values()]) {
        if (c.isEnded) { this.calls.delete(c.id); continue; }
        if (this.legGone(c)) {
          if (c.goneMark) { c.end('dialog_gone'); count('dialog_gone'); continue; }
          c.goneMark = true;
        } else {
          c.goneMark = false;
        }
        const timeoutMs = c.mediaTimeoutS * 1000;
        if (c.anchored && timeoutMs > 0 && this.o.mediaActivity && now - c.startedAt >= timeoutMs) {
          media.push(this.o.mediaActivity(c.id).then((a) => {
            if (c.isEnded || a === undefined) return;
            if (a === 'gone' || this.o.clock.now() - a.lastPacketMs > timeoutMs) { c.end('media_timeout'); count('media_timeout'); }
          }, () => undefined));
        }
      }
      await Promise.all(media);
    } finally {
      this.sweeping = false;
    }
    return ended;
  }

  private legGone(c: CallSession): boolean {
    const { uas, uac } = c.legs;
    if (!uas.connected || !uac.connected) return true;
    const exists = this.o.dialogExists;
    return exists !== undefined && (!exists(uas.id) || !exists(uac.id));
  }
}
