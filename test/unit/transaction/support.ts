// Test support for the transaction layer: a fake clock, hand-built messages (independent of
// the code under test), and a harness that records what the layer sends and tells the TU.
import type { HeaderField, SipRequest, SipResponse } from '../../../src/engine/message/types.js';
import type { Clock, Protocol, SendResult, SendTarget } from '../../../src/engine/transport/types.js';
import { TransactionLayer } from '../../../src/engine/transaction/index.js';
import type { InboundMeta, InviteServerTransaction, TimerConfig, Transaction, TransactionUser } from '../../../src/engine/transaction/index.js';

/** Deterministic clock: timers fire only inside advance(), in time order (ties: creation order). */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly pendingTimers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pendingTimers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pendingTimers.delete(handle as number);
  }
  get pending(): number {
    return this.pendingTimers.size;
  }
  /** Move time forward by `ms`, running due timers (bounded: a runaway timer loop fails the test). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; ; guard++) {
      if (guard > 100_000) throw new Error('FakeClock: too many timers fired');
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, tm] of this.pendingTimers) {
        if (tm.at <= end && (tm.at < nextAt || (tm.at === nextAt && id < nextId))) {
          nextId = id;
          nextAt = tm.at;
        }
      }
      if (nextId < 0) break;
      const tm = this.pendingTimers.get(nextId)!;
      this.pendingTimers.delete(nextId);
      this.t = tm.at;
      tm.fn();
    }
    this.t = end;
  }
  /** Advance to an absolute time. */
  advanceTo(at: number): void {
    this.advance(at - this.t);
  }
}

const EMPTY = Buffer.alloc(0);

function h(name: string, raw: string, value: string): HeaderField {
  return { name, raw, value };
}

export interface RequestSpec {
  branch?: string;
  sentBy?: string;
  transport?: string;
  uri?: string;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  cseq?: number;
  cseqMethod?: string;
  extra?: HeaderField[];
  /** Extra Via values below the top one. */
  lowerVias?: string[];
}

export function request(method: string, spec: RequestSpec = {}): SipRequest {
  const transport = spec.transport ?? 'UDP';
  const sentBy = spec.sentBy ?? '192.0.2.10:5060';
  const viaParams = spec.branch === undefined ? ';branch=z9hG4bKtest1' : spec.branch === '' ? '' : `;branch=${spec.branch}`;
  const headers: HeaderField[] = [h('via', 'Via', `SIP/2.0/${transport} ${sentBy}${viaParams}`)];
  for (const v of spec.lowerVias ?? []) headers.push(h('via', 'Via', v));
  headers.push(
    h('max-forwards', 'Max-Forwards', '70'),
    h('from', 'From', `"Alice" <sip:alice@atlanta.example>;tag=${spec.fromTag ?? 'ftag1'}`),
    h('to', 'To', `<sip:bob@biloxi.example>${spec.toTag ? `;tag=${spec.toTag}` : ''}`),
    h('call-id', 'Call-ID', spec.callId ?? 'call-1@atlanta.example'),
    h('cseq', 'CSeq', `${spec.cseq ?? 1} ${spec.cseqMethod ?? method}`),
  );
  for (const x of spec.extra ?? []) headers.push(x);
  return { kind: 'request', method, uri: spec.uri ?? 'sip:bob@biloxi.example', headers, body: EMPTY };
}

/** A response to `req`, built by hand (not with the layer's buildResponse). */
export function response(req: SipRequest, status: number, reason = 'X', opts: { toTag?: string; extra?: HeaderField[] } = {}): SipResponse {
  const headers: HeaderField[] = [];
  for (const f of req.headers) {
    if (f.name === 'via' || f.name === 'from' || f.name === 'call-id' || f.name === 'cseq') headers.push(f);
    else if (f.name === 'to') headers.push(opts.toTag ? h('to', 'To', `${f.value};tag=${opts.toTag}`) : f);
  }
  for (const x of opts.extra ?? []) headers.push(x);
  return { kind: 'response', status, reason, headers, body: EMPTY };
}

export function from(protocol: Protocol, address: string, port: number, connectionId?: string): InboundMeta {
  return {
    source: { protocol, address, port },
    local: { protocol, address: '127.0.0.1', port: 5060 },
    ...(connectionId === undefined ? {} : { connectionId }),
  };
}

export interface Sent {
  at: number;
  target: SendTarget;
  text: string;
  bytes: Buffer;
}

export type TuEvent =
  | { type: 'request'; txn: Transaction; method: string }
  | { type: 'ack'; invite: Transaction | undefined }
  | { type: 'response'; txn: Transaction; status: number }
  | { type: 'retransmitted2xx'; txn: Transaction; status: number }
  | { type: 'timeout'; txn: Transaction; at: number }
  | { type: 'transportError'; txn: Transaction; reason: string }
  | { type: 'terminated'; txn: Transaction; at: number };

export interface Harness {
  layer: TransactionLayer;
  clock: FakeClock;
  sent: Sent[];
  events: TuEvent[];
  errors: unknown[];
  /** What the fake transport answers; default ok. */
  sendResult: (target: SendTarget, bytes: Buffer, done: (r: SendResult) => void) => SendResult | Promise<SendResult> | void;
  /** Hook run inside tu.request (e.g. to respond synchronously). */
  onRequest?: (txn: Transaction) => void;
  /** tu.trying: a deferred 100 Trying is due (InviteServerTransaction.deferTrying). */
  onTrying?: (txn: InviteServerTransaction) => void;
}

export function harness(timers?: Partial<TimerConfig>, opts: { autoTrying?: boolean } = {}): Harness {
  const clock = new FakeClock();
  const hs = { clock, sent: [] as Sent[], events: [] as TuEvent[], errors: [] as unknown[] } as Harness;
  hs.sendResult = () => ({ ok: true, local: { protocol: 'udp', address: '127.0.0.1', port: 5060 }, bytes: 0 });
  const tu: TransactionUser = {
    request: (txn, req) => {
      hs.events.push({ type: 'request', txn, method: req.method });
      hs.onRequest?.(txn);
    },
    ack: (_req, _meta, invite) => hs.events.push({ type: 'ack', invite }),
    response: (txn, res) => hs.events.push({ type: 'response', txn, status: res.status }),
    retransmitted2xx: (txn, res) => hs.events.push({ type: 'retransmitted2xx', txn, status: res.status }),
    timeout: (txn) => hs.events.push({ type: 'timeout', txn, at: clock.now() }),
    transportError: (txn, reason) => hs.events.push({ type: 'transportError', txn, reason }),
    terminated: (txn) => hs.events.push({ type: 'terminated', txn, at: clock.now() }),
    trying: (txn) => hs.onTrying?.(txn),
  };
  hs.layer = new TransactionLayer({
    clock,
    tu,
    timers,
    autoTrying: opts.autoTrying,
    onError: (e) => hs.errors.push(e),
    send: (target, bytes, done) => {
      hs.sent.push({ at: clock.now(), target, bytes, text: bytes.toString('utf8') });
      return hs.sendResult(target, bytes, done);
    },
  });
  return hs;
}

/** Times (ms) at which messages whose first line starts with `startLine` were sent. */
export function sentTimes(hs: Harness, startLine: string): number[] {
  return hs.sent.filter((s) => s.text.startsWith(startLine)).map((s) => s.at);
}

export function eventsOf<T extends TuEvent['type']>(hs: Harness, type: T): Extract<TuEvent, { type: T }>[] {
  return hs.events.filter((e): e is Extract<TuEvent, { type: T }> => e.type === type);
}

export const UDP_PEER = { protocol: 'udp' as const, address: '198.51.100.7', port: 5080 };
export const TCP_PEER = { protocol: 'tcp' as const, address: '198.51.100.7', port: 5080 };
