// Cuts SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3): the header block ends at the
// first CRLF CRLF, and Content-Length (mandatory on streams) says how many body bytes follow.
// Between messages, a CRLF CRLF is an RFC 5626 §3.5.1 keep-alive "ping" (answered by the caller
// with a single CRLF "pong") and lone CRLFs are ignored. Anything the framer cannot frame is fatal
// for the connection: there is no way to resynchronise a stream, so the caller closes it.
//
// Hot path: byte loops and Buffer.indexOf only, no regex, no string conversion of the stream.

export type FrameError =
  | 'no-content-length'
  | 'bad-content-length'
  | 'header-too-large'
  | 'message-too-large'
  | 'garbage';

export interface FramerLimits {
  /** Largest complete message (header block + body) accepted, in bytes. */
  maxMessageSize: number;
  /** Largest header block (start line to CRLF CRLF inclusive), in bytes. */
  maxHeaderSize: number;
}

export const defaultFramerLimits: FramerLimits = { maxMessageSize: 65_535, maxHeaderSize: 16_384 };

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const CRLFCRLF = Buffer.from('\r\n\r\n');

const enum State { Idle, Header, Body }

export class StreamFramer {
  /** Unconsumed bytes (a view; see `owned`). */
  private pending: Buffer | null = null;
  /**
   * Growable store that `pending` starts at, when no delivered message points into it, so a
   * message trickling in byte by byte is appended in amortised O(1) instead of re-concatenated
   * (a slow-drip header would otherwise cost O(n²) copying).
   */
  private owned: Buffer | null = null;
  private state: State = State.Idle;
  /** Line ends seen back to back while idle (two = one keep-alive ping). */
  private idleLineEnds = 0;
  /** Where to resume the CRLF CRLF search inside `pending` (avoids rescanning split reads). */
  private searchFrom = 0;
  /** Total length of the message being collected (header + body), once known. */
  private frameLength = 0;
  private dead: FrameError | null = null;

  constructor(
    private readonly limits: FramerLimits,
    private readonly onMessage: (msg: Buffer) => void,
    private readonly onKeepAlive: () => void,
  ) {}

  /** The error that killed this stream, if any. */
  get error(): FrameError | null { return this.dead; }

  /** Bytes held back waiting for the rest of a message. */
  get buffered(): number { return this.pending?.length ?? 0; }

  /**
   * Feed bytes as they were read. Complete messages are delivered synchronously through
   * `onMessage`. Returns an error when the stream cannot be framed: the caller must close it.
   */
  push(chunk: Buffer): FrameError | null {
    if (this.dead) return this.dead;
    let data = this.pending === null ? chunk : this.append(this.pending, chunk);
    this.pending = null;
    for (;;) {
      if (this.state === State.Idle) {
        let pos = 0;
        const len = data.length;
        while (pos < len) {
          const b = data[pos]!;
          if (b === CR) { pos++; continue; }
          if (b !== LF) break;
          pos++;
          if (++this.idleLineEnds === 2) { this.idleLineEnds = 0; this.onKeepAlive(); }
        }
        if (pos === len) return null;
        this.idleLineEnds = 0;
        this.state = State.Header;
        this.searchFrom = 0;
        if (pos > 0) data = data.subarray(pos);
      }
      if (this.state === State.Header) {
        const from = this.searchFrom > 3 ? this.searchFrom - 3 : 0;
        const end = data.indexOf(CRLFCRLF, from);
        if (end < 0) {
          if (data.length > this.limits.maxHeaderSize) return this.fail('header-too-large');
          // Reject garbage as soon as the first line is complete, not after maxHeaderSize bytes.
          if (this.searchFrom === 0 || data.lastIndexOf(LF, this.searchFrom - 1) < 0) {
            const eol = data.indexOf(LF);
            if (eol >= 0 && !looksLikeStartLine(data, eol)) return this.fail('garbage');
          }
          this.searchFrom = data.length;
          this.pending = data;
          return null;
        }
        const headerLen = end + 4;
        if (headerLen > this.limits.maxHeaderSize) return this.fail('header-too-large');
        if (!looksLikeStartLine(data, data.indexOf(LF))) return this.fail('garbage');
        const cl = findContentLength(data, headerLen);
        if (cl === -1) return this.fail('no-content-length');
        if (cl === -2) return this.fail('bad-content-length');
        this.frameLength = headerLen + cl;
        if (this.frameLength > this.limits.maxMessageSize) return this.fail('message-too-large');
        this.state = State.Body;
      }
      // State.Body
      if (data.length < this.frameLength) { this.pending = data; return null; }
      const msg = data.subarray(0, this.frameLength);
      // The message now points into this memory: never write into it again.
      this.owned = null;
      data = data.subarray(this.frameLength);
      this.state = State.Idle;
      this.frameLength = 0;
      this.searchFrom = 0;
      this.onMessage(msg);
      if (this.dead) return this.dead;
      if (data.length === 0) return null;
    }
  }

  private append(pending: Buffer, chunk: Buffer): Buffer {
    const need = pending.length + chunk.length;
    const o = this.owned;
    if (o !== null && o.byteOffset === pending.byteOffset && o.buffer === pending.buffer && o.length >= need) {
      chunk.copy(o, pending.length);
      return o.subarray(0, need);
    }
    const grown = Buffer.allocUnsafeSlow(Math.max(need * 2, 1024));
    pending.copy(grown, 0);
    chunk.copy(grown, pending.length);
    this.owned = grown;
    return grown.subarray(0, need);
  }

  private fail(e: FrameError): FrameError {
    this.dead = e;
    this.pending = null;
    this.owned = null;
    return e;
  }
}

function lower(b: number): number { return b >= 0x41 && b <= 0x5a ? b | 0x20 : b; }

/** Start line: `SIP/2.0 <status> ...` or `<method> <uri> SIP/2.0` (version case-insensitive). */
function looksLikeStartLine(data: Buffer, eol: number): boolean {
  let end = eol;
  if (end > 0 && data[end - 1] === CR) end--;
  if (end < 9) return false;
  if (matchesVersion(data, 0) && data[7] === SP) return true;
  return data[end - 8] === SP && matchesVersion(data, end - 7);
}

function matchesVersion(d: Buffer, i: number): boolean {
  return lower(d[i]!) === 0x73 && lower(d[i + 1]!) === 0x69 && lower(d[i + 2]!) === 0x70 &&
    d[i + 3] === 0x2f && d[i + 4] === 0x32 && d[i + 5] === 0x2e && d[i + 6] === 0x30;
}

const CONTENT_LENGTH = Buffer.from('content-length');

/**
 * Content-Length from the header block `data[0, headerLen)`; the long or compact (`l`) name,
 * any case, whitespace before the colon allowed. -1 = absent, -2 = malformed or conflicting.
 */
export function findContentLength(data: Buffer, headerLen: number): number {
  let found = -1;
  let lineStart = data.indexOf(LF) + 1; // skip the start line
  while (lineStart > 0 && lineStart < headerLen - 2) {
    const first = data[lineStart]!;
    // Continuation lines (folding) never start a header.
    if (first !== SP && first !== HT) {
      let nameEnd = -1;
      const c0 = lower(first);
      if (c0 === 0x6c /* l */) {
        let i = lineStart + 1;
        while (data[i] === SP || data[i] === HT) i++;
        if (data[i] === COLON) nameEnd = i;
      } else if (c0 === 0x63 /* c */) {
        let i = 0;
        while (i < CONTENT_LENGTH.length && lower(data[lineStart + i]!) === CONTENT_LENGTH[i]) i++;
        if (i === CONTENT_LENGTH.length) {
          let j = lineStart + i;
          while (data[j] === SP || data[j] === HT) j++;
          if (data[j] === COLON) nameEnd = j;
        }
      }
      if (nameEnd >= 0) {
        const v = parseDigits(data, nameEnd + 1, headerLen);
        if (v < 0) return -2;
        if (found >= 0 && found !== v) return -2;
        found = v;
      }
    }
    const next = data.indexOf(LF, lineStart);
    if (next < 0) break;
    lineStart = next + 1;
  }
  return found;
}

/** Decimal value after optional whitespace (folding included) up to end of line; -1 if malformed. */
function parseDigits(data: Buffer, from: number, limit: number): number {
  let i = from;
  for (;;) {
    const b = data[i];
    if (b === SP || b === HT) { i++; continue; }
    // Folded value: CRLF followed by whitespace.
    if (b === CR && data[i + 1] === LF && (data[i + 2] === SP || data[i + 2] === HT)) { i += 3; continue; }
    break;
  }
  let v = 0;
  let digits = 0;
  while (i < limit) {
    const b = data[i]!;
    if (b < 0x30 || b > 0x39) break;
    v = v * 10 + (b - 0x30);
    if (++digits > 9) return -1; // > 999,999,999: no sane SIP body
    i++;
  }
  if (digits === 0) return -1;
  while (data[i] === SP || data[i] === HT) i++;
  if (data[i] !== CR && data[i] !== LF) return -1;
  return v;
}
