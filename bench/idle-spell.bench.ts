// What the first seconds of load after an idle spell cost one node, per process: GC (from
// `--trace-gc`: collections, mark-compacts, memory-reducing ones, pause ms), minor page faults
// and CPU, against the same load warm. BENCHMARKS.md "What an idle spell costs".
//
//   npm run build && nice -n 10 npx tsx bench/idle-spell.bench.ts [--idle 60] [--rate 600] [--reduce on|off]
//
// --reduce: the policy's memory.reduce_when_quiet (peergate's reduction after a burst; it runs
// ≈ 42 s into a spell). The primary and the workers run with their default flags plus
// --trace-gc (the workers' through PEERGATE_WORKER_NODE_FLAGS, set here).
// Load: SIPp uac (127.0.0.2, no hold time) → peergate → SIPp uas (127.0.0.3), 8 s per step:
// the rate, 1,000/s, the rate again (warm, measured), the spell, the rate (measured).
import './require-build.js';
import { parseArgs } from 'node:util';
import { WORKER_NODE_FLAGS } from '../src/app/workers/node-flags.js';
import { childPids, cpuSeconds, freePorts, runSipp, startUas, stopAll } from '../test/helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: {
  idle: { type: 'string', default: '60' }, rate: { type: 'string', default: '600' }, reduce: { type: 'string', default: 'on' },
} });
const IDLE_S = Number(values.idle);
const RATE = Number(values.rate);
if (!(IDLE_S > 0 && IDLE_S <= 600) || !(RATE > 0 && RATE <= 5000) || !['on', 'off'].includes(values.reduce)) {
  throw new Error('--idle 1–600 s, --rate 1–5000 calls/s, --reduce on|off');
}
const GC_LINE = / ms: (Scavenge|Mark-Compact|Minor)/;

/** Minor page faults and CPU (ms) of one process so far (/proc/<pid>/stat). */
function stat(pid: number): { minflt: number; cpuMs: number } {
  const c = cpuSeconds(pid);
  return { minflt: c.minorFaults, cpuMs: Math.round(c.total * 1000) };
}

/** GC lines of one process (by `[pid:`), summed. */
function gcOf(lines: string[], pid: number): string {
  let n = 0, mc = 0, reduce = 0, ms = 0;
  for (const l of lines) {
    if (!l.startsWith(`[${pid}:`)) continue;
    n++;
    if (l.includes('Mark-Compact')) mc++;
    if (l.includes('(reduce)')) reduce++;
    const m = /MB, ([\d.]+) \/ [\d.]+ ms/.exec(l);
    if (m) ms += Number(m[1]);
  }
  return `${n} (${mc} mark-compact, ${reduce} reducing) ${ms.toFixed(0)} ms`;
}

async function main(): Promise<void> {
  const [peerPort, corePort, opsPort, uasPort] = await freePorts(4) as [number, number, number, number];
  startUas(CORE_IP, uasPort);
  const policy = twoSidedPolicy({
    peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'error',
    peer: { limits: { cps: 100_000, burst: 100_000, sessions: 1_000_000 } },
  }, { media: { anchoring: false }, memory: { reduce_when_quiet: values.reduce === 'on' } });
  const pg = await startPeergate(policy, { nodeArgs: ['--trace-gc'], env: { PEERGATE_WORKER_NODE_FLAGS: [...WORKER_NODE_FLAGS, '--trace-gc'].join(' ') } });
  const pids = [pg.proc.pid, ...childPids(pg.proc.pid)];
  const names = pids.map((_, i) => (i === 0 ? 'primary' : `worker ${i}`));
  const gcLines = () => pg.proc.output().split('\n').filter((l) => GC_LINE.test(l));
  const load = (rate: number) => runSipp(['-sn', 'uac', `127.0.0.1:${peerPort}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-r', String(rate), '-m', String(rate * 8), '-l', String(rate * 4), '-d', '0'], { timeoutS: 40 });

  console.log(`# ${RATE} calls/s, ${IDLE_S} s idle, memory.reduce_when_quiet ${values.reduce}; processes: ${names.join(', ')}`);
  console.log(`| step | answered / failed | first 2 s: GCs, pause ms (${names.join(' / ')}) | minor faults | CPU ms | memory reductions so far |`);
  console.log('|---|---|---|---|---|---|');
  const measured = async (label: string) => {
    const s0 = pids.map(stat);
    const g0 = gcLines().length;
    let first: { s: ReturnType<typeof stat>[]; g: string[] } | undefined;
    const t = setTimeout(() => { first = { s: pids.map(stat), g: gcLines().slice(g0) }; }, 2000);
    const r = await load(RATE);
    clearTimeout(t);
    const f = first ?? { s: pids.map(stat), g: gcLines().slice(g0) };
    console.log(`| ${label} | ${r.successful} / ${r.failed} | ${pids.map((p) => gcOf(f.g, p)).join(' / ')} | `
      + `${pids.map((_, i) => f.s[i]!.minflt - s0[i]!.minflt).join(' / ')} | ${pids.map((_, i) => f.s[i]!.cpuMs - s0[i]!.cpuMs).join(' / ')} | ${await pg.metric('peergate_memory_reductions_total')} |`);
  };
  await load(RATE);
  await load(1000);
  await measured(`${RATE}/s, warm`);
  const g0 = gcLines().length;
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  console.log(`| ${IDLE_S} s idle | | ${pids.map((p) => gcOf(gcLines().slice(g0), p)).join(' / ')} | | | |`);
  await measured(`${RATE}/s after the spell`);
  await pg.stop();
}

main().then(() => stopAll(), async (err: unknown) => { console.error(err); await stopAll(); process.exitCode = 1; });
