// The parser with the header-bytes scan (src/sip/grammar/ctl-scan.ts, issue #14) against the
// parser without it (every value checked by text.ts, the reference): identical results —
// accept/refuse, status, error text, recovered headers, message — on the RFC 4475 messages, the
// sip-parser fuzz seeds, seeded mutations of them and control characters inserted anywhere in
// the header section (escaped as a quoted-pair or not), bare CRs, LF-only line ends and non-ASCII
// bytes, under three limit sets. (Without the scan the parser also finds the end of the header
// section with Buffer#indexOf and decodes it as UTF-8: both are compared too.)
import { afterEach, describe, expect, it } from 'vitest';
import { loadTorture } from '../../fixtures/torture/decode.js';
import { seedsOf } from '../../fuzz/targets.js';
import { mutate, rng } from '../../helpers/message-fuzz.js';
import { parseMessage, type ParseLimits, type ParseResult } from '../../../src/engine/message/index.js';
import { cleanHeaderBytes, isCtlByte, useCtlScan } from '../../../src/sip/grammar/ctl-scan.js';

const LIMITS: Array<ParseLimits | undefined> = [
  undefined,
  { maxMessageBytes: 8192, maxHeaders: 64, maxHeaderBytes: 2048, maxUriBytes: 512 },
  { maxMessageBytes: 600, maxHeaders: 12, maxHeaderBytes: 80, maxUriBytes: 40 },
];
// The CTLs, and CR (bare once inserted) three times as often as each of them.
const INSERTED = [...Array.from({ length: 256 }, (_, b) => b).filter(isCtlByte), 13, 13, 13];

function both(input: Buffer, limits: ParseLimits | undefined): { fast: ParseResult; reference: ParseResult } {
  useCtlScan(true);
  const fast = limits === undefined ? parseMessage(input) : parseMessage(input, limits);
  useCtlScan(false);
  const reference = limits === undefined ? parseMessage(input) : parseMessage(input, limits);
  useCtlScan(true);
  return { fast, reference };
}

/** Where the header section ends (as the parser finds it), or the buffer's length. */
function headEnd(b: Buffer): number {
  const crlf = b.indexOf('\r\n\r\n');
  if (crlf >= 0) return crlf;
  const lf = b.indexOf('\n\n');
  return lf >= 0 ? lf : b.length;
}

describe('parser: header-bytes scan = per-value control-character checks', () => {
  afterEach(() => useCtlScan(true));
  const corpus = [...loadTorture('valid').values(), ...loadTorture('invalid').values(), ...seedsOf('sip-parser')];

  it('on the RFC 4475 messages and the fuzz seeds, under three limit sets', () => {
    let skipped = 0; // messages the scan cleared and the parser accepted: the fast path
    for (const b of corpus) {
      for (const limits of LIMITS) {
        const { fast, reference } = both(b, limits);
        expect(fast, b.toString('latin1').slice(0, 200)).toEqual(reference);
        if (fast.ok && cleanHeaderBytes(b, 0, headEnd(b))) skipped++;
      }
    }
    expect(corpus.length).toBeGreaterThan(40);
    expect(skipped).toBeGreaterThan(corpus.length / 2);
  });

  it('on seeded mutations and inserted control characters (quoted-pairs included)', () => {
    const r = rng(0x14ad);
    let accepted = 0;
    let refusedCtl = 0;
    let refusedCr = 0;
    let acceptedWithCtl = 0; // a CTL escaped in a quoted string: the scan finds it, the values allow it
    for (let k = 0; k < 6000; k++) {
      const src = corpus[Math.floor(r() * corpus.length)]!;
      let input = r() < 0.5 ? mutate(src, corpus, r) : Buffer.from(src);
      // LF-only line ends (accepted), the section then ends in LF LF; sometimes one CR left over.
      if (r() < 0.2) input = Buffer.from(input.toString('latin1').replace(/\r\n/g, () => (r() < 0.02 ? '\r' : '\n')), 'latin1');
      if (r() < 0.6) {
        // One control character or CR in the header section (often its last byte), sometimes as
        // `\x` inside a quoted string.
        const end = Math.max(1, headEnd(input));
        const at = r() < 0.1 ? end : Math.floor(r() * end);
        const ctl = INSERTED[Math.floor(r() * INSERTED.length)]!;
        const ins = r() < 0.3 ? [0x22, 0x5c, ctl, 0x22] : r() < 0.5 ? [0x5c, ctl] : [ctl];
        input = Buffer.concat([input.subarray(0, at), Buffer.from(ins), input.subarray(at)]);
      }
      if (r() < 0.2) {
        // Non-ASCII: UTF-8 (ü), or a byte that is not UTF-8; the scan then decodes as UTF-8.
        const at = Math.floor(r() * Math.max(1, headEnd(input)));
        input = Buffer.concat([input.subarray(0, at), Buffer.from(r() < 0.5 ? [0xc3, 0xbc] : [0xff]), input.subarray(at)]);
      }
      const { fast, reference } = both(input, LIMITS[k % 3]);
      expect(fast, input.toString('latin1').slice(0, 300)).toEqual(reference);
      if (fast.ok) {
        accepted++;
        if (!cleanHeaderBytes(input, 0, headEnd(input))) acceptedWithCtl++;
      } else if (fast.error.startsWith('control character')) refusedCtl++;
      else if (fast.error.startsWith('bare CR')) refusedCr++;
    }
    expect(accepted).toBeGreaterThan(500);
    expect(refusedCtl).toBeGreaterThan(50);
    expect(refusedCr).toBeGreaterThan(50);
    expect(acceptedWithCtl).toBeGreaterThan(20);
  });
});
