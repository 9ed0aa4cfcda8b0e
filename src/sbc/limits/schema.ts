// Policy schema fragments for overload control (issue: limits). Owned by src/sbc/limits;
// composed into the root policy schema by src/policy/schema.ts.
import { z } from 'zod';

/** Per-peer limits (peers[].limits). */
export const PeerLimitsSchema = z.strictObject({
  /** Packets per second per source address, enforced before parsing. */
  per_source_pps: z.number().int().positive().optional(),
  /** INVITE attempts per second for the peer, and the bucket's burst. */
  cps: z.number().positive().optional(),
  burst: z.number().int().positive().optional(),
  /** Concurrent sessions for the peer across the pool. */
  sessions: z.number().int().positive().optional(),
});

/** Global limits (top-level `limits`). */
export const GlobalLimitsSchema = z.strictObject({
  /** Concurrent sessions for the whole SBE (or pool, with Redis). */
  sessions: z.number().int().positive().optional(),
});

export type PeerLimits = z.infer<typeof PeerLimitsSchema>;
export type GlobalLimits = z.infer<typeof GlobalLimitsSchema>;
