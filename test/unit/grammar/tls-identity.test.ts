// The X-Peergate-TLS-Identity header value (src/sip/tls-identity.ts): what the engine writes is
// what the SBE reads back, and it is byte for byte what the UA core wrote before it used this
// module (core/inbound.ts identityHeaderValue, whose outputs are the literals below).
import { describe, expect, it } from 'vitest';
import { formatTlsIdentity, parseTlsIdentity, isTlsIdentityField, isTlsIdentityName } from '../../../src/sip/tls-identity.js';
import { parseTlsIdentity as b2buaParse } from '../../../src/sbc/b2bua.js';

const ids = [
  { subject: 'C=US, O=Example Carrier, CN=sbc1.example.net', subjectAltNames: ['DNS:sbc1.example.net', 'IP:192.0.2.7'], fingerprint256: 'AA:BB:CC' },
  { subject: 'O=A\\, B, CN="q"', subjectAltNames: ['DNS:a', 'URI:sip:x,y%'], fingerprint256: 'AA:BB' },
  { subject: 'CN=semi;colon=x', subjectAltNames: [], fingerprint256: '01:02' },
  { subject: 'CN=line\r\nbreak', subjectAltNames: ['email:noc@example.net'], fingerprint256: 'FF' },
];

describe('X-Peergate-TLS-Identity', () => {
  it('formats exactly as the UA core did', () => {
    expect(ids.map(formatTlsIdentity)).toEqual([
      'subject="C=US, O=Example Carrier, CN=sbc1.example.net";san="DNS:sbc1.example.net,IP:192.0.2.7";fp256=AA:BB:CC',
      'subject="O=A\\\\, B, CN=\\"q\\"";san="DNS:a,URI:sip:x%2Cy%25";fp256=AA:BB',
      'subject="CN=semi;colon=x";san="";fp256=01:02',
      'subject="CN=line  break";san="email:noc@example.net";fp256=FF',
    ]);
  });
  it('parses back what it formats (CR/LF in a subject become SP)', () => {
    for (const id of ids) {
      const back = parseTlsIdentity(formatTlsIdentity(id));
      expect(back).toEqual({ ...id, subject: id.subject.replace(/[\r\n]/g, ' ') });
      expect(b2buaParse(formatTlsIdentity(id))).toEqual(back);
    }
  });
  it('refuses values without subject or fingerprint, and takes the older fingerprint256 name', () => {
    expect(parseTlsIdentity('garbage')).toBeNull();
    expect(parseTlsIdentity('subject="CN=a"')).toBeNull();
    expect(parseTlsIdentity(undefined)).toBeNull();
    expect(parseTlsIdentity('subject="CN=a";fingerprint256=AB')).toEqual({ subject: 'CN=a', subjectAltNames: [], fingerprint256: 'AB' });
  });
  it('knows the header by its parsed name, whatever its spelling', () => {
    expect(isTlsIdentityField({ name: 'x-peergate-tls-identity' })).toBe(true);
    expect(isTlsIdentityName('X-PEERGATE-TLS-Identity')).toBe(true);
    expect(isTlsIdentityName('X-Peergate-TLS-Identity2')).toBe(false);
  });
});
