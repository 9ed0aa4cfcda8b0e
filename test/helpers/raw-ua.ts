// A scriptable SIP user agent on one UDP socket, for tests that need orderings SIPp cannot
// script (ACK and BYE in one breath, CANCEL racing a 2xx, a callee that hangs up before the
// ACK). It writes RFC 3261 messages by hand and reads only what a test asserts on.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { waitFor } from './procs.js';

export interface RawMsg {
  /** The request's method, or undefined for a response. */
  method?: string;
  /** The response's status, or 0 for a request. */
  status: number;
  uri: string;
  /** Header values by lower-case full name, in order. */
  headers: Map<string, string[]>;
  body: string;
  raw: string;
  from: { address: string; port: number };
}

const COMPACT: Record<string, string> = { i: 'call-id', v: 'via', f: 'from', t: 'to', m: 'contact', l: 'content-length', c: 'content-type' };

export function parseRaw(raw: string, from: { address: string; port: number }): RawMsg {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4);
  const lines = head.split('\r\n');
  const first = lines[0]!;
  const headers = new Map<string, string[]>();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c < 0) continue;
    let name = l.slice(0, c).trim().toLowerCase();
    name = COMPACT[name] ?? name;
    headers.set(name, [...(headers.get(name) ?? []), l.slice(c + 1).trim()]);
  }
  if (first.startsWith('SIP/2.0 ')) return { status: Number(first.slice(8, 11)), uri: '', headers, body, raw, from };
  const [method, uri] = first.split(' ');
  return { method: method!, status: 0, uri: uri!, headers, body, raw, from };
}

export const hdr = (m: RawMsg, name: string): string => m.headers.get(name)?.[0] ?? '';
export const cseqOf = (m: RawMsg): { seq: number; method: string } => {
  const [seq, method] = hdr(m, 'cseq').split(/\s+/);
  return { seq: Number(seq), method: method ?? '' };
};
export const tagOf = (value: string): string | undefined => /;\s*tag=([^;>\s]+)/i.exec(value)?.[1];
export const contactUri = (m: RawMsg): string | undefined => /<([^>]+)>/.exec(hdr(m, 'contact'))?.[1] ?? (hdr(m, 'contact') || undefined);

export const token = (): string => randomBytes(6).toString('hex');
export const offer = (ip: string, port = 40000): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;

export class RawUa {
  readonly received: RawMsg[] = [];
  private handler: ((m: RawMsg) => void) | undefined;

  private constructor(readonly sock: Socket, readonly ip: string, readonly port: number) {
    sock.on('message', (b, r) => {
      const m = parseRaw(b.toString('utf8'), { address: r.address, port: r.port });
      this.received.push(m);
      this.handler?.(m);
    });
  }

  static async open(ip: string): Promise<RawUa> {
    const s = createSocket('udp4');
    await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(0, ip, () => res()); });
    return new RawUa(s, ip, s.address().port);
  }

  /** Every message as it arrives (a callee answers from here). */
  onMessage(h: (m: RawMsg) => void): void { this.handler = h; }

  send(text: string, port: number, address = '127.0.0.1'): void {
    this.sock.send(Buffer.from(text, 'utf8'), port, address);
  }

  /** The first message received so far (or within `timeoutMs`) that `pred` accepts. */
  async wait(pred: (m: RawMsg) => boolean, timeoutMs: number, what: string): Promise<RawMsg> {
    return (await waitFor(() => this.received.find(pred), timeoutMs, 10, what))!;
  }

  /** A response to `m` (copies Via, From, To, Call-ID, CSeq; adds our tag to To unless `toTag` is ''). */
  respond(m: RawMsg, status: number, reason: string, o: { toTag?: string; contact?: boolean; body?: string; extra?: string } = {}): void {
    let to = hdr(m, 'to');
    if (o.toTag && !tagOf(to)) to += `;tag=${o.toTag}`;
    let t = `SIP/2.0 ${status} ${reason}\r\n`;
    for (const v of m.headers.get('via') ?? []) t += `Via: ${v}\r\n`;
    t += `From: ${hdr(m, 'from')}\r\nTo: ${to}\r\nCall-ID: ${hdr(m, 'call-id')}\r\nCSeq: ${hdr(m, 'cseq')}\r\n`;
    if (o.contact) t += `Contact: <sip:ua@${this.ip}:${this.port}>\r\n`;
    if (o.extra) t += o.extra;
    if (o.body) t += 'Content-Type: application/sdp\r\n';
    t += `Content-Length: ${Buffer.byteLength(o.body ?? '')}\r\n\r\n${o.body ?? ''}`;
    this.send(t, m.from.port, m.from.address);
  }

  close(): void { try { this.sock.close(); } catch { /* closed */ } }
}

/** One dialog-forming request and what follows it inside that dialog, from the caller's side. */
export class RawCall {
  readonly callId = `raw-${token()}`;
  readonly fromTag = token();
  private branch = `z9hG4bK${token()}`;
  private seq = 1;
  toTag: string | undefined;
  remoteTarget: string | undefined;

  constructor(readonly ua: RawUa, readonly uri: string, readonly dest: { port: number; address: string }) {}

  private head(method: string, uri: string, branch: string, seq: number, toTag?: string): string {
    return `${method} ${uri} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.ua.ip}:${this.ua.port};branch=${branch};rport\r\nMax-Forwards: 70\r\n`
      + `From: <sip:+15550001@${this.ua.ip}>;tag=${this.fromTag}\r\nTo: <${this.uri}>${toTag ? `;tag=${toTag}` : ''}\r\nCall-ID: ${this.callId}\r\nCSeq: ${seq} ${method}\r\n`;
  }

  private out(text: string, body = ''): void {
    this.ua.send(`${text}${body ? 'Content-Type: application/sdp\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, this.dest.port, this.dest.address);
  }

  invite(body = ''): void {
    this.out(`${this.head('INVITE', this.uri, this.branch, 1)}Contact: <sip:caller@${this.ua.ip}:${this.ua.port}>\r\n`, body);
  }

  /** CANCEL for the INVITE (§9.1: same branch, Request-URI, Call-ID, From, To, CSeq number). */
  cancel(): void { this.out(this.head('CANCEL', this.uri, this.branch, 1)); }

  /** A response to our INVITE, `pred` on its status. */
  response(method: string, pred: (status: number) => boolean, timeoutMs: number): Promise<RawMsg> {
    return this.ua.wait((m) => m.status > 0 && hdr(m, 'call-id') === this.callId && cseqOf(m).method === method && pred(m.status), timeoutMs, `${method} response on ${this.callId}`);
  }

  /** Whether any response to `method` with a status `pred` accepts arrived. */
  has(method: string, pred: (status: number) => boolean): boolean {
    return this.ua.received.some((m) => m.status > 0 && hdr(m, 'call-id') === this.callId && cseqOf(m).method === method && pred(m.status));
  }

  /** Learn the dialog from a 2xx (or 1xx with a To-tag). */
  learn(res: RawMsg): void {
    this.toTag = tagOf(hdr(res, 'to'));
    this.remoteTarget = contactUri(res) ?? this.remoteTarget;
  }

  /** ACK for a non-2xx final response: same branch (§17.1.1.3). */
  ackFailure(res: RawMsg): void {
    this.out(this.head('ACK', this.uri, this.branch, 1, tagOf(hdr(res, 'to'))));
  }

  /** ACK for the 2xx: a new transaction to the remote target (§13.2.2.4). */
  ack(body = '', seq = 1): void {
    this.out(this.head('ACK', this.remoteTarget!, `z9hG4bK${token()}`, seq, this.toTag), body);
  }

  /** A new request inside the dialog (BYE, re-INVITE, …). */
  request(method: string, body = ''): void {
    this.seq++;
    const contact = method === 'INVITE' ? `Contact: <sip:caller@${this.ua.ip}:${this.ua.port}>\r\n` : '';
    this.out(`${this.head(method, this.remoteTarget!, `z9hG4bK${token()}`, this.seq, this.toTag)}${contact}`, body);
  }

  /** Answer a request the far end sent inside this dialog (e.g. its BYE). */
  answerIncoming(method: string, timeoutMs: number): Promise<RawMsg> {
    return this.ua.wait((m) => m.method === method && hdr(m, 'call-id') === this.callId, timeoutMs, `${method} from the far end on ${this.callId}`).then((m) => {
      this.ua.respond(m, 200, 'OK');
      return m;
    });
  }
}
