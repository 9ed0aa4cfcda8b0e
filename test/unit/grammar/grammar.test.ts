// The SIP grammar module (src/sip/grammar): each reader on its own, and the lenient readers
// (used on values the parser has validated) agreeing with the strict ones on the RFC 4475
// torture messages.
import { describe, expect, it } from 'vitest';
import { loadTorture } from '../../fixtures/torture/decode.js';
import { parseMessage, type SipMessage } from '../../../src/engine/message/index.js';
import {
  addrSpecOf, canonicalTelephoneNumber, controlCharIn, getTag, hasControlChar, headerParam, isValidNameAddr, isValidVia,
  MAX_CSEQ, MAX_REQUEST_CSEQ, paramValue, parseCSeq, parseNameAddr, parseRequestCSeq, parseUri, parseVia, routingNumber,
  splitCommaList, uriHost, uriHostPort, uriUser, viaBranch, viaKey, viaSentBy,
} from '../../../src/sip/grammar/index.js';

describe('URI (RFC 3261 §19.1, RFC 3966)', () => {
  it('reads sip, sips and tel URIs, IPv6 references keeping their brackets', () => {
    expect(parseUri('sip:alice@[2001:db8::1]:5070;transport=tcp')).toMatchObject({ scheme: 'sip', user: 'alice', host: '[2001:db8::1]', port: 5070 });
    expect(parseUri('SIPS:b@example.com')?.scheme).toBe('sips');
    expect(parseUri('tel:+1-201-555-0123;phone-context=example.com')).toMatchObject({ scheme: 'tel', user: '+1-201-555-0123' });
    expect(parseUri('sip:[2001:db8::1')).toBeNull();
    expect(parseUri('sip:a@host:65536')).toBeNull();
    expect(parseUri('mailto:a@b')).toBeNull();
  });
  it('gives host, host:port and user the way routing and the SBE need them', () => {
    expect(uriHost('sip:+1555@carrier.example:5061;transport=tls')).toBe('carrier.example');
    expect(uriHost('sip:[2001:db8::1]:5060')).toBe('2001:db8::1');
    expect(uriHost('tel:+1555')).toBe('');
    expect(uriHost('not a uri')).toBe('');
    expect(uriHostPort('sip:u@[2001:db8::1]:5060;x=1')).toBe('[2001:db8::1]:5060');
    expect(uriUser('sip:gw:secret@10.0.0.1')).toBe('gw');
    expect(uriUser('sip:10.0.0.1')).toBeUndefined();
    expect(uriUser('tel:+44-20;ext=1')).toBe('+44-20');
  });
});

describe('name-addr, params and tags (RFC 3261 §20.10, §25.1)', () => {
  it('finds the tag after the URI only, whatever the display name holds', () => {
    expect(getTag('"A <;tag=no>" <sip:a@b;tag=uriparam>;tag=yes')).toBe('yes');
    expect(getTag('"x>y" <sip:a@b>;TAG = t1')).toBe('t1');
    expect(getTag('<sip:a@b;tag=uriparam>')).toBeUndefined();
    expect(getTag('sip:a@b;tag=bare')).toBe('bare');
    expect(getTag('<sip:a@b>;x="q;tag=no";tag=real')).toBe('real');
    expect(getTag('<sip:a@b>;tag')).toBeUndefined();
    expect(getTag('<sip:a@b>;tag=')).toBeUndefined();
  });
  it('reads the URI and header parameters of a value leniently', () => {
    expect(addrSpecOf('"Bob <b>" <sip:b@h;x=1>;tag=2')).toBe('sip:b@h;x=1');
    expect(addrSpecOf('sip:b@h;tag=2')).toBe('sip:b@h');
    expect(headerParam('<sip:b@h;expires=1>;expires=60', 'expires')).toBe('60');
    expect(headerParam('<sip:b@h>;lr', 'lr')).toBe('');
    expect(paramValue('SIP/2.0/UDP h;received="1.2.3.4"', 0, 'received')).toBe('1.2.3.4');
  });
  it('refuses an unescaped control character in a quoted display name, accepts an escaped one', () => {
    expect(isValidNameAddr('"Al\u0000ice" <sip:a@b>')).toBe(false);
    expect(isValidNameAddr('"Al\u007fice" <sip:a@b>')).toBe(false);
    expect(parseNameAddr('"Al\\\u0000ice" <sip:a@b>')?.displayName).toBe('Al\u0000ice');
    expect(isValidNameAddr('"Al\tice" <sip:a@b>')).toBe(true);
    expect(isValidVia('SIP/2.0/UDP h;x="a\u0001"')).toBe(false);
  });
  it('splits lists at commas outside quotes and <>', () => {
    expect(splitCommaList('"Doe, John" <sip:a@b>, <sip:c@d;x=1,2>')).toEqual(['"Doe, John" <sip:a@b>', '<sip:c@d;x=1,2>']);
  });
});

describe('CSeq (RFC 3261 §8.1.1.5, §20.16)', () => {
  it('holds a 32-bit unsigned number in the field, and below 2**31 in a request', () => {
    expect(MAX_CSEQ).toBe(2 ** 32 - 1);
    expect(MAX_REQUEST_CSEQ).toBe(2 ** 31 - 1);
    expect(parseCSeq('4294967295 ACK')).toEqual({ seq: 4294967295, method: 'ACK' });
    expect(parseCSeq('4294967296 ACK')).toBeNull();
    expect(parseRequestCSeq('2147483647 INVITE')).toEqual({ seq: 2147483647, method: 'INVITE' });
    expect(parseRequestCSeq('2147483648 INVITE')).toBeNull();
    expect(parseRequestCSeq('  0009\tINVITE ')).toEqual({ seq: 9, method: 'INVITE' });
    expect(parseRequestCSeq('1 IN VITE')).toBeNull();
    expect(parseRequestCSeq('-1 INVITE')).toBeNull();
  });
});

describe('Via (RFC 3261 §20.42, RFC 3581)', () => {
  it('gives transaction keys: branch, sent-by, transport', () => {
    const k = viaKey('SIP / 2.0 / udp Host.Example : 5070 ;rport;branch=z9hG4bK-1', 'f');
    expect(k).toEqual({ branch: 'z9hG4bK-1', sentBy: 'host.example:5070', transport: 'UDP', field: 'f' });
    expect(viaBranch('SIP/2.0/UDP h;x="a;branch=fake";branch=real')).toBe('real');
    expect(viaBranch('SIP/2.0/UDP h')).toBe('');
  });
  it('writes sent-by with the transport default port for loop detection', () => {
    expect(viaSentBy('SIP/2.0/UDP host.example;branch=x')).toBe('host.example:5060');
    expect(viaSentBy('SIP/2.0/TLS sbc.example;branch=x')).toBe('sbc.example:5061');
    expect(viaSentBy('SIP/2.0/TCP [2001:DB8::1]:5062')).toBe('[2001:db8::1]:5062');
    expect(viaSentBy('garbage')).toBeNull();
  });
});

describe('telephone numbers: two contracts', () => {
  it('routingNumber drops visual separators and keeps everything else (total)', () => {
    expect(routingNumber('+44 (20) 7946-0000')).toBe('+442079460000');
    expect(routingNumber('alice')).toBe('alice');
    expect(routingNumber('+1.555')).toBe('+1555');
  });
  it('canonicalTelephoneNumber is RFC 8224 §8.3: digits, # and * only, no +, or undefined', () => {
    expect(canonicalTelephoneNumber('+44 (20) 7946-0000')).toBe('442079460000');
    expect(canonicalTelephoneNumber('*67#')).toBe('*67#');
    expect(canonicalTelephoneNumber('alice')).toBeUndefined();
    expect(canonicalTelephoneNumber('1'.repeat(33))).toBeUndefined();
  });
});

describe('control characters (RFC 3261 §25.1)', () => {
  it('finds any CTL but HTAB, except the escaped character of a quoted-pair', () => {
    expect(controlCharIn('plain\tvalue')).toBe(-1);
    expect(controlCharIn('a\u0000b')).toBe(1);
    expect(controlCharIn('a\u007f')).toBe(1);
    expect(controlCharIn('"x\\\u0007y"')).toBe(-1);
    expect(controlCharIn('x\\\u0007y')).toBe(2); // a backslash outside quotes escapes nothing
    expect(controlCharIn('"x\\\\\u0007"')).toBe(4); // an escaped backslash, then a bare BEL
    expect(controlCharIn('"a\\\rb"')).toBe(3); // CR may never be escaped
    expect(hasControlChar('ünïcode ok')).toBe(false);
  });
});

describe('lenient readers agree with the strict ones on the RFC 4475 valid messages', () => {
  const messages: Array<[string, SipMessage]> = [];
  for (const [name, buf] of loadTorture('valid')) {
    const r = parseMessage(buf);
    if (r.ok) messages.push([name, r.message]);
  }
  it('parses them all', () => expect(messages.length).toBe(loadTorture('valid').size));
  it('getTag / addrSpecOf match parseNameAddr; viaKey matches parseVia; parseCSeq reads every CSeq', () => {
    let checked = 0;
    for (const [name, m] of messages) {
      for (const h of m.headers) {
        if (h.name === 'from' || h.name === 'to' || h.name === 'contact' || h.name === 'route' || h.name === 'record-route') {
          if (h.value === '*') continue;
          const na = parseNameAddr(h.value);
          expect(na, `${name} ${h.raw}`).not.toBeNull();
          expect(addrSpecOf(h.value), `${name} ${h.raw}`).toBe(na!.uri);
          expect(getTag(h.value), `${name} ${h.raw}`).toBe(na!.params.get('tag') || undefined);
          checked++;
        } else if (h.name === 'via') {
          const v = parseVia(h.value)!;
          const k = viaKey(h.value, null)!;
          expect(k.branch, `${name} Via`).toBe(v.params.get('branch') ?? '');
          expect(k.transport).toBe(v.transport);
          checked++;
        } else if (h.name === 'cseq') {
          expect(parseRequestCSeq(h.value), `${name} CSeq`).not.toBeNull();
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});
