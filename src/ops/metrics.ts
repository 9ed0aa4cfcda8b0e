// peergate's Prometheus metrics, defined once at module level on prom-client's default
// registry (the one /metrics serves). Other modules define theirs the same way, with the
// helpers below, so importing a module twice (tests, reload) never registers a name twice.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import client from 'prom-client';

export const registry = client.register;

let defaultsCollected = false;
/** Process metrics (CPU, memory, event loop lag, GC); idempotent. */
export function collectDefaultMetrics(): void {
  if (defaultsCollected || registry.getSingleMetric('process_cpu_user_seconds_total')) { defaultsCollected = true; return; }
  defaultsCollected = true;
  // The event-loop lag histogram samples every 100 ms, not prom-client's 10: its timer was 100 of
  // an idle process's ≈ 140 wake-ups a second, in the primary and in every worker. Overload
  // control probes the loop on its own (src/engine/overload).
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
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

/** Always 1; the labels say which build answers (joined onto other series by dashboards). */
export const buildInfo = gauge('peergate_build_info', 'Always 1: the peergate version and Node.js runtime of this process', ['version', 'node']);
buildInfo.set({ version: packageVersion(), node: process.version }, 1);

/** Every INVITE by how it ended: refused, no_route, failed, canceled, caller_bye, callee_bye, error. */
export const callsTotal = counter('peergate_calls_total', 'INVITEs by peer, direction and how they ended', ['peer', 'direction', 'result']);
/** Established calls (both legs answered), not yet ended. */
export const activeCalls = gauge('peergate_active_calls', 'Established calls in progress by peer', ['peer']);
/** Requests received, by method. */
export const requestsTotal = counter('peergate_requests_total', 'SIP requests received by peer and method', ['peer', 'method']);
/**
 * Final responses sent to requests received outside a dialog (INVITE, OPTIONS, refused
 * methods), whether peergate made them or passed on a B-leg's, by class (2xx … 6xx).
 * Provisional and in-dialog responses are not counted: what an operator watches is how
 * requests end, and counting every relayed 180 would cost a hook per message for no alert.
 */
export const responsesTotal = counter('peergate_responses_total', 'Final responses to out-of-dialog requests, by peer and class', ['peer', 'class']);
/** Requests refused or dropped, by reason (unknown-source, method, transport, limits, identity, max-forwards, loop, …). */
export const refusalsTotal = counter('peergate_refusals_total', 'Requests refused or dropped by peer and reason', ['peer', 'reason']);
/** TLS handshakes, inbound and outbound: result = ok | failed | refused (a banned TLS identity). */
export const tlsHandshakesTotal = counter('peergate_tls_handshakes_total', 'TLS handshakes by result', ['result']);
/** Policy reloads: result = ok | error. */
export const policyReloadsTotal = counter('peergate_policy_reloads_total', 'Policy reloads by result', ['result']);
/** Unix time of the policy now in force. */
export const policyLoadedTimestamp = gauge('peergate_policy_loaded_timestamp_seconds', 'When the policy in force was loaded');
/** Time from INVITE received to final response sent to the caller (answered or failed). */
export const callSetupSeconds = histogram('peergate_call_setup_seconds', 'INVITE to final response', ['peer', 'direction'],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
/**
 * Post-dial delay, RFC 6076 §4.2 Session Request Delay: INVITE received to the first
 * response beyond 100 Trying (ringing, session progress or final) sent to the caller, for
 * INVITEs that were routed (refusals at the door are not dialling).
 */
export const postDialDelaySeconds = histogram('peergate_post_dial_delay_seconds', 'INVITE to first ringing, progress or final response (RFC 6076 SRD)', ['peer', 'direction'],
  [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30]);
/** Established call length: answer to the first BYE (RFC 6076 §4.8 Session Duration Time). */
export const callDurationSeconds = histogram('peergate_call_duration_seconds', 'Established call duration, answer to hang-up', ['peer', 'direction'],
  [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]);
/** Session limits of the policy in force, to put active calls against (`peer` = `global` for the whole SBE). */
export const sessionLimit = gauge('peergate_session_limit', 'Concurrent session limit of the policy in force, by peer (global: whole SBE or pool)', ['peer']);
// Known label values exported at 0 from the start: a counter that appears at 1 has no
// increase() in Prometheus, and its first failure would go unseen by an alert.
for (const result of ['ok', 'error']) policyReloadsTotal.inc({ result }, 0);
for (const result of ['ok', 'failed', 'refused']) tlsHandshakesTotal.inc({ result }, 0);

/** 1 while the B2BUA is connected to its SIP engine. */
export const engineConnected = gauge('peergate_engine_connected', '1 while the B2BUA is connected to the SIP engine');

/** B2BUA observer events that are only metrics (start.ts spreads this into its observer). */
export const callTimingObserver = {
  postDialDelay: (peer: string, direction: 'inbound' | 'outbound', seconds: number) => postDialDelaySeconds.observe({ peer, direction }, seconds),
  callDuration: (peer: string, direction: 'inbound' | 'outbound', seconds: number) => callDurationSeconds.observe({ peer, direction }, seconds),
};

/** `2xx` for 200: the responses_total class label. */
export function responseClass(status: number): string {
  return status >= 100 && status < 700 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** peergate's version from the nearest package.json named peergate (source tree or build). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'peergate' && pkg.version) return pkg.version;
      } catch { /* not ours: keep looking */ }
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
