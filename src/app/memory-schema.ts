// Policy key `memory` (docs/policy.md "memory"): when a node gives back the memory a burst of
// call set-ups left behind (src/app/memory-reducer.ts). Hooked into src/policy/schema.ts.
import { z } from 'zod';

export const MemorySchema = z.strictObject({
  /**
   * Once a burst of call set-ups is over and the node is quiet, return glibc's free heap pages
   * to the kernel and unmap the node binary's unused pages, in every process (and compact V8's
   * heap first with compact_heap). Off: V8's and glibc's own heuristics only.
   */
  reduce_when_quiet: z.boolean().default(true),
  /**
   * The reduction also runs V8's memory-reducing (compacting) GC: ≈ 10–20 MiB less after a burst
   * of a few thousand calls, but the optimised code of the call path does not survive it, so the
   * next burst's first seconds run slow, and it holds each process 50–230 ms. Off: glibc's trim
   * and the binary's unused pages only (a few ms).
   */
  compact_heap: z.boolean().default(false),
  /** A burst worth reducing after: the engine held at least this many transactions at once since the last reduction. */
  burst_transactions: z.number().int().min(1).max(10_000_000).default(1000),
  /** Quiet: at most this many transactions alive in the engine (RFC 3261 keeps one ≈ 32 s after its call set-up)… */
  quiet_transactions: z.number().int().min(0).max(1_000_000).default(20),
  /** …for this many seconds in a row. */
  quiet_s: z.number().int().min(1).max(3600).default(10),
});

export type MemoryPolicy = z.infer<typeof MemorySchema>;
