// Telephone numbers in URIs (RFC 3966 §5.1.1 visual separators; RFC 8224 §8.3 canonical form).
//
// Two contracts, because the two callers truly need different things:
// - routingNumber: what a route's `called_prefix` is compared with. Total (never fails, any
//   user part is routable), drops only the visual separators and SP, keeps '+' so that `+44…`
//   and `44…` stay different routes.
// - canonicalTelephoneNumber: the RFC 8224 §8.3 form a PASSporT's `orig`/`dest` is compared in.
//   Partial: digits, '#' and '*' only, no '+', 1–32 characters; anything else is not a
//   telephone number (undefined).

/** RFC 3966 visual-separator ("-" / "." / "(" / ")") and SP: `+44 (20) 7946-0000` → `+442079460000`. */
export function routingNumber(user: string): string {
  let i = 0;
  const n = user.length;
  while (i < n && !isRoutingSeparator(user.charCodeAt(i))) i++;
  if (i === n) return user; // usual case: nothing to remove, no copy
  let out = user.slice(0, i);
  for (; i < n; i++) {
    const c = user.charCodeAt(i);
    if (!isRoutingSeparator(c)) out += user[i];
  }
  return out;
}

function isRoutingSeparator(c: number): boolean {
  return c === 45 || c === 46 || c === 40 || c === 41 || c === 32;
}

const VISUAL_SEPARATORS = /[-.()\s]/g;
const LEADING_PLUS = /^\+/;
const TN_DIGITS = /^[0-9#*]{1,32}$/;

/** RFC 8224 §8.3: the canonical form of a telephone number (separators and any whitespace
 *  removed, leading '+' dropped, then 1–32 of [0-9#*]), or undefined when it is not one. */
export function canonicalTelephoneNumber(tn: string): string | undefined {
  // Fast path, same result: '+'? followed by 1–32 of [0-9#*] is already canonical but for the '+'.
  const start = tn.charCodeAt(0) === 43 /* + */ ? 1 : 0;
  const n = tn.length - start;
  if (n >= 1 && n <= 32) {
    let i = start;
    for (; i < tn.length; i++) {
      const ch = tn.charCodeAt(i);
      if (!((ch >= 48 && ch <= 57) || ch === 35 /* # */ || ch === 42 /* * */)) break;
    }
    if (i === tn.length) return start ? tn.slice(1) : tn;
  }
  const t = tn.replace(VISUAL_SEPARATORS, '').replace(LEADING_PLUS, '');
  return TN_DIGITS.test(t) ? t : undefined;
}

/** Whether a URI user part looks like a telephone number without `user=phone`
 *  (/^\+?[0-9\-.()\s]+$/ without the regex: most users are names and fail at the first character). */
export function isTelephoneShaped(user: string): boolean {
  const n = user.length;
  let i = user.charCodeAt(0) === 43 /* + */ ? 1 : 0;
  if (i >= n) return false;
  for (; i < n; i++) {
    const c = user.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || c === 45 /* - */ || c === 46 /* . */ || c === 40 /* ( */ || c === 41 /* ) */ || isSpace(c))) return false;
  }
  return true;
}

/** The characters \s matches (ECMAScript WhiteSpace and LineTerminator). */
function isSpace(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 160 || c === 5760 || (c >= 8192 && c <= 8202) || c === 8232 || c === 8233 || c === 8239 || c === 8287 || c === 12288 || c === 65279;
}
