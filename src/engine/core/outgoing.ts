// Building SIP messages the engine sends: headers sorted the way drachtio-server's stack
// (sofia-sip) writes them, so that apps and golden traces see the same layout.
import type { HeaderField, SipRequest } from '../message/types.js';
import { headerRank, headerSpelling, UNKNOWN_RANK } from './headers.js';

/** Scratch for render(), shared: one message renders at a time (synchronously), so one order
 *  array and one parts list serve every message, and rendering allocates only its result. */
let order = new Int32Array(32);
const parts: string[] = [];

export class OutMessage {
  private readonly ranks: number[] = [];
  /** The headers as fields, in insertion order (what the transaction layer reads). */
  readonly fields: HeaderField[] = [];

  /** Add a header; `lower` is the canonical lower-case name, `spelling` how to write it when unknown. */
  add(lower: string, value: string, spelling: string = lower): this {
    this.ranks.push(headerRank(lower));
    this.fields.push({ name: lower, raw: headerSpelling(spelling, lower), value });
    return this;
  }

  /** The message model of a request rendered from this (the layer builds its CANCEL/ACK from it). */
  asRequest(method: string, uri: string, body: Buffer): SipRequest {
    return { kind: 'request', method, uri, headers: this.fields, body };
  }

  has(lower: string): boolean {
    const rank = headerRank(lower);
    if (rank === UNKNOWN_RANK) {
      const name = headerSpelling(lower, lower).toLowerCase();
      return this.fields.some((f) => f.raw.toLowerCase() === name);
    }
    return this.ranks.includes(rank);
  }

  /** Serialise with a computed Content-Length (spec §7.4: the app's is always discarded). */
  render(startLine: string, body: Buffer): Buffer {
    this.add('content-length', String(body.length));
    const n = this.fields.length;
    if (order.length < n) order = new Int32Array(2 * n);
    const ranks = this.ranks;
    // Stable insertion sort by rank (equal ranks keep insertion order: multi-valued headers,
    // unknowns); ≈ 10–20 headers, mostly added in rank order already.
    for (let i = 0; i < n; i++) {
      const r = ranks[i]!;
      let j = i;
      for (; j > 0 && ranks[order[j - 1]!]! > r; j--) order[j] = order[j - 1]!;
      order[j] = i;
    }
    // One flat string of the whole head (join), not a chain of concatenations to flatten. The
    // shared list is emptied however this ends, so it never carries one message into the next
    // nor keeps its strings alive.
    let head: string;
    try {
      parts.push(startLine, '\r\n');
      for (let k = 0; k < n; k++) {
        const f = this.fields[order[k]!]!;
        parts.push(f.raw, ': ', f.value, '\r\n');
      }
      parts.push('\r\n');
      head = parts.join('');
    } finally {
      parts.length = 0;
    }
    const headBytes = Buffer.byteLength(head, 'utf8');
    const out = Buffer.allocUnsafe(headBytes + body.length);
    out.write(head, 0, headBytes, 'utf8');
    if (body.length !== 0) body.copy(out, headBytes);
    return out;
  }
}
