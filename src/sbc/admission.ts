// Admission (RFC 6404 §2.3.2.1, §4.6; RFC 3261 §8.2.2, §16.3): refuse what a peering
// interconnect has no use for, before anything costly happens.
import { KNOWN_METHODS, viaSentBy } from '../sip/grammar/index.js';

export interface AdmissionPolicy {
  /** Methods this peer may send; upper-case. */
  methods: readonly string[];
  /** Required transport (`any` accepts all). */
  transport: 'udp' | 'tcp' | 'tls' | 'any';
}

export interface AdmissionInput {
  method: string;
  protocol: string;
  /** Raw Max-Forwards value, if present. */
  maxForwards: string | undefined;
  /** All Via header values, top first. */
  vias: readonly string[];
}

export interface Refusal {
  status: number;
  reason: string;
  /** The refusals_total label. */
  label: string;
  /** Methods for an Allow header field (405 and 501 carry one, RFC 3261 §8.2.1, §21.5.2). */
  allow?: readonly string[];
}

// The SIP methods peergate recognises live with the grammar (the engine reads them too).
export { KNOWN_METHODS };

/** What the B2BUA serves (the Allow of its answer to OPTIONS). */
export const SERVED_METHODS: readonly string[] = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'PRACK', 'UPDATE', 'INFO'];

/** The Allow header field for a peer: the methods its policy lets it send that peergate serves. */
export function allowedMethods(policy: Pick<AdmissionPolicy, 'methods'>): string[] {
  return SERVED_METHODS.filter((m) => policy.methods.includes(m));
}

/**
 * RFC 3261 §8.2.1 method inspection, for a request from a known peer: a method peergate does not
 * recognise → 501 Not Implemented (§21.5.2); one it recognises but the peer's policy does not
 * allow → 405 Method Not Allowed. Both list in Allow what the peer may send. null: the method is
 * fine. (Unknown sources are never answered: the caller stays silent before asking.)
 */
export function methodRefusal(method: string, policy: Pick<AdmissionPolicy, 'methods'>): Refusal | null {
  if (!KNOWN_METHODS.has(method)) return { status: 501, reason: 'Not Implemented', label: 'method', allow: allowedMethods(policy) };
  if (!policy.methods.includes(method)) return { status: 405, reason: 'Method Not Allowed', label: 'method', allow: allowedMethods(policy) };
  return null;
}

/** Our own SIP addresses as `host:port`, so a request that already passed through us is seen as a loop. */
export type OwnAddresses = ReadonlySet<string>;

export function admit(input: AdmissionInput, policy: AdmissionPolicy, own: OwnAddresses): Refusal | null {
  if (policy.transport !== 'any' && input.protocol !== policy.transport) {
    return { status: 403, reason: `Transport ${input.protocol.toUpperCase()} Not Allowed For This Peer`, label: 'transport' };
  }
  if (input.method === 'REGISTER') return { status: 403, reason: 'Registration Not Accepted On Peering Interface', label: 'method' };
  const byMethod = methodRefusal(input.method, policy);
  if (byMethod) return byMethod;
  if (input.maxForwards !== undefined) {
    const mf = Number(input.maxForwards.trim());
    if (!Number.isInteger(mf) || mf < 0 || mf > 255) return { status: 400, reason: 'Bad Max-Forwards', label: 'malformed' };
    if (mf === 0 && input.method !== 'OPTIONS') return { status: 483, reason: 'Too Many Hops', label: 'max_forwards' };
  }
  // A request that already went through us carries our Via below its sender's; the top Via
  // is the sender's own claim, so it never counts (it may even name us by misconfiguration).
  for (let i = 1; i < input.vias.length; i++) {
    const sentBy = viaSentBy(input.vias[i]!);
    if (sentBy && own.has(sentBy)) return { status: 482, reason: 'Loop Detected', label: 'loop' };
  }
  return null;
}

/** `SIP/2.0/UDP 10.0.0.1:5060;branch=…` → `10.0.0.1:5060` (the transport's default port when
 *  absent); the grammar's reader, re-exported for this module's callers. */
export { viaSentBy };

/** The Max-Forwards for the new leg: one less than received (RFC 3261 §16.6 step 3 applied across the B2BUA, so loops through peergate still terminate). */
export function nextMaxForwards(received: string | undefined): number {
  if (received === undefined) return 70;
  const mf = Number(received.trim());
  return Number.isInteger(mf) && mf > 0 ? Math.min(mf - 1, 70) : 70;
}
