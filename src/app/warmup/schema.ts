// Policy key `warmup` (docs/policy.md "warmup"): calls a node places through its own engine and
// B2BUA processes before its SIP listeners open, so that the first peers' calls meet compiled
// code (src/app/warmup). Hooked into src/policy/schema.ts.
import { z } from 'zod';

export const WarmupSchema = z.strictObject({
  /** Calls placed before the listeners open; 0: none, the node starts cold. */
  calls: z.number().int().min(0).max(20_000).default(1500),
  /** Their rate in calls/s (spread over the B2BUA processes). */
  rate: z.number().int().min(10).max(5_000).default(500),
  /** The listeners open after this many seconds at most, however far the warm-up got. */
  timeout_s: z.number().int().min(1).max(60).default(10),
});

export type WarmupPolicy = z.infer<typeof WarmupSchema>;
