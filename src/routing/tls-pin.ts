// Pinning outbound TLS to a peer's policy identity (`peers[].tls_pin`): the B2BUA writes the
// peer's `match.certificate` into an app header for the embedded engine, which turns it back
// into the predicate SendTarget.pin of the transport. Same rules as inbound attribution
// (src/sbc/peers.ts): every list given must match (SAN: any entry; subject: exact;
// fingerprint: SHA-256, colons and case ignored).
//
//   X-Peergate-TLS-Pin: san=<pct-encoded,list>;subject=<pct-encoded,list>;fp256=<list>
import type { TlsPeerIdentity } from '../engine/transport/types.js';

export const TLS_PIN_HEADER = 'X-Peergate-TLS-Pin';

export interface PinSpec { subject_alt_names: string[]; subjects: string[]; fingerprints_sha256: string[] }

const enc = (list: string[]) => list.map((s) => encodeURIComponent(s)).join(',');
const dec = (v: string | undefined) => (v ? v.split(',').filter(Boolean).map((s) => decodeURIComponent(s)) : []);

export function encodePin(c: PinSpec): string {
  return `san=${enc(c.subject_alt_names)};subject=${enc(c.subjects)};fp256=${enc(c.fingerprints_sha256)}`;
}

const normFp = (s: string) => s.replace(/:/g, '').toUpperCase();
const stripSanType = (s: string) => s.replace(/^(DNS|IP|IP Address|URI|email):/i, '');

/** The predicate for SendTarget.pin; undefined when the header is malformed (then: fail closed). */
export function pinPredicate(header: string): ((id: TlsPeerIdentity) => boolean) | undefined {
  const fields = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  let sans: Set<string>, subjects: Set<string>, fps: Set<string>;
  try {
    sans = new Set(dec(fields.get('san')).map((s) => stripSanType(s).toLowerCase()));
    subjects = new Set(dec(fields.get('subject')));
    fps = new Set(dec(fields.get('fp256')).map(normFp));
  } catch { return undefined; }
  if (sans.size + subjects.size + fps.size === 0) return undefined;
  return (id) => {
    if (fps.size > 0 && !fps.has(normFp(id.fingerprint256))) return false;
    if (subjects.size > 0 && !subjects.has(id.subject)) return false;
    if (sans.size > 0 && !id.subjectAltNames.some((s) => sans.has(stripSanType(s).toLowerCase()))) return false;
    return true;
  };
}
