// CI smoke run of the five fuzz targets (test/fuzz, docs/fuzzing.md): bounded in inputs and in
// wall time (≤ 9 s each, under 60 s for all five on a loaded two-core machine). The long run
// (1,000,000 inputs each) is `npx tsx test/fuzz/run.ts`.
import { describe, expect, it } from 'vitest';
import { fuzz } from '../../fuzz/engine.js';
import { TARGETS } from '../../fuzz/targets.js';

const RUNS = 20_000;
const MAX_MS = 9_000;

describe('fuzz smoke', () => {
  for (const [name, make] of Object.entries(TARGETS)) {
    it(`${name}: mutated inputs keep every invariant`, () => {
      const t = make();
      expect(t.seeds.length).toBeGreaterThan(0);
      const r = fuzz(t, { runs: RUNS, maxMs: MAX_MS, seed: 0x5eed, slowMs: 2000 });
      const shown = r.findings.slice(0, 3).map((f) => `${f.error.split('\n')[0]} on ${JSON.stringify(f.input.toString('latin1').slice(0, 200))}`);
      expect(shown).toEqual([]);
      // It did fuzz: well past the seeds, and it found behaviours the seeds alone do not show.
      expect(r.runs).toBeGreaterThan(t.seeds.length + 200);
      expect(r.signatures).toBeGreaterThan(Math.min(t.seeds.length, 3));
    }, 30_000);
  }
});
