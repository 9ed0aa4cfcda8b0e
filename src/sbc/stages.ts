// The seams between the call flow (b2bua.ts) and the countermeasure stages. Each stage is a
// small object the call flow calls in a fixed order; adapters in src/sbc/wiring.ts bind them
// to the limits, identity and media modules.
import type { Peer, Policy } from '../policy/schema.js';

/** What every stage may look at about a new request. Header names are case-insensitive. */
export interface RequestView {
  method: string;
  uri: string;
  callId: string;
  protocol: string;
  sourceAddress: string;
  sourcePort: number;
  get(name: string): string | undefined;
  /** All values of a header (Identity may appear several times). */
  getAll(name: string): string[];
  body: string;
}

/** Who a call is between: `core` or a peer. */
export type Side = { kind: 'core' } | { kind: 'peer'; peer: Peer };

export interface Refusal {
  status: number;
  reason: string;
  /** refusals_total{reason} label. */
  label: string;
  retryAfterS?: number;
  warning?: string;
  /** Further headers of the refusal (e.g. Min-SE on 422, RFC 4028 §6). */
  headers?: Record<string, string>;
}

/** The engine's limits decision on an INVITE (limits/index.ts PreAdmitted): admitCall may
 *  claim it; the call flow settles it on every way out (frees a slot nobody claimed). */
export interface PreAdmittedCall { settle(): void }

export interface LimitsStage {
  /** Reserve capacity for a new call; release() when it ends, however it ends. `pre`: the
   *  engine's decision (preadmitted()), used when it agrees with this stage's attribution. */
  admitCall(policy: Policy, from: Side, req: RequestView, pre?: PreAdmittedCall): Promise<{ ok: true; release(): void } | { ok: false; refusal: Refusal }>;
  /** The embedded engine's pre-admission of this INVITE (X-Peergate-Admission), if any. */
  preadmitted?(policy: Policy, req: RequestView): PreAdmittedCall | undefined;
  /** Per-source packet rate for when no embedded shield did it (external drachtio-server); false = drop silently. */
  sourceAllowed?(policy: Policy, from: Side, source: string): boolean;
}

export interface IdentityOutcome {
  /** Headers for the outgoing leg (P-Asserted-Identity with verstat, Identity kept): only toward a trusted receiver (RFC 3325). */
  addHeaders: Record<string, string>;
  /** When the verification result goes on From (verstat_on: from): decorate the new leg's From. */
  decorateFrom?: (from: string) => string;
}

export interface IdentityStage {
  /** Verify the caller identity per the sending peer's policy (core is trusted: nothing to verify). */
  verify(policy: Policy, from: Side, req: RequestView): Promise<{ ok: true; outcome: IdentityOutcome } | { ok: false; refusal: Refusal }>;
  /** Sign toward a peer that requires it. */
  sign(policy: Policy, to: Side, req: RequestView, outgoing: { from: string; to: string; callId?: string; cseq?: string; contact?: string; body?: string }): Promise<Record<string, string>>;
}

/** A: the caller's leg; B: the called leg. An offer or answer comes from one leg and goes to the other. */
export type Leg = 'A' | 'B';

export interface MediaArgs { callId: string; sdp: string; leg: Leg; from: Side; to: Side; policy: Policy }

export interface MediaStage {
  /** `anchored`: the media goes through a relay (false: unanchored, SDP identity rewrite only). */
  offer(args: MediaArgs): Promise<{ ok: true; sdp: string; anchored?: boolean } | { ok: false; refusal: Refusal }>;
  answer(args: MediaArgs): Promise<{ ok: true; sdp: string } | { ok: false; refusal: Refusal }>;
  /** Idempotent; called on every way a call ends. */
  end(callId: string): Promise<void>;
  /** rtpengine's last packet for an anchored call, `gone` when it no longer knows it (media timeout). */
  activity?(callId: string): Promise<{ lastPacketMs: number } | 'gone' | undefined>;
}

export interface Stages {
  limits?: LimitsStage;
  identity?: IdentityStage;
  media?: MediaStage;
}
