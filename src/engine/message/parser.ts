// SIP message parser (RFC 3261 §7, §25): bytes → SipMessage, with limits (RFC 6404 §4.11).
// Never throws: malformed input yields { ok: false } with a status to answer requests with
// and the headers needed to build that answer (RFC 3261 §8.2.6.2). Robust against the
// RFC 4475 torture tests (test/fixtures/torture).
import type { HeaderField, ParseLimits, ParseResult, SipMessage } from './types.js';
import { DEFAULT_PARSE_LIMITS } from './types.js';
import { TOKEN, isToken, isWsp, parseDigits } from '../../sip/grammar/chars.js';
import { LIST_HEADERS, canonicalName, knownName, learnSpelling, spellingAt, type Spelling } from './names.js';
import { splitCommaList } from '../../sip/grammar/list.js';
import { isValidNameAddr } from '../../sip/grammar/nameaddr.js';
import { URI_INVALID, URI_WITH_HEADERS, checkUri } from '../../sip/grammar/uri.js';
import { isValidVia } from '../../sip/grammar/via.js';
import { MAX_REQUEST_CSEQ, parseCSeq } from '../../sip/grammar/cseq.js';
import { controlCharIn, hasControlChar } from '../../sip/grammar/text.js';
import { HEAD_END, HEAD_NON_ASCII, HEAD_NOT_FOUND, HEAD_UNCLEAN, cleanHeaderBytes, scanHead } from '../../sip/grammar/ctl-scan.js';

type Kind = 'request' | 'response' | 'unknown';
type Failure = Extract<ParseResult, { ok: false }>;

/** Status codes used for failures. 513 (Message Too Large, RFC 3261 §21.5.13) when the header
 *  section or the header count/length exceed limits; 413 when the body makes the message too big;
 *  414 for an over-long Request-URI; 505 for a SIP version other than 2.0. */
export const STATUS_BAD_REQUEST = 400;
export const STATUS_ENTITY_TOO_LARGE = 413;
export const STATUS_URI_TOO_LONG = 414;
export const STATUS_MESSAGE_TOO_LARGE = 513;
export const STATUS_VERSION_NOT_SUPPORTED = 505;

/** The reason phrase answered for each failure status: peergate's fixed wording (RFC 3261
 *  §21), never text from the input. The detail in `error` is for logs and metrics only. 400
 *  keeps "Bad Request", the phrase drachtio-server answers with too. */
export const FAILURE_REASONS: Readonly<Record<number, string>> = {
  [STATUS_BAD_REQUEST]: 'Bad Request',
  [STATUS_ENTITY_TOO_LARGE]: 'Request Entity Too Large',
  [STATUS_URI_TOO_LONG]: 'Request-URI Too Long',
  [STATUS_VERSION_NOT_SUPPORTED]: 'Version Not Supported',
  [STATUS_MESSAGE_TOO_LARGE]: 'Message Too Large',
};

/** Headers an error response needs (RFC 3261 §8.2.6.2), kept in failures. */
const RECOVERED = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

/** Parse one SIP message (a datagram, or one frame cut from a stream by Content-Length).
 *  A Content-Length larger than the bytes present is an error; extra bytes after the body are
 *  ignored (RFC 3261 §18.3). Without Content-Length the body is the rest of the buffer. The
 *  returned body is a view of `buf` (no copy). */
export function parseMessage(buf: Buffer, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParseResult {
  try {
    return parse(buf, limits === DEFAULT_PARSE_LIMITS ? limits : checkedLimits(limits));
  } catch (err) {
    // Defence in depth: parse() is written not to throw; if it does, the message is bad input.
    return failure('unknown', STATUS_BAD_REQUEST, `unparseable message (${(err as Error)?.message ?? String(err)})`, []);
  }
}

const checkedCache = new WeakMap<ParseLimits, ParseLimits>();

/** Limits with every field a non-negative number: a field that is missing or not a number (say,
 *  from a partial config object) takes its default instead of silently disabling the check. */
function checkedLimits(limits: ParseLimits): ParseLimits {
  if (typeof limits !== 'object' || limits === null) return DEFAULT_PARSE_LIMITS;
  const hit = checkedCache.get(limits);
  if (hit !== undefined) return hit;
  const pick = (k: keyof ParseLimits): number => {
    const v = limits[k];
    return typeof v === 'number' && v >= 0 && !Number.isNaN(v) ? v : DEFAULT_PARSE_LIMITS[k];
  };
  const out: ParseLimits = {
    maxMessageBytes: pick('maxMessageBytes'),
    maxHeaders: pick('maxHeaders'),
    maxHeaderBytes: pick('maxHeaderBytes'),
    maxUriBytes: pick('maxUriBytes'),
  };
  checkedCache.set(limits, out);
  return out;
}

function failure(kind: Kind, status: number, error: string, headers: HeaderField[]): Failure {
  const recovered: HeaderField[] = [];
  // Values with a bare CR or another control character are left out: they could not be echoed
  // safely in the answer.
  for (const h of headers) if (RECOVERED.has(h.name) && !hasControlChar(h.value)) recovered.push(h);
  return { ok: false, kind, status, reason: FAILURE_REASONS[status] ?? 'Bad Request', error, headers: recovered };
}

function guessKind(buf: Buffer, start: number): Kind {
  if (buf.length - start >= 4 && (buf[start]! | 0x20) === 0x73 && (buf[start + 1]! | 0x20) === 0x69 && (buf[start + 2]! | 0x20) === 0x70 && buf[start + 3] === 0x2f)
    return 'response';
  const c = buf[start];
  return c !== undefined && c < 128 && c > 32 ? 'request' : 'unknown';
}

function parse(buf: Buffer, limits: ParseLimits): ParseResult {
  if (!Buffer.isBuffer(buf)) return failure('unknown', STATUS_BAD_REQUEST, 'input is not a Buffer', []);
  const len = buf.length;
  // RFC 3261 §7.5: CRLFs before the start-line are ignored (also keep-alives, RFC 5626 §3.5.1).
  let start = 0;
  while (start < len && (buf[start] === 13 || buf[start] === 10)) start++;
  if (start >= len) return failure('unknown', STATUS_BAD_REQUEST, 'empty message', []);
  const kind = guessKind(buf, start);

  // One SIMD pass (sip/grammar/ctl-scan.ts) finds the end of the header section and tells
  // whether the bytes before it hold no control character and no bare CR ("clean": then the
  // searches for a bare CR and the per-value control-character checks of issue #17 cannot find
  // anything and are skipped) and whether they are all ASCII (then decoding is a plain copy).
  const scan = scanHead(buf, start);
  let headEnd = scan >= 0 ? scan & HEAD_END : scan === HEAD_NOT_FOUND ? -1 : buf.indexOf(CRLFCRLF, start);
  let sepLen = 4;
  if (headEnd < 0) {
    headEnd = buf.indexOf(LFLF, start);
    sepLen = 2;
  }

  if (len > limits.maxMessageBytes) {
    const headTooBig = headEnd < 0 || headEnd + sepLen > limits.maxMessageBytes;
    const scanEnd = Math.min(len, limits.maxMessageBytes, headEnd < 0 ? len : headEnd);
    const headers = recoverHeaders(buf, start, scanEnd, limits);
    return headTooBig
      ? failure(kind, STATUS_MESSAGE_TOO_LARGE, `message exceeds ${limits.maxMessageBytes} bytes`, headers)
      : failure(kind, STATUS_ENTITY_TOO_LARGE, `message body makes the message exceed ${limits.maxMessageBytes} bytes`, headers);
  }
  if (headEnd < 0) {
    return failure(kind, STATUS_BAD_REQUEST, 'header section not terminated by an empty line', recoverHeaders(buf, start, len, limits));
  }

  const clean = sepLen === 4 ? scan >= 0 && (scan & HEAD_UNCLEAN) === 0 : cleanHeaderBytes(buf, start, headEnd);
  const head = sepLen === 4 && scan >= 0 && (scan & HEAD_NON_ASCII) === 0 ? buf.toString('latin1', start, headEnd) : buf.toString('utf8', start, headEnd);
  // CR only as part of CRLF (RFC 3261 §7.3.1): a bare CR could end a line for the next hop.
  const firstNl = head.indexOf('\n');
  const lineEnd = firstNl < 0 ? head.length : firstNl > 0 && head.charCodeAt(firstNl - 1) === 13 ? firstNl - 1 : firstNl;

  const headers: HeaderField[] = [];
  const cr = clean ? -1 : head.indexOf('\r');
  if (cr >= 0 && cr < lineEnd) return failure(kind, STATUS_BAD_REQUEST, 'bare CR in start line', recoverHeaders(buf, start, headEnd, limits));
  const headerError = collectHeaders(head, firstNl < 0 ? head.length : firstNl + 1, limits, headers, clean);
  if (headerError !== null) return failure(kind, headerStatus, headerError, headers);

  // ---- start line (head[0..lineEnd): read in place, the ops are cheaper on head than on a slice)
  let msg: SipMessage;
  if (kind === 'response') {
    const r = parseStatusLine(head, lineEnd);
    if (typeof r === 'string') return failure('response', STATUS_BAD_REQUEST, r, headers);
    if (!clean && hasControlChar(r.reason)) return failure('response', STATUS_BAD_REQUEST, 'control character in Reason-Phrase', headers);
    msg = { kind: 'response', status: r.status, reason: r.reason, headers, body: EMPTY };
  } else {
    const r = parseRequestLine(head, lineEnd, limits);
    if (typeof r === 'string') return failure(requestLineKind, requestLineStatus, r, headers);
    msg = { kind: 'request', method: r.method, uri: r.uri, headers, body: EMPTY };
  }
  const mkind: Kind = msg.kind;

  // ---- header semantics (RFC 3261 §8.2.2, §20; RFC 4475 §3.1.2, §3.3)
  let vias = 0;
  let from = -1;
  let to = -1;
  let callId = -1;
  let cseq = -1;
  let contentLength = -1;
  for (let idx = 0; idx < headers.length; idx++) {
    const h = headers[idx]!;
    switch (h.name) {
      case 'via':
        if (!isValidVia(h.value)) return failure(mkind, STATUS_BAD_REQUEST, `malformed Via: ${clip(h.value)}`, headers);
        vias++;
        break;
      case 'from':
      case 'to':
        if (h.name === 'from' ? from >= 0 : to >= 0) return failure(mkind, STATUS_BAD_REQUEST, `multiple ${h.raw} header fields`, headers);
        if (!isValidNameAddr(h.value)) return failure(mkind, STATUS_BAD_REQUEST, `malformed ${h.raw}: ${clip(h.value)}`, headers);
        if (h.name === 'from') from = idx;
        else to = idx;
        break;
      case 'call-id':
        if (callId >= 0) return failure(mkind, STATUS_BAD_REQUEST, 'multiple Call-ID header fields', headers);
        // (two indexOf calls cost less than one regex test here)
        if (h.value.length === 0 || h.value.indexOf(' ') >= 0 || h.value.indexOf('\t') >= 0 || (!clean && hasControlChar(h.value)))
          return failure(mkind, STATUS_BAD_REQUEST, 'malformed Call-ID', headers);
        callId = idx;
        break;
      case 'cseq':
        if (cseq >= 0) return failure(mkind, STATUS_BAD_REQUEST, 'multiple CSeq header fields', headers);
        cseq = idx;
        break;
      case 'max-forwards':
        // RFC 3261 §20.22: 0-255 (RFC 4475 §3.1.2.4)
        if (parseDigits(h.value, 0, h.value.length, 255) < 0)
          return failure(mkind, STATUS_BAD_REQUEST, `malformed Max-Forwards: ${clip(h.value)}`, headers);
        break;
      case 'content-length': {
        if (contentLength >= 0) return failure(mkind, STATUS_BAD_REQUEST, 'multiple Content-Length header fields', headers);
        const n = parseDigits(h.value, 0, h.value.length, Number.MAX_SAFE_INTEGER);
        if (n < 0) return failure(mkind, STATUS_BAD_REQUEST, `malformed Content-Length: ${clip(h.value)}`, headers);
        contentLength = n;
        break;
      }
      case 'contact':
        if (h.value !== '*' && !isValidNameAddr(h.value))
          return failure(mkind, STATUS_BAD_REQUEST, `malformed Contact: ${clip(h.value)}`, headers);
        break;
      case 'route':
      case 'record-route':
        if (!isValidNameAddr(h.value)) return failure(mkind, STATUS_BAD_REQUEST, `malformed ${h.raw}: ${clip(h.value)}`, headers);
        break;
      case 'date':
        // rfc1123-date is always in GMT (RFC 3261 §20.17, RFC 4475 §3.1.2.12)
        if (!h.value.endsWith(' GMT') || (!clean && hasControlChar(h.value))) return failure(mkind, STATUS_BAD_REQUEST, `malformed Date: ${clip(h.value)}`, headers);
        break;
      default: {
        // Values no reader above validates: no control character but HTAB outside a quoted-pair
        // (RFC 3261 §25.1; Via, From, To, Contact, Route, Record-Route and the numbers refuse
        // them through their grammar, a bare CR was refused while collecting the lines).
        if (!clean) {
          const at = controlCharIn(h.value);
          if (at >= 0) return failure(mkind, STATUS_BAD_REQUEST, controlCharError(h.raw, h.value, at), headers);
        }
      }
    }
  }
  if (vias === 0) return failure(mkind, STATUS_BAD_REQUEST, 'missing Via header field', headers);
  if (from < 0) return failure(mkind, STATUS_BAD_REQUEST, 'missing From header field', headers);
  if (to < 0) return failure(mkind, STATUS_BAD_REQUEST, 'missing To header field', headers);
  if (callId < 0) return failure(mkind, STATUS_BAD_REQUEST, 'missing Call-ID header field', headers);
  if (cseq < 0) return failure(mkind, STATUS_BAD_REQUEST, 'missing CSeq header field', headers);
  if (!isPlainCSeqOf(headers[cseq]!.value, msg)) {
    // A request's number is below 2**31 (RFC 3261 §8.1.1.5, see sip/grammar/cseq.ts); so is a
    // response's, which echoes a request's.
    const cs = parseCSeq(headers[cseq]!.value, MAX_REQUEST_CSEQ);
    if (cs === null) return failure(mkind, STATUS_BAD_REQUEST, `malformed CSeq: ${clip(headers[cseq]!.value)}`, headers);
    if (msg.kind === 'request' && cs.method !== msg.method)
      return failure(mkind, STATUS_BAD_REQUEST, `CSeq method ${clip(cs.method)} does not match request method ${clip(msg.method)}`, headers);
  }

  // ---- body (RFC 3261 §18.3, §20.14)
  const bodyStart = headEnd + sepLen;
  const available = len - bodyStart;
  if (contentLength < 0) {
    msg.body = available > 0 ? buf.subarray(bodyStart) : EMPTY;
  } else {
    if (contentLength > available)
      return failure(mkind, STATUS_BAD_REQUEST, `Content-Length ${contentLength} larger than the ${available} bytes received`, headers);
    msg.body = contentLength > 0 ? buf.subarray(bodyStart, bodyStart + contentLength) : EMPTY;
  }
  return { ok: true, message: msg };
}

const EMPTY = Buffer.alloc(0);

/** Whether a request's CSeq is plainly `<digits> SP <its method>` with a number below 2**31:
 *  then parseCSeq accepts it and the checks above pass, so the usual case skips building the
 *  CSeq. (msg.method is a token, so the value has no trailing whitespace to trim.) */
function isPlainCSeqOf(value: string, msg: SipMessage): boolean {
  if (msg.kind !== 'request') return false;
  const sp = value.length - msg.method.length - 1;
  return (
    sp > 0 &&
    sp <= 9 &&
    value.charCodeAt(sp) === 32 &&
    parseDigits(value, 0, sp, 0x7fff_ffff) >= 0 &&
    value.slice(sp + 1) === msg.method
  );
}

/** `control character 0x00 in From`: names the field and the character, never echoes the value. */
function controlCharError(where: string, value: string, at: number): string {
  return `control character 0x${value.charCodeAt(at).toString(16).padStart(2, '0')} in ${clip(where)}`;
}

/** Input quoted in an error detail is cut, so that the detail stays bounded (fuzz finding F1). */
function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// ---- header section

// Status for the error collectHeaders returned (module-level out-parameter, single-threaded).
let headerStatus = STATUS_BAD_REQUEST;

/** Unfold and collect the header lines of `head` from `pos` into `out`. Returns an error message
 *  or null. Keeps collecting after a malformed line so that failures still carry Via/From/To.
 *  noBareCr: the header bytes are known to hold no CR but before an LF (no search needed). */
function collectHeaders(head: string, pos: number, limits: ParseLimits, out: HeaderField[], noBareCr: boolean): string | null {
  const n = head.length;
  let error: string | null = null;
  headerStatus = STATUS_BAD_REQUEST;
  let lines = 0;
  let raw: string | undefined;
  let name = '';
  let value = '';
  let list = false;
  let comma = false; // whether value may contain ',' (exact for one line, true after folding)
  let sawEmpty = false; // whether an empty value was pushed (only then look for empty list elements)
  let nextCr = noBareCr ? -1 : head.indexOf('\r', pos);
  let nextComma = -1; // n once there is none left; searched in head (indexOf on a slice is slower)
  while (pos < n) {
    let e = head.indexOf('\n', pos);
    if (e < 0) e = n;
    let lineEnd = e;
    if (lineEnd > pos && head.charCodeAt(lineEnd - 1) === 13) lineEnd--;
    // CR only as part of CRLF (RFC 3261 §7.3.1): a bare CR could end a line for the next hop.
    // (nextCr is kept across lines so LF-only input is not rescanned: linear, not quadratic)
    if (nextCr >= 0 && nextCr < pos) nextCr = head.indexOf('\r', pos);
    if (nextCr >= 0 && nextCr < lineEnd) {
      error ??= 'bare CR in header section';
      raw = undefined;
      pos = e + 1;
      continue;
    }
    const c = head.charCodeAt(pos);
    if (c === 32 || c === 9) {
      // LWS continuation (RFC 3261 §7.3.1): folded into the previous value as one SP
      let a = pos;
      while (a < lineEnd && isWsp(head.charCodeAt(a))) a++;
      let b = lineEnd;
      while (b > a && isWsp(head.charCodeAt(b - 1))) b--;
      if (raw === undefined) error ??= 'continuation line before the first header field';
      else if (b > a) {
        value = value.length === 0 ? head.slice(a, b) : `${value} ${head.slice(a, b)}`;
        comma = true;
      }
    } else {
      if (raw !== undefined && pushField(name, raw, value, list && comma, out)) sawEmpty = true;
      raw = undefined;
      if (++lines > limits.maxHeaders) {
        headerStatus = STATUS_MESSAGE_TOO_LARGE;
        return `more than ${limits.maxHeaders} header fields`;
      }
      // field-name (a token), optional SP/HTAB, ':' (RFC 3261 §7.3.1 HCOLON): usually a known
      // spelling directly followed by ':'.
      let sp = spellingAt(head, pos, lineEnd);
      let i: number; // the ':'
      if (sp !== undefined) {
        i = pos + sp.raw.length;
      } else {
        sp = scanFieldName(head, pos, lineEnd);
        i = fieldColon;
      }
      if (sp === undefined) {
        error ??= `malformed header line: ${clip(head.slice(pos, lineEnd))}`;
      } else {
        raw = sp.raw;
        name = sp.name;
        list = sp.list;
      }
      if (raw !== undefined) {
        let a = i + 1;
        while (a < lineEnd && isWsp(head.charCodeAt(a))) a++;
        let b = lineEnd;
        while (b > a && isWsp(head.charCodeAt(b - 1))) b--;
        value = head.slice(a, b);
        if (list) {
          if (nextComma < a) {
            nextComma = head.indexOf(',', a);
            if (nextComma < 0) nextComma = n;
          }
          comma = nextComma < b;
        }
      }
    }
    if (raw !== undefined && value.length > limits.maxHeaderBytes) {
      headerStatus = STATUS_MESSAGE_TOO_LARGE;
      return `header field ${clip(raw)} longer than ${limits.maxHeaderBytes} bytes`;
    }
    pos = e + 1;
  }
  if (raw !== undefined && pushField(name, raw, value, list && comma, out)) sawEmpty = true;
  if (error === null && sawEmpty) {
    for (const h of out) {
      if (h.value.length === 0 && (h.name === 'via' || h.name === 'contact' || h.name === 'route' || h.name === 'record-route')) {
        return `empty element in ${h.raw} list`;
      }
    }
  }
  return error;
}

// Index of the ':' after the name scanFieldName found (module-level out-parameter).
let fieldColon = 0;

/** The field name at head[pos..): a token, optional SP/HTAB, ':' (RFC 3261 §7.3.1 HCOLON). For
 *  lines whose spelling spellingAt() does not know yet; learns it. undefined if malformed. */
function scanFieldName(head: string, pos: number, lineEnd: number): Spelling | undefined {
  const tokenTable = TOKEN; // local copy: imported bindings are re-read through a module cell
  let i = pos;
  let hash = 0;
  while (i < lineEnd) {
    const ch = head.charCodeAt(i);
    if (ch > 127 || tokenTable[ch] !== 1) break;
    hash = (Math.imul(hash, 31) + (ch | 0x20)) | 0; // names.ts nameHashStep, inlined
    i++;
  }
  const nameEnd = i;
  while (i < lineEnd && isWsp(head.charCodeAt(i))) i++;
  if (nameEnd === pos || i >= lineEnd || head.charCodeAt(i) !== 58) return undefined;
  fieldColon = i;
  const raw = head.slice(pos, nameEnd);
  const name = knownName(head, pos, nameEnd, hash) ?? canonicalName(raw);
  if (nameEnd === i) learnSpelling(raw, name);
  return { raw, name, list: LIST_HEADERS.has(name) };
}

/** split: whether name is in LIST_HEADERS and value may contain ','. Returns whether an empty
 *  value was pushed. */
function pushField(name: string, raw: string, value: string, split: boolean, out: HeaderField[]): boolean {
  if (!split || value.indexOf(',') < 0) {
    out.push({ name, raw, value });
    return value.length === 0;
  }
  // Empty elements are kept so that validation rejects them (RFC 4475 §3.1.2.1).
  let empty = false;
  for (const part of splitCommaList(value, true)) {
    out.push({ name, raw, value: part });
    if (part.length === 0) empty = true;
  }
  return empty;
}

/** Best-effort Via/From/To/Call-ID/CSeq from a message that could not be framed. */
function recoverHeaders(buf: Buffer, start: number, end: number, limits: ParseLimits): HeaderField[] {
  const text = buf.toString('utf8', start, Math.min(end, start + limits.maxMessageBytes));
  const nl = text.indexOf('\n');
  if (nl < 0) return [];
  const out: HeaderField[] = [];
  collectHeaders(text, nl + 1, { ...limits, maxHeaderBytes: Math.min(limits.maxHeaderBytes, 8192) }, out, false);
  const kept: HeaderField[] = [];
  for (const h of out) if (RECOVERED.has(h.name)) kept.push(h);
  return kept;
}

// ---- start line

let requestLineKind: Kind = 'request';
let requestLineStatus = STATUS_BAD_REQUEST;

function isSipVersion(s: string, from: number, to: number): boolean {
  return (
    to - from === 7 &&
    (s.charCodeAt(from) | 0x20) === 0x73 &&
    (s.charCodeAt(from + 1) | 0x20) === 0x69 &&
    (s.charCodeAt(from + 2) | 0x20) === 0x70 &&
    s.charCodeAt(from + 3) === 47 &&
    s.charCodeAt(from + 4) === 50 &&
    s.charCodeAt(from + 5) === 46 &&
    s.charCodeAt(from + 6) === 48
  );
}

/** `SIP/<digits>.<digits>` other than 2.0. */
function isOtherSipVersion(s: string, from: number, to: number): boolean {
  if (to - from < 7 || s.slice(from, from + 4).toUpperCase() !== 'SIP/') return false;
  const dot = s.indexOf('.', from + 4);
  return dot > from + 4 && dot < to - 1 && parseDigits(s, from + 4, dot, 1e6) >= 0 && parseDigits(s, dot + 1, to, 1e6) >= 0;
}

/** Index of the first SP in s[from..end), or -1. */
function spaceIn(s: string, from: number, end: number): number {
  const i = s.indexOf(' ', from);
  return i < end ? i : -1;
}

/** `Method SP Request-URI SP SIP-Version` with exactly one SP between elements (RFC 3261 §7.1),
 *  the line being s[0..end). */
function parseRequestLine(s: string, end: number, limits: ParseLimits): { method: string; uri: string } | string {
  requestLineKind = 'request';
  requestLineStatus = STATUS_BAD_REQUEST;
  const sp1 = spaceIn(s, 0, end);
  if (sp1 <= 0 || !isToken(s, 0, sp1)) {
    requestLineKind = 'unknown';
    return `malformed start line: ${clip(s.slice(0, end))}`;
  }
  const sp2 = spaceIn(s, sp1 + 1, end);
  if (sp2 < 0) return `malformed Request-Line: ${clip(s.slice(0, end))}`;
  if (sp2 === sp1 + 1 || spaceIn(s, sp2 + 1, end) >= 0)
    return `malformed Request-Line (extra SP or LWS in Request-URI): ${clip(s.slice(0, end))}`;
  if (!isSipVersion(s, sp2 + 1, end)) {
    if (isOtherSipVersion(s, sp2 + 1, end)) {
      requestLineStatus = STATUS_VERSION_NOT_SUPPORTED;
      return `SIP version not supported: ${clip(s.slice(sp2 + 1, end))}`;
    }
    return `malformed SIP-Version in Request-Line: ${clip(s.slice(0, end))}`;
  }
  if (sp2 - sp1 - 1 > limits.maxUriBytes) {
    requestLineStatus = STATUS_URI_TOO_LONG;
    return `Request-URI longer than ${limits.maxUriBytes} bytes`;
  }
  const uri = s.slice(sp1 + 1, sp2);
  // sip:/sips:/tel: must parse, and sip(s) Request-URIs may not carry headers (RFC 3261 §19.1.1,
  // RFC 4475 §3.1.2.11); other schemes need only be URI text (RFC 4475 §3.3.2).
  const check = checkUri(uri);
  if (check === URI_INVALID) return `malformed Request-URI: ${clip(uri)}`;
  if (check === URI_WITH_HEADERS) return `Request-URI may not contain headers: ${clip(uri)}`;
  return { method: s.slice(0, sp1), uri };
}

/** `SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 §7.2), the line being s[0..end). */
function parseStatusLine(s: string, end: number): { status: number; reason: string } | string {
  const sp1 = spaceIn(s, 0, end);
  if (sp1 < 0) return `malformed Status-Line: ${clip(s.slice(0, end))}`;
  if (!isSipVersion(s, 0, sp1)) return `SIP version not supported: ${clip(s.slice(0, sp1))}`;
  const codeEnd = sp1 + 4;
  if (end < codeEnd || (end > codeEnd && s.charCodeAt(codeEnd) !== 32)) return `malformed Status-Code: ${clip(s.slice(0, end))}`;
  const status = parseDigits(s, sp1 + 1, codeEnd, 699);
  if (status < 100) return `malformed Status-Code: ${clip(s.slice(0, end))}`;
  return { status, reason: end > codeEnd ? s.slice(codeEnd + 1, end) : '' };
}
