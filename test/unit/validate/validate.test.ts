// validate.ts: what a new INVITE must carry before the B2BUA routes it (issue #17.1).
import { describe, expect, it } from 'vitest';
import { validateInvite, nameAddrUri } from '../../../src/sbc/validate.js';
import { splitHeaderValues } from '../../../src/sbc/request-view.js';

const SDP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';

function view(headers: Record<string, string | undefined>, uri = 'sip:+15551230000@pg.example', body = '') {
  const h: Record<string, string | undefined> = {
    Via: 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1', From: '"A" <sip:a@192.0.2.1>;tag=1', To: '<sip:+15551230000@pg.example>',
    'Call-ID': 'abc@192.0.2.1', CSeq: '1 INVITE', Contact: '<sip:a@192.0.2.1:5060>', ...headers,
  };
  const get = (n: string) => Object.entries(h).find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1];
  return { uri, body, get, getAll: (n: string) => splitHeaderValues(get(n)) };
}

describe('validateInvite', () => {
  it('accepts a well-formed INVITE, with and without SDP, and tel: Request-URIs', () => {
    expect(validateInvite(view({}))).toBeUndefined();
    expect(validateInvite(view({ 'Content-Type': 'application/sdp' }, undefined, SDP))).toBeUndefined();
    expect(validateInvite(view({ 'Content-Type': 'Application/SDP; charset=utf-8' }, undefined, SDP))).toBeUndefined();
    expect(validateInvite(view({}, 'tel:+15551230000'))).toBeUndefined();
    expect(validateInvite(view({ Contact: 'sips:a@192.0.2.1;expires=60' }))).toBeUndefined();
  });

  it.each([
    ['no Contact', { Contact: undefined }, 400, 'Missing Contact Header'],
    ['Contact *', { Contact: '*' }, 400, 'Bad Contact Header'],
    ['two Contacts', { Contact: '<sip:a@h>, <sip:b@h>' }, 400, 'Bad Contact Header'],
    ['Contact without a URI', { Contact: '"only a name"' }, 400, 'Bad Contact Header'],
    ['Contact http:', { Contact: '<http://evil.example/>' }, 400, 'Unsupported Contact URI Scheme'],
    ['Contact tel:', { Contact: '<tel:+1555>' }, 400, 'Unsupported Contact URI Scheme'],
    ['From without a URI', { From: 'nobody' }, 400, 'Bad From Header'],
    ['two To', { To: '<sip:a@h>, <sip:b@h>' }, 400, 'Bad To Header'],
    ['empty Call-ID', { 'Call-ID': '' }, 400, 'Bad Call-ID Header'],
    ['Call-ID with a space', { 'Call-ID': 'a b' }, 400, 'Bad Call-ID Header'],
    ['CSeq of another method', { CSeq: '1 BYE' }, 400, 'Bad CSeq Header'],
    ['CSeq 2**31', { CSeq: '2147483648 INVITE' }, 400, 'Bad CSeq Header'],
    ['no Via', { Via: undefined }, 400, 'Bad Via Header'],
    ['Via not SIP/2.0', { Via: 'SIP/3.0/UDP h' }, 400, 'Bad Via Header'],
  ])('%s → %i %s', (_n, headers, status, reason) => {
    const r = validateInvite(view(headers));
    expect(r).toMatchObject({ status, reason, label: 'malformed' });
  });

  it('refuses an unsupported Request-URI scheme with 416', () => {
    expect(validateInvite(view({}, 'im:alice@example.com'))).toMatchObject({ status: 416, reason: 'Unsupported URI Scheme' });
    expect(validateInvite(view({}, 'no-scheme'))).toMatchObject({ status: 416 });
  });

  it('checks the body against its Content-Type', () => {
    expect(validateInvite(view({}, undefined, SDP))).toMatchObject({ status: 400, reason: 'Missing Content-Type' });
    expect(validateInvite(view({ 'Content-Type': 'text/plain' }, undefined, 'hi'))).toMatchObject({ status: 415, reason: 'Unsupported Media Type' });
    expect(validateInvite(view({ 'Content-Type': 'multipart/mixed;boundary=x' }, undefined, SDP))).toMatchObject({ status: 415 });
    expect(validateInvite(view({ 'Content-Type': 'application/sdp', 'Content-Encoding': 'gzip' }, undefined, SDP))).toMatchObject({ status: 415 });
    expect(validateInvite(view({ 'Content-Type': 'application/sdp' }, undefined, 'v=0\r\nnot sdp\r\n'))).toMatchObject({ status: 400, reason: 'Malformed SDP Body' });
    expect(validateInvite(view({ 'Content-Type': 'garbage' }, undefined, SDP))).toMatchObject({ status: 400, reason: 'Bad Content-Type Header' });
  });

  it('never puts input text in the reason', () => {
    const hostile = '<http://x/>"\r\nX-Injected: 1';
    const r = validateInvite(view({ Contact: hostile }));
    expect(r?.reason).not.toContain('http');
    expect(r?.reason).not.toContain('Injected');
  });

  it('nameAddrUri reads name-addr and addr-spec forms', () => {
    expect(nameAddrUri('"A <b>" <sip:a@h>;tag=1')).toBe('sip:a@h');
    expect(nameAddrUri('sip:a@h;tag=1')).toBe('sip:a@h');
    expect(nameAddrUri('Bob <sips:b@h:5061>')).toBe('sips:b@h:5061');
    expect(nameAddrUri('<>')).toBeUndefined();
    expect(nameAddrUri('plain')).toBeUndefined();
  });
});
