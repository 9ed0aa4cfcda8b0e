// SIP message → bytes. Header fields are written one per line with their wire spelling (`raw`);
// Content-Length is always recomputed from the body and written last.
import type { SipMessage } from './types.js';

// A CR or LF inside a value would end the header line early and let the rest be read as new
// header fields by the next hop (header injection); reject such messages instead of sending them.
const CR_OR_LF = /[\r\n]/;

export function serialize(msg: SipMessage): Buffer {
  let head = msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0\r\n` : `SIP/2.0 ${msg.status} ${msg.reason}\r\n`;
  if (msg.kind === 'request' ? CR_OR_LF.test(msg.uri) || CR_OR_LF.test(msg.method) : CR_OR_LF.test(msg.reason)) {
    throw new Error('start line may not contain CR or LF');
  }
  const headers = msg.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (h.name === 'content-length') continue;
    if (CR_OR_LF.test(h.value) || CR_OR_LF.test(h.raw)) throw new Error(`header ${h.raw} may not contain CR or LF`);
    head += `${h.raw}: ${h.value}\r\n`;
  }
  const body = msg.body;
  head += `Content-Length: ${body.length}\r\n\r\n`;
  if (body.length === 0) return Buffer.from(head, 'utf8');
  const headBytes = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headBytes + body.length);
  out.write(head, 0, 'utf8');
  body.copy(out, headBytes);
  return out;
}
