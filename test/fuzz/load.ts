// Loads the fuzz targets, optionally after starting V8 block coverage: coverage must be on
// before the code under test is compiled (test/fuzz/coverage.ts), so the targets module, which
// imports it, is loaded here dynamically rather than imported statically.
import { join, resolve } from 'node:path';
import { BlockCoverage, startCoverage } from './coverage.js';
import type { FuzzTarget } from './engine.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export async function loadTargets(coverage: boolean): Promise<Record<string, () => FuzzTarget>> {
  if (coverage) startCoverage();
  return (await import('./targets.js')).TARGETS;
}

/** Coverage of a target's own sources (its `sources`, relative to the repository root). */
export function coverageOf(t: FuzzTarget): BlockCoverage {
  return new BlockCoverage((t.sources ?? ['src/']).map((p) => join(REPO_ROOT, p)));
}
