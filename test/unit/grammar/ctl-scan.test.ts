// The header-bytes control-character scan (src/sip/grammar/ctl-scan.ts, issue #14) against its
// plain-JS statement `ctlByteIn`: every byte value at every position modulo 16, at the end of
// the range (the overlapping last block), next to the range, at odd start offsets, and on buffers
// larger than the module's initial memory (which must grow) and than its maximum (no answer).
import { afterEach, describe, expect, it } from 'vitest';
import { rng } from '../../helpers/message-fuzz.js';
import { ctlByteIn, ctlFreeBytes, ctlScanKind, isCtlByte, useCtlScan } from '../../../src/sip/grammar/ctl-scan.js';

const CTL_BYTES = Array.from({ length: 256 }, (_, b) => b).filter(isCtlByte);

describe('isCtlByte', () => {
  it('is exactly 0x00-0x08, 0x0B, 0x0C, 0x0E-0x1F and 0x7F (RFC 3261 §25.1 CTLs but HTAB, LF, CR)', () => {
    expect(CTL_BYTES).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);
  });
});

describe('ctlFreeBytes (WebAssembly SIMD) = ctlByteIn (JS reference)', () => {
  afterEach(() => useCtlScan(true));

  it('runs the WebAssembly scan on this Node', () => {
    expect(ctlScanKind()).toBe('wasm-simd');
  });

  it('agrees on every byte value at every position modulo 16, for every length 16..64 and start 0..17', () => {
    let checked = 0;
    let found = 0;
    const filler = 0x61; // 'a'
    for (const start of [0, 1, 7, 15, 16, 17]) {
      for (let len = 16; len <= 64; len++) {
        const buf = Buffer.alloc(start + len + 3, filler);
        for (let at = start; at < start + len; at++) {
          for (let b = 0; b < 256; b++) {
            buf[at] = b;
            const want = ctlByteIn(buf, start, start + len) < 0;
            if (ctlFreeBytes(buf, start, start + len) !== want) throw new Error(`byte 0x${b.toString(16)} at ${at}, range ${start}..${start + len}`);
            if (!want) found++;
            checked++;
          }
          buf[at] = filler;
        }
      }
    }
    expect(checked).toBe(6 * 256 * ((16 + 64) / 2) * 49);
    expect(found).toBe(6 * 30 * ((16 + 64) / 2) * 49);
  });

  it('ignores control bytes just outside the range, and answers the range of the buffer it is given', () => {
    const buf = Buffer.alloc(80, 0x20);
    buf[9] = 0;
    buf[70] = 0x7f;
    expect(ctlFreeBytes(buf, 10, 70)).toBe(true);
    expect(ctlFreeBytes(buf, 9, 70)).toBe(false);
    expect(ctlFreeBytes(buf, 10, 71)).toBe(false);
    // A view into a larger ArrayBuffer (Node's Buffer pool): offsets are the view's.
    const pool = Buffer.alloc(200, 0);
    const view = pool.subarray(50, 130).fill(0x41);
    expect(ctlFreeBytes(view, 0, view.length)).toBe(true);
    view[view.length - 1] = 0x1f;
    expect(ctlFreeBytes(view, 0, view.length)).toBe(false);
  });

  it('gives no answer (false) for fewer than 16 bytes or a range outside the buffer', () => {
    const buf = Buffer.alloc(15, 0x41);
    expect(ctlFreeBytes(buf, 0, 15)).toBe(false);
    expect(ctlFreeBytes(Buffer.alloc(40, 0x41), 0, 41)).toBe(false);
    expect(ctlFreeBytes(Buffer.alloc(40, 0x41), -1, 40)).toBe(false);
  });

  it('agrees on random buffers with sparse control bytes', () => {
    const r = rng(0xc71);
    let some = 0;
    for (let k = 0; k < 5000; k++) {
      const len = 16 + Math.floor(r() * 2000);
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i++) buf[i] = 0x20 + Math.floor(r() * 0x5f) + (r() < 0.3 ? 0x80 : 0); // printable or high
      for (let i = 0; i < len; i++) if (r() < 0.05) buf[i] = [9, 10, 13][Math.floor(r() * 3)]!;
      if (r() < 0.5) buf[Math.floor(r() * len)] = CTL_BYTES[Math.floor(r() * CTL_BYTES.length)]!;
      const start = Math.floor(r() * 8);
      const end = len - Math.floor(r() * 8);
      if (end - start < 16) continue;
      const want = ctlByteIn(buf, start, end) < 0;
      if (!want) some++;
      expect(ctlFreeBytes(buf, start, end)).toBe(want);
    }
    expect(some).toBeGreaterThan(1500);
  });

  it('grows its memory for messages longer than 64 KiB, and keeps answering after', () => {
    for (const len of [65_536, 65_537, 100_000, 300_017, 1_048_576]) {
      const buf = Buffer.alloc(len, 0x41);
      expect(ctlFreeBytes(buf, 0, len), `${len} clean`).toBe(true);
      for (const at of [0, 65_535, 65_536, len - 17, len - 1]) {
        if (at >= len) continue;
        buf[at] = 0x0b;
        expect(ctlFreeBytes(buf, 0, len), `${len}, VT at ${at}`).toBe(false);
        expect(ctlFreeBytes(buf, 0, at), `${len}, VT just after the range`).toBe(at >= 16);
        buf[at] = 0x41;
      }
    }
    // Stale bytes of an earlier, longer message do not leak into a shorter one's answer.
    const long = Buffer.alloc(70_000, 0x41);
    long[69_000] = 0;
    expect(ctlFreeBytes(long, 0, long.length)).toBe(false);
    expect(ctlFreeBytes(Buffer.alloc(500, 0x41), 0, 500)).toBe(true);
  });

  it('gives no answer (false) beyond its 1 MiB memory, so the per-value checks run', () => {
    expect(ctlFreeBytes(Buffer.alloc(1_048_577, 0x41), 0, 100)).toBe(false);
  });

  it('turned off, never answers "free", so the caller always runs the per-value checks', () => {
    useCtlScan(false);
    expect(ctlScanKind()).toBe('none');
    expect(ctlFreeBytes(Buffer.alloc(64, 0x41), 0, 64)).toBe(false);
    useCtlScan(true);
    expect(ctlFreeBytes(Buffer.alloc(64, 0x41), 0, 64)).toBe(true);
  });
});
