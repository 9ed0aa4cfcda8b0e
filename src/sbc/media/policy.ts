// Media policy enforcement, done on the SDP before rtpengine is asked anything, and the
// translation of a side's policy into rtpengine ng options. Pure functions: no I/O.
//
// Terms: the *offerer* side sent the SDP offer, the *answerer* side will receive rtpengine's
// rewritten offer. A side's `srtp` setting describes its own leg:
//   required  — the leg is SRTP; a plain offer from it is a bid-down (stripped crypto) → 488
//   optional  — the leg follows the offer (SRTP if offered, plain if not)
//   forbidden — the leg is plain RTP; SRTP offers from it are refused
// A plain offer from a *peer* toward a side that requires SRTP is refused as well: that media
// would cross a peering link in clear. The own core is trusted to send plain RTP; peergate
// encrypts toward the peer on its behalf.
import {
  type Sdp, type MediaSection, attrs, cryptoLines, hasFingerprint, isActive, isDtlsProfile, isFeedbackProfile,
  isRtp, isSecureProfile, removeLines,
} from './sdp.js';
import type { SideMedia } from './schema.js';
import { RTPENGINE_SUITES } from './suites.js';

export type Side = 'peer' | 'core';

/** Bounded label set for peergate_media_refusals_total{reason}. */
export type RefusalReason =
  | 'bad_sdp'
  | 'srtp_required'
  | 'srtp_required_toward'
  | 'srtp_forbidden'
  | 'insecure_srtp_params'
  | 'no_allowed_suite'
  | 'no_keying'
  | 'dtls_required'
  | 'dtls_refused'
  | 'rtpengine_rejected'
  | 'no_rtpengine'
  | 'no_offer';

export interface MediaRefusal {
  ok: false;
  /** 488 Not Acceptable Here, 503 Service Unavailable (+ Retry-After), 500 for protocol misuse. */
  status: 488 | 503 | 500;
  reason: RefusalReason;
  /** A Warning header value (RFC 3261 §20.43) for the response. */
  warning: string;
  retryAfterS?: number;
}

/** How one leg's media is protected. */
export type Keying = 'plain' | 'sdes' | 'dtls';

// RFC 3261 §20.43 warn-codes: 302 incompatible transport protocol, 305 incompatible media format.
export function refuse(status: MediaRefusal['status'], reason: RefusalReason, text: string, warnCode = 399): MediaRefusal {
  return { ok: false, status, reason, warning: `${warnCode} peergate "${text.replace(/"/g, "'")}"` };
}

/** RFC 4568 §6.3.x session parameters that turn off part of SRTP's protection. */
const INSECURE_PARAMS = new Set(['UNENCRYPTED_SRTCP', 'UNENCRYPTED_SRTP', 'UNAUTHENTICATED_SRTP']);
const DTLS_ATTRS = ['fingerprint', 'setup', 'tls-id'];

function isDtlsAttr(line: string): boolean {
  for (const a of DTLS_ATTRS) if (line.startsWith(`a=${a}:`)) return true;
  return false;
}

function sections(sdp: Sdp): MediaSection[] {
  return sdp.media.filter((m) => isActive(m) && isRtp(m));
}

/** The keying of a media section as offered (after our own filtering). */
export function keyingOf(sdp: Sdp, m: MediaSection): Keying | 'none' {
  if (!isSecureProfile(m.proto)) return 'plain';
  if (isDtlsProfile(m.proto)) return 'dtls';
  if (cryptoLines(m).length > 0) return 'sdes';
  if (hasFingerprint(sdp, m)) return 'dtls';
  return 'none';
}

/** Keying of the whole SDP: that of its first active RTP section ('plain' when there is none). */
export function sdpKeying(sdp: Sdp): Keying {
  const first = sections(sdp)[0];
  if (!first) return 'plain';
  const k = keyingOf(sdp, first);
  return k === 'none' ? 'plain' : k;
}

function checkSessionParams(m: MediaSection): MediaRefusal | undefined {
  for (const c of cryptoLines(m)) {
    for (const p of c.sessionParams) {
      if (INSECURE_PARAMS.has(p)) return refuse(488, 'insecure_srtp_params', `SRTP session parameter ${p} refused: SRTP and SRTCP must be encrypted and authenticated`, 305);
    }
  }
  return undefined;
}

/**
 * Check an offer against both sides' policies. On success the SDP has been edited in place:
 * crypto lines with suites the offerer may not use and DTLS lines where DTLS is refused are gone.
 */
export function checkOffer(sdp: Sdp, from: Side, fromPolicy: SideMedia, toPolicy: SideMedia): MediaRefusal | undefined {
  const allowed = new Set<string>(fromPolicy.suites);
  for (const m of sections(sdp)) {
    const bad = checkSessionParams(m);
    if (bad) return bad;
    if (!isSecureProfile(m.proto)) {
      if (fromPolicy.srtp === 'required') return refuse(488, 'srtp_required', 'SRTP required: plain RTP offer refused', 302);
      if (from === 'peer' && toPolicy.srtp === 'required') return refuse(488, 'srtp_required_toward', 'SRTP required by the called side: plain RTP offer refused', 302);
      if (fromPolicy.dtls === 'required') return refuse(488, 'dtls_required', 'DTLS-SRTP required: plain RTP offer refused', 302);
      continue;
    }
    if (fromPolicy.srtp === 'forbidden') return refuse(488, 'srtp_forbidden', 'SRTP not allowed on this side: offer plain RTP', 302);
    const hadCrypto = cryptoLines(m).length > 0;
    const dtlsOffered = isDtlsProfile(m.proto) || hasFingerprint(sdp, m);
    if (isDtlsProfile(m.proto) && fromPolicy.dtls === 'refused') return refuse(488, 'dtls_refused', 'DTLS-SRTP refused on this side: offer SDES-SRTP', 302);
    // Suites outside the allowlist are removed, not refused: the offerer may still share one we accept.
    removeLines(m, (l) => {
      if (!l.startsWith('a=crypto:')) return false;
      const suite = l.split(' ', 2)[1] ?? '';
      return !allowed.has(suite) || fromPolicy.dtls === 'required';
    });
    if (fromPolicy.dtls === 'refused' && dtlsOffered) removeLines(m, isDtlsAttr);
    const keying = keyingOf(sdp, m);
    if (fromPolicy.dtls === 'required' && keying !== 'dtls') return refuse(488, 'dtls_required', 'DTLS-SRTP required: SDES-only offer refused', 302);
    if (keying === 'none') {
      if (hadCrypto) return refuse(488, 'no_allowed_suite', `no allowed SRTP crypto-suite offered (allowed: ${fromPolicy.suites.join(', ')})`, 305);
      if (dtlsOffered) return refuse(488, 'dtls_refused', 'DTLS-SRTP refused on this side: offer SDES-SRTP', 302);
      return refuse(488, 'no_keying', 'SRTP profile without SDES crypto or DTLS fingerprint', 302);
    }
  }
  if (fromPolicy.dtls === 'refused') sdp.session = sdp.session.filter((l) => !isDtlsAttr(l));
  return undefined;
}

/** Check an answer (from the side that received our offer) against that side's policy. */
export function checkAnswer(sdp: Sdp, answererPolicy: SideMedia): MediaRefusal | undefined {
  const allowed = new Set<string>(answererPolicy.suites);
  for (const m of sections(sdp)) {
    const bad = checkSessionParams(m);
    if (bad) return bad;
    const keying = keyingOf(sdp, m);
    if (keying === 'plain') {
      if (answererPolicy.srtp === 'required') return refuse(488, 'srtp_required', 'SRTP required: plain RTP answer refused', 302);
      if (answererPolicy.dtls === 'required') return refuse(488, 'dtls_required', 'DTLS-SRTP required: plain RTP answer refused', 302);
      continue;
    }
    if (answererPolicy.srtp === 'forbidden') return refuse(488, 'srtp_forbidden', 'SRTP not allowed on this side: answer plain RTP', 302);
    if (keying === 'none') return refuse(488, 'no_keying', 'SRTP profile without SDES crypto or DTLS fingerprint', 302);
    if (keying === 'sdes') {
      if (answererPolicy.dtls === 'required') return refuse(488, 'dtls_required', 'DTLS-SRTP required: SDES answer refused', 302);
      for (const c of cryptoLines(m)) {
        if (!allowed.has(c.suite)) return refuse(488, 'no_allowed_suite', `SRTP crypto-suite ${c.suite} not allowed`, 305);
      }
    } else if (answererPolicy.dtls === 'refused') {
      return refuse(488, 'dtls_refused', 'DTLS-SRTP refused on this side', 302);
    }
  }
  return undefined;
}

/** rtpengine ng options (beyond call-id, tags and sdp) for one command. */
export type NgOptions = Record<string, unknown>;

/** Flags on every offer and answer: learn the endpoint from the first packet and never move it. */
const SAFETY_FLAGS = ['strict-source', 'endpoint-learning-immediate'];
const REPLACE = ['origin', 'session-connection'];

function iceOption(p: SideMedia): string {
  // 'force': rtpengine discards the other side's candidates and offers only its own, so no
  // internal candidate address crosses.
  return p.ice === 'remove' ? 'remove' : 'force';
}

/** SDES options that leave only the suites a side allows. */
export function sdesOptions(p: SideMedia): string[] {
  const allowed = new Set<string>(p.suites);
  return RTPENGINE_SUITES.filter((s) => !allowed.has(s)).map((s) => `no-${s}`);
}

/** The keying the answerer side's leg gets for an offer of `offered` keying. */
export function towardKeying(offered: Keying, toPolicy: SideMedia): Keying {
  if (toPolicy.srtp === 'forbidden') return 'plain';
  if (toPolicy.srtp === 'optional' && offered === 'plain') return 'plain';
  return toPolicy.dtls === 'required' ? 'dtls' : 'sdes';
}

/** Options for an offer: how rtpengine must present the call toward the answerer side. */
export function offerOptions(offer: Sdp, fromPolicy: SideMedia, toPolicy: SideMedia): NgOptions {
  const first = sections(offer)[0];
  const feedback = first ? isFeedbackProfile(first.proto) : false;
  const toward = towardKeying(sdpKeying(offer), toPolicy);
  const o: NgOptions = { replace: REPLACE, ICE: iceOption(toPolicy), flags: SAFETY_FLAGS };
  if (toward === 'plain') {
    o['transport-protocol'] = feedback ? 'RTP/AVPF' : 'RTP/AVP';
  } else if (toward === 'dtls') {
    o['transport-protocol'] = feedback ? 'UDP/TLS/RTP/SAVPF' : 'UDP/TLS/RTP/SAVP';
    o.SDES = ['off'];
  } else {
    o['transport-protocol'] = feedback ? 'RTP/SAVPF' : 'RTP/SAVP';
    o.SDES = sdesOptions(toPolicy);
    if (toPolicy.dtls === 'refused') o.DTLS = 'off';
  }
  const strip = [...new Set([...fromPolicy.codecs.strip, ...toPolicy.codecs.strip])];
  if (strip.length > 0) o.codec = { strip };
  return o;
}

/** Options for an answer: how rtpengine presents it back toward the offerer side. */
export function answerOptions(offererPolicy: SideMedia): NgOptions {
  return { replace: REPLACE, ICE: iceOption(offererPolicy), flags: SAFETY_FLAGS };
}

/** Does an SDP, as it stands, satisfy both sides without rtpengine translating it (unanchored calls)? */
export function satisfiesWithoutAnchor(offer: Sdp, toPolicy: SideMedia): boolean {
  const k = sdpKeying(offer);
  if (k === 'plain') return toPolicy.srtp !== 'required' && toPolicy.dtls !== 'required';
  if (toPolicy.srtp === 'forbidden') return false;
  if (k === 'dtls') return toPolicy.dtls !== 'refused';
  if (toPolicy.dtls === 'required') return false;
  const allowed = new Set<string>(toPolicy.suites);
  return sections(offer).every((m) => cryptoLines(m).some((c) => allowed.has(c.suite)));
}

/** Names of codecs (rtpmap encoding names) in a section; used by tests and the docs' examples. */
export function codecNames(m: MediaSection): string[] {
  return attrs(m, 'rtpmap').map((l) => (l.split(' ', 2)[1] ?? '').split('/')[0] ?? '');
}
