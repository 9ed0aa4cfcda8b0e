// The capture clock: wall-clock stamps with a µs fraction that never go backwards.
import { describe, it, expect } from 'vitest';
import { captureClock, captureNow } from '../../../src/engine/capture/clock.js';

describe('capture clock', () => {
  it('gives the wall clock with the monotonic clock\'s fraction, two calls µs apart two stamps', () => {
    let mono = 5_000.25;
    const wall = 1_780_000_000_000;
    const now = captureClock(() => mono, () => wall);
    expect(now()).toBeCloseTo(1_780_000_000_000, 3);
    mono += 0.004; // 4 µs later; Date.now() would not have moved
    expect(now() - 1_780_000_000_000).toBeCloseTo(0.004, 3);
    mono += 0.75;
    expect(now() - 1_780_000_000_000).toBeCloseTo(0.754, 3);
  });

  it('follows the wall clock once it drifts away, and never goes backwards', () => {
    let mono = 0;
    let wall = 1_000_000;
    const now = captureClock(() => mono, () => wall);
    now();
    // The wall clock is stepped 50 ms back (NTP): within 10 s of the anchor nothing changes…
    mono = 9_999.99; wall = 1_000_000 + 9_999 - 50;
    const b = now();
    expect(b).toBeCloseTo(1_000_000 + 9_999.99, 6);
    // …then the re-anchor takes the wall clock, but a stamp is never below the last one.
    mono = 10_000; wall = 1_000_000 + 10_000 - 50;
    const c = now();
    expect(c).toBeCloseTo(b + 0.001, 6);
    mono = 10_100; wall += 100;
    expect(now()).toBeCloseTo(1_000_000 + 10_100 - 50, 6);
    // Small drift (under 2 ms) keeps the anchor: no jitter from Date.now()'s whole milliseconds.
    mono = 20_100; wall = 1_000_000 + 20_100 - 50 + 1;
    expect(now()).toBeCloseTo(1_000_000 + 20_100 - 50, 6);
  });

  it('the process clock agrees with Date.now() and is strictly increasing', () => {
    const stamps = Array.from({ length: 1000 }, () => captureNow());
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]!).toBeGreaterThan(stamps[i - 1]!);
    expect(Math.abs(captureNow() - Date.now())).toBeLessThan(5);
  });
});
