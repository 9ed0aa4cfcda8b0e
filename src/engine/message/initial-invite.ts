// Which datagrams may wait: a scan of the raw bytes, before any parse, that tells an initial
// INVITE (RFC 3261 §12.1: a request that may create a dialog, so its To has no tag) from
// everything else (responses, ACK, BYE, CANCEL, PRACK, any request with a To tag).
//
// Why: under overload the primary reads every datagram in the kernel's order; the 200, ACK and
// BYE of calls already admitted would wait behind every new INVITE queued before them. The
// priority ingress (src/engine/overload/ingress.ts) holds initial INVITEs back and lets the rest
// through at once; this scan is its classifier.
//
// Contract: allocation-free, never throws, linear in the header section. It is not a parser:
// on malformed input it may answer either way, and that only changes when the message is
// parsed, never how (the parser still decides 400s; the core still reads the To tag itself).
// What it reads: the method at the start (after CR/LF keep-alive bytes the parser skips too), then
// the first To header (long or compact name `t`, any case, folded lines included) up to the
// empty line; a `tag` parameter outside `<…>` and quoted strings means a To tag
// (RFC 3261 §20: a URI with parameters must be in angle brackets).

const CR = 0x0d, LF = 0x0a, SP = 0x20, HT = 0x09, COLON = 0x3a, SEMI = 0x3b, LT = 0x3c, GT = 0x3e, DQUOTE = 0x22, BSLASH = 0x5c;
const INVITE_SP = [0x49, 0x4e, 0x56, 0x49, 0x54, 0x45, 0x20] as const; // "INVITE "

/** ASCII lower case of one byte (letters only). */
const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

/** True for an INVITE request whose To header carries no tag (or that has no To header). */
export function isInitialInvite(b: Uint8Array): boolean {
  const n = b.length;
  let i = 0;
  while (i < n && (b[i] === CR || b[i] === LF)) i++;
  if (n - i < INVITE_SP.length) return false;
  for (let k = 0; k < INVITE_SP.length; k++) if (b[i + k] !== INVITE_SP[k]) return false;
  // The header lines, one per LF; a line that starts with SP/HT continues the one before.
  i = nextLine(b, i);
  while (i < n) {
    const c = b[i]!;
    if (c === CR || c === LF) return true; // the empty line: no To header
    const end = headerEnd(b, i);
    if (isToName(b, i, end)) return !hasTag(b, b.indexOf(COLON, i) + 1, end);
    i = end;
  }
  return true;
}

/** Index after the LF that ends the line starting at `i` (n when there is none). */
function nextLine(b: Uint8Array, i: number): number {
  const lf = b.indexOf(LF, i);
  return lf < 0 ? b.length : lf + 1;
}

/** Index after a header field starting at `i`, its folded continuation lines included. */
function headerEnd(b: Uint8Array, i: number): number {
  let e = nextLine(b, i);
  while (e < b.length && (b[e] === SP || b[e] === HT)) e = nextLine(b, e);
  return e;
}

/** Whether the header field at [i, end) is named `To` or `t` (any case; SP/HT before the colon). */
function isToName(b: Uint8Array, i: number, end: number): boolean {
  let j = i;
  if (lower(b[j]!) !== 0x74) return false; // t
  j++;
  if (j < end && lower(b[j]!) === 0x6f) j++; // o
  while (j < end && (b[j] === SP || b[j] === HT)) j++;
  return j < end && b[j] === COLON;
}

/** Whether the header value in [i, end) has a `tag` parameter outside `<…>` and quotes. */
function hasTag(b: Uint8Array, i: number, end: number): boolean {
  let inQuote = false;
  let inAngle = false;
  for (let j = i; j < end; j++) {
    const c = b[j]!;
    if (inQuote) {
      if (c === BSLASH) j++;
      else if (c === DQUOTE) inQuote = false;
    } else if (inAngle) {
      if (c === GT) inAngle = false;
    } else if (c === DQUOTE) inQuote = true;
    else if (c === LT) inAngle = true;
    else if (c === SEMI) {
      let k = skipWs(b, j + 1, end);
      if (k + 3 <= end && lower(b[k]!) === 0x74 && lower(b[k + 1]!) === 0x61 && lower(b[k + 2]!) === 0x67) { // tag
        k = skipWs(b, k + 3, end);
        if (k < end && b[k] === 0x3d) return true; // =
      }
    }
  }
  return false;
}

/** Skip SP, HT and the CR/LF of a folded line. */
function skipWs(b: Uint8Array, j: number, end: number): number {
  while (j < end && (b[j] === SP || b[j] === HT || b[j] === CR || b[j] === LF)) j++;
  return j;
}
