// Where a process's RSS is, from /proc/<pid>/smaps (benchmarks only): file-backed pages (the node
// binary, libraries), glibc's main arena (the brk `[heap]`), glibc's thread arenas (anonymous
// mappings starting on a 64 MiB boundary: each arena is a 64 MiB reservation, HEAP_MAX_SIZE) and
// the other anonymous memory (V8's heap pages, code space, large malloc blocks of their own
// mmap, thread stacks). Memory malloc has handed out or keeps free in its arenas is brk + arenas;
// V8's heap is in `anon`. Pss counts a page shared by n processes (the node binary's text in
// the primary and every worker) 1/n in each: the sum over processes is what the node occupies.
import { readFileSync } from 'node:fs';

export interface MapSplit { rss: number; pss: number; file: number; brk: number; arenas: number; arenaCount: number; anon: number }

const ARENA_ALIGN = 64n * 1024n * 1024n;

/** The split in KiB, or undefined when the process is gone. */
export function mapSplit(pid: number): MapSplit | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/smaps`, 'utf8'); } catch { return undefined; }
  const s: MapSplit = { rss: 0, pss: 0, file: 0, brk: 0, arenas: 0, arenaCount: 0, anon: 0 };
  let kind: 'file' | 'brk' | 'arena' | 'anon' = 'anon';
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[3]!;
      if (name === '[heap]') kind = 'brk';
      else if (name.startsWith('/')) kind = 'file';
      else if (name === '' && BigInt(`0x${head[1]!}`) % ARENA_ALIGN === 0n && head[2]!.startsWith('rw')) { kind = 'arena'; s.arenaCount++; }
      else kind = 'anon';
      continue;
    }
    if (line.startsWith('Pss:')) { s.pss += Number(/(\d+)/.exec(line)![1]); continue; }
    if (!line.startsWith('Rss:')) continue;
    const kb = Number(/(\d+)/.exec(line)![1]);
    s.rss += kb;
    if (kind === 'file') s.file += kb;
    else if (kind === 'brk') s.brk += kb;
    else if (kind === 'arena') s.arenas += kb;
    else s.anon += kb;
  }
  return s;
}

/** "rss (pss): file/brk/arenas(n)/anon" in MiB, e.g. "212 (180): 38/40/61(9)/73". */
export function formatSplit(s: MapSplit | undefined): string {
  if (!s) return '-';
  const m = (kb: number) => (kb / 1024).toFixed(0);
  return `${m(s.rss)} (${m(s.pss)}): ${m(s.file)}/${m(s.brk)}/${m(s.arenas)}(${s.arenaCount})/${m(s.anon)}`;
}
