// The overload gate's 503, from a template: the status line and the tail (Retry-After,
// Content-Length) are one string each, made once; a refusal only joins the request's own values.
//
// Why: at 3× overload the primary refuses two INVITEs of every three; OutMessage (core/outgoing.ts)
// ranks and sorts its headers for every message. The bytes are the same as OutMessage's for
// these headers (sofia-sip's order: Via, From, To, Call-ID, CSeq, Retry-After, Content-Length;
// refusal.test.ts checks it).
import { REASONS } from '../core/build.js';

export class RefusalTemplate {
  private readonly start: string;
  private readonly tail: string;

  /** `retryAfter`: the Retry-After value (seconds), or undefined to leave it out. */
  constructor(retryAfter: string | undefined) {
    this.start = `SIP/2.0 503 ${REASONS[503] ?? 'Service Unavailable'}\r\n`;
    this.tail = `${retryAfter !== undefined ? `Retry-After: ${retryAfter}\r\n` : ''}Content-Length: 0\r\n\r\n`;
  }

  /** The 503 to a request with these Vias (top one stamped) and headers; `to` carries our tag. */
  render(vias: readonly string[], from: string, to: string, callId: string, cseq: string): Buffer {
    let s = this.start;
    for (let i = 0; i < vias.length; i++) s += `Via: ${vias[i]!}\r\n`;
    s += `From: ${from}\r\nTo: ${to}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq}\r\n${this.tail}`;
    return Buffer.from(s, 'utf8');
  }
}
