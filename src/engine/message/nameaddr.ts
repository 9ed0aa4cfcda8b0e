// name-addr / addr-spec with header parameters (RFC 3261 §20.10, §25.1): From, To, Contact,
// Route, Record-Route, Refer-To, P-Asserted-Identity …
import type { NameAddr } from './types.js';
import { TOKEN, TOKEN_CHARS_RE, isWsp, skipWsp } from './chars.js';
import { PARAMS_RE, formatParams, parseParams, quote, quotedEnd, unquote } from './params.js';
import { URI_CHARS_RE, isUriText, schemeEnd } from './uri.js';

// Out-parameters of scanNameAddr (no result object on the hot path). One object with a fixed
// shape: cheaper for V8 than module-level `let` bindings, which pay a hole check on every access.
const st = {
  uriFrom: 0,
  uriTo: 0,
  dnFrom: -1, // display name range; dnQuoted when it is a quoted-string (with quotes)
  dnTo: -1,
  dnQuoted: false,
};

/** Validate one name-addr or addr-spec value, filling params when given. */
function scanNameAddr(s: string, params: Map<string, string> | null): boolean {
  const end = s.length;
  let i = skipWsp(s, 0, end);
  if (i >= end) return false;
  st.dnFrom = -1;
  st.dnQuoted = false;
  const c0 = s.charCodeAt(i);
  if (c0 === 34) {
    // quoted display name
    const q = quotedEnd(s, i, end);
    if (q < 0) return false;
    st.dnFrom = i;
    st.dnTo = q;
    st.dnQuoted = true;
    i = skipWsp(s, q, end);
    if (s.charCodeAt(i) !== 60) return false; // '<' must follow
    i = scanBracketed(s, i);
    if (i < 0) return false;
  } else {
    const lt = s.indexOf('<', i);
    if (lt >= 0) {
      // token display name (may be empty): tokens separated by LWS, RFC 3261 display-name
      let a = i;
      let b = lt;
      for (let j = a; j < b; j++) {
        const c = s.charCodeAt(j);
        if (!isWsp(c) && (c > 127 || TOKEN[c] !== 1)) return false;
      }
      while (b > a && isWsp(s.charCodeAt(b - 1))) b--;
      while (a < b && isWsp(s.charCodeAt(a))) a++;
      if (b > a) {
        st.dnFrom = a;
        st.dnTo = b;
      }
      i = scanBracketed(s, lt);
      if (i < 0) return false;
    } else {
      // addr-spec: the URI ends at the first ';' (what follows are header params), and may not
      // contain ',' '?' (RFC 3261 §20.10: such URIs must be enclosed in <>).
      let semi = s.indexOf(';', i);
      if (semi < 0) semi = end;
      let b = semi;
      while (b > i && isWsp(s.charCodeAt(b - 1))) b--;
      if (!isUriText(s, i, b) || schemeEnd(s, i) < 0) return false;
      for (let j = i; j < b; j++) {
        const c = s.charCodeAt(j);
        if (c === 63 || c === 44) return false;
      }
      st.uriFrom = i;
      st.uriTo = b;
      i = semi;
    }
  }
  return parseParams(s, i, end, params);
}

/** s[i] === '<'. Sets st.uriFrom/st.uriTo; returns the index after '>' or -1. */
function scanBracketed(s: string, i: number): number {
  const gt = s.indexOf('>', i + 1);
  if (gt < 0) return -1;
  // No LWS inside <> (RFC 4475 §3.1.2.14), and the URI needs a scheme.
  if (!isUriText(s, i + 1, gt) || schemeEnd(s, i + 1) < 0) return -1;
  st.uriFrom = i + 1;
  st.uriTo = gt;
  return gt + 1;
}

/** The usual name-addr shape (`"Alice" <sip:…>;tag=…`, `Bob <sip:…>`, `<sip:…>`): whatever it
 *  matches, scanNameAddr accepts. */
const NAME_ADDR_FAST = new RegExp(
  `^(?:"[^"\\\\]*" ?|[${TOKEN_CHARS_RE} ]*)<[A-Za-z][A-Za-z0-9+\\-.]*:[${URI_CHARS_RE}]*>${PARAMS_RE}$`,
);

/** Whether text is a well-formed name-addr / addr-spec with params (no allocation). */
export function isValidNameAddr(text: string): boolean {
  return typeof text === 'string' && (NAME_ADDR_FAST.test(text) || scanNameAddr(text, null));
}

/** Parse one name-addr or addr-spec value. Returns null on any syntax error (unbalanced quote,
 *  whitespace inside <>, non-token display name, addr-spec that needed <>, empty params). */
export function parseNameAddr(text: string): NameAddr | null {
  if (typeof text !== 'string') return null;
  const params = new Map<string, string>();
  if (!scanNameAddr(text, params)) return null;
  const na: NameAddr = { uri: text.slice(st.uriFrom, st.uriTo), params };
  if (st.dnFrom >= 0) na.displayName = st.dnQuoted ? unquote(text, st.dnFrom, st.dnTo) : text.slice(st.dnFrom, st.dnTo);
  return na;
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
