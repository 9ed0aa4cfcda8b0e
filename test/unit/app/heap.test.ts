import { describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_GROWING_PERCENT, heapGrowingPercent } from '../../../src/app/heap.js';

describe('primary heap growth (PEERGATE_HEAP_GROWING_PERCENT)', () => {
  it('defaults to 50 % when unset or empty', () => {
    expect(DEFAULT_HEAP_GROWING_PERCENT).toBe(50);
    expect(heapGrowingPercent({})).toBe(50);
    expect(heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: ' ' })).toBe(50);
  });

  it('takes an integer, 0 meaning V8’s own sizing', () => {
    expect(heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: '0' })).toBe(0);
    expect(heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: '30' })).toBe(30);
  });

  it('refuses anything else, naming the variable', () => {
    for (const bad of ['-5', '1.5', 'fifty', '1001', '50%']) {
      expect(() => heapGrowingPercent({ PEERGATE_HEAP_GROWING_PERCENT: bad })).toThrow(/PEERGATE_HEAP_GROWING_PERCENT must be an integer/);
    }
  });
});
