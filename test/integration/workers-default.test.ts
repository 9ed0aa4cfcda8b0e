// The default of policy key `workers` (src/app/workers/schema.ts: `auto`): `peergate start` with
// no `workers` key runs one B2BUA worker process per core of this machine
// (os.availableParallelism()), and calls flow through them. On a one-core machine `auto` is
// the in-process B2BUA: no worker processes at all. Real SIPp on both sides, memory store.
import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { childPids, freePorts, heldCalls, isRunning, startUas, stopAll, waitFor } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy } from '../helpers/peergate.js';

afterAll(() => stopAll());

interface AdminCall { id: string; worker?: number; worker_pid?: number }

describe('workers: the default', () => {
  it('no `workers` key: one worker process per core, each carrying calls', async () => {
    const cores = availableParallelism();
    const [uasPort, peerPort, corePort, opsPort] = await freePorts(4) as [number, number, number, number];
    startUas(CORE_IP, uasPort);
    const policy = twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'warn' }, {
      media: { anchoring: false }, lifecycle: { drain_timeout_s: 0 },
    });
    expect(policy).not.toHaveProperty('workers');
    const pg = await startPeergate(policy, { readyTimeoutMs: 60_000 });
    let workerPids: number[] = [];
    try {
      const primary = pg.proc.child.pid!;
      workerPids = cores > 1 ? (await waitFor(() => { const c = childPids(primary); return c.length === cores ? c : undefined; }, 15_000, 100, `${cores} worker processes`))! : [];
      expect(childPids(primary).length).toBe(cores > 1 ? cores : 0);
      expect(await pg.metric('peergate_workers')).toBe(cores > 1 ? cores : 0);
      // Each worker runs with the default V8 sizing for workers (src/app/workers/node-flags.ts);
      // the primary keeps its own (src/app/heap.ts).
      const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const w of workerPids) expect(argv(w)).toEqual(expect.arrayContaining(['--max-semi-space-size=2', '--heap-growing-percent=50', '--no-memory-reducer']));
      expect(argv(primary)).not.toContain('--max-semi-space-size=2');
      // and with glibc limited to two malloc arenas, unless this environment set the variable.
      const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const arenas = process.env.MALLOC_ARENA_MAX === undefined ? 'MALLOC_ARENA_MAX=2' : `MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}`;
      for (const w of workerPids) expect(environ(w)).toContain(arenas);
      // Once started, each process has the node binary's pages unmapped but for what it runs
      // (src/app/memory-reducer.ts dropBinaryPages): a Node process that keeps them maps ≈ 39 MiB.
      const binaryKiB = (pid: number): number => {
        const exe = readlinkSync(`/proc/${pid}/exe`);
        let cur = false, kib = 0;
        for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
          if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) cur = l.trimEnd().endsWith(` ${exe}`);
          else if (cur && l.startsWith('Rss:')) kib += Number.parseInt(l.slice(4), 10);
        }
        return kib;
      };
      for (const pid of [primary, ...workerPids]) {
        await waitFor(() => binaryKiB(pid) < 28 * 1024 || undefined, 10_000, 100, `process ${pid}: the binary's pages unmapped (${binaryKiB(pid)} KiB mapped)`);
      }

      // Held calls, two per worker, so round robin gives each worker some.
      const n = 2 * Math.max(cores, 1);
      const offered = heldCalls(`127.0.0.1:${peerPort}`, PEER_IP, n, 3000);
      const up = (await waitFor(async () => {
        const c = ((await (await pg.admin('/admin/calls')).json()) as { calls: AdminCall[] }).calls;
        return c.length === n ? c : undefined;
      }, 20_000, 100, `${n} calls up`))!;
      if (cores > 1) {
        // Every worker holds calls, and the pids the admin API names are the primary's children.
        expect(new Set(up.map((c) => c.worker))).toEqual(new Set(Array.from({ length: cores }, (_, i) => i)));
        expect(new Set(up.map((c) => c.worker_pid))).toEqual(new Set(workerPids));
      } else {
        expect(up.every((c) => c.worker === undefined)).toBe(true);
      }
      const r = await offered;
      expect(r.failed, r.output.slice(-2000)).toBe(0);
      expect(r.successful).toBe(n);
      // The workers' counters reach /metrics once each: summed, not doubled.
      await waitFor(async () => (await pg.metric('peergate_calls_total', { peer: 'carrier-a', result: 'caller_bye' })) === n, 5000, 100, `${n} calls counted`);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 5000, 100, 'calls ended');
    } finally {
      await pg.stop();
    }
    // SIGTERM on the primary takes its workers with it: it exits 0 and leaves no worker behind.
    expect(pg.proc.child.exitCode).toBe(0);
    await waitFor(() => workerPids.every((pid) => !isRunning(pid)), 5000, 100, 'workers gone with the primary');
  }, 90_000);
});
