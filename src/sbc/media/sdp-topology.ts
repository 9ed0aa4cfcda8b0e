// SDP topology hiding (issue #17.5, RFC 6404 §2.1 / RFC 5853 §3.1.2): the identity fields of an
// SDP body — who built it, on which host, with which product — never cross from one side of
// the interconnect to the other. Applied to every SDP peergate sends, after rtpengine (anchored)
// or alone (unanchored media, or no media stage at all).
//
// Contract:
// - `s=` becomes `s=-` (RFC 8866 §5.3: a dash when there is no meaningful name).
// - `i=`, `u=`, `e=`, `p=` and `a=tool:` are removed wherever they stand: all optional
//   (RFC 8866 §5), all free text that names people, hosts or products. A repeated o=/s=, or one
//   inside a media section, is removed too (only the first session-level one is rewritten).
// - `o=` becomes `o=- <sess-id> <sess-version> <nettype> <addrtype> <address>` where sess-id is
//   ours (random, per call and producing side), sess-version is ours and monotonic per
//   producing side of the call (RFC 3264 §8: +1 exactly when the body changes, unchanged for
//   an identical re-offer), and the address is the body's own session connection address
//   (session `c=`, else the first media `c=`). RFC 8866 §5.2 only asks that the o= tuple be
//   unique, which our sess-id makes it; copying the c= address reveals nothing the body does
//   not already carry, and keeps whatever address family the receiver expects.
// - `c=` and `m=` lines, `a=rtcp`, `a=candidate` are left alone here: anchored, rtpengine has
//   replaced them with its own; unanchored, media flows directly and they must stay true.
import { randomBytes } from 'node:crypto';
import { parseSdp, writeSdp, type Sdp } from './sdp.js';
import { flat } from '../../flat-string.js';
import type { MediaArgs, MediaStage } from '../stages.js';

/** One producing side's origin as the other side sees it; a call's origins are a short list
 *  (two producers, sometimes more), kept for the call's life: numbers rather than strings, and
 *  no Map per call (issue #18 item 5). */
class Origin {
  version = 1;
  /** The digest (bodyDigest) of the last body sent in this direction, o= line excluded: a change
   *  bumps the version. A digest, not the body; -1: none yet. */
  last = -1;
  constructor(readonly producer: string, readonly sessId: number, readonly next: Origin | undefined) {}
}

const DROP_SESSION = /^(?:[iuep]=|a=tool:)/;
// o= and s= are session-level only (RFC 8866 §5): one misplaced in a media section is dropped
// rather than let through unrewritten.
const DROP_MEDIA = /^(?:[iuepos]=|a=tool:)/;

// randomBytes per call was a visible share of the CPU per call (a synchronous OpenSSL call
// each time): draw random bits in batches and hand them out 6 bytes at a time.
const SESS_ID_BATCH = 6 * 512;
let sessIdPool = Buffer.alloc(0);
let sessIdAt = SESS_ID_BATCH;

function newSessId(): number {
  if (sessIdAt >= SESS_ID_BATCH) { sessIdPool = randomBytes(SESS_ID_BATCH); sessIdAt = 0; }
  // 48 random bits (written in decimal): unique enough, and safely inside every parser's integer.
  const id = sessIdPool.readUIntBE(sessIdAt, 6);
  sessIdAt += 6;
  return id;
}

/**
 * 48 bits that tell one body from the next, o= line (index `skip`) left out: two FNV-1a lanes
 * over the lines' UTF-16 units, each line ended by a separator. It only has to see a change
 * between two bodies of the same side of one call (RFC 3264 §8); a peer that forged a body with
 * the previous one's digest would only keep its own change from being announced. Replaces the
 * SHA-1 of the body rewritten without o=: no second copy of the body, no OpenSSL call per SDP.
 */
export function bodyDigest(sdp: Sdp, skip: number): number {
  let a = 0x811c9dc5, b = 0x01000193 ^ 0x5bd1e995;
  const lane = (l: string): void => {
    for (let i = 0; i < l.length; i++) {
      const c = l.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    a = Math.imul(a ^ 0x0a, 0x01000193);
    b = Math.imul(b ^ 0x0a, 0x5bd1e995);
  };
  for (let i = 0; i < sdp.session.length; i++) if (i !== skip) lane(sdp.session[i]!);
  for (const m of sdp.media) for (const l of m.lines) lane(l);
  b ^= b >>> 15;
  return (a >>> 0) * 0x10000 + (b & 0xffff);
}

/** The connection address the body itself announces: `[nettype, addrtype, address]`. */
function connection(sdp: Sdp): [string, string, string] {
  let c = sdp.session.find((l) => l.startsWith('c='));
  for (let i = 0; c === undefined && i < sdp.media.length; i++) c = sdp.media[i]!.lines.find((l) => l.startsWith('c='));
  const parts = c?.slice(2).split(' ');
  if (!parts || parts.length < 3 || !parts[2]) return ['IN', 'IP4', '0.0.0.0'];
  return [parts[0]!, parts[1]!, parts[2].split('/')[0]!];
}

/** Remove identity lines and blank `s=`, in place. Does not touch o= (see SdpOrigins.stamp). */
export function stripIdentity(sdp: Sdp): void {
  const session: string[] = [];
  let origin = false, name = false;
  for (const l of sdp.session) {
    if (DROP_SESSION.test(l)) continue;
    // A repeated o= or s= would cross unrewritten: only the first of each is kept.
    if (l.startsWith('o=')) { if (origin) continue; origin = true; }
    if (l.startsWith('s=')) { if (name) continue; name = true; session.push('s=-'); continue; }
    session.push(l);
  }
  if (!name) {
    // RFC 8866 §5 requires s= right after o=: a body without one gets ours.
    const o = session.findIndex((l) => l.startsWith('o='));
    session.splice(o + 1, 0, 's=-');
  }
  sdp.session = session;
  for (const m of sdp.media) m.lines = [m.lines[0]!, ...m.lines.slice(1).filter((l) => !DROP_MEDIA.test(l))];
}

/**
 * The o= identities peergate presents for each call: one per (call, producing side), forgotten
 * at `end`. A producing side is a leg tag (`A`/`B`, or rtpengine's from-tag/to-tag).
 */
export class SdpOrigins {
  /** Per call, its producers' origins (the latest first). */
  private readonly calls = new Map<string, Origin>();

  /** Hide the identity fields of `sdp` (in place) as the body `producer` sends in `callId`. */
  hide(callId: string, producer: string, sdp: Sdp): Sdp {
    stripIdentity(sdp);
    const first = this.calls.get(callId);
    let origin = first;
    while (origin !== undefined && origin.producer !== producer) origin = origin.next;
    if (!origin) { origin = new Origin(flat(producer), newSessId(), first); this.calls.set(callId, origin); }
    const oIdx = sdp.session.findIndex((l) => l.startsWith('o='));
    const withoutOrigin = bodyDigest(sdp, oIdx);
    if (origin.last !== -1 && origin.last !== withoutOrigin) origin.version++;
    origin.last = withoutOrigin;
    const [net, type, addr] = connection(sdp);
    const line = `o=- ${origin.sessId} ${origin.version} ${net} ${type} ${addr}`;
    if (oIdx >= 0) sdp.session[oIdx] = line; else sdp.session.splice(1, 0, line);
    return sdp;
  }

  /** Convenience for a body as text; throws SdpError if it does not parse. */
  hideText(callId: string, producer: string, text: string): string {
    return writeSdp(this.hide(callId, producer, parseSdp(text)));
  }

  end(callId: string): void {
    this.calls.delete(callId);
  }

  /** Calls with origin state (for leak tests). */
  get size(): number { return this.calls.size; }
}

/**
 * The media seam when media is not anchored at all (`media.anchoring: false`): no rtpengine,
 * c=/m= cross unchanged (media flows directly), only the identity fields are rewritten.
 * A body that does not parse is refused 488 like the anchored stage does.
 */
export function unanchoredSdpSeam(origins = new SdpOrigins()): MediaStage {
  const rewrite = (a: MediaArgs): { ok: true; sdp: string } | { ok: false; refusal: { status: number; reason: string; label: string; warning: string } } => {
    try {
      return { ok: true, sdp: origins.hideText(a.callId, a.leg, a.sdp) };
    } catch {
      return { ok: false, refusal: { status: 488, reason: 'Not Acceptable Here', label: 'bad_sdp', warning: 'malformed SDP' } };
    }
  };
  return {
    offer: (a) => Promise.resolve(((r) => (r.ok ? { ...r, anchored: false } : r))(rewrite(a))),
    answer: (a) => Promise.resolve(rewrite(a)),
    end: (callId) => { origins.end(callId); return Promise.resolve(); },
  };
}
