// name-addr / addr-spec with header parameters (RFC 3261 §20.10, §25.1): From, To, Contact,
// Route, Record-Route, Refer-To, P-Asserted-Identity …
import type { NameAddr } from './types.js';
import { TOKEN, isWsp, skipWsp, trimWsp } from './chars.js';
import { formatParams, parseParams, quote, quotedEnd, unquote } from './params.js';
import { isUriText, schemeEnd } from './uri.js';

/** Parse one name-addr or addr-spec value. Returns null on any syntax error (unbalanced quote,
 *  whitespace inside <>, non-token display name, addr-spec that needed <>, empty params). */
export function parseNameAddr(text: string): NameAddr | null {
  if (typeof text !== 'string') return null;
  const s = text;
  const end = s.length;
  let i = skipWsp(s, 0, end);
  if (i >= end) return null;
  let displayName: string | undefined;
  let uri: string;
  const c0 = s.charCodeAt(i);
  const lt = c0 === 34 ? -1 : s.indexOf('<', i);
  if (c0 === 34) {
    // quoted display name
    const q = quotedEnd(s, i, end);
    if (q < 0) return null;
    displayName = unquote(s, i, q);
    i = skipWsp(s, q, end);
    if (s.charCodeAt(i) !== 60) return null; // '<' must follow
    i = parseBracketed(s, i);
    if (i < 0) return null;
    uri = bracketedUri;
  } else if (lt >= 0) {
    // token display name (may be empty): tokens separated by LWS, RFC 3261 display-name
    for (let j = i; j < lt; j++) {
      const c = s.charCodeAt(j);
      if (!isWsp(c) && (c > 127 || TOKEN[c] !== 1)) return null;
    }
    const dn = trimWsp(s.slice(i, lt));
    if (dn.length > 0) displayName = dn;
    i = parseBracketed(s, lt);
    if (i < 0) return null;
    uri = bracketedUri;
  } else {
    // addr-spec: the URI ends at the first ';' (what follows are header params), and may not
    // contain ',' '?' (RFC 3261 §20.10: such URIs must be enclosed in <>).
    let semi = s.indexOf(';', i);
    if (semi < 0) semi = end;
    uri = trimWsp(s.slice(i, semi));
    if (!isUriText(uri) || schemeEnd(uri) < 0 || uri.indexOf('?') >= 0 || uri.indexOf(',') >= 0) return null;
    i = semi;
  }
  const params = new Map<string, string>();
  if (!parseParams(s, i, end, params)) return null;
  const na: NameAddr = { uri, params };
  if (displayName !== undefined) na.displayName = displayName;
  return na;
}

// Out-parameter of parseBracketed (avoids allocating a result object per call).
let bracketedUri = '';

/** s[i] === '<'. Sets bracketedUri; returns the index after '>' or -1. */
function parseBracketed(s: string, i: number): number {
  const gt = s.indexOf('>', i + 1);
  if (gt < 0) return -1;
  const uri = s.slice(i + 1, gt);
  // No LWS inside <> (RFC 4475 §3.1.2.14), and the URI needs a scheme.
  if (!isUriText(uri) || schemeEnd(uri) < 0) return -1;
  bracketedUri = uri;
  return gt + 1;
}

/** name-addr text: always in <> form, display name quoted when present. */
export function formatNameAddr(na: NameAddr): string {
  const dn = na.displayName !== undefined && na.displayName.length > 0 ? `${quote(na.displayName)} ` : '';
  return `${dn}<${na.uri}>${formatParams(na.params)}`;
}

/** The `tag` parameter of a From/To value, or undefined. Fast path used on every message:
 *  looks only after the URI (after '>' in name-addr form, after the URI's end otherwise). */
export function getTag(value: string): string | undefined {
  let i = value.lastIndexOf('>');
  i = i < 0 ? 0 : i + 1;
  const end = value.length;
  for (;;) {
    i = value.indexOf(';', i);
    if (i < 0) return undefined;
    let j = skipWsp(value, i + 1, end);
    if (
      j + 3 <= end &&
      (value.charCodeAt(j) | 0x20) === 0x74 && // t
      (value.charCodeAt(j + 1) | 0x20) === 0x61 && // a
      (value.charCodeAt(j + 2) | 0x20) === 0x67 // g
    ) {
      j = skipWsp(value, j + 3, end);
      if (value.charCodeAt(j) === 61) {
        j = skipWsp(value, j + 1, end);
        let k = j;
        while (k < end) {
          const c = value.charCodeAt(k);
          if (c === 59 || c === 44 || isWsp(c)) break;
          k++;
        }
        return k > j ? value.slice(j, k) : undefined;
      }
    }
    i++;
  }
}
