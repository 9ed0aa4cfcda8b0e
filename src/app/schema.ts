// Policy keys of the process lifecycle (drain on SIGTERM) and of TLS material freshness.
// Hooked into src/policy/schema.ts; documented in docs/policy.md.
import { z } from 'zod';

export const LifecycleSchema = z.strictObject({
  /**
   * How long a drain (SIGTERM, POST /admin/drain) waits for calls to end by themselves; then
   * the remaining calls get BYE on both legs. 0 ends them at once. Keep it below systemd's
   * TimeoutStopSec and Kubernetes' terminationGracePeriodSeconds (docs/operations.md).
   */
  drain_timeout_s: z.number().int().min(0).max(86_400).default(15),
  /** Retry-After on the 503 a new INVITE gets while this node drains. */
  retry_after_s: z.number().int().min(1).max(3600).default(30),
});

/**
 * A CRL past its nextUpdate: `refuse` keeps it loaded and OpenSSL refuses every client of that
 * CA (CRL_HAS_EXPIRED); `serve` accepts those clients while the stale CRL still lists the
 * revoked ones. Either way it is logged and `peergate_tls_crl_stale` says so.
 */
export const StaleCrlSchema = z.enum(['refuse', 'serve']).default('refuse');

/**
 * Seconds between two rechecks of the TLS material: a CRL that passed its nextUpdate is flagged
 * then, and files changed on disk without a file-system event (a Kubernetes Secret's symlink
 * swap, a network file system) are re-read and applied as a reload would.
 */
export const TlsRecheckSchema = z.number().int().min(1).max(86_400).default(60);

export type Lifecycle = z.infer<typeof LifecycleSchema>;
