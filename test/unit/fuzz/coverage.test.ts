// V8 block coverage as fuzzing feedback (test/fuzz/coverage.ts), on a real module compiled after
// coverage started: blocks, hit-count buckets, and the batch check.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockCoverage, bucket, startCoverage } from '../../fuzz/coverage.js';

startCoverage();
const dir = mkdtempSync(join(tmpdir(), 'pg-cov-'));
const file = join(dir, 'target.mjs');
writeFileSync(file, [
  'export function f(x) {',
  '  if (x > 10) {',
  "    return 'big';",
  '  }',
  '  let n = 0;',
  '  for (let i = 0; i < x; i++) n += i;',
  "  return n > 3 ? 'some' : 'few';",
  '}',
  '',
].join('\n'));
const { f } = (await import(pathToFileURL(file).href)) as { f: (x: number) => string };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('BlockCoverage', () => {
  it('hit-count buckets are AFL’s classes', () => {
    expect([0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 127, 128, 1e6].map(bucket)).toEqual([0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]);
  });

  it('counts new blocks and buckets of the target only, and tells a batch with a new block', () => {
    const cov = new BlockCoverage([dir]);
    cov.take(false); // forget module evaluation
    f(1);
    expect(cov.take(true)).toBeGreaterThan(0);
    // Two loop turns: V8 now reports the loop body on its own (its count differs from the
    // function's), a block learnt.
    f(2);
    expect(cov.take(true)).toBeGreaterThan(0);
    const first = cov.summary().blocks;
    expect(first).toBeGreaterThan(1);
    // The same input again: nothing new.
    f(2);
    expect(cov.take(true)).toBe(0);
    // Three loop turns: a new hit-count bucket, no new block.
    f(3);
    expect(cov.take(true)).toBeGreaterThan(0);
    expect(cov.summary().blocks).toBe(first);
    // A batch (counts summed) without a new block says 0; with one (the x > 10 arm) says 1.
    f(1); f(3);
    expect(cov.take(false)).toBe(0);
    f(2); f(20);
    expect(cov.take(false)).toBe(1);
    // f(20) alone: V8 leaves out the `if` arm (same count as the function); the innermost
    // reported range still credits it, so the block count grows.
    f(20);
    expect(cov.take(true)).toBeGreaterThan(0);
    const s = cov.summary(dir);
    expect(s.blocks).toBeGreaterThan(first);
    expect(s.files['target.mjs']?.covered).toBe(s.blocks);
    expect(s.blocks).toBeLessThanOrEqual(s.known);
  });

  it('ignores code outside its sources', () => {
    const cov = new BlockCoverage([join(dir, 'elsewhere')]);
    cov.take(false);
    f(20); f(1);
    expect(cov.take(true)).toBe(0);
    expect(cov.summary().known).toBe(0);
  });
});
