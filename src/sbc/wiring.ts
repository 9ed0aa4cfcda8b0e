// Adapters from the stage modules to the call flow's seams (stages.ts). They translate
// names only; the decisions stay in the stage modules.
import type { MediaStage as RtpMediaStage } from './media/index.js';
import type { Policy } from '../policy/schema.js';
import type { MediaStage, Side, Refusal, MediaArgs } from './stages.js';

function mediaPolicyOf(policy: Policy, side: Side) {
  return side.kind === 'core' ? policy.core.media : side.peer.media;
}

function refusalOf(r: { status: number; reason: string; warning: string; retryAfterS?: number }): Refusal {
  // The media module's warning is a whole Warning value (`399 peergate "…"`); keep only its text.
  const text = /"(.*)"/.exec(r.warning)?.[1] ?? r.reason;
  return { status: r.status, reason: r.status === 488 ? 'Not Acceptable Here' : r.status === 503 ? 'Service Unavailable' : 'Server Internal Error', label: r.reason, warning: text, ...(r.retryAfterS !== undefined ? { retryAfterS: r.retryAfterS } : {}) };
}

/**
 * rtpengine sees one call per B2BUA call (our own call id, never a network Call-ID) with
 * one tag per leg, `A` (caller) and `B` (called).
 */
export function mediaSeam(stage: RtpMediaStage): MediaStage {
  const other = (leg: 'A' | 'B') => (leg === 'A' ? 'B' : 'A');
  // Calls whose first offer was answered: later offers are re-offers and name the other tag.
  const answered = new Set<string>();
  return {
    async offer(a: MediaArgs) {
      const r = await stage.offer({
        callId: a.callId, fromTag: a.leg, ...(answered.has(a.callId) ? { toTag: other(a.leg) } : {}), sdp: a.sdp,
        from: a.from.kind, fromPolicy: mediaPolicyOf(a.policy, a.from), toPolicy: mediaPolicyOf(a.policy, a.to),
      });
      return r.ok ? { ok: true as const, sdp: r.sdp, anchored: r.anchored } : { ok: false as const, refusal: refusalOf(r) };
    },
    async answer(a: MediaArgs) {
      // The answer answers the other leg's offer: from-tag is the offerer's leg.
      const r = await stage.answer({ callId: a.callId, fromTag: other(a.leg), toTag: a.leg, sdp: a.sdp });
      if (r.ok) answered.add(a.callId);
      return r.ok ? { ok: true as const, sdp: r.sdp } : { ok: false as const, refusal: refusalOf(r) };
    },
    activity: (callId: string) => stage.activity(callId),
    async end(callId: string) {
      answered.delete(callId);
      await stage.delete(callId);
    },
  };
}
