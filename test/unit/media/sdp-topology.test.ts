// sdp-topology.ts: the SDP identity rewrite and the per-dialog o= (issue #17.5).
import { describe, expect, it } from 'vitest';
import { SdpOrigins, bodyDigest, stripIdentity, unanchoredSdpSeam } from '../../../src/sbc/media/sdp-topology.js';
import { parseSdp, writeSdp } from '../../../src/sbc/media/sdp.js';

const HOSTILE = [
  'v=0', 'o=alice-pbx 2890844526 2890844527 IN IP4 pbx.internal.example', 's=VendorX SBC 9.1.2', 'i=secret', 'u=http://intranet.example/',
  'e=ops@internal.example', 'p=+1 555 0100', 'c=IN IP4 192.0.2.10', 't=0 0', 'a=tool:VendorX 9.1', 'a=sendrecv',
  'm=audio 49170 RTP/AVP 0', 'i=mic', 'a=rtpmap:0 PCMU/8000', 'a=rtcp:49171 IN IP4 192.0.2.10',
].join('\r\n') + '\r\n';

const lines = (s: string) => s.split('\r\n').filter(Boolean);

describe('SDP identity rewrite', () => {
  it('removes every identity field and keeps what media needs', () => {
    const out = new SdpOrigins().hideText('call', 'A', HOSTILE);
    // The new o= line's random sess-id may hold any digits ("555" in ≈ 1 % of runs): not an identity field.
    expect(out.replace(/^o=- \d+ \d+ /m, 'o=- ')).not.toMatch(/alice|pbx|VendorX|secret|intranet|555|mic|tool/);
    const l = lines(out);
    expect(l[0]).toBe('v=0');
    expect(l[1]).toMatch(/^o=- \d+ 1 IN IP4 192\.0\.2\.10$/);
    expect(l[2]).toBe('s=-');
    for (const keep of ['c=IN IP4 192.0.2.10', 't=0 0', 'a=sendrecv', 'm=audio 49170 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=rtcp:49171 IN IP4 192.0.2.10']) expect(l).toContain(keep);
    expect(() => parseSdp(out)).not.toThrow();
  });

  it('keeps one sess-id per producing side, bumps the version only when the body changes (RFC 3264 §8)', () => {
    const o = new SdpOrigins();
    const first = lines(o.hideText('c1', 'A', HOSTILE))[1]!.split(' ');
    const same = lines(o.hideText('c1', 'A', HOSTILE))[1]!.split(' ');
    expect(same).toEqual(first);
    const changed = lines(o.hideText('c1', 'A', HOSTILE.replace('a=sendrecv', 'a=sendonly')))[1]!.split(' ');
    expect(changed[1]).toBe(first[1]);
    expect(Number(changed[2])).toBe(Number(first[2]) + 1);
    // The other side of the same call, and another call, have their own origin.
    expect(lines(o.hideText('c1', 'B', HOSTILE))[1]!.split(' ')[1]).not.toBe(first[1]);
    expect(lines(o.hideText('c2', 'A', HOSTILE))[1]!.split(' ')[1]).not.toBe(first[1]);
    expect(o.size).toBe(2);
    o.end('c1');
    o.end('c2');
    expect(o.size).toBe(0);
  });

  it('drops repeated or misplaced o=/s= lines and adds s= when missing', () => {
    const sdp = parseSdp('v=0\r\no=x 1 1 IN IP4 h1\r\no=y 2 2 IN IP4 h2\r\ns=one\r\ns=two\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\ns=three\r\no=z 3 3 IN IP4 h3\r\np=1\r\n');
    stripIdentity(sdp);
    const out = writeSdp(sdp);
    expect(out).not.toMatch(/one|two|three|h2|h3|p=/);
    expect(lines(out).filter((x) => x.startsWith('s='))).toEqual(['s=-']);
    const noName = parseSdp('v=0\r\no=x 1 1 IN IP4 h\r\nt=0 0\r\n');
    stripIdentity(noName);
    expect(noName.session).toEqual(['v=0', 'o=x 1 1 IN IP4 h', 's=-', 't=0 0']);
  });

  it('takes the o= address from the body\'s own c= (IPv6 too), never from the old o=', () => {
    const o = new SdpOrigins();
    const v6 = o.hideText('c', 'A', 'v=0\r\no=u 1 1 IN IP4 secret.host\r\ns=x\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nc=IN IP6 2001:db8::1\r\n');
    expect(lines(v6)[1]).toMatch(/^o=- \d+ 1 IN IP6 2001:db8::1$/);
    const none = o.hideText('d', 'A', 'v=0\r\no=u 1 1 IN IP4 secret.host\r\ns=x\r\nt=0 0\r\n');
    expect(lines(none)[1]).toMatch(/^o=- \d+ 1 IN IP4 0\.0\.0\.0$/);
  });

  it('the unanchored seam rewrites offers and answers and refuses a body that does not parse', async () => {
    const seam = unanchoredSdpSeam();
    const args = { callId: 'k', leg: 'A' as const, from: { kind: 'core' as const }, to: { kind: 'core' as const }, policy: {} as never };
    const r = await seam.offer({ ...args, sdp: HOSTILE });
    expect(r.ok && r.sdp).toMatch(/^v=0\r\no=- /);
    expect(r.ok && r.sdp).toContain('c=IN IP4 192.0.2.10');
    const bad = await seam.answer({ ...args, leg: 'B', sdp: 'not sdp' });
    expect(bad).toMatchObject({ ok: false, refusal: { status: 488, label: 'bad_sdp' } });
    await seam.end('k');
  });
});

describe('bodyDigest: what tells one body from the next', () => {
  const digest = (text: string) => { const sdp = parseSdp(text); return bodyDigest(sdp, sdp.session.findIndex((l) => l.startsWith('o='))); };
  it('is the same for the same body and for a body that differs in its o= line only', () => {
    expect(digest(HOSTILE)).toBe(digest(HOSTILE));
    expect(digest(HOSTILE.replace('o=alice-pbx 2890844526 2890844527', 'o=bob 1 99'))).toBe(digest(HOSTILE));
  });
  it('differs when any other line changes, is added, or moves across a line end; fits 48 bits', () => {
    const base = digest(HOSTILE);
    expect(base).toBeGreaterThanOrEqual(0);
    expect(base).toBeLessThan(2 ** 48);
    expect(Number.isInteger(base)).toBe(true);
    for (const changed of [
      HOSTILE.replace('a=sendrecv', 'a=sendonly'),
      HOSTILE.replace('m=audio 49170', 'm=audio 49172'),
      HOSTILE.replace('c=IN IP4 192.0.2.10', 'c=IN IP4 192.0.2.11'),
      HOSTILE + 'a=ptime:20\r\n',
    ]) expect(digest(changed)).not.toBe(base);
    // The same characters with a line end moved.
    expect(bodyDigest({ session: ['v=0', 'a=x:ab', 'a=y'], media: [] }, -1)).not.toBe(bodyDigest({ session: ['v=0', 'a=x:a', 'ba=y'], media: [] }, -1));
  });
});
