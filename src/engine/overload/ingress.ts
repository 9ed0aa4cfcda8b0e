// Priority ingress for UDP (issue #18 item 3): calls in progress before new calls.
//
// Why: the primary reads datagrams in the kernel's order and handles each one in its read
// callback. Once it falls behind, the 200, ACK and BYE of calls it already admitted wait behind
// every new INVITE that arrived before them, so admitted calls wait as long as the ones refused.
//
// Contract:
//   - hold() is asked for every datagram UDP intake accepted (after the shield). Anything but an
//     initial INVITE (message/initial-invite.ts: responses, ACK, CANCEL, BYE, PRACK, requests
//     with a To tag) is not held: the caller processes it at once, in its read callback.
//   - An initial INVITE is held in a bounded ring, stamped with its read time, and released in
//     slices of `slice` INVITEs per turn of the event loop (setImmediate: after the turn's socket
//     reads), so priority traffic read meanwhile goes first.
//   - The time an INVITE spent here, not the queue's length, is the signal (RFC 8289, CoDel): once
//     every INVITE released for `intervalMs` in a row had waited more than `sojournMs` (a standing
//     queue, not a lone stall such as a major GC or a cold start's compiling), each one released
//     that waited more than `sojournMs` is refused, until one comes out within it. Refused: the
//     INVITE is released marked `overdue` (so is the oldest one when a new one finds the ring
//     full), and the gate answers it with its 503
//     template (reason queue_sojourn) instead of handing it to an app. It still goes through the
//     transaction layer, so a retransmission of an INVITE that has a transaction reaches that
//     transaction (RFC 3261 §17.2.1), and the refusal's ACK is absorbed there.
//   - detach() releases everything held, unmarked, and holds nothing more.
// Allocation: the ring is preallocated; a held INVITE costs four array slots, no object.
import type { Clock } from '../../clock.js';
import { isInitialInvite } from '../message/initial-invite.js';
import type { Endpoint, InboundPacket, UdpIngress } from '../transport/types.js';

export interface IngressOptions {
  /** Longest an initial INVITE may wait here (ms) and still be processed once the queue stands. */
  sojournMs: number;
  /** How long (ms) every INVITE released must have waited past sojournMs before any is refused. */
  intervalMs: number;
  /** INVITEs held at most; a new one past this refuses the oldest. */
  maxQueue: number;
  /** INVITEs released per turn of the event loop. */
  slice: number;
}

export const DEFAULT_INGRESS: Readonly<IngressOptions> = Object.freeze({ sojournMs: 40, intervalMs: 100, maxQueue: 1024, slice: 16 });

export interface IngressCounts {
  /** Initial INVITEs held so far. */
  held: number;
  /** Released marked overdue: waited past sojournMs, or pushed out of a full ring (`overflow`). */
  overdue: number;
  overflow: number;
  /** INVITEs held now, and the most held at once. */
  depth: number;
  maxDepth: number;
}

export class PriorityIngress implements UdpIngress {
  private readonly opts: IngressOptions;
  private readonly data: (Buffer | undefined)[];
  private readonly address: string[];
  private readonly port: Int32Array;
  private readonly local: (Endpoint | undefined)[];
  private readonly at: Float64Array;
  private head = 0;
  private size = 0;
  private scheduled = false;
  /** When the sojourn went above the target and stayed there (CoDel's first_above_time); -1: below. */
  private aboveSince = -1;
  private deliver: ((p: InboundPacket) => void) | undefined = undefined;
  private readonly c: IngressCounts = { held: 0, overdue: 0, overflow: 0, depth: 0, maxDepth: 0 };

  constructor(private readonly clock: Pick<Clock, 'now'>, opts: Partial<IngressOptions> = {},
    private readonly schedule: (fn: () => void) => void = setImmediate) {
    this.opts = { ...DEFAULT_INGRESS, ...opts };
    const { sojournMs, intervalMs, maxQueue, slice } = this.opts;
    if (!(sojournMs > 0) || !(intervalMs >= 0) || !(Number.isInteger(maxQueue) && maxQueue >= 1) || !(Number.isInteger(slice) && slice >= 1)) {
      throw new Error('overload: the ingress needs sojournMs > 0, intervalMs ≥ 0 and whole numbers maxQueue ≥ 1, slice ≥ 1');
    }
    this.data = new Array<Buffer | undefined>(maxQueue).fill(undefined);
    this.address = new Array<string>(maxQueue).fill('');
    this.port = new Int32Array(maxQueue);
    this.local = new Array<Endpoint | undefined>(maxQueue).fill(undefined);
    this.at = new Float64Array(maxQueue);
  }

  get counts(): IngressCounts { return { ...this.c, depth: this.size }; }

  attach(deliver: (p: InboundPacket) => void): void { this.deliver = deliver; }

  hold(data: Buffer, address: string, port: number, local: Endpoint): boolean {
    if (this.deliver === undefined || !isInitialInvite(data)) return false;
    const cap = this.data.length;
    if (this.size === cap) {
      // Full: the oldest has waited longest, and the newest still has a chance.
      this.c.overflow++;
      this.release(true);
    }
    const slot = (this.head + this.size) % cap;
    this.data[slot] = data;
    this.address[slot] = address;
    this.port[slot] = port;
    this.local[slot] = local;
    this.at[slot] = this.clock.now();
    this.size++;
    this.c.held++;
    if (this.size > this.c.maxDepth) this.c.maxDepth = this.size;
    if (!this.scheduled) { this.scheduled = true; this.schedule(this.drain); }
    return true;
  }

  detach(): void {
    while (this.size > 0) this.release(false);
    this.deliver = undefined;
  }

  /** One slice: the oldest INVITEs, each processed or, past its sojourn, refused. */
  private readonly drain = (): void => {
    this.scheduled = false;
    const now = this.clock.now();
    const { sojournMs, intervalMs, slice } = this.opts;
    for (let n = 0; n < slice && this.size > 0; n++) {
      let overdue = false;
      if (now - this.at[this.head]! <= sojournMs) this.aboveSince = -1;
      else {
        if (this.aboveSince < 0) this.aboveSince = now;
        overdue = now - this.aboveSince >= intervalMs;
      }
      this.release(overdue);
    }
    // Drained: no standing queue (CoDel forgets its first_above_time on an empty queue too).
    if (this.size === 0) this.aboveSince = -1;
    if (this.size > 0 && this.deliver !== undefined) { this.scheduled = true; this.schedule(this.drain); }
  };

  private release(overdue: boolean): void {
    const h = this.head;
    const data = this.data[h]!;
    const local = this.local[h]!;
    const pkt: InboundPacket = { data, source: { protocol: 'udp', address: this.address[h]!, port: this.port[h]! }, local };
    if (overdue) { pkt.overdue = true; this.c.overdue++; }
    this.data[h] = undefined;
    this.local[h] = undefined;
    this.head = (h + 1) % this.data.length;
    this.size--;
    this.deliver?.(pkt);
  }
}
