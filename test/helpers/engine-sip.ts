// Minimal SIP peers for engine tests: a UDP socket and a TCP/TLS stream reader that splits
// messages by Content-Length. Only for driving the engine from tests.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import { waitFor } from './procs.js';

export class UdpPeer {
  readonly received: Array<{ text: string; port: number; address: string }> = [];
  private constructor(readonly sock: UdpSocket, readonly port: number) {
    sock.on('message', (m, r) => this.received.push({ text: m.toString('utf8'), port: r.port, address: r.address }));
  }
  static async open(port = 0): Promise<UdpPeer> {
    const s = createSocket('udp4');
    await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(port, '127.0.0.1', () => res()); });
    return new UdpPeer(s, s.address().port);
  }
  send(text: string, port: number): Promise<void> {
    return new Promise((res) => this.sock.send(Buffer.from(text, 'utf8'), port, '127.0.0.1', () => res()));
  }
  /** Next message not yet taken whose text matches. */
  async take(pred: (t: string) => boolean, timeoutMs = 5000, what = 'message'): Promise<string> {
    const i = await waitFor(() => { const k = this.received.findIndex((m) => pred(m.text)); return k >= 0 ? k + 1 : 0; }, timeoutMs, 10, what);
    return this.received.splice(i - 1, 1)[0]!.text;
  }
  close(): void { try { this.sock.close(); } catch { /* closed */ } }
}

/** Split a SIP byte stream into messages by Content-Length (RFC 3261 §18.3). */
export class StreamReader {
  readonly messages: string[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.drain(); });
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => undefined);
  }
  private drain(): void {
    for (;;) {
      while (this.buf.length >= 2 && this.buf[0] === 13 && this.buf[1] === 10) this.buf = this.buf.subarray(2);
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString('utf8');
      const m = /^(?:content-length|l)\s*:\s*(\d+)/im.exec(head);
      const len = m ? Number(m[1]) : 0;
      if (this.buf.length < end + 4 + len) return;
      this.messages.push(this.buf.subarray(0, end + 4 + len).toString('utf8'));
      this.buf = this.buf.subarray(end + 4 + len);
    }
  }
  write(text: string): void { this.sock.write(text); }
  async take(pred: (t: string) => boolean, timeoutMs = 5000, what = 'message'): Promise<string> {
    const i = await waitFor(() => { const k = this.messages.findIndex(pred); return k >= 0 ? k + 1 : 0; }, timeoutMs, 10, what);
    return this.messages.splice(i - 1, 1)[0]!;
  }
}

export function header(msg: string, name: string): string | undefined {
  const re = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im');
  return re.exec(msg)?.[1]?.trim();
}

/**
 * A call attempt from a UA on 127.0.0.1 to `called` at the SIP listener 127.0.0.1:`port` (an
 * INVITE without a body); resolves with the final response's text once it has been ACKed.
 */
export async function inviteAndAck(port: number, called: string, timeoutMs = 20_000): Promise<string> {
  const ua = await UdpPeer.open();
  try {
    const branch = `z9hG4bK${Math.random().toString(16).slice(2)}`;
    const callId = `${Math.random().toString(16).slice(2)}@test`;
    const base = ['Max-Forwards: 70', `From: <sip:+15550001@127.0.0.1>;tag=t${branch.slice(-6)}`];
    await ua.send([`INVITE sip:${called}@127.0.0.1:${port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${branch};rport`,
      ...base, `To: <sip:${called}@127.0.0.1>`, `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:caller@127.0.0.1:${ua.port}>`,
      'Content-Length: 0', '', ''].join('\r\n'), port);
    const final = await ua.take((t) => /^SIP\/2\.0 [2-6]\d\d /.test(t), timeoutMs, `final response for ${called}`);
    await ua.send([`ACK sip:${called}@127.0.0.1:${port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=${branch}`,
      ...base, `To: ${header(final, 'To') ?? ''}`, `Call-ID: ${callId}`, 'CSeq: 1 ACK', 'Content-Length: 0', '', ''].join('\r\n'), port);
    return final;
  } finally { ua.close(); }
}
