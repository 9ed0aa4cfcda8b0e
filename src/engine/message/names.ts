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

/** Headers the parser splits into one field per comma-separated value (RFC 3261 §7.3.1): those
 *  the engine processes value by value (Via, Route, Record-Route, Contact, and the identity and
 *  path lists). Other list headers (Allow, Supported, Require, Accept …) stay one field as received,
 *  so relayed messages keep their size; read them with getHeaderList(). Credentials
 *  (Authorization, WWW-Authenticate) are never split: their commas separate parameters. */
export const LIST_HEADERS: ReadonlySet<string> = new Set([
  'via',
  'route',
  'record-route',
  'contact',
  'path',
  'service-route',
  'p-asserted-identity',
  'p-preferred-identity',
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

// ---- fast lookup of well-known names without hashing a fresh string
// The parser computes nameHash() while it scans a header name (it reads every char anyway),
// then knownName() finds the canonical name with one probe and a case-insensitive compare.
// Names not in this list fall back to the memoized canonicalName().
const WELL_KNOWN = [
  'via', 'from', 'to', 'call-id', 'cseq', 'contact', 'max-forwards', 'content-length', 'content-type',
  'route', 'record-route', 'allow', 'supported', 'require', 'proxy-require', 'unsupported', 'user-agent',
  'server', 'expires', 'min-expires', 'session-expires', 'min-se', 'p-asserted-identity',
  'p-preferred-identity', 'privacy', 'authorization', 'proxy-authorization', 'www-authenticate',
  'proxy-authenticate', 'authentication-info', 'accept', 'accept-encoding', 'accept-language',
  'content-encoding', 'content-disposition', 'content-language', 'mime-version', 'date', 'subject',
  'organization', 'reason', 'rack', 'rseq', 'event', 'allow-events', 'subscription-state', 'refer-to',
  'referred-by', 'replaces', 'identity', 'timestamp', 'warning', 'retry-after', 'in-reply-to',
  'priority', 'alert-info', 'call-info', 'error-info', 'reply-to', 'path', 'service-route',
  'history-info', 'diversion', 'remote-party-id', 'p-charging-vector', 'p-access-network-info',
  'security-client', 'security-server', 'security-verify', 'sip-etag', 'sip-if-match', 'user-to-user',
  'geolocation', 'recv-info', 'info-package', 'feature-caps', 'accept-contact', 'reject-contact',
  'request-disposition', 'identity-info', 'x-peergate-tls-identity',
];

const TABLE_BITS = 10;
const TABLE_MASK = (1 << TABLE_BITS) - 1;
const tableKey: Array<string | undefined> = new Array(1 << TABLE_BITS).fill(undefined);
const tableValue: Array<string | undefined> = new Array(1 << TABLE_BITS).fill(undefined);

/** Step of the name hash over one char code (letters folded to lower case). */
export function nameHashStep(h: number, c: number): number {
  return (Math.imul(h, 31) + (c | 0x20)) | 0;
}

function insertKnown(key: string, value: string): void {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = nameHashStep(h, key.charCodeAt(i));
  let slot = (h ^ (h >>> TABLE_BITS)) & TABLE_MASK;
  while (tableKey[slot] !== undefined) slot = (slot + 1) & TABLE_MASK;
  tableKey[slot] = key;
  tableValue[slot] = value;
}

/** Canonical name for s[from..to) given its nameHash, if it is a well-known name or compact form. */
export function knownName(s: string, from: number, to: number, hash: number): string | undefined {
  const len = to - from;
  let slot = (hash ^ (hash >>> TABLE_BITS)) & TABLE_MASK;
  for (;;) {
    const key = tableKey[slot];
    if (key === undefined) return undefined;
    if (key.length === len) {
      let k = 0;
      // (c | 0x20) folds letters; no other token char can fold onto a letter, '-' or a digit.
      while (k < len && (s.charCodeAt(from + k) | 0x20) === key.charCodeAt(k)) k++;
      if (k === len) return tableValue[slot];
    }
    slot = (slot + 1) & TABLE_MASK;
  }
}

for (const name of WELL_KNOWN) insertKnown(name, name);

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

for (const [c, long] of Object.entries(COMPACT_FORMS)) insertKnown(c, long);

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

// ---- header-name spellings as written on the wire
// Most messages spell their header names the same way (`Via`, `Call-ID`, `v` …). The parser
// looks the spelling up by the first two characters of the line, checks for the ':' right after
// it and confirms it with one string compare, instead of searching for the ':' and hashing and
// comparing the name char by char. A hit also gives the raw string to reuse, so no new string is
// made for the name.

/** One exact spelling of a header name, with what the parser derives from it. */
export interface Spelling {
  /** The name exactly as written (a valid token). */
  raw: string;
  /** Canonical name, as knownName()/canonicalName() give it. */
  name: string;
  /** Whether LIST_HEADERS has it (the parser splits its values at commas). */
  list: boolean;
}

// Spellings by their first two characters (the first and ':' for one-letter names), low 7 bits
// of each (other characters only share a bucket; the compare decides).
const buckets: Array<Spelling[] | undefined> = new Array(1 << 14).fill(undefined);
// Bounds on what is learned, so that a flood of odd names cannot grow memory or make lookups long.
const SPELLINGS_MAX = 512;
const BUCKET_MAX = 16;
let spellingCount = 0;

function bucketOf(first: number, second: number): number {
  return ((first & 0x7f) << 7) | (second & 0x7f);
}

/** The known spelling written at s[from..) and followed there by ':' before `end`, if any. */
export function spellingAt(s: string, from: number, end: number): Spelling | undefined {
  const bucket = buckets[bucketOf(s.charCodeAt(from), s.charCodeAt(from + 1))];
  if (bucket === undefined) return undefined;
  for (let i = 0; i < bucket.length; i++) {
    const sp = bucket[i]!;
    const colon = from + sp.raw.length;
    // (slice + === measures ~3x faster than s.startsWith(raw, from) on Node 20)
    if (colon < end && s.charCodeAt(colon) === 58 && s.slice(from, colon) === sp.raw) return sp;
  }
  return undefined;
}

/** Remember a spelling the parser has validated and resolved (raw: a token; name: its canonical
 *  name). Bounded: past SPELLINGS_MAX in all or BUCKET_MAX alike, new ones are not remembered. */
export function learnSpelling(raw: string, name: string): void {
  if (spellingCount >= SPELLINGS_MAX || raw.length === 0 || raw.length > 64) return;
  const key = bucketOf(raw.charCodeAt(0), raw.length > 1 ? raw.charCodeAt(1) : 58);
  const bucket = (buckets[key] ??= []);
  if (bucket.length >= BUCKET_MAX) return;
  for (const sp of bucket) if (sp.raw === raw) return;
  // A copy: raw may be a slice of a whole message, which the table would otherwise keep alive.
  bucket.push({ raw: Buffer.from(raw, 'latin1').toString('latin1'), name, list: LIST_HEADERS.has(name) });
  spellingCount++;
}

// The usual spellings up front (display form, lower case, compact forms in both cases), so that
// they stay fast however many odd spellings have filled the table.
for (const name of WELL_KNOWN) {
  learnSpelling(displayName(name), name);
  learnSpelling(name, name);
}
for (const [c, long] of Object.entries(COMPACT_FORMS)) {
  learnSpelling(c, long);
  learnSpelling(c.toUpperCase(), long);
}
learnSpelling('Min-SE', 'min-se'); // RFC 4028's spelling; displayName() writes Min-Se
learnSpelling('Call-Id', 'call-id');
