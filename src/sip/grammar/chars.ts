// Character classes of the RFC 3261 §25.1 grammar as lookup tables, so hot paths test a byte
// with one array read instead of a regex.

function table(chars: string, ranges: Array<[number, number]> = []): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [a, b] of ranges) for (let c = a; c <= b; c++) t[c] = 1;
  return t;
}

const ALNUM: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
];

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~", ALNUM);

/** Characters allowed in a hostname / IPv4 literal (IPv6 references are handled apart). */
export const HOST = table('-._', ALNUM);

/** Characters that may appear in a URI as a whole (RFC 3986 reserved + unreserved + '%'). */
export const URIC = table("-_.!~*'()%;/?:@&=+$,[]#", ALNUM);

// The same classes as regex source, for the fast-path patterns of via.ts, nameaddr.ts and uri.ts.
// Those patterns are built once at load and match only the common, plainly valid shapes (the
// hand-written scanners still decide everything else): irregexp scans a run of characters
// several times faster than a charCodeAt loop with a table lookup.
/** The characters of TOKEN, for use inside a regex character class. */
export const TOKEN_CHARS_RE = "A-Za-z0-9\\-.!%*_+`'~";
/** The characters of HOST, for use inside a regex character class. */
export const HOST_CHARS_RE = 'A-Za-z0-9\\-._';
/** A port as parseDigits(…, 65535) accepts it, leading zeros only up to four digits. */
export const PORT_RE = '(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';

export function isToken(s: string, from = 0, to = s.length): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) return false;
  }
  return true;
}

/** SP or HTAB. */
export function isWsp(c: number): boolean {
  return c === 32 || c === 9;
}

/** Trim SP/HTAB only (String.prototype.trim would also eat U+FEFF and other Unicode spaces,
 *  which can be legitimate header content, RFC 4475 §3.1.1.2). */
export function trimWsp(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWsp(s.charCodeAt(a))) a++;
  while (b > a && isWsp(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

export function skipWsp(s: string, i: number, end = s.length): number {
  while (i < end && isWsp(s.charCodeAt(i))) i++;
  return i;
}

/** Parse 1*DIGIT within [from,to); returns -1 when empty, non-digit, or above max. */
export function parseDigits(s: string, from: number, to: number, max: number): number {
  if (to <= from) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
    if (n > max) return -1;
  }
  return n;
}

/** End of the token starting at i (i itself when there is none). */
export function tokenEnd(s: string, i: number, end: number): number {
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) break;
    i++;
  }
  return i;
}
