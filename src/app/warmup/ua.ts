// The warm-up's caller and callee: two UDP endpoints on 127.0.0.1 that place calls through the
// node the way SIPp's default uac and uas do (INVITE, 180, 200 with SDP, ACK, BYE, 200), at a
// rate and up to a deadline. Only what a call through a B2BUA needs: they face the node's
// warm-up listeners on loopback, never a network. A message lost or a call that stalls is
// counted failed at its own timeout, not retried: the warm-up is bounded, not exact.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseMessage } from '../../engine/message/parser.js';
import { getHeader as header, getHeaders } from '../../engine/message/headers.js';
import { DEFAULT_PARSE_LIMITS, type SipMessage } from '../../engine/message/types.js';
import { addrSpecOf, parseCSeq } from '../../sip/grammar/index.js';

const CRLF = '\r\n';
/** A call not over this long after its INVITE is counted failed and forgotten. */
const CALL_TIMEOUT_MS = 5000;
const TICK_MS = 20;

export interface Address { address: string; port: number }

export interface WarmupOutcome {
  placed: number;
  completed: number;
  failed: number;
  ms: number;
}

function sdp(user: string, port: number): string {
  return `v=0${CRLF}o=${user} 1 1 IN IP4 127.0.0.1${CRLF}s=-${CRLF}c=IN IP4 127.0.0.1${CRLF}t=0 0${CRLF}m=audio ${port} RTP/AVP 0${CRLF}a=rtpmap:0 PCMU/8000${CRLF}`;
}

function message(startLine: string, headers: string[], body = ''): Buffer {
  return Buffer.from(`${startLine}${CRLF}${headers.join(CRLF)}${CRLF}Content-Length: ${Buffer.byteLength(body)}${CRLF}${CRLF}${body}`);
}

async function bound(): Promise<Socket> {
  const s = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => { s.off('error', reject); resolve(); });
  });
  // Loopback only; a send that fails is a call that times out.
  s.on('error', () => undefined);
  return s;
}

/** The callee (a uas): answers each INVITE 180 then 200 with SDP, and a BYE 200. */
export class WarmupCallee {
  private readonly answered = new Map<string, Buffer>();
  private constructor(private readonly socket: Socket) {
    socket.on('message', (buf, rinfo) => this.onMessage(buf, rinfo));
  }

  static async open(): Promise<WarmupCallee> { return new WarmupCallee(await bound()); }

  get address(): Address { const a = this.socket.address(); return { address: a.address, port: a.port }; }

  private onMessage(buf: Buffer, rinfo: RemoteInfo): void {
    const r = parseMessage(buf, DEFAULT_PARSE_LIMITS);
    if (!r.ok || r.message.kind !== 'request' || r.message.method === 'ACK') return;
    const req = r.message;
    const callId = header(req, 'call-id') ?? '';
    const send = (b: Buffer) => this.socket.send(b, rinfo.port, rinfo.address);
    if (req.method === 'INVITE') {
      // A retransmitted INVITE gets the final response again.
      const again = this.answered.get(callId);
      if (again) { send(again); return; }
      const to = `${header(req, 'to') ?? ''};tag=w${randomBytes(4).toString('hex')}`;
      send(this.response(req, 180, 'Ringing', to));
      const ok = this.response(req, 200, 'OK', to, [`Contact: <sip:callee@127.0.0.1:${this.address.port}>`, 'Content-Type: application/sdp'], sdp('callee', 6002));
      this.answered.set(callId, ok);
      send(ok);
      return;
    }
    if (req.method === 'BYE') this.answered.delete(callId);
    send(this.response(req, 200, 'OK', header(req, 'to') ?? ''));
  }

  private response(req: SipMessage, status: number, reason: string, to: string, extra: string[] = [], body = ''): Buffer {
    return message(`SIP/2.0 ${status} ${reason}`, [
      ...getHeaders(req, 'via').map((v) => `Via: ${v}`),
      `From: ${header(req, 'from') ?? ''}`, `To: ${to}`, `Call-ID: ${header(req, 'call-id') ?? ''}`, `CSeq: ${header(req, 'cseq') ?? ''}`,
      ...extra,
    ], body);
  }

  close(): void { this.answered.clear(); try { this.socket.close(); } catch { /* closed */ } }
}

interface Call {
  callId: string;
  tag: string;
  inviteBranch: string;
  phase: 'inviting' | 'up';
  /** The dialog's To (with the callee side's tag) and remote target, once answered. */
  to?: string;
  remote?: string;
  ack?: Buffer;
  timer: NodeJS.Timeout;
}

/** The caller (a uac): places calls to `target` and ends each with BYE once it is answered. */
export class WarmupCaller {
  private readonly calls = new Map<string, Call>();
  private readonly prefix = `warmup-${randomBytes(6).toString('hex')}`;
  private placed = 0;
  private completed = 0;
  private failed = 0;
  private settle: (() => void) | undefined;

  private constructor(private readonly socket: Socket, private readonly target: Address) {
    socket.on('message', (buf) => this.onMessage(buf));
  }

  static async open(target: Address): Promise<WarmupCaller> { return new WarmupCaller(await bound(), target); }

  private get local(): string { return `127.0.0.1:${this.socket.address().port}`; }
  private get ruri(): string { return `sip:warmup@${this.target.address}:${this.target.port}`; }

  /** Place `calls` at `rate` per second; resolves once each is over or failed, or at `deadline`. */
  run(calls: number, rate: number, deadline: number): Promise<WarmupOutcome> {
    const t0 = Date.now();
    return new Promise((resolve) => {
      const done = (): void => {
        clearInterval(tick);
        clearTimeout(stop);
        for (const c of this.calls.values()) { clearTimeout(c.timer); this.failed++; }
        this.calls.clear();
        this.settle = undefined;
        resolve({ placed: this.placed, completed: this.completed, failed: this.failed, ms: Date.now() - t0 });
      };
      this.settle = () => { if (this.placed >= calls && this.calls.size === 0) done(); };
      const tick = setInterval(() => {
        const due = Math.min(calls, Math.floor(((Date.now() - t0) * rate) / 1000) + 1);
        while (this.placed < due) this.place();
        this.settle?.();
      }, TICK_MS);
      const stop = setTimeout(done, Math.max(0, deadline - Date.now()));
    });
  }

  private place(): void {
    const n = ++this.placed;
    const callId = `${this.prefix}-${n}`;
    const call: Call = {
      callId, tag: `c${n}`, inviteBranch: `z9hG4bK-${this.prefix}-${n}-1`, phase: 'inviting',
      timer: setTimeout(() => this.fail(callId), CALL_TIMEOUT_MS),
    };
    this.calls.set(callId, call);
    this.send(message(`INVITE ${this.ruri} SIP/2.0`, [
      `Via: SIP/2.0/UDP ${this.local};branch=${call.inviteBranch};rport`,
      'Max-Forwards: 70',
      `From: <sip:caller@${this.local}>;tag=${call.tag}`,
      `To: <${this.ruri}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:caller@${this.local}>`,
      'Content-Type: application/sdp',
    ], sdp('caller', 6000)));
  }

  private onMessage(buf: Buffer): void {
    const r = parseMessage(buf, DEFAULT_PARSE_LIMITS);
    if (!r.ok || r.message.kind !== 'response') return;
    const res = r.message;
    const call = this.calls.get(header(res, 'call-id') ?? '');
    if (!call || res.status < 200) return;
    const method = parseCSeq(header(res, 'cseq') ?? '')?.method;
    if (method === 'INVITE') {
      if (res.status >= 300) {
        // RFC 3261 §17.1.1.3: the ACK of a non-2xx final response is the transaction's own.
        this.send(this.request(call, 'ACK', 1, call.inviteBranch, this.ruri, header(res, 'to') ?? ''));
        this.fail(call.callId);
        return;
      }
      if (call.phase === 'up') { if (call.ack) this.send(call.ack); return; } // a retransmitted 200
      call.phase = 'up';
      call.to = header(res, 'to') ?? '';
      const contact = header(res, 'contact');
      call.remote = contact ? addrSpecOf(contact) : this.ruri;
      call.ack = this.request(call, 'ACK', 1, `z9hG4bK-${call.callId}-a`, call.remote, call.to);
      this.send(call.ack);
      this.send(this.request(call, 'BYE', 2, `z9hG4bK-${call.callId}-b`, call.remote, call.to));
      return;
    }
    if (method === 'BYE') {
      clearTimeout(call.timer);
      this.calls.delete(call.callId);
      if (res.status < 300) this.completed++; else this.failed++;
      this.settle?.();
    }
  }

  private request(call: Call, method: string, cseq: number, branch: string, uri: string, to: string): Buffer {
    return message(`${method} ${uri} SIP/2.0`, [
      `Via: SIP/2.0/UDP ${this.local};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:caller@${this.local}>;tag=${call.tag}`,
      `To: ${to}`,
      `Call-ID: ${call.callId}`,
      `CSeq: ${cseq} ${method}`,
    ]);
  }

  private fail(callId: string): void {
    const c = this.calls.get(callId);
    if (!c) return;
    clearTimeout(c.timer);
    this.calls.delete(callId);
    this.failed++;
    this.settle?.();
  }

  private send(b: Buffer): void { this.socket.send(b, this.target.port, this.target.address); }

  close(): void {
    for (const c of this.calls.values()) clearTimeout(c.timer);
    this.calls.clear();
    try { this.socket.close(); } catch { /* closed */ }
  }
}
