// Turns a verified TLS client certificate into the TlsPeerIdentity carried on InboundPacket.tls.
//
// Format (the wire server copies it into a header for the app; keep this comment in step):
//   subject          RFC 4514-like, most significant RDN first as node prints it, RDNs joined
//                    with ", "; e.g. "C=US, O=Example Carrier, CN=sbc1.example.net". Multi-valued
//                    RDNs keep node's "+" form. Values are as node prints them (node quotes values
//                    containing special characters).
//   subjectAltNames  one string per entry, "<type>:<value>", types as OpenSSL names them except
//                    "IP Address" which is shortened to "IP": "DNS:sbc1.example.net",
//                    "IP:192.0.2.7", "URI:sip:peer.example.net", "email:noc@example.net".
//   fingerprint256   SHA-256 of the DER certificate, upper-case hex pairs joined by ':'.
import type { TLSSocket } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { TlsPeerIdentity } from './types.js';

export function identityFromCertificate(cert: X509Certificate): TlsPeerIdentity {
  return {
    subject: cert.subject.split('\n').filter((l) => l.length > 0).join(', '),
    subjectAltNames: splitSubjectAltName(cert.subjectAltName),
    fingerprint256: cert.fingerprint256,
  };
}

/**
 * Identity of the peer of `socket`, only if its certificate was presented and verified
 * (`staleCrlOk`: verified but for a CRL past its nextUpdate, which the policy tolerates).
 */
export function peerIdentity(socket: TLSSocket, staleCrlOk = false): TlsPeerIdentity | undefined {
  if (!socket.authorized && !staleCrlOk) return undefined;
  const cert = socket.getPeerX509Certificate();
  return cert ? identityFromCertificate(cert) : undefined;
}

/** Node prints SANs as `DNS:a, IP Address:1.2.3.4, URI:"x, y"`: split on ", " outside quotes. */
export function splitSubjectAltName(san: string | undefined): string[] {
  if (!san) return [];
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < san.length; i++) {
    const c = san[i]!;
    if (c === '"' && san[i - 1] !== '\\') quoted = !quoted;
    if (!quoted && c === ',' && san[i + 1] === ' ') {
      out.push(normalizeSan(cur));
      cur = '';
      i++;
      continue;
    }
    cur += c;
  }
  if (cur.length > 0) out.push(normalizeSan(cur));
  return out;
}

function normalizeSan(entry: string): string {
  return entry.startsWith('IP Address:') ? `IP:${entry.slice(11)}` : entry;
}

/** The header value the app receives for such an identity (src/sip/tls-identity.ts). */
export { formatTlsIdentity as identityHeaderValue, parseTlsIdentity as parseIdentityHeaderValue } from '../../sip/tls-identity.js';
