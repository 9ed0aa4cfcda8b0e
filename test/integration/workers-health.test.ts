// Issue #18 / #15 with `workers: 2`: one worker probes the targets (OPTIONS, docs/routing.md) and
// every worker routes around a hop it found down, through the primary. Real SIPp behind the
// live target; the dead one is a port nobody listens on.
import { describe, it, expect, afterAll } from 'vitest';
import { freePorts, runSipp, startSipp, stopAll, waitFor } from '../helpers/procs.js';
import { startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';

afterAll(stopAll);

const PEER_IP = '127.0.0.2';

async function targets(pg: RunningPeergate): Promise<{ target: string; up: boolean }[]> {
  return (await (await pg.admin('/admin/targets')).json() as { targets: { target: string; up: boolean }[] }).targets;
}

async function calls(pg: RunningPeergate): Promise<{ worker: number; worker_pid: number }[]> {
  return (await (await pg.admin('/admin/calls')).json() as { calls: { worker: number; worker_pid: number }[] }).calls;
}

describe('workers: 2, target health', () => {
  it('the prober\'s "down" reaches every worker: each call skips the dead hop; after the prober is replaced it is found down again', async () => {
    const [uasPort, deadPort, peerPort, corePort, opsPort] = await freePorts(5) as [number, number, number, number, number];
    // -aa: the uas answers the OPTIONS probes 200.
    startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-aa']);
    const dead = `udp:127.0.0.9:${deadPort}`;
    const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: '', logLevel: 'warn' }, {
      media: { anchoring: false }, workers: 2, lifecycle: { drain_timeout_s: 0 },
      core: {
        targets: [`sip:127.0.0.9:${deadPort}`, `sip:127.0.0.3:${uasPort}`],
        health: { probe: true, interval_ms: 300, timeout_ms: 200, failure_threshold: 2, success_threshold: 1 },
      },
    }));
    const target = `127.0.0.1:${peerPort}`;
    const skipped = () => pg.metric('peergate_route_skipped_down_total', { side: 'core' });
    const tenCalls = async () => {
      const r = await runSipp(['-sn', 'uac', target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '10', '-r', '10', '-l', '10', '-d', '0'], { timeoutS: 30 });
      expect(r.failed, r.output.slice(-2000)).toBe(0);
      expect(r.successful).toBe(10);
    };
    try {
      const down = async () => (await targets(pg)).some((t) => t.target === dead && !t.up);
      await waitFor(down, 10_000, 100, 'the dead hop probed down');
      await tenCalls();
      // Both workers took calls (round robin), and every call skipped the hop: the worker that
      // does not probe knew it was down.
      expect(await skipped()).toBe(10);

      // Kill the prober (worker 0): its replacement probes from scratch and finds it down again.
      const held = runSipp(['-sn', 'uac', target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '2', '-r', '2', '-l', '2', '-d', '4000'], { timeoutS: 30 });
      const up = await waitFor(async () => { const c = await calls(pg); return c.length === 2 ? c : undefined; }, 10_000, 100, 'two calls up');
      const prober = up!.find((c) => c.worker === 0)?.worker_pid;
      expect(prober, 'a call on worker 0 (round robin)').toBeDefined();
      process.kill(prober!, 'SIGKILL');
      await held;
      await waitFor(async () => (await pg.metric('peergate_workers')) === 2, 15_000, 100, 'worker 0 replaced');
      await waitFor(down, 10_000, 100, 'the dead hop probed down by the new prober');
      const before = await skipped();
      await tenCalls();
      expect(await skipped()).toBe(before + 10);
    } finally {
      await pg.stop();
    }
  }, 120_000);
});
