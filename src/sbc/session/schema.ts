// Policy schema fragments for the life of an established call (issue #16.2: nothing holds a
// slot for ever). Owned by src/sbc/session; composed into the root schema by src/policy/schema.ts.
import { z } from 'zod';

/** Four hours: longer than any real call on a peering interconnect, short enough to free a lost slot the same day. */
export const DEFAULT_MAX_DURATION_S = 4 * 3600;

/** RFC 4028 session timers, as peergate applies them on each leg. */
export const SessionTimerSchema = z.strictObject({
  /**
   * Session-Expires peergate asks for when it refreshes a leg itself (a side that asked for
   * timers keeps its own interval). RFC 4028 §4: at least Min-SE; 1800 s is the RFC's default.
   */
  expires_s: z.number().int().min(90).max(86_400).default(1800),
  /** Our Min-SE (RFC 4028 §5): a request asking for less gets 422 with this value. At least 90. */
  min_se_s: z.number().int().min(90).max(86_400).default(90),
  /**
   * How peergate refreshes a leg whose side asked for no session timer: `update` (RFC 3311,
   * no SDP; re-INVITE toward a side that does not allow UPDATE), `reinvite`, or `off` (such a
   * leg is only ended by max_duration, media inactivity or reconciliation).
   */
  refresh: z.enum(['update', 'reinvite', 'off']).default('update'),
}).refine((t) => t.expires_s >= t.min_se_s, { message: 'expires_s must be at least min_se_s', path: ['expires_s'] });

/** Top-level `sessions`. */
export const GlobalSessionsSchema = z.strictObject({
  /** Longest a call may last, seconds (0 = no limit); peers[].sessions.max_duration_s overrides it. */
  max_duration_s: z.number().int().min(0).max(7 * 86_400).default(DEFAULT_MAX_DURATION_S),
  session_timer: SessionTimerSchema.prefault({}),
  /**
   * End a call when rtpengine has seen no media on it for this long, seconds (0 = never).
   * Only calls anchored on rtpengine are checked.
   */
  media_timeout_s: z.number().int().min(0).max(86_400).default(60),
  /** How often every call is checked against its dialogs and its media, seconds. */
  reconcile_interval_s: z.number().int().min(1).max(3600).default(15),
});

/** Per-peer `sessions` (peers[].sessions): overrides of the global values for calls with this peer. */
export const PeerSessionsSchema = z.strictObject({
  max_duration_s: z.number().int().min(0).max(7 * 86_400).optional(),
  media_timeout_s: z.number().int().min(0).max(86_400).optional(),
});

export type GlobalSessions = z.infer<typeof GlobalSessionsSchema>;
export type PeerSessions = z.infer<typeof PeerSessionsSchema>;
export type SessionTimerPolicy = z.infer<typeof SessionTimerSchema>;
