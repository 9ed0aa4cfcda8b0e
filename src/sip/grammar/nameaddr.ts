// name-addr / addr-spec with header parameters (RFC 3261 §20.10, §25.1): From, To, Contact,
// Route, Record-Route, Refer-To, P-Asserted-Identity …
import type { NameAddr } from './types.js';
import { TOKEN, TOKEN_CHARS_RE, isWsp, skipWsp, trimWsp } from './chars.js';
import { PARAMS_RE, QDTEXT_RE, formatParams, paramValue, parseParams, quote, quotedEnd, skipQuoted, unquote } from './params.js';
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
  `^(?:"${QDTEXT_RE}*" ?|[${TOKEN_CHARS_RE} ]*)<[A-Za-z][A-Za-z0-9+\\-.]*:[${URI_CHARS_RE}]*>${PARAMS_RE}$`,
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

// Out-parameters of uriSpan (no result object on the hot path).
const span = { from: 0, to: 0, params: 0 };

/** Where the URI of a name-addr / addr-spec value is (span.from..span.to, untrimmed) and where its
 *  header parameters start (span.params): after the '>' of a name-addr (a quoted display name may
 *  hold '<', '>' and ';'), at the first ';' of an addr-spec (RFC 3261 §20.10: there every ';'
 *  parameter is a header parameter). Lenient: for values the parser has already validated. */
function uriSpan(value: string): void {
  const n = value.length;
  let i = skipWsp(value, 0, n);
  if (value.charCodeAt(i) === 34) i = skipQuoted(value, i);
  const lt = value.indexOf('<', i);
  if (lt >= 0) {
    const gt = value.indexOf('>', lt + 1);
    span.from = lt + 1;
    span.to = gt < 0 ? n : gt;
    span.params = gt < 0 ? n : gt + 1;
  } else {
    const semi = value.indexOf(';', i);
    span.from = i;
    span.to = span.params = semi < 0 ? n : semi;
  }
}

/** Index where the header parameters of a name-addr / addr-spec value start (value.length when
 *  there are none). */
export function headerParamsStart(value: string): number {
  uriSpan(value);
  return span.params;
}

/** The URI of a name-addr or addr-spec value (between <> or up to the header parameters),
 *  trimmed; lenient, like headerParamsStart. */
export function addrSpecOf(value: string): string {
  uriSpan(value);
  return trimWsp(value.slice(span.from, span.to));
}

/** A header parameter (`name` lower-case) of a From/To/Contact/… value: '' when valueless,
 *  undefined when absent. */
export function headerParam(value: string, name: string): string | undefined {
  return paramValue(value, headerParamsStart(value), name);
}

/** The `tag` parameter of a From/To value (RFC 3261 §19.3): undefined when absent or empty
 *  (`tag = token`, so `;tag` and `;tag=` carry no tag). The one tag reader of the code base
 *  (transaction matching, dialogs, the SBE): runs on every message, so the usual name-addr skips
 *  straight past its last '>' and the usual parameters are read by tagAfter. */
export function getTag(value: string): string | undefined {
  // With no quoted string, the last '>' closes the URI (params hold tokens only); otherwise the
  // span reader skips the quoted display name.
  let from = -1;
  if (value.indexOf('"') < 0) from = value.lastIndexOf('>');
  return tagAfter(value, from >= 0 ? from + 1 : headerParamsStart(value));
}

/** `paramValue(s, from, 'tag') || undefined`: with no quoted string after `from` every ';' starts
 *  a parameter, so they are found with indexOf and only names of three characters compared. */
function tagAfter(s: string, from: number): string | undefined {
  if (s.indexOf('"', from) >= 0) return paramValue(s, from, 'tag') || undefined;
  const n = s.length;
  for (let i = s.indexOf(';', from); i >= 0; i = s.indexOf(';', i)) {
    i = skipWsp(s, i + 1, n);
    const name = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 61 || c === 59 || c === 32 || c === 9) break; // '=' ';' SP HTAB
      i++;
    }
    if (
      i - name === 3 &&
      (s.charCodeAt(name) | 0x20) === 0x74 && // t
      (s.charCodeAt(name + 1) | 0x20) === 0x61 && // a
      (s.charCodeAt(name + 2) | 0x20) === 0x67 // g
    ) {
      i = skipWsp(s, i, n);
      if (s.charCodeAt(i) !== 61) return undefined; // valueless
      const v = skipWsp(s, i + 1, n);
      let e = v;
      while (e < n) {
        const c = s.charCodeAt(e);
        if (c === 59 || c === 44 || c === 32 || c === 9) break; // ';' ',' SP HTAB
        e++;
      }
      return e > v ? s.slice(v, e) : undefined;
    }
  }
  return undefined;
}
