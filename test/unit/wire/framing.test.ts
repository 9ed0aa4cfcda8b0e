import { describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame, encodeFrameWith, splitFrame } from '../../../src/engine/wire/framing.js';

describe('wire framing (spec §2)', () => {
  it('reassembles a frame split across reads, byte by byte', () => {
    const d = new FrameDecoder();
    const bytes = encodeFrame('p10|ping');
    const got: string[] = [];
    for (const b of bytes) {
      const r = d.push(Buffer.from([b]));
      expect(r.error).toBeUndefined();
      got.push(...r.frames);
    }
    expect(got).toEqual(['p10|ping']);
  });

  it('splits coalesced frames', () => {
    const d = new FrameDecoder();
    const r = d.push(Buffer.from('8#p11|ping8#p12|ping'));
    expect(r.frames).toEqual(['p11|ping', 'p12|ping']);
  });

  it('a frame of a leader and a message given as bytes is the frame of leader CR LF message, UTF-8 (é, €) and a pool slice alike', () => {
    const leader = 'a1b2|sip|network|41|udp|192.0.2.1|5060|12:00:00.000|t1|d1|ü|';
    const text = 'MESSAGE sip:x SIP/2.0\r\nSubject: hé €\r\n\r\n';
    const pooled = Buffer.from(`garbage before${text}`).subarray(Buffer.byteLength('garbage before'));
    for (const sip of [Buffer.from(text), pooled]) {
      const enc = encodeFrameWith(leader, sip);
      expect(enc.equals(encodeFrame(`${leader}\r\n${text}`))).toBe(true);
      const r = new FrameDecoder().push(Buffer.concat([enc, encodeFrame('p1|ping')]));
      expect(r.frames).toEqual([`${leader}\r\n${text}`, 'p1|ping']);
    }
  });

  it('counts UTF-8 bytes, not characters', () => {
    const payload = 'm1|sip||\r\nMESSAGE sip:x SIP/2.0\r\n\r\nhé €';
    const enc = encodeFrame(payload);
    expect(enc.toString('latin1').startsWith(`${Buffer.byteLength(payload)}#`)).toBe(true);
    const d = new FrameDecoder();
    expect(d.push(enc).frames).toEqual([payload]);
  });

  it('rejects six-digit lengths, non-digits, empty and zero lengths', () => {
    expect(new FrameDecoder().push(Buffer.from('123456#q1|ping')).error).toMatch(/5 digits/);
    expect(new FrameDecoder().push(Buffer.from('abc#q1|ping')).error).toMatch(/non-digit/);
    expect(new FrameDecoder().push(Buffer.from('#q1|ping')).error).toMatch(/empty/);
    expect(new FrameDecoder().push(Buffer.from('0#')).error).toMatch(/zero/);
    // detected before any '#' arrives
    expect(new FrameDecoder().push(Buffer.from('1234567')).error).toMatch(/5 digits/);
  });

  it('accepts the full five-digit range', () => {
    const big = 'x'.repeat(99_999);
    const d = new FrameDecoder();
    expect(d.push(encodeFrame(big)).frames[0]).toHaveLength(99_999);
  });

  it('splits leader tokens and the SIP message at the first CRLF, keeping empty tokens', () => {
    const { tokens, sip } = splitFrame('m|sip|t|\r\nSIP/2.0 200 OK\r\n\r\n');
    expect(tokens).toEqual(['m', 'sip', 't', '']);
    expect(sip).toBe('SIP/2.0 200 OK\r\n\r\n');
  });
});
