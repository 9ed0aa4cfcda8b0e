// What the app sees of a network request: the message as received (byte for byte, spacing
// included) with the top Via completed (RFC 3581 rport / RFC 3261 §18.2.1 received), any
// network copy of the TLS identity header removed, and our own identity header added.

export const TLS_IDENTITY_HEADER = 'X-Peergate-TLS-Identity';
const TLS_IDENTITY_LOWER = TLS_IDENTITY_HEADER.toLowerCase();

export interface InboundRewrite {
  text: string;
  /** The stamped top Via value, as responses must echo it. */
  topVia: string;
}

/** Rewrite the header section of `text` (a complete SIP request). Returns undefined when no
 *  Via line is found. `identity` is a ready header value or undefined. */
const HAS_IDENTITY = /\r\nx-peergate-tls-identity[ \t]*:/i;
const TOP_VIA = /\r\n(via|v)[ \t]*:/i;

export function rewriteInbound(text: string, srcAddr: string, srcPort: number, viaHost: string, identity: string | undefined): InboundRewrite | undefined {
  const headEnd = text.indexOf('\r\n\r\n');
  // Fast path (nearly every message): no identity header to remove or add, so only the top
  // Via line is rewritten and the rest is sliced through unchanged.
  if (identity === undefined) {
    const head = headEnd < 0 ? text : text.slice(0, headEnd + 2);
    if (!HAS_IDENTITY.test(head)) {
      const m = TOP_VIA.exec(head);
      if (!m) return undefined;
      const valueStart = m.index + m[0].length;
      let lineEnd = text.indexOf('\r\n', valueStart);
      if (lineEnd < 0) lineEnd = text.length;
      // A folded Via line continues on the next line: leave that rare case to the slow path.
      const next = text.charCodeAt(lineEnd + 2);
      if (next !== 0x20 && next !== 0x09) {
        const stamped = stampVia(text.slice(valueStart, lineEnd), srcAddr, srcPort, viaHost);
        return { text: text.slice(0, valueStart) + stamped.line + text.slice(lineEnd), topVia: stamped.topVia };
      }
    }
  }
  const end = headEnd < 0 ? text.length : headEnd;
  let out = '';
  let pos = text.indexOf('\r\n');
  if (pos < 0 || pos > end) return undefined;
  out = text.slice(0, pos);
  let topVia: string | undefined;
  let dropping = false;
  while (pos < end) {
    const lineStart = pos + 2;
    let lineEnd = text.indexOf('\r\n', lineStart);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    const line = text.slice(lineStart, lineEnd);
    pos = lineEnd;
    const c0 = line.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) {
      // folded continuation of the previous header
      if (!dropping) out += '\r\n' + line;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
    dropping = name === TLS_IDENTITY_LOWER;
    if (dropping) continue;
    if (topVia === undefined && (name === 'via' || name === 'v')) {
      const stamped = stampVia(line.slice(colon + 1), srcAddr, srcPort, viaHost);
      out += '\r\n' + line.slice(0, colon + 1) + stamped.line;
      topVia = stamped.topVia;
      continue;
    }
    out += '\r\n' + line;
  }
  if (topVia === undefined) return undefined;
  if (identity !== undefined) out += `\r\n${TLS_IDENTITY_HEADER}: ${identity}`;
  out += text.slice(end);
  return { text: out, topVia };
}

/** Add `rport=<port>` (always, as drachtio does) and `received=<ip>` (when the source differs
 *  from the Via host) to the first via-parm of a Via line value. */
function stampVia(value: string, srcAddr: string, srcPort: number, viaHost: string): { line: string; topVia: string } {
  // End of the first via-parm: first comma outside quotes.
  let endFirst = value.length;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x22) quoted = !quoted;
    else if (c === 0x2c && !quoted) { endFirst = i; break; }
  }
  let first = value.slice(0, endFirst);
  const trailing = first.length - first.trimEnd().length;
  first = first.trimEnd();
  const parts = first.split(';');
  let hasRport = false;
  let hasReceived = false;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    const eq = p.indexOf('=');
    const n = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (n === 'rport') {
      hasRport = true;
      if (eq < 0 || p.slice(eq + 1).trim() === '') parts[i] = `rport=${srcPort}`;
    } else if (n === 'received') hasReceived = true;
  }
  if (!hasRport) parts.push(`rport=${srcPort}`);
  if (!hasReceived && viaHost !== srcAddr && `[${srcAddr}]` !== viaHost) parts.push(`received=${srcAddr}`);
  const stamped = parts.join(';');
  return { line: stamped + ' '.repeat(trailing) + value.slice(endFirst), topVia: stamped.trim() };
}

/** `subject="…";san="a,b";fp256=AA:BB:…` — documented in docs/engine.md. */
export function identityHeaderValue(id: { subject: string; subjectAltNames: string[]; fingerprint256: string }): string {
  const q = (s: string) => `"${s.replace(/[\\"]/g, (m) => `\\${m}`).replace(/[\r\n]/g, ' ')}"`;
  // SAN entries are joined by ','; a ',' or '%' inside an entry is percent-encoded.
  const san = id.subjectAltNames.map((s) => s.replace(/%/g, '%25').replace(/,/g, '%2C')).join(',');
  return `subject=${q(id.subject)};san=${q(san)};fp256=${id.fingerprint256}`;
}
