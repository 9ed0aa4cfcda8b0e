// Node/V8 flags for the forked B2BUA workers (src/app/workers/pool.ts): PEERGATE_WORKER_NODE_FLAGS
// replaces the built-in default; empty means none.
import { describe, expect, it } from 'vitest';
import { WORKER_NODE_FLAGS, workerNodeFlags } from '../../../src/app/workers/pool.js';

describe('worker node flags', () => {
  it('default without the variable; the variable split on whitespace replaces it; empty gives none', () => {
    expect(workerNodeFlags({})).toEqual([...WORKER_NODE_FLAGS]);
    expect(workerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: ' --max-semi-space-size=4   --optimize-for-size ' })).toEqual(['--max-semi-space-size=4', '--optimize-for-size']);
    expect(workerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: '' })).toEqual([]);
  });
});
