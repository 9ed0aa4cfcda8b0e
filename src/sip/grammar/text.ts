// Control characters in header text (RFC 3261 §25.1): TEXT-UTF8 and every other header value
// production exclude the CTLs (%x00-1F, %x7F) except as part of LWS, i.e. HTAB (and the CRLF of
// a folded line, which the parser has already removed). A NUL, a bare CR, a vertical tab or a DEL
// in a value is therefore malformed, and dangerous besides: C-string stacks cut at NUL and
// some stacks end a line at a bare CR, so two elements would read different messages.
// The one place a CTL other than CR/LF may appear is a quoted-pair inside a quoted-string
// (`quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)`, RFC 4475 §3.1.1.3 "intmeth").

/** Any C0 control other than HTAB, CR and LF, or DEL: one native scan (checked on the whole
 *  header section, where CR and LF are the line ends; bare CRs are the parser's own check). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CTL_IN_HEAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
/** Any C0 control other than HTAB, or DEL: for a single value, where no CR or LF belongs. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CTL_IN_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Whether a header value holds a control character other than HTAB (quoted-pairs included:
 *  for deciding whether a value can be echoed as it is). */
export function hasControlChar(value: string): boolean {
  return CTL_IN_VALUE.test(value);
}

const CTL_IN_HEAD_G = new RegExp(CTL_IN_HEAD.source, 'g');

/** Index of the first control character other than HTAB, CR and LF in `text` (a header section
 *  whose lines still end in CRLF or LF) that is not a quoted-pair inside a quoted-string, or -1. */
export function firstControlChar(text: string): number {
  if (!CTL_IN_HEAD.test(text)) return -1; // the usual case: one native scan
  const re = CTL_IN_HEAD_G;
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (!isQuotedPair(text, m.index)) return m.index;
  }
  return -1;
}

/** Whether text[at] is the escaped character of a quoted-pair inside a quoted-string of its
 *  header field (the field starts at the last line not beginning with SP/HTAB). */
function isQuotedPair(text: string, at: number): boolean {
  if (at === 0 || text.charCodeAt(at - 1) !== 92) return false;
  let ls = text.lastIndexOf('\n', at) + 1;
  while (ls > 1 && (text.charCodeAt(ls) === 32 || text.charCodeAt(ls) === 9)) ls = text.lastIndexOf('\n', ls - 2) + 1;
  let quoted = false;
  for (let i = ls; i < at; i++) {
    const c = text.charCodeAt(i);
    if (quoted && c === 92) {
      if (i + 1 === at) return true;
      i++;
    } else if (c === 34) quoted = !quoted;
  }
  return false;
}
