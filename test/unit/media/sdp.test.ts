import { describe, it, expect } from 'vitest';
import { parseSdp, writeSdp, cryptoLines, attrs, SdpError, anonymizeOrigin, connectionAddress, SDP_MAX_BYTES, decliningAnswer } from '../../../src/sbc/media/sdp.js';

const OFFER = [
  'v=0', 'o=alice 2890844526 2890844526 IN IP4 10.1.2.3', 's=-', 'c=IN IP4 10.1.2.3', 't=0 0',
  'a=x-session-thing:1',
  'm=audio 49170 RTP/SAVP 0 101', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000',
  'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32',
  'a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj UNENCRYPTED_SRTCP KDR=1',
  'a=x-vendor-unknown:keep me',
  'm=video 0 RTP/AVP 31',
].join('\r\n') + '\r\n';

describe('SDP reader/writer', () => {
  it('round-trips byte for byte, unknown attributes included', () => {
    const s = parseSdp(OFFER);
    expect(writeSdp(s)).toBe(OFFER);
    expect(s.media).toHaveLength(2);
    expect(s.media[0]).toMatchObject({ media: 'audio', port: 49170, proto: 'RTP/SAVP', formats: ['0', '101'] });
    expect(s.media[1]!.port).toBe(0);
    expect(attrs(s.media[0]!, 'x-vendor-unknown')).toEqual(['a=x-vendor-unknown:keep me']);
  });

  it('accepts LF-only bodies and writes CRLF', () => {
    const s = parseSdp(OFFER.replace(/\r\n/g, '\n'));
    expect(writeSdp(s)).toBe(OFFER);
  });

  it('parses crypto lines with session parameters (RFC 4568)', () => {
    const c = cryptoLines(parseSdp(OFFER).media[0]!);
    expect(c.map((x) => x.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32']);
    expect(c[0]!.sessionParams).toEqual([]);
    expect(c[1]!.sessionParams).toEqual(['UNENCRYPTED_SRTCP', 'KDR=1']);
  });

  it('reads the connection address and anonymizes the origin', () => {
    const s = parseSdp(OFFER);
    expect(connectionAddress(s, s.media[0]!)).toBe('10.1.2.3');
    anonymizeOrigin(s);
    expect(s.session[1]).toBe('o=- 2890844526 2890844526 IN IP4 10.1.2.3');
  });

  it.each([
    ['empty', ''],
    ['not v=0 first', 'o=x 1 1 IN IP4 1.2.3.4\r\nv=0\r\n'],
    ['garbage line', 'v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\nhello world\r\n'],
    ['bad m line', 'v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\nm=audio notaport RTP/AVP 0\r\n'],
    ['port out of range', 'v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n'],
    ['no origin', 'v=0\r\ns=-\r\n'],
    ['too large', 'v=0\r\n' + 'a=x\r\n'.repeat(SDP_MAX_BYTES / 5)],
  ])('rejects %s with SdpError', (_n, text) => {
    expect(() => parseSdp(text)).toThrow(SdpError);
  });
});

describe('parseSdp of a body parsed before (validation, then the media stage)', () => {
  it('gives an equal, independent result: changing one parse never shows in the next', () => {
    const text = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=x\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n';
    const first = parseSdp(text);
    const fresh = JSON.parse(JSON.stringify(first)) as unknown;
    first.session.push('a=changed');
    first.media[0]!.lines.push('a=changed');
    first.media[0]!.formats.push('99');
    first.media[0]!.port = 1;
    const second = parseSdp(text);
    expect(second).toEqual(fresh);
    expect(second).not.toBe(first);
    expect(parseSdp(`${text}a=other\r\n`).media[0]!.lines).toContain('a=other');
    expect(() => parseSdp('not sdp')).toThrow();
    expect(parseSdp(text)).toEqual(fresh);
  });
});

describe('decliningAnswer (RFC 3264 §6)', () => {
  it('answers every stream of the offer with port 0, in order, with one of its formats and nothing of the offer else', () => {
    const a = decliningAnswer(OFFER)!;
    const sdp = parseSdp(a);
    expect(sdp.media.map((m) => [m.media, m.port, m.proto, m.formats])).toEqual([['audio', 0, 'RTP/SAVP', ['0']], ['video', 0, 'RTP/AVP', ['31']]]);
    expect(a).not.toContain('10.1.2.3');
    expect(a).not.toContain('crypto');
  });

  it('gives nothing for an offer that is not SDP', () => {
    expect(decliningAnswer('not sdp')).toBeUndefined();
  });
});
