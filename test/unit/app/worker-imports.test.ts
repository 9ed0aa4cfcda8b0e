// A B2BUA worker is handed the validated policy (src/app/workers/hello.ts) and loads neither the
// YAML parser nor zod: 8–11 MiB less per worker process (BENCHMARKS.md "Workers handed the
// policy"). This walks the worker's static import graph from its entry module (type-only
// imports are erased at build time, so they do not count) and fails when either comes back.
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const SRC = join(import.meta.dirname, '../../../src');
const IMPORT = /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;

/** Every package a module graph imports at run time, with the first module that does. */
function runtimePackages(entry: string): Map<string, string> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  const packages = new Map<string, string>();
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (m[2] !== undefined) continue; // `import type` / `export type`
      const spec = m[3]!;
      if (!spec.startsWith('.')) {
        if (!packages.has(spec)) packages.set(spec, file.slice(SRC.length + 1));
        continue;
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (existsSync(target) && !seen.has(target)) { seen.add(target); queue.push(target); }
    }
  }
  return packages;
}

describe('what a B2BUA worker loads', () => {
  const packages = runtimePackages(join(SRC, 'app/workers/entry.ts'));

  it('reaches the B2BUA (the walk follows the graph)', () => {
    expect(packages.has('drachtio-srf')).toBe(true);
    expect(packages.has('prom-client')).toBe(true);
  });

  it('neither yaml nor zod', () => {
    expect(packages.get('yaml')).toBeUndefined();
    expect(packages.get('zod')).toBeUndefined();
  });

  it('the primary still does (the walk tells the two apart)', () => {
    const primary = runtimePackages(join(SRC, 'cli/start.ts'));
    expect(primary.has('yaml')).toBe(true);
    expect(primary.has('zod')).toBe(true);
  });
});
