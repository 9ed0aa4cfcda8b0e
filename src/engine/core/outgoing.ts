// Building SIP messages the engine sends: headers sorted the way drachtio-server's stack
// (sofia-sip) writes them, so that apps and golden traces see the same layout.
import type { HeaderField, SipRequest } from '../message/types.js';
import { headerRank, headerSpelling, UNKNOWN_RANK } from './headers.js';

export class OutMessage {
  private readonly ranks: number[] = [];
  private readonly lines: string[] = [];
  /** The same headers as fields, in insertion order (what the transaction layer reads). */
  readonly fields: HeaderField[] = [];

  /** Add a header; `lower` is the canonical lower-case name, `spelling` how to write it when unknown. */
  add(lower: string, value: string, spelling: string = lower): this {
    this.ranks.push(headerRank(lower));
    const raw = headerSpelling(spelling, lower);
    this.lines.push(`${raw}: ${value}\r\n`);
    this.fields.push({ name: lower, raw, value });
    return this;
  }

  /** The message model of a request rendered from this (the layer builds its CANCEL/ACK from it). */
  asRequest(method: string, uri: string, body: Buffer): SipRequest {
    return { kind: 'request', method, uri, headers: this.fields, body };
  }

  has(lower: string): boolean {
    const rank = headerRank(lower);
    if (rank === UNKNOWN_RANK) {
      const prefix = `${headerSpelling(lower, lower).toLowerCase()}:`;
      return this.lines.some((l) => l.toLowerCase().startsWith(prefix));
    }
    return this.ranks.includes(rank);
  }

  /** Serialise with a computed Content-Length (spec §7.4: the app's is always discarded). */
  render(startLine: string, body: Buffer): Buffer {
    this.add('content-length', String(body.length));
    const idx = this.lines.map((_, i) => i);
    // Stable by rank: equal ranks keep insertion order (multi-valued headers, unknowns).
    idx.sort((a, b) => (this.ranks[a]! - this.ranks[b]!) || (a - b));
    let head = `${startLine}\r\n`;
    for (const i of idx) head += this.lines[i];
    head += '\r\n';
    const h = Buffer.from(head, 'utf8');
    return body.length === 0 ? h : Buffer.concat([h, body]);
  }
}
