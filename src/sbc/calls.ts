// The calls the B2BUA holds, and its part in the process lifecycle: list them (/admin/calls),
// refuse new ones while draining, tell when none is left, and end them all (drain deadline,
// shutdown) — established calls with BYE on both legs, calls still being set up by
// CANCELing the B-leg and answering the caller 503.

import type { PeergateEnding } from './session/call.js';

export interface ActiveCall {
  id: string;
  /** The caller's Call-ID as received. */
  call_id: string;
  /** Peer id on the far side of the interconnect. */
  peer: string;
  direction: 'inbound' | 'outbound';
  from: string;
  to: string;
  target: string;
  startedAt: string;
}

/** How the B2BUA itself ends a call it holds (drain deadline, shutdown): the calls_total result,
 *  whose RFC 3326 Reason (PEERGATE_ENDINGS) both legs' BYE, and a call being set up's 503, carry. */
export type Hangup = PeergateEnding;

/** An established call as the registry sees it (established.ts). */
export interface HeldCall {
  /** Built when listed, not kept per call. */
  info(): ActiveCall;
  hangup(h: Hangup): Promise<void>;
}

export class CallRegistry {
  /** Established calls (both legs up). */
  private readonly established = new Map<string, HeldCall>();
  /** Every INVITE between attribution and its end (setting up or established). */
  private readonly live = new Set<string>();
  /** Calls being set up: how to abandon the B-leg attempt in progress. */
  private readonly setups = new Map<string, (h: Hangup) => void>();
  private idleWaiters: Array<() => void> = [];
  private draining: { retryAfterS: number } | undefined;
  /** Set by endAll(): what ends every call from now on. */
  stopping: Hangup | undefined;

  /** Retry-After for a new INVITE refused because this node drains; undefined when it takes calls. */
  refusing(): { retryAfterS: number } | undefined {
    return this.draining ?? (this.stopping ? { retryAfterS: 30 } : undefined);
  }

  begin(callId: string): void {
    this.live.add(callId);
  }

  /** A B-leg attempt is in progress; `abort` CANCELs it. Returns the unregister function. */
  attempting(callId: string, abort: (h: Hangup) => void): () => void {
    const stopping = this.stopping;
    if (stopping) { queueMicrotask(() => abort(stopping)); return () => undefined; }
    this.setups.set(callId, abort);
    return () => { if (this.setups.get(callId) === abort) this.setups.delete(callId); };
  }

  /** Both legs are up; a call established after endAll() is hung up at once. */
  up(callId: string, call: HeldCall): void {
    this.established.set(callId, call);
    if (this.stopping) void call.hangup(this.stopping);
  }

  end(callId: string): void {
    this.established.delete(callId);
    this.setups.delete(callId);
    this.live.delete(callId);
    if (this.live.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  list(): ActiveCall[] {
    return [...this.established.values()].map((c) => c.info());
  }

  get liveCount(): number {
    return this.live.size;
  }

  drain(retryAfterS: number): void {
    this.draining = { retryAfterS };
  }

  whenIdle(): Promise<void> {
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async endAll(h: Hangup): Promise<void> {
    this.stopping = h;
    for (const abort of this.setups.values()) abort(h);
    this.setups.clear();
    await Promise.all([...this.established.values()].map((c) => c.hangup(h)));
  }
}
