// Soak: a sustained call load through `peergate start` (the policy of bench/b2bua.bench.ts),
// sampling RSS (and V8's heap used/committed/external) and every count during the run and after it, to show that nothing accumulates
// (issue #16): memory flat after warm-up, and zero calls, dialogs, transactions and session
// slots once RFC 3261 timers have expired. On demand only (not part of the test suite).
//
//   npx tsx bench/soak.bench.ts [--minutes 10] [--rate 250] [--media] [--redis] [--every 10] [--heap] [--v8="node/V8 flags for peergate's main process"]
//                               [--worker-v8="node/V8 flags for the B2BUA workers" (PEERGATE_WORKER_NODE_FLAGS)]
//                               [--env NAME=VALUE ...] [--split] [--spaces] [--workers auto|N]
// `--env`: extra environment for peergate (e.g. MALLOC_ARENA_MAX=2; repeatable, '' removes
// one peergate would set). `--split`: each sample also prints where each process's RSS is
// (bench/proc-maps.ts: rss: file/brk/arenas(count)/anon MiB), and the end its ranges.
// `--spaces`: each sample also prints each process's V8 heap committed/used MiB, new space and
// old space apart (bench/mem-signal-preload.mjs, read through SIGWINCH; no GC is forced).
// At the end: RSS per process (min–max from 50 s into the load to its end) and CPU ms per
// answered call per process over the load (utime + stime from /proc).
//   npx tsx bench/soak.bench.ts --compare A.heapsnapshot B.heapsnapshot
//
// `--heap`: peergate runs with --heapsnapshot-signal=SIGUSR2; V8 heap snapshots are taken at
// the start of the plateau (after `--warmup` seconds of load, default 30% of it), at its end
// (20 s before the load stops) and once idle (after the RFC 3261 timers), and the object counts
// by constructor are compared (what grows over the plateau; what is left when idle). A
// snapshot stops peergate for a few seconds (it is written on the main thread): SIPp may see
// retransmissions then.
//
// `--rate` should be half the highest zero-failure rate bench/b2bua.bench.ts finds on the
// machine (default 250: half of the 500/s the issue was reported at). Exit code 1 when any
// count is non-zero 45 s after the load.
import './require-build.js';
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { childPids, freePorts, procStatus, readSippStats, scratchDir, startProcess, startSipp, stopAll } from '../test/helpers/procs.js';
import { startPeergate, sumMetric } from '../test/helpers/peergate.js';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';
import { heapCensus, type HeapCensus } from './heap-census.js';
import { formatSplit, mapSplit, type MapSplit } from './proc-maps.js';

const { values, positionals } = parseArgs({ options: {
  minutes: { type: 'string', default: '10' }, rate: { type: 'string', default: '250' }, every: { type: 'string', default: '10' },
  media: { type: 'boolean', default: false }, redis: { type: 'boolean', default: false },
  env: { type: 'string', multiple: true, default: [] }, split: { type: 'boolean', default: false }, spaces: { type: 'boolean', default: false },
  workers: { type: 'string', default: 'auto' },
  heap: { type: 'boolean', default: false }, v8: { type: 'string' }, 'worker-v8': { type: 'string' }, capture: { type: 'string' }, warmup: { type: 'string' }, compare: { type: 'boolean', default: false },
}, allowPositionals: true });
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
const EVERY_S = Number(values.every);
const COUNTS = ['peergate_active_calls', 'peergate_engine_dialogs', 'peergate_engine_server_transactions', 'peergate_engine_client_transactions', 'peergate_limit_sessions_local', 'peergate_media_sessions'];
const SHORT: Record<string, string> = {
  peergate_active_calls: 'calls', peergate_engine_dialogs: 'dialogs', peergate_engine_server_transactions: 'stx',
  peergate_engine_client_transactions: 'ctx', peergate_limit_sessions_local: 'slots', peergate_media_sessions: 'media',
};

async function main(): Promise<number> {
  const [uasPort, peerPort, corePort, ops] = await freePorts(4) as [number, number, number, number];
  const signalDir = scratchDir('soak-memsignal-');
  const uas = startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-max_socket', '5000']);
  let redis: TestRedis | undefined;
  if (values.redis) redis = await startRedis();
  const pg = await startPeergate({
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerPort },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: corePort },
    ],
    core: { targets: [`sip:127.0.0.3:${uasPort}`] },
    media: values.media ? { anchoring: true, rtpengine: 'spawn', embedded: { port_min: 30000, port_max: 39999 } } : { anchoring: false },
    ...(redis ? { store: { redis: { url: redis.url, on_failure: 'fail_closed' } } } : {}),
    ops: { port: ops },
    log: { level: 'error' },
    workers: values.workers === 'auto' ? 'auto' : Number(values.workers),
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    routes: [{ from: 'peers', to: 'core' }],
  }, {
    env: {
      NODE_OPTIONS: [process.env.NODE_OPTIONS ?? '', values.heap ? '--heapsnapshot-signal=SIGUSR2' : '',
        values.spaces ? `--import ${join(import.meta.dirname, 'mem-signal-preload.mjs')}` : ''].join(' ').trim(),
      ...(values.spaces ? { MEMSIGNAL_DIR: signalDir } : {}),
      ...(values['worker-v8'] !== undefined ? { PEERGATE_WORKER_NODE_FLAGS: values['worker-v8'] } : {}),
      ...Object.fromEntries(values.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
    },
    nodeArgs: values.v8 ? values.v8.split(' ').filter(Boolean) : [],
  });
  // --capture DIR: every SIP packet to and from peergate's two listeners as a pcap (dumpcap on
  // lo), to read what happened to a call left behind.
  const capture = values.capture ? startProcess('dumpcap', ['-q', '-i', 'lo', '-f', `udp port ${peerPort} or udp port ${corePort}`,
    '-w', join(values.capture, 'soak.pcapng')]) : undefined;
  const snapshots: Record<string, HeapCensus> = {};
  const snapshot = async (label: string) => {
    const before = new Set(heapFiles(pg.dir));
    const t = Date.now();
    process.kill(pg.proc.pid, 'SIGUSR2');
    let file: string | undefined;
    // Bounded: a snapshot of a few hundred MiB takes seconds to write.
    for (let i = 0; i < 600 && !file; i++) { await new Promise((r) => setTimeout(r, 200)); file = heapFiles(pg.dir).find((f) => !before.has(f)); }
    if (!file) { console.log(`# heap ${label}: no snapshot written`); return; }
    // The snapshot is written on peergate's main thread: /metrics answers once it is complete
    // (a busy process may reset the first connection).
    for (let i = 0; i < 10 && !(await pg.metrics().then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 1000));
    let size = -1;
    for (let i = 0; i < 50 && statSync(file).size !== size; i++) { size = statSync(file).size; await new Promise((r) => setTimeout(r, 200)); }
    console.log(`# heap ${label}: ${file} (${(size / 1048576).toFixed(0)} MiB, written in ${((Date.now() - t) / 1000).toFixed(1)} s)`);
    snapshots[label] = await heapCensus(file);
    console.log(`#   ${snapshots[label]!.nodes} objects, ${(snapshots[label]!.bytes / 1048576).toFixed(1)} MiB self size`);
  };
  const t0 = Date.now();
  const rows: string[] = [];
  const plateau: number[][] = [];
  const splits: (MapSplit | undefined)[][] = [];
  const sample = async (phase: string) => {
    const text = await pg.metrics().catch(() => '');
    const rss = sumMetric(text, 'process_resident_memory_bytes') / 1048576;
    // RSS against what V8 holds: live heap, heap committed, and memory outside it (Buffers).
    const heap = ['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes'].map((n) => (sumMetric(text, n) / 1048576).toFixed(0)).join('/');
    const counts = COUNTS.map((n) => `${SHORT[n]}=${sumMetric(text, n)}`).join(' ');
    const answered = sumMetric(text, 'peergate_calls_total');
    const perProcess = rssByProcess(pg.proc.pid);
    const pids = [pg.proc.pid, ...childPids(pg.proc.pid)];
    const split = values.split ? pids.map(mapSplit) : [];
    const spaces = values.spaces ? await v8Spaces(pids, signalDir) : '';
    if (phase === 'load' && Date.now() - t0 >= 50_000) { plateau.push(perProcess.split('/').map(Number)); splits.push(split); }
    const row = `${String(Math.round((Date.now() - t0) / 1000)).padStart(5)} s  ${phase.padEnd(6)} rss=${rss.toFixed(0)} MiB (${perProcess}) heap=${heap}  ended=${answered}  ${counts}` +
      (values.split ? `\n         split ${split.map(formatSplit).join('  ')}` : '') + (values.spaces ? `\n         v8 ${spaces}` : '');
    rows.push(row);
    console.log(row);
    return text;
  };
  let sampling = true;
  const sampler = (async () => { while (sampling) { await new Promise((r) => setTimeout(r, EVERY_S * 1000)); if (sampling) await sample('load'); } })();
  console.log(`# soak: ${RATE} calls/s for ${MINUTES} min, media ${values.media ? 'anchored' : 'not anchored'}, store ${redis ? 'redis' : 'memory'}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`# processes, in the order of the per-process figures: ${[pg.proc.pid, ...childPids(pg.proc.pid)].map((p, i) => (i === 0 ? 'primary' : commOf(p))).join(', ')}`);
  const total = Math.round(RATE * MINUTES * 60);
  const loadS = MINUTES * 60;
  const warmupS = values.warmup ? Number(values.warmup) : Math.round(loadS * 0.3);
  const heapRuns: Promise<void>[] = [];
  const heapTimers = values.heap ? [
    setTimeout(() => heapRuns.push(snapshot('start')), warmupS * 1000),
    setTimeout(() => heapRuns.push(snapshot('end')), Math.max(warmupS + 30, loadS - 20) * 1000),
  ] : [];
  // The load lasts `--minutes` even when the machine cannot keep up: then SIGUSR1 makes SIPp
  // place no new call and end the ones it has (calls never placed count as neither ok nor
  // failed); its global timeout, 2 minutes later, is the bound.
  const sippDir = scratchDir('soak-sipp-');
  const statFile = `${sippDir}/stat.csv`;
  const scenario = join(sippDir, 'uac-bye-txn.xml');
  writeFileSync(scenario, byeMatchedUac());
  const uac = startProcess('sipp', ['-sf', scenario, `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-r', String(RATE), '-m', String(total), '-l', String(RATE * 4), '-d', '0', '-max_socket', '5000',
    '-nostdin', '-timeout', `${loadS + 120}s`, '-timeout_error', '-trace_stat', '-stf', statFile, '-fd', '1'], { cwd: sippDir });
  const cpuStart = cpuByProcess(pg.proc.pid);
  const stopLoad = setTimeout(() => { if (uac.child.exitCode === null) uac.child.kill('SIGUSR1'); }, loadS * 1000);
  await uac.exited;
  clearTimeout(stopLoad);
  const cpuEnd = cpuByProcess(pg.proc.pid);
  const r = readSippStats(statFile);
  const answeredCalls = Math.max(1, r.successful);
  console.log(`# CPU ms per answered call over the load, per process (primary first): ${cpuEnd.map((c, i) => ((c - (cpuStart[i] ?? 0)) / answeredCalls).toFixed(3)).join(' / ')}` +
    ` (total ${(cpuEnd.reduce((a, c, i) => a + c - (cpuStart[i] ?? 0), 0) / answeredCalls).toFixed(3)})`);
  if (plateau.length > 0) {
    const cols = Math.max(...plateau.map((p) => p.length));
    const range = (xs: number[]) => `${Math.min(...xs)}–${Math.max(...xs)}`;
    const per = Array.from({ length: cols }, (_, i) => range(plateau.map((p) => p[i] ?? NaN).filter(Number.isFinite)));
    console.log(`# RSS MiB from 50 s to the end of the load: all ${range(plateau.map((p) => p.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0)))}, per process ${per.join(' / ')}`);
    if (values.split) {
      const mib = (kb: number) => Math.round(kb / 1024);
      const parts = ['pss', 'file', 'brk', 'arenas', 'anon'] as const;
      const perSplit = Array.from({ length: cols }, (_, i) => parts.map((k) =>
        `${k} ${range(splits.map((p) => p[i]).filter((x): x is MapSplit => x !== undefined).map((x) => mib(x[k])))}`).join(', '));
      console.log(`# RSS split MiB from 50 s to the end of the load, per process: ${perSplit.join(' | ')}`);
      // The processes map the same node binary and libraries: what the node occupies is each
      // process's own memory plus those file pages once (PSS also divides them among every other
      // node process on the machine, so it undercounts on a shared one).
      const own = splits.map((p) => p.reduce((a, x) => a + (x ? x.rss - x.file : 0), 0) + Math.max(...p.map((x) => x?.file ?? 0)));
      console.log(`# node footprint MiB (RSS less file pages, plus the largest process's file pages once), from 50 s to the end of the load: ${range(own.map(mib))}`);
      const pssAll = splits.map((p) => p.reduce((a, x) => a + (x?.pss ?? 0), 0));
      console.log(`# PSS MiB, all processes, from 50 s to the end of the load: ${range(pssAll.map(mib))}`);
    }
  }
  sampling = false;
  heapTimers.forEach(clearTimeout);
  await sampler;
  await Promise.all(heapRuns);
  console.log(`# sipp: ${r.successful} ok, ${r.failed} failed of ${total}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  // Timer M/L (32 s) and the 2xx-ACK wait (32 s) are the longest RFC 3261 timers involved; a
  // call ended by peergate after the 2xx-ACK wait sends BYE, whose Timer F (32 s) may run to its
  // end when SIPp stopped at its timeout. Up to 90 s, done once every count is zero (after 45 s).
  let text = '';
  for (let i = 0; i < 18; i++) {
    await new Promise((res) => setTimeout(res, 5000));
    text = await sample('after');
    if (i >= 8 && COUNTS.every((n) => sumMetric(text, n) === 0)) break;
  }
  const left = COUNTS.filter((n) => sumMetric(text, n) !== 0);
  const results = text.split('\n').filter((l) => l.startsWith('peergate_calls_total{')).map((l) => l.replace(/^peergate_calls_total/, '')).join('\n  ');
  console.log(`# calls_total:\n  ${results}`);
  console.log(left.length === 0 ? '# every count back to zero' : `# NOT back to zero: ${left.join(', ')}`);
  if (left.length > 0) console.log(`# calls still up (/admin/calls): ${await pg.admin('/admin/calls').then((r) => r.text(), (e: unknown) => String(e))}`);
  await capture?.stop();
  if (values.heap) {
    await snapshot('idle');
    if (snapshots.start && snapshots.end) printGrowth('plateau start → end', snapshots.start, snapshots.end);
    if (snapshots.start && snapshots.idle) printGrowth('plateau start → idle after the load', snapshots.start, snapshots.idle);
  }
  await pg.stop();
  await uas.stop();
  await redis?.stop();
  await stopAll();
  return left.length === 0 && r.failed === 0 ? 0 : 1;
}

/**
 * SIPp's built-in uac scenario with the BYE's 200 matched to the BYE transaction. The built-in
 * one takes any 200 for it, so a late retransmission of the INVITE's 200 counted as the BYE
 * answered: a BYE lost on the way (a full receive buffer under overload) was never
 * retransmitted, and SIPp counted a call "successful" that peergate never saw end.
 */
/** Each process's V8 heap as "committed/used (new committed/used, old committed/used)" MiB, through bench/mem-signal-preload.mjs. */
async function v8Spaces(pids: number[], dir: string): Promise<string> {
  const lines = (pid: number) => { try { return readFileSync(`${dir}/${pid}.jsonl`, 'utf8').trim().split('\n').filter(Boolean); } catch { return []; } };
  const before = pids.map((p) => lines(p).length);
  for (const p of pids) { try { process.kill(p, 'SIGWINCH'); } catch { /* gone (rtpengine is not node: ignores it) */ } }
  for (let i = 0; i < 20 && pids.some((p, k) => lines(p).length < before[k]! + 2 && readCommIsNode(p)); i++) await new Promise((r) => setTimeout(r, 50));
  const m = (b: number) => (b / 1048576).toFixed(0);
  return pids.map((p, k) => {
    const l = lines(p);
    if (l.length < before[k]! + 2) return '-';
    const r = JSON.parse(l[l.length - 2]!) as { mem: NodeJS.MemoryUsage; spaces: [string, number, number][] };
    const sp = (n: string) => r.spaces.find((x) => x[0] === n) ?? [n, 0, 0];
    return `${m(r.mem.heapTotal)}/${m(r.mem.heapUsed)} (new ${m(sp('new_space')[1])}/${m(sp('new_space')[2])}, old ${m(sp('old_space')[1])}/${m(sp('old_space')[2])})`;
  }).join('  ');
}
/** A child's name for the figures: a node child is a B2BUA worker; otherwise its comm (rtpengine). */
const commOf = (pid: number): string => {
  let comm: string;
  try { comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return '?'; }
  return comm === 'node' ? 'worker' : comm;
};
const readCommIsNode = (pid: number) => commOf(pid) === 'worker';

/** RSS in MiB of peergate's process, then each of its children (B2BUA workers, rtpengine), e.g. "120/310/305". */
function rssByProcess(pid: number): string {
  const rssOf = (p: number) => {
    try {
      const kb = procStatus(p, 'VmRSS');
      return Number.isNaN(kb) ? '?' : (kb / 1024).toFixed(0);
    } catch { return '-'; }
  };
  return [pid, ...childPids(pid)].map(rssOf).join('/');
}

/** CPU ms (utime + stime) of peergate's process, then each of its children, from /proc. */
function cpuByProcess(pid: number): number[] {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  return [pid, ...childPids(pid)].map((p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) * tick;
    } catch { return 0; }
  });
}

function byeMatchedUac(): string {
  // `sipp -sd` prints the scenario and exits 99.
  const builtIn = spawnSync('sipp', ['-sd', 'uac'], { encoding: 'latin1' }).stdout ?? '';
  const out = builtIn
    .replace(/<send retrans="500">(\s*<!\[CDATA\[\s*BYE )/, '<send retrans="500" start_txn="bye">$1')
    .replace('<recv response="200" crlf="true">', '<recv response="200" crlf="true" response_txn="bye">');
  if ((out.match(/_txn="bye"/g) ?? []).length !== 2) throw new Error('sipp -sd uac: unexpected scenario text, BYE transaction not marked');
  return out;
}

const heapFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot')).map((f) => join(dir, f));

function printGrowth(title: string, a: HeapCensus, b: HeapCensus): void {
  console.log(`# heap ${title}: ${a.nodes} → ${b.nodes} objects (${b.nodes - a.nodes >= 0 ? '+' : ''}${b.nodes - a.nodes}), ` +
    `${(a.bytes / 1048576).toFixed(1)} → ${(b.bytes / 1048576).toFixed(1)} MiB`);
  const rows = [...new Set([...a.by.keys(), ...b.by.keys()])].map((k) => {
    const x = a.by.get(k) ?? { count: 0, bytes: 0 };
    const y = b.by.get(k) ?? { count: 0, bytes: 0 };
    return { k, from: x.count, to: y.count, d: y.count - x.count, db: y.bytes - x.bytes };
  });
  const show = (list: typeof rows) => list.forEach((r) => console.log(`  ${String(r.d >= 0 ? `+${r.d}` : r.d).padStart(9)}  ${String(r.from).padStart(9)} → ${String(r.to).padEnd(9)} ${(r.db / 1024).toFixed(0).padStart(8)} KiB  ${r.k.slice(0, 90).replace(/\s+/g, ' ')}`));
  console.log('  grew most (count):');
  show(rows.filter((r) => r.d > 0).sort((p, q) => q.d - p.d).slice(0, 25));
  console.log('  grew most (bytes):');
  show(rows.filter((r) => r.db > 0).sort((p, q) => q.db - p.db).slice(0, 10));
}

async function compare(a: string, b: string): Promise<number> {
  printGrowth(`${a} → ${b}`, await heapCensus(a), await heapCensus(b));
  return 0;
}

// A failed start (peergate not ready, a bad flag) must not leave the SIPp it started running.
process.exitCode = values.compare ? await compare(positionals[0]!, positionals[1]!) : await main().catch(async (e: unknown) => { await stopAll(); throw e; });
