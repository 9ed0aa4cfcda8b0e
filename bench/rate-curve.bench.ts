// CPU per call against the offered rate, in ONE running `peergate start` (policy on, media not
// anchored), and what a freshly started node does with its first seconds of load.
//
// Why: CPU per call is not a constant. At a low rate every message wakes a sleeping process
// (and, on a virtual machine, an idle virtual CPU), so each call pays for several wake-ups and
// cold caches; near saturation the processes stay runnable and read several messages per
// wake-up. A figure quoted "per call" means something only with its rate; this bench gives the
// curve from one node, with each process's context switches per call beside it.
// The first step runs on a cold node (V8 still interpreting and compiling): its calls are
// printed second by second (SIPp's -fd 1 rows: answered / failed), which shows how long a
// restarted node refuses part of a steady load.
//
//   npm run build && nice -n 10 npx tsx bench/rate-curve.bench.ts [--rates 600,600,1000,600,300,100] [--seconds 10] [--workers N] [--node-args="FLAGS"]
//
// --rates may hold idle spells, `idle:S` (S seconds without a call), to see what a pause costs the
// step after it: each step prints its setup p50/p99 and the p99 of its first second apart.
//
// --node-args: more node/V8 options for the primary; the workers' come from PEERGATE_WORKER_NODE_FLAGS
// --bin: another checkout's bin/peergate.js (built), to alternate two versions
// --peers N: the policy has N peers, the load's the last (what attribution costs with many)
// --log-level L: the policy's log.level (default error; peergate's own default is info)
// --policy JSON: merged into the policy's top level, e.g. '{"memory":{"reduce_when_quiet":false}}'
// --affinity "P;W1;W2": CPU lists for `taskset` of the primary and each worker, all threads
//   (e.g. "0;1;1"), applied once the node serves; empty: the scheduler places them
// --warm-uas RATE:SECONDS: before peergate starts, SIPp's uac calls the SIPp uas directly at RATE
//   for SECONDS, so that a cold first step shows the node's own cold start, not the uas's too
// in this bench's environment (it replaces their default, docs/operations.md "Worker memory").
//
// Steps run in the order given, back to back, SIPp uac (127.0.0.2, no hold time) → peergate →
// SIPp uas (127.0.0.3). Overload control stays on (a cold node's refusals are the point); the
// peer's limits are out of the way.
import './require-build.js';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { childPids, cpuSeconds, freePorts, machineBusySeconds, procStatus, runSipp, scratchDir, startUas, stopAll } from '../test/helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';
import { percentile, rtts } from './sipp-rtt.js';

const { values } = parseArgs({ options: {
  rates: { type: 'string', default: '600,600,1000,600,300,100' }, seconds: { type: 'string', default: '10' }, workers: { type: 'string' },
  'node-args': { type: 'string', default: '' }, policy: { type: 'string' }, bin: { type: 'string' }, peers: { type: 'string', default: '1' }, 'log-level': { type: 'string', default: 'error' },
  'warm-uas': { type: 'string' }, affinity: { type: 'string' },
} });
/** A step: a rate for SECONDS, or an idle spell of `idle` seconds. */
type Step = { rate: number } | { idle: number };
const STEPS: Step[] = values.rates.split(',').map((t) => {
  const idle = /^idle:(\d+)$/.exec(t);
  const n = Number(idle ? idle[1] : t);
  if (!Number.isInteger(n) || n <= 0 || n > 100_000) throw new Error(`--rates: "${t}" is neither a rate (calls/s) nor idle:SECONDS`);
  return idle ? { idle: n } : { rate: n };
});
const SECONDS = Number(values.seconds);

/** SIPp's per-second rows: answered / failed in each period. */
function perSecond(statFile: string | undefined): string {
  if (!statFile) return '';
  const lines = readFileSync(statFile, 'utf8').trim().split('\n');
  const head = lines[0]!.split(';');
  const ok = head.indexOf('SuccessfulCall(P)');
  const failed = head.indexOf('FailedCall(P)');
  return lines.slice(1).map((l) => { const f = l.split(';'); return `${f[ok]}/${f[failed]}`; }).filter((s) => s !== '0/0').join(' ');
}

/** SIPp's built-in uac from PEER_IP: `rate` calls/s for `seconds`, no hold time. */
function uacArgs(target: string, rate: number, seconds: number): string[] {
  return ['-sn', 'uac', target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-r', String(rate), '-m', String(rate * seconds), '-l', String(rate * 4), '-d', '0', '-max_socket', '5000'];
}

const switches = (pid: number): number => procStatus(pid, 'voluntary_ctxt_switches') + procStatus(pid, 'nonvoluntary_ctxt_switches');

async function main(): Promise<void> {
  const [peerPort, corePort, opsPort, uasPort] = await freePorts(4) as [number, number, number, number];
  startUas(CORE_IP, uasPort);
  if (values['warm-uas']) {
    const [rate, seconds] = values['warm-uas'].split(':').map(Number) as [number, number];
    if (!(rate > 0 && seconds > 0)) throw new Error('--warm-uas: RATE:SECONDS, e.g. 1200:10');
    const w = await runSipp(uacArgs(`${CORE_IP}:${uasPort}`, rate, seconds), { timeoutS: seconds * 3 + 10 });
    console.log(`# the uas warmed by SIPp directly: ${w.successful} / ${w.failed} calls at ${rate}/s`);
  }
  const policy = twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: values['log-level'] }, {
    media: { anchoring: false },
    ...(values.policy === undefined ? {} : JSON.parse(values.policy) as Record<string, unknown>),
    ...(values.workers === undefined ? {} : { workers: Number(values.workers) }),
    // --peers N: N − 1 other peers (10.x.y.0/24 each) listed before the one the load comes from.
    peers: [...Array.from({ length: Number(values.peers) - 1 }, (_, i) => ({ id: `other-${i}`, match: { addresses: [`10.${i >> 8}.${i & 255}.0/24`] } })),
      { id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, limits: { cps: 100_000, burst: 100_000, sessions: 1_000_000 } }],
  });
  const pg = await startPeergate(policy, { nodeArgs: values['node-args'].split(' ').filter(Boolean), ...(values.bin ? { bin: values.bin } : {}) });
  const pids = [pg.proc.pid, ...childPids(pg.proc.pid).filter((p) => p !== pg.proc.pid)];
  const names = pids.map((_, i) => (i === 0 ? 'primary' : `worker ${i}`));
  if (values.affinity) {
    const lists = values.affinity.split(';');
    if (lists.length !== pids.length) throw new Error(`--affinity: ${lists.length} CPU lists for ${pids.length} processes`);
    for (const [k, pid] of pids.entries()) execFileSync('taskset', ['-a', '-p', '-c', lists[k]!, String(pid)], { stdio: 'ignore' });
    console.log(`# affinity: ${names.map((n, k) => `${n} on CPU ${lists[k]}`).join(', ')}`);
  }
  console.log(`# ${SECONDS} s per step, one node (${names.join(', ')}); load average before ${loadavg().map((x) => x.toFixed(2)).join(' ')}; node ${process.version}`);
  console.log('| step | offered calls/s | answered / failed | setup p50 / p99 ms (first second\'s p99) | CPU ms per answered call: ' + names.join(' / ') + ' = all | % of a core: ' + names.join(' / ') + ' | context switches per call | per second: answered/failed | machine busy |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  let first = true;
  for (const [i, step] of STEPS.entries()) {
    if ('idle' in step) {
      await new Promise((r) => setTimeout(r, step.idle * 1000));
      console.log(`| ${i + 1} | idle ${step.idle} s; memory reductions so far: ${await pg.metric('peergate_memory_reductions_total')} | | | | | | | |`);
      continue;
    }
    const rate = step.rate;
    const dir = scratchDir('rate-curve-');
    const cpu0 = pids.map((p) => cpuSeconds(p).total);
    const cs0 = pids.map(switches);
    const m0 = machineBusySeconds();
    const t0 = Date.now();
    const r = await runSipp([...uacArgs(`127.0.0.1:${peerPort}`, rate, SECONDS), '-trace_rtt', '-rtt_freq', '1'], { dir, timeoutS: SECONDS * 3 + 10 });
    const wall = (Date.now() - t0) / 1000;
    const cpu = pids.map((p, k) => cpuSeconds(p).total - cpu0[k]!);
    const cs = pids.map((p, k) => switches(p) - cs0[k]!);
    const m1 = machineBusySeconds();
    const busy = (100 * (m1 - m0)) / (wall * availableParallelism());
    const n = Math.max(1, r.successful);
    const ms = cpu.map((c) => (1000 * c) / n);
    const setup = rtts(dir);
    const all = setup.map((x) => x.ms);
    const firstSecond = setup.filter((x) => x.atMs < 1000).map((x) => x.ms);
    const times = `${percentile(all, 0.5)} / ${percentile(all, 0.99)} (${percentile(firstSecond, 0.99)})`;
    console.log(`| ${i + 1}${first ? ' (cold)' : ''} | ${rate} | ${r.successful} / ${r.failed} | ${times} | ${ms.map((x) => x.toFixed(3)).join(' / ')} = **${ms.reduce((a, b) => a + b, 0).toFixed(3)}** | `
      + `${cpu.map((c) => ((100 * c) / wall).toFixed(0)).join(' / ')} | ${cs.map((c) => (c / n).toFixed(1)).join(' / ')} | ${perSecond(r.statFile)} | ${busy.toFixed(0)} % |`);
    first = false;
  }
  console.log(`# load average after ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  await pg.stop();
}

main().then(() => stopAll(), async (err: unknown) => { console.error(err); await stopAll(); process.exitCode = 1; });
