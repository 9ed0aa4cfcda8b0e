import { randomBytes } from 'node:crypto';

// How the UA core writes headers (canonical spelling and sofia-sip's order) and the random
// tokens it writes into them. Reading header values is the SIP grammar's (src/sip/grammar,
// through core/fields.ts).

/** Canonical spelling of the headers the core writes, and the order sofia-sip (drachtio-server's
 *  stack) serialises known headers in; unknown headers follow Content-Length in the app's order. */
const KNOWN: Array<[string, string]> = [
  ['via', 'Via'], ['route', 'Route'], ['record-route', 'Record-Route'], ['max-forwards', 'Max-Forwards'],
  ['proxy-require', 'Proxy-Require'], ['from', 'From'], ['to', 'To'], ['call-id', 'Call-ID'], ['cseq', 'CSeq'],
  ['contact', 'Contact'], ['rseq', 'RSeq'], ['rack', 'RAck'], ['request-disposition', 'Request-Disposition'],
  ['accept-contact', 'Accept-Contact'], ['reject-contact', 'Reject-Contact'], ['expires', 'Expires'], ['date', 'Date'],
  ['retry-after', 'Retry-After'], ['timestamp', 'Timestamp'], ['min-expires', 'Min-Expires'], ['subject', 'Subject'],
  ['priority', 'Priority'], ['call-info', 'Call-Info'], ['organization', 'Organization'], ['server', 'Server'],
  ['user-agent', 'User-Agent'], ['in-reply-to', 'In-Reply-To'], ['accept', 'Accept'], ['accept-encoding', 'Accept-Encoding'],
  ['accept-language', 'Accept-Language'], ['allow', 'Allow'], ['require', 'Require'], ['supported', 'Supported'],
  ['unsupported', 'Unsupported'], ['event', 'Event'], ['allow-events', 'Allow-Events'], ['subscription-state', 'Subscription-State'],
  ['proxy-authenticate', 'Proxy-Authenticate'], ['proxy-authentication-info', 'Proxy-Authentication-Info'],
  ['proxy-authorization', 'Proxy-Authorization'], ['authorization', 'Authorization'], ['www-authenticate', 'WWW-Authenticate'],
  ['authentication-info', 'Authentication-Info'], ['error-info', 'Error-Info'], ['warning', 'Warning'], ['refer-to', 'Refer-To'],
  ['referred-by', 'Referred-By'], ['replaces', 'Replaces'], ['session-expires', 'Session-Expires'], ['min-se', 'Min-SE'],
  ['path', 'Path'], ['service-route', 'Service-Route'], ['reason', 'Reason'], ['security-client', 'Security-Client'],
  ['security-server', 'Security-Server'], ['security-verify', 'Security-Verify'], ['privacy', 'Privacy'], ['sip-etag', 'SIP-ETag'],
  ['sip-if-match', 'SIP-If-Match'], ['mime-version', 'MIME-Version'], ['content-type', 'Content-Type'],
  ['content-encoding', 'Content-Encoding'], ['content-language', 'Content-Language'], ['content-disposition', 'Content-Disposition'],
  ['content-length', 'Content-Length'],
];
const RANK = new Map<string, number>(KNOWN.map(([n], i) => [n, i]));
const CANON = new Map<string, string>(KNOWN);
export const UNKNOWN_RANK = KNOWN.length;

/** RFC 3261 §7.3.3 compact forms. */
const COMPACT: Record<string, string> = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type', f: 'from',
  s: 'subject', k: 'supported', t: 'to', v: 'via', o: 'event', r: 'refer-to', b: 'referred-by', u: 'allow-events',
  x: 'session-expires', a: 'accept-contact', j: 'reject-contact', d: 'request-disposition',
};

export function longName(lower: string): string {
  return lower.length === 1 ? COMPACT[lower] ?? lower : lower;
}

export function headerRank(lower: string): number {
  return RANK.get(lower) ?? UNKNOWN_RANK;
}

/** How the header is written: canonical for known names; otherwise capitalised after every
 *  dash (`p-charging-vector` → `P-Charging-Vector`), except `X-` names which keep their case. */
export function headerSpelling(raw: string, lower: string): string {
  const c = CANON.get(lower);
  if (c) return c;
  if (lower.startsWith('x-')) return raw;
  let out = '';
  let up = true;
  for (let i = 0; i < lower.length; i++) {
    const ch = lower[i]!;
    out += up ? ch.toUpperCase() : ch;
    up = ch === '-';
  }
  return out;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// Tags and branches must be unguessable (forged responses, RFC 6404 §2.3.2.2), so they come
// from the CSPRNG; a pooled buffer keeps the per-message cost low.
let pool = randomBytes(4096);
let poolPos = 0;
/** Random token of `n` alphanumerics (tags, branches). */
export function randomToken(n = 13): string {
  if (poolPos + n > pool.length) { pool = randomBytes(4096); poolPos = 0; }
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[pool[poolPos++]! % 62];
  return s;
}
