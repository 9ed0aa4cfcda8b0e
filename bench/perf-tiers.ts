// Which V8 tier a process's main thread ran in, per time window of a `perf record -g` of one
// process started with node's --perf-basic-prof: the innermost JavaScript frame of each sample
// is optimised (TurboFan, `JS:*`), baseline (Sparkplug, `JS:^`) or interpreted (under
// InterpreterEntryTrampoline); samples of other threads (V8's concurrent compiler and GC
// helpers, libuv) are counted apart. Windows are seconds from the first sample inside the
// engine's parser or transaction layer (the first message of the load). For a cold node:
//
//   npx tsx bench/rate-curve.bench.ts --rates 600,600,600 --seconds 5 --node-args="--perf-basic-prof" &
//   perf record -e cpu-clock -F 1000 -g -p PRIMARY_PID -o cold.data -- sleep 22
//   perf script -i cold.data -F tid,pid,time,ip,sym,dso > cold.txt
//   npx tsx bench/perf-tiers.ts cold.txt [--windows 0-5,5-15]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { windows: { type: 'string', default: '0-5,5-15' } } });
const file = positionals[0];
if (!file) throw new Error('usage: perf-tiers.ts PERF_SCRIPT_OUTPUT [--windows 0-5,5-15]');

interface Sample { pid: number; tid: number; t: number; frames: string[] }
const samples: Sample[] = [];
for (const block of readFileSync(file, 'utf8').split('\n\n')) {
  const lines = block.split('\n').filter((l) => l.length > 0);
  const head = lines.length > 0 ? /(\d+)\/(\d+)\s+([\d.]+):/.exec(lines[0]!) : null;
  if (head) samples.push({ pid: Number(head[1]), tid: Number(head[2]), t: Number(head[3]), frames: lines.slice(1) });
}
const start = samples.find((s) => s.frames.some((f) => /dist\/engine\/(message|transaction)\//.test(f)))?.t;
if (start === undefined) throw new Error('no sample inside the engine: was the process started with --perf-basic-prof, and loaded?');

function tier(frames: string[]): string {
  for (const f of frames) {
    if (f.includes(' JS:*')) return 'optimised';
    if (f.includes(' JS:^')) return 'baseline';
    if (f.includes('InterpreterEntryTrampoline')) return 'interpreted';
  }
  return 'no JavaScript frame';
}

for (const w of values.windows.split(',')) {
  const [a, b] = w.split('-').map(Number) as [number, number];
  const inWindow = samples.filter((s) => s.t >= start + a && s.t < start + b);
  const main = inWindow.filter((s) => s.tid === s.pid);
  const counts = new Map<string, number>();
  for (const s of main) counts.set(tier(s.frames), (counts.get(tier(s.frames)) ?? 0) + 1);
  const shares = [...counts].sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k} ${((100 * n) / Math.max(1, main.length)).toFixed(0)} %`).join(', ');
  const helpers = inWindow.length - main.length;
  console.log(`${a}–${b} s: main thread ${main.length} samples: ${shares}; other threads ${helpers} samples (${((100 * helpers) / Math.max(1, inWindow.length)).toFixed(0)} % of the process)`);
}
