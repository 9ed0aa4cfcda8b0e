// CI smoke run of the five fuzz targets (test/fuzz, docs/fuzzing.md), coverage-guided: bounded
// in inputs and in wall time (≤ 8 s each plus a last batch, under 60 s for all five on a loaded two-core machine).
// The long runs (1,000,000 inputs each) are `npx tsx test/fuzz/run.ts`.
import { describe, expect, it } from 'vitest';
import { fuzz } from '../../fuzz/engine.js';
import { coverageOf, loadTargets } from '../../fuzz/load.js';

// Coverage must be on before the targets' code is compiled: load them only now.
const TARGETS = await loadTargets(true);

const RUNS = 20_000;
const MAX_MS = 8_000;

describe('fuzz smoke (coverage-guided)', () => {
  for (const [name, make] of Object.entries(TARGETS)) {
    it(`${name}: mutated inputs keep every invariant and reach code the seeds do not`, () => {
      const t = make();
      expect(t.seeds.length).toBeGreaterThan(0);
      const cov = coverageOf(t);
      const r = fuzz(t, { runs: RUNS, maxMs: MAX_MS, seed: 0x5eed, slowMs: 2000, coverage: cov });
      const shown = r.findings.slice(0, 3).map((f) => `${f.error.split('\n')[0]} on ${JSON.stringify(f.input.toString('latin1').slice(0, 200))}`);
      expect(shown).toEqual([]);
      // It did fuzz, well past the seeds…
      expect(r.runs).toBeGreaterThan(t.seeds.length + 50);
      // …V8 reported block counts for the target's own code (coverage was on before it loaded)…
      expect(r.seedBlocks).toBeGreaterThan(10);
      // …and the guidance worked: inputs reaching blocks the seeds never reach joined the corpus.
      expect(r.coverage!.blocks).toBeGreaterThan(r.seedBlocks!);
      expect(r.corpus).toBeGreaterThan(t.seeds.length);
    }, 30_000);
  }
});
