// Gauges read from the policy in force: when it was loaded, its session limits (what
// active calls are put against) and the validity of its TLS material. Set each time a
// policy comes into force (PolicyHolder), so a reload that changes a file path or a limit
// shows at once; certificates renewed in place under the same path show at the next reload.
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { crlNextUpdate } from '../pki/der.js';
import type { Policy } from '../policy/schema.js';
import { gauge, policyLoadedTimestamp, sessionLimit } from './metrics.js';

/** Unix time after which a certificate of the policy is no longer valid. */
export const certificateExpiry = gauge('peergate_tls_certificate_expiry_seconds',
  'notAfter of the TLS certificates in force (unix time), by role (served, chain, client_ca), file and subject', ['role', 'file', 'subject']);
/** Unix time by which a CRL of the policy must be replaced (its nextUpdate). */
export const crlNextUpdateGauge = gauge('peergate_tls_crl_next_update_seconds',
  'nextUpdate of the CRLs in force (unix time), by file', ['file']);
/** Files of the policy's tls section that could not be read or parsed (they are then absent above). */
export const tlsFileErrors = gauge('peergate_tls_file_errors', 'TLS files of the policy in force that could not be read or parsed', []);

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/;

function certificatesIn(file: string): X509Certificate[] {
  const data = readFileSync(file);
  const text = data.toString('latin1');
  const pems = text.match(PEM_CERT);
  return pems ? pems.map((p) => new X509Certificate(p)) : [new X509Certificate(data)];
}

function crlDer(file: string): Buffer {
  const data = readFileSync(file);
  const m = PEM_CRL.exec(data.toString('latin1'));
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : data;
}

/** Record what the policy now in force says; called by PolicyHolder on load and on each reload. */
export function recordPolicyInForce(policy: Policy, now = Date.now()): void {
  policyLoadedTimestamp.set(now / 1000);

  sessionLimit.reset();
  if (policy.limits.sessions !== undefined) sessionLimit.set({ peer: 'global' }, policy.limits.sessions);
  for (const p of policy.peers) if (p.limits.sessions !== undefined) sessionLimit.set({ peer: p.id }, p.limits.sessions);

  certificateExpiry.reset();
  crlNextUpdateGauge.reset();
  let errors = 0;
  const tls = policy.tls;
  if (tls) {
    const certs: Array<[role: string, file: string, leafOnly: boolean]> = [
      ['served', tls.certificate, true],
      ...(tls.chain ? [['chain', tls.chain, false] as [string, string, boolean]] : []),
      ...tls.client_cas.map((f): [string, string, boolean] => ['client_ca', f, false]),
    ];
    for (const [role, file, leafOnly] of certs) {
      try {
        const list = certificatesIn(file);
        // A served file may carry its chain after the leaf: those count as the chain.
        list.forEach((c, i) => certificateExpiry.set(
          { role: leafOnly && i > 0 ? 'chain' : role, file, subject: c.subject.replace(/\n/g, ', ') },
          Math.floor(Date.parse(c.validTo) / 1000)));
      } catch { errors++; }
    }
    for (const file of tls.crls) {
      try {
        const next = crlNextUpdate(crlDer(file));
        if (next) crlNextUpdateGauge.set({ file }, Math.floor(next.getTime() / 1000));
      } catch { errors++; }
    }
  }
  tlsFileErrors.set(errors);
}
