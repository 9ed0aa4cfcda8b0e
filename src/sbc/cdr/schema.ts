// Policy schema fragment for call records (top-level `cdr`). Owned by src/sbc/cdr; composed
// into the root policy schema by src/policy/schema.ts.
import { isAbsolute } from 'node:path';
import { z } from 'zod';

/** An output file: absolute, since it need not exist yet (FilePath values must). */
const OutputFile = z.string().min(1, 'must be a file path')
  .refine((s) => isAbsolute(s), { error: 'must be an absolute path (e.g. /var/log/peergate/cdr.jsonl): the file is created if missing' });

export const CdrRedisStreamSchema = z.strictObject({
  /** Redis for the pool's records: redis://[user:pass@]host:port/db or rediss://. */
  url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'),
  /** Stream key records are XADDed to. */
  key: z.string().min(1).default('peergate:cdr'),
  /** Approximate bound on the stream's length (XADD MAXLEN ~): older records are trimmed. */
  maxlen: z.number().int().min(100).default(1_000_000),
  /** Per-command timeout; a record that cannot be written in time is counted as failed. */
  timeout_ms: z.number().int().positive().default(1000),
});

export const CdrSchema = z.strictObject({
  /** One JSON object per line per call, appended; reopened on SIGUSR1 (logrotate). */
  file: OutputFile.optional(),
  /** Also XADD each record to a Redis stream (several nodes, one place to read). */
  redis_stream: CdrRedisStreamSchema.optional(),
  /** Records waiting to be written, per sink; beyond this new records are dropped and counted. */
  queue_max: z.number().int().min(1).max(1_000_000).default(10_000),
}).refine((c) => c.file !== undefined || c.redis_stream !== undefined, {
  error: 'cdr needs file, redis_stream or both',
});

export type CdrPolicy = z.infer<typeof CdrSchema>;
export type CdrRedisStream = z.infer<typeof CdrRedisStreamSchema>;
