// One scan of a message's header-section BYTES for control characters (RFC 3261 §25.1) and bare
// CRs (§7.3.1), so that the parser can skip, in the usual case, the per-value checks of text.ts
// and its per-line search for a CR (issue #14: the per-value regex alone cost 18% of a parse).
//
// Contract: `cleanHeaderBytes(buf, start, end)` returns true only if in buf[start..end)
// - no byte is a CTL other than HTAB, LF and CR (none of 0x00-0x08, 0x0B, 0x0C, 0x0E-0x1F, 0x7F),
// - every CR is followed by an LF inside the range (a CR as the last byte counts as bare, which
//   is what the parser's start line check does).
// The UTF-8 decoding of such bytes holds no such character either (bytes >= 0x80 only ever
// decode to characters >= U+0080 or U+FFFD, ASCII bytes always to themselves, next to the same
// neighbours). So the parser's line collector would find no bare CR, and since it splits lines
// on LF, no header value or Reason-Phrase can hold a control character: every per-value check
// would pass. It returns false when it finds either, and also whenever it cannot tell (no
// WebAssembly SIMD, fewer than 16 bytes, a buffer larger than the scan memory): the caller then
// runs its exact checks, which stay the reference (quoted-pair exceptions and error texts).
//
// `scanHead(buf, start)` does the same in the pass that finds where the header section ends (the
// first CR LF CR LF at or after start: exactly buf.indexOf('\r\n\r\n', start)), and also says
// whether those bytes are all ASCII (then latin1 and UTF-8 decoding give the same string).
//
// The scan is a hand-assembled WebAssembly module using 128-bit SIMD: 16 bytes a step, a few
// vector compares each, one "any lane set" at the end. V8 (Node >= 16) has
// WebAssembly SIMD on by default; without it the module does not validate and the parser simply
// keeps its checks. `uncleanByteIn` is the plain-JS statement of the same question, for tests.

/** Whether byte b is a CTL other than HTAB, LF, CR. */
export function isCtlByte(b: number): boolean {
  return (b < 0x20 && b !== 9 && b !== 10 && b !== 13) || b === 0x7f;
}

/** Index of the first byte of buf[start..end) that is a CTL (isCtlByte) or a CR not followed by
 *  an LF, or -1: what cleanHeaderBytes answers, in plain JS (the reference for tests). */
export function uncleanByteIn(buf: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (isCtlByte(b) || (b === 13 && (i + 1 === end || buf[i + 1] !== 10))) return i;
  }
  return -1;
}

// ---- the WebAssembly module, byte by byte (binary format: WebAssembly Core Specification §5;
// SIMD opcodes: the fixed-width SIMD proposal, part of WebAssembly 2.0)

// Value types; control (EMPTY: the block type "no results"); locals and i32.const (signed LEB128
// immediate); i32 arithmetic.
const [I32, V128] = [0x7f, 0x7b];
const [BLOCK, LOOP, IF, END, BR_IF, RETURN, EMPTY] = [0x02, 0x03, 0x04, 0x0b, 0x0d, 0x0f, 0x40];
const [LOCAL_GET, LOCAL_SET, LOCAL_TEE, I32_CONST] = [0x20, 0x21, 0x22, 0x41];
const [I32_NE, I32_LT_S, I32_CTZ, I32_ADD, I32_SUB, I32_OR, I32_SHL] = [0x47, 0x48, 0x68, 0x6a, 0x6b, 0x72, 0x74];
// Vector instructions: the SIMD prefix, then a sub-opcode (all below 0x80: one LEB byte).
// v128.load takes a memarg (alignment exponent, 0 for any address; offset); andnot is a & ~b;
// bitmask gives the lanes' top bits as an i32.
const SIMD = 0xfd;
const [V128_LOAD, I8X16_SPLAT, I8X16_EQ, V128_AND, V128_ANDNOT, V128_OR, V128_ANY_TRUE, I8X16_BITMASK] = [0x00, 0x0f, 0x23, 0x4e, 0x4f, 0x50, 0x53, 0x64];

/** Unsigned LEB128 (sizes and counts below 2^14 are all this module needs). */
function leb(n: number): number[] {
  return n < 0x80 ? [n] : [(n & 0x7f) | 0x80, n >> 7];
}

/** i32.const n (signed LEB128). */
function i32(n: number): number[] {
  const out = [I32_CONST];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

function section(id: number, content: number[]): number[] {
  return [id, ...leb(content.length), ...content];
}

function name(s: string): number[] {
  return [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
}

// Locals of both functions, by index. Params: I, the cursor (starts at `start`, kept in START);
// LAST, end (scan) or the buffer's length (head), made end - 16: where the last (possibly
// overlapping) 16-byte block starts. v128s: ACC, the OR of every block's unclean lanes (CTL or
// bare CR); V, the block's bytes; constants in each lane: HI3 0xE0 (b & 0xE0 == 0 <=> b < 0x20),
// DEL 0x7F, ZERO, CR, LF, HT; CRLF, the lanes holding a CR followed by an LF; T, the lanes where
// CR LF CR LF starts; HIGH, the OR of every block's bytes (a top bit set: non-ASCII). i32s:
// START, and P, where CR LF CR LF starts.
const [I, LAST, ACC, V, HI3, DEL, ZERO, CR, LF, HT, CRLF, T, HIGH, START, P] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];

const PROLOGUE = [
  2, 11, V128, 2, I32, // locals: 11 v128 (2..12), 2 i32 (13, 14)
  ...i32(0xe0), SIMD, I8X16_SPLAT, LOCAL_SET, HI3,
  ...i32(0x7f), SIMD, I8X16_SPLAT, LOCAL_SET, DEL,
  ...i32(13), SIMD, I8X16_SPLAT, LOCAL_SET, CR,
  ...i32(10), SIMD, I8X16_SPLAT, LOCAL_SET, LF,
  ...i32(9), SIMD, I8X16_SPLAT, LOCAL_SET, HT,
  LOCAL_GET, I, LOCAL_SET, START,
  LOCAL_GET, LAST, ...i32(16), I32_SUB, LOCAL_SET, LAST,
];

/** V = memory[at..at+16), CRLF = its lanes holding CR with an LF after it (memory[at+1..)). */
const crlfAt = (at: number): number[] => [
  LOCAL_GET, at, SIMD, V128_LOAD, 0, 0, LOCAL_TEE, V,
  LOCAL_GET, CR, SIMD, I8X16_EQ,
  LOCAL_GET, at, SIMD, V128_LOAD, 0, 1, LOCAL_GET, LF, SIMD, I8X16_EQ,
  SIMD, V128_AND, LOCAL_SET, CRLF,
];

/** OR the unclean lanes of V into ACC: for a byte b, (b < 0x20 and not HT, LF, or a CR with an
 *  LF after it) or b = 0x7F. A CR without an LF is thereby unclean too. */
const CLASSIFY = [
  LOCAL_GET, V, LOCAL_GET, HI3, SIMD, V128_AND, LOCAL_GET, ZERO, SIMD, I8X16_EQ, // b < 0x20
  LOCAL_GET, CRLF,
  LOCAL_GET, V, LOCAL_GET, LF, SIMD, I8X16_EQ, SIMD, V128_OR,
  LOCAL_GET, V, LOCAL_GET, HT, SIMD, I8X16_EQ, SIMD, V128_OR, // allowed: CR LF, LF, HT
  SIMD, V128_ANDNOT,
  LOCAL_GET, V, LOCAL_GET, DEL, SIMD, I8X16_EQ, SIMD, V128_OR,
  LOCAL_GET, ACC, SIMD, V128_OR, LOCAL_SET, ACC,
];

/** HIGH |= V. */
const ASCII = [LOCAL_GET, V, LOCAL_GET, HIGH, SIMD, V128_OR, LOCAL_SET, HIGH];

/** After crlfAt(at): T = lanes where CR LF CR LF starts; pushes whether there is any. */
const terminatorAt = (at: number): number[] => [
  LOCAL_GET, CRLF,
  LOCAL_GET, at, SIMD, V128_LOAD, 0, 2, LOCAL_GET, CR, SIMD, I8X16_EQ, SIMD, V128_AND,
  LOCAL_GET, at, SIMD, V128_LOAD, 0, 3, LOCAL_GET, LF, SIMD, I8X16_EQ, SIMD, V128_AND,
  LOCAL_TEE, T, SIMD, V128_ANY_TRUE,
];

const NEXT_BLOCK = [LOCAL_GET, I, ...i32(16), I32_ADD, LOCAL_TEE, I, LOCAL_GET, LAST, I32_LT_S]; // i += 16; i < LAST?

/** scan(start, end) -> 1 if a CTL or bare CR lies in memory[start..end), else 0. Needs end -
 *  start >= 16 and memory[end] readable and not an LF: blocks from start every 16 bytes, then
 *  one block ending exactly at end (it may overlap the one before; for "is there any" that is
 *  harmless, and it needs no tail loop or padding). */
const SCAN_BODY = [
  ...PROLOGUE,
  LOOP, EMPTY, ...crlfAt(I), ...CLASSIFY, ...NEXT_BLOCK, BR_IF, 0, END,
  ...crlfAt(LAST), ...CLASSIFY, // the last block, memory[end-16..end)
  LOCAL_GET, ACC, SIMD, V128_ANY_TRUE,
  END,
];

/** Bits of head()'s result besides the offset. */
const UNCLEAN_BIT = 30;
const NON_ASCII_BIT = 29;

/** head(start, len) -> the offset of the first CR LF CR LF at or after start in memory[..len)
 *  (-1 if none), ORed with 1 << UNCLEAN_BIT if memory[start..offset) is not clean (or is shorter
 *  than 16 bytes) and 1 << NON_ASCII_BIT if it holds a byte >= 0x80. Needs len - start >= 16
 *  and memory[len..len+3) zero. Each block is first searched for the terminator; blocks before
 *  the one holding it are classified whole, then the block ending at the terminator. */
const HEAD_BODY = [
  ...PROLOGUE,
  BLOCK, EMPTY, // found
  LOOP, EMPTY,
  ...crlfAt(I), ...terminatorAt(I), BR_IF, 1,
  ...CLASSIFY, ...ASCII,
  ...NEXT_BLOCK, BR_IF, 0,
  END,
  LOCAL_GET, LAST, LOCAL_SET, I, // the last block, memory[len-16..len)
  ...crlfAt(I), ...terminatorAt(I), BR_IF, 0,
  ...i32(-1), RETURN,
  END,
  // found in the block at I: P = I + the index of the first lane of T
  LOCAL_GET, I, LOCAL_GET, T, SIMD, I8X16_BITMASK, I32_CTZ, I32_ADD, LOCAL_SET, P,
  LOCAL_GET, P, LOCAL_GET, START, I32_SUB, ...i32(16), I32_LT_S,
  IF, EMPTY, LOCAL_GET, P, ...i32(1 << UNCLEAN_BIT), I32_OR, RETURN, END,
  LOCAL_GET, P, ...i32(16), I32_SUB, LOCAL_SET, I, // the block ending at P (its CR makes a CR
  ...crlfAt(I), ...CLASSIFY, ...ASCII, // at P - 1 bare, as the contract wants)
  LOCAL_GET, P,
  LOCAL_GET, ACC, SIMD, V128_ANY_TRUE, ...i32(UNCLEAN_BIT), I32_SHL, I32_OR,
  LOCAL_GET, HIGH, SIMD, I8X16_BITMASK, ...i32(0), I32_NE, ...i32(NON_ASCII_BIT), I32_SHL, I32_OR,
  END,
];

/** Pages (64 KiB) the memory may grow to: messages up to 1 MiB are scanned, larger ones (only
 *  with a raised maxMessageBytes) keep the plain checks. */
const MAX_PAGES = 16;

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  ...section(1, [1, 0x60, 2, I32, I32, 1, I32]), // types: [func (i32, i32) -> i32]
  ...section(3, [2, 0, 0]), // functions: [type 0, type 0]
  ...section(5, [1, 0x01, 1, MAX_PAGES]), // memories: [min 1 page, max MAX_PAGES]
  ...section(7, [3, ...name('scan'), 0x00, 0, ...name('head'), 0x00, 1, ...name('memory'), 0x02, 0]), // exports
  ...section(10, [2, ...leb(SCAN_BODY.length), ...SCAN_BODY, ...leb(HEAD_BODY.length), ...HEAD_BODY]), // code
]);

interface Scanner {
  memory: WebAssembly.Memory;
  bytes: Uint8Array; // view of memory.buffer (replaced when the memory grows)
  scan: (start: number, end: number) => number;
  head: (start: number, len: number) => number;
}

function instantiate(): Scanner | undefined {
  try {
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(MODULE)) return undefined;
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(MODULE));
    const memory = exports.memory as WebAssembly.Memory;
    return { memory, bytes: new Uint8Array(memory.buffer), scan: exports.scan as Scanner['scan'], head: exports.head as Scanner['head'] };
  } catch {
    return undefined; // e.g. WebAssembly disabled by the embedder: the plain checks stay
  }
}

const wasm = instantiate();
let scanner = wasm;

/** Which scan runs: 'wasm-simd', or 'none' (no WebAssembly SIMD here, or turned off). */
export function ctlScanKind(): 'wasm-simd' | 'none' {
  return scanner === undefined ? 'none' : 'wasm-simd';
}

/** Turn the scan off (callers then do everything the plain way) or back on. For tests that
 *  compare the two paths, and for ruling the scan out when investigating. */
export function useCtlScan(on: boolean): void {
  scanner = on ? wasm : undefined;
}

/** True only if buf[start..end) certainly holds no CTL but HTAB, LF, CR and no CR without an
 *  LF after it (the contract at the top). The whole of buf is copied (one memmove, no view
 *  allocated) so that the offsets stay those of buf; memory[end] is then zeroed, so that a CR at
 *  end - 1 is seen as bare. */
export function cleanHeaderBytes(buf: Uint8Array, start: number, end: number): boolean {
  const s = scanner;
  if (s === undefined || end - start < 16 || start < 0 || end > buf.length) return false;
  if (buf.length >= s.bytes.length && !grow(s, buf.length + 1)) return false;
  s.bytes.set(buf);
  s.bytes[end] = 0;
  return s.scan(start, end) === 0;
}

/** scanHead could not tell (no scan, fewer than 16 bytes, too large): search the plain way. */
export const HEAD_UNKNOWN = -2;
/** scanHead found no CR LF CR LF at or after start. */
export const HEAD_NOT_FOUND = -1;
/** In a scanHead result >= 0: the offset of the CR LF CR LF (= buf.indexOf('\r\n\r\n', start)). */
export const HEAD_END = 0xfffff;
/** In a scanHead result >= 0: buf[start..offset) is not known clean (cleanHeaderBytes false). */
export const HEAD_UNCLEAN = 1 << UNCLEAN_BIT;
/** In a scanHead result >= 0: buf[start..offset) holds a byte >= 0x80 (else it is ASCII). */
export const HEAD_NON_ASCII = 1 << NON_ASCII_BIT;

/** One pass over buf from start: where the header section ends (the first CR LF CR LF), whether
 *  the bytes before it are clean (as cleanHeaderBytes) and whether they are all ASCII. Returns
 *  HEAD_UNKNOWN, HEAD_NOT_FOUND, or the offset with the HEAD_UNCLEAN / HEAD_NON_ASCII bits. */
export function scanHead(buf: Uint8Array, start: number): number {
  const s = scanner;
  const len = buf.length;
  if (s === undefined || start < 0 || len - start < 16) return HEAD_UNKNOWN;
  if (len + 3 > s.bytes.length && !grow(s, len + 3)) return HEAD_UNKNOWN;
  const bytes = s.bytes;
  bytes.set(buf);
  bytes[len] = 0; // the terminator search reads up to 3 bytes past the end
  bytes[len + 1] = 0;
  bytes[len + 2] = 0;
  return s.head(start, len);
}

function grow(s: Scanner, bytes: number): boolean {
  const have = s.memory.buffer.byteLength / 65_536;
  const need = Math.ceil(bytes / 65_536);
  if (need > MAX_PAGES) return false;
  s.memory.grow(need - have);
  s.bytes = new Uint8Array(s.memory.buffer);
  return true;
}
