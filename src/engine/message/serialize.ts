// SIP message → bytes. Header fields are written one per line with their wire spelling (`raw`);
// Content-Length is always recomputed from the body and written last.
import type { SipMessage } from './types.js';

/** Whether s contains CR or LF. Such a value would end its header line early and let the rest
 *  be read as new header fields by the next hop (header injection), so it is never sent. */
function hasLineBreak(s: string): boolean {
  return s.indexOf('\n') >= 0 || s.indexOf('\r') >= 0;
}

/** Bytes of the message. Throws if a start-line element or header contains CR or LF (a bug in
 *  the caller: parsed messages never do, and the header helpers refuse such values). */
export function serialize(msg: SipMessage): Buffer {
  // Joining an array is markedly faster than growing a string and flattening it for encoding.
  const parts: string[] = [];
  if (msg.kind === 'request') {
    if (hasLineBreak(msg.method) || hasLineBreak(msg.uri)) throw new Error('start line may not contain CR or LF');
    parts.push(msg.method, ' ', msg.uri, ' SIP/2.0\r\n');
  } else {
    if (hasLineBreak(msg.reason)) throw new Error('start line may not contain CR or LF');
    parts.push('SIP/2.0 ', String(msg.status), ' ', msg.reason, '\r\n');
  }
  const headers = msg.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (h.name === 'content-length') continue;
    if (hasLineBreak(h.value) || hasLineBreak(h.raw)) throw new Error(`header ${h.raw} may not contain CR or LF`);
    parts.push(h.raw, ': ', h.value, '\r\n');
  }
  const body = msg.body;
  parts.push('Content-Length: ', String(body.length), '\r\n\r\n');
  const head = parts.join('');
  if (body.length === 0) return Buffer.from(head, 'utf8');
  const headBytes = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headBytes + body.length);
  out.write(head, 0, 'utf8');
  body.copy(out, headBytes);
  return out;
}
