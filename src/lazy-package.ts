// CommonJS packages that only some policies use, loaded on first use rather than at start.
// Each costs every process (primary and B2BUA workers) its code, V8 heap and young-generation
// garbage from loading even when nothing calls it: ioredis, node-forge, rtpengine-client and
// dns-packet together ≈ 10 MiB of RSS per process (BENCHMARKS.md "Idle footprint").
// `require` is synchronous, so the callers keep their synchronous APIs.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A getter that requires `id` the first time it is called and returns the same exports after. */
export function lazyPackage<T>(id: string): () => T {
  let exports: T | undefined;
  return () => (exports ??= require(id) as T);
}
