// The overload gate: refuses new INVITEs cheaply, in the engine, before any app frame exists.
//
// Contract:
//   - Only dialog-creating INVITEs come here (the core's one hook, before its 100 Trying);
//     requests inside a dialog, ACK, CANCEL and BYE never do, so they are never shed.
//   - A probe timer every `probeMs` (every 100 ms while the node is calm: nothing read, no
//     transaction, nothing pending or shed) measures event-loop lag as timer drift (a late tick is a busy
//     loop), counts the INVITEs an app has not answered yet, asks for the worst B2BUA worker's
//     event-loop delay (worker-backlog.ts; 0 without workers), and asks the core for its live
//     transactions and dialogs; on the tick that closes a control interval it also reads the UDP
//     receive queues (a /proc read, ≈ 0.2 ms: not every tick; fresh for the decision it feeds;
//     skipped while the node is idle: nothing read since an empty reading, the tick on time)
//     and, from the bytes the listeners read since the last reading, the queue's delay. The
//     detector turns these into a loss percentage with hysteresis.
//   - shed(): the core asks before it makes anything for the app (no app text, wire id or core
//     record for a refused INVITE). At loss 0 it only notes the INVITE as pending (O(1)).
//     Otherwise the loss throttle refuses that share with a 503 + Retry-After from a template
//     (refusal.ts; no app involved), sent statelessly (RFC 3261 §8.2.7: no transaction is left
//     to resend it or absorb its ACK), unless the priority predicate (emergency,
//     Resource-Priority: set by the SBC) exempts the request.
//     An INVITE the priority ingress (ingress.ts) held past its sojourn target comes marked
//     overdue: it is refused whatever the loss (reason queue_sojourn), with the same exemption.
//   - Clients whose top Via carries `oc` get RFC 7339 feedback on every response to the INVITE.
//   - Counts refusals by reason (peergate_shed_total{reason}, see metrics.ts).
import type { SipRequest } from '../message/types.js';
import type { Clock } from '../transport/types.js';
import type { ServerTransaction } from '../transaction/index.js';
import type { NewInvite } from '../core/server.js';
import { randomToken, tagOf } from '../core/fields.js';
import { DEFAULT_THRESHOLDS, LossThrottle, OverloadDetector, SHED_REASONS, type OverloadThresholds, type Sample, type ShedReason } from './detector.js';
import { ocSeq, wantsLossFeedback, withFeedback } from './rfc7339.js';
import { RefusalTemplate } from './refusal.js';
import type { IngressOptions } from './ingress.js';

export interface OverloadOptions extends Partial<OverloadThresholds> {
  /** Probe period (ms): also the lag resolution. */
  probeMs?: number;
  /** Retry-After of the 503 (s); 0 leaves it out. */
  retryAfterS?: number;
  /** oc-validity sent while shedding (ms). */
  ocValidityMs?: number;
  /** The priority ingress in front of UDP intake (ingress.ts); undefined: none, datagrams are
   *  processed in the order read. */
  ingress?: Partial<IngressOptions> | undefined;
}

export interface CoreLoad {
  transactions(): number;
  dialogs(): number;
  /** The UDP listeners' kernel receive queues (socket-queue.ts): the fullest one's share in use
   *  and the kernel's drop counter; absent or undefined: no such signal. */
  receiveQueue?(): { fill: number; bytes: number; drops: number } | undefined;
  /** Bytes the UDP listeners have read so far, at the kernel's charge (transport stats
   *  `chargedBytes`): its rate over an interval turns the queue's bytes into a queueing delay.
   *  Absent: the receive-queue law works on bytes. */
  chargedBytesRead?(): number;
  /** The busiest event loop's utilisation (0–1) since the last call: the primary's own and
   *  the workers' last reports (utilisation.ts). Called once per control interval, for /metrics:
   *  whether a node that sheds is at its ceiling or holds headroom; absent or undefined: not known.
   *  `ownLagMs` as for workerLag(). */
  utilisation?(ownLagMs: number): number | undefined;
  /** The worst B2BUA worker's event-loop delay now (ms), given the primary's own lag of this
   *  tick (WorkerBacklog.lagMs); absent: no workers. */
  workerLag?(ownLagMs: number): number;
  /** Called once by close() (e.g. to take the gate off the wire server). */
  detach?(): void;
}

/** A request that must never be shed (emergency call, Resource-Priority, …). */
export type PriorityPredicate = (req: SipRequest) => boolean;

export class OverloadGate {
  private readonly detector: OverloadDetector;
  private readonly throttle = new LossThrottle();
  private readonly clock: Clock;
  private readonly load: CoreLoad;
  private readonly probeMs: number;
  private readonly refusal: RefusalTemplate;
  private readonly validityMs: number;
  /** INVITEs handed on while no app response exists yet; pruned every probe. */
  private readonly pending = new Set<ServerTransaction>();
  private readonly counts = new Map<ShedReason, number>(SHED_REASONS.map((r) => [r, 0]));
  private priority: PriorityPredicate | undefined = undefined;
  private exempted = 0;
  private seq: string;
  private timer: unknown = undefined;
  private due = 0;
  private closed = false;
  /** The last receive-queue reading and drop counter. */
  private queueFill = 0;
  private queueBytes = 0;
  private lastDrops: number | undefined = undefined;
  /** The queue's bytes over the read rate at the last reading (ms); undefined: not known. */
  private queueDelayMs: number | undefined = undefined;
  /** The read counter and the time at the last reading (the rate's start). */
  private lastRead: { bytes: number; at: number } | undefined = undefined;
  /** The listeners' bytes read as of the last tick, and whether the node was calm then. */
  private lastTickRead: number | undefined = undefined;
  private calm = false;
  /** The kernel's drop counter as last read (for /metrics). */
  private kernelDrops = 0;
  /** The worst worker's delay at the last tick (for /metrics). */
  private workerLagMs = 0;
  /** The busiest loop's utilisation at the last control interval; undefined: not known. */
  private utilisation: number | undefined = undefined;

  constructor(clock: Clock, load: CoreLoad, opts: OverloadOptions = {}) {
    this.clock = clock;
    this.load = load;
    this.detector = new OverloadDetector({ ...DEFAULT_THRESHOLDS, ...definedOnly(opts) });
    this.probeMs = opts.probeMs ?? 20;
    if (!(this.probeMs > 0)) throw new Error('overload: probeMs must be positive');
    const ra = opts.retryAfterS ?? 2;
    this.refusal = new RefusalTemplate(ra > 0 ? String(Math.round(ra)) : undefined);
    this.validityMs = opts.ocValidityMs ?? 2000;
    this.seq = ocSeq(clock.now());
    this.arm();
  }

  /** Set (or clear) the predicate that exempts priority calls from shedding. */
  setPriorityPredicate(fn: PriorityPredicate | undefined): void { this.priority = fn; }

  /** Current loss percentage and why. */
  get state(): { loss: number; reason: ShedReason | undefined; signals: Sample; pending: number; queueFill: number; queueBytes: number; queueDelayMs: number | undefined; kernelDrops: number; workerLagMs: number; utilisation: number | undefined } {
    return {
      loss: this.detector.loss, reason: this.detector.reason, signals: this.detector.signals, pending: this.pending.size,
      queueFill: this.queueFill, queueBytes: this.queueBytes, queueDelayMs: this.queueDelayMs, kernelDrops: this.kernelDrops, workerLagMs: this.workerLagMs,
      utilisation: this.utilisation,
    };
  }

  /** INVITEs refused so far, by reason (every reason present, 0 included). */
  totals(): Record<ShedReason, number> {
    return Object.fromEntries(this.counts) as Record<ShedReason, number>;
  }

  /** The core's hook, before it makes anything for the app: true when this new INVITE was
   *  refused (503 sent, nothing else to do). */
  shed(inv: NewInvite, req: SipRequest): boolean {
    const loss = this.detector.loss;
    const top = inv.vias[0];
    if (top !== undefined && top.includes(';oc') && wantsLossFeedback(top)) {
      inv.vias[0] = withFeedback(top, { loss, validityMs: this.validityMs, seq: this.seq });
    }
    if (inv.overdue || (loss > 0 && this.throttle.refuse(loss))) {
      if (this.priority?.(req)) { this.exempted++; this.pending.add(inv.txn); return false; }
      const reason = inv.overdue ? 'queue_sojourn' : this.detector.reason ?? 'event_loop_lag';
      this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
      this.refuse(inv);
      return true;
    }
    this.pending.add(inv.txn);
    return false;
  }

  /** Priority requests that would have been shed and were let through. */
  get exemptedCount(): number { return this.exempted; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.load.detach?.();
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }

  /** The 503 from its template (refusal.ts), sent statelessly (RFC 3261 §8.2.7): once, and the
   *  transaction ends with it. A retransmitted INVITE (the 503 lost) is decided again; its ACK
   *  finds no transaction and the core drops it. */
  private refuse(inv: NewInvite): void {
    const to = tagOf(inv.to) ? inv.to : `${inv.to};tag=${randomToken()}`;
    inv.txn.respondStatelessly(503, this.refusal.render(inv.vias, inv.from, to, inv.callId, inv.cseq));
  }

  private arm(): void {
    if (this.closed) return;
    const period = this.calm ? Math.max(this.probeMs, CALM_PROBE_MS) : this.probeMs;
    this.due = this.clock.now() + period;
    this.timer = this.clock.setTimeout(this.tick, period);
  }

  /** The queue's bytes over the rate the listeners read at since the last reading (RFC 8033
   *  PIE's delay = queue / departure rate): the same 100 KiB is 10 ms at 10 MB/s, 50 ms at 2. */
  private delayOf(now: number, queueBytes: number, read: number | undefined): number | undefined {
    if (read === undefined) return undefined;
    const last = this.lastRead;
    this.lastRead = { bytes: read, at: now };
    if (last === undefined || now <= last.at) return undefined;
    // A few datagrams caught in the queue at the reading are no backlog (PIE's dq_threshold):
    // over an interval where the listeners read little — a node refusing most calls, or one whose
    // peers come over TLS — one waiting datagram would read as tens of ms, hold the loss up and so
    // keep the read rate low: refusal feeding itself.
    if (queueBytes < MIN_BACKLOG_BYTES) return 0;
    const perMs = (read - last.bytes) / (now - last.at);
    return perMs > 0 ? Math.min(MAX_DELAY_MS, queueBytes / perMs) : MAX_DELAY_MS;
  }

  /** Idle since the last queue reading: it found less than a backlog, the listeners have read
   *  nothing since, and this tick is on time. */
  private quiet(lagMs: number, read: number | undefined): boolean {
    const last = this.lastRead;
    return last !== undefined && this.queueBytes < MIN_BACKLOG_BYTES && lagMs < this.probeMs
      && read === last.bytes;
  }

  /** Probe: lag is how late this tick runs. */
  private readonly tick = (): void => {
    const now = this.clock.now();
    const lagMs = Math.max(0, now - this.due);
    for (const txn of this.pending) if (txn.terminated || txn.lastStatus > 100) this.pending.delete(txn);
    let drops = 0;
    // Bytes the listeners have read so far: once per tick, for the queue's delay, idle and calm.
    const read = this.load.chargedBytesRead?.();
    const closes = this.detector.closes(now);
    const readQueue = this.load.receiveQueue !== undefined && closes;
    if (readQueue && this.quiet(lagMs, read)) {
      // Nothing read since an empty reading, on a loop that runs on time: the queue is still empty
      // (a readable listener is drained by this same loop), so the /proc read is skipped. It was
      // about a third of an idle node's CPU; any datagram read, or a late tick, reads it again.
      this.queueFill = 0;
      this.queueBytes = 0;
      this.queueDelayMs = this.delayOf(now, 0, read);
    } else if (readQueue) {
      const q = this.load.receiveQueue!();
      if (q) {
        this.queueFill = q.fill;
        this.queueBytes = q.bytes;
        // The counter is the kernel's since the socket opened: only what is new counts.
        if (this.lastDrops !== undefined && q.drops > this.lastDrops) drops = q.drops - this.lastDrops;
        this.lastDrops = q.drops;
        this.kernelDrops = q.drops;
      } else {
        // No reading (no /proc, or a flood the shield drops): no signal, and no drops carried over.
        this.queueFill = 0;
        this.queueBytes = 0;
        this.lastDrops = undefined;
      }
      this.queueDelayMs = this.delayOf(now, this.queueBytes, read);
    }
    this.workerLagMs = this.load.workerLag?.(lagMs) ?? 0;
    if (closes) this.utilisation = this.load.utilisation?.(lagMs);
    const transactions = this.load.transactions();
    const changed = this.detector.sample(now, {
      lagMs, workerLagMs: this.workerLagMs, pending: this.pending.size, transactions, dialogs: this.load.dialogs(), queueBytes: this.queueBytes, drops,
      ...(this.queueDelayMs !== undefined ? { queueDelayMs: this.queueDelayMs } : {}),
    });
    if (changed) this.seq = ocSeq(Math.max(this.clock.now(), Number(this.seq) * 1000 + 1));
    // Calm: nothing read since the last tick, no transaction, nothing pending or shed, no backlog
    // at the last reading, the tick on time. Then the probe runs every CALM_PROBE_MS, not every probeMs: an idle node wakes 10
    // times a second for it, not 50. The first datagram read (or a late tick) brings it back.
    this.calm = read !== undefined && read === this.lastTickRead && transactions === 0 && this.pending.size === 0
      && lagMs < CALM_LAG_MS && this.detector.loss === 0 && this.queueBytes < MIN_BACKLOG_BYTES;
    this.lastTickRead = read;
    this.arm();
  };
}

/** A calm node's probe period (ms), and the lateness of a tick that ends calm. */
const CALM_PROBE_MS = 100;
const CALM_LAG_MS = 5;

/** Below this many kernel-charged bytes (≈ 7 INVITEs over loopback) the queue has no delay:
 *  RFC 8033 PIE measures the departure rate only above the same 16 KB (its dq_threshold). */
export const MIN_BACKLOG_BYTES = 16 * 1024;

/** The longest queueing delay reported (ms): a queue read while nothing was read in the whole
 *  interval (a stalled loop) has no finite delay; the law clips its error far below this. */
const MAX_DELAY_MS = 10_000;

function definedOnly(o: OverloadOptions): Partial<OverloadThresholds> {
  const out: Partial<OverloadThresholds> = {};
  for (const k of Object.keys(DEFAULT_THRESHOLDS) as (keyof OverloadThresholds)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
