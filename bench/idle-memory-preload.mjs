/* global URL, setTimeout */
// Preload for bench/idle-memory.bench.ts --split (node --import, inherited by the workers through
// NODE_OPTIONS): MEMDIAG_AT seconds after start, writes this process's memory split and the
// CommonJS modules it loaded to $MEMDIAG_DIR/<pid>.json; ESM modules are logged by the load
// hook (bench/idle-memory-hooks.mjs) to $MEMDIAG_DIR/esm-<pid>.txt.
import { register, createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import process from 'node:process';

const dir = process.env.MEMDIAG_DIR;
register(new URL('./idle-memory-hooks.mjs', import.meta.url).href, { data: { dir } });
const require = createRequire(import.meta.url);
const t = setTimeout(() => {
  // Two full GCs (node --expose-gc) so heap used is the live data.
  if (typeof globalThis.gc === 'function') { globalThis.gc(); globalThis.gc(); }
  writeFileSync(`${dir}/${process.pid}.json`, JSON.stringify({
    pid: process.pid, ppid: process.ppid, argv: process.argv.slice(1), execArgv: process.execArgv,
    mem: process.memoryUsage(), heap: v8.getHeapStatistics(), spaces: v8.getHeapSpaceStatistics(),
    code: v8.getHeapCodeStatistics(), cjs: Object.keys(require.cache).map((f) => [f, 0]),
  }));
}, Number(process.env.MEMDIAG_AT ?? 15) * 1000);
t.unref();
