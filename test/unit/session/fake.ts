// A fake clock and fake srf dialogs for the session module's unit tests.
import { EventEmitter } from 'node:events';
import { ManualClock } from '../../helpers/manual-clock.js';
import type { LegDialog } from '../../../src/sbc/session/call.js';

/** The shared manual clock, advanced asynchronously so that promise callbacks run between timers. */
export class FakeClock extends ManualClock {
  override async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (let fn = this.takeDue(end); fn; fn = this.takeDue(end)) {
      fn();
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
