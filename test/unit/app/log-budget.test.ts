import { describe, it, expect } from 'vitest';
import { LineBudget } from '../../../src/log-budget.js';

describe('LineBudget', () => {
  it('writes the first lines of a kind per window and counts the rest into the next line written', () => {
    let t = 0;
    const b = new LineBudget({ linesPerWindow: 3, windowMs: 1000, now: () => t });
    expect([b.take('a'), b.take('a'), b.take('a')]).toEqual([0, 0, 0]);
    for (let i = 0; i < 50; i++) expect(b.take('a')).toBeUndefined();
    expect(b.take('b')).toBe(0); // another kind has its own budget
    t = 999;
    expect(b.take('a')).toBeUndefined();
    t = 1000;
    expect(b.take('a')).toBe(51);
    expect(b.take('a')).toBe(0);
  });
  it('forgets the oldest kind beyond maxKinds', () => {
    const t = 0;
    const b = new LineBudget({ linesPerWindow: 1, maxKinds: 2, now: () => t });
    b.take('a'); b.take('a');
    b.take('b');
    b.take('c'); // 'a' forgotten with its left-out count
    expect(b.take('a')).toBe(0);
    expect(b.take('c')).toBeUndefined();
  });
});
