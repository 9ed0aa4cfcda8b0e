import { describe, it, expect } from 'vitest';
import { parseSdp, writeSdp, cryptoLines, attrs } from '../../../src/sbc/media/sdp.js';
import { checkOffer, checkAnswer, offerOptions, answerOptions, sdesOptions, towardKeying, satisfiesWithoutAnchor } from '../../../src/sbc/media/policy.js';
import { SideMediaSchema, GlobalMediaSchema, type SideMedia } from '../../../src/sbc/media/schema.js';

const side = (p: Partial<Record<string, unknown>> = {}): SideMedia => SideMediaSchema.parse(p);
const K = 'inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR';
function sdp(proto: string, lines: string[] = []): string {
  return ['v=0', 'o=a 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', `m=audio 4000 ${proto} 0`, 'a=rtpmap:0 PCMU/8000', ...lines].join('\r\n') + '\r\n';
}
const plain = () => parseSdp(sdp('RTP/AVP'));
const sdes = (...suites: string[]) => parseSdp(sdp('RTP/SAVP', suites.map((s, i) => `a=crypto:${i + 1} ${s} ${K}`)));
const FP = 'a=fingerprint:sha-256 AA:BB';

describe('media policy schema', () => {
  it('has safe defaults', () => {
    const d = side();
    expect(d).toMatchObject({ srtp: 'optional', dtls: 'allowed', ice: 'remove', allow_unanchored: false, codecs: { strip: [] } });
    expect(d.suites).not.toContain('NULL_HMAC_SHA1_80');
    expect(GlobalMediaSchema.parse({})).toMatchObject({ rtpengine: 'spawn', timeout_ms: 1000, retry_after_s: 30 });
  });
  it('rejects unknown keys, NULL suites and bad addresses', () => {
    expect(SideMediaSchema.safeParse({ srtp: 'always' }).success).toBe(false);
    expect(SideMediaSchema.safeParse({ suites: ['NULL_HMAC_SHA1_80'] }).success).toBe(false);
    expect(SideMediaSchema.safeParse({ suites: [] }).success).toBe(false);
    expect(SideMediaSchema.safeParse({ colour: 'red' }).success).toBe(false);
    expect(GlobalMediaSchema.safeParse({ rtpengine: [{ address: 'nohost' }] }).success).toBe(false);
    expect(GlobalMediaSchema.parse({ rtpengine: [{ address: '127.0.0.1:22222' }] }).rtpengine).toEqual([{ address: '127.0.0.1:22222', weight: 1 }]);
  });
});

describe('offer enforcement', () => {
  it('refuses a plain offer from a side that requires SRTP (bid-down)', () => {
    const r = checkOffer(plain(), 'peer', side({ srtp: 'required' }), side({ srtp: 'forbidden' }));
    expect(r).toMatchObject({ ok: false, status: 488, reason: 'srtp_required' });
    expect(r!.warning).toMatch(/^302 peergate "SRTP required/);
  });

  it('refuses a plain offer from a peer toward a side that requires SRTP, but not from the core', () => {
    expect(checkOffer(plain(), 'peer', side(), side({ srtp: 'required' }))).toMatchObject({ status: 488, reason: 'srtp_required_toward' });
    expect(checkOffer(plain(), 'core', side({ srtp: 'forbidden' }), side({ srtp: 'required' }))).toBeUndefined();
  });

  it.each(['UNENCRYPTED_SRTCP', 'UNENCRYPTED_SRTP', 'UNAUTHENTICATED_SRTP'])('refuses %s', (param) => {
    const s = parseSdp(sdp('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 ${K} ${param}`]));
    expect(checkOffer(s, 'peer', side({ srtp: 'required' }), side())).toMatchObject({ status: 488, reason: 'insecure_srtp_params' });
  });

  it('removes suites outside the allowlist and refuses when none is left', () => {
    const s = sdes('AES_CM_128_HMAC_SHA1_32', 'AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_256_GCM');
    expect(checkOffer(s, 'peer', side({ suites: ['AES_CM_128_HMAC_SHA1_80'] }), side())).toBeUndefined();
    expect(cryptoLines(s.media[0]!).map((c) => c.suite)).toEqual(['AES_CM_128_HMAC_SHA1_80']);
    expect(checkOffer(sdes('AES_CM_128_HMAC_SHA1_32'), 'peer', side({ suites: ['AEAD_AES_256_GCM'] }), side()))
      .toMatchObject({ status: 488, reason: 'no_allowed_suite' });
    expect(checkOffer(sdes('NULL_HMAC_SHA1_80'), 'peer', side(), side())).toMatchObject({ reason: 'no_allowed_suite' });
  });

  it('refuses SRTP from a side where it is forbidden', () => {
    expect(checkOffer(sdes('AES_CM_128_HMAC_SHA1_80'), 'core', side({ srtp: 'forbidden' }), side())).toMatchObject({ reason: 'srtp_forbidden' });
  });

  it('applies DTLS policy: refused strips fingerprints or refuses DTLS-only, required refuses SDES', () => {
    const both = parseSdp(sdp('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 ${K}`, 'a=setup:actpass', FP]));
    expect(checkOffer(both, 'peer', side({ dtls: 'refused' }), side())).toBeUndefined();
    expect(attrs(both.media[0]!, 'fingerprint')).toEqual([]);
    expect(attrs(both.media[0]!, 'setup')).toEqual([]);
    const dtlsOnly = parseSdp(sdp('UDP/TLS/RTP/SAVP', ['a=setup:actpass', FP]));
    expect(checkOffer(dtlsOnly, 'peer', side({ dtls: 'refused' }), side())).toMatchObject({ reason: 'dtls_refused' });
    expect(checkOffer(sdes('AES_CM_128_HMAC_SHA1_80'), 'peer', side({ dtls: 'required' }), side())).toMatchObject({ reason: 'dtls_required' });
    expect(checkOffer(parseSdp(sdp('UDP/TLS/RTP/SAVP', ['a=setup:actpass', FP])), 'peer', side({ dtls: 'required' }), side())).toBeUndefined();
  });

  it('refuses a SAVP section without any keying', () => {
    expect(checkOffer(parseSdp(sdp('RTP/SAVP')), 'peer', side(), side())).toMatchObject({ reason: 'no_keying' });
  });

  it('leaves unknown attributes and inactive streams untouched', () => {
    const text = sdp('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 ${K}`, 'a=x-foo:bar baz']) + 'm=video 0 RTP/AVP 31\r\n';
    const s = parseSdp(text);
    expect(checkOffer(s, 'peer', side({ srtp: 'required' }), side())).toBeUndefined();
    expect(writeSdp(s)).toBe(text);
  });
});

describe('answer enforcement', () => {
  it('refuses a plain answer from an SRTP-required side and insecure params', () => {
    expect(checkAnswer(plain(), side({ srtp: 'required' }))).toMatchObject({ status: 488, reason: 'srtp_required' });
    expect(checkAnswer(parseSdp(sdp('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 ${K} UNENCRYPTED_SRTCP`])), side())).toMatchObject({ reason: 'insecure_srtp_params' });
    expect(checkAnswer(sdes('AES_CM_128_HMAC_SHA1_32'), side({ suites: ['AES_CM_128_HMAC_SHA1_80'] }))).toMatchObject({ reason: 'no_allowed_suite' });
    expect(checkAnswer(sdes('AES_CM_128_HMAC_SHA1_80'), side({ srtp: 'required' }))).toBeUndefined();
    expect(checkAnswer(plain(), side({ srtp: 'forbidden' }))).toBeUndefined();
  });
});

describe('rtpengine options', () => {
  it('plain toward a plain core: RTP/AVP, ICE removed, origin replaced, strict source learned at once', () => {
    const o = offerOptions(sdes('AES_CM_128_HMAC_SHA1_80'), side({ srtp: 'required' }), side({ srtp: 'forbidden' }));
    expect(o).toMatchObject({ 'transport-protocol': 'RTP/AVP', ICE: 'remove', replace: ['origin', 'session-connection'] });
    expect(o.flags).toEqual(['strict-source', 'endpoint-learning-immediate']);
    expect(o.flags).not.toContain('media-handover');
  });

  it('SRTP toward an SRTP-required peer with only the allowed suites, no DTLS when refused', () => {
    const o = offerOptions(plain(), side({ srtp: 'forbidden' }), side({ srtp: 'required', suites: ['AES_CM_128_HMAC_SHA1_80'], dtls: 'refused' }));
    expect(o['transport-protocol']).toBe('RTP/SAVP');
    expect(o.DTLS).toBe('off');
    expect(o.SDES).toContain('no-AEAD_AES_256_GCM');
    expect(o.SDES).toContain('no-NULL_HMAC_SHA1_80');
    expect(o.SDES).not.toContain('no-AES_CM_128_HMAC_SHA1_80');
  });

  it('DTLS-only toward a DTLS-required side; keying follows the offer on optional sides', () => {
    expect(offerOptions(plain(), side(), side({ srtp: 'required', dtls: 'required' }))).toMatchObject({ 'transport-protocol': 'UDP/TLS/RTP/SAVP', SDES: ['off'] });
    expect(towardKeying('plain', side())).toBe('plain');
    expect(towardKeying('sdes', side())).toBe('sdes');
    expect(towardKeying('sdes', side({ srtp: 'forbidden' }))).toBe('plain');
  });

  it('strips codecs named by either side; ICE keep becomes force (own candidates only)', () => {
    const o = offerOptions(plain(), side({ codecs: { strip: ['telephone-event'] } }), side({ codecs: { strip: ['G729'] }, ice: 'keep' }));
    expect(o.codec).toEqual({ strip: ['telephone-event', 'G729'] });
    expect(o.ICE).toBe('force');
    expect(answerOptions(side())).toMatchObject({ ICE: 'remove', flags: ['strict-source', 'endpoint-learning-immediate'] });
    expect(sdesOptions(side({ suites: ['AES_CM_128_HMAC_SHA1_80'] }))).toHaveLength(11);
  });

  it('decides whether an offer could go unanchored', () => {
    expect(satisfiesWithoutAnchor(plain(), side())).toBe(true);
    expect(satisfiesWithoutAnchor(plain(), side({ srtp: 'required' }))).toBe(false);
    expect(satisfiesWithoutAnchor(sdes('AES_CM_128_HMAC_SHA1_80'), side({ srtp: 'forbidden' }))).toBe(false);
    expect(satisfiesWithoutAnchor(sdes('AES_CM_128_HMAC_SHA1_32'), side({ suites: ['AES_CM_128_HMAC_SHA1_80'] }))).toBe(false);
  });
});
