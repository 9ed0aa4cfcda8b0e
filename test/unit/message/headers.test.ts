// Header helpers and the serializer.
import { describe, expect, it } from 'vitest';
import {
  addHeader,
  canonicalName,
  displayName,
  getHeader,
  getHeaders,
  hasHeader,
  parseMessage,
  removeHeaders,
  serialize,
  setHeader,
  type SipMessage,
} from '../../../src/engine/message/index.js';

function sample(): SipMessage {
  const r = parseMessage(
    Buffer.from(
      [
        'INVITE sip:bob@example.com SIP/2.0',
        'v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1',
        'Via: SIP/2.0/UDP b.example.com;branch=z9hG4bK2',
        'To: <sip:bob@example.com>',
        'f: <sip:alice@example.com>;tag=1',
        'Call-ID: c1',
        'CSeq: 1 INVITE',
        'Record-Route: <sip:rr.example.com;lr>',
        'Subject: first',
        'l: 4',
        '',
        'body',
      ].join('\r\n'),
    ),
  );
  if (!r.ok) throw new Error(r.error);
  return r.message;
}

describe('canonicalName / displayName', () => {
  it('maps compact and any-case names to the lower-case long name', () => {
    expect(canonicalName('v')).toBe('via');
    expect(canonicalName('V')).toBe('via');
    expect(canonicalName('CALL-ID')).toBe('call-id');
    expect(canonicalName('i')).toBe('call-id');
    expect(canonicalName('X-Custom')).toBe('x-custom');
  });
  it('parses every case variant of well-known and compact names to the same canonical name', () => {
    const names = ['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Length', 'P-Asserted-Identity', 'WWW-Authenticate', 'X-Unknown-Thing'];
    const variants = (n: string) => [n, n.toUpperCase(), n.toLowerCase(), [...n].map((c, i) => (i % 2 ? c.toUpperCase() : c.toLowerCase())).join('')];
    for (const n of names) {
      for (const v of variants(n)) {
        const r = parseMessage(Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n${v}: ${n === 'Max-Forwards' ? '70' : n === 'Via' ? 'SIP/2.0/UDP h2' : '<sip:e@f>'}\r\n\r\n`));
        if (['From', 'To', 'Call-ID', 'CSeq', 'Content-Length'].includes(n)) continue; // would be duplicates
        if (!r.ok) throw new Error(`${v}: ${r.error}`);
        expect(r.message.headers[r.message.headers.length - 1]!.name, v).toBe(canonicalName(n));
        expect(r.message.headers[r.message.headers.length - 1]!.raw).toBe(v);
      }
    }
    for (const [c, long] of Object.entries({ v: 'via', m: 'contact', I: 'call-id', L: 'content-length', y: 'identity' })) expect(canonicalName(c)).toBe(long);
  });

  it('spells names conventionally', () => {
    expect(displayName('call-id')).toBe('Call-ID');
    expect(displayName('cseq')).toBe('CSeq');
    expect(displayName('record-route')).toBe('Record-Route');
    expect(displayName('www-authenticate')).toBe('WWW-Authenticate');
    expect(displayName('m')).toBe('Contact');
  });
});

describe('header helpers', () => {
  it('reads by long or compact name in any case', () => {
    const m = sample();
    expect(getHeader(m, 'VIA')).toBe('SIP/2.0/UDP a.example.com;branch=z9hG4bK1');
    expect(getHeaders(m, 'v')).toHaveLength(2);
    expect(getHeader(m, 'From')).toBe('<sip:alice@example.com>;tag=1');
    expect(hasHeader(m, 'f')).toBe(true);
    expect(hasHeader(m, 'Contact')).toBe(false);
    expect(getHeader(m, 'contact')).toBeUndefined();
    expect(getHeaders(m, 'contact')).toEqual([]);
  });
  it('prepends and appends next to existing fields of the same name', () => {
    const m = sample();
    addHeader(m, 'via', 'SIP/2.0/UDP me.example.com;branch=z9hG4bKnew', 'prepend');
    addHeader(m, 'Record-Route', '<sip:me.example.com;lr>', 'prepend');
    addHeader(m, 'Record-Route', '<sip:last.example.com;lr>', 'append');
    addHeader(m, 'X-New', 'v');
    expect(getHeaders(m, 'via')[0]).toBe('SIP/2.0/UDP me.example.com;branch=z9hG4bKnew');
    expect(m.headers[0]!.raw).toBe('Via');
    expect(getHeaders(m, 'record-route')).toEqual(['<sip:me.example.com;lr>', '<sip:rr.example.com;lr>', '<sip:last.example.com;lr>']);
    expect(m.headers[m.headers.length - 1]!.name).toBe('x-new');
    addHeader(m, 'Route', '<sip:first>', 'prepend');
    expect(m.headers[0]!.name).toBe('route');
  });
  it('sets one value in place and removes all fields', () => {
    const m = sample();
    setHeader(m, 'V', 'SIP/2.0/TCP only.example.com;branch=z9hG4bK9');
    expect(getHeaders(m, 'via')).toEqual(['SIP/2.0/TCP only.example.com;branch=z9hG4bK9']);
    expect(m.headers[0]!.raw).toBe('v');
    setHeader(m, 'Max-Forwards', '69');
    expect(getHeader(m, 'max-forwards')).toBe('69');
    expect(removeHeaders(m, 'subject')).toBe(1);
    expect(removeHeaders(m, 'subject')).toBe(0);
    expect(hasHeader(m, 'subject')).toBe(false);
  });
  it('refuses CR/LF in values (header injection)', () => {
    const m = sample();
    expect(() => setHeader(m, 'Subject', 'x\r\nInjected: 1')).toThrow(/CR or LF/);
    expect(() => addHeader(m, 'Subject', 'x\nInjected: 1')).toThrow(/CR or LF/);
  });
});

describe('serialize', () => {
  it('keeps raw names, recomputes Content-Length, keeps the body', () => {
    const m = sample();
    m.body = Buffer.from('longer body');
    const text = serialize(m).toString();
    expect(text.startsWith('INVITE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n')).toBe(true);
    expect(text).toContain('\r\nf: <sip:alice@example.com>;tag=1\r\n');
    expect(text).not.toContain('\r\nl: 4');
    expect(text.endsWith('Content-Length: 11\r\n\r\nlonger body')).toBe(true);
  });
  it('writes responses and empty bodies', () => {
    const r = parseMessage(Buffer.from('SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>;tag=2\r\nFrom: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n'));
    if (!r.ok) throw new Error(r.error);
    expect(serialize(r.message).toString()).toBe(
      'SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>;tag=2\r\nFrom: <sip:a@h>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n',
    );
  });
  it('counts Content-Length in bytes for UTF-8 and binary bodies', () => {
    const m = sample();
    m.body = Buffer.from('привет', 'utf8');
    expect(serialize(m).toString()).toContain('Content-Length: 12\r\n');
  });
  it('throws rather than emit a CR/LF injected by direct mutation', () => {
    const m = sample();
    m.headers.push({ name: 'subject', raw: 'Subject', value: 'a\r\nEvil: 1' });
    expect(() => serialize(m)).toThrow(/CR or LF/);
  });
});
