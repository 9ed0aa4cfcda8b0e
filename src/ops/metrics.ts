// peergate's Prometheus metrics, defined once at module level on prom-client's default
// registry (the one /metrics serves). Other modules define theirs the same way, with the
// helpers below, so importing a module twice (tests, reload) never registers a name twice.
import client from 'prom-client';

export const registry = client.register;

let defaultsCollected = false;
/** Process metrics (CPU, memory, event loop lag, GC); idempotent. */
export function collectDefaultMetrics(): void {
  if (defaultsCollected || registry.getSingleMetric('process_cpu_user_seconds_total')) { defaultsCollected = true; return; }
  defaultsCollected = true;
  client.collectDefaultMetrics({ register: registry });
}
collectDefaultMetrics();

/** A counter on the default registry; returns the existing one if the name is taken. */
export function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Counter<L> {
  return (registry.getSingleMetric(name) as client.Counter<L> | undefined) ?? new client.Counter<L>({ name, help, labelNames });
}

/** A gauge on the default registry; returns the existing one if the name is taken. */
export function gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Gauge<L> {
  return (registry.getSingleMetric(name) as client.Gauge<L> | undefined) ?? new client.Gauge<L>({ name, help, labelNames });
}

/** A histogram on the default registry; returns the existing one if the name is taken. */
export function histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): client.Histogram<L> {
  return (registry.getSingleMetric(name) as client.Histogram<L> | undefined) ?? new client.Histogram<L>({ name, help, labelNames, buckets });
}

// Label conventions: `peer` is a peer id from the policy, `core`, or `unknown` (a source
// that matched no peer); `direction` is `inbound` (peer → core) or `outbound` (core → peer).

/** Calls by how they ended: result = answered | failed | cancelled | refused | timeout. */
export const callsTotal = counter('peergate_calls_total', 'Calls by peer, direction and result', ['peer', 'direction', 'result']);
/** Calls currently up (answered, not yet ended) or being set up. */
export const activeCalls = gauge('peergate_active_calls', 'Calls in progress by peer', ['peer']);
/** Requests received, by method. */
export const requestsTotal = counter('peergate_requests_total', 'SIP requests received by peer and method', ['peer', 'method']);
/** Responses sent or relayed toward a peer, by class (1xx … 6xx). */
export const responsesTotal = counter('peergate_responses_total', 'SIP responses by peer and class', ['peer', 'class']);
/** Requests refused or dropped, by reason (unknown-source, method, transport, limits, identity, max-forwards, loop, …). */
export const refusalsTotal = counter('peergate_refusals_total', 'Requests refused or dropped by peer and reason', ['peer', 'reason']);
/** TLS handshakes: result = ok | failed | no-client-cert | bad-client-cert. */
export const tlsHandshakesTotal = counter('peergate_tls_handshakes_total', 'TLS handshakes by result', ['result']);
/** Policy reloads: result = ok | error. */
export const policyReloadsTotal = counter('peergate_policy_reloads_total', 'Policy reloads by result', ['result']);
/** Unix time of the policy now in force. */
export const policyLoadedTimestamp = gauge('peergate_policy_loaded_timestamp_seconds', 'When the policy in force was loaded');
/** Time from INVITE received to final response relayed. */
export const callSetupSeconds = histogram('peergate_call_setup_seconds', 'INVITE to final response', ['peer', 'direction'],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
/** 1 while the B2BUA is connected to its SIP engine. */
export const engineConnected = gauge('peergate_engine_connected', '1 while the B2BUA is connected to the SIP engine');

/** `2xx` for 200: the responses_total class label. */
export function responseClass(status: number): string {
  return status >= 100 && status < 700 ? `${Math.floor(status / 100)}xx` : 'other';
}
