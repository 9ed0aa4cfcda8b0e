import { describe, it, expect } from 'vitest';
import { parseTlsIdentity } from '../../../src/sbc/b2bua.js';
import { requestUriFor } from '../../../src/sbc/b-leg.js';
import { splitHeaderValues } from '../../../src/sbc/request-view.js';

describe('B2BUA helpers', () => {
  it('puts the called number into a target URI that names no user', () => {
    expect(requestUriFor('sip:127.0.0.2:5070', '+442079460000')).toBe('sip:+442079460000@127.0.0.2:5070');
    expect(requestUriFor('sip:10.0.0.1:5060;transport=tcp', '+1555')).toBe('sip:+1555@10.0.0.1:5060;transport=tcp');
    expect(requestUriFor('sip:gw@10.0.0.1', '+1555')).toBe('sip:gw@10.0.0.1');
    expect(requestUriFor('sip:10.0.0.1', '')).toBe('sip:10.0.0.1');
  });
  it('splits joined header values outside quotes and angle brackets', () => {
    expect(splitHeaderValues('SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2')).toEqual(['SIP/2.0/UDP a;branch=1', 'SIP/2.0/UDP b;branch=2']);
    expect(splitHeaderValues('"Doe, John" <sip:a@b>, <sip:c@d;x=1,2>')).toEqual(['"Doe, John" <sip:a@b>', '<sip:c@d;x=1,2>']);
    expect(splitHeaderValues(undefined)).toEqual([]);
  });
  it('parses the engine TLS identity header, decoding commas inside SAN entries', () => {
    expect(parseTlsIdentity('subject="CN=a, O=\\"B\\"";san="DNS:x.example,URI:sip:a%2Cb@c";fp256=AA:BB')).toEqual({
      subject: 'CN=a, O="B"', subjectAltNames: ['DNS:x.example', 'URI:sip:a,b@c'], fingerprint256: 'AA:BB',
    });
    expect(parseTlsIdentity('garbage')).toBeNull();
  });
});
