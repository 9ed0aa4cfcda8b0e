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
// The scan is a hand-assembled WebAssembly module using 128-bit SIMD: 16 bytes a step, a few
// vector compares and a table lookup each, one "any lane set" at the end. V8 (Node >= 16) has
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

const I32 = 0x7f;
const V128 = 0x7b;
const BLOCK_EMPTY = 0x40; // block type: no results
const LOOP = 0x03;
const END = 0x0b;
const BR_IF = 0x0d;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const I32_CONST = 0x41;
const I32_LT_S = 0x48;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const SIMD = 0xfd; // prefix of the vector instructions (the sub-opcodes below are < 0x80: one LEB byte)
const V128_LOAD = 0x00; // memarg: alignment exponent, offset
const V128_CONST = 0x0c; // 16 immediate bytes
const I8X16_SWIZZLE = 0x0e; // lane i = a[b[i]], or 0 where b[i] >= 16
const I8X16_SPLAT = 0x0f;
const I8X16_EQ = 0x23;
const V128_AND = 0x4e;
const V128_ANDNOT = 0x4f; // a & ~b
const V128_OR = 0x50;
const V128_ANY_TRUE = 0x53;

/** Unsigned LEB128 (sizes and counts below 2^14 are all this module needs). */
function leb(n: number): number[] {
  return n < 0x80 ? [n] : [(n & 0x7f) | 0x80, n >> 7];
}

function section(id: number, content: number[]): number[] {
  return [id, ...leb(content.length), ...content];
}

function name(s: string): number[] {
  return [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
}

// Locals of scan(start, end): params 0 = i (the cursor, starts at start) and 1 = end; then v128s.
const I = 0;
const LAST = 1; // end - 16: where the last (possibly overlapping) 16-byte block starts
const ACC = 2; // OR of every block's CTL lanes
const V = 3; // the block being classified
const HI3 = 4; // 0xE0 in each lane: b & 0xE0 == 0 <=> b < 0x20
const DEL = 5; // 0x7F in each lane
const ALLOWED = 6; // table for swizzle: 0xFF at 9 (HTAB), 10 (LF), 13 (CR); zero elsewhere
const ZERO = 7; // locals start zeroed
const CR = 8; // 0x0D in each lane
const LF = 9; // 0x0A in each lane

/** The 16 bytes at memory[local at]: OR the lanes that are a CTL or a bare CR into ACC. For a
 *  byte b followed by n: ctl = ((b & 0xE0) == 0 && !ALLOWED[b]) || b == 0x7F (swizzle gives 0 for
 *  b >= 16, where the first test is 0 anyway for b >= 0x20, and b in 0x10..0x1F has no allowed
 *  entry); bare CR = b == 0x0D && n != 0x0A (n from a second load one byte further on). */
const classify = (at: number): number[] => [
  LOCAL_GET, at, SIMD, V128_LOAD, 0, 0, // memory[at..at+16) (alignment 2^0: any address)
  LOCAL_TEE, V,
  LOCAL_GET, CR, SIMD, I8X16_EQ, // lanes CR
  LOCAL_GET, at, SIMD, V128_LOAD, 0, 1, // memory[at+1..at+17): each lane's next byte
  LOCAL_GET, LF, SIMD, I8X16_EQ, // lanes followed by LF
  SIMD, V128_ANDNOT, // bare CRs: CR and not followed by LF
  LOCAL_GET, V, LOCAL_GET, HI3, SIMD, V128_AND,
  LOCAL_GET, ZERO, SIMD, I8X16_EQ, // lanes < 0x20
  LOCAL_GET, ALLOWED, LOCAL_GET, V, SIMD, I8X16_SWIZZLE, // lanes 9, 10, 13
  SIMD, V128_ANDNOT, // lanes < 0x20 but not 9, 10, 13
  SIMD, V128_OR,
  LOCAL_GET, V, LOCAL_GET, DEL, SIMD, I8X16_EQ, // lanes 0x7F
  SIMD, V128_OR,
  LOCAL_GET, ACC, SIMD, V128_OR,
  LOCAL_SET, ACC,
];

/** scan(start, end) -> 1 if a CTL or bare CR lies in memory[start..end), else 0. Needs end -
 *  start >= 16 and memory[end] readable and not an LF: blocks from start every 16 bytes, then one block ending exactly at end (it may overlap
 *  the one before; for "is there any" that is harmless, and it needs no tail loop or padding). */
const SCAN_BODY = [
  1, 8, V128, // locals: one group of 8 v128 (ACC, V, HI3, DEL, ALLOWED, ZERO, CR, LF)
  I32_CONST, 13, SIMD, I8X16_SPLAT, LOCAL_SET, CR,
  I32_CONST, 10, SIMD, I8X16_SPLAT, LOCAL_SET, LF,
  I32_CONST, 0xe0, 0x01, SIMD, I8X16_SPLAT, LOCAL_SET, HI3, // 224 (signed LEB: 0xE0 0x01)
  I32_CONST, 0xff, 0x00, SIMD, I8X16_SPLAT, LOCAL_SET, DEL, // 127 (signed LEB: 0xFF 0x00)
  SIMD, V128_CONST, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0, 0, LOCAL_SET, ALLOWED,
  LOCAL_GET, LAST, I32_CONST, 16, I32_SUB, LOCAL_SET, LAST, // LAST = end - 16
  LOOP, BLOCK_EMPTY,
  ...classify(I),
  LOCAL_GET, I, I32_CONST, 16, I32_ADD, LOCAL_TEE, I,
  LOCAL_GET, LAST, I32_LT_S, BR_IF, 0, // again while i < LAST
  END,
  ...classify(LAST), // the last block, memory[end-16..end)
  LOCAL_GET, ACC, SIMD, V128_ANY_TRUE, // result: any lane set
  END,
];

/** Pages (64 KiB) the memory may grow to: messages up to 1 MiB are scanned, larger ones (only
 *  with a raised maxMessageBytes) keep the per-value checks. */
const MAX_PAGES = 16;

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  ...section(1, [1, 0x60, 2, I32, I32, 1, I32]), // types: [func (i32, i32) -> i32]
  ...section(3, [1, 0]), // functions: [type 0]
  ...section(5, [1, 0x01, 1, MAX_PAGES]), // memories: [min 1 page, max MAX_PAGES]
  ...section(7, [2, ...name('scan'), 0x00, 0, ...name('memory'), 0x02, 0]), // exports: func 0, memory 0
  ...section(10, [1, ...leb(SCAN_BODY.length), ...SCAN_BODY]), // code: [scan]
]);

interface Scanner {
  memory: WebAssembly.Memory;
  bytes: Uint8Array; // view of memory.buffer (replaced when the memory grows)
  scan: (start: number, end: number) => number;
}

function instantiate(): Scanner | undefined {
  try {
    if (typeof WebAssembly !== 'object' || !WebAssembly.validate(MODULE)) return undefined;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(MODULE));
    const memory = instance.exports.memory as WebAssembly.Memory;
    return { memory, bytes: new Uint8Array(memory.buffer), scan: instance.exports.scan as Scanner['scan'] };
  } catch {
    return undefined; // e.g. WebAssembly disabled by the embedder: the per-value checks stay
  }
}

const wasm = instantiate();
let scanner = wasm;

/** Which scan runs: 'wasm-simd', or 'none' (no WebAssembly SIMD here, or turned off). */
export function ctlScanKind(): 'wasm-simd' | 'none' {
  return scanner === undefined ? 'none' : 'wasm-simd';
}

/** Turn the scan off (every message then gets the per-value checks) or back on. For tests that
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

function grow(s: Scanner, bytes: number): boolean {
  const have = s.memory.buffer.byteLength / 65_536;
  const need = Math.ceil(bytes / 65_536);
  if (need > MAX_PAGES) return false;
  s.memory.grow(need - have);
  s.bytes = new Uint8Array(s.memory.buffer);
  return true;
}
