import { describe, it, expect } from 'vitest';
import { CallRecords, sdpIsSrtp, type CallRecord } from '../../../src/sbc/cdr/index.js';
import type { CallStart } from '../../../src/sbc/cdr/events.js';

const START: CallStart = {
  id: 'c-1', callId: 'abc@198.51.100.7', peer: 'carrier-a', direction: 'inbound', calling: '+15557654321', called: '+15551230000',
  source: { address: '2001:db8::7', port: 5061 }, transport: 'tls',
  tls: { subject: 'CN=sbc.carrier-a.example', fingerprint256: 'AA:BB', subjectAltNames: ['DNS:sbc.carrier-a.example'] },
};

const SAVP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n';
const AVP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

function recorder() {
  let t = Date.parse('2026-01-02T03:04:05.000Z');
  const out: CallRecord[] = [];
  const r = new CallRecords((rec) => out.push(rec), { node: 'sbe-1', now: () => t });
  return { r, out, advance: (ms: number) => { t += ms; } };
}

describe('call records', () => {
  it('are not built while no sink wants them, and are again as soon as one does', () => {
    let wanted = false;
    const out: CallRecord[] = [];
    const r = new CallRecords((rec) => out.push(rec), { wanted: () => wanted });
    r.begin(START).ended({ result: 'caller_bye' });
    expect(out).toHaveLength(0);
    wanted = true;
    const tr = r.begin({ ...START, id: 'c-2' });
    tr.ended({ result: 'caller_bye' });
    tr.ended({ result: 'callee_bye' });
    expect(out.map((rec) => [rec.id, rec.result])).toEqual([['c-2', 'caller_bye']]);
  });

  it('an answered call: both Call-IDs, times, duration, identity, media per side, who hung up', () => {
    const { r, out, advance } = recorder();
    const tr = r.begin(START);
    tr.identity({ verdict: 'pass', verstat: 'TN-Validation-Passed', attest: 'A', standard: 'rfc8224' });
    tr.bLeg('b-1', 'sip:core:5060');
    advance(1500);
    tr.answered({ target: 'sip:core:5060', anchored: true, bCallId: 'b-2', sdpA: SAVP, sdpB: AVP });
    advance(61_250);
    tr.ended({ result: 'callee_bye' });
    tr.ended({ result: 'caller_bye' });
    expect(out).toHaveLength(1);
    expect(out[0]).toEqual({
      v: 1, node: 'sbe-1', id: 'c-1', call_id: 'abc@198.51.100.7', b_call_id: 'b-2', peer: 'carrier-a', direction: 'inbound',
      calling: '+15557654321', called: '+15551230000', source: '[2001:db8::7]:5061', transport: 'tls',
      tls_identity: { subject: 'CN=sbc.carrier-a.example', fingerprint256: 'AA:BB', san: ['DNS:sbc.carrier-a.example'] },
      target: 'sip:core:5060',
      setup_time: '2026-01-02T03:04:05.000Z', answer_time: '2026-01-02T03:04:06.500Z', end_time: '2026-01-02T03:05:07.750Z',
      duration_s: 61.25, setup_s: 1.5, status: 200, result: 'callee_bye', ended_by: 'callee', end_reason: 'bye',
      identity: { verdict: 'pass', verstat: 'TN-Validation-Passed', attest: 'A', standard: 'rfc8224' },
      media: { anchored: true, srtp_a: true, srtp_b: false },
    });
  });

  it('a refused call: status and reason from the refusal, no answer, zero duration', () => {
    const { r, out, advance } = recorder();
    const tr = r.begin({ ...START, tls: null, source: { address: '127.0.0.2', port: 5060 }, transport: 'udp' });
    advance(3);
    tr.ended({ result: 'refused', status: 503, endedBy: 'peergate', reason: 'limit_sessions' });
    const rec = out[0]!;
    expect(rec.source).toBe('127.0.0.2:5060');
    expect([rec.status, rec.result, rec.ended_by, rec.end_reason]).toEqual([503, 'refused', 'peergate', 'limit_sessions']);
    expect([rec.answer_time, rec.duration_s, rec.setup_s, rec.b_call_id, rec.identity, rec.tls_identity]).toEqual([null, 0, 0.003, null, null, null]);
    expect(rec.media).toEqual({ anchored: false, srtp_a: false, srtp_b: false });
  });

  it('defaults who and why from the result; the peer found at routing wins', () => {
    const { r, out } = recorder();
    r.begin(START).ended({ result: 'canceled' });
    r.begin({ ...START, peer: 'none', direction: 'outbound' }).ended({ result: 'failed', peer: 'carrier-b' });
    const tr = r.begin(START);
    tr.answered({ target: 't', anchored: false });
    tr.ended({ result: 'drain', endedBy: 'peergate', reason: 'drain' });
    expect(out.map((o) => [o.status, o.ended_by, o.end_reason, o.peer])).toEqual([
      [487, 'caller', 'cancel', 'carrier-a'],
      [480, 'callee', 'failed', 'carrier-b'],
      [200, 'peergate', 'drain', 'carrier-a'],
    ]);
  });

  it('tells SRTP profiles from plain RTP', () => {
    expect(sdpIsSrtp(SAVP)).toBe(true);
    expect(sdpIsSrtp(AVP.replace('RTP/AVP', 'UDP/TLS/RTP/SAVPF'))).toBe(true);
    expect(sdpIsSrtp(AVP.replace('RTP/AVP', 'RTP/SAVPF'))).toBe(true);
    expect(sdpIsSrtp(AVP)).toBe(false);
    expect(sdpIsSrtp(AVP.replace('RTP/AVP', 'RTP/AVPF'))).toBe(false);
    expect(sdpIsSrtp(undefined)).toBe(false);
  });
});
