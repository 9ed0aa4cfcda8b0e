// The entry module of a B2BUA worker process, forked by the primary (pool.ts).
import { snapshotEnvironment } from '../env-snapshot.js';
import { runWorker } from './worker.js';

snapshotEnvironment();
runWorker().catch((err: unknown) => {
  console.error(`peergate worker: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(1);
});
