// The thread loadPolicyOffThread starts: one load, its result posted back, then it ends.
import { parentPort, workerData } from 'node:worker_threads';
import { loadPolicy, type LoadOptions } from './load.js';

const { path, opts } = workerData as { path: string; opts: LoadOptions };
parentPort!.postMessage(loadPolicy(path, opts));
