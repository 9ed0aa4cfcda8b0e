// The thread loadPolicyOffThread starts: one load, its result posted back, then it ends.
import { parentPort, workerData } from 'node:worker_threads';
import { loadPolicy, type LoadOptions } from './load.js';

const { path, opts } = workerData as { path: string; opts: LoadOptions };
// As JSON text: the main thread's JSON.parse of an 11,000-route policy takes ≈ 5 ms where a
// structured clone's deserialisation takes ≈ 22 ms, and both run on the event loop. A policy's
// text apart from the rest: the primary keeps it for its B2BUA workers (policy/text.ts).
const r = loadPolicy(path, opts);
parentPort!.postMessage(r.ok ? { policy: JSON.stringify(r.policy) } : { failed: JSON.stringify(r) });
