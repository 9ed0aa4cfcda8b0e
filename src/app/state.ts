// Shared state and reputation as subsystems: the store (memory, or Redis for a pool) and the
// limits that use it (call rate, concurrent sessions, strikes → bans).
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { createStore, identityBanKey, type Store } from '../store/index.js';
import { Limits } from '../sbc/limits/index.js';
import { APPLIED, changedKeys, restartOrApplied, type Reconfigured, type Subsystem } from './subsystem.js';

export class StoreSubsystem implements Subsystem {
  readonly name = 'store';
  readonly store: Store;
  private current: Policy;

  constructor(private readonly started: Policy) {
    this.store = createStore(started.store);
    this.current = started;
  }

  async start(): Promise<void> { /* connects lazily; health() says how it goes */ }

  reconfigure(next: Policy): Reconfigured {
    this.current = next;
    // The connection (and the pool it joins) is chosen at start.
    return restartOrApplied(changedKeys(this.started, next, ['store']));
  }

  ready(): true | string {
    const health = this.store.health();
    // fail_open keeps taking calls on local state while Redis is down, so only fail_closed makes us unready.
    const matters = this.started.store.redis?.on_failure === 'fail_closed';
    return health.state === 'up' || !matters ? true : `store down: ${health.lastError ?? 'unreachable'}`;
  }

  /** The policy the subsystem last applied (for tests and logs). */
  get policy(): Policy { return this.current; }

  async close(): Promise<void> {
    await this.store.close();
  }
}

/** Whom a strike counts against: the TLS identity it came with (unless the policy says
 *  `limits.strikes.by_tls_identity: false`), else the source address. */
export function strikeKey(strikes: { by_tls_identity?: boolean } | undefined, source: string, tlsIdentity: string | undefined): string {
  return tlsIdentity && strikes?.by_tls_identity !== false ? identityBanKey(tlsIdentity) : source;
}

/** Refusals that say nothing about the sender's intent are not strikes (RFC 5765 §5.1.2). */
const NOT_STRIKES = new Set(['no_route', 'limit_cps', 'limit_sessions', 'limit_global_sessions', 'limit_store_unavailable', 'no_rtpengine', 'source_rate', 'draining']);

export class LimitsSubsystem implements Subsystem {
  readonly name = 'limits';
  readonly limits: Limits;

  constructor(store: Store, nodeId: string, private readonly policy: () => Policy, private readonly log: Logger) {
    this.limits = new Limits({ store, nodeId });
  }

  async start(): Promise<void> {
    const dropped = await this.limits.start();
    if (dropped > 0) this.log.info({ dropped }, 'dropped sessions a previous run of this node left in the store');
  }

  /** Limits are read from the policy per call: a reload applies to the next call. */
  reconfigure(): Reconfigured { return APPLIED; }

  /**
   * A strike against `source` (malformed SIP, failed TLS handshake, refused request), or, when
   * it came with a verified TLS identity (`tlsIdentity`, a certificate fingerprint), against that
   * identity (issue #17.4): the address may be shared by NAT or another peer's SBE.
   */
  strike(source: string, kind: string, tlsIdentity?: string): void {
    const limits = this.policy().limits;
    void this.limits.strike(strikeKey(limits.strikes, source, tlsIdentity), kind, limits).catch(() => undefined);
  }

  /** The reputation rule: which refusals count against their source. */
  refused(source: string, reason: string, tlsIdentity?: string): void {
    if (!NOT_STRIKES.has(reason)) this.strike(source, reason.startsWith('identity') ? 'identity' : 'refused', tlsIdentity);
  }

  ready(): true | string { return true; }

  async close(): Promise<void> {
    await this.limits.close();
  }
}
