// The seam between the call flow (b2bua.ts) and call records: the B2BUA opens a trace when an
// INVITE has been attributed and reports what it learns along the way; whatever is on the other
// side (src/sbc/cdr/record.ts, or nothing) turns traces into records. Every method is cheap and
// never throws into the call flow.
import type { TlsIdentity } from '../peers.js';

/** Who ended a call. */
export type EndedBy = 'caller' | 'callee' | 'peergate';

export interface CallStart {
  /** peergate's own call id (the `call` field of log lines, rtpengine's call id). */
  id: string;
  /** The caller's Call-ID as received; kept as given for the call's life, so a flat copy (src/flat-string.ts). */
  callId: string;
  /** The peer on the far side of the interconnect (`none` until routing picks one for core calls). */
  peer: string;
  direction: 'inbound' | 'outbound';
  /** From user part (the calling number) and Request-URI user part (the called number). */
  calling: string;
  called: string;
  source: { address: string; port: number };
  /** udp | tcp | tls, as received. */
  transport: string;
  /** The verified TLS client certificate, when the caller came over mutual TLS. */
  tls: TlsIdentity | null;
}

/** What verification said about the caller identity: `verdict` pass | fail | none, with verstat. */
export interface IdentityVerdict {
  verdict: string;
  verstat?: string;
  attest?: string;
  standard?: string;
}

export interface CallAnswer {
  /** The called leg's Call-ID; kept for the call's life as given, so a flat copy (src/flat-string.ts). */
  bCallId?: string;
  target: string;
  /** rtpengine relays the media (the SDP was rewritten). */
  anchored: boolean;
  /** The SDP each leg ended up with (answer to the caller, answer from the callee): SRTP or not. */
  sdpA?: string;
  sdpB?: string;
}

export interface CallEnd {
  /** calls_total result: answered calls end with caller_bye / callee_bye / an ending reason. */
  result: string;
  /** Peer as finally known (core → peer calls learn it at routing). */
  peer?: string;
  /** Final status sent to the caller (200 for an answered call). */
  status?: number;
  endedBy?: EndedBy;
  /** Why, in peergate's words: bye, cancel, refusal label, no_answer, drain, max_duration … */
  reason?: string;
}

/** One call's trace; `ended` is final (later calls are ignored). */
export interface CallTrace {
  identity(v: IdentityVerdict): void;
  /** A B-leg INVITE left for `target` with this Call-ID (the last one wins). */
  bLeg(callId: string, target: string): void;
  answered(a: CallAnswer): void;
  ended(e: CallEnd): void;
}

export interface CallRecorder {
  begin(start: CallStart): CallTrace;
}

const noTrace: CallTrace = { identity() {}, bLeg() {}, answered() {}, ended() {} };
/** The recorder when no call records are configured. */
export const noCallRecorder: CallRecorder = { begin: () => noTrace };

// ---------- helpers that keep the call flow's reporting to one line each

/** A drachtio dialog's Call-ID (dialog.sip.callId). */
export function dialogCallId(d: unknown): string | undefined {
  return (d as { sip?: { callId?: string } }).sip?.callId;
}

/** How a refusal ends a call. */
export function refusalEnd(r: { status: number; label: string }): Omit<CallEnd, 'result' | 'peer'> {
  return { status: r.status, endedBy: 'peergate', reason: r.label };
}

/** The answer as the two drachtio dialogs know it: A-leg (uas) local SDP, B-leg (uac) remote SDP. */
export function answerOf(target: string, anchored: boolean, uas: unknown, uac: unknown): CallAnswer {
  const bCallId = dialogCallId(uac);
  const sdpA = (uas as { local?: { sdp?: string } }).local?.sdp;
  const sdpB = (uac as { remote?: { sdp?: string } }).remote?.sdp;
  return { target, anchored, ...(bCallId ? { bCallId } : {}), ...(sdpA ? { sdpA } : {}), ...(sdpB ? { sdpB } : {}) };
}

/** The identity stage's verification result, when it reports one (IdentityOutcomeWithResult). */
export function identityVerdictOf(outcome: object): IdentityVerdict | undefined {
  const v = (outcome as { result?: { verdict: string; verstat?: string; attest?: string; standard?: string } }).result;
  if (!v) return undefined;
  return { verdict: v.verdict, ...(v.verstat ? { verstat: v.verstat } : {}), ...(v.attest ? { attest: v.attest } : {}), ...(v.standard ? { standard: v.standard } : {}) };
}
