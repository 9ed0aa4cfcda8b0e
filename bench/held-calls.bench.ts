// Memory per held call, whole process (issue #18 item 5): `peergate start` (engine, drachtio-srf
// app and B2BUA in one process, workers: 1) with N established calls held, SIPp uac → peergate
// → SIPp uas, no media. Reports per held call (both legs): RSS, V8 heap used and the heap
// snapshot's live objects by constructor (engine Dialog, drachtio-srf Dialog/Request/Response,
// B2BUA and session records, timers, strings...). On demand only (not part of the test suite).
//
//   npx tsx bench/held-calls.bench.ts [--calls 3000] [--rate 150] [--top 40] [--keep] [--workers 1]
//                                     [--settle 60] [--env NAME=VALUE ...] [--no-snapshots]
//
// --settle S: after sample B's RSS is read, the held calls stay up S more seconds with no other
// traffic, and each process's RSS is printed every 10 s split by bench/proc-maps.ts (file pages,
// glibc brk and thread arenas, other anonymous = V8's heap): does V8's memory reducer give the
// set-up's headroom back? Then each process runs two full GCs (bench/mem-signal-preload.mjs,
// node --expose-gc in the bench only) and prints V8's committed and used heap, before and after,
// and its RSS again. --env: extra environment for peergate (e.g. MALLOC_ARENA_MAX=2).
// --no-snapshots: RSS only, no heap snapshot (a snapshot mallocs hundreds of MiB of native
// memory that glibc's main arena keeps: it inflates RSS, mostly the brk heap). Sample A is then
// taken after the settle (the idle node as V8's memory reducer and two gc() leave it); B both at
// once and after its settle.
// With policy memory.reduce_when_quiet (the default) the node reduces its memory by itself once
// the burst is over (src/app/memory-reducer.ts): the bench prints how many reductions ran and
// the longest pause, after A and after B.
//
// --workers N (policy `workers`): with N > 1 the B2BUA runs in N worker processes; every
// process (main and each worker) is sampled the same way (RSS, a heap snapshot each) and
// reported per process and in total. V8 heap used is read from /metrics (all processes).
//
// Phases: a warm-up of 300 unheld calls (JIT, pools), then, once every RFC 3261 timer has run
// out, sample A (RSS; then a heap snapshot, which runs a full GC, and V8's heap used right after
// it); then `--calls` calls placed at `--rate` and held (SIPp -d); once all are up and every
// transaction has ended (Timer L/M: 32 s), sample B the same way. Per call = (B − A) / calls.
// RSS is read after snapshot A and before snapshot B (a snapshot allocates native memory of its
// own, which the C allocator keeps).
// peergate runs from dist/ when `npm run build` made a current one, else from the sources
// through tsx (bin/peergate.js), which is printed: tsx compiles with keepNames, which gives
// every function created at run time a `name` property (a 256 B dictionary per closure), so
// closure-heavy objects cost more under tsx than in the shipped build.
import './require-build.js';
import { parseArgs } from 'node:util';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { childPids, freePorts, procStatus, readSippStats, scratchDir, startProcess, startSipp, stopAll } from '../test/helpers/procs.js';
import { startPeergate, sumMetric, twoSidedPolicy, type RunningPeergate } from '../test/helpers/peergate.js';
import { heapCensus, perItemGrowth, type HeapCensus } from './heap-census.js';
import { formatSplit, mapSplit } from './proc-maps.js';

const { values } = parseArgs({ options: {
  calls: { type: 'string', default: '3000' }, rate: { type: 'string', default: '150' }, top: { type: 'string', default: '40' },
  keep: { type: 'boolean', default: false }, workers: { type: 'string', default: '1' },
  settle: { type: 'string', default: '0' }, env: { type: 'string', multiple: true, default: [] },
  'no-snapshots': { type: 'boolean', default: false },
} });
const NO_SNAPSHOTS = values['no-snapshots'];
const SETTLE_S = Number(values.settle);
const WORKERS = Number(values.workers);
const CALLS = Number(values.calls);
const RATE = Number(values.rate);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (b: number) => (b / 1048576).toFixed(1);

const ROOT = join(import.meta.dirname, '..');
function runsFromDist(): boolean {
  const built = join(ROOT, 'dist', 'cli', 'main.js');
  if (!existsSync(built)) return false;
  const at = statSync(built).mtimeMs;
  return !readdirSync(join(ROOT, 'src'), { recursive: true }).some((f) => String(f).endsWith('.ts') && statSync(join(ROOT, 'src', String(f))).mtimeMs > at);
}

const heapFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')).map((f) => join(dir, f));
const rssOf = (pid: number) => procStatus(pid, 'VmRSS') * 1024;

interface Sample { rssSettled?: number; procsSettled?: number[]; rss: number; heapUsed: number; heapTotal: number; external: number; census: HeapCensus; counts: string; procs: ProcSample[] }
/** One process of peergate (main or a worker): its RSS and live objects. */
interface ProcSample { label: string; rss: number; bytes: number }

/** peergate's processes: the main one, then its B2BUA workers (node children) by pid. */
function processes(pg: RunningPeergate): { label: string; pid: number }[] {
  if (WORKERS === 1) return [{ label: 'main', pid: pg.proc.pid }];
  const workers = childPids(pg.proc.pid).filter((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'node'; } catch { return false; } }).sort((a, b) => a - b);
  return [{ label: 'main', pid: pg.proc.pid }, ...workers.map((pid, i) => ({ label: `worker ${i + 1}`, pid }))];
}
const pidOfSnapshot = (file: string) => Number(file.split('.').at(-4));

/** `rssFirst`: RSS read before the snapshot (B: the snapshot's own native memory not counted);
 *  else after it (A: so that B − A does not count the native memory snapshot A left behind). */
async function sample(pg: RunningPeergate, label: string, rssFirst: boolean, beforeSnapshot?: () => Promise<void>): Promise<Sample> {
  const procs = processes(pg);
  if (procs.length !== WORKERS + (WORKERS > 1 ? 1 : 0)) throw new Error(`${label}: ${procs.length} peergate processes, expected ${WORKERS > 1 ? WORKERS + 1 : 1}`);
  let rss = procs.map((p) => rssOf(p.pid));
  await beforeSnapshot?.();
  if (NO_SNAPSHOTS) return rssSample(pg, label, procs, rss, procs.map((p) => rssOf(p.pid)));
  const before = new Set(heapFiles(pg.dir));
  const t = Date.now();
  for (const p of procs) process.kill(p.pid, 'SIGUSR2');
  let files: string[] = [];
  for (let i = 0; i < 900 && files.length < procs.length; i++) { await sleep(200); files = heapFiles(pg.dir).filter((f) => !before.has(f)); }
  if (files.length < procs.length) throw new Error(`${label}: ${files.length} of ${procs.length} heap snapshots written`);
  // Written on peergate's main thread: /metrics answers once it is complete.
  let text = '';
  for (let i = 0; i < 120 && !text; i++) { text = await pg.metrics().catch(() => ''); if (!text) await sleep(1000); }
  let size = -1;
  const total = () => files.reduce((n, f) => n + statSync(f).size, 0);
  for (let i = 0; i < 100 && total() !== size; i++) { size = total(); await sleep(200); }
  if (!rssFirst) { await sleep(2000); rss = procs.map((p) => rssOf(p.pid)); }
  const censuses = new Map<number, HeapCensus>();
  for (const f of files) censuses.set(pidOfSnapshot(f), await heapCensus(f));
  const census = mergeCensus([...censuses.values()]);
  const counts = ['peergate_active_calls', 'peergate_engine_dialogs', 'peergate_engine_server_transactions', 'peergate_engine_client_transactions']
    .map((n) => `${n.replace('peergate_', '')}=${sumMetric(text, n)}`).join(' ');
  const s = {
    rss: rss.reduce((x, y) => x + y, 0), heapUsed: sumMetric(text, 'nodejs_heap_size_used_bytes'), heapTotal: sumMetric(text, 'nodejs_heap_size_total_bytes'),
    external: sumMetric(text, 'nodejs_external_memory_bytes'), census, counts,
    procs: procs.map((p, i) => ({ label: p.label, rss: rss[i]!, bytes: censuses.get(p.pid)?.bytes ?? 0 })),
  };
  console.log(`# ${label}: rss ${MiB(s.rss)} MiB, heap used ${MiB(s.heapUsed)} / committed ${MiB(s.heapTotal)} MiB, external ${MiB(s.external)} MiB; ` +
    `snapshot ${census.nodes} objects ${MiB(census.bytes)} MiB (${(size / 1048576).toFixed(0)} MiB file, ${((Date.now() - t) / 1000).toFixed(1)} s); ${counts}`);
  if (procs.length > 1) for (const p of s.procs) console.log(`#   ${p.label}: rss ${MiB(p.rss)} MiB, live objects ${MiB(p.bytes)} MiB`);
  return s;
}

/** --no-snapshots: RSS (at once and after the settle), heap figures from /metrics, no census. */
async function rssSample(pg: RunningPeergate, label: string, procs: { label: string; pid: number }[], rss: number[], settled: number[]): Promise<Sample> {
  const text = await pg.metrics().catch(() => '');
  const counts = ['peergate_active_calls', 'peergate_engine_dialogs', 'peergate_engine_server_transactions', 'peergate_engine_client_transactions']
    .map((n) => `${n.replace('peergate_', '')}=${sumMetric(text, n)}`).join(' ');
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  const s: Sample = {
    rss: sum(rss), rssSettled: sum(settled), procsSettled: settled, heapUsed: sumMetric(text, 'nodejs_heap_size_used_bytes'), heapTotal: sumMetric(text, 'nodejs_heap_size_total_bytes'),
    external: sumMetric(text, 'nodejs_external_memory_bytes'), census: { nodes: 0, bytes: 0, by: new Map() }, counts,
    procs: procs.map((p, i) => ({ label: p.label, rss: rss[i]!, bytes: 0 })),
  };
  console.log(`# ${label}: rss ${MiB(s.rss)} MiB at once, ${MiB(s.rssSettled!)} MiB after the settle (${settled.map(MiB).join(' / ')}); heap used ${MiB(s.heapUsed)} / committed ${MiB(s.heapTotal)} MiB (after the settle's gc()); ${counts}`);
  // Policy memory.reduce_when_quiet (src/app/memory-reducer.ts): did the node reduce after the burst, how long did it pause?
  if (text.includes('peergate_memory_reductions_total')) {
    console.log(`#   memory reductions so far: ${sumMetric(text, 'peergate_memory_reductions_total')}, last: longest pause ${(sumMetric(text, 'peergate_memory_reduction_pause_seconds') * 1000).toFixed(1)} ms, ` +
      `RSS given back ${MiB(sumMetric(text, 'peergate_memory_reduction_released_bytes'))} MiB (all processes)`);
  }
  return s;
}

/**
 * --settle: RSS split per process every 10 s for SETTLE_S s, then two full GCs in each process
 * (SIGWINCH to bench/mem-signal-preload.mjs) and V8's heap before/after them, and RSS again.
 */
async function settle(pg: RunningPeergate, dir: string): Promise<void> {
  const procs = processes(pg);
  const show = (when: string) => console.log(`#   settle ${when}: ${procs.map((p) => `${p.label} ${formatSplit(mapSplit(p.pid))}`).join('  ')}  (MiB rss (pss): file/brk/arenas(n)/anon)`);
  show('0 s');
  for (let s = 10; s <= SETTLE_S; s += 10) { await sleep(10_000); show(`${s} s`); }
  const read = (pid: number) => { try { return readFileSync(`${dir}/${pid}.jsonl`, 'utf8').trim().split('\n'); } catch { return []; } };
  const had = procs.map((p) => read(p.pid).length);
  for (const p of procs) process.kill(p.pid, 'SIGWINCH');
  for (let i = 0; i < 100 && procs.some((p, k) => read(p.pid).length < had[k]! + 2); i++) await sleep(100);
  for (const p of procs) {
    const [asIs, after] = read(p.pid).slice(-2).map((l) => JSON.parse(l) as { mem: NodeJS.MemoryUsage; spaces: [string, number, number][] });
    if (!asIs || !after) { console.log(`#   ${p.label}: no GC record`); continue; }
    const old = (r: typeof asIs) => r.spaces.find((x) => x[0] === 'old_space') ?? ['old_space', 0, 0];
    console.log(`#   ${p.label} V8 heap committed/used MiB: as is ${MiB(asIs.mem.heapTotal)}/${MiB(asIs.mem.heapUsed)} (old space ${MiB(old(asIs)[1])}/${MiB(old(asIs)[2])}), ` +
      `after 2 gc() ${MiB(after.mem.heapTotal)}/${MiB(after.mem.heapUsed)} (old space ${MiB(old(after)[1])}/${MiB(old(after)[2])}); external ${MiB(after.mem.external)}`);
  }
  await sleep(2000);
  show('after gc() + 2 s');
}

/** Several processes' censuses as one (sums by type:constructor). */
function mergeCensus(cs: HeapCensus[]): HeapCensus {
  const by = new Map<string, { count: number; bytes: number }>();
  for (const c of cs) for (const [k, e] of c.by) { const m = by.get(k) ?? { count: 0, bytes: 0 }; m.count += e.count; m.bytes += e.bytes; by.set(k, m); }
  return { nodes: cs.reduce((n, c) => n + c.nodes, 0), bytes: cs.reduce((n, c) => n + c.bytes, 0), by };
}

/** Poll until `check(metrics text)` holds (bounded by `timeoutS`). */
async function until(pg: RunningPeergate, what: string, timeoutS: number, check: (text: string) => boolean): Promise<void> {
  let text = '';
  for (let i = 0; i < timeoutS; i++) {
    text = await pg.metrics().catch(() => '');
    if (text && check(text)) return;
    await sleep(1000);
  }
  const counts = text.split('\n').filter((l) => /^peergate_(active_calls|engine_|calls_total|shed|limit)/.test(l)).join('\n  ');
  throw new Error(`timed out waiting for ${what}:\n  ${counts}`);
}
const noTransactions = (t: string) => sumMetric(t, 'peergate_engine_server_transactions') === 0 && sumMetric(t, 'peergate_engine_client_transactions') === 0;

async function main(): Promise<number> {
  const [uasPort, peerPort, corePort, ops] = await freePorts(4) as [number, number, number, number];
  const signalDir = scratchDir('held-memsignal-');
  console.log(`# held calls: ${CALLS} at ${RATE}/s, workers: ${WORKERS}, peergate from ${runsFromDist() ? 'dist/ (compiled by tsc)' : 'src/ through tsx'}, node ${process.version}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const uas = startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort: ops, coreTarget: `sip:127.0.0.3:${uasPort}`, logLevel: 'error' }, {
    media: { anchoring: false }, workers: WORKERS,
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
  }), { env: {
    NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', '--heapsnapshot-signal=SIGUSR2',
      ...(SETTLE_S > 0 ? ['--expose-gc', `--import ${join(import.meta.dirname, 'mem-signal-preload.mjs')}`] : [])].join(' ').trim(),
    ...(SETTLE_S > 0 ? { MEMSIGNAL_DIR: signalDir } : {}),
    ...Object.fromEntries(values.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
  } });
  const uac = (n: number, rate: number, holdMs: number, dir: string) => startProcess('sipp', ['-sn', 'uac', `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0',
    '-t', 'u1', '-s', '+15551230000', '-r', String(rate), '-m', String(n), '-l', String(n), '-d', String(holdMs), '-max_socket', '5000',
    '-nostdin', '-timeout', `${Math.ceil(holdMs / 1000) + 600}s`, '-timeout_error', '-trace_stat', '-stf', `${dir}/stat.csv`, '-fd', '1'], { cwd: dir });

  // Warm-up: unheld calls, then every transaction timer runs out.
  const warmDir = scratchDir('held-warm-');
  await uac(300, 100, 0, warmDir).exited;
  const warm = readSippStats(`${warmDir}/stat.csv`);
  console.log(`# warm-up: ${warm.successful} ok, ${warm.failed} failed`);
  await until(pg, 'the warm-up transactions to end', 120, (t) => noTransactions(t) && sumMetric(t, 'peergate_active_calls') === 0);
  const a = await sample(pg, 'A idle', false, NO_SNAPSHOTS && SETTLE_S > 0 ? () => settle(pg, signalDir) : undefined);
  if (NO_SNAPSHOTS && a.rssSettled !== undefined) { a.rss = a.rssSettled; a.procs.forEach((p, i) => { p.rss = a.procsSettled![i]!; }); }

  // Held calls: up for the whole measurement (placing them takes CALLS/RATE s, their
  // transactions 32 s more, the snapshot up to a few minutes on a busy machine).
  const holdMs = Math.round((CALLS / RATE + 600) * 1000);
  const dir = scratchDir('held-');
  const calls = uac(CALLS, RATE, holdMs, dir);
  // On a busy machine the overload gate sheds some (event-loop lag): the calls held are
  // those up once SIPp has placed every call and the count stops changing.
  await sleep((CALLS / RATE) * 1000);
  let held = -1;
  await until(pg, 'the held calls to settle', 120, (t) => {
    const now = sumMetric(t, 'peergate_active_calls');
    const stable = now === held;
    held = now;
    return stable && now >= CALLS || (stable && now > 0 && sumMetric(t, 'peergate_engine_client_transactions') === 0);
  });
  await until(pg, 'every transaction of the held calls to end', 120, noTransactions);
  const b = await sample(pg, `B ${held} held`, true, SETTLE_S > 0 ? () => settle(pg, signalDir) : undefined);
  const n = sumMetric(b.counts.replace(/ /g, '\n').replace(/=/g, ' '), 'active_calls');
  const per = (x: number, y: number) => ((y - x) / n).toFixed(0);
  console.log(`# per held call (${n} held of ${CALLS} placed; both legs, ${WORKERS > 1 ? `${WORKERS + 1} processes` : 'one process'}): RSS ${per(a.rss, b.rss)} B, V8 heap used ${per(a.heapUsed, b.heapUsed)} B, ` +
    `committed ${per(a.heapTotal, b.heapTotal)} B, external ${per(a.external, b.external)} B, live objects (snapshot) ${per(a.census.bytes, b.census.bytes)} B`);
  if (b.procs.length > 1) {
    for (const [i, p] of b.procs.entries()) console.log(`#   ${p.label}: RSS ${per(a.procs[i]!.rss, p.rss)} B, live objects ${per(a.procs[i]!.bytes, p.bytes)} B per held call`);
  }
  if (b.rssSettled !== undefined) {
    console.log(`# per held call after the settle and gc(): RSS ${per(a.rss, b.rssSettled)} B (${b.procs.map((p, i) => `${p.label} ${per(a.procs[i]!.rss, b.procsSettled![i]!)}`).join(', ')})`);
  }
  for (const line of perItemGrowth(a.census, b.census, n, Number(values.top))) console.log(line);
  calls.child.kill('SIGKILL');
  await pg.stop();
  await uas.stop();
  await stopAll();
  const r = readSippStats(`${dir}/stat.csv`);
  console.log(`# sipp (killed after the measurement): ${r.successful} ok, ${r.failed} failed; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (!values.keep) for (const f of heapFiles(pg.dir)) unlinkSync(f);
  else console.log(`# snapshots kept: ${heapFiles(pg.dir).join(' ')}`);
  return 0;
}

process.exitCode = await main().catch(async (err: unknown) => { console.error(err); await stopAll(); return 1; });
