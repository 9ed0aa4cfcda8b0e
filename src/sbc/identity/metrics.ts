// Identity metrics on prom-client's default registry (scraped by src/ops).
import client from 'prom-client';

// Per-call counts (verifications, certificate cache hits) are kept as plain numbers and folded
// into their prom-client counter when it is collected (a scrape, or get()): the hot path then
// costs a Map lookup and an add, not prom-client's label hashing and validation per call. The
// pending counts live with the counter object (through globalThis), so a second instance of this
// module (tests, hot reload), which reuses the first one's registrations, is folded in too.
interface Pending { labels: Record<string, string>; n: number }
type PendingMap = Map<string, Pending>;
const PENDING = Symbol.for('peergate.identity.metrics.pending');
const shared = globalThis as { [PENDING]?: WeakMap<object, PendingMap> };
const pendingByCounter: WeakMap<object, PendingMap> = (shared[PENDING] ??= new WeakMap());
const MAX_PENDING = 10_000;

function pendingOf(c: client.Counter<string>): PendingMap {
  let m = pendingByCounter.get(c);
  if (!m) { m = new Map(); pendingByCounter.set(c, m); }
  return m;
}

/** prom-client calls this as the counter's `collect` before reading it. */
function flushPending(this: client.Counter<string>): void {
  const m = pendingByCounter.get(this);
  if (!m) return;
  for (const p of m.values()) {
    if (p.n > 0) { const n = p.n; p.n = 0; this.inc(p.labels, n); }
  }
}

/** First count for a label set (later ones are `p.n++` in the callers). */
function addPending(c: client.Counter<string>, m: PendingMap, key: string, labels: Record<string, string>): void {
  if (m.size < MAX_PENDING) m.set(key, { labels, n: 1 });
  else c.inc(labels);
}

function counter(name: string, help: string, labelNames: string[], collect?: (this: client.Counter<string>) => void): client.Counter<string> {
  // Reuse an existing registration (tests and hot reload may import this module twice).
  const existing = client.register.getSingleMetric(name);
  return (existing as client.Counter<string> | undefined) ?? new client.Counter({ name, help, labelNames, ...(collect ? { collect } : {}) });
}

export const verificationsTotal = counter(
  'peergate_identity_verifications_total',
  'Identity verifications by peer, standard (rfc4474, rfc8224, none) and result (pass, fail, none)',
  ['peer', 'standard', 'result'],
  flushPending,
);

export const certFetchesTotal = counter(
  'peergate_identity_cert_fetches_total',
  'Certificate fetches by result (ok, forbidden, timeout, too_large, http_error, bad_certificate, network)',
  ['result'],
);

export const certCacheTotal = counter(
  'peergate_identity_cert_cache_total',
  'Certificate cache lookups by result (hit, miss, negative_hit)',
  ['result'],
  flushPending,
);

export const certFetchSeconds = ((client.register.getSingleMetric('peergate_identity_cert_fetch_seconds') as client.Histogram<string> | undefined)
  ?? new client.Histogram({
    name: 'peergate_identity_cert_fetch_seconds',
    help: 'Duration of certificate fetches (network, not cache hits)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  }));

export const signaturesTotal = counter(
  'peergate_identity_signatures_total',
  'Identity headers added toward peers, by standard',
  ['peer', 'standard'],
);

const verificationsPending = pendingOf(verificationsTotal);
const cachePending = pendingOf(certCacheTotal);

// The label set of the previous verification: consecutive calls mostly share it, and then no
// key string is built.
let last: { peer: string; standard: string; result: string; p: Pending } | undefined;

export function countVerification(peer: string, standard: string, result: string): void {
  if (last && last.peer === peer && last.standard === standard && last.result === result) { last.p.n++; return; }
  const key = `${peer}\u0000${standard}\u0000${result}`;
  const p = verificationsPending.get(key);
  if (p) { p.n++; last = { peer, standard, result, p }; } else addPending(verificationsTotal, verificationsPending, key, { peer, standard, result });
}

/** A certificate cache hit (the verifier's hot path). */
export function countCacheHit(): void {
  const p = cachePending.get('hit');
  if (p) p.n++;
  else addPending(certCacheTotal, cachePending, 'hit', { result: 'hit' });
}
