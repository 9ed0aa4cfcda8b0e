// process.env as a plain object. Node's process.env is an interceptor: every read is a call
// into C++ and getenv (≈ 0.3 µs here). drachtio-srf reads process.env.DRACHTIO_PRESERVE_HEADER_NAMES
// once per header name, for every header of every message it parses or looks up (its
// sip-parser getHeaderName), which made that one read ≈ 4 % of a B2BUA worker's CPU (BENCHMARKS.md
// "A worker's own CPU"). peergate never changes its environment after start, so the B2BUA
// processes read a copy taken at start: the same keys and values, read as plain properties.
// Children spawned with the default environment get the copy's variables as before.

let snapshotted = false;

/** Replace process.env by a plain copy of it (once per process). */
export function snapshotEnvironment(): void {
  if (snapshotted) return;
  snapshotted = true;
  const copy: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(process.env)) copy[k] = process.env[k];
  process.env = copy;
}
