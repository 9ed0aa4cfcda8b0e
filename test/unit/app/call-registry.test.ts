// The B2BUA's call registry (src/sbc/calls.ts): what drain and stop rely on.
import { describe, it, expect } from 'vitest';
import { CallRegistry, type Hangup } from '../../../src/sbc/calls.js';

const info = (id: string) => ({ id, call_id: `c-${id}`, peer: 'a', direction: 'inbound' as const, from: 'a', to: 'core', target: 'sip:x', startedAt: '' });
const H: Hangup = 'drain_deadline';

describe('CallRegistry', () => {
  it('takes calls until drain(), then refuses with the Retry-After given', () => {
    const r = new CallRegistry();
    expect(r.refusing()).toBeUndefined();
    r.drain(17);
    expect(r.refusing()).toEqual({ retryAfterS: 17 });
  });

  it('whenIdle resolves when the last call in progress ends (setting up or established)', async () => {
    const r = new CallRegistry();
    await r.whenIdle(); // none: at once
    r.begin('a');
    r.begin('b');
    r.up('a', { info: () => info('a'), hangup: async () => undefined });
    expect(r.list().map((c) => c.id)).toEqual(['a']);
    expect(r.liveCount).toBe(2);
    let idle = false;
    void r.whenIdle().then(() => { idle = true; });
    r.end('a');
    await Promise.resolve();
    expect(idle).toBe(false);
    r.end('b');
    await Promise.resolve();
    expect(idle).toBe(true);
    expect(r.list()).toEqual([]);
  });

  it('endAll hangs up established calls, aborts set-ups, and ends whatever comes up afterwards', async () => {
    const r = new CallRegistry();
    const hungUp: string[] = [];
    const aborted: string[] = [];
    r.begin('up');
    r.up('up', { info: () => info('up'), hangup: async (h) => { hungUp.push(`up:${h}`); } });
    r.begin('ringing');
    r.attempting('ringing', (h) => aborted.push(`ringing:${h}`));
    await r.endAll(H);
    expect(hungUp).toEqual(['up:drain_deadline']);
    expect(aborted).toEqual(['ringing:drain_deadline']);
    // Stopping: new INVITEs are refused even without drain().
    expect(r.refusing()).toEqual({ retryAfterS: 30 });
    // A call answered after endAll() is hung up at once; an attempt started after it is aborted.
    r.begin('late');
    r.up('late', { info: () => info('late'), hangup: async (h) => { hungUp.push(`late:${h}`); } });
    r.attempting('later', (h) => aborted.push(`later:${h}`));
    await Promise.resolve();
    expect(hungUp).toEqual(['up:drain_deadline', 'late:drain_deadline']);
    expect(aborted).toEqual(['ringing:drain_deadline', 'later:drain_deadline']);
  });

  it('an attempt that ends unregisters: endAll does not abort it', async () => {
    const r = new CallRegistry();
    const aborted: string[] = [];
    const done = r.attempting('x', () => aborted.push('x'));
    done();
    await r.endAll(H);
    expect(aborted).toEqual([]);
  });
});
