// The worker model (issue #18 item 1, src/app/workers): `workers: 2` runs the B2BUA in two
// worker processes on the engine's wire port. Real SIPp on both sides, memory store.
//   - a per-peer session limit stays exact across the workers (the store is the primary's),
//     and the admitted calls are spread over both workers; /metrics sums the workers';
//   - a worker killed with SIGKILL mid-call is replaced; its calls get BYE on both legs, its
//     slots are freed at once; the other worker's calls go on;
//   - with Redis, two nodes of two workers each share one exact pool-wide limit;
//   - media anchored with a spawned rtpengine: one rtpengine, in the primary, for all workers;
//   - a worker that keeps dying soon after its start, or does not start in time, is replaced
//     after a pause that doubles (1, 2, 4 s); the other worker serves meanwhile;
//   - a worker whose event loop is stuck gets no new calls once silent for 2 s and is killed past
//     its hang timeout; a shorter stall, or the primary itself stuck, kills none.
// The first five run side by side (each its own node, light loads); then the last two, which
// measure pauses and timeouts against the clock, side by side.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import { join } from 'node:path';
import { childPids, freePorts, heldCalls, isWorkerProcess, readSippStats, scratchDir, startProcess, startUas, stopAll, waitFor, writeFile } from '../helpers/procs.js';
import { SIPP_INVITE_HEAD, SIPP_SDP_PCMU, sippAck, sippByeWithReason } from '../helpers/sipp-xml.js';
import { startRedis } from '../helpers/redis.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy, type RunningPeergate } from '../helpers/peergate.js';

interface WorkerCall { id: string; worker: number; worker_pid: number }

let uasPort: number;

async function startNode(limit: number, o: { redisUrl?: string; nodeId?: string; env?: Record<string, string> } = {}): Promise<{ pg: RunningPeergate; target: string }> {
  const [peerPort, corePort, opsPort] = await freePorts(3) as [number, number, number];
  const pg = await startPeergate(twoSidedPolicy({
    peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'warn', peer: { limits: { sessions: limit } },
  }, {
    media: { anchoring: false }, workers: 2, lifecycle: { drain_timeout_s: 0 },
    ...(o.redisUrl ? { store: { redis: { url: o.redisUrl, on_failure: 'fail_closed' } } } : {}),
  }), { env: { ...(o.nodeId ? { PEERGATE_NODE_ID: o.nodeId } : {}), ...o.env } });
  return { pg, target: `127.0.0.1:${peerPort}` };
}

/** The node's B2BUA worker processes. */
function workerPids(pg: RunningPeergate): number[] {
  return childPids(pg.proc.pid).filter(isWorkerProcess);
}

async function calls(pg: RunningPeergate): Promise<WorkerCall[]> {
  const r = await pg.admin('/admin/calls');
  return ((await r.json()) as { calls: WorkerCall[] }).calls;
}

/** After a reload: `offered` held calls at once until exactly `limit` are admitted (every worker has the new limit). */
async function untilAdmitted(target: string, limit: number, offered: number): Promise<void> {
  await waitFor(async () => {
    const r = await heldCalls(target, PEER_IP, offered, 1000);
    return r.successful === limit && r.failed === offered - limit;
  }, 20_000, 200, `${limit} of ${offered} admitted after the reload`);
}

/**
 * The limits are the primary's (pre-admission); routing is each worker's own. A reload that
 * leaves the peer's calls without a route: every call, round-robin over both workers, gets 404.
 */
async function expectWorkersRouteByReload(pg: RunningPeergate, target: string): Promise<void> {
  const edited = YAML.parse(readFileSync(pg.policyPath, 'utf8')) as { routes: Array<Record<string, unknown>> };
  edited.routes = edited.routes.map((r) => (r.from === 'peers' ? { ...r, called_prefix: '+999' } : r));
  writeFileSync(pg.policyPath, YAML.stringify(edited));
  expect((await pg.admin('/admin/reload', { method: 'POST' })).status).toBe(200);
  await waitFor(async () => (await heldCalls(target, PEER_IP, 1, 100)).failed === 1, 5000, 100, 'no route after the reload');
  const before = await pg.metric('peergate_calls_total', { peer: 'carrier-a', result: 'no_route' });
  const r = await heldCalls(target, PEER_IP, 4, 100);
  expect([r.successful, r.failed]).toEqual([0, 4]);
  expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', result: 'no_route' })).toBe(before + 4);
}

beforeAll(async () => {
  [uasPort] = await freePorts(1) as [number];
  startUas(CORE_IP, uasPort);
}, 30_000);

afterAll(() => stopAll());

// Each test has its node (ports, policy, SIPp uac) and only light loads: they run side by side.
describe.concurrent('workers: 2', () => {
  it('a per-peer session limit is exact across both workers, the calls spread over both, metrics sum', async () => {
    const { pg, target } = await startNode(10);
    try {
      expect(await pg.metric('peergate_workers')).toBe(2);
      // 20 held calls offered at once against a limit of 10 sessions.
      const offered = heldCalls(target, PEER_IP, 20, 6000, 40);
      const up = (await waitFor<WorkerCall[] | undefined>(async () => { const c = await calls(pg); return c.length === 10 ? c : undefined; }, 15_000, 100, '10 calls up'))!;
      expect(new Set(up.map((c) => c.worker))).toEqual(new Set([0, 1]));
      expect(new Set(up.map((c) => c.worker_pid)).size).toBe(2);
      // /metrics is the sum of both workers' registries.
      expect(await pg.metric('peergate_active_calls', { peer: 'carrier-a' })).toBe(10);
      const r = await offered;
      // Every one of the other 10 was refused by the limit (or, on a loaded machine, shed by
      // the engine's overload control before reaching a worker).
      const refusedOrShed = async () => (await pg.metric('peergate_refusals_total', { reason: 'limit_sessions' })) + (await pg.metric('peergate_shed_total'));
      await waitFor(async () => (await refusedOrShed()) === 10, 3000, 100, '10 refusals counted')
        .catch(async (e) => { console.log(r.output, (await pg.metrics()).split('\n').filter((l) => /^peergate_(refusals|calls_total|requests|responses|shed)/.test(l)).join('\n')); throw e; });
      expect(r.successful).toBe(10);
      expect(r.failed).toBe(10);
      expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', result: 'caller_bye' })).toBe(10);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 5000, 100, 'calls ended');
      // Slots were released through the primary's store: the next 10 are admitted again.
      expect((await heldCalls(target, PEER_IP, 10, 200)).successful).toBe(10);
      // Node-wide gauges are the node's, not a sum over processes.
      expect(await pg.metric('peergate_session_limit', { peer: 'carrier-a' })).toBe(10);
      expect(await pg.metric('peergate_engine_connected')).toBe(1);

      // A reload reaches the workers: the limit drops to 3 for the next calls.
      writeFileSync(pg.policyPath, readFileSync(pg.policyPath, 'utf8').replace('sessions: 10', 'sessions: 3'));
      const reload = await pg.admin('/admin/reload', { method: 'POST' });
      expect(reload.status).toBe(200);
      await waitFor(async () => (await pg.metric('peergate_session_limit', { peer: 'carrier-a' })) === 3, 5000, 100, 'limit 3 in force');
      // Each worker is handed the policy after the primary has applied it: give them a moment.
      await untilAdmitted(target, 3, 6);

      await expectWorkersRouteByReload(pg, target);
    } finally {
      await pg.stop();
    }
    expect(pg.proc.child.exitCode).toBe(0);
  }, 90_000);

  it('a worker killed with SIGKILL is replaced; its calls get BYE and free their slots; the other worker\'s go on', async () => {
    const LIMIT = 6;
    const { pg, target } = await startNode(LIMIT);
    const dir = scratchDir('sipp-workers-');
    // A uac that, after the ACK, waits for the network's BYE and answers it: a call ended by
    // peergate succeeds; one that gets no BYE within 25 s fails.
    // A uac that, after the ACK, waits for the network's BYE and answers it: a call ended by
    // peergate succeeds when the BYE's Reason says why (worker restarted, or the drain at the
    // end); one that gets no BYE within 25 s fails.
    const scenario = writeFile(dir, 'wait-bye.xml', `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac waiting for BYE">
  <send retrans="500"><![CDATA[
${SIPP_INVITE_HEAD}
Content-Type: application/sdp
Content-Length: [len]

${SIPP_SDP_PCMU}

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
${sippAck()}
${sippByeWithReason('peergate worker restarted|Drain Deadline Reached', 25_000)}
</scenario>
`);
    const stat = join(dir, 'stat.csv');
    const uac = startProcess('sipp', [target, '-sf', scenario, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', String(LIMIT), '-r', String(LIMIT), '-l', String(LIMIT),
      '-nostdin', '-timeout', '40s', '-trace_stat', '-stf', stat, '-fd', '1'], { cwd: dir });
    try {
      const up = (await waitFor<WorkerCall[] | undefined>(async () => { const c = await calls(pg); return c.length === LIMIT ? c : undefined; }, 15_000, 100, 'calls up')
        .catch((e: Error) => { throw new Error(`${e.message}\n${uac.output().slice(-2000)}\n${pg.proc.output().slice(-2000)}`); }))!;
      const victim = up[0]!;
      const onVictim = up.filter((c) => c.worker === victim.worker).length;
      const survivors = up.filter((c) => c.worker !== victim.worker).map((c) => c.id).sort();
      expect(onVictim).toBeGreaterThan(0);
      expect(survivors.length).toBeGreaterThan(0);
      expect(await pg.metric('peergate_engine_dialogs')).toBe(2 * LIMIT);

      // The INVITEs each worker counted, as /metrics sums them (this scrape is also the last
      // one the victim answers).
      const invitesCounted = await pg.metric('peergate_requests_total', { method: 'INVITE' });
      expect(invitesCounted).toBe(LIMIT);
      process.kill(victim.worker_pid, 'SIGKILL');
      // The victim's calls got BYE: the uac answered them (successful), the engine dropped
      // both dialogs of each, and the other worker's calls are untouched.
      await waitFor(() => readSippStats(stat).successful === onVictim, 10_000, 200, 'BYE on the dead worker\'s calls');
      await waitFor(async () => (await pg.metric('peergate_engine_dialogs')) === 2 * survivors.length, 5000, 100, 'dialogs of the dead worker ended');
      // Replaced: two workers again, the restart counted.
      await waitFor(async () => (await pg.metric('peergate_workers')) === 2, 15_000, 100, 'replacement worker');
      expect(await pg.metric('peergate_worker_restarts_total', { reason: 'SIGKILL' })).toBe(1);
      // What the dead worker had counted stays in the node's counters (they never go down).
      expect(await pg.metric('peergate_requests_total', { method: 'INVITE' })).toBe(invitesCounted);
      expect((await calls(pg)).map((c) => c.id).sort()).toEqual(survivors);
      expect(readSippStats(stat).failed).toBe(0);

      // The dead worker's slots are free now: exactly LIMIT - survivors more calls are admitted.
      const more = await heldCalls(target, PEER_IP, onVictim + 1, 1500);
      expect(more.successful).toBe(onVictim);
      expect(more.failed).toBe(1);

      // The survivors are still up; a drain (drain_timeout_s: 0) ends them with BYE.
      expect((await calls(pg)).map((c) => c.id).sort()).toEqual(survivors);
      await pg.stop();
      expect(pg.proc.child.exitCode).toBe(0);
      await uac.exited;
      expect(readSippStats(stat)).toEqual({ successful: LIMIT, failed: 0 });
    } finally {
      await uac.stop();
      await pg.stop();
    }
  }, 120_000);

  it('a worker replaced while the policy file holds an edit the primary refused runs the policy in force', async () => {
    const { pg, target } = await startNode(4);
    try {
      // An edit that does not validate: the primary refuses it and keeps its policy.
      const valid = readFileSync(pg.policyPath, 'utf8');
      writeFileSync(pg.policyPath, valid.replace('sessions: 4', 'sessions: -1'));
      const reload = await pg.admin('/admin/reload', { method: 'POST' });
      expect(reload.status).not.toBe(200);
      expect(await pg.metric('peergate_session_limit', { peer: 'carrier-a' })).toBe(4);

      const kids = workerPids(pg);
      expect(kids).toHaveLength(2);
      process.kill(kids[0]!, 'SIGKILL');
      // Replaced once, and the replacement stays up: it was handed the policy in force, it did
      // not read the refused file (which made it exit at start, again and again).
      await waitFor(async () => (await pg.metric('peergate_worker_restarts_total')) === 1, 5000, 50, 'the death seen');
      await waitFor(async () => (await pg.metric('peergate_workers')) === 2, 15_000, 100, 'replacement worker up');
      await new Promise((r) => setTimeout(r, 2500));
      expect(await pg.metric('peergate_workers')).toBe(2);
      expect(await pg.metric('peergate_worker_restarts_total')).toBe(1);
      expect(await pg.metric('peergate_worker_restarts_total', { reason: 'SIGKILL' })).toBe(1);

      // Both workers serve with the policy in force: 4 sessions admitted of 6, across both.
      const offered = heldCalls(target, PEER_IP, 6, 3000);
      const up = (await waitFor<WorkerCall[] | undefined>(async () => { const c = await calls(pg); return c.length === 4 ? c : undefined; }, 15_000, 100, '4 calls up'))!;
      expect(new Set(up.map((c) => c.worker))).toEqual(new Set([0, 1]));
      const r = await offered;
      expect(r.successful).toBe(4);
      expect(r.failed).toBe(2);

      // The file fixed, a reload reaches both workers, the replacement included.
      writeFileSync(pg.policyPath, valid.replace('sessions: 4', 'sessions: 2'));
      expect((await pg.admin('/admin/reload', { method: 'POST' })).status).toBe(200);
      await untilAdmitted(target, 2, 4);
      await expectWorkersRouteByReload(pg, target);
    } finally {
      await pg.stop();
    }
  }, 120_000);

  it('with Redis, two nodes of two workers each keep one pool-wide limit exact', async () => {
    const redis = await startRedis();
    const nodes = [await startNode(6, { redisUrl: redis.url, nodeId: 'w-pool-0' }), await startNode(6, { redisUrl: redis.url, nodeId: 'w-pool-1' })];
    try {
      // 8 held calls offered to each node (16) against one limit of 6 for the peer in the pool.
      const runs = nodes.map((n) => heldCalls(n.target, PEER_IP, 8, 5000, 40));
      const up = await waitFor(async () => {
        const all = (await Promise.all(nodes.map((n) => calls(n.pg)))).flat();
        return all.length === 6 ? all : undefined;
      }, 15_000, 100, '6 calls up across the pool');
      expect(up).toHaveLength(6);
      const [a, b] = await Promise.all(runs);
      expect(a!.successful + b!.successful).toBe(6);
      expect(a!.failed + b!.failed).toBe(10);
    } finally {
      for (const n of nodes) await n.pg.stop();
      await redis.stop();
    }
  }, 120_000);

  it('media anchored: the workers use the one rtpengine the primary spawned', async () => {
    const [peerPort, corePort, opsPort] = await freePorts(3) as [number, number, number];
    const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'warn' }, {
      media: { anchoring: true, rtpengine: 'spawn', embedded: { port_min: 47000, port_max: 47999 } }, workers: 2,
    }));
    try {
      // With anchoring on, a call that cannot reach rtpengine is refused (no_rtpengine).
      const r = await heldCalls(`127.0.0.1:${peerPort}`, PEER_IP, 4, 1000);
      expect(r.successful).toBe(4);
      expect(await pg.metric('peergate_refusals_total')).toBe(0);
      expect(await pg.metric('peergate_calls_total', { result: 'caller_bye' })).toBe(4);
      // One rtpengine, the primary's child; the workers (its other children) spawn none.
      const kids = childPids(pg.proc.pid);
      expect(kids.filter((k) => readFileSync(`/proc/${k}/cmdline`, 'utf8').includes('rtpengine'))).toHaveLength(1);
      const workers = kids.filter(isWorkerProcess);
      expect(workers).toHaveLength(2);
      for (const w of workers) expect(childPids(w)).toEqual([]);
    } finally {
      await pg.stop();
    }
    expect(pg.proc.child.exitCode).toBe(0);
  }, 90_000);
});

// Pauses, start and hang timeouts measured against the clock: once the five above are done (this
// describe is not concurrent, so vitest starts it after them), the two side by side (it.concurrent:
// each its own node; a handful of calls, most of their time is waiting out pauses and timeouts;
// their bounds are on the node's own timers, a few seconds wide).
describe('workers: 2, crash loops and hangs', () => {
  it.concurrent('a worker that dies soon after its start, or does not start in time, is replaced after a pause that doubles each time; the other worker serves meanwhile', async () => {
    const START_TIMEOUT_S = 5;
    const { pg, target } = await startNode(4, { env: { PEERGATE_WORKER_START_TIMEOUT_S: String(START_TIMEOUT_S) } });
    try {
      const seen = new Set(workerPids(pg));
      expect(seen.size).toBe(2);
      const fresh = () => workerPids(pg).filter((p) => !seen.has(p));
      let victim = [...seen][0]!;
      // Two deaths of one slot's workers soon after their start (a crash loop)...
      for (let death = 1; death <= 2; death++) {
        process.kill(victim, 'SIGKILL');
        await waitFor(async () => (await pg.metric('peergate_worker_restarts_total')) === death, 5000, 50, `death ${death} seen`);
        if (death === 2) break;
        await waitFor(async () => (await pg.metric('peergate_workers')) === 2, 20_000, 50, `replacement ${death} up`);
        expect(fresh()).toHaveLength(1);
        victim = fresh()[0]!;
        seen.add(victim);
      }
      // ...and the next replacement stuck at its start (stopped as soon as it is forked, before it
      // can say it serves): the pool kills it once the start timeout runs out.
      const stuck = (await waitFor(() => fresh()[0], 10_000, 5, 'the second replacement forked'))!;
      process.kill(stuck, 'SIGSTOP');
      seen.add(stuck);
      const forked = Date.now();
      await waitFor(async () => (await pg.metric('peergate_worker_restarts_total')) === 3, (START_TIMEOUT_S + 5) * 1000, 100, 'the stuck worker killed');
      expect(Date.now() - forked).toBeGreaterThanOrEqual(START_TIMEOUT_S * 1000 - 1000);
      expect(() => process.kill(stuck, 0)).toThrow();

      // Its replacement waits 4 s: one worker serves meanwhile, and calls go through it.
      const third = Date.now();
      const during = await heldCalls(target, PEER_IP, 2, 500);
      expect(during.successful).toBe(2);
      await new Promise((r) => setTimeout(r, Math.max(0, 3000 - (Date.now() - third))));
      expect(await pg.metric('peergate_workers')).toBe(1);
      await waitFor(async () => (await pg.metric('peergate_workers')) === 2, 20_000, 100, 'third replacement up');
      expect(Date.now() - third).toBeGreaterThanOrEqual(4000);

      // What the primary said of each death: the pause it took, doubling.
      const lines = pg.proc.output().split('\n');
      const late = lines.filter((l) => l.includes('worker did not start in time; killing it'));
      expect(late).toHaveLength(1);
      // Stopped within milliseconds of its fork, it never asked for its hello: the line says so.
      expect((JSON.parse(late[0]!) as { waiting_for?: string }).waiting_for, late[0]).toBe('hello');
      const deaths = lines.filter((l) => l.includes('worker died'))
        .map((l) => JSON.parse(l) as { restart_in_ms: number; short_lived_in_a_row?: number; reason: string });
      expect(deaths.map((d) => d.restart_in_ms)).toEqual([1000, 2000, 4000]);
      expect(deaths.map((d) => d.short_lived_in_a_row)).toEqual([1, 2, 3]);
      expect(deaths.every((d) => d.reason === 'SIGKILL')).toBe(true);
    } finally {
      await pg.stop();
    }
  }, 120_000);

  it.concurrent('a worker whose event loop is stuck gets no new calls once silent, is killed past the hang timeout and replaced, its calls get BYE; a shorter stall, or the primary stuck, kills none', async () => {
    const HANG_TIMEOUT_S = 6;
    const { pg, target } = await startNode(10, { env: { PEERGATE_WORKER_HANG_TIMEOUT_S: String(HANG_TIMEOUT_S) } });
    // Held calls whose uac waits for the network's BYE (the one the engine sends for a dead worker).
    const held = heldCalls(target, PEER_IP, 4, 40_000, 40);
    try {
      const up = (await waitFor<WorkerCall[] | undefined>(async () => { const c = await calls(pg); return c.length === 4 ? c : undefined; }, 15_000, 100, 'calls up'))!;
      const victim = up[0]!.worker_pid;
      const onVictim = up.filter((c) => c.worker_pid === victim).length;
      // A stall shorter than the timeout (a long GC, a burst): left alone.
      process.kill(victim, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 1500));
      process.kill(victim, 'SIGCONT');
      await new Promise((r) => setTimeout(r, 1500));
      expect(await pg.metric('peergate_worker_restarts_total')).toBe(0);
      expect(workerPids(pg)).toContain(victim);
      // The primary itself stuck past the timeout: the workers' reports wait unread, their
      // silence is not theirs, and none is killed.
      process.kill(pg.proc.pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, (HANG_TIMEOUT_S + 1) * 1000));
      process.kill(pg.proc.pid, 'SIGCONT');
      await new Promise((r) => setTimeout(r, 2000));
      expect(await pg.metric('peergate_worker_restarts_total')).toBe(0);
      expect(await pg.metric('peergate_workers')).toBe(2);
      // Stuck for good. Silent for 2 s, it gets no new calls: the other worker takes them all...
      process.kill(victim, 'SIGSTOP');
      const stuckAt = Date.now();
      await new Promise((r) => setTimeout(r, 2500));
      const meanwhile = await heldCalls(target, PEER_IP, 4, 300);
      expect(meanwhile.successful).toBe(4);
      expect(Date.now() - stuckAt).toBeLessThan(HANG_TIMEOUT_S * 1000);
      // ...and past the timeout it is killed, its calls ended, and a replacement serves.
      await waitFor(async () => (await pg.metric('peergate_worker_restarts_total', { reason: 'SIGKILL' })) === 1, (HANG_TIMEOUT_S + 5) * 1000, 100, 'the stuck worker killed');
      expect(Date.now() - stuckAt).toBeGreaterThanOrEqual(HANG_TIMEOUT_S * 1000 - 500);
      await waitFor(async () => (await calls(pg)).length === 4 - onVictim, 10_000, 100, 'the stuck worker\'s calls ended');
      await waitFor(async () => (await pg.metric('peergate_workers')) === 2, 20_000, 100, 'replacement up');
      expect(pg.proc.output().split('\n').filter((l) => l.includes('worker silent past its hang timeout; killing it'))).toHaveLength(1);
      // The replacement serves: new calls go through on both workers.
      const after = heldCalls(target, PEER_IP, 4, 2000);
      const spread = (await waitFor<WorkerCall[] | undefined>(async () => { const c = await calls(pg); return c.length === 4 - onVictim + 4 ? c : undefined; }, 15_000, 100, 'new calls up'))!;
      expect(new Set(spread.map((c) => c.worker))).toEqual(new Set([0, 1]));
      expect((await after).successful).toBe(4);
    } finally {
      await pg.stop();
      await held.catch(() => undefined);
    }
  }, 120_000);
});
