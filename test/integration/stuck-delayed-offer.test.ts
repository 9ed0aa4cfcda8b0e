// A delayed-offer call (INVITE without SDP) whose caller ACKs our 2xx and hangs up at once:
// drachtio-srf finishes such a B-leg only when it hears of the caller's ACK, a turn after
// reading it, and a BYE read in the same turn removes its listener. Before the ACK watch
// (src/sbc/b-leg.ts) the call then stayed "in progress" for ever, holding its limits slot and
// keeping a drain from ending. Real peergate, SIPp as the callee, a raw UDP caller.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { freePorts, startUas, waitFor, stopInOrder, type Proc } from '../helpers/procs.js';
import { listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';

const PEER_IP = '127.0.0.2';
const CORE_IP = '127.0.0.3';
const T1_MS = 50; // the ACK window is 64×T1 = 3.2 s (+ 2 s for the engine's own ending)
let pg: RunningPeergate;
let uas: Proc;
let port: number;

const branch = () => `z9hG4bK-${Math.random().toString(36).slice(2)}`;
const line = (msg: string, name: string) => new RegExp(`^${name}:.*$`, 'im').exec(msg)![0];
const contactOf = (msg: string) => /^Contact:\s*<([^>]+)>/im.exec(msg)![1]!;

/** `n` calls from a raw UDP caller that ACKs the 2xx and sends BYE in the same breath. */
async function quickHangups(n: number, sdp: boolean): Promise<{ invite: number[]; bye: number[] }> {
  const sock: Socket = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, PEER_IP, () => r()));
  const lp = sock.address().port;
  const got = { invite: [] as number[], bye: [] as number[] };
  sock.on('message', (m) => {
    const t = m.toString();
    const status = Number(t.slice(8, 11));
    if (status < 200) return;
    if (/^CSeq:\s*\d+ BYE/im.test(t)) { got.bye.push(status); return; }
    got.invite.push(status);
    if (status !== 200) return;
    for (const [method, cseq] of [['ACK', '1 ACK'], ['BYE', '2 BYE']] as const) {
      sock.send(`${method} ${contactOf(t)} SIP/2.0\r\nVia: SIP/2.0/UDP ${PEER_IP}:${lp};branch=${branch()}\r\nMax-Forwards: 70\r\n${line(t, 'From')}\r\n${line(t, 'To')}\r\n${line(t, 'Call-ID')}\r\nCSeq: ${cseq}\r\nContent-Length: 0\r\n\r\n`, port, '127.0.0.1');
    }
  });
  const body = sdp ? `v=0\r\no=- 1 1 IN IP4 ${PEER_IP}\r\ns=-\r\nc=IN IP4 ${PEER_IP}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n` : '';
  for (let i = 0; i < n; i++) {
    sock.send(`INVITE sip:+15551230000@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP ${PEER_IP}:${lp};branch=${branch()}\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001@${PEER_IP}>;tag=q${i}\r\nTo: <sip:+15551230000@127.0.0.1>\r\nCall-ID: quick-${sdp ? 'o' : 'd'}-${i}-${Math.random()}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@${PEER_IP}:${lp}>\r\n${sdp ? 'Content-Type: application/sdp\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, port, '127.0.0.1');
  }
  await waitFor(() => got.invite.length >= n && got.bye.length >= n, 8000, 20, `${n} answers and ${n} BYE answers`);
  sock.close();
  return got;
}

const calls = (result: string) => pg.metric('peergate_calls_total', { result });

beforeAll(async () => {
  const [udp, core, ops, uasPort] = await freePorts(4);
  port = udp!;
  uas = startUas(CORE_IP, uasPort!);
  pg = await startPeergate({
    listen: [listener('peer-udp', udp!), listener('core-udp', core!)],
    core: { targets: [`sip:${CORE_IP}:${uasPort}`] }, media: { anchoring: false }, ops: { port: ops },
    engine: { sip_timers: { t1_ms: T1_MS, t2_ms: 4000, t4_ms: 5000 } },
    peers: [{ id: 'carrier', match: { addresses: [`${PEER_IP}/32`] }, limits: { sessions: 10 } }], routes: [{ from: 'peers', to: 'core' }],
  });
}, 60_000);

afterAll(() => stopInOrder(pg, uas));

describe('a caller that ACKs and hangs up at once', () => {
  it('with an SDP offer: every call ends at once as caller_bye', async () => {
    const before = await calls('caller_bye');
    const got = await quickHangups(3, true);
    expect(got.invite).toEqual([200, 200, 200]);
    expect(got.bye).toEqual([200, 200, 200]);
    await waitFor(async () => (await calls('caller_bye')) - before === 3, 3000, 50, 'three calls ended');
  }, 30_000);

  it('without one (delayed offer): no call stays in progress; each ends by the end of the ACK window and frees its slot', async () => {
    const ended = async () => (await calls('failed')) + (await calls('caller_bye'));
    const before = await ended();
    const failedBefore = await calls('failed');
    const got = await quickHangups(3, false);
    expect(got.invite).toEqual([200, 200, 200]);
    expect(got.bye).toEqual([200, 200, 200]);
    // A BYE drachtio-srf reads in the same turn as the ACK strands its call until the ACK watch
    // ends it (failed, no_ack); one read a turn later ends it at once (caller_bye). Either way
    // every call ends; before the watch the stranded ones never did.
    await waitFor(async () => (await ended()) - before === 3, 64 * T1_MS + 8000, 100, 'three delayed-offer calls ended');
    await waitFor(async () => (await pg.metric('peergate_limit_sessions_local')) === 0, 3000, 50, 'slots free');
    const stranded = (await calls('failed')) - failedBefore;
    if (stranded > 0) expect(pg.proc.output()).toContain('no ACK for the 2xx: call ended');
    // The callee's leg of a stranded call was answered and never ACKed by drachtio-srf: peergate
    // ACKs it (declining the offer) and sends BYE, so the engine keeps no dialog of these calls
    // (SIPp's uas never sends that BYE itself).
    await waitFor(async () => (await pg.metric('peergate_engine_dialogs')) === 0, 3000, 50, 'no engine dialog left');
  }, 30_000);
});
