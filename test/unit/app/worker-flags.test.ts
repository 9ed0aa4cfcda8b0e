// Node/V8 flags for the forked B2BUA workers (src/app/workers/node-flags.ts): a 2 MiB semi-space
// and a 50 % heap growth step by default; PEERGATE_WORKER_NODE_FLAGS replaces the default, empty
// means none, and anything that is not a node option is refused at start with the variable named.
// The fork's environment carries MALLOC_ARENA_MAX=2 unless the operator set it.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { checkWorkerNodeFlags, WORKER_HANG_TIMEOUT_S, WORKER_NODE_FLAGS, WORKER_START_TIMEOUT_S, workerEnv, workerHangTimeoutMs, workerNodeFlags, workerStartTimeoutMs } from '../../../src/app/workers/node-flags.js';
import { workerEnv as envFromPool, workerNodeFlags as fromPool } from '../../../src/app/workers/pool.js';

describe('worker node flags', () => {
  it('defaults to a small young generation and a 50 % growth step', () => {
    expect(WORKER_NODE_FLAGS).toEqual(['--max-semi-space-size=2', '--heap-growing-percent=50', '--no-memory-reducer']);
    expect(workerNodeFlags({})).toEqual([...WORKER_NODE_FLAGS]);
    expect(fromPool({})).toEqual([...WORKER_NODE_FLAGS]);
  });

  it('the variable split on whitespace replaces the default; empty gives none', () => {
    expect(workerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: ' --max-semi-space-size=4   --optimize-for-size ' })).toEqual(['--max-semi-space-size=4', '--optimize-for-size']);
    expect(workerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: '' })).toEqual([]);
    expect(workerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: '   ' })).toEqual([]);
  });

  it('refuses a word that is not a node option, naming the variable', () => {
    for (const bad of ['max-semi-space-size=2', '-x', '--', '--=3', '--max-old-space-size 256']) {
      expect(() => workerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: bad })).toThrow(/PEERGATE_WORKER_NODE_FLAGS must be node options/);
    }
  });

  it('at start, node itself judges the operator’s flags: its refusal is the error', () => {
    expect(checkWorkerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: '--max-semi-space-size=4 --heap-growing-percent=30' }))
      .toEqual(['--max-semi-space-size=4', '--heap-growing-percent=30']);
    expect(() => checkWorkerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: '--max-semi-space-size=abc' }))
      .toThrow(/PEERGATE_WORKER_NODE_FLAGS: node refuses "--max-semi-space-size=abc": .*bad option/);
    expect(() => checkWorkerNodeFlags({ PEERGATE_WORKER_NODE_FLAGS: '--no-such-option-here' }))
      .toThrow(/PEERGATE_WORKER_NODE_FLAGS: node refuses .*bad option: --no-such-option-here/);
    // The built-in default is not spawned for: it is known good.
    expect(checkWorkerNodeFlags({})).toEqual([...WORKER_NODE_FLAGS]);
  });

  it('the fork environment limits glibc to two malloc arenas unless the operator set the variable', () => {
    const env = { PATH: '/usr/bin', PEERGATE_NODE_ID: 'n1' };
    expect(workerEnv(env)).toEqual({ PATH: '/usr/bin', PEERGATE_NODE_ID: 'n1', MALLOC_ARENA_MAX: '2' });
    expect(env).not.toHaveProperty('MALLOC_ARENA_MAX'); // the primary's own environment is left alone
    expect(envFromPool({})).toEqual({ MALLOC_ARENA_MAX: '2' });
    // The operator's value wins, whatever it is (an empty value is glibc's default sizing).
    expect(workerEnv({ MALLOC_ARENA_MAX: '4' }).MALLOC_ARENA_MAX).toBe('4');
    expect(workerEnv({ MALLOC_ARENA_MAX: '' }).MALLOC_ARENA_MAX).toBe('');
    // What a process forked with it sees (glibc reads it at process start, from the real environment).
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(process.env.MALLOC_ARENA_MAX ?? "unset")'], { env: workerEnv({ PATH: process.env.PATH }), encoding: 'utf8' });
    expect(r.stdout).toBe('2');
  });
});

describe('worker start timeout', () => {
  it('is 30 s unless PEERGATE_WORKER_START_TIMEOUT_S says otherwise (seconds, fractions allowed)', () => {
    expect(WORKER_START_TIMEOUT_S).toBe(30);
    expect(workerStartTimeoutMs({})).toBe(30_000);
    expect(workerStartTimeoutMs({ PEERGATE_WORKER_START_TIMEOUT_S: '' })).toBe(30_000);
    expect(workerStartTimeoutMs({ PEERGATE_WORKER_START_TIMEOUT_S: '90' })).toBe(90_000);
    expect(workerStartTimeoutMs({ PEERGATE_WORKER_START_TIMEOUT_S: '2.5' })).toBe(2500);
  });

  it('refuses anything but a number of seconds above 0 and at most an hour, naming the variable', () => {
    for (const bad of ['0', '-1', 'soon', '1e3', '0x10', '3601', '5s', 'Infinity', 'NaN']) {
      expect(() => workerStartTimeoutMs({ PEERGATE_WORKER_START_TIMEOUT_S: bad }), bad).toThrow(`PEERGATE_WORKER_START_TIMEOUT_S must be a number of seconds above 0 and at most 3600, got "${bad}"`);
    }
  });
});

describe('worker hang timeout', () => {
  it('is 20 s unless PEERGATE_WORKER_HANG_TIMEOUT_S says otherwise; 0 means never', () => {
    expect(WORKER_HANG_TIMEOUT_S).toBe(20);
    expect(workerHangTimeoutMs({})).toBe(20_000);
    expect(workerHangTimeoutMs({ PEERGATE_WORKER_HANG_TIMEOUT_S: '60' })).toBe(60_000);
    expect(workerHangTimeoutMs({ PEERGATE_WORKER_HANG_TIMEOUT_S: '0' })).toBe(0);
  });

  it('refuses anything but a number of seconds from 0 to an hour, naming the variable', () => {
    for (const bad of ['-1', 'never', '1e3', '3601', '10s']) {
      expect(() => workerHangTimeoutMs({ PEERGATE_WORKER_HANG_TIMEOUT_S: bad }), bad).toThrow(`PEERGATE_WORKER_HANG_TIMEOUT_S must be a number of seconds from 0 and at most 3600, got "${bad}"`);
    }
  });
});
