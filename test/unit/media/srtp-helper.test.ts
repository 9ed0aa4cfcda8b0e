// The test SRTP implementation (test/helpers/rtp.ts) must agree with an independent one,
// werift-rtp's SrtpSession, or the integration tests would prove nothing.
import { describe, it, expect } from 'vitest';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { Srtp, rtpPacket, makeStream, rtcpReceiverReport } from '../../helpers/rtp.js';

const require = createRequire(import.meta.url);
const rtp = require('werift-rtp') as any;

describe('test SRTP helper', () => {
  it('matches werift-rtp SrtpSession byte for byte and round-trips', () => {
    const key = randomBytes(16);
    const salt = randomBytes(14);
    const mine = new Srtp(key, salt);
    const session = new rtp.SrtpSession({ keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: key, remoteMasterSalt: salt }, profile: rtp.ProtectionProfileAes128CmHmacSha1_80 });
    for (const p of makeStream(10, 0x1234abcd, 100)) {
      const parsed = rtp.RtpPacket.deSerialize(p);
      const theirs: Buffer = session.encrypt(parsed.payload, parsed.header);
      const ours = mine.protect(p);
      expect(ours.equals(theirs)).toBe(true);
      expect(ours.length).toBe(p.length + 10);
      expect(mine.unprotect(ours)?.equals(p)).toBe(true);
    }
  });

  it('rejects a packet whose tag or body was altered', () => {
    const s = new Srtp(randomBytes(16), randomBytes(14));
    const p = s.protect(rtpPacket({ pt: 0, seq: 7, ts: 0, ssrc: 1, payload: randomBytes(160) }));
    const badTag = Buffer.from(p); badTag[badTag.length - 1]! ^= 1;
    const badBody = Buffer.from(p); badBody[20]! ^= 1;
    expect(s.unprotect(badTag)).toBeUndefined();
    expect(s.unprotect(badBody)).toBeUndefined();
    expect(s.unprotect(p)).toBeDefined();
  });

  it('SRTCP interoperates with werift-rtp SrtcpSession in both directions', () => {
    const key = randomBytes(16);
    const salt = randomBytes(14);
    const mine = new Srtp(key, salt);
    const session = new rtp.SrtcpSession({ keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: key, remoteMasterSalt: salt }, profile: rtp.ProtectionProfileAes128CmHmacSha1_80 });
    const rr = rtcpReceiverReport(0x0a0b0c0d, 0x01010101);
    const theirs: Buffer = session.encrypt(rr);
    const opened = mine.unprotectRtcp(theirs);
    expect(opened?.encrypted).toBe(true);
    expect(opened?.rtcp.equals(rr)).toBe(true);
    const ours = mine.protectRtcp(rr);
    expect(ours.subarray(8, rr.length).equals(rr.subarray(8))).toBe(false); // really encrypted
    expect(Buffer.from(session.decrypt(ours)).equals(rr)).toBe(true);
    const bad = Buffer.from(ours); bad[bad.length - 1]! ^= 1;
    expect(mine.unprotectRtcp(bad)).toBeUndefined();
  });
});
