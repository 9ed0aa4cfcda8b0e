// Who is who in a call: the per-policy lookups the call flow consults on every request
// (which side a listener faces, our own addresses, the core's source addresses, each side's
// header allowlist, the peer directory), compiled once per policy object, and the RFC 3325
// trust between two sides.
import { AddressSet } from '../engine/shield/address-set.js';
import type { Peer, Policy } from '../policy/schema.js';
import { PeerDirectory } from './peers.js';
import { HeaderAllowlist, type TrustOptions } from './topology.js';
import type { LimitsStage, Refusal, Side } from './stages.js';
import type { TlsIdentityFields } from '../sip/tls-identity.js';

/** Per-policy compiled lookups; read-only once built. */
export interface PolicyIndex {
  readonly peers: PeerDirectory<Peer>;
  /** Our own `advertise-or-address:port` per listener (loop detection, admission.ts). */
  readonly own: ReadonlySet<string>;
  /** The side (`peer` or `core`) of the listener a request arrived on; undefined: not ours. */
  listenerSide(receivedOn: string | undefined): 'peer' | 'core' | undefined;
  /** Whether a source may speak for the core (no `core.addresses`: any source on a core listener). */
  coreSourceAllowed(address: string): boolean;
  /** The header allowlist toward a side (RFC 6404 §4.4, topology.ts). */
  allowlist(toward: Side): HeaderAllowlist;
}

const indexes = new WeakMap<Policy, PolicyIndex>();

/** The compiled lookups of a policy, built on first use (a policy object never changes). */
export function indexOf(policy: Policy): PolicyIndex {
  let c = indexes.get(policy);
  if (c) return c;
  c = compile(policy);
  indexes.set(policy, c);
  return c;
}

function compile(policy: Policy): PolicyIndex {
  const listenerSide = new Map<string, 'peer' | 'core'>();
  const own = new Set<string>();
  for (const l of policy.listen) {
    listenerSide.set(`${l.address}:${l.port}`, l.side);
    listenerSide.set(`*:${l.port}`, l.side);
    own.add(`${l.advertise ?? l.address}:${l.port}`);
  }
  const coreSources = policy.core.addresses ? new AddressSet(policy.core.addresses, 'core.addresses') : null;
  const allow = new Map<string, HeaderAllowlist>();
  allow.set('core', new HeaderAllowlist(policy.core.topology));
  for (const p of policy.peers) allow.set(`peer:${p.id}`, new HeaderAllowlist(p.topology));
  return {
    peers: new PeerDirectory(policy.peers),
    own,
    listenerSide(receivedOn) {
      if (!receivedOn) return undefined;
      const exact = listenerSide.get(receivedOn);
      if (exact) return exact;
      const port = receivedOn.slice(receivedOn.lastIndexOf(':') + 1);
      return listenerSide.get(`*:${port}`);
    },
    coreSourceAllowed(address) {
      return !coreSources || coreSources.has(address);
    },
    allowlist(toward) {
      return allow.get(toward.kind === 'core' ? 'core' : `peer:${toward.peer.id}`)!;
    },
  };
}

/** `core` or the peer's id: the label of metrics, logs and /admin/calls. */
export function sideLabel(s: Side): string {
  return s.kind === 'core' ? 'core' : s.peer.id;
}

/** RFC 3325 trust: our own core is inside the trust domain; a peer is when its policy says so. */
export function trustBetween(sender: Side, receiver: Side): TrustOptions {
  const trusted = (s: Side) => s.kind === 'core' || s.peer.topology.trust_pai;
  return { trustedSender: trusted(sender), trustedReceiver: trusted(receiver) };
}

/** A request attribution refuses: the refusal label, and an answer for a known peer (else silence). */
export type Unattributed = { refuse: string; answer?: Refusal; peer?: string };

/**
 * Who sent a request: the listener's side, then the core's source addresses or the peer
 * directory (with the verified TLS identity). Also what the engine's pre-admission attributes
 * calls by (src/app/preadmit.ts), so both agree. Used by requests.ts RequestDesk. `receivedOn`: `address:port` of the
 * listener; `limits`: its per-source packet rate, for when no embedded shield applied it.
 */
export function classifySource(policy: Policy, receivedOn: string | undefined, protocol: string, sourceAddress: string,
  tls: TlsIdentityFields | null, limits?: Pick<LimitsStage, 'sourceAllowed'>): Side | Unattributed {
  const c = indexOf(policy);
  const side = c.listenerSide(receivedOn);
  if (side === 'core') {
    if (!c.coreSourceAllowed(sourceAddress)) return { refuse: 'core_source' };
    return { kind: 'core' };
  }
  const a = c.peers.attribute(sourceAddress, tls);
  if (a.kind === 'peer') {
    const side: Side = { kind: 'peer', peer: a.peer };
    // Over its packet rate (external engine only: the embedded shield did it already): silence.
    if (limits?.sourceAllowed && !limits.sourceAllowed(policy, side, sourceAddress)) return { refuse: 'source_rate' };
    return side;
  }
  // A known peer's address on a transport that cannot carry its certificate: that peer
  // is told to use TLS (it learns nothing it does not know); anyone else gets silence.
  if (a.reason === 'address-without-required-certificate' && protocol !== 'tls') {
    return { refuse: 'transport', answer: { status: 403, reason: 'TLS Required For This Peer', label: 'transport' }, peer: a.candidate.id };
  }
  return { refuse: a.reason.replace(/-/g, '_') };
}
