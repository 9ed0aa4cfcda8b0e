// The header-bytes scan for control characters and bare CRs (src/sip/grammar/ctl-scan.ts, issue
// #14) against its plain-JS statement `uncleanByteIn`: every byte value (and CRLF) at every
// position modulo 16, at the end of the range (the overlapping last block), next to the range, at
// odd start offsets, and on buffers larger than the module's initial memory (which must grow)
// and than its maximum (no answer).
import { afterEach, describe, expect, it } from 'vitest';
import { rng } from '../../helpers/message-fuzz.js';
import {
  HEAD_END, HEAD_NON_ASCII, HEAD_NOT_FOUND, HEAD_UNCLEAN, HEAD_UNKNOWN, cleanHeaderBytes, ctlScanKind, isCtlByte, scanHead, uncleanByteIn, useCtlScan,
} from '../../../src/sip/grammar/ctl-scan.js';

const CTL_BYTES = Array.from({ length: 256 }, (_, b) => b).filter(isCtlByte);

describe('isCtlByte', () => {
  it('is exactly 0x00-0x08, 0x0B, 0x0C, 0x0E-0x1F and 0x7F (RFC 3261 §25.1 CTLs but HTAB, LF, CR)', () => {
    expect(CTL_BYTES).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);
  });
});

describe('cleanHeaderBytes (WebAssembly SIMD) = uncleanByteIn (JS reference)', () => {
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
        const end = start + len;
        const buf = Buffer.alloc(end + 3, filler);
        for (let at = start; at < end; at++) {
          for (let b = 0; b < 256; b++) {
            // a CR alone, and (inside the range) as the CR of a CRLF
            for (const next of b === 13 && at + 1 < end ? [filler, 10] : [filler]) {
              buf[at] = b;
              buf[at + 1] = next;
              const want = uncleanByteIn(buf, start, end) < 0;
              if (cleanHeaderBytes(buf, start, end) !== want) throw new Error(`byte 0x${b.toString(16)} then 0x${next.toString(16)} at ${at}, range ${start}..${end}`);
              if (!want) found++;
              checked++;
            }
          }
          buf[at] = filler;
          buf[at + 1] = filler;
        }
      }
    }
    const positions = 6 * ((16 + 64) / 2) * 49;
    expect(checked).toBe(positions * 256 + (positions - 6 * 49));
    expect(found).toBe(positions * 31); // 30 CTLs and the bare CR; no CRLF
  });

  it('counts a CR as bare unless an LF follows it inside the range', () => {
    const buf = Buffer.from('0123456789abcdef\r\nxyz\r\n');
    expect(cleanHeaderBytes(buf, 0, buf.length)).toBe(true);
    expect(cleanHeaderBytes(buf, 0, buf.length - 1)).toBe(false); // ends in CR: bare, though buf has the LF
    expect(uncleanByteIn(buf, 0, buf.length - 1)).toBe(buf.length - 2);
    expect(cleanHeaderBytes(buf, 0, 17)).toBe(false);
    expect(cleanHeaderBytes(buf, 0, 18)).toBe(true);
    expect(cleanHeaderBytes(Buffer.from('0123456789abcdef\r\r\n'), 0, 19)).toBe(false);
    expect(cleanHeaderBytes(Buffer.from('0123456789abcdef\n\r'), 0, 18)).toBe(false); // LF CR
  });

  it('ignores control bytes just outside the range, and answers the range of the buffer it is given', () => {
    const buf = Buffer.alloc(80, 0x20);
    buf[9] = 0;
    buf[70] = 0x7f;
    expect(cleanHeaderBytes(buf, 10, 70)).toBe(true);
    expect(cleanHeaderBytes(buf, 9, 70)).toBe(false);
    expect(cleanHeaderBytes(buf, 10, 71)).toBe(false);
    // A view into a larger ArrayBuffer (Node's Buffer pool): offsets are the view's.
    const pool = Buffer.alloc(200, 0);
    const view = pool.subarray(50, 130).fill(0x41);
    expect(cleanHeaderBytes(view, 0, view.length)).toBe(true);
    view[view.length - 1] = 0x1f;
    expect(cleanHeaderBytes(view, 0, view.length)).toBe(false);
  });

  it('gives no answer (false) for fewer than 16 bytes or a range outside the buffer', () => {
    const buf = Buffer.alloc(15, 0x41);
    expect(cleanHeaderBytes(buf, 0, 15)).toBe(false);
    expect(cleanHeaderBytes(Buffer.alloc(40, 0x41), 0, 41)).toBe(false);
    expect(cleanHeaderBytes(Buffer.alloc(40, 0x41), -1, 40)).toBe(false);
  });

  it('agrees on random buffers with sparse control bytes', () => {
    const r = rng(0xc71);
    let some = 0;
    let clean = 0;
    for (let k = 0; k < 5000; k++) {
      const len = 16 + Math.floor(r() * 2000);
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i++) buf[i] = 0x20 + Math.floor(r() * 0x5f) + (r() < 0.3 ? 0x80 : 0); // printable or high
      for (let i = 0; i + 1 < len; i++) {
        if (r() < 0.05) buf.write(r() < 0.97 ? '\r\n' : ['\t', '\n', '\r'][Math.floor(r() * 3)]!, i, 'latin1');
      }
      if (r() < 0.5) buf[Math.floor(r() * len)] = CTL_BYTES[Math.floor(r() * CTL_BYTES.length)]!;
      const start = Math.floor(r() * 8);
      const end = len - Math.floor(r() * 8);
      if (end - start < 16) continue;
      const want = uncleanByteIn(buf, start, end) < 0;
      if (!want) some++;
      else clean++;
      expect(cleanHeaderBytes(buf, start, end)).toBe(want);
    }
    expect(some).toBeGreaterThan(1500);
    expect(clean).toBeGreaterThan(300);
  });

  it('grows its memory for messages longer than 64 KiB, and keeps answering after', () => {
    for (const len of [65_535, 65_536, 100_000, 300_017, 1_048_575]) {
      const buf = Buffer.alloc(len, 0x41);
      expect(cleanHeaderBytes(buf, 0, len), `${len} clean`).toBe(true);
      for (const at of [0, 65_535, 65_536, len - 17, len - 1]) {
        if (at >= len) continue;
        buf[at] = 0x0b;
        expect(cleanHeaderBytes(buf, 0, len), `${len}, VT at ${at}`).toBe(false);
        expect(cleanHeaderBytes(buf, 0, at), `${len}, VT just after the range`).toBe(at >= 16);
        buf[at] = 0x41;
      }
    }
    // Stale bytes of an earlier, longer message do not leak into a shorter one's answer.
    const long = Buffer.alloc(70_000, 0x41);
    long[69_000] = 0;
    expect(cleanHeaderBytes(long, 0, long.length)).toBe(false);
    expect(cleanHeaderBytes(Buffer.alloc(500, 0x41), 0, 500)).toBe(true);
  });

  it('gives no answer (false) for buffers that do not fit its 1 MiB memory with a byte to spare', () => {
    expect(cleanHeaderBytes(Buffer.alloc(1_048_576, 0x41), 0, 100)).toBe(false);
  });

  it('turned off, never answers "free", so the caller always runs the per-value checks', () => {
    useCtlScan(false);
    expect(ctlScanKind()).toBe('none');
    expect(cleanHeaderBytes(Buffer.alloc(64, 0x41), 0, 64)).toBe(false);
    useCtlScan(true);
    expect(cleanHeaderBytes(Buffer.alloc(64, 0x41), 0, 64)).toBe(true);
  });
});

/** What scanHead must answer, in plain JS: buf.indexOf(CRLFCRLF), uncleanByteIn, a byte >= 0x80. */
function headReference(buf: Buffer, start: number): number {
  const end = buf.indexOf('\r\n\r\n', start);
  if (end < 0) return HEAD_NOT_FOUND;
  let out = end;
  if (end - start < 16 || uncleanByteIn(buf, start, end) >= 0) out |= HEAD_UNCLEAN;
  if (end - start >= 16 && buf.subarray(start, end).some((b) => b >= 0x80)) out |= HEAD_NON_ASCII;
  return out;
}

describe('scanHead (WebAssembly SIMD) = indexOf CR LF CR LF + uncleanByteIn + ASCII test', () => {
  afterEach(() => useCtlScan(true));

  it('finds the terminator at every offset from start (every position modulo 16, the buffer end), with any tail', () => {
    let checked = 0;
    for (const start of [0, 1, 5, 16]) {
      for (let at = start; at <= start + 70; at++) {
        for (const tail of ['', 'x', '\r\n\r\n', 'body\r\n\r\nmore']) {
          const buf = Buffer.from(`${'\n'.repeat(start)}${'a'.repeat(at - start)}\r\n\r\n${tail}`, 'latin1');
          const got = scanHead(buf, start);
          if (buf.length - start < 16) {
            expect(got).toBe(HEAD_UNKNOWN);
            continue;
          }
          expect(got, `${start} ${at} ${JSON.stringify(tail)}`).toBe(headReference(buf, start));
          expect(got & HEAD_END).toBe(at);
          checked++;
        }
        // Not quite a terminator: CR LF CR, LF LF, CR LF LF CR LF at the end of the buffer.
        for (const almost of ['\r\n\r', '\n\n', '\r\n\n', '\r\r\n\n']) {
          const buf = Buffer.from(`${'\n'.repeat(start)}${'a'.repeat(at - start)}${almost}`, 'latin1');
          if (buf.length - start >= 16) expect(scanHead(buf, start)).toBe(HEAD_NOT_FOUND);
        }
      }
    }
    expect(checked).toBeGreaterThan(800);
  });

  it('agrees on every byte value at every position before the terminator (and right after it)', () => {
    for (const len of [16, 17, 31, 32, 33, 47, 48]) {
      const buf = Buffer.from(`${'a'.repeat(len)}\r\n\r\nZ`, 'latin1');
      for (let at = 0; at < buf.length; at++) {
        const keep = buf[at]!;
        for (let b = 0; b < 256; b++) {
          buf[at] = b;
          const got = scanHead(buf, 0);
          if (got !== headReference(buf, 0)) throw new Error(`byte 0x${b.toString(16)} at ${at}, head of ${len}: ${got}`);
        }
        buf[at] = keep;
      }
    }
  });

  it('agrees on random header-like buffers: lines, CRs, LFs, control and non-ASCII bytes, junk after', () => {
    const r = rng(0x4ead);
    const odd = [13, 10, 9, 0, 0x7f, 0x0b, 0xc3, 0xbc, 0xff, 0x20];
    const seen = { found: 0, clean: 0, nonAscii: 0, notFound: 0 };
    for (let k = 0; k < 20_000; k++) {
      const p = r() * 0.1;
      const lines: string[] = [];
      for (let l = Math.floor(r() * 8); l > 0; l--) {
        let line = '';
        for (let i = Math.floor(r() * 40); i > 0; i--) line += String.fromCharCode(r() < p ? odd[Math.floor(r() * odd.length)]! : 0x61 + Math.floor(r() * 26));
        lines.push(line);
      }
      const text = `${'\r\n'.repeat(Math.floor(r() * 3))}${lines.join(r() < 0.9 ? '\r\n' : '\n')}${r() < 0.85 ? '\r\n\r\n' : ''}${'body\r\n\r\n'.slice(0, Math.floor(r() * 11))}`;
      const buf = Buffer.from(text, 'latin1');
      const start = Math.floor(r() * Math.min(6, buf.length));
      const got = scanHead(buf, start);
      if (buf.length - start < 16) {
        expect(got).toBe(HEAD_UNKNOWN);
        continue;
      }
      const want = headReference(buf, start);
      if (got !== want) throw new Error(`${JSON.stringify(text)} from ${start}: ${got}, want ${want}`);
      if (got === HEAD_NOT_FOUND) seen.notFound++;
      else {
        seen.found++;
        if ((got & HEAD_UNCLEAN) === 0) seen.clean++;
        if ((got & HEAD_NON_ASCII) !== 0) seen.nonAscii++;
      }
    }
    expect(seen.found).toBeGreaterThan(8000);
    expect(seen.clean).toBeGreaterThan(3000);
    expect(seen.nonAscii).toBeGreaterThan(1000);
    expect(seen.notFound).toBeGreaterThan(1000);
  });

  it('handles messages longer than the initial memory, and gives no answer past 1 MiB or with the scan off', () => {
    const head = `INVITE sip:a@b SIP/2.0\r\nSubject: ${'s'.repeat(70_000)}\r\n\r\n`;
    const buf = Buffer.from(`${head}${'b'.repeat(100_000)}`, 'latin1');
    expect(scanHead(buf, 0)).toBe(head.length - 4);
    buf[50_000] = 0x1b;
    expect(scanHead(buf, 0)).toBe((head.length - 4) | HEAD_UNCLEAN);
    expect(scanHead(Buffer.alloc(1_048_573, 0x61), 0)).toBe(HEAD_NOT_FOUND);
    expect(scanHead(Buffer.alloc(1_048_574, 0x61), 0)).toBe(HEAD_UNKNOWN);
    useCtlScan(false);
    expect(scanHead(Buffer.from(`${'a'.repeat(20)}\r\n\r\n`), 0)).toBe(HEAD_UNKNOWN);
  });
});
