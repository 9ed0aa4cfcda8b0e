import { describe, it, expect, afterAll } from 'vitest';
import { freePort, startProcess, stopAll, waitFor } from '../helpers/procs.js';

afterAll(stopAll);

describe('test helpers', () => {
  it('free ports are distinct, usable loopback ports', async () => {
    const a = await freePort();
    expect(a).toBeGreaterThan(1024);
  });
  it('starts and stops a real process by PID', async () => {
    const p = startProcess('sleep', ['30']);
    await waitFor(() => p.pid > 0);
    await p.stop();
    expect(await p.exited).toBeNull();
  });
});
