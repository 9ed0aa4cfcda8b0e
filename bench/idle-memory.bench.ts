// Idle footprint: RSS per process of an idle `peergate start` (the soak's policy: two UDP
// listeners, media not anchored, `workers: auto`), the median over several starts, and with
// `--split` each process's memory split (V8 heap used/committed per space, code, external,
// ArrayBuffers) and the modules it loaded, written by bench/idle-memory-preload.mjs.
//
//   npx tsx bench/idle-memory.bench.ts [--starts 3] [--settle 15] [--split] [--worker-v8="flags"] [--v8="flags"] [--cpu-seconds 20]
//
// Idle CPU too: each process's utime+stime (/proc/<pid>/stat) over `--cpu-seconds` after the
// settle, as % of a core (an idle node should cost next to nothing: its timers and probes only).
// RSS is read from /proc/<pid>/status `settle` seconds after /ready answers 200 (no traffic).
// Run `npm run build` first: bin/peergate.js runs the sources through tsx when dist/ is stale,
// and tsx alone costs tens of MiB per process.
import './require-build.js';
import { parseArgs } from 'node:util';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { childPids, cpuSeconds, freePorts, procStatus, scratchDir } from '../test/helpers/procs.js';
import { startPeergate } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: {
  starts: { type: 'string', default: '3' }, settle: { type: 'string', default: '15' }, split: { type: 'boolean', default: false },
  v8: { type: 'string' }, 'worker-v8': { type: 'string' }, 'cpu-seconds': { type: 'string', default: '20' },
} });
const CPU_S = Number(values['cpu-seconds']);
const idleCpu: number[][] = [];
const STARTS = Number(values.starts);
const SETTLE_S = Number(values.settle);
const MiB = 1024 * 1024;

const rssMiB = (pid: number) => procStatus(pid, 'VmRSS') / 1024;
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
const f1 = (x: number) => x.toFixed(1);

interface Split {
  pid: number; mem: NodeJS.MemoryUsage; code: { code_and_metadata_size: number; bytecode_and_metadata_size: number; external_script_source_size: number };
  spaces: { space_name: string; space_size: number; space_used_size: number }[]; cjs: [string, number][];
}

function printSplit(label: string, s: Split, esm: string[]): void {
  const m = s.mem;
  console.log(`  ${label} (pid ${s.pid}): rss ${f1(m.rss / MiB)}, heap used/total ${f1(m.heapUsed / MiB)}/${f1(m.heapTotal / MiB)}, external ${f1(m.external / MiB)} (ArrayBuffers ${f1(m.arrayBuffers / MiB)}), code+metadata ${f1(s.code.code_and_metadata_size / MiB)}, bytecode ${f1(s.code.bytecode_and_metadata_size / MiB)} MiB`);
  console.log('    spaces (committed/used MiB): ' + s.spaces.map((x) => `${x.space_name.replace('_space', '')} ${f1(x.space_size / MiB)}/${f1(x.space_used_size / MiB)}`).join(', '));
  const pkg = new Map<string, number>();
  const count = (f: string) => {
    const i = f.lastIndexOf('node_modules/');
    const name = i < 0 ? (f.includes('/dist/') ? 'peergate dist' : f.includes('/src/') ? 'peergate src' : f.startsWith('node:') ? 'node:' : 'other')
      : f.slice(i + 13).split('/').slice(0, f.slice(i + 13).startsWith('@') ? 2 : 1).join('/');
    pkg.set(name, (pkg.get(name) ?? 0) + 1);
  };
  for (const [f] of s.cjs) count(f);
  for (const u of esm) count(u.replace(/^file:\/\//, ''));
  console.log(`    modules: ${s.cjs.length} CommonJS + ${esm.length} ESM; by package: ` + [...pkg].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', '));
}

async function one(i: number): Promise<number[]> {
  const [ops, peerPort, corePort] = await freePorts(3) as [number, number, number];
  const diag = scratchDir('peergate-idle-');
  const env: NodeJS.ProcessEnv = {};
  if (values.split) {
    env.NODE_OPTIONS = [process.env.NODE_OPTIONS ?? '', `--import ${join(import.meta.dirname, 'idle-memory-preload.mjs')}`, '--expose-gc'].join(' ').trim();
    env.MEMDIAG_DIR = diag;
    env.MEMDIAG_AT = String(SETTLE_S - 2);
  }
  if (values['worker-v8'] !== undefined) env.PEERGATE_WORKER_NODE_FLAGS = values['worker-v8'];
  const pg = await startPeergate({
    listen: [
      { name: 'peer-udp', side: 'peer', transport: 'udp', address: '127.0.0.1', port: peerPort },
      { name: 'core-udp', side: 'core', transport: 'udp', address: '127.0.0.1', port: corePort },
    ],
    core: { targets: ['sip:127.0.0.3:5060'] },
    media: { anchoring: false },
    ops: { port: ops },
    log: { level: 'error' },
    peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
    routes: [{ from: 'peers', to: 'core' }],
  }, { env, nodeArgs: values.v8 ? values.v8.split(' ').filter(Boolean) : [] });
  try {
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const kids = childPids(pg.proc.pid).sort((a, b) => a - b);
    const rss = [rssMiB(pg.proc.pid), ...kids.map(rssMiB)];
    console.log(`start ${i + 1}: RSS MiB primary ${f1(rss[0]!)}` + kids.map((_, k) => `, worker ${k + 1} ${f1(rss[k + 1]!)}`).join('') + `, all ${f1(rss.reduce((a, b) => a + b, 0))}`);
    if (CPU_S > 0) {
      const pids = [pg.proc.pid, ...kids];
      const before = pids.map((p) => cpuSeconds(p).total);
      await new Promise((r) => setTimeout(r, CPU_S * 1000));
      const pct = pids.map((p, k) => (100 * (cpuSeconds(p).total - before[k]!)) / CPU_S);
      idleCpu.push(pct);
      console.log(`  idle CPU over ${CPU_S} s, % of a core: primary ${pct[0]!.toFixed(2)}` + pct.slice(1).map((x, k) => `, worker ${k + 1} ${x.toFixed(2)}`).join('') + `, all ${pct.reduce((a, b) => a + b, 0).toFixed(2)}`);
    }
    if (values.split) {
      for (const [k, pid] of [pg.proc.pid, ...kids].entries()) {
        const file = join(diag, `${pid}.json`);
        if (!existsSync(file)) { console.log(`  (no split for ${pid})`); continue; }
        const esmFile = readdirSync(diag).find((f) => f === `esm-${pid}.txt`);
        const esm = esmFile ? readFileSync(join(diag, esmFile), 'utf8').split('\n').filter(Boolean) : [];
        printSplit(k === 0 ? 'primary' : `worker ${k}`, JSON.parse(readFileSync(file, 'utf8')) as Split, esm);
      }
    }
    return rss;
  } finally {
    await pg.stop();
  }
}

async function main(): Promise<void> {
  console.log(`load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const runs: number[][] = [];
  for (let i = 0; i < STARTS; i++) runs.push(await one(i));
  const cols = Math.max(...runs.map((r) => r.length));
  const med = Array.from({ length: cols }, (_, k) => median(runs.map((r) => r[k] ?? NaN)));
  const all = median(runs.map((r) => r.reduce((a, b) => a + b, 0)));
  console.log(`median of ${STARTS} starts, RSS MiB: primary ${f1(med[0]!)}` + med.slice(1).map((x, k) => `, worker ${k + 1} ${f1(x)}`).join('') + `, all ${f1(all)}`);
  if (idleCpu.length) {
    const c = Array.from({ length: Math.max(...idleCpu.map((r) => r.length)) }, (_, k) => median(idleCpu.map((r) => r[k] ?? NaN)));
    console.log(`median of ${idleCpu.length} starts, idle CPU % of a core: primary ${c[0]!.toFixed(2)}` + c.slice(1).map((x, k) => `, worker ${k + 1} ${x.toFixed(2)}`).join('') + `, all ${median(idleCpu.map((r) => r.reduce((a, b) => a + b, 0))).toFixed(2)}`);
  }
  console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
