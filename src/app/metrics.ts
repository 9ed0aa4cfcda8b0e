// Metrics of the process lifecycle: reload outcomes, keys waiting for a restart, TLS material
// freshness and the drain.
import { counter, gauge } from '../ops/metrics.js';

export const restartNeeded = gauge('peergate_policy_restart_needed', 'Policy keys changed since start that only a restart applies (1 per key)', ['key']);
export const tlsReloadsTotal = counter('peergate_tls_reloads_total', 'TLS material (certificate, key, client CAs, CRLs) reloads by result', ['result']);
export const crlStale = gauge('peergate_tls_crl_stale', '1 while a loaded CRL is past its nextUpdate', ['file']);
export const draining = gauge('peergate_draining', '1 while this node drains (refuses new calls, ends when the last call ends)');
