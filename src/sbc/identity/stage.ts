// The identity stage as the call flow sees it (src/sbc/stages.ts IdentityStage): verification
// per sending peer, verstat/Identity toward the core, signing toward peers that require it.
import type { Policy } from '../../policy/schema.js';
import type { IdentityOutcome, IdentityStage, Refusal, RequestView, Side } from '../stages.js';
import { CertFetcher } from './fetch.js';
import { IdentityVerifier, memorySeenOnce, type IdentityResult, type SeenOnce } from './verify.js';
import { outwardHeaders, withVerstat } from './apply.js';
import { IdentitySigner, SignError, type OutgoingRequest } from './sign.js';
import type { GlobalIdentity } from './schema.js';
import type { IdentityRequest } from './sipfields.js';
import { signaturesTotal } from './metrics.js';
import { priorityCalls, priorityOf } from '../limits/priority.js';

export interface IdentityStageOptions {
  /** Shared replay cache (src/store seenOnce); in-process when omitted. */
  seenOnce?: SeenOnce;
  now?: () => number;
  /** Called when signing toward a peer is impossible (the call proceeds unsigned). */
  onSignError?: (peerId: string, err: Error) => void;
}

/** The request view adapted to the identity module's drachtio-independent input. */
export function toIdentityRequest(view: RequestView): IdentityRequest {
  return {
    method: view.method, uri: view.uri, body: view.body,
    headers: (n) => view.getAll(n),
    source: { address: view.sourceAddress, port: view.sourcePort, transport: view.protocol },
  };
}

export interface IdentityOutcomeWithResult extends IdentityOutcome {
  /** The full verification result (verstat, attest, origTn …) for logs and CDRs. */
  result: IdentityResult;
  /** Headers the B2BUA should not copy toward the core (policy inbound_header: strip). */
  removeHeaders: string[];
}

export function createIdentityStage(opts: IdentityStageOptions = {}): IdentityStage {
  const now = opts.now ?? Date.now;
  const seenOnce = opts.seenOnce ?? memorySeenOnce(100_000, now);
  const signer = new IdentitySigner(now);
  // One verifier per loaded policy (hot reload builds a new one); the certificate cache
  // survives reloads that keep the same fetch settings. File paths (anchors, CAs, keys) are
  // used as they are: the policy loader made them absolute.
  const verifiers = new WeakMap<GlobalIdentity, IdentityVerifier>();
  let lastFetcher: { key: string; fetcher: CertFetcher } | undefined;

  function verifierFor(global: GlobalIdentity): IdentityVerifier {
    let v = verifiers.get(global);
    if (v) return v;
    const key = JSON.stringify(global.fetch);
    if (!lastFetcher || lastFetcher.key !== key) lastFetcher = { key, fetcher: new CertFetcher({ ...global.fetch, now }) };
    v = new IdentityVerifier({ global, seenOnce, fetcher: lastFetcher.fetcher, now });
    verifiers.set(global, v);
    return v;
  }

  return {
    async verify(policy: Policy, from: Side, view: RequestView) {
      if (from.kind !== 'peer') return { ok: true, outcome: { addHeaders: {} } };
      const peer = from.peer;
      if (peer.identity.mode === 'off') return { ok: true, outcome: { addHeaders: {} } };
      const req = toIdentityRequest(view);
      // An emergency or trusted priority call is verified but never refused for its identity
      // when the policy says so (limits.priority.identity_exempt; RFC 6404 §4.9).
      const exempt = peer.identity.mode === 'required' && policy.limits.priority.identity_exempt ? priorityOf({ policy, from, req: view }) : undefined;
      const result = await verifierFor(policy.identity).verify(req, exempt ? { ...peer.identity, mode: 'verify' } : peer.identity, peer.id);
      if (exempt && result.verdict !== 'pass') priorityCalls.inc({ peer: peer.id, kind: exempt, result: 'identity_exempt' });
      if (result.reject) {
        const refusal: Refusal = { status: result.status ?? 428, reason: result.reason ?? 'Use Identity Header', label: `identity_${result.status ?? 428}` };
        return { ok: false, refusal };
      }
      const edits = outwardHeaders(req, result, peer.identity, undefined, peer.topology?.trust_pai === true);
      const outcome: IdentityOutcomeWithResult = {
        addHeaders: edits.set, result, removeHeaders: edits.remove,
        ...(peer.identity.verstat_on === 'from' ? { decorateFrom: (f: string) => withVerstat(f, result.verstat) } : {}),
      };
      return { ok: true, outcome };
    },

    async sign(_policy: Policy, to: Side, view: RequestView, outgoing: { from: string; to: string } & Partial<OutgoingRequest>) {
      if (to.kind !== 'peer' || !to.peer.identity.sign) return {};
      const s = to.peer.identity.sign;
      try {
        const pai = view.get('P-Asserted-Identity');
        const headers = signer.sign(s, { requestUri: view.uri, ...(pai ? { pai } : {}), ...outgoing });
        signaturesTotal.inc({ peer: to.peer.id, standard: 'shaken' in s ? 'rfc8224' : 'rfc4474' });
        return headers;
      } catch (e) {
        if (!(e instanceof SignError)) throw e;
        opts.onSignError?.(to.peer.id, e);
        return {};
      }
    },
  };
}
