/* global process */
// Preload for the memory benchmarks (node --import, inherited by the B2BUA workers through
// NODE_OPTIONS; needs --expose-gc for the GC part). On SIGWINCH (ignored by default, unused by
// peergate) it appends to $MEMSIGNAL_DIR/<pid>.jsonl this process's memory as it is, then after
// two full GCs (`gc()`): process.memoryUsage() and V8's heap spaces (committed/used). The bench
// reads it next to /proc/<pid>/smaps, so V8's committed heap and RSS are seen per process.
import { appendFileSync } from 'node:fs';
import v8 from 'node:v8';

const dir = process.env.MEMSIGNAL_DIR;
const record = (phase) => ({
  phase, t: Date.now(), mem: process.memoryUsage(),
  spaces: v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size, s.space_used_size]),
});
if (dir) {
  process.on('SIGWINCH', () => {
    const before = record('as-is');
    if (typeof globalThis.gc === 'function') { globalThis.gc(); globalThis.gc(); }
    appendFileSync(`${dir}/${process.pid}.jsonl`, `${JSON.stringify(before)}\n${JSON.stringify(record('after-gc'))}\n`);
  });
}
