// Comma-separated header lists (RFC 3261 §7.3.1): split at commas that are not inside a
// quoted string (with its escapes) or <...>.
import { isWsp } from './chars.js';

/** Elements of a list value, trimmed of SP/HTAB. Empty elements are kept only when asked
 *  (so that validation can reject `Via: a,,b`). */
export function splitCommaList(value: string, keepEmpty = false): string[] {
  const out: string[] = [];
  let partStart = 0;
  let inQuote = false;
  let inAngle = false;
  const n = value.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? value.charCodeAt(i) : 44;
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
      if (i < n) continue;
    } else if (c === 34) {
      inQuote = true;
      continue;
    } else if (inAngle) {
      if (c === 62) inAngle = false;
      if (i < n) continue;
    } else if (c === 60) {
      inAngle = true;
      continue;
    }
    if (c !== 44 && i < n) continue;
    let a = partStart;
    let b = i < n ? i : n;
    while (a < b && isWsp(value.charCodeAt(a))) a++;
    while (b > a && isWsp(value.charCodeAt(b - 1))) b--;
    if (b > a || keepEmpty) out.push(value.slice(a, b));
    partStart = i + 1;
  }
  return out;
}
