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
//
// Before/after comparison of `peergate start` alone (issue 18: CPU per call), e.g. main's
// checkout against this one, alternated so machine load drifts over both alike:
//
//   nice -n 10 npx tsx bench/cpu-budget.bench.ts --paths peergate --roots /work/wt/base18,. \
//     --rates 300 --pairs 3 [--sweep 400,500,600,700,800] [--cpu-prof /tmp/prof]
//
// --roots: peergate checkouts (each with node_modules), each started once with the same policy;
// --pairs: rounds of (every root in turn) per rate; --sweep: after that, for each root in turn,
// the highest rate with zero failures that kept up (as bench/b2bua.bench.ts); --cpu-prof: run
// each peergate with node's --cpu-prof, profiles written to DIR/<root index>/ at its exit;
// --concurrency N: closed loop instead of an offered rate (see CONCURRENCY); --no-overload:
// peergate's overload shedding off (a shed call costs less and would flatter the figure);
// --node-args: more node options for each peergate (e.g. '--max-semi-space-size=32').
import { requireCurrentBuild } from './require-build.js';
import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { startEngine } from '../src/engine/engine.js';
import { PRIMARY_NODE_FLAGS } from '../src/app/heap.js';
import { childPids, cpuSeconds, freePort, freePorts, scratchDir, startProcess, startSipp, stopAll, sweepRates, waitFor, writeFile, type Proc } from '../test/helpers/procs.js';

const { values } = parseArgs({ options: {
  rates: { type: 'string', default: '300,600,900' }, seconds: { type: 'string', default: '10' },
  paths: { type: 'string', default: 'direct,engine,peergate' }, roots: { type: 'string' }, pairs: { type: 'string', default: '1' },
  sweep: { type: 'string' }, 'cpu-prof': { type: 'string' }, 'node-args': { type: 'string' },
  concurrency: { type: 'string' }, 'no-overload': { type: 'boolean', default: false },
} });
const RATES = values.rates.split(',').map(Number);
const PATHS = new Set(values.paths.split(','));
const PAIRS = Number(values.pairs);
// Closed loop: at most this many calls at once, each started as soon as one ends; `rate` × `seconds`
// calls in all. CPU per call then does not depend on whether the machine lets the path keep up
// with an offered rate (a shared machine: no shedding, no retransmissions from queueing).
const CONCURRENCY = values.concurrency ? Number(values.concurrency) : undefined;
const SECONDS = Number(values.seconds);
const ROOT = join(import.meta.dirname, '..');
const CORES = availableParallelism();

/** User+system CPU seconds of a running process and of its child processes (/proc/<pid>/stat
 *  fields 14 and 15), and the system (kernel) part alone. The children are `peergate start`'s
 *  B2BUA workers: the primary alone is a third of the node's CPU per call. */
function cpuOf(pid: number): { total: number; kernel: number } {
  let total = 0;
  let kernel = 0;
  for (const p of [pid, ...childPids(pid)]) {
    try {
      const c = cpuSeconds(p);
      total += c.total;
      kernel += c.system;
    } catch { /* exited */ }
  }
  return { total, kernel };
}

/** Run CALLS calls through `target`; returns the uac's own CPU seconds (bash `times`) and the outcome. */
async function uac(target: string, ip: string, RATE: number): Promise<{ cpu: number; ok: number; failed: number; wallS: number }> {
  const CALLS = RATE * SECONDS;
  const dir = scratchDir('cpu-budget-');
  const stat = join(dir, 'stat.csv');
  const pace = CONCURRENCY === undefined ? ['-r', String(RATE), '-l', String(RATE * 4)] : ['-r', '10000', '-l', String(CONCURRENCY)];
  const args = ['-sn', 'uac', target, '-i', ip, '-p', '0', '-t', 'u1', '-s', '+15551230000', ...pace, '-m', String(CALLS), '-d', '0', '-max_socket', '5000', '-nostdin', '-timeout', `${SECONDS * 4 + 10}s`, '-timeout_error',
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

/** `peergate start` from the checkout `root` with `policy`; ready once /ready answers 200. */
async function startPeergateAt(root: string, policy: Record<string, unknown>, opsPort: number, profDir?: string, nodeArgs: string[] = []): Promise<Proc> {
  const dir = scratchDir('cpu-budget-pg-');
  const policyPath = writeFile(dir, 'policy.yaml', stringify(policy));
  if (profDir) mkdirSync(profDir, { recursive: true });
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const extra = [...(values['node-args'] ? values['node-args'].split(' ').filter(Boolean) : []), ...nodeArgs];
  // Every checkout with the node options operators start the primary with (this checkout's).
  const proc = startProcess(process.execPath, [...PRIMARY_NODE_FLAGS, ...extra, ...prof, join(root, 'bin', 'peergate.js'), 'start', '--policy', policyPath], { cwd: dir });
  await waitFor(async () => {
    if (proc.child.exitCode !== null) throw new Error(`peergate exited early:\n${proc.output()}`);
    return (await fetch(`http://127.0.0.1:${opsPort}/ready`).catch(() => null))?.status === 200;
  }, 60_000, 100, `peergate (${root}) ready`);
  return proc;
}

async function main(): Promise<void> {
  const [uasPort, sipPort] = await freePorts(2) as [number, number];
  const uas = startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  // The engine runs in this process (its CPU is this process's, which otherwise only waits).
  const engine = PATHS.has('engine') ? await startEngine({
    contacts: [`sip:127.0.0.1:${sipPort};transport=udp`],
    wire: { address: '127.0.0.1', port: await freePort(), secret: 'cymru' },
  }) : undefined;
  const app = engine ? startProcess(process.execPath, [join(ROOT, 'test/fixtures/apps/b2bua.mjs')], {
    env: { ...process.env, WIRE_PORT: String(engine.wirePort), WIRE_SECRET: 'cymru', B_TARGET: `sip:uas@127.0.0.3:${uasPort}`, QUIET: '1' },
  }) : undefined;
  if (engine) await waitFor(() => engine.wire.hasRoute('invite'), 15_000, 50, 'b2bua app route');
  // An entry is a checkout, optionally followed by node options for that one: `DIR --max-semi-space-size=32`.
  const roots = (values.roots ?? ROOT).split(',').map((r) => { const [dir, ...args] = r.trim().split(/\s+/); return { dir: resolve(dir!), args }; });
  for (const r of roots) requireCurrentBuild(r.dir);
  const nodes: Array<{ label: string; proc: Proc; target: string }> = [];
  if (PATHS.has('peergate')) {
    for (const [i, { dir: root, args }] of roots.entries()) {
      const [peerPort, corePort, ops] = await freePorts(3) as [number, number, number];
      const proc = await startPeergateAt(root, {
        listen: [
          { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerPort },
          { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: corePort },
        ],
        core: { targets: [`sip:127.0.0.3:${uasPort}`] },
        media: { anchoring: false },
        ops: { port: ops, admin_token: 'cpu-budget-admin-token-0123456789' },
        log: { level: 'error' },
        ...(values['no-overload'] ? { overload: { enabled: false } } : {}),
        peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
        routes: [{ from: 'peers', to: 'core' }],
      }, ops, values['cpu-prof'] ? join(values['cpu-prof'], String(i)) : undefined, args);
      const label = roots.length === 1 ? 'peergate start (policy on, no media)' : `peergate start @ ${[root, ...args].join(' ')}`;
      nodes.push({ label, proc, target: `127.0.0.1:${peerPort}` });
    }
  }
  try {
    const rows: Row[] = [];
    const uasPid = uas.child.pid!;
    const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    // Each checkout warmed up first (JIT, pools), so the first pair does not measure compilation.
    if (nodes.length > 1) for (const n of nodes) await measure(n.label, RATES[0]!, n.target, '127.0.0.2', { 'peergate': n.proc.child.pid! });
    // Rates interleaved across paths (and checkouts), so machine load drifts over all of them alike.
    for (const rate of RATES) {
      for (let pair = 0; pair < PAIRS; pair++) {
        if (PATHS.has('direct')) rows.push(await measure('sipp uac → uas direct', rate, `127.0.0.3:${uasPort}`, '127.0.0.2', { 'sipp uas': uasPid }));
        if (engine && app) {
          rows.push(await measure('engine + trivial drachtio-srf B2BUA', rate, `127.0.0.1:${sipPort}`, '127.0.0.2',
            { 'sipp uas': uasPid, 'drachtio-srf app': app.child.pid! }, 'engine'));
        }
        for (const n of nodes) rows.push(await measure(n.label, rate, n.target, '127.0.0.2', { 'sipp uas': uasPid, 'peergate': n.proc.child.pid! }));
      }
    }
    const loadAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`# ${SECONDS} s per step; CPU ms per call (user+system); ${CORES} cores; load average before ${loadBefore}, after ${loadAfter}; node ${process.version}`);
    console.log('\n| path | offered calls/s | calls ok/failed | wall s | CPU ms per call, by process | total | calls/s if CPU-bound on all cores |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const total = Object.values(r.perCall).reduce((a, b) => a + b, 0);
      const parts = Object.entries(r.perCall).map(([k, v]) => `${k} ${v.toFixed(3)}${k in r.kernelPerCall ? ` (kernel ${r.kernelPerCall[k]!.toFixed(3)})` : ''}`).join(', ');
      const keptUp = r.failed === 0 && r.ok === r.rate * SECONDS && (CONCURRENCY !== undefined || r.wallS <= SECONDS + 2);
      const rate = CONCURRENCY === undefined ? String(r.rate) : `closed loop, ${CONCURRENCY} at once: ${Math.round(r.ok / r.wallS)}/s`;
      console.log(`| ${r.path} | ${rate} | ${r.ok}/${r.failed} | ${r.wallS.toFixed(1)}${keptUp ? '' : CONCURRENCY === undefined ? ' (fell behind)' : ' (failures)'} | ${parts} | ${total.toFixed(3)} | ${Math.round((CORES * 1000) / total)} |`);
    }
    if (values.sweep && nodes.length > 0) {
      const rates = values.sweep.split(',').map(Number);
      const best = new Map<string, number[]>();
      for (let pair = 0; pair < PAIRS; pair++) {
        for (const n of nodes) best.set(n.label, [...(best.get(n.label) ?? []), await sweepRates(`${nodes.indexOf(n)}`, n.target, { rates, seconds: SECONDS })]);
      }
      console.log(`\nhighest rate with zero failures that kept up (sweep ${rates.join(', ')}; load average now ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`);
      for (const n of nodes) console.log(`| ${n.label} | ${best.get(n.label)!.join(', ')} |`);
    }
  } finally {
    // SIGTERM: peergate drains and exits normally, which is when node writes a --cpu-prof profile.
    for (const n of nodes) await n.proc.stop('SIGTERM', 15_000);
    await stopAll();
    await engine?.close();
  }
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
