// The SIP message model shared by the parser, the transaction layer and the wire server.
// Contract between modules: extend additively; do not rename fields others use.

/** One header field line. Multi-valued headers (Via, Route, Record-Route, Contact, and any
 *  comma-list header the parser knows) are split so that each value is its own field. */
export interface HeaderField {
  /** Canonical lower-case long form: compact forms expanded (`v` → `via`, `f` → `from`). */
  name: string;
  /** The name as it appeared on the wire (kept for faithful relaying). */
  raw: string;
  /** Value with folding (LWS CRLF) collapsed to one space, outer whitespace trimmed. */
  value: string;
}

interface SipMessageBase {
  headers: HeaderField[];
  /** Body bytes exactly as received (multipart bodies pass through untouched). */
  body: Buffer;
}

export interface SipRequest extends SipMessageBase {
  kind: 'request';
  /** Method token as received (case-sensitive per RFC 3261 §7.1). */
  method: string;
  /** Request-URI text exactly as received. */
  uri: string;
}

export interface SipResponse extends SipMessageBase {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

// Value types of the SIP grammar live with it (src/sip/grammar); re-exported for old callers.
export type { SipUri, NameAddr, Via, CSeq } from '../../sip/grammar/types.js';

/** Limits applied while parsing (RFC 6404 §4.11 hardening). */
export interface ParseLimits {
  maxMessageBytes: number;
  maxHeaders: number;
  maxHeaderBytes: number;
  maxUriBytes: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxMessageBytes: 65_535,
  maxHeaders: 128,
  maxHeaderBytes: 8_192,
  maxUriBytes: 2_048,
};

export type ParseResult =
  | { ok: true; message: SipMessage }
  | {
      ok: false;
      /** The reason phrase to answer with: fixed wording per status, never input text. */
      reason: string;
      /** What was wrong, for logs and metrics (input quoted in it is cut short); never sent. */
      error: string;
      /** Whether the failed message looked like a request (so a 400 may be sent) or a response (drop). */
      kind: 'request' | 'response' | 'unknown';
      /** Status to answer a request with: 400, 505 for another SIP version, or 413/414/513 where a limit was exceeded. */
      status: number;
      /** Best-effort headers recovered so that an error response can be built (Via, From, To, Call-ID, CSeq). */
      headers: HeaderField[];
    };
