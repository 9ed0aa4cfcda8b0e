// Module load hook for bench/idle-memory-preload.mjs: one line per ESM module loaded.
import { appendFileSync } from 'node:fs';
import process from 'node:process';

let dir;
export function initialize(data) { dir = data.dir; }
export async function load(url, context, next) {
  const r = await next(url, context);
  appendFileSync(`${dir}/esm-${process.pid}.txt`, url + '\n');
  return r;
}
