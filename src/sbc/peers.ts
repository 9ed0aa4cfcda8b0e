// RFC 6404 §4.5/§4.6: who sent this request? Attribution uses only what the network cannot
// forge: the source address the engine saw and the verified TLS client certificate. No
// header (X-Forwarded-For, Via received, …) takes part.
import { AddressSet, sourceAddress as readAddress } from '../engine/shield/address-set.js';
import type { Policy } from '../policy/schema.js';

export interface CertificateMatch {
  subject_alt_names?: string[];
  subjects?: string[];
  fingerprints_sha256?: string[];
}

export interface PeerMatchSpec {
  id: string;
  match: { addresses?: string[]; certificate?: CertificateMatch };
}

/** What the engine tells the app about a verified client certificate. */
export interface TlsIdentity {
  subject: string;
  subjectAltNames: string[];
  fingerprint256: string;
}

export type Attribution<P> =
  | { kind: 'peer'; peer: P }
  | { kind: 'unknown'; reason: 'no-match' | 'certificate-from-wrong-address' | 'ambiguous' }
  /** The source address is a peer's, but the certificate that peer requires is missing or wrong. */
  | { kind: 'unknown'; reason: 'address-without-required-certificate'; candidate: P };

interface CompiledPeer<P> {
  peer: P;
  addresses: AddressSet | null;
  sans: Set<string> | null;
  subjects: Set<string> | null;
  fingerprints: Set<string> | null;
}

const normFp = (fp: string): string => fp.replace(/:/g, '').toUpperCase();

/** Built once per policy; `attribute` runs per request. */
export class PeerDirectory<P extends PeerMatchSpec> {
  private readonly compiled: CompiledPeer<P>[];

  constructor(peers: readonly P[]) {
    this.compiled = peers.map((peer) => {
      const a = peer.match.addresses;
      const addresses = a && a.length > 0 ? new AddressSet(a, `peer ${peer.id} match.addresses`) : null;
      const cert = peer.match.certificate;
      const set = (xs?: string[], f: (s: string) => string = (s) => s.toLowerCase()) =>
        xs && xs.length > 0 ? new Set(xs.map(f)) : null;
      return {
        peer,
        addresses,
        sans: set(cert?.subject_alt_names),
        subjects: set(cert?.subjects, (s) => s),
        fingerprints: set(cert?.fingerprints_sha256, normFp),
      };
    });
  }

  /**
   * A peer matches when every configured criterion holds: its address range (if any) contains
   * the source, and its certificate criteria (if any) match the verified certificate. So where
   * both are configured they must agree: a valid certificate from the wrong address is refused.
   */
  attribute(sourceAddress: string, tls: TlsIdentity | null): Attribution<P> {
    const source = readAddress(sourceAddress); // once, not once per peer
    let certOnlyWrongAddress = false;
    let addressNeedsCert: P | null = null;
    let found: P | null = null;
    for (const c of this.compiled) {
      const addrOk = c.addresses === null || c.addresses.contains(source);
      const wantsCert = c.sans !== null || c.subjects !== null || c.fingerprints !== null;
      const certOk = !wantsCert || (tls !== null && certificateMatches(c, tls));
      if (addrOk && certOk) {
        if (found !== null) return { kind: 'unknown', reason: 'ambiguous' };
        found = c.peer;
      } else if (!addrOk && certOk && wantsCert) certOnlyWrongAddress = true;
      else if (addrOk && !certOk && c.addresses !== null) addressNeedsCert = c.peer;
    }
    if (found) return { kind: 'peer', peer: found };
    if (certOnlyWrongAddress) return { kind: 'unknown', reason: 'certificate-from-wrong-address' };
    if (addressNeedsCert) return { kind: 'unknown', reason: 'address-without-required-certificate', candidate: addressNeedsCert };
    return { kind: 'unknown', reason: 'no-match' };
  }

  /** Every source CIDR any peer may send from, for the engine's pre-parse allowlist; null if some peer is matched by certificate alone. */
  allSourceRanges(): string[] | null {
    const out: string[] = [];
    for (const c of this.compiled) {
      const a = c.peer.match.addresses;
      if (!a || a.length === 0) return null;
      out.push(...a);
    }
    return out;
  }
}

function certificateMatches<P>(c: CompiledPeer<P>, tls: TlsIdentity): boolean {
  if (c.fingerprints && !c.fingerprints.has(normFp(tls.fingerprint256))) return false;
  if (c.subjects && !c.subjects.has(tls.subject)) return false;
  if (c.sans) {
    let any = false;
    for (const san of tls.subjectAltNames) if (c.sans.has(stripSanType(san).toLowerCase())) { any = true; break; }
    if (!any) return false;
  }
  return true;
}

/** `DNS:sbc.example` → `sbc.example`; plain names pass through. */
function stripSanType(san: string): string {
  const i = san.indexOf(':');
  if (i > 0 && i < 12 && /^(DNS|IP Address|URI|email)$/i.test(san.slice(0, i))) return san.slice(i + 1);
  return san;
}

/**
 * The source ranges the engine's shield must never ban (ShieldConfig.protect): the addresses of
 * every peer that can send over UDP (transport udp or any, not known by certificate), whose
 * source address anyone can forge. Empty when the policy lets strikes ban peers
 * (limits.strikes.ban_peers). TCP/TLS-only peers stay bannable: their address is proven by the
 * handshake.
 */
export function peerUdpSources(policy: Pick<Policy, 'peers' | 'limits'>): string[] {
  if (policy.limits.strikes?.ban_peers) return [];
  const out: string[] = [];
  for (const p of policy.peers) {
    if (p.transport !== 'udp' && p.transport !== 'any') continue;
    if (p.match.certificate) continue;
    if (p.match.addresses) out.push(...p.match.addresses);
  }
  return out;
}
