import { describe, it, expect, afterAll } from 'vitest';
import { describeTree, freePort, startProcess, stopAll, waitFor } from '../helpers/procs.js';

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
  it('describes a process tree that never got ready: each process\'s state, wait and CPU, and the load', async () => {
    const parent = startProcess('sh', ['-c', 'sleep 30 & wait']);
    await waitFor(() => describeTree(parent.pid).split('\n').length === 3, 5000, 25, 'sh and its sleep');
    const lines = describeTree(parent.pid).split('\n');
    expect(lines[0]).toMatch(new RegExp(`^pid ${parent.pid}: state [RS], waiting in \\S+, CPU \\d+\\.\\d\\d s user \\+ \\d+\\.\\d\\d s system$`));
    expect(lines[1]).toMatch(/^pid \d+: state [RS], /);
    expect(lines[2]).toMatch(/^load average \d+\.\d\d \d+\.\d\d \d+\.\d\d /);
    // The sleep is sh's child, not the test's: stopped by its own PID.
    process.kill(Number(/^pid (\d+):/.exec(lines[1]!)![1]), 'SIGTERM');
    await parent.stop();
    expect(describeTree(parent.pid)).toMatch(new RegExp(`^pid ${parent.pid}: gone\n`));
  });
});
