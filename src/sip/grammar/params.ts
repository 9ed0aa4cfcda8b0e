// Header parameters (`;name[=value]` with LWS allowed around `;` and `=`, RFC 3261 §25.1
// generic-param) and quoted strings, shared by name-addr and Via parsing.
import { TOKEN, TOKEN_CHARS_RE, isWsp, skipWsp } from './chars.js';

/** Regex source for qdtext without quoted-pairs: no '"', no '\\', no control character but HTAB
 *  (RFC 3261 §25.1 qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII). */
export const QDTEXT_RE = '[^"\\\\\\x00-\\x08\\x0a-\\x1f\\x7f]';

/** Regex source for a subset of what parseParams accepts: `;name[=value]` pairs without any
 *  whitespace, quoted values without quoted-pairs. */
export const PARAMS_RE = `(?:;[${TOKEN_CHARS_RE}]+(?:=(?:[${TOKEN_CHARS_RE}:\\[\\]]+|"${QDTEXT_RE}*"))?)*`;

/** Index after the closing quote of the quoted-string starting at `i` (s[i] === '"'), or -1 when
 *  it is not closed or holds a control character other than HTAB outside a quoted-pair (qdtext;
 *  a quoted-pair may escape any character but CR and LF, RFC 4475 §3.1.1.3). */
export function quotedEnd(s: string, i: number, end = s.length): number {
  for (let j = i + 1; j < end; j++) {
    const c = s.charCodeAt(j);
    if (c === 92) {
      // quoted-pair: skip the escaped character
      const e = s.charCodeAt(j + 1);
      if (e === 10 || e === 13) return -1;
      j++;
    } else if (c === 34) return j + 1;
    else if ((c < 32 && c !== 9) || c === 127) return -1;
  }
  return -1;
}

/** Content of a quoted-string with quoted-pairs resolved. */
export function unquote(s: string, from: number, to: number): string {
  let out = '';
  let last = from + 1;
  for (let j = from + 1; j < to - 1; j++) {
    if (s.charCodeAt(j) === 92) {
      out += s.slice(last, j);
      last = j + 1;
      j++;
    }
  }
  return out + s.slice(last, to - 1);
}

/** Quote a string for a quoted-string, escaping `"`, `\` and characters not allowed as qdtext. */
export function quote(s: string): string {
  let out = '"';
  let last = 0;
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 34 || c === 92 || (c < 32 && c !== 9) || c === 127) {
      out += s.slice(last, j) + '\\' + s[j];
      last = j + 1;
    }
  }
  return out + s.slice(last) + '"';
}

function isValueChar(c: number): boolean {
  // gen-value = token / host / quoted-string; host adds ':' '[' ']' (IPv6) to token chars.
  return (c < 128 && TOKEN[c] === 1) || c === 58 || c === 91 || c === 93;
}

/** Parse generic params from s[i..end): `*( SWS ";" SWS name [ SWS "=" SWS value ] ) SWS`.
 *  Names are lower-cased; values kept as written (quoted values keep their quotes).
 *  With out === null it only validates (no allocation). */
export function parseParams(s: string, i: number, end: number, out: Map<string, string> | null): boolean {
  for (;;) {
    i = skipWsp(s, i, end);
    if (i >= end) return true;
    if (s.charCodeAt(i) !== 59) return false; // ';'
    i = skipWsp(s, i + 1, end);
    const nameStart = i;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c > 127 || TOKEN[c] !== 1) break;
      i++;
    }
    if (i === nameStart) return false;
    const nameEnd = i;
    i = skipWsp(s, i, end);
    if (i < end && s.charCodeAt(i) === 61) {
      // '='
      i = skipWsp(s, i + 1, end);
      const valueStart = i;
      if (i < end && s.charCodeAt(i) === 34) {
        const q = quotedEnd(s, i, end);
        if (q < 0) return false;
        i = q;
      } else {
        while (i < end && isValueChar(s.charCodeAt(i))) i++;
      }
      if (i === valueStart) return false;
      if (out !== null) out.set(s.slice(nameStart, nameEnd).toLowerCase(), s.slice(valueStart, i));
    } else if (out !== null) {
      out.set(s.slice(nameStart, nameEnd).toLowerCase(), '');
    }
    if (i < end && !isWsp(s.charCodeAt(i)) && s.charCodeAt(i) !== 59) return false;
  }
}

/** parseParams for s[i..] that PARAMS_RE matches to the end (no whitespace; quoted values
 *  without quoted-pairs, so the next '"' closes them): the same entries, found with indexOf. */
export function plainParams(s: string, i: number, out: Map<string, string>): void {
  const n = s.length;
  while (i < n) {
    // s[i] === ';'
    let j = i + 1;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 61 || c === 59) break; // '=' or ';'
      j++;
    }
    const name = s.slice(i + 1, j).toLowerCase();
    if (j < n && s.charCodeAt(j) === 61) {
      const v = j + 1;
      if (s.charCodeAt(v) === 34) j = s.indexOf('"', v + 1) + 1;
      else {
        j = s.indexOf(';', v);
        if (j < 0) j = n;
      }
      out.set(name, s.slice(v, j));
    } else out.set(name, '');
    i = j;
  }
}

/** `;k=v;k2` for a parameter map (values written as stored). */
export function formatParams(params: Map<string, string>): string {
  let s = '';
  for (const [k, v] of params) s += v === '' ? `;${k}` : `;${k}=${v}`;
  return s;
}

/**
 * Value of the `;name=value` parameter in `s` at or after `from` (name compared
 * case-insensitively, `name` given lower-case; a ';' inside a quoted string does not start a
 * parameter). Quoted values are returned without their quotes. Valueless parameter → ''.
 * Absent → undefined. Reads received values leniently (SP/HTAB around ';' and '='); use
 * parseParams to validate.
 */
export function paramValue(s: string, from: number, name: string): string | undefined {
  const n = s.length;
  let i = from;
  while (i < n) {
    // move to the next ';' outside quotes
    while (i < n && s.charCodeAt(i) !== 59) {
      if (s.charCodeAt(i) === 34) i = skipQuoted(s, i);
      else i++;
    }
    if (i >= n) return undefined;
    i = skipWsp(s, i + 1, n);
    const nStart = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 61 || c === 59 || isWsp(c)) break;
      i++;
    }
    const nEnd = i;
    i = skipWsp(s, i, n);
    const hasValue = i < n && s.charCodeAt(i) === 61;
    if (nEnd - nStart === name.length && equalsLower(s, nStart, name)) {
      if (!hasValue) return '';
      i = skipWsp(s, i + 1, n);
      if (i < n && s.charCodeAt(i) === 34) {
        const end = skipQuoted(s, i);
        return s.slice(i + 1, end - 1);
      }
      const vStart = i;
      while (i < n) {
        const c = s.charCodeAt(i);
        if (c === 59 || c === 44 || isWsp(c)) break;
        i++;
      }
      return s.slice(vStart, i);
    }
  }
  return undefined;
}

/** s[from, from+lower.length) equals `lower` ignoring ASCII case (no allocation). */
export function equalsLower(s: string, from: number, lower: string): boolean {
  if (from + lower.length > s.length) return false;
  for (let k = 0; k < lower.length; k++) {
    let c = s.charCodeAt(from + k);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** Index just past the closing quote of the quoted-string opening at `i`; s.length when it is
 *  not closed (lenient readers treat the rest as quoted). */
export function skipQuoted(s: string, i: number): number {
  const n = s.length;
  for (let j = i + 1; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c === 92) j++;
    else if (c === 34) return j + 1;
  }
  return n;
}
