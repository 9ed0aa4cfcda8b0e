// Control characters in header text (RFC 3261 §25.1): TEXT-UTF8 and every other header value
// production exclude the CTLs (%x00-1F, %x7F) except as part of LWS, i.e. HTAB (and the CRLF of
// a folded line, which the parser has already removed). A NUL, a bare CR, a vertical tab or a DEL
// in a value is therefore malformed, and dangerous besides: C-string stacks cut at NUL and
// some stacks end a line at a bare CR, so two elements would read different messages.
// The one place a CTL other than CR/LF may appear is a quoted-pair inside a quoted-string
// (`quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)`, RFC 4475 §3.1.1.3 "intmeth").
//
// The structured readers (URI, name-addr, Via, params) refuse CTLs themselves; controlCharIn is
// for the values of every other header.

/** Anything but HTAB, printable ASCII and non-ASCII: a CTL (CR and LF included) or DEL. The
 *  negated class is what irregexp scans fastest. */
const CTL = /[^\t -~\u0080-\uffff]/;
const CTL_G = new RegExp(CTL.source, 'g');

/** Whether a header value holds a control character other than HTAB (quoted-pairs included:
 *  for deciding whether a value can be echoed as it is). */
export function hasControlChar(value: string): boolean {
  return CTL.test(value);
}

/** Index of the first control character other than HTAB in a header value that is not the
 *  escaped character of a quoted-pair, or -1. */
export function controlCharIn(value: string): number {
  if (!CTL.test(value)) return -1; // the usual case: one native scan
  const re = CTL_G;
  re.lastIndex = 0;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    const c = value.charCodeAt(m.index);
    if (c === 10 || c === 13 || !isQuotedPair(value, m.index)) return m.index;
  }
  return -1;
}

/** Whether value[at] is the escaped character of a quoted-pair inside a quoted-string. */
function isQuotedPair(value: string, at: number): boolean {
  if (at === 0 || value.charCodeAt(at - 1) !== 92) return false;
  let quoted = false;
  for (let i = 0; i < at; i++) {
    const c = value.charCodeAt(i);
    if (quoted && c === 92) {
      if (i + 1 === at) return true;
      i++;
    } else if (c === 34) quoted = !quoted;
  }
  return false;
}
