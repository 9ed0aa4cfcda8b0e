import { describe, expect, it } from 'vitest';
import { CallSession, PEERGATE_ENDINGS, allowsUpdate, type EndResult } from '../../../src/sbc/session/call.js';
import { SessionTable } from '../../../src/sbc/session/table.js';
import { FakeClock, FakeDialog } from './fake.js';

const TIMER = { expires_s: 1800, min_se_s: 90, refresh: 'update' as const };

function call(clock: FakeClock, over: Partial<ConstructorParameters<typeof CallSession>[0]> = {}) {
  const uas = new FakeDialog('a;from-tag=1');
  const uac = new FakeDialog('b;from-tag=2');
  const ended: EndResult[] = [];
  const c = new CallSession({
    id: 'c1', uas, uac, clock, maxDurationS: 0, negotiated: undefined, timerPolicy: TIMER,
    allowA: 'INVITE, ACK, BYE, UPDATE', allowB: 'INVITE, ACK, BYE', onEnd: (r) => ended.push(r), ...over,
  });
  return { c, uas, uac, ended };
}

describe('CallSession endings', () => {
  it('a BYE srf parsed before anyone listened (same wire read as our 2xx echo) still ends the call', () => {
    const clock = new FakeClock();
    const { c, uas, uac, ended } = call(clock);
    uas.connected = false; // srf already handled the BYE and emitted 'destroy' to nobody
    c.start();
    expect(ended).toEqual(['caller_bye']);
    expect(uac.sent).toEqual([{ method: 'BYE' }]);
    expect(clock.pending).toBe(0);
  });

  it('the callee hanging up first ends it once, the caller gets BYE with the callee Reason', () => {
    const clock = new FakeClock();
    const { c, uas, uac, ended } = call(clock);
    c.start();
    uac.remoteBye('Q.850;cause=16');
    uas.remoteBye();
    expect(ended).toEqual(['callee_bye']);
    expect(uas.sent).toEqual([{ method: 'BYE', headers: { Reason: 'Q.850;cause=16' } }]);
    expect(clock.pending).toBe(0);
  });

  it('max duration ends it with BYE and a Reason on both legs', async () => {
    const clock = new FakeClock();
    const { c, uas, uac, ended } = call(clock, { maxDurationS: 10, timerPolicy: { ...TIMER, refresh: 'off' } });
    c.start();
    await clock.advance(9_999);
    expect(ended).toEqual([]);
    await clock.advance(1);
    expect(ended).toEqual(['max_duration']);
    for (const d of [uas, uac]) expect(d.sent).toEqual([{ method: 'BYE', headers: { Reason: PEERGATE_ENDINGS.max_duration } }]);
  });

  it('a negotiated timer without refresh ends it (session_expired); relayed refreshes keep it up', async () => {
    const clock = new FakeClock();
    const { c, uas, ended } = call(clock, { negotiated: { intervalS: 90, refresher: 'uac' } });
    c.start();
    await clock.advance(50_000);
    c.refreshed();
    await clock.advance(50_000);
    expect(ended).toEqual([]);
    expect(uas.sent).toEqual([]); // the sides refresh, peergate does not
    await clock.advance(10_000);
    expect(ended).toEqual(['session_expired']);
    expect(uas.sent[0]).toEqual({ method: 'BYE', headers: { Reason: PEERGATE_ENDINGS.session_expired } });
  });

  it('without negotiated timers peergate refreshes: UPDATE where allowed, re-INVITE elsewhere; 481 ends the call', async () => {
    const clock = new FakeClock();
    const { c, uas, uac, ended } = call(clock);
    c.start();
    await clock.advance(900_000);
    expect(uas.sent).toEqual([{ method: 'UPDATE' }]);
    expect(uac.sent).toEqual([{ method: 'INVITE' }]);
    uac.answer = 481;
    await clock.advance(900_000);
    expect(ended).toEqual(['session_expired']);
    expect(uas.sent.at(-1)).toEqual({ method: 'BYE', headers: { Reason: PEERGATE_ENDINGS.session_expired } });
  });

  it('allowsUpdate reads Allow', () => {
    expect(allowsUpdate('INVITE,update')).toBe(true);
    expect(allowsUpdate('INVITE, BYE')).toBe(false);
    expect(allowsUpdate(undefined)).toBe(false);
  });
});

describe('SessionTable reconciliation', () => {
  it('ends a call whose engine dialog is gone on the second sweep only', async () => {
    const clock = new FakeClock();
    const gone = new Set<string>();
    const table = new SessionTable({ clock, dialogExists: (id) => !gone.has(id) });
    const { c, uas, uac, ended } = call(clock, { onEnd: (r) => { table.remove('c1'); ended.push(r); } });
    table.add(c, { anchored: false, timeoutS: 0 });
    c.start();
    expect(await table.sweep()).toEqual({});
    gone.add(uac.id);
    expect(await table.sweep()).toEqual({});
    expect(ended).toEqual([]);
    expect(await table.sweep()).toEqual({ dialog_gone: 1 });
    expect(ended).toEqual(['dialog_gone']);
    expect(uas.sent).toEqual([{ method: 'BYE', headers: { Reason: PEERGATE_ENDINGS.dialog_gone } }]);
    expect(table.size).toBe(0);
  });

  it('a leg that is back on the next sweep is not ended', async () => {
    const clock = new FakeClock();
    let exists = false;
    const table = new SessionTable({ clock, dialogExists: () => exists });
    const { c, ended } = call(clock);
    table.add(c, { anchored: false, timeoutS: 0 });
    c.start();
    await table.sweep();
    exists = true;
    await table.sweep();
    exists = false;
    await table.sweep();
    expect(ended).toEqual([]);
  });

  it('ends anchored calls without media for the timeout, or that rtpengine dropped', async () => {
    const clock = new FakeClock();
    clock.t = 1_000_000;
    const activity = new Map<string, { lastPacketMs: number } | 'gone'>();
    const table = new SessionTable({ clock, mediaActivity: async (id) => activity.get(id) });
    const mk = (id: string) => {
      const x = call(clock, { id, onEnd: (r) => { table.remove(id); x.ended.push(r); } });
      table.add(x.c, { anchored: true, timeoutS: 30 });
      x.c.start();
      return x;
    };
    const live = mk('live'); const quiet = mk('quiet'); const dropped = mk('dropped');
    await clock.advance(40_000);
    activity.set('live', { lastPacketMs: clock.now() - 1_000 });
    activity.set('quiet', { lastPacketMs: clock.now() - 31_000 });
    activity.set('dropped', 'gone');
    expect(await table.sweep()).toEqual({ media_timeout: 2 });
    expect(live.ended).toEqual([]);
    expect(quiet.ended).toEqual(['media_timeout']);
    expect(dropped.ended).toEqual(['media_timeout']);
    expect(quiet.uas.sent[0]).toEqual({ method: 'BYE', headers: { Reason: PEERGATE_ENDINGS.media_timeout } });
  });

  it('endAll ends every call with the given result', () => {
    const clock = new FakeClock();
    const table = new SessionTable({ clock });
    const a = call(clock, { id: 'x', onEnd: (r) => { table.remove('x'); a.ended.push(r); } });
    table.add(a.c, { anchored: false, timeoutS: 0 });
    a.c.start();
    expect(table.endAll('shutdown')).toBe(1);
    expect(a.ended).toEqual(['shutdown']);
    expect(table.size).toBe(0);
  });
});
