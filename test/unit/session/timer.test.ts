import { describe, expect, it } from 'vitest';
import { parseSessionExpires, parseMinSe, intervalTooSmall, expiryMarginS, SessionTimer, Refresher } from '../../../src/sbc/session/timer.js';
import { FakeClock } from './fake.js';

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

describe('SessionTimer (watching a negotiated timer)', () => {
  it('fires before expiry without refresh and is pushed back by each refresh', async () => {
    const clock = new FakeClock();
    let fired = 0;
    const t = new SessionTimer(clock, 90, () => fired++);
    await clock.advance(59_000);
    t.refreshed();
    await clock.advance(59_000);
    expect(fired).toBe(0);
    await clock.advance(1_000);
    expect(fired).toBe(1);
    await clock.advance(600_000);
    expect(fired).toBe(1);
  });

  it('stop() cancels it', async () => {
    const clock = new FakeClock();
    let fired = 0;
    const t = new SessionTimer(clock, 90, () => fired++);
    t.stop();
    await clock.advance(600_000);
    expect(fired).toBe(0);
    expect(clock.pending).toBe(0);
  });
});

describe('Refresher (peergate refreshes a leg)', () => {
  it('refreshes every interval/2 while the side answers', async () => {
    const clock = new FakeClock();
    let sent = 0;
    let dead = 0;
    const r = new Refresher(clock, 100, async () => { sent++; }, () => dead++);
    await clock.advance(50_000);
    expect(sent).toBe(1);
    await clock.advance(100_000);
    expect(sent).toBe(3);
    expect(dead).toBe(0);
    r.stop();
    await clock.advance(100_000);
    expect(sent).toBe(3);
  });

  it('a relayed refresh pushes ours back', async () => {
    const clock = new FakeClock();
    let sent = 0;
    const r = new Refresher(clock, 100, async () => { sent++; }, () => undefined);
    await clock.advance(40_000);
    r.refreshed();
    await clock.advance(40_000);
    expect(sent).toBe(0);
    await clock.advance(10_000);
    expect(sent).toBe(1);
  });

  it('481, 408 or no answer is a dead side; 491 or 500 is tried again next time', async () => {
    for (const [status, deadExpected] of [[481, 1], [408, 1], [undefined, 1], [491, 0], [500, 0]] as const) {
      const clock = new FakeClock();
      let dead = 0;
      let sent = 0;
      new Refresher(clock, 100, async () => { sent++; throw Object.assign(new Error('x'), status === undefined ? {} : { status }); }, () => dead++);
      await clock.advance(50_000);
      expect(dead, String(status)).toBe(deadExpected);
      await clock.advance(50_000);
      expect(sent, String(status)).toBe(deadExpected ? 1 : 2);
    }
  });
});
