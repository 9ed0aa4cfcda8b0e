// A fake clock and fake srf dialogs for the session module's unit tests.
import { EventEmitter } from 'node:events';
import type { Clock } from '../../../src/sbc/session/clock.js';
import type { LegDialog } from '../../../src/sbc/session/call.js';

export class FakeClock implements Clock {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown { const id = ++this.seq; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimeout(h: unknown): void { this.timers.delete(h as number); }
  get pending(): number { return this.timers.size; }
  /** Advance, firing due timers in order (and letting promise callbacks run between them). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    this.t = end;
  }
}

/** A dialog that records the requests it was asked to send. */
export class FakeDialog extends EventEmitter implements LegDialog {
  connected = true;
  local = { sdp: 'v=0\r\n' };
  sent: Array<{ method: string; headers?: Record<string, string> }> = [];
  /** Status the far side answers our refreshes with. */
  answer = 200;
  constructor(readonly id: string) { super(); }
  destroy(opts?: { headers: Record<string, string> }): Promise<unknown> {
    this.sent.push({ method: 'BYE', ...(opts ? { headers: opts.headers } : {}) });
    this.connected = false;
    return Promise.resolve();
  }
  request(opts: { method: string }): Promise<{ status: number }> {
    this.sent.push({ method: opts.method });
    return Promise.resolve({ status: this.answer });
  }
  modify(_sdp: string): Promise<unknown> {
    this.sent.push({ method: 'INVITE' });
    return this.answer < 300 ? Promise.resolve('') : Promise.reject(Object.assign(new Error('failed'), { status: this.answer }));
  }
  /** The far side hangs up: srf marks the dialog and emits 'destroy' synchronously. */
  remoteBye(reason?: string): void {
    this.connected = false;
    this.emit('destroy', { has: (n: string) => n === 'Reason' && !!reason, get: () => reason ?? '' });
  }
}
