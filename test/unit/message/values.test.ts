// Value parsers and formatters: URIs, name-addr, Via, CSeq, tags.
import { describe, expect, it } from 'vitest';
import {
  formatNameAddr,
  formatUri,
  formatVia,
  getTag,
  parseCSeq,
  parseNameAddr,
  parseUri,
  parseVia,
  unescapeUri,
} from '../../../src/sip/grammar/index.js';

describe('parseUri / formatUri', () => {
  it('parses a full sip URI', () => {
    const u = parseUri('sip:alice:secret@atlanta.com:5061;transport=TCP;lr;Maddr=239.255.255.1?subject=project%20x&priority=urgent')!;
    expect(u.scheme).toBe('sip');
    expect(u.user).toBe('alice');
    expect(u.password).toBe('secret');
    expect(u.host).toBe('atlanta.com');
    expect(u.port).toBe(5061);
    expect([...u.params]).toEqual([
      ['transport', 'TCP'],
      ['lr', ''],
      ['maddr', '239.255.255.1'],
    ]);
    expect([...u.headers]).toEqual([
      ['subject', 'project%20x'],
      ['priority', 'urgent'],
    ]);
  });
  it('parses sips, IPv6 references, scheme case and host-only URIs', () => {
    expect(parseUri('SIPS:[2001:db8::10]:5061')).toMatchObject({ scheme: 'sips', host: '[2001:db8::10]', port: 5061 });
    expect(parseUri('sip:[::ffff:192.0.2.1]')).toMatchObject({ host: '[::ffff:192.0.2.1]' });
    expect(parseUri('sip:example.com')).toMatchObject({ host: 'example.com' });
    expect(parseUri('sip:example.com')!.user).toBeUndefined();
  });
  it('parses tel URIs', () => {
    const t = parseUri('tel:+1-201-555-0123;phone-context=example.com')!;
    expect(t.scheme).toBe('tel');
    expect(t.user).toBe('+1-201-555-0123');
    expect(t.params.get('phone-context')).toBe('example.com');
    expect(parseUri('tel:7042;phone-context=+1-201')!.user).toBe('7042');
  });
  it('returns null for other schemes and malformed URIs', () => {
    for (const bad of [
      'http://example.com',
      'sip:',
      'sip:user@',
      'sip:@host',
      'sip:host:port',
      'sip:host:70000',
      'sip:[::1',
      'sip:[zz::1]',
      'sip:ho st',
      'sip:host;',
      'sip:host;;x',
      'sip:host?',
      'sip:host?a',
      'tel:',
      'tel:12a@b',
      '<sip:host>',
      '',
      'sip:hö.st',
    ]) {
      expect(parseUri(bad), bad).toBeNull();
    }
    expect(parseUri(42 as unknown as string)).toBeNull();
  });
  it('formats back to equivalent text', () => {
    for (const text of [
      'sip:alice:secret@atlanta.com:5061;transport=TCP;lr?subject=x&priority=urgent',
      'sips:[2001:db8::10]:5061;maddr=[2001:db8::1]',
      'tel:+1-201-555-0123;phone-context=example.com',
      'sip:user;par=u%40example.net@example.com',
    ]) {
      const u = parseUri(text)!;
      expect(formatUri(u)).toBe(text.replace('transport=TCP', 'transport=TCP'));
      expect(parseUri(formatUri(u))).toEqual(u);
    }
  });
  it('unescapes %HH but leaves invalid escapes', () => {
    expect(unescapeUri('%75se%72')).toBe('user');
    expect(unescapeUri('I%20have%20spaces')).toBe('I have spaces');
    expect(unescapeUri('%Z%45')).toBe('%ZE');
    expect(unescapeUri('100%')).toBe('100%');
  });
});

describe('parseNameAddr / formatNameAddr', () => {
  it('handles quoted display names with escapes', () => {
    const na = parseNameAddr('"A \\"quoted\\" \\\\ name" <sip:a@example.com>;tag=x1;expires=60')!;
    expect(na.displayName).toBe('A "quoted" \\ name');
    expect(na.uri).toBe('sip:a@example.com');
    expect([...na.params]).toEqual([
      ['tag', 'x1'],
      ['expires', '60'],
    ]);
    expect(parseNameAddr(formatNameAddr(na))).toEqual(na);
  });
  it('handles token display names, no display name, and addr-spec form', () => {
    expect(parseNameAddr('Bob Smith <sip:bob@b.com>')).toMatchObject({ displayName: 'Bob Smith', uri: 'sip:bob@b.com' });
    expect(parseNameAddr('<sip:bob@b.com>')!.displayName).toBeUndefined();
    const spec = parseNameAddr('sip:bob@b.com;tag=77')!;
    expect(spec.uri).toBe('sip:bob@b.com');
    expect(spec.params.get('tag')).toBe('77');
  });
  it('keeps quoted parameter values with their quotes', () => {
    const na = parseNameAddr('<sip:a@b>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1')!;
    expect(na.params.get('+sip.instance')).toBe('"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"');
    expect(na.params.get('reg-id')).toBe('1');
  });
  it('rejects malformed values', () => {
    for (const bad of [
      '"unterminated <sip:a@b>',
      '"x" sip:a@b',
      '< sip:a@b >',
      '<sip:a@b',
      'Bell, Alexander <sip:a@b>',
      'sip:a@b?x=y',
      '<sip:a@b>;;',
      '<sip:a@b>;tag=',
      '<sip:a@b> junk',
      '<>',
      '',
      '   ',
      'noscheme',
    ]) {
      expect(parseNameAddr(bad), bad).toBeNull();
    }
  });
  it('escapes control characters when formatting', () => {
    const text = formatNameAddr({ displayName: 'BEL:\x07', uri: 'sip:a@b', params: new Map() });
    expect(text).toBe('"BEL:\\\x07" <sip:a@b>');
    expect(parseNameAddr(text)!.displayName).toBe('BEL:\x07');
  });
});

describe('getTag', () => {
  it('finds the tag after the URI, any case, with LWS', () => {
    expect(getTag('<sip:a@b;tag=uri-param>;tag=hdr')).toBe('hdr');
    expect(getTag('"x;tag=no" <sip:a@b>;TAG=yes')).toBe('yes');
    expect(getTag('sip:a@b ;   tag    = 1918181833n')).toBe('1918181833n');
    expect(getTag('sip:a@b;tagx=1;tag=2')).toBe('2');
    expect(getTag('<sip:a@b;tag=inside>')).toBeUndefined();
    expect(getTag('<sip:a@b>')).toBeUndefined();
    expect(getTag('<sip:a@b>;tag=')).toBeUndefined();
  });
  it('agrees with parseNameAddr', () => {
    for (const v of ['<sip:a@b>;x=1;tag=abc', 'A <sip:a@b>;tag=Z9;y', 'sip:a@b;tag=q']) {
      expect(getTag(v)).toBe(parseNameAddr(v)!.params.get('tag'));
    }
  });
});

describe('parseVia / formatVia', () => {
  it('parses transport, sent-by and params', () => {
    const v = parseVia('SIP/2.0/udp pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport;received=192.0.2.1')!;
    expect(v).toMatchObject({ transport: 'UDP', host: 'pc33.atlanta.com', port: 5066 });
    expect(v.params.get('rport')).toBe('');
    expect(v.params.get('received')).toBe('192.0.2.1');
    expect(parseVia(formatVia(v))).toEqual(v);
  });
  it('allows LWS around / and ; and IPv6 sent-by', () => {
    expect(parseVia('SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw')).toMatchObject({ transport: 'UDP', host: '192.0.2.2' });
    expect(parseVia('SIP/2.0/TLS [2001:db8::1]:5061 ; branch = z9hG4bK1')).toMatchObject({ host: '[2001:db8::1]', port: 5061 });
    expect(parseVia('SIP/2.0/UDP host : 5070;branch=z')).toMatchObject({ host: 'host', port: 5070 });
  });
  it('rejects malformed Via values', () => {
    for (const bad of ['SIP/2.0/UDP', 'SIP/2.0 UDP host', 'SIP/3.0/UDP host', 'HTTP/2.0/UDP h', 'SIP/2.0/UDP h;;', 'SIP/2.0/UDP h;branch=', 'SIP/2.0/UDPhost', 'SIP/2.0/UDP h:99999', '']) {
      expect(parseVia(bad), bad).toBeNull();
    }
  });
});

describe('parseCSeq', () => {
  it('parses number and method, with leading zeros and LWS', () => {
    expect(parseCSeq('314159 INVITE')).toEqual({ seq: 314159, method: 'INVITE' });
    expect(parseCSeq('0009  INVITE ')).toEqual({ seq: 9, method: 'INVITE' });
    expect(parseCSeq('4294967295 ACK')).toEqual({ seq: 4294967295, method: 'ACK' });
  });
  it('rejects overflow and malformed values', () => {
    for (const bad of ['4294967296 ACK', '36893488147419103232 REGISTER', 'INVITE', '1', '1 INVITE extra', '-1 INVITE', '1 IN<VITE', '']) {
      expect(parseCSeq(bad), bad).toBeNull();
    }
  });
});
