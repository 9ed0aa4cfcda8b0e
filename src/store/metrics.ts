// Store metrics in prom-client's default registry (scraped by /metrics in src/ops).
import { Counter, Gauge, register } from 'prom-client';

// Re-registering a name throws; a module may be evaluated more than once (tests, hot reload),
// so reuse a metric that already exists.
function gauge(name: string, help: string, labelNames: string[]): Gauge {
  return (register.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, labelNames });
}
function counter(name: string, help: string, labelNames: string[]): Counter {
  return (register.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames });
}

/** 1 while the shared store answers, 0 while it does not. */
export const storeUp = gauge('peergate_store_up', 'Shared state store reachable (1) or not (0)', ['kind']);
/** Store calls that failed or timed out, by operation. */
export const storeErrors = counter('peergate_store_errors_total', 'Shared state store calls that failed or timed out', ['kind', 'op']);
/** Calls served by the local fallback while the shared store was down (on_failure: fail_open). */
export const storeFallbacks = counter('peergate_store_fallback_total', 'Store calls served locally while the shared store was down', ['op']);
