// Call records: one JSON object per call, built from the B2BUA's trace (events.ts) and handed
// to the sinks when the call ends, however it ends. The field names are the record's public
// format (docs/operations.md "Call records"); add fields, never rename them.
import { flat } from '../../flat-string.js';
import type { CallAnswer, CallEnd, CallRecorder, CallStart, CallTrace, EndedBy, IdentityVerdict } from './events.js';

export interface CallRecord {
  /** Format version. */
  v: 1;
  /** The node that handled the call (a pool's records share one stream). */
  node?: string;
  /** peergate's own call id (the `call` field of its log lines). */
  id: string;
  /** The caller's Call-ID as received. */
  call_id: string;
  /** The called leg's Call-ID (null when no B-leg was sent). */
  b_call_id: string | null;
  peer: string;
  direction: 'inbound' | 'outbound';
  calling: string;
  called: string;
  /** address:port the INVITE came from ([v6]:port). */
  source: string;
  transport: string;
  tls_identity: { subject: string; fingerprint256: string; san: string[] } | null;
  target: string | null;
  setup_time: string;
  answer_time: string | null;
  end_time: string;
  /** Answer to end, seconds (0 for a call never answered). */
  duration_s: number;
  /** INVITE to answer, or to the final failure response, seconds. */
  setup_s: number;
  /** Final status the caller got (200 when answered). */
  status: number;
  result: string;
  ended_by: EndedBy;
  end_reason: string;
  identity: IdentityVerdict | null;
  media: { anchored: boolean; srtp_a: boolean; srtp_b: boolean };
}

const DEFAULT_END: Record<string, { by: EndedBy; reason: string; status: number }> = {
  caller_bye: { by: 'caller', reason: 'bye', status: 200 },
  callee_bye: { by: 'callee', reason: 'bye', status: 200 },
  canceled: { by: 'caller', reason: 'cancel', status: 487 },
  refused: { by: 'peergate', reason: 'refused', status: 403 },
  no_route: { by: 'peergate', reason: 'no_route', status: 404 },
  failed: { by: 'callee', reason: 'failed', status: 480 },
  error: { by: 'peergate', reason: 'internal_error', status: 500 },
};

// m= lines with a secure profile (RFC 3711 SAVP, RFC 5124 SAVPF, RFC 5764 DTLS-SRTP).
const SRTP_PROFILE = /^m=\S+ \d+(?:\/\d+)? (?:RTP\/SAVPF?|UDP\/TLS\/RTP\/SAVPF?)(?:\s|$)/m;

/** Whether an SDP carries SRTP media (secure transport profile on an m= line). */
export function sdpIsSrtp(sdp: string | undefined): boolean {
  return sdp !== undefined && SRTP_PROFILE.test(sdp);
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

const MEDIA_ANCHORED = 1, MEDIA_SRTP_A = 2, MEDIA_SRTP_B = 4;

/** Turns traces into records and gives each finished record to `emit` (exactly once per call). */
export class CallRecords implements CallRecorder {
  /** `wanted`: whether anyone takes records now (no sink configured: the record is not even built). */
  constructor(readonly emit: (r: CallRecord) => void, readonly opts: { node?: string; now?: () => number; wanted?: () => boolean } = {}) {}

  begin(start: CallStart): CallTrace {
    return new RecordTrace(this, start);
  }
}

/**
 * One call's trace. An object with the few values the record needs, not closures over the
 * call flow: it lives as long as the call, so it keeps flat copies of its strings and the
 * answer's SRTP verdicts rather than the SDP bodies (issue #18 item 5, src/flat-string.ts).
 */
class RecordTrace implements CallTrace {
  /** The start without `source`, which is kept as the record writes it (`source` below). */
  private readonly start: Omit<CallStart, 'source'>;
  /** address:port, as the record's `source` field. */
  private readonly source: string;
  private readonly setupAt: number;
  private answeredAt: number | undefined;
  private verdict: IdentityVerdict | null = null;
  private bCallId: string | null = null;
  private target: string | null = null;
  /** The record's `media` flags as bits (MEDIA_*): made into the object when the record is. */
  private media = 0;
  private done = false;

  /** `start.callId` is kept as given: the B2BUA passes the flat copy its call keeps anyway. */
  constructor(private readonly records: CallRecords, start: CallStart) {
    const { source, ...rest } = start;
    this.start = { ...rest, calling: flat(start.calling), called: flat(start.called) };
    this.source = flat(hostPort(source.address, source.port));
    this.setupAt = this.now();
  }

  private now(): number { return (this.records.opts.now ?? Date.now)(); }

  identity(v: IdentityVerdict): void { this.verdict = { ...v }; }

  bLeg(callId: string, target: string): void { this.bCallId = flat(callId); this.target = target; }

  answered(a: CallAnswer): void {
    if (this.done || this.answeredAt !== undefined) return;
    this.answeredAt = this.now();
    this.media = (a.anchored ? MEDIA_ANCHORED : 0) | (sdpIsSrtp(a.sdpA) ? MEDIA_SRTP_A : 0) | (sdpIsSrtp(a.sdpB) ? MEDIA_SRTP_B : 0);
    // Kept as given: the B2BUA passes the flat copy the B-leg dialog keeps too (slim-dialog.ts).
    if (a.bCallId) this.bCallId = a.bCallId;
    this.target = a.target;
  }

  ended(e: CallEnd): void {
    if (this.done) return;
    this.done = true;
    const { opts } = this.records;
    if (opts.wanted && !opts.wanted()) return;
    const { start, answeredAt, setupAt } = this;
    const endAt = this.now();
    const d = DEFAULT_END[e.result] ?? { by: 'peergate' as const, reason: e.result, status: answeredAt !== undefined ? 200 : 500 };
    const record: CallRecord = {
      v: 1,
      ...(opts.node !== undefined ? { node: opts.node } : {}),
      id: start.id,
      call_id: start.callId,
      b_call_id: this.bCallId,
      peer: e.peer ?? start.peer,
      direction: start.direction,
      calling: start.calling,
      called: start.called,
      source: this.source,
      transport: start.transport,
      tls_identity: start.tls ? { subject: start.tls.subject, fingerprint256: start.tls.fingerprint256, san: [...start.tls.subjectAltNames] } : null,
      target: this.target,
      setup_time: new Date(setupAt).toISOString(),
      answer_time: answeredAt !== undefined ? new Date(answeredAt).toISOString() : null,
      end_time: new Date(endAt).toISOString(),
      duration_s: answeredAt !== undefined ? (endAt - answeredAt) / 1000 : 0,
      setup_s: ((answeredAt ?? endAt) - setupAt) / 1000,
      status: e.status ?? (answeredAt !== undefined ? 200 : d.status),
      result: e.result,
      ended_by: e.endedBy ?? d.by,
      end_reason: e.reason ?? d.reason,
      identity: this.verdict,
      media: { anchored: (this.media & MEDIA_ANCHORED) !== 0, srtp_a: (this.media & MEDIA_SRTP_A) !== 0, srtp_b: (this.media & MEDIA_SRTP_B) !== 0 },
    };
    this.records.emit(record);
  }
}
