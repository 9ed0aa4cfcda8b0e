// Certificates built through node-forge's ASN.1 API, read back by the openssl binary (an
// independent decoder): the encodings where a hand-written or a library writer could slip.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, issueCertificate } from '../../../src/pki/x509.js';
import { scratchDir } from '../../helpers/procs.js';

const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('issueCertificate', () => {
  const dir = scratchDir('x509-');
  const ca = issueCertificate({ subject: { CN: 'Zürich test CA', O: 'peergate', OU: 'ops', C: 'CH' }, key: generateKey('ec'), ca: { pathLen: 0 }, days: 30 });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);

  it('writes C as PrintableString and the rest as UTF8String, and a child names its issuer byte for byte', () => {
    const parsed = openssl(['asn1parse', '-in', caFile]);
    expect(parsed).toMatch(/PRINTABLESTRING\s+:CH/);
    expect(parsed).toMatch(/UTF8STRING\s+:Z/);
    expect(openssl(['x509', '-in', caFile, '-noout', '-subject', '-nameopt', 'utf8'])).toMatch(/C\s*=\s*CH, O\s*=\s*peergate, OU\s*=\s*ops, CN\s*=\s*Zürich test CA/);
    expect(openssl(['x509', '-in', caFile, '-noout', '-text'])).toMatch(/CA:TRUE, pathlen:0/);
    const leaf = issueCertificate({ subject: { CN: 'leaf' }, key: generateKey('ec'), issuer: { certPem: ca.certPem, key: generateKey('ec') } });
    // Signed by another key than the CA's: the names match, the signature must not.
    expect(leaf.cert.checkIssued(ca.cert)).toBe(true);
    expect(leaf.cert.verify(ca.cert.publicKey)).toBe(false);
  });

  it('encodes IPv6 SANs in any written form, URI SANs, and GeneralizedTime from 2050 on; openssl verifies the chain', () => {
    const caKey = generateKey('ec');
    const root = issueCertificate({ subject: { CN: 'root' }, key: caKey, ca: true, days: 10_000 });
    const leaf = issueCertificate({
      subject: { CN: 'sbe' }, key: generateKey('rsa'), issuer: { certPem: root.certPem, key: caKey },
      san: ['IP:fe80::1:2', '2001:db8::', '::ffff:192.0.2.1', 'URI:sip:sbe.example', 'DNS:sbe.example'], extKeyUsage: ['serverAuth'],
    });
    const rootFile = join(dir, 'root.pem');
    const leafFile = join(dir, 'leaf.pem');
    writeFileSync(rootFile, root.certPem);
    writeFileSync(leafFile, leaf.certPem);
    expect(openssl(['x509', '-in', leafFile, '-noout', '-ext', 'subjectAltName'])).toMatch(
      /IP Address:FE80:0:0:0:0:0:1:2, IP Address:2001:DB8:0:0:0:0:0:0, IP Address:0:0:0:0:0:FFFF:C000:201, URI:sip:sbe.example, DNS:sbe.example/);
    expect(openssl(['asn1parse', '-in', rootFile])).toMatch(/GENERALIZEDTIME/);
    expect(new Date(root.cert.validTo).getUTCFullYear()).toBeGreaterThanOrEqual(2050);
    expect(openssl(['verify', '-CAfile', rootFile, leafFile])).toMatch(/OK/);
    expect(() => issueCertificate({ subject: { CN: 'x' }, key: caKey, san: ['IP:300.1.1.1'] })).toThrow(/not an IP address/);
  });
});
