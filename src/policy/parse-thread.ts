// A reload's parse and validation off the event loop. A carrier's policy (hundreds of peers,
// thousands of routes) is 0.1–0.7 s of YAML and zod (BENCHMARKS.md "Policy and ops"); on the
// primary's loop that would hold every SIP message for as long. The first load at start stays
// in place: nothing runs yet. Where no thread can be started the load runs in place, as before.
// Run from the TypeScript sources (tsx: development and the test suite) it stays in place too:
// a thread loading the sources through tsx costs the main thread more CPU than the parse does
// (Node 20; measured in BENCHMARKS.md "Policy and ops"), and operators run the compiled code.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { loadPolicy, type LoadOptions, type LoadResult } from './load.js';
import { deepFreeze } from './freeze.js';

/** A policy is a file of at most 8 MiB: a load that has not ended by then never will. */
export const PARSE_TIMEOUT_MS = 60_000;

const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** The thread's module beside this one (.ts when run from sources through tsx). */
function entry(): { path: string; execArgv: string[] } {
  const url = new URL(FROM_SOURCES ? './parse-worker.ts' : './parse-worker.js', import.meta.url);
  return { path: fileURLToPath(url), execArgv: FROM_SOURCES ? ['--import', import.meta.resolve('tsx')] : [] };
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
    const e = entry();
    worker = new Worker(e.path, { workerData: { path, opts: { checkFiles, env: env ?? process.env } }, execArgv: e.execArgv, stdout: false, stderr: false });
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
    worker.once('message', (text: string) => {
      let r: LoadResult;
      try { r = JSON.parse(text) as LoadResult; } catch { r = loadPolicy(path, opts); }
      finish(r.ok ? { ok: true, policy: deepFreeze(r.policy) } : r);
    });
    // The thread could not run (no memory for it, its module missing): load in place instead.
    worker.once('error', () => { if (!done) finish(loadPolicy(path, opts)); });
    worker.once('exit', () => { if (!done) finish(loadPolicy(path, opts)); });
  });
}
