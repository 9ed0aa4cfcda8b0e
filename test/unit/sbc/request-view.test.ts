import { describe, it, expect } from 'vitest';
import Srf from 'drachtio-srf';
import { getHeader, headerReader, requestView, type Req } from '../../../src/sbc/request-view.js';

// drachtio-srf's own message class, parsed from text the way it parses what the engine sends.
const SipMessage = (Srf as unknown as { SipMessage: new (raw: string) => { has(n: string): boolean; get(n: string): string; headers: Record<string, string> } }).SipMessage;

const INVITE = [
  'INVITE sip:+15551230000@127.0.0.1:5060 SIP/2.0',
  'v: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1',
  'Via: SIP/2.0/UDP 127.0.0.9:5062;branch=z9hG4bK-2',
  'f: "Alice" <sip:alice@127.0.0.2>;tag=a1',
  'To: <sip:+15551230000@127.0.0.1>',
  'i: call-1@127.0.0.2',
  'CSeq: 1 INVITE',
  'm: <sip:alice@127.0.0.2:5061>',
  'Max-Forwards: 70',
  'X-Custom-Thing: one',
  'P-Charging-Vector: icid-value=1',
  'P-Asserted-Identity: <sip:+15550000000@carrier.example>',
  'x: 1800;refresher=uac',
  'Session-Expires: 1800',
  'Supported: timer',
  'Supported: 100rel',
  'Diversion: <sip:+1@a>;reason=unknown',
  'c: application/sdp',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

// Names in every spelling the call flow and srf users ask for: full, compact, other case, absent.
const NAMES = ['Via', 'via', 'VIA', 'v', 'From', 'f', 'To', 't', 'Call-ID', 'call-id', 'i', 'CSeq', 'Contact', 'm', 'Max-Forwards',
  'X-Custom-Thing', 'x-custom-thing', 'P-Charging-Vector', 'p-charging-vector', 'P-Asserted-Identity', 'Session-Expires', 'x',
  'Supported', 'k', 'Diversion', 'Content-Type', 'c', 'Content-Length', 'l', 'Privacy', 'Resource-Priority', 'Subject', 's', 'X-Absent'];

describe('header reads over drachtio-srf messages', () => {
  it('answer exactly what srf’s has() + get() answer, for every spelling of every name', () => {
    const msg = new SipMessage(INVITE);
    const read = headerReader(msg);
    for (const n of NAMES) {
      const srf = msg.has(n) ? msg.get(n) : undefined;
      expect(read(n), n).toBe(srf);
      expect(getHeader(msg, n), n).toBe(srf);
    }
    // The answers are the message's, not constants: a present header reads its value.
    expect(read('Max-Forwards')).toBe('70');
    expect(read('supported')).toBe(msg.get('Supported'));
    expect(read('X-Absent')).toBeUndefined();
  });

  it('a request view reads the INVITE’s headers and splits repeated ones', () => {
    const msg = new SipMessage(INVITE);
    const req = Object.assign(msg, { source_address: '127.0.0.2', source_port: '5061', protocol: 'udp' }) as unknown as Req;
    const view = requestView(req);
    expect(view.callId).toBe('call-1@127.0.0.2');
    expect(view.getAll('Via')).toHaveLength(2);
    expect(view.get('Session-Expires')).toBe(msg.get('Session-Expires'));
    expect(view.sourcePort).toBe(5061);
  });

  it('never throws: a message without headers reads as absent', () => {
    const broken = { has(): boolean { throw new Error('boom'); }, get(): string { throw new Error('boom'); } };
    expect(getHeader(broken, 'From')).toBeUndefined();
    expect(headerReader(broken)('From')).toBeUndefined();
  });
});
