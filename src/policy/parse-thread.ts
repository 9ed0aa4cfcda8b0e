// A reload's parse and validation off the event loop. A carrier's policy (hundreds of peers,
// thousands of routes) is 0.1–0.7 s of YAML and zod (BENCHMARKS.md "Policy and ops"); on the
// primary's loop that would hold every SIP message for as long. The first load at start stays
// in place: nothing runs yet. Where no thread can be started the load runs in place, as before.
// Run from the TypeScript sources (tsx: development) it stays in place too; operators run the
// compiled code. (That choice was measured with a thread that, it later turned out, never loaded
// the sources and fell back to the load in place: BENCHMARKS.md "Policy and ops".)
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { loadPolicy, type LoadOptions, type LoadResult } from './load.js';
import { deepFreeze } from './freeze.js';
import type { Policy } from './schema.js';
import { rememberPolicyText } from './text.js';

/** A policy is a file of at most 8 MiB: a load that has not ended by then never will. */
export const PARSE_TIMEOUT_MS = 60_000;

const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** The thread, running the module beside this one. From the sources the thread registers tsx
 *  itself: on Node 20 a thread does not inherit the hooks `--import tsx` gave its process, and
 *  the .ts module would fail to load (and the load fall back to in place, unnoticed). */
function startThread(workerData: unknown): Worker {
  const options = { workerData, stdout: false, stderr: false };
  if (!FROM_SOURCES) return new Worker(fileURLToPath(new URL('./parse-worker.js', import.meta.url)), options);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const module = JSON.stringify(new URL('./parse-worker.ts', import.meta.url).href);
  return new Worker(`import(${tsx}).then((api) => { api.register(); return import(${module}); })`, { ...options, eval: true });
}

export interface OffThreadOptions {
  timeoutMs?: number;
  /** Use a thread even when run from the sources (the tests of this module). */
  evenFromSources?: boolean;
}

/** loadPolicy(path, opts) in a worker thread; the policy comes back deep-frozen, as loadPolicy's. */
export function loadPolicyOffThread(path: string, opts: LoadOptions, o: OffThreadOptions = {}): Promise<LoadResult> {
  if (FROM_SOURCES && !o.evenFromSources) return Promise.resolve(loadPolicy(path, opts));
  const timeoutMs = o.timeoutMs ?? PARSE_TIMEOUT_MS;
  const { checkFiles, env } = opts;
  let worker: Worker;
  try {
    worker = startThread({ path, opts: { checkFiles, env: env ?? process.env } });
  } catch {
    return Promise.resolve(loadPolicy(path, opts));
  }
  return new Promise<LoadResult>((resolve) => {
    let done = false;
    const finish = (r: LoadResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, errors: [{ file: path, line: 1, column: 1, keyPath: '', message: `the policy did not load within ${timeoutMs / 1000} s` }] }), timeoutMs);
    worker.once('message', (m: { policy?: string; failed?: string }) => {
      let r: LoadResult;
      try {
        if (typeof m.policy === 'string') {
          const policy = deepFreeze(JSON.parse(m.policy) as Policy);
          rememberPolicyText(policy, m.policy);
          r = { ok: true, policy };
        } else {
          r = JSON.parse(m.failed ?? '') as LoadResult;
        }
      } catch { r = loadPolicy(path, opts); }
      finish(r);
    });
    // The thread could not run (no memory for it, its module missing): load in place instead.
    worker.once('error', () => { if (!done) finish(loadPolicy(path, opts)); });
    worker.once('exit', () => { if (!done) finish(loadPolicy(path, opts)); });
  });
}
