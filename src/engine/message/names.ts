// Header names: compact forms (RFC 3261 §7.3.3 and extensions), canonical lower-case long
// names, the display spelling used when peergate itself adds a header, and which headers
// are comma-separated lists that the parser splits into one field per value.

/** Compact form → long name. RFC 3261 §7.3.3 plus the IANA-registered extension forms. */
export const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact', // RFC 3841
  b: 'referred-by', // RFC 3892
  c: 'content-type',
  d: 'request-disposition', // RFC 3841
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact', // RFC 3841
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info', // RFC 4474 (historic)
  o: 'event', // RFC 6665
  r: 'refer-to', // RFC 3515
  s: 'subject',
  t: 'to',
  u: 'allow-events', // RFC 6665
  v: 'via',
  x: 'session-expires', // RFC 4028
  y: 'identity', // RFC 8224
};

/** Headers whose value is a comma-separated list (RFC 3261 §7.3.1) and that are safe to split:
 *  no comma may appear inside one element except in a quoted string or <...>. Credentials
 *  (Authorization, WWW-Authenticate) are NOT here: their commas separate parameters. */
export const LIST_HEADERS: ReadonlySet<string> = new Set([
  'via',
  'route',
  'record-route',
  'contact',
  'path',
  'service-route',
  'p-asserted-identity',
  'p-preferred-identity',
  'allow',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'allow-events',
  'accept',
  'accept-encoding',
  'accept-language',
  'content-encoding',
]);

const DISPLAY_EXCEPTIONS: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
  rack: 'RAck',
  rseq: 'RSeq',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'p-asserted-identity': 'P-Asserted-Identity',
  'p-preferred-identity': 'P-Preferred-Identity',
};

const canonicalCache = new Map<string, string>();
const CANONICAL_CACHE_MAX = 4096;

/** Canonical lower-case long name of a header name in any case, long or compact. Memoized:
 *  the same spellings recur on every message. */
export function canonicalName(name: string): string {
  const hit = canonicalCache.get(name);
  if (hit !== undefined) return hit;
  const lower = name.toLowerCase();
  const canonical = (lower.length === 1 ? COMPACT_FORMS[lower] : undefined) ?? lower;
  // Bounded so that a flood of random header names cannot grow memory without limit.
  if (canonicalCache.size < CANONICAL_CACHE_MAX) canonicalCache.set(name, canonical);
  return canonical;
}

/** Conventional spelling for a header that peergate writes (`via` → `Via`, `call-id` → `Call-ID`). */
export function displayName(name: string): string {
  const canonical = canonicalName(name);
  const exception = DISPLAY_EXCEPTIONS[canonical];
  if (exception !== undefined) return exception;
  let out = '';
  let upper = true;
  for (let i = 0; i < canonical.length; i++) {
    const ch = canonical[i] as string;
    out += upper ? ch.toUpperCase() : ch;
    upper = ch === '-';
  }
  return out;
}
