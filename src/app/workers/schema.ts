// Policy key `workers` (docs/policy.md): how many B2BUA worker processes share the calls of
// this node (src/app/workers). Hooked into src/policy/schema.ts.
import { availableParallelism } from 'node:os';
import { z } from 'zod';

/**
 * `1`: the B2BUA runs inside the main process beside the engine (one core). `<n>`: n worker
 * processes, each a drachtio-srf app on the engine's wire port. `auto` (the default): one per
 * core (os.availableParallelism()); on one core that is 1, the in-process B2BUA, since a lone
 * worker would only add the wire hop and the store over IPC to the same core.
 */
export const WorkersSchema = z.union([
  z.literal('auto'),
  z.number({ error: "workers must be 'auto' or a whole number from 1 to 64" }).int('workers must be a whole number').min(1, 'workers must be at least 1').max(64, 'workers is at most 64'),
], { error: "workers must be 'auto' or a whole number from 1 to 64" }).default('auto');

export type WorkersSetting = z.infer<typeof WorkersSchema>;

/** The number of B2BUA processes `setting` asks for on this machine. */
export function workerCount(setting: WorkersSetting, cores: number = availableParallelism()): number {
  return setting === 'auto' ? Math.max(1, Math.min(64, cores)) : setting;
}
