// Full B2BUA calls (INVITE … BYE, no RTP, media not anchored) through `peergate start` with
// `workers: 1` (the B2BUA in the engine's process) and `workers: 2` (two B2BUA worker
// processes beside the engine's), in the same run on the same machine (issue #18 item 1).
//
//   nice -n 10 npx tsx bench/workers.bench.ts [--max 2000] [--seconds 5] [--workers 1,2]
//
// For each worker count: the highest rate (calls/s) whose `seconds` worth of calls all
// succeeded and kept up (done within the step plus 2 s), like bench/b2bua.bench.ts, and the
// CPU each peergate process used during each step (% of one core, from /proc/<pid>/stat).
// Overload control is off here (it sheds on event-loop lag, which a loaded machine causes).
import './require-build.js';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { cpuSeconds, freePorts, runSipp, startSipp, stopAll } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy, type RunningPeergate } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: { max: { type: 'string', default: '2000' }, seconds: { type: 'string', default: '5' }, workers: { type: 'string', default: '1,2' } } });
const MAX = Number(values.max);
const SECONDS = Number(values.seconds);
const COUNTS = values.workers.split(',').map(Number);
const RATES = [100, 200, 400, 600, 800, 1000, 1200, 1500, 2000, 2500, 3000].filter((r) => r <= MAX);
const TICK = 100; // USER_HZ on Linux

/** utime + stime of a process, in clock ticks. */
const cpuTicks = (pid: number): number => Math.round(cpuSeconds(pid).total * TICK);

/** The primary and its worker processes (its children running node). */
function processes(primary: number): { name: string; pid: number }[] {
  let kids: number[] = [];
  try { kids = readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { /* none */ }
  const workers = kids.filter((pid) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('entry.'); } catch { return false; } });
  return [{ name: 'primary', pid: primary }, ...workers.map((pid, i) => ({ name: `worker${i}`, pid }))];
}

async function startNode(uasPort: number, workers: number): Promise<{ pg: RunningPeergate; target: string }> {
  const [peerPort, corePort, ops] = await freePorts(3) as [number, number, number];
  const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort: ops, coreTarget: `sip:127.0.0.3:${uasPort}`, logLevel: 'error' }, {
    media: { anchoring: false },
    // Capacity, not shedding: on a shared, loaded machine the event-loop-lag shedder refuses
    // calls at any rate (measured: 155 of 300 shed at 100 calls/s, load average 14).
    overload: { enabled: false },
    workers,
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
  }), { readyTimeoutMs: 120_000 });
  return { pg, target: `127.0.0.1:${peerPort}` };
}

async function sweep(workers: number, uasPort: number): Promise<{ best: number; cpuAtBest: string }> {
  const { pg, target } = await startNode(uasPort, workers);
  let best = 0;
  let cpuAtBest = '';
  try {
    const procs = processes(pg.proc.pid);
    for (const rate of RATES) {
      const before = procs.map((p) => cpuTicks(p.pid));
      const t0 = Date.now();
      const r = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
        '-r', String(rate), '-m', String(rate * SECONDS), '-l', String(rate * 4), '-d', '0', '-max_socket', '5000'], { timeoutS: SECONDS * 4 + 10 });
      const elapsedS = (Date.now() - t0) / 1000;
      const cpu = procs.map((p, i) => `${p.name} ${Math.round(((cpuTicks(p.pid) - before[i]!) / TICK / elapsedS) * 100)}%`).join(', ');
      const keptUp = elapsedS <= SECONDS + 2;
      const ok = r.failed === 0 && r.successful === rate * SECONDS && keptUp;
      console.log(`workers=${workers} ${String(rate).padStart(5)} calls/s: ${r.successful} ok, ${r.failed} failed, ${elapsedS.toFixed(1)} s; CPU ${cpu}${ok ? '' : keptUp ? '  <- failures' : '  <- fell behind'}`);
      if (!ok) break;
      best = rate;
      cpuAtBest = cpu;
    }
  } finally {
    await pg.stop();
  }
  return { best, cpuAtBest };
}

async function main(): Promise<void> {
  const [uasPort] = await freePorts(1) as [number];
  startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  const la = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`# ${SECONDS} s per step, rates ${RATES.join(', ')}; load average before: ${la()}`);
  const rows: string[] = [];
  try {
    for (const n of COUNTS) {
      const r = await sweep(n, uasPort);
      rows.push(`| ${n} | ${r.best} | ${r.cpuAtBest || '-'} |`);
    }
  } finally {
    await stopAll();
  }
  console.log('\n| workers | max calls/s, 0 failures | CPU per process at that rate (% of one core) |');
  console.log('|---|---|---|');
  for (const row of rows) console.log(row);
  console.log(`\nload average after: ${la()}`);
}

await main();
