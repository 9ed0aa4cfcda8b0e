// The SIP text an app puts in a `sip` frame is partial (spec §4.5: often no Via, From, To …),
// so it is read here leniently, line by line, instead of by the network parser. Lines that
// are not `token: value` are dropped (spec §7.5).
import { isToken } from './fields.js';
import { longName } from './headers.js';
import { own } from '../transaction/own.js';

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
    // Line by line over `head` itself: no array of lines, no string per line (≈ 6 app
    // messages a call, 10–20 lines each, on the engine's one thread).
    const n = head.length;
    for (let pos = sep + 2; pos <= n;) {
      let end = head.indexOf('\r\n', pos);
      if (end < 0) end = n;
      const colon = head.indexOf(':', pos);
      if (colon > pos && colon < end) {
        const raw = head.slice(pos, colon).trim();
        const value = isToken(raw) ? head.slice(colon + 1, end).trim() : '\n';
        if (!value.includes('\r') && !value.includes('\n')) out.headers.push({ name: nameOf(raw), raw, value });
      }
      pos = end + 2;
    }
  }
  return out;
}

/** Spellings seen → canonical long lower-case name: apps write the same few dozen, so one
 *  lookup instead of a lower-cased copy per header. Bounded: a flood of odd names starts over. */
const names = new Map<string, string>();

function nameOf(raw: string): string {
  let name = names.get(raw);
  if (name === undefined) {
    if (names.size >= 1024) names.clear();
    name = longName(raw.toLowerCase());
    names.set(own(raw), name); // a copy: `raw` may be a slice pinning the whole message
  }
  return name;
}

export function appHeader(m: AppMessage, name: string): string | undefined {
  for (const h of m.headers) if (h.name === name) return h.value;
  return undefined;
}
