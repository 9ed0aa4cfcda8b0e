import { describe, it, expect } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { splitSubjectAltName, identityFromCertificate } from '../../../src/engine/transport/tls-identity.js';
import { makeCa, issueCert } from '../../helpers/tls.js';
import { scratchDir } from '../../helpers/procs.js';

describe('TLS identity format', () => {
  it('splits node subjectAltName strings, keeping quoted commas, and shortens "IP Address"', () => {
    expect(splitSubjectAltName(undefined)).toEqual([]);
    expect(splitSubjectAltName('DNS:a.example, IP Address:192.0.2.1, IP Address:2001:DB8:0:0:0:0:0:1, URI:sip:peer.example'))
      .toEqual(['DNS:a.example', 'IP:192.0.2.1', 'IP:2001:DB8:0:0:0:0:0:1', 'URI:sip:peer.example']);
    expect(splitSubjectAltName('DNS:"x, y", DNS:z')).toEqual(['DNS:"x, y"', 'DNS:z']);
  });

  it('builds subject, SANs and fingerprint from a real certificate', () => {
    const ca = makeCa(scratchDir('ident-'), 'ca');
    const c = issueCert(ca, 'leaf', { subject: '/C=US/O=Carrier A/CN=sbc1.carrier-a.test', san: ['DNS:sbc1.carrier-a.test', 'IP:192.0.2.7', 'URI:sip:carrier-a.test'] });
    const x = new X509Certificate(c.cert);
    expect(identityFromCertificate(x)).toEqual({
      subject: 'C=US, O=Carrier A, CN=sbc1.carrier-a.test',
      subjectAltNames: ['DNS:sbc1.carrier-a.test', 'IP:192.0.2.7', 'URI:sip:carrier-a.test'],
      fingerprint256: x.fingerprint256,
    });
    expect(x.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });
});
