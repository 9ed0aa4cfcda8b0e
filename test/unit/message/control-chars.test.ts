// Issue #17 item 2: control characters other than HTAB in header values make a message
// malformed (RFC 3261 §25.1); the parser reports 400 and does not hand the value back for echoing.
import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../../src/engine/message/index.js';

const msg = (extra: string, from = '<sip:a@example.com>;tag=1') =>
  Buffer.from(
    `INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1\r\nMax-Forwards: 70\r\n` +
      `From: ${from}\r\nTo: <sip:b@example.com>\r\nCall-ID: c1@example.com\r\nCSeq: 1 INVITE\r\n${extra}Content-Length: 0\r\n\r\n`,
    'latin1',
  );

describe('control characters in header values', () => {
  const bad: Array<[string, string]> = [
    ['NUL', 'Subject: a\u0000b\r\n'],
    ['SOH', 'User-Agent: \u0001\r\n'],
    ['VT', 'X-Custom: a\u000bb\r\n'],
    ['FF', 'Allow: INVITE,\u000cACK\r\n'],
    ['ESC', 'Subject: \u001b[31m\r\n'],
    ['DEL', 'Subject: a\u007f\r\n'],
    ['NUL in Date', 'Date: Sat, 13 Nov 2010 23:29:00\u0000 GMT\r\n'],
    ['NUL in Call-ID position', 'P-Asserted-Identity: <sip:x@y>\u0000\r\n'],
    ['NUL in a folded continuation', 'Subject: first\r\n  sec\u0000ond\r\n'],
  ];
  for (const [name, extra] of bad) {
    it(`refuses ${name} with 400 and leaves no control character in the recovered headers`, () => {
      const r = parseMessage(msg(extra));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.status).toBe(400);
      expect(r.kind).toBe('request');
      expect(r.error).toMatch(/control character 0x[0-9a-f]{2}|malformed/);
      expect(r.headers.map((h) => h.name).sort()).toEqual(['call-id', 'cseq', 'from', 'to', 'via']);
    });
  }
  it('refuses them in From (qdtext) and Call-ID too; the bad field is not recovered', () => {
    const r = parseMessage(msg('', '"Al\u0000ice" <sip:a@example.com>;tag=1'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.headers.some((h) => h.name === 'from')).toBe(false);
    expect(parseMessage(Buffer.from(msg('').toString('latin1').replace('c1@example.com', 'c1\u0000@example.com'), 'latin1')).ok).toBe(false);
  });
  it('accepts HTAB, non-ASCII text and a control character escaped as a quoted-pair', () => {
    expect(parseMessage(msg('Subject: a\tb\r\n')).ok).toBe(true);
    expect(parseMessage(Buffer.from(msg('Subject: grüße\r\n').toString('latin1'), 'utf8')).ok).toBe(true);
    expect(parseMessage(msg('', '"Al\\\u0000ice" <sip:a@example.com>;tag=1')).ok).toBe(true);
    expect(parseMessage(msg('X-Note: "quoted \\\u0007 bell"\r\n')).ok).toBe(true);
  });
  it('drops a response whose Reason-Phrase holds one', () => {
    const r = parseMessage(Buffer.from('SIP/2.0 200 O\u0000K\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n', 'latin1'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.kind).toBe('response');
  });
});
