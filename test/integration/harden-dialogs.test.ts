// Dialogs bound to their peer (issue #17.3, RFC 6404 §2.3.2.1), end to end: `peergate start`
// as a real process, SIPp as the core (and as a ringing peer), the calling peer on 127.0.0.2
// and a second configured peer on 127.0.0.4 that knows the Call-ID and tags. Its BYE,
// re-INVITE, UPDATE, INFO and CANCEL get 481, the call goes on, the owner's BYE/CANCEL works.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket, type Socket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { freePorts, startSipp, startUas, scratchDir, waitFor, stopInOrder, type Proc } from '../helpers/procs.js';
import { listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';

const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-b2bua');
const A_IP = '127.0.0.2';
const CORE_IP = '127.0.0.3';
const B_IP = '127.0.0.4';
const RING_IP = '127.0.0.5';

/** A SIP peer on one UDP socket bound to its own loopback address. */
class Peer {
  readonly received: string[] = [];
  private constructor(private readonly sock: Socket, readonly ip: string, readonly port: number) {
    sock.on('message', (m) => this.received.push(m.toString('utf8')));
  }
  static async open(ip: string): Promise<Peer> {
    const s = createSocket('udp4');
    await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(0, ip, () => res()); });
    return new Peer(s, ip, s.address().port);
  }
  send(text: string, port: number): Promise<void> {
    return new Promise((res) => this.sock.send(Buffer.from(text), port, '127.0.0.1', () => res()));
  }
  async take(pred: (t: string) => boolean, what: string, timeoutMs = 8000): Promise<string> {
    const i = await waitFor(() => { const k = this.received.findIndex(pred); return k >= 0 ? k + 1 : 0; }, timeoutMs, 10, what);
    return this.received.splice(i - 1, 1)[0]!;
  }
  close(): void { try { this.sock.close(); } catch { /* closed */ } }
}

/** A SIP peer on one TCP connection from its own loopback address; messages split by Content-Length. */
class TcpPeer {
  readonly received: string[] = [];
  private buf = '';
  private constructor(private readonly sock: TcpSocket, readonly ip: string, readonly port: number) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => { this.buf += d; this.split(); });
  }
  static async open(ip: string, port: number): Promise<TcpPeer> {
    const s = connect({ host: '127.0.0.1', port, localAddress: ip });
    await new Promise<void>((res, rej) => { s.once('error', rej); s.once('connect', () => res()); });
    return new TcpPeer(s, ip, s.localPort!);
  }
  private split(): void {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/\r\nContent-Length: *(\d+)/i.exec(this.buf.slice(0, end + 2))?.[1] ?? 0);
      if (this.buf.length < end + 4 + len) return;
      this.received.push(this.buf.slice(0, end + 4 + len));
      this.buf = this.buf.slice(end + 4 + len);
    }
  }
  send(text: string): void { this.sock.write(text); }
  async take(pred: (t: string) => boolean, what: string, timeoutMs = 8000): Promise<string> {
    const i = await waitFor(() => { const k = this.received.findIndex(pred); return k >= 0 ? k + 1 : 0; }, timeoutMs, 10, what);
    return this.received.splice(i - 1, 1)[0]!;
  }
  close(): void { this.sock.destroy(); }
}

interface Leg { callId: string; fromTag: string; called: string; branch: string; toTag?: string }

function request(method: string, leg: Leg, via: { ip: string; port: number }, cseq: number, branch: string, opts: { toTag?: string; cseqMethod?: string; tcp?: boolean } = {}): string {
  const to = `<sip:${leg.called}@127.0.0.1>${opts.toTag ? `;tag=${opts.toTag}` : ''}`;
  return `${method} sip:${leg.called}@127.0.0.1:${ports.peerSip}${opts.tcp ? ';transport=tcp' : ''} SIP/2.0\r\nVia: SIP/2.0/${opts.tcp ? 'TCP' : 'UDP'} ${via.ip}:${via.port};branch=${branch};rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:+15551230000@${A_IP}>;tag=${leg.fromTag}\r\nTo: ${to}\r\nCall-ID: ${leg.callId}\r\n` +
    `CSeq: ${cseq} ${opts.cseqMethod ?? method}\r\nContact: <sip:+15551230000@${via.ip}:${via.port}>\r\nContent-Length: 0\r\n\r\n`;
}

const status = (code: number, method: string) => (t: string) => t.startsWith(`SIP/2.0 ${code} `) && new RegExp(`\\r\\nCSeq: *\\d+ ${method}\\r\\n`, 'i').test(t);
const toTagOf = (t: string) => /\r\nTo:[^\r]*;tag=([^;\r\s]+)/i.exec(t)![1]!;

function messageLog(dir: string): string {
  return readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
}

let pg: RunningPeergate;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number; ringUas: number };
let coreDir: string;
let core: Proc;
let a: Peer;
let b: Peer;

beforeAll(async () => {
  const [peerSip, coreSip, ops, coreUas, ringUas] = await freePorts(5);
  ports = { peerSip: peerSip!, coreSip: coreSip!, ops: ops!, coreUas: coreUas!, ringUas: ringUas! };
  coreDir = scratchDir('harden-core-');
  core = startUas(CORE_IP, ports.coreUas, { dir: coreDir, extra: ['-m', '1', '-trace_msg'] });
  pg = await startPeergate({
    listen: [listener('peer-udp', ports.peerSip), listener('peer-tcp', ports.peerSip), listener('core-udp', ports.coreSip)],
    core: { targets: [`sip:${CORE_IP}:${ports.coreUas}`] },
    media: { anchoring: false },
    ops: { port: ports.ops },
    log: { level: 'warn' },
    limits: { strikes: { threshold: 100, window_s: 60, ban_s: 60 } },
    peers: [
      { id: 'carrier-a', match: { addresses: [`${A_IP}/32`] } },
      { id: 'carrier-b', match: { addresses: [`${B_IP}/32`] } },
      { id: 'ringer', match: { addresses: [`${RING_IP}/32`] }, targets: [`sip:${RING_IP}:${ports.ringUas}`] },
    ],
    routes: [{ from: 'peers', called_prefix: '+49', to: 'ringer' }, { from: 'peers', to: 'core' }],
  });
  a = await Peer.open(A_IP);
  b = await Peer.open(B_IP);
}, 60_000);

afterAll(() => stopInOrder(a, b, pg));

describe('requests within a dialog from another peer', () => {
  it('BYE, re-INVITE, UPDATE and INFO from a second peer get 481; the call goes on; the owner’s BYE ends it', async () => {
    const leg: Leg = { callId: `bind-${Date.now()}@${A_IP}`, fromTag: 'a-tag-1', called: '+15550001111', branch: 'z9hG4bK-inv-1' };
    await a.send(request('INVITE', leg, a, 1, leg.branch), ports.peerSip);
    const ok = await a.take(status(200, 'INVITE'), '200 to the INVITE');
    const toTag = toTagOf(ok);
    await a.send(request('ACK', leg, a, 1, 'z9hG4bK-ack-1', { toTag }), ports.peerSip);
    const before = await pg.metric('peergate_engine_foreign_dialog_requests_total');

    let seq = 2;
    for (const m of ['BYE', 'INVITE', 'UPDATE', 'INFO']) {
      await b.send(request(m, leg, b, seq, `z9hG4bK-forged-${m}`, { toTag }), ports.peerSip);
      const r = await b.take((t) => t.startsWith('SIP/2.0 ') && t.includes(` ${m}\r\n`) && !t.startsWith('SIP/2.0 100'), `answer to the forged ${m}`);
      expect(r.split('\r\n')[0]).toBe('SIP/2.0 481 Call/Transaction Does Not Exist');
      seq++;
    }
    await waitFor(async () => (await pg.metric('peergate_engine_foreign_dialog_requests_total')) >= before + 4, 5000, 50, 'foreign requests counted');
    // Nothing reached the core: the call is up there.
    await new Promise((r) => setTimeout(r, 300));
    expect(messageLog(coreDir)).not.toMatch(/^BYE sip:/m);
    expect(core.child.exitCode).toBeNull();

    // The owner's BYE (CSeq above the forged ones: those never counted) ends the call on both legs.
    await a.send(request('BYE', leg, a, 3, 'z9hG4bK-bye-1', { toTag }), ports.peerSip);
    await a.take(status(200, 'BYE'), '200 to the owner’s BYE');
    expect(await core.exited).toBe(0);
    expect(messageLog(coreDir)).toMatch(/^BYE sip:/m);
    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a' })).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('a CANCEL from a second peer gets 481 and the call keeps ringing; the caller’s CANCEL ends it', async () => {
    const ring = startSipp(['-sf', join(SCEN, 'uas-ring-forever.xml'), '-i', RING_IP, '-p', String(ports.ringUas), '-t', 'u1', '-m', '1']);
    await new Promise((r) => setTimeout(r, 300));
    const leg: Leg = { callId: `cancel-${Date.now()}@${A_IP}`, fromTag: 'a-tag-2', called: '+4930123456', branch: 'z9hG4bK-inv-2' };
    await a.send(request('INVITE', leg, a, 1, leg.branch), ports.peerSip);
    await a.take(status(180, 'INVITE'), '180 from the ringing peer');
    await b.send(request('CANCEL', leg, b, 1, leg.branch), ports.peerSip);
    const r = await b.take((t) => t.startsWith('SIP/2.0 ') && t.includes(' CANCEL\r\n'), 'answer to the forged CANCEL');
    expect(r.split('\r\n')[0]).toBe('SIP/2.0 481 Call/Transaction Does Not Exist');
    await new Promise((res) => setTimeout(res, 300));
    expect(a.received.some((t) => t.startsWith('SIP/2.0 487'))).toBe(false);
    expect(ring.child.exitCode).toBeNull();

    // The caller's own CANCEL, same branch: 200, then 487, and the ringing peer is cancelled.
    await a.send(request('CANCEL', leg, a, 1, leg.branch), ports.peerSip);
    await a.take(status(200, 'CANCEL'), '200 to the CANCEL');
    const terminated = await a.take(status(487, 'INVITE'), '487 to the INVITE');
    await a.send(request('ACK', leg, a, 1, leg.branch, { toTag: toTagOf(terminated) }), ports.peerSip);
    expect(await ring.exited).toBe(0);
  }, 30_000);

  it('over TCP only the connection the call came on may end it: a second connection from the same host gets 481', async () => {
    const coreTcpDir = scratchDir('harden-core-tcp-');
    const core2 = startUas(CORE_IP, ports.coreUas, { dir: coreTcpDir, extra: ['-m', '1', '-trace_msg'] });
    await new Promise((r) => setTimeout(r, 300));
    const owner = await TcpPeer.open(A_IP, ports.peerSip);
    const other = await TcpPeer.open(A_IP, ports.peerSip);
    try {
      const leg: Leg = { callId: `tcp-${Date.now()}@${A_IP}`, fromTag: 'a-tag-3', called: '+15550002222', branch: 'z9hG4bK-inv-3' };
      owner.send(request('INVITE', leg, owner, 1, leg.branch, { tcp: true }));
      const toTag = toTagOf(await owner.take(status(200, 'INVITE'), '200 over TCP'));
      owner.send(request('ACK', leg, owner, 1, 'z9hG4bK-ack-3', { toTag, tcp: true }));
      other.send(request('BYE', leg, other, 2, 'z9hG4bK-forged-tcp', { toTag, tcp: true }));
      const r = await other.take((t) => t.startsWith('SIP/2.0 ') && t.includes(' BYE\r\n'), 'answer to the BYE on the other connection');
      expect(r.split('\r\n')[0]).toBe('SIP/2.0 481 Call/Transaction Does Not Exist');
      await new Promise((res) => setTimeout(res, 300));
      expect(messageLog(coreTcpDir)).not.toMatch(/^BYE sip:/m);
      owner.send(request('BYE', leg, owner, 3, 'z9hG4bK-bye-3', { toTag, tcp: true }));
      await owner.take(status(200, 'BYE'), '200 to the owner’s BYE over TCP');
      expect(await core2.exited).toBe(0);
    } finally {
      owner.close();
      other.close();
    }
  }, 30_000);
});
