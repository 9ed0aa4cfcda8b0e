// The process's one deadline queue for established calls (src/sbc/session/deadlines.ts): many
// calls, one clock timer (issue #18 item 5: no timer object or closure per held call).
import { describe, expect, it } from 'vitest';
import { DeadlineQueue, deadlinesOf, type Deadline } from '../../../src/sbc/session/deadlines.js';
import { CallSession, type EndResult } from '../../../src/sbc/session/call.js';
import { FakeClock, FakeDialog } from './fake.js';

function entry(log: string[], name: string): Deadline {
  return { dueAt: -1, slot: -1, due: (now) => log.push(`${name}@${now}`) };
}

describe('DeadlineQueue', () => {
  it('runs entries in due order, each once, on one clock timer; moves and deletes', async () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => entry(log, n)) as [Deadline, Deadline, Deadline, Deadline];
    q.set(a, 300); q.set(b, 100); q.set(c, 200); q.set(d, 400);
    expect(clock.pending).toBe(1);
    q.set(d, 50);   // moved earlier
    q.set(b, 250);  // moved later
    q.delete(c);
    expect(q.size).toBe(3);
    await clock.advance(1_000);
    expect(log).toEqual(['d@50', 'b@250', 'a@300']);
    expect(q.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('an entry may queue itself again from its own due; deleting the last one clears the timer', async () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    let runs = 0;
    const e: Deadline = { dueAt: -1, slot: -1, due: (now) => { runs++; if (runs < 3) q.set(e, now + 10); } };
    q.set(e, 10);
    await clock.advance(100);
    expect(runs).toBe(3);
    q.set(e, 500);
    q.delete(e);
    expect(clock.pending).toBe(0);
  });

  it('keeps the heap order under many random moves', async () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const seen: number[] = [];
    let seed = 7;
    const rnd = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % 10_000; };
    const all: Deadline[] = [];
    for (let i = 0; i < 500; i++) { const e: Deadline = { dueAt: -1, slot: -1, due: (now) => seen.push(now) }; all.push(e); q.set(e, rnd() + 1); }
    for (let i = 0; i < 500; i++) q.set(all[rnd() % 500]!, rnd() + 1);
    for (let i = 0; i < 100; i++) q.delete(all[i * 5]!);
    await clock.advance(20_000);
    expect(seen).toHaveLength(400);
    expect([...seen].sort((x, y) => x - y)).toEqual(seen);
  });
});

describe('held calls share the queue', () => {
  it('1,000 calls with a maximum duration and refreshes on both legs hold one clock timer', async () => {
    const clock = new FakeClock();
    const ended: EndResult[] = [];
    const legs: FakeDialog[] = [];
    for (let i = 0; i < 1_000; i++) {
      const uas = new FakeDialog(`a${i}`);
      const uac = new FakeDialog(`b${i}`);
      legs.push(uas, uac);
      new CallSession({
        id: `c${i}`, uas, uac, clock, maxDurationS: 3600 + i, negotiated: undefined,
        timerPolicy: { expires_s: 1800, min_se_s: 90, refresh: 'update' },
        allowA: 'UPDATE', allowB: undefined, onEnd: (r) => ended.push(r),
      }).start();
    }
    // Before: 3 timers per call (max duration, one refresher per leg).
    expect(clock.pending).toBe(1);
    expect(deadlinesOf(clock).size).toBe(1_000);
    await clock.advance(900_000);
    // Every leg refreshed once: UPDATE where allowed, re-INVITE elsewhere.
    expect(legs.filter((d, i) => d.sent[0]?.method === (i % 2 === 0 ? 'UPDATE' : 'INVITE')).length).toBe(2_000);
    await clock.advance(3_600_000);
    expect(ended.filter((r) => r === 'max_duration').length).toBeGreaterThan(0);
    await clock.advance(1_000_000);
    expect(ended).toHaveLength(1_000);
    expect(ended.every((r) => r === 'max_duration')).toBe(true);
    expect(clock.pending).toBe(0);
  });
});
