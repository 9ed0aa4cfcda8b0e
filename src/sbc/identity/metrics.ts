// Identity metrics on prom-client's default registry (scraped by src/ops).
import client from 'prom-client';

function counter(name: string, help: string, labelNames: string[]): client.Counter<string> {
  // Reuse an existing registration (tests and hot reload may import this module twice).
  const existing = client.register.getSingleMetric(name);
  return (existing as client.Counter<string> | undefined) ?? new client.Counter({ name, help, labelNames });
}

export const verificationsTotal = counter(
  'peergate_identity_verifications_total',
  'Identity verifications by peer, standard (rfc4474, rfc8224, none) and result (pass, fail, none)',
  ['peer', 'standard', 'result'],
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

// Bound children per label set: the per-call cost is then a Map lookup and an add,
// instead of hashing a label object on every verification.
const verificationChildren = new Map<string, client.Counter.Internal>();
export function countVerification(peer: string, standard: string, result: string): void {
  const key = `${peer}\u0000${standard}\u0000${result}`;
  let c = verificationChildren.get(key);
  if (!c) {
    c = verificationsTotal.labels({ peer, standard, result });
    if (verificationChildren.size < 10_000) verificationChildren.set(key, c);
  }
  c.inc();
}

export const cacheHits = certCacheTotal.labels({ result: 'hit' });
