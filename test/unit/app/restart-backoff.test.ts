import { describe, expect, it } from 'vitest';
import { RestartBackoff, WORKER_RESTART_BACKOFF } from '../../../src/app/workers/restart-backoff.js';

describe('worker restart back-off', () => {
  it('replaces a worker that served a while at once', () => {
    const b = new RestartBackoff();
    expect(b.pause(0, WORKER_RESTART_BACKOFF.stableMs)).toBe(0);
    expect(b.pause(0, 3_600_000)).toBe(0);
    expect(b.streak(0)).toBe(0);
  });

  it('doubles the pause for each short-lived worker of a slot in a row, up to the cap', () => {
    const b = new RestartBackoff();
    const pauses = Array.from({ length: 8 }, () => b.pause(1, 500));
    expect(pauses).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(b.streak(1)).toBe(8);
  });

  it('starts again once a replacement lives past the stable time', () => {
    const b = new RestartBackoff();
    b.pause(0, 100);
    b.pause(0, 100);
    expect(b.pause(0, 100)).toBe(4000);
    expect(b.pause(0, 10_000)).toBe(0);
    expect(b.pause(0, 100)).toBe(1000);
  });

  it('counts each slot apart: one worker in a crash loop does not slow the others\' replacement', () => {
    const b = new RestartBackoff();
    b.pause(0, 100);
    b.pause(0, 100);
    expect(b.pause(1, 100)).toBe(1000);
    expect(b.pause(0, 100)).toBe(4000);
  });

  it('never overflows, however long the loop', () => {
    const b = new RestartBackoff({ stableMs: 10, firstMs: 1, maxMs: 50 });
    let last = 0;
    for (let i = 0; i < 2000; i++) last = b.pause(0, 0);
    expect(last).toBe(50);
  });
});
