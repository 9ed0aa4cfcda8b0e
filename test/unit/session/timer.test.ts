import { describe, expect, it } from 'vitest';
import { parseSessionExpires, parseMinSe, intervalTooSmall, expiryMarginS } from '../../../src/sbc/session/timer.js';
import { CallSession, type CallSessionOptions, type EndResult } from '../../../src/sbc/session/call.js';
import { FakeClock, FakeDialog } from './fake.js';

describe('RFC 4028 header values', () => {
  it('parses Session-Expires with and without refresher', () => {
    expect(parseSessionExpires('1800;refresher=uac')).toEqual({ intervalS: 1800, refresher: 'uac' });
    expect(parseSessionExpires(' 90 ; refresher = UAS')).toEqual({ intervalS: 90, refresher: 'uas' });
    expect(parseSessionExpires('600')).toEqual({ intervalS: 600, refresher: undefined });
    expect(parseSessionExpires('abc')).toBeUndefined();
    expect(parseSessionExpires('-5')).toBeUndefined();
    expect(parseSessionExpires(undefined)).toBeUndefined();
    expect(parseMinSe('120;x=1')).toBe(120);
    expect(parseMinSe('zero')).toBeUndefined();
  });

  it('answers 422 with our Min-SE below it, nothing at or above it (§6)', () => {
    expect(intervalTooSmall('60', 90)).toEqual({ status: 422, reason: 'Session Interval Too Small', headers: { 'Min-SE': '90' } });
    expect(intervalTooSmall('90', 90)).toBeUndefined();
    expect(intervalTooSmall(undefined, 90)).toBeUndefined();
  });

  it('ends min(32 s, interval/3) before expiry (§10)', () => {
    expect(expiryMarginS(90)).toBe(30);
    expect(expiryMarginS(1800)).toBe(32);
  });
});

// The RFC 4028 timers run on the session itself (one deadline queue per clock, deadlines.ts):
// the same behaviour, driven through CallSession.
const POLICY = { expires_s: 100, min_se_s: 90, refresh: 'update' as const };
function session(clock: FakeClock, over: Partial<CallSessionOptions> = {}) {
  const uas = new FakeDialog('a;from-tag=1');
  const uac = new FakeDialog('b;from-tag=2');
  const ended: EndResult[] = [];
  const c = new CallSession({
    id: 'c', uas, uac, clock, maxDurationS: 0, negotiated: undefined, timerPolicy: POLICY,
    allowA: 'INVITE, UPDATE', allowB: 'INVITE, UPDATE', onEnd: (r) => ended.push(r), ...over,
  });
  c.start();
  const updates = (d: FakeDialog) => d.sent.filter((m) => m.method === 'UPDATE').length;
  return { c, uas, uac, ended, updates };
}

describe('a negotiated session timer (peergate watches)', () => {
  it('fires before expiry without refresh and is pushed back by each refresh', async () => {
    const clock = new FakeClock();
    const { c, ended } = session(clock, { negotiated: { intervalS: 90, refresher: 'uac' } });
    await clock.advance(59_000);
    c.refreshed();
    await clock.advance(59_000);
    expect(ended).toEqual([]);
    await clock.advance(1_000);
    expect(ended).toEqual(['session_expired']);
    await clock.advance(600_000);
    expect(ended).toEqual(['session_expired']);
  });

  it('ending the call cancels it', async () => {
    const clock = new FakeClock();
    const { uac, ended } = session(clock, { negotiated: { intervalS: 90, refresher: 'uac' } });
    uac.remoteBye();
    await clock.advance(600_000);
    expect(ended).toEqual(['callee_bye']);
    expect(clock.pending).toBe(0);
  });
});

describe('peergate refreshes a leg (no timer negotiated)', () => {
  it('refreshes every interval/2 while the side answers', async () => {
    const clock = new FakeClock();
    const { uas, ended, updates } = session(clock);
    await clock.advance(50_000);
    expect(updates(uas)).toBe(1);
    await clock.advance(100_000);
    expect(updates(uas)).toBe(3);
    expect(ended).toEqual([]);
    uas.remoteBye();
    await clock.advance(100_000);
    expect(updates(uas)).toBe(3);
    expect(clock.pending).toBe(0);
  });

  it('a relayed refresh pushes ours back', async () => {
    const clock = new FakeClock();
    const { c, uas, updates } = session(clock);
    await clock.advance(40_000);
    c.refreshed();
    await clock.advance(40_000);
    expect(updates(uas)).toBe(0);
    await clock.advance(10_000);
    expect(updates(uas)).toBe(1);
  });

  it('481, 408 or no answer is a dead side; 491 or 500 is tried again next time', async () => {
    for (const [status, deadExpected] of [[481, 1], [408, 1], [undefined, 1], [491, 0], [500, 0]] as const) {
      const clock = new FakeClock();
      const uas = new FakeDialog('a;from-tag=1');
      if (status === undefined) uas.request = async (o) => { uas.sent.push({ method: o.method }); throw new Error('no answer'); };
      else uas.answer = status;
      const failed: string[] = [];
      const { ended, updates } = session(clock, { uas, onRefreshFailed: (leg) => failed.push(leg) });
      await clock.advance(50_000);
      expect(ended, String(status)).toEqual(deadExpected ? ['session_expired'] : []);
      expect(failed, String(status)).toEqual(deadExpected ? ['A'] : []);
      await clock.advance(50_000);
      expect(updates(uas), String(status)).toBe(deadExpected ? 1 : 2);
    }
  });
});
