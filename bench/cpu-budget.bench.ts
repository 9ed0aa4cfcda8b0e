// CPU spent per call by every process on the path, at a rate every path keeps up with:
// SIPp uac, SIPp uas, the engine, the drachtio-srf app (trivial B2BUA), and `peergate start`
// (engine + B2BUA with policy, one process). From these, the highest call rate the machine's
// cores could carry if nothing else ran: cores / (CPU per call of all processes together).
// It tells whether a throughput goal is reachable on this machine at all, and what has to shrink.
//
// Per-call CPU falls as the rate rises (more messages per wake-up), so it is measured at several
// rates; a rate only counts for a path if every call succeeded within the step plus 2 s.
//
//   npx tsx bench/cpu-budget.bench.ts [--rates 300,600,900] [--seconds 10]
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startEngine } from '../src/engine/engine.js';
import { freePort, freePorts, scratchDir, startProcess, startSipp, stopAll, waitFor } from '../test/helpers/procs.js';
import { startPeergate } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: { rates: { type: 'string', default: '300,600,900' }, seconds: { type: 'string', default: '10' } } });
const RATES = values.rates.split(',').map(Number);
const SECONDS = Number(values.seconds);
const ROOT = join(import.meta.dirname, '..');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const CORES = availableParallelism();

/** User+system CPU seconds of a running process (/proc/<pid>/stat fields 14 and 15), and the
 *  system (kernel) part alone. */
function cpuOf(pid: number): { total: number; kernel: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { total: (Number(f[11]) + Number(f[12])) / CLK_TCK, kernel: Number(f[12]) / CLK_TCK };
}

/** Run CALLS calls through `target`; returns the uac's own CPU seconds (bash `times`) and the outcome. */
async function uac(target: string, ip: string, RATE: number): Promise<{ cpu: number; ok: number; failed: number; wallS: number }> {
  const CALLS = RATE * SECONDS;
  const dir = scratchDir('cpu-budget-');
  const stat = join(dir, 'stat.csv');
  const args = ['-sn', 'uac', target, '-i', ip, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-r', String(RATE), '-m', String(CALLS),
    '-l', String(RATE * 4), '-d', '0', '-max_socket', '5000', '-nostdin', '-timeout', `${SECONDS * 4 + 10}s`, '-timeout_error',
    '-trace_stat', '-stf', stat, '-fd', '1'];
  const t0 = Date.now();
  // `times` after sipp exits prints the children's user and system time (second line).
  const p = startProcess('bash', ['-c', 'sipp "$@" >/dev/null 2>&1; times', 'bash', ...args], { cwd: dir });
  await p.exited;
  const wallS = (Date.now() - t0) / 1000;
  const line = p.output().trim().split('\n').pop() ?? '';
  const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const rows = readFileSync(stat, 'utf8').trim().split('\n');
  const head = rows[0]!.split(';');
  const last = rows[rows.length - 1]!.split(';');
  const col = (name: string) => Number(last[head.indexOf(name)]);
  return { cpu: (secs[0] ?? NaN) + (secs[1] ?? NaN), ok: col('SuccessfulCall(C)'), failed: col('FailedCall(C)'), wallS };
}

interface Row { path: string; rate: number; perCall: Record<string, number>; kernelPerCall: Record<string, number>; ok: number; failed: number; wallS: number }

async function measure(path: string, rate: number, target: string, ip: string, pids: Record<string, number>, self?: string): Promise<Row> {
  const CALLS = rate * SECONDS;
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid)]));
  const selfBefore = process.cpuUsage();
  const r = await uac(target, ip, rate);
  const perCall: Record<string, number> = { 'sipp uac': (r.cpu / CALLS) * 1000 };
  const kernelPerCall: Record<string, number> = {};
  for (const [k, pid] of Object.entries(pids)) {
    const now = cpuOf(pid);
    perCall[k] = ((now.total - before[k]!.total) / CALLS) * 1000;
    kernelPerCall[k] = ((now.kernel - before[k]!.kernel) / CALLS) * 1000;
  }
  if (self) {
    const u = process.cpuUsage(selfBefore);
    perCall[self] = ((u.user + u.system) / 1e6 / CALLS) * 1000;
  }
  return { path, rate, perCall, kernelPerCall, ok: r.ok, failed: r.failed, wallS: r.wallS };
}

async function main(): Promise<void> {
  const [uasPort, sipPort, peerPort, corePort, ops] = await freePorts(5) as [number, number, number, number, number];
  const uas = startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  // The engine runs in this process (its CPU is this process's, which otherwise only waits).
  const engine = await startEngine({
    contacts: [`sip:127.0.0.1:${sipPort};transport=udp`],
    wire: { address: '127.0.0.1', port: await freePort(), secret: 'cymru' },
  });
  const app = startProcess(process.execPath, [join(ROOT, 'test/fixtures/apps/b2bua.mjs')], {
    env: { ...process.env, WIRE_PORT: String(engine.wirePort), WIRE_SECRET: 'cymru', B_TARGET: `sip:uas@127.0.0.3:${uasPort}`, QUIET: '1' },
  });
  await waitFor(() => engine.wire.hasRoute('invite'), 15_000, 50, 'b2bua app route');
  const pg = await startPeergate({
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerPort },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: corePort },
    ],
    core: { targets: [`sip:127.0.0.3:${uasPort}`] },
    media: { anchoring: false },
    ops: { port: ops },
    log: { level: 'error' },
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    routes: [{ from: 'peers', to: 'core' }],
  });
  try {
    const rows: Row[] = [];
    const uasPid = uas.child.pid!;
    const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    // Rates interleaved across paths, so machine load drifts over all of them alike.
    for (const rate of RATES) {
      rows.push(await measure('sipp uac → uas direct', rate, `127.0.0.3:${uasPort}`, '127.0.0.2', { 'sipp uas': uasPid }));
      rows.push(await measure('engine + trivial drachtio-srf B2BUA', rate, `127.0.0.1:${sipPort}`, '127.0.0.2',
        { 'sipp uas': uasPid, 'drachtio-srf app': app.child.pid! }, 'engine'));
      rows.push(await measure('peergate start (policy on, no media)', rate, `127.0.0.1:${peerPort}`, '127.0.0.2',
        { 'sipp uas': uasPid, 'peergate': pg.proc.child.pid! }));
    }
    console.log(`# ${SECONDS} s per step; CPU ms per call (user+system); ${CORES} cores; load average before ${loadBefore}; node ${process.version}`);
    console.log('\n| path | offered calls/s | calls ok/failed | wall s | CPU ms per call, by process | total | calls/s if CPU-bound on all cores |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const total = Object.values(r.perCall).reduce((a, b) => a + b, 0);
      const parts = Object.entries(r.perCall).map(([k, v]) => `${k} ${v.toFixed(3)}${k in r.kernelPerCall ? ` (kernel ${r.kernelPerCall[k]!.toFixed(3)})` : ''}`).join(', ');
      const keptUp = r.failed === 0 && r.ok === r.rate * SECONDS && r.wallS <= SECONDS + 2;
      console.log(`| ${r.path} | ${r.rate} | ${r.ok}/${r.failed} | ${r.wallS.toFixed(1)}${keptUp ? '' : ' (fell behind)'} | ${parts} | ${total.toFixed(3)} | ${Math.round((CORES * 1000) / total)} |`);
    }
  } finally {
    await pg.stop();
    await stopAll();
    await engine.close();
  }
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
