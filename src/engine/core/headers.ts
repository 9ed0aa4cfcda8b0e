import { randomBytes } from 'node:crypto';

// Small, allocation-light helpers for the header values the UA core reads and writes.
// They work on header VALUES (folding already collapsed by the parser); they never throw.

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

/** RFC 3261 token characters (header names). */
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
export function isToken(s: string): boolean { return TOKEN.test(s); }

/** Index just after the name-addr/addr-spec part of a From/To/Contact/Route value, i.e. where
 *  header parameters start (after `>` when brackets are used, else at the first `;`). */
function paramsStart(v: string): number {
  const lt = v.indexOf('<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    return gt < 0 ? v.length : gt + 1;
  }
  const semi = v.indexOf(';');
  return semi < 0 ? v.length : semi;
}

/** Header parameter `name` (lower-case) of a From/To/Contact value; undefined when absent. */
export function headerParam(v: string, name: string): string | undefined {
  let i = paramsStart(v);
  const n = v.length;
  while (i < n) {
    const semi = v.indexOf(';', i);
    if (semi < 0) return undefined;
    let end = v.indexOf(';', semi + 1);
    if (end < 0) end = n;
    const part = v.slice(semi + 1, end);
    const eq = part.indexOf('=');
    const pn = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (pn === name) return eq < 0 ? '' : part.slice(eq + 1).trim();
    i = end;
  }
  return undefined;
}

export function tagOf(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const t = headerParam(v, 'tag');
  return t ? t : undefined;
}

/** The URI of a name-addr or addr-spec value. */
export function uriOf(v: string): string {
  const lt = v.indexOf('<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    return v.slice(lt + 1, gt < 0 ? v.length : gt).trim();
  }
  const semi = v.indexOf(';');
  return (semi < 0 ? v : v.slice(0, semi)).trim();
}

export interface LiteUri {
  scheme: string;
  user?: string;
  host: string;
  port?: number;
  /** URI parameters, names lower-cased. */
  params: Map<string, string>;
}

/** Enough of RFC 3261 §19.1 to route: scheme, user, host (IPv6 keeps brackets), port, params. */
export function parseLiteUri(uri: string): LiteUri | undefined {
  const colon = uri.indexOf(':');
  if (colon <= 0) return undefined;
  const scheme = uri.slice(0, colon).toLowerCase();
  if (scheme !== 'sip' && scheme !== 'sips') return undefined;
  let rest = uri.slice(colon + 1);
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) { user = rest.slice(0, at); rest = rest.slice(at + 1); }
  const semi = rest.indexOf(';');
  const hostport = semi < 0 ? rest : rest.slice(0, semi);
  const params = new Map<string, string>();
  if (semi >= 0) {
    for (const p of rest.slice(semi + 1).split(';')) {
      if (!p) continue;
      const eq = p.indexOf('=');
      params.set((eq < 0 ? p : p.slice(0, eq)).toLowerCase(), eq < 0 ? '' : p.slice(eq + 1));
    }
  }
  let host = hostport;
  let port: number | undefined;
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0) return undefined;
    host = hostport.slice(0, end + 1);
    const after = hostport.slice(end + 1);
    if (after.startsWith(':')) port = Number(after.slice(1));
  } else {
    const c = hostport.lastIndexOf(':');
    if (c >= 0) { host = hostport.slice(0, c); port = Number(hostport.slice(c + 1)); }
  }
  if (!host || (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))) return undefined;
  return { scheme, user, host, port, params };
}

/** Top Via of a request: transport, sent-by, branch. */
export interface TopVia {
  transport: string;
  host: string;
  port?: number;
  branch?: string;
  rport?: string;
  received?: string;
}

/** Parse one via-parm value (`SIP/2.0/UDP host:port;params`). */
export function parseViaValue(v: string): TopVia | undefined {
  const sp = v.search(/\s/);
  if (sp < 0) return undefined;
  const proto = v.slice(0, sp);
  const slash = proto.lastIndexOf('/');
  const transport = proto.slice(slash + 1).toUpperCase();
  const rest = v.slice(sp).trim();
  const semi = rest.indexOf(';');
  const sentBy = (semi < 0 ? rest : rest.slice(0, semi)).trim();
  let host = sentBy;
  let port: number | undefined;
  if (sentBy.startsWith('[')) {
    const end = sentBy.indexOf(']');
    host = sentBy.slice(0, end + 1);
    if (sentBy[end + 1] === ':') port = Number(sentBy.slice(end + 2));
  } else {
    const c = sentBy.lastIndexOf(':');
    if (c >= 0) { host = sentBy.slice(0, c); port = Number(sentBy.slice(c + 1)); }
  }
  const out: TopVia = { transport, host, port };
  if (semi >= 0) {
    for (const p of rest.slice(semi + 1).split(';')) {
      const eq = p.indexOf('=');
      const n = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
      const val = eq < 0 ? '' : p.slice(eq + 1).trim();
      if (n === 'branch') out.branch = val;
      else if (n === 'rport') out.rport = val;
      else if (n === 'received') out.received = val;
    }
  }
  return out;
}

/** Split a comma-separated header value (Via, Route, Record-Route, Contact) at top-level commas. */
export function splitCommas(v: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === 0x3c) depth++;
    else if (c === 0x3e) depth--;
    else if (c === 0x2c && depth <= 0) {
      const s = v.slice(start, i).trim();
      if (s) out.push(s);
      start = i + 1;
    }
  }
  const s = v.slice(start).trim();
  if (s) out.push(s);
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
