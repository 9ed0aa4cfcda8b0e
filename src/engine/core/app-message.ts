// The SIP text an app puts in a `sip` frame is partial (spec §4.5: often no Via, From, To …),
// so it is read here leniently, line by line, instead of by the network parser. Lines that
// are not `token: value` are dropped (spec §7.5).
import { isToken } from './fields.js';
import { longName } from './headers.js';

export interface AppHeader {
  /** Canonical lower-case long name. */
  name: string;
  /** The name as the app wrote it. */
  raw: string;
  value: string;
}

export interface AppMessage {
  kind: 'request' | 'response';
  method: string;
  uri: string;
  status: number;
  reason: string;
  headers: AppHeader[];
  body: Buffer;
}

export function parseAppMessage(text: string): AppMessage | { error: string } {
  let sep = text.indexOf('\r\n\r\n');
  let head: string;
  let body: string;
  if (sep < 0) {
    // Tolerate a message that ends right after its last header line.
    head = text.endsWith('\r\n') ? text.slice(0, -2) : text;
    body = '';
  } else {
    head = text.slice(0, sep);
    body = text.slice(sep + 4);
  }
  sep = head.indexOf('\r\n');
  const start = sep < 0 ? head : head.slice(0, sep);
  const out: AppMessage = { kind: 'request', method: '', uri: '', status: 0, reason: '', headers: [], body: Buffer.from(body, 'utf8') };
  if (start.startsWith('SIP/2.0 ')) {
    const code = Number(start.slice(8, 11));
    if (!Number.isInteger(code) || code < 100 || code > 699) return { error: `invalid status line: ${start}` };
    out.kind = 'response';
    out.status = code;
    out.reason = start.slice(12) || 'Unknown';
  } else {
    const parts = start.split(' ');
    if (parts.length !== 3 || parts[2] !== 'SIP/2.0' || !isToken(parts[0]!) || !parts[1]) return { error: `invalid request-uri: ${start}` };
    out.method = parts[0]!;
    out.uri = parts[1]!;
  }
  if (sep >= 0) {
    for (const line of head.slice(sep + 2).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const raw = line.slice(0, colon).trim();
      if (!isToken(raw)) continue;
      const value = line.slice(colon + 1).trim();
      if (value.includes('\r') || value.includes('\n')) continue;
      out.headers.push({ name: longName(raw.toLowerCase()), raw, value });
    }
  }
  return out;
}

export function appHeader(m: AppMessage, name: string): string | undefined {
  for (const h of m.headers) if (h.name === name) return h.value;
  return undefined;
}
