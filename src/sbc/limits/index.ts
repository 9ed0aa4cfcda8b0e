// Limits stage (RFC 6404 §4.9): per-peer call rate, concurrent sessions per peer and for the
// whole SBE or pool, per-source packet rate for an external engine, and strikes that ban
// (RFC 5765 §5.1.2). State lives in a Store so limits hold across a pool of SBEs.
import { randomUUID } from 'node:crypto';
import { Counter, Gauge, register } from 'prom-client';
import { TokenBuckets } from '../../store/bucket.js';
import type { SessionScope, Store, StrikeResult } from '../../store/types.js';
import type { Policy } from '../../policy/schema.js';
import { ADMISSION_HEADER, parseAdmission, type PreAdmission, type PreAdmittedReason } from '../../sip/admission-header.js';
import type { LimitsStage, Refusal, RequestView, Side } from '../stages.js';
import type { GlobalLimits } from './schema.js';
import { admissionPlan, peerScopeName, refusalOf, tryReserved, type AppliedLimits } from './plan.js';
import { peerLabel, priorityCalls, priorityOf } from './priority.js';
import { flat } from '../../flat-string.js';

/** For the overload shedder: a call it must never refuse (emergency, trusted Resource-Priority). */
export { isPriority, type PriorityCall } from './priority.js';

export type RefusalReason = PreAdmittedReason | 'store_unavailable';

export type Admission =
  | HeldSlot
  | { admit: false; status: 503; retryAfterS: number; reason: RefusalReason };

export { GLOBAL_SCOPE, peerScope, type AppliedLimits } from './plan.js';

export interface LimitsOptions {
  store: Store;
  /** This node's id in the pool (stable across restarts, so reconcileOnStart finds its leftovers). */
  nodeId: string;
  /** Default slot expiry when the policy does not say (policy: limits.session_ttl_s). */
  sessionTtlMs?: number;
  /** Clock for the local per-source buckets (ms). */
  now?: () => number;
  /**
   * Strikes sent to the store per second, at most (default 500). A garbage flood from many
   * (spoofed) sources must not become a flood of Redis calls; past the budget strikes are
   * counted in peergate_strikes_unrecorded_total only. A single abusive source still crosses
   * its threshold, only later.
   */
  maxStrikesPerS?: number;
}

function counter(name: string, help: string, labelNames: string[]): Counter {
  return (register.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames });
}
function gauge(name: string, help: string, labelNames: string[]): Gauge {
  return (register.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, labelNames });
}

export const limitRefusals = counter('peergate_limit_refusals_total', 'Requests refused by a limit (503), by peer and reason', ['peer', 'reason']);
export const sourceDrops = counter('peergate_limit_source_drops_total', 'Requests dropped silently by the per-source packet rate, by peer', ['peer']);
export const strikesTotal = counter('peergate_strikes_total', 'Strikes counted against sources, by kind', ['kind']);
export const strikeBans = counter('peergate_strike_bans_total', 'Sources banned for too many strikes, by the kind of the last strike', ['kind']);
export const strikesUnrecorded = counter('peergate_strikes_unrecorded_total', 'Strikes not sent to the store (over the per-node strike budget)', ['kind']);
export const preadmissions = counter('peergate_limit_preadmissions_total',
  'INVITEs the engine decided limits for (X-Peergate-Admission), by what the worker did: claimed, mismatch (attributed otherwise: freed, admitted again), unclaimed (the call flow ended before limits: freed)', ['result']);
export const localSessions = gauge('peergate_limit_sessions_local', 'Sessions this node holds a slot for', []);

export class Limits implements LimitsStage {
  private readonly store: Store;
  private readonly nodeId: string;
  private readonly defaultTtlMs: number;
  private readonly now: () => number;
  private readonly sources = new TokenBuckets(200_000);
  private readonly strikeBudget = new TokenBuckets(1);
  private readonly maxStrikesPerS: number;
  private timer: NodeJS.Timeout | undefined;
  private ttlMs: number;
  /** Sessions this node holds, with their scopes (limits stripped), to restore a store that lost them. */
  private readonly held = new Map<string, readonly SessionScope[]>();
  /** The names-only scope lists `held` shares (by peer scope, '' = global only). */
  private readonly heldScopes = new Map<string, readonly SessionScope[]>();

  constructor(opts: LimitsOptions) {
    this.store = opts.store;
    this.nodeId = opts.nodeId;
    this.defaultTtlMs = opts.sessionTtlMs ?? 30_000;
    this.ttlMs = this.defaultTtlMs;
    this.now = opts.now ?? Date.now;
    this.maxStrikesPerS = opts.maxStrikesPerS ?? 500;
  }

  /**
   * Drop what a previous run of this node left in the store, then keep this node's sessions
   * alive every third of their ttl. A failed reconcile (store down) is not fatal: the leftovers
   * expire by themselves within the ttl.
   */
  async start(): Promise<number> {
    let dropped = 0;
    try { dropped = await this.store.reconcileOnStart(this.nodeId); } catch { /* expire by ttl */ }
    this.schedule();
    return dropped;
  }

  /** Releases in flight, so close() can wait for them. */
  private readonly releasing = new Set<Promise<void>>();

  /**
   * Shutdown: stop the keep-alive, wait for releases in flight and release every slot this
   * node still holds, so the pool's counts are right at once (not after the ttl).
   */
  async close(): Promise<void> {
    this.stop();
    const held = [...this.held.keys()];
    this.held.clear();
    localSessions.set(0);
    await Promise.all([...this.releasing, ...held.map((id) => this.store.release(id).then(() => undefined, () => undefined))]);
  }

  /** Stop keeping sessions alive (a stopped node's slots expire within the ttl). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Refresh this node's sessions now; returns how many the store knew (0 when it is down).
   * When the store knows fewer than this node holds (Redis restarted empty, or a failover to a
   * replica that missed writes), the missing ones are put back without a limit check: those
   * calls are up, and the pool's counts must include them.
   */
  async keepAlive(): Promise<number> {
    let known: number;
    try { known = await this.store.keepAlive(this.nodeId, this.ttlMs); } catch { return 0; }
    if (known < this.held.size) {
      try {
        const all = [...this.held];
        for (let i = 0; i < all.length; i += 100) {
          await Promise.all(all.slice(i, i + 100).map(([id, scopes]) => this.store.acquire(scopes, id, this.nodeId, this.ttlMs)));
        }
      } catch { /* next round */ }
    }
    return known;
  }

  /**
   * The policy's ttl, known from the first call on (start() runs with the default): a shorter
   * one re-arms the keepalive now, or slots of live calls would expire before the first round.
   */
  private setTtl(ms: number): void {
    if (ms === this.ttlMs) return;
    const shorter = ms < this.ttlMs;
    this.ttlMs = ms;
    if (shorter && this.timer) { clearTimeout(this.timer); this.schedule(); }
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.keepAlive().finally(() => { if (this.timer) this.schedule(); });
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /**
   * Admit a new call from `peerId` (undefined: from the core side, global limits only):
   * call rate first (cheap to refuse a flood), then one slot in every session scope at once.
   * A `priority` call (limits/priority.ts) may use the reserved share above each limit.
   */
  async admit(peerId: string | undefined, limits: AppliedLimits, sessionId: string = flat(randomUUID()), priority = false): Promise<Admission> {
    const global = limits.global;
    const label = peerId ?? 'core';
    if (global?.session_ttl_s !== undefined) this.setTtl(global.session_ttl_s * 1000);
    const plan = admissionPlan(peerId, limits, priority);
    try {
      // One atomic step in the store; past the peer's call rate, a priority call draws on its own bucket.
      let r = await this.store.admit(plan.rate, plan.scopes, sessionId, this.nodeId, this.ttlMs);
      if (tryReserved(plan, r)) r = await this.store.admit(plan.reserved, plan.scopes, sessionId, this.nodeId, this.ttlMs);
      const refusal = refusalOf(plan, r);
      if (refusal) return this.refuse(label, refusal.reason, refusal.retryAfterS);
    } catch {
      // StoreUnavailableError under fail_closed, or any store fault: refuse, never hang or crash.
      return this.refuse(label, 'store_unavailable', plan.retryAfterS);
    }
    return this.hold(peerId, plan.scopes, sessionId);
  }

  /** A slot the store gave this node: kept (keepAlive, restore, close) until the call releases it. */
  private hold(peerId: string | undefined, scopes: readonly SessionScope[], sessionId: string): HeldSlot {
    this.held.set(sessionId, this.countScopes(peerId, scopes));
    localSessions.set(this.held.size);
    return new HeldSlot(this, sessionId);
  }

  /**
   * The engine's pre-admission of this INVITE (X-Peergate-Admission, src/app/preadmit.ts), read
   * only from the embedded engine (which removed any network copy); undefined without one. The
   * call flow settles it on every way out (b2bua.ts): a slot admitCall did not claim is freed.
   */
  preadmitted(policy: Policy, req: RequestView): PreAdmitted | undefined {
    if (!policy.engine.embedded) return undefined;
    const value = req.get(ADMISSION_HEADER);
    if (value === undefined) return undefined;
    const a = parseAdmission(value);
    return a === null ? undefined : new PreAdmitted(this, a);
  }

  /** Free a slot this node holds (HeldSlot.release); never rejects. */
  async releaseSlot(sessionId: string): Promise<void> {
    this.held.delete(sessionId);
    localSessions.set(this.held.size);
    const p = this.store.release(sessionId).then(() => undefined, () => undefined /* the slot expires by ttl */);
    this.releasing.add(p);
    await p;
    this.releasing.delete(p);
  }

  /** What `held` keeps of a call's scopes (names only), shared by every call of the same peer. */
  private countScopes(peerId: string | undefined, scopes: readonly SessionScope[]): readonly SessionScope[] {
    const key = peerId === undefined ? '' : peerScopeName(peerId);
    let names = this.heldScopes.get(key);
    if (names === undefined) { names = Object.freeze(countOnly(scopes)); this.heldScopes.set(key, names); }
    return names;
  }

  /** The b2bua's stage interface (src/sbc/stages.ts). `pre`: the engine's decision, used when it
   *  attributed the call as this stage does (same peer, same priority); else freed, and the
   *  call admitted here as without one (a policy reload in between). */
  async admitCall(policy: Policy, from: Side, req: RequestView, pre?: PreAdmitted): Promise<{ ok: true; release(): void } | { ok: false; refusal: Refusal }> {
    const kind = priorityOf({ policy, from, req });
    const peerId = from.kind === 'peer' ? from.peer.id : undefined;
    const limits: AppliedLimits = from.kind === 'peer' ? { peer: from.peer.limits, global: policy.limits } : { global: policy.limits };
    const decided = pre?.claim(peerId, kind !== undefined);
    let a: Admission;
    if (decided === undefined) a = await this.admit(peerId, limits, undefined, kind !== undefined);
    else if (decided.admitted) {
      if (policy.limits.session_ttl_s !== undefined) this.setTtl(policy.limits.session_ttl_s * 1000);
      a = this.hold(peerId, admissionPlan(peerId, limits, kind !== undefined).scopes, decided.sessionId);
    } else a = this.refuse(peerId ?? 'core', decided.reason, decided.retryAfterS); // counted here, once: the primary only decided it
    if (kind) priorityCalls.inc({ peer: peerLabel(from), kind, result: a.admit ? 'admitted' : 'refused' });
    // The slot object itself (its release never rejects): kept for the call's life, no closure.
    if (a.admit) return a;
    return { ok: false, refusal: { status: 503, reason: 'Service Unavailable', label: `limit_${a.reason}`, retryAfterS: a.retryAfterS } };
  }

  /** The b2bua's per-request source check: only when no embedded shield did it before parsing. */
  sourceAllowed(policy: Policy, from: Side, source: string): boolean {
    if (policy.engine.embedded) return true;
    const pps = from.kind === 'peer' ? from.peer.limits.per_source_pps ?? policy.limits.per_source_pps : policy.limits.per_source_pps;
    return this.checkSource(source, pps, from.kind === 'peer' ? from.peer.id : undefined);
  }

  /**
   * Per-source packet rate in the app, for when the engine is an external drachtio-server
   * (the embedded engine's shield does this before parsing). Synchronous and local: it runs
   * per request. False = drop silently (already counted).
   */
  checkSource(source: string, pps: number | undefined, peerId?: string, burst?: number): boolean {
    if (pps === undefined) return true;
    if (this.sources.take(source, pps, burst ?? pps, this.now()) === 0) return true;
    sourceDrops.inc({ peer: peerId ?? 'unknown' });
    return false;
  }

  /**
   * Count a strike (malformed message, refused request, failed TLS handshake, identity failure)
   * against `source`; past the policy threshold the source is banned pool-wide. Undefined when
   * strikes are off, over the strike budget, or the store could not be reached.
   */
  async strike(source: string, kind: string, global: Partial<GlobalLimits> | undefined): Promise<StrikeResult | undefined> {
    const s = global?.strikes;
    if (s === undefined) return undefined;
    strikesTotal.inc({ kind });
    if (this.strikeBudget.take('', this.maxStrikesPerS, this.maxStrikesPerS, this.now()) !== 0) {
      strikesUnrecorded.inc({ kind });
      return undefined;
    }
    try {
      const r = await this.store.strike(source, kind, { threshold: s.threshold, windowMs: s.window_s * 1000, banMs: s.ban_s * 1000 });
      if (r.banned) strikeBans.inc({ kind });
      return r;
    } catch {
      return undefined;
    }
  }

  private refuse(peer: string, reason: RefusalReason, retryAfterS: number): Admission {
    limitRefusals.inc({ peer, reason });
    return { admit: false, status: 503, retryAfterS, reason };
  }
}

/**
 * A call's session slot. An object rather than a closure over admit(): it lives as long as the
 * call (issue #18 item 5). Also the b2bua stage's admission (`ok`).
 */
export class HeldSlot {
  readonly admit = true;
  readonly ok = true;
  private released = false;

  constructor(private readonly limits: Limits, readonly sessionId: string) {}

  /** Idempotent; never throws. */
  release(): Promise<void> {
    if (this.released) return Promise.resolve();
    this.released = true;
    return this.limits.releaseSlot(this.sessionId);
  }
}

function countOnly(scopes: readonly SessionScope[]): SessionScope[] {
  return scopes.map((s) => ({ scope: s.scope }));
}

/**
 * The engine's pre-admission of one INVITE, in the worker: claimed once by the limits stage when
 * it agrees with the stage's own attribution; otherwise its slot (if it got one) is freed, by
 * claim() on a mismatch or by settle() on any way out of the call flow before the limits stage.
 */
export class PreAdmitted {
  private done = false;

  constructor(private readonly limits: Limits, readonly decision: PreAdmission) {}

  /** The decision, when made for this peer and priority (it is then the call's); else undefined, slot freed. */
  claim(peerId: string | undefined, priority: boolean): PreAdmission | undefined {
    if (this.done) return undefined;
    this.done = true;
    const d = this.decision;
    if (d.peer === peerId && d.priority === priority) { preadmissions.inc({ result: 'claimed' }); return d; }
    preadmissions.inc({ result: 'mismatch' });
    if (d.admitted) void this.limits.releaseSlot(d.sessionId);
    return undefined;
  }

  /** The call flow is over with this INVITE: a slot nobody claimed is freed. Idempotent. */
  settle(): void {
    if (this.done) return;
    this.done = true;
    preadmissions.inc({ result: 'unclaimed' });
    if (this.decision.admitted) void this.limits.releaseSlot(this.decision.sessionId);
  }
}
