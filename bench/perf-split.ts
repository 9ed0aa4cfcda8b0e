// Where each process's CPU went, from a system-wide `perf record -a -g` of a benchmark step:
// its main thread against V8's helper threads (parallel scavenges, concurrent marking, sweeping,
// optimising compilers), and by area (kernel, optimised JS, V8 builtins and runtime, property
// access, GC, libc, node's C++). node must run with --perf-basic-prof for JS names; the V8
// profiles (`--cpu-prof`) see the main thread only, so GC on helper threads is missing there.
//
//   perf record -a -g -F 499 -o all.data -- sleep 8        (while the step runs)
//   perf script -i all.data -F pid,tid,ip,sym,dso > all.txt
//   npx tsx bench/perf-split.ts all.txt [--top 6] [--symbols AREA]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '6' }, symbols: { type: 'string' } } });
const file = positionals[0];
if (!file) {
  console.error('usage: npx tsx bench/perf-split.ts PERF_SCRIPT_TEXT [--top N] [--symbols AREA]');
  process.exit(2);
}

const AREAS: Array<[string, RegExp]> = [
  ['GC', /Scaveng|Heap::|MarkCompact|Marking|Sweep|GCTracer|Evacuat|RememberedSet|SlotSet|MemoryChunk|PagedSpace|FreeList|MemoryAllocator|GlobalHandles|Compact/],
  ['compiler, parser', /compiler::|Compiler|Maglev|maglev|baseline::|Parser|Scanner|Bytecode/],
  ['interpreter, trampolines', /^Builtins_.*Handler|InterpreterEntry|^Builtins_Baseline|^Builtins_.*Trampoline/],
  ['property access (ICs, maps)', /^Builtins_.*IC|IC::|FeedbackNexus|TransitionArray|LookupIterator|Map::|DescriptorArray|JSObject::/],
  ['V8 builtins (strings, arrays, Map, calls)', /^Builtins_/],
  ["node's C++, libuv", /node::|uv_|uv__/],
  ['V8 runtime, other', /v8::/],
];

function area(sym: string, dso: string): string {
  if (dso.includes('kernel')) return 'kernel';
  if (dso.includes('JIT') || dso.includes('perf-')) {
    if (sym.startsWith('JS:*')) return 'JS, optimised';
    if (sym.startsWith('JS:^') || sym.startsWith('JS:+')) return 'JS, baseline';
    if (sym.startsWith('JS:~')) return 'JS, interpreted';
    if (sym.startsWith('RegExp:')) return 'RegExp';
    return 'JIT, other';
  }
  if (/libc\.so/.test(dso)) return 'libc (malloc, memcpy, syscalls)';
  for (const [name, re] of AREAS) if (re.test(sym)) return name;
  return `other (${dso.split('/').pop()})`;
}

interface Proc { samples: number; threads: number; areas: Map<string, { main: number; threads: number }>; label: Set<string>; symbols: Map<string, Map<string, number>>; owners: Map<string, number> }

/** Whose code a sample is in: the innermost JavaScript frame's package (callees such as builtins,
 *  the runtime and the kernel count for the code that called them). */
function ownerOf(frame: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(frame);
  if (pkg) return pkg[1]!;
  if (/\/(dist|src|bin)\//.test(frame)) return 'peergate';
  if (frame.includes(' node:')) return "node's library";
  return 'JavaScript, other';
}
const procs = new Map<string, Proc>();
let total = 0;
let cur: { pid: string; tid: string; leaf: boolean; owner: string | undefined } | undefined;
/** The sample just read is complete: count whose code it was in. */
function closeSample(): void {
  if (!cur || cur.leaf) return;
  const p = procs.get(cur.pid)!;
  const owner = cur.owner ?? (cur.pid === cur.tid ? 'no JavaScript frame, main thread' : 'no JavaScript frame, helper thread');
  p.owners.set(owner, (p.owners.get(owner) ?? 0) + 1);
}
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const head = /^\s*(\d+)\/(\d+)\s*$/.exec(line);
  if (head) { closeSample(); cur = { pid: head[1]!, tid: head[2]!, leaf: true, owner: undefined }; continue; }
  if (!cur || line.trim() === '') continue;
  let p = procs.get(cur.pid);
  if (!p) { p = { samples: 0, threads: 0, areas: new Map(), label: new Set(), symbols: new Map(), owners: new Map() }; procs.set(cur.pid, p); }
  if (cur.owner === undefined && /\sJS:/.test(line)) cur.owner = ownerOf(line);
  // Which process is which, from any frame of its stacks.
  if (line.includes('drachtio-srf')) p.label.add('B2BUA worker');
  if (line.includes('engine/message/parser')) p.label.add('primary');
  if (/\/sipp\)/.test(line)) p.label.add('sipp');
  if (!cur.leaf) continue;
  cur.leaf = false;
  const m = /^\s*[0-9a-f]+\s+(.*?)\s*\(([^()]*)\)\s*$/.exec(line);
  const sym = (m?.[1] ?? '?').replace(/\+0x[0-9a-f]+$/, '');
  const dso = m?.[2] ?? '?';
  const onMain = cur.pid === cur.tid;
  const a = area(sym, dso);
  total++;
  p.samples++;
  if (!onMain) p.threads++;
  const e = p.areas.get(a) ?? { main: 0, threads: 0 };
  if (onMain) e.main++; else e.threads++;
  p.areas.set(a, e);
  const syms = p.symbols.get(a) ?? new Map<string, number>();
  syms.set(sym, (syms.get(sym) ?? 0) + 1);
  p.symbols.set(a, syms);
}

closeSample();

const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(1)} %`;
console.log(`${total} samples`);
const top = [...procs.entries()].sort((a, b) => b[1].samples - a[1].samples).slice(0, Number(values.top));
for (const [pid, p] of top) {
  const label = [...p.label].join(', ') || (pid === '0' ? 'idle/kernel' : '?');
  console.log(`\n## ${pid} (${label}): ${pct(p.samples, total)} of all samples; V8 helper threads ${pct(p.threads, p.samples)} of its own`);
  console.log('| area | main thread | helper threads |');
  console.log('|---|---|---|');
  for (const [a, e] of [...p.areas.entries()].sort((x, y) => (y[1].main + y[1].threads) - (x[1].main + x[1].threads))) {
    if ((e.main + e.threads) / p.samples < 0.005) continue;
    console.log(`| ${a} | ${pct(e.main, p.samples)} | ${pct(e.threads, p.samples)} |`);
  }
  const owners = [...p.owners.entries()].sort((x, y) => y[1] - x[1]).filter(([, n]) => n / p.samples >= 0.005);
  console.log(`whose code (innermost JavaScript frame): ${owners.map(([o, n]) => `${o} ${pct(n, p.samples)}`).join(', ')}`);
  if (values.symbols) {
    const syms = p.symbols.get(values.symbols);
    if (syms) for (const [s, n] of [...syms.entries()].sort((x, y) => y[1] - x[1]).slice(0, 12)) console.log(`    ${pct(n, p.samples)}  ${s.slice(0, 120)}`);
  }
}
