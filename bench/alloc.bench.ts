// What each process of `peergate start` ALLOCATES per call (garbage included), by area and by
// function: the bytes the GC has to deal with, whose collection is ≈ 19 % of the primary's CPU and
// ≈ 23 % of each worker's with V8's helper threads (BENCHMARKS.md, "The whole machine under perf").
// V8's sampling heap profiler, told to keep objects the GC already collected, runs in every
// process (bench/alloc-preload.mjs) over a window of SIPp calls; bytes per call are the sampled
// bytes over the calls answered in the window. Sampling is statistical (one sample per
// `--interval` bytes on average): quote the large entries, not the small ones.
//
//   npm run build && nice -n 10 npx tsx bench/alloc.bench.ts [--rate 500] [--seconds 20] [--top 20] [--root DIR]
//
// --root: another checkout (built, with node_modules) to measure instead of this one, so a change
// is compared with its base in two runs one after the other.
import { requireCurrentBuild } from './require-build.js';
import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { areaOf } from './areas.js';
import { childPids, freePorts, runSipp, scratchDir, startUas, stopAll, waitFor } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: {
  rate: { type: 'string', default: '500' }, seconds: { type: 'string', default: '20' }, top: { type: 'string', default: '20' },
  interval: { type: 'string', default: '16384' }, root: { type: 'string' },
} });
if (values.root) requireCurrentBuild(values.root);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const TOP = Number(values.top);
const PRELOAD = join(import.meta.dirname, 'alloc-preload.mjs');

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }

/** Bytes by area (the innermost frame that names one, as in profile-areas.ts) and by function. */
function summarise(head: HeapNode): { total: number; byArea: Map<string, number>; byFn: Map<string, number> } {
  const byArea = new Map<string, number>();
  const byFn = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, area: string): void => {
    const f = n.callFrame;
    const here = areaOf(f.url, f.functionName) ?? area;
    if (n.selfSize > 0) {
      total += n.selfSize;
      byArea.set(here, (byArea.get(here) ?? 0) + n.selfSize);
      const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${f.lineNumber + 1}` : '(native)';
      const key = `${f.functionName || '(anonymous)'} ${where}`;
      byFn.set(key, (byFn.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, here);
  };
  walk(head, 'node internals');
  return { total, byArea, byFn };
}

function isNode(pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node'; } catch { return false; }
}

async function main(): Promise<void> {
  const [peerPort, corePort, opsPort, uasPort] = await freePorts(4) as [number, number, number, number];
  const dir = scratchDir('alloc-');
  const out = join(dir, 'profiles');
  mkdirSync(out);
  startUas('127.0.0.3', uasPort, { extra: ['-max_socket', '5000'], dir: scratchDir('alloc-uas-') });
  const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:127.0.0.3:${uasPort}`, logLevel: 'error' }, {
    media: { anchoring: false },
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
  }), {
    env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${PRELOAD}`.trim(), ALLOC_PROFILE_DIR: out, ALLOC_SAMPLING_INTERVAL: values.interval },
    ...(values.root ? { bin: join(resolve(values.root), 'bin', 'peergate.js') } : {}),
  });
  try {
    const uac = (calls: number, tag: string) => runSipp(['-sn', 'uac', `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1',
      '-s', '+15551230000', '-r', String(RATE), '-m', String(calls), '-l', String(calls)], { dir: scratchDir(`alloc-${tag}-`), timeoutS: 30 + calls / RATE * 3 });
    await uac(RATE * 3, 'warm'); // JIT, pools
    const pids = [pg.proc.child.pid!, ...childPids(pg.proc.child.pid!).filter(isNode)];
    for (const p of pids) process.kill(p, 'SIGURG');
    await new Promise((r) => setTimeout(r, 300));
    const r = await uac(RATE * SECONDS, 'load');
    // The calls' last transactions end within 64*T1 of the last BYE: their allocations are
    // counted; what the window misses is timers' own work on them, a small part.
    for (const p of pids) process.kill(p, 'SIGURG');
    await waitFor(() => readdirSync(out).length === pids.length, 30_000, 100, 'every allocation profile written');
    await new Promise((res) => setTimeout(res, 500)); // the last file completely written
    const calls = r.successful;
    console.log(`# ${values.root ?? '.'}: ${RATE}/s × ${SECONDS} s, ${calls} ok / ${r.failed} failed; sampling every ${values.interval} B; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    for (const [i, pid] of pids.entries()) {
      const head = (JSON.parse(readFileSync(join(out, `${pid}.heapprofile`), 'utf8')) as { head: HeapNode }).head;
      const s = summarise(head);
      console.log(`\n## ${i === 0 ? 'primary' : `worker ${i}`} (pid ${pid}): ${(s.total / 2 ** 20).toFixed(0)} MiB allocated, **${Math.round(s.total / calls)} B per call**`);
      console.log('\n| area | B per call | share |\n|---|---:|---:|');
      for (const [a, b] of [...s.byArea].sort((x, y) => y[1] - x[1])) console.log(`| ${a} | ${Math.round(b / calls)} | ${(100 * b / s.total).toFixed(1)} % |`);
      console.log(`\n| function (top ${TOP}) | B per call | share |\n|---|---:|---:|`);
      for (const [f, b] of [...s.byFn].sort((x, y) => y[1] - x[1]).slice(0, TOP)) console.log(`| ${f} | ${Math.round(b / calls)} | ${(100 * b / s.total).toFixed(1)} % |`);
    }
  } finally {
    await pg.stop();
    await stopAll();
  }
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
