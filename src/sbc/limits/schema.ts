// Policy schema fragments for overload control (issue: limits). Owned by src/sbc/limits;
// composed into the root policy schema by src/policy/schema.ts.
import { z } from 'zod';

/** Per-peer limits (peers[].limits). */
export const PeerLimitsSchema = z.strictObject({
  /** Packets per second per source address, enforced before parsing. */
  per_source_pps: z.number().int().positive().optional(),
  /** INVITE attempts per second for the peer, and the bucket's burst. */
  cps: z.number().positive().optional(),
  /** Call attempts the peer may send at once above `cps` (default: one second's worth). */
  burst: z.number().int().positive().optional(),
  /** Concurrent sessions for the peer across the pool. */
  sessions: z.number().int().positive().optional(),
  /**
   * RFC 4412 Resource-Priority namespaces (e.g. `ets`, `wps`, `esnet`) trusted from this peer:
   * such calls get the priority treatment (limits.priority); values in other namespaces are
   * removed before the call leaves.
   */
  resource_priority: z.array(z.string().regex(/^[A-Za-z0-9!%'*+\-._`~]+$/, 'a Resource-Priority namespace is a token, e.g. ets')
    .transform((s) => s.toLowerCase())).default([]),
});

/** Calls limits never deny (RFC 6404 §4.9): emergency numbers and trusted Resource-Priority. */
export const PrioritySchema = z.strictObject({
  /** Called numbers (Request-URI user part, compared on digits, + * #) that are emergency calls; urn:service:sos always is. */
  emergency_numbers: z.array(z.string().regex(/[0-9*#]/, 'an emergency number needs at least one digit')).default([]),
  /**
   * Share of each limit reserved for priority calls above it: with sessions 100 and 0.1, priority
   * calls are admitted up to 110 sessions (ordinary ones up to 100); the call rate likewise gets
   * a separate bucket of cps × share. 0: priority calls get no more than ordinary ones.
   */
  reserved_share: z.number().min(0).max(1).default(0.1),
  /** Priority calls from peers with identity: required pass without a valid Identity (verified when present). */
  identity_exempt: z.boolean().default(false),
});

/** Reputation (RFC 5765 §5.1.2): strikes within a window ban the source for a while. */
export const StrikesSchema = z.strictObject({
  /** Strikes (malformed messages, refused requests, TLS handshake and identity failures) that ban. */
  threshold: z.number().int().positive().default(20),
  window_s: z.number().positive().default(60),
  ban_s: z.number().positive().default(600),
  /**
   * Whether strikes may ban the address of a configured peer that sends over UDP. A UDP source
   * address is spoofed at no cost, so by default such a ban is withheld (an alert and
   * peergate_engine_shield_bans_withheld_total instead): an attacker cannot cut a peer off by
   * sending garbage in its name. Peers that must use TCP/TLS stay bannable.
   */
  ban_peers: z.boolean().default(false),
  /**
   * Whether strikes from a connection with a verified TLS client certificate count against that
   * certificate (banned by its fingerprint: its connections closed, its handshakes refused)
   * rather than against the source address, which NAT or a shared SBE may give to other peers.
   */
  by_tls_identity: z.boolean().default(true),
});

/** Global limits (top-level `limits`). */
export const GlobalLimitsSchema = z.strictObject({
  /** Concurrent sessions for the whole SBE (or pool, with Redis). */
  sessions: z.number().int().positive().optional(),
  /** Packets per second per source address for sources that match no peer. */
  per_source_pps: z.number().int().positive().optional(),
  /** Emergency and Resource-Priority calls (see PrioritySchema). */
  priority: PrioritySchema.prefault({}),
  /** Omit to never ban automatically. */
  strikes: StrikesSchema.optional(),
  /**
   * A session's slot expires this long after its node last kept it alive (the node refreshes
   * every third of it): the time a crashed node's capacity takes to return.
   */
  session_ttl_s: z.number().positive().max(3600).default(30),
  /** Retry-After (s) on 503 for a session limit or an unavailable store (cps computes its own). */
  retry_after_s: z.number().int().positive().default(5),
});

export type PeerLimits = z.infer<typeof PeerLimitsSchema>;
export type GlobalLimits = z.infer<typeof GlobalLimitsSchema>;
export type Strikes = z.infer<typeof StrikesSchema>;
export type Priority = z.infer<typeof PrioritySchema>;
