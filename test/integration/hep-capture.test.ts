// SIP capture end to end: `peergate start` with a mutual-TLS peer leg and a UDP core leg
// (SIPp), capturing to a HEPv3 collector on loopback. The collector decodes with
// test/helpers/hep.ts, written from the HEP3 specification independently of peergate's
// encoder. sngrep 1.6 could not serve as the receiver here: headless (-N -L … -O) it counted
// no dialog and wrote no pcap for HEP it received, from peergate or from a hand-made packet in
// the reference agent's chunk order, and its live capture on lo would see the test's own SIP.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect, type TLSSocket } from 'node:tls';
import { connect as tcpConnect } from 'node:net';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, startUas, scratchDir, waitFor, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { startHepCollector, type HepCollector, type HepPacket } from '../helpers/hep.js';
import { createFederationCa, createPeerCertificate, type Written } from '../../src/pki/files.js';

const CALL_ID = 'hep-tls-call-1@carrier-a.example';
let pg: RunningPeergate;
let col: HepCollector;
let p: { tls: number; core: number; ops: number; uas: number };
let ca: Written, sbe: Written, peerCert: Written;
let cdrFile: string;

beforeAll(async () => {
  const [tls, core, ops, uas] = await freePorts(4);
  p = { tls: tls!, core: core!, ops: ops!, uas: uas! };
  const dir = scratchDir('hep-pki-');
  ca = createFederationCa(dir);
  sbe = createPeerCertificate(dir, 'sbe', { cn: 'localhost', san: ['localhost', '127.0.0.1'] });
  peerCert = createPeerCertificate(dir, 'peer-a', { cn: 'sbc.carrier-a.example', san: ['sbc.carrier-a.example'] });
  col = await startHepCollector();
  cdrFile = join(scratchDir('hep-cdr-'), 'cdr.jsonl');
  startUas(CORE_IP, p.uas);
  pg = await startPeergate({
    listen: [listener('peer-tls', p.tls), listener('core-udp', p.core)],
    tls: { certificate: sbe.certPath, key: sbe.keyPath, client_cas: [ca.certPath], require_client_cert: true },
    core: { targets: [`sip:${CORE_IP}:${p.uas}`] },
    media: { anchoring: false },
    ops: { port: p.ops },
    log: { level: 'warn' },
    cdr: { file: cdrFile },
    capture: { hep: { address: '127.0.0.1', port: col.port, capture_id: 3042, password: 'hep-secret' } },
    peers: [{
      id: 'carrier-a', transport: 'tls',
      match: { addresses: [`${PEER_IP}/32`], certificate: { subject_alt_names: ['sbc.carrier-a.example'] } },
    }],
    routes: [{ from: 'peers', to: 'core' }],
  });
}, 60_000);

afterAll(() => stopInOrder(pg, col));

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tlsCall(): Promise<void> {
  const received: string[] = [];
  const raw = tcpConnect({ host: '127.0.0.1', port: p.tls, localAddress: PEER_IP });
  const sock: TLSSocket = connect({ socket: raw, ca: readFileSync(ca.certPath), checkServerIdentity: () => undefined, cert: readFileSync(peerCert.certPath), key: readFileSync(peerCert.keyPath) });
  sock.on('data', (d: Buffer) => received.push(d.toString()));
  await new Promise<void>((resolve, reject) => { sock.once('secureConnect', () => resolve()); sock.once('error', reject); });
  const port = sock.localPort!;
  const sdp = `v=0\r\no=- 1 1 IN IP4 ${PEER_IP}\r\ns=-\r\nc=IN IP4 ${PEER_IP}\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n`;
  const from = `From: <sip:+15550001@carrier-a.example>;tag=a-hep\r\n`;
  sock.write(`INVITE sip:+15551230000@127.0.0.1:${p.tls};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS ${PEER_IP}:${port};branch=z9hG4bK-hep-inv\r\n` +
    `Max-Forwards: 70\r\n${from}To: <sip:+15551230000@127.0.0.1>\r\nCall-ID: ${CALL_ID}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@${PEER_IP}:${port};transport=tls>\r\n` +
    `Content-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(sdp)}\r\n\r\n${sdp}`);
  await waitFor(() => received.join('').includes('SIP/2.0 200'), 10_000, 50, '200 to the INVITE');
  const ok = received.join('').slice(received.join('').indexOf('SIP/2.0 200'));
  const toTag = /^To:.*tag=([^;\s>]+)/m.exec(ok)![1];
  const contact = /^Contact:\s*<([^>]+)>/m.exec(ok)![1];
  const base = (b: string) => `Via: SIP/2.0/TLS ${PEER_IP}:${port};branch=z9hG4bK-hep-${b}\r\nMax-Forwards: 70\r\n${from}To: <sip:+15551230000@127.0.0.1>;tag=${toTag}\r\nCall-ID: ${CALL_ID}\r\n`;
  sock.write(`ACK ${contact} SIP/2.0\r\n${base('ack')}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`);
  await wait(200);
  sock.write(`BYE ${contact} SIP/2.0\r\n${base('bye')}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`);
  await waitFor(() => /SIP\/2\.0 200[^]*CSeq: 2 BYE/.test(received.join('')), 10_000, 50, '200 to the BYE');
  sock.destroy();
}

/** "in INVITE", "out 200/INVITE" … for the packets of one correlation id, in order. */
function flow(packets: HepPacket[]): string[] {
  return packets.map((k) => {
    const first = k.payload.slice(0, k.payload.indexOf('\r\n'));
    const method = /^CSeq:\s*\d+\s+(\S+)/m.exec(k.payload)?.[1];
    const inbound = k.dst === '127.0.0.1';
    return first.startsWith('SIP/2.0') ? `${inbound ? 'in' : 'out'} ${first.split(' ')[1]}/${method}` : `${inbound ? 'in' : 'out'} ${first.split(' ')[0]}`;
  });
}

/** The flow without provisional responses (how many 1xx a leg sees varies). */
const final = (packets: HepPacket[]) => flow(packets).filter((f) => !/ 1\d\d\//.test(f));
/** The packets captured for one leg (HEP correlation id = the leg's Call-ID), once its five
 *  final-flow messages are in, in the order of their HEP stamps, as a collector shows them. */
async function leg(callId: string, what: string): Promise<HepPacket[]> {
  const of = () => col.packets.filter((k) => k.correlationId === callId);
  await waitFor(() => final(of()).length >= 5, 10_000, 50, what);
  const stamp = (k: HepPacket) => k.timeSec * 1e6 + k.timeUsec;
  const packets = of().sort((x, y) => stamp(x) - stamp(y));
  // µs stamps: no two messages of a leg share one.
  expect(new Set(packets.map(stamp)).size).toBe(packets.length);
  return packets;
}

describe('HEPv3 capture', () => {
  it('captures both legs of a call, the TLS leg as plaintext, correlated by each leg\'s Call-ID', async () => {
    await tlsCall();
    const rec = (await waitFor(() => existsSync(cdrFile) && readFileSync(cdrFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>).find((r) => r.call_id === CALL_ID), 10_000, 50, 'CDR')) as Record<string, any>;
    expect(rec.tls_identity?.san).toContain('DNS:sbc.carrier-a.example');
    expect(rec.transport).toBe('tls');
    const bCallId = rec.b_call_id as string;

    // The caller's leg: TLS (IP protocol 6), between the peer and our TLS listener, plaintext SIP.
    const a = await leg(CALL_ID, 'A-leg packets');
    // A stream send is stamped when it is handed over, so the caller's ACK comes after our 200
    // even when it is read before the 200's write is reported done (seen once in CI).
    expect(final(a)).toEqual(['in INVITE', 'out 200/INVITE', 'in ACK', 'in BYE', 'out 200/BYE']);
    for (const k of a) {
      expect(k.ipProto).toBe(6);
      expect([k.src, k.dst].sort()).toEqual(['127.0.0.1', PEER_IP]);
      expect(k.src === PEER_IP ? k.dstPort : k.srcPort).toBe(p.tls);
      expect(k.payload).toMatch(/^(?:[A-Z]+ sips?:|SIP\/2\.0 )/);
      expect(k.payload).toContain(`Call-ID: ${CALL_ID}`);
    }

    // The called leg: UDP (17) to and from the core, its own Call-ID.
    const b = await leg(bCallId, 'B-leg packets');
    expect(final(b)).toEqual(['out INVITE', 'in 200/INVITE', 'out ACK', 'out BYE', 'in 200/BYE']);
    for (const k of b) {
      expect(k.ipProto).toBe(17);
      expect([k.src, k.dst].sort()).toEqual(['127.0.0.1', CORE_IP]);
      expect(k.src === CORE_IP ? k.srcPort : k.dstPort).toBe(p.uas);
      expect(k.payload).not.toContain(CALL_ID);
    }

    // Every packet carries the node's capture id and the collector's key; nothing failed to decode.
    for (const k of col.packets) { expect(k.captureId).toBe(3042); expect(k.authKey).toBe('hep-secret'); expect(k.protoType).toBe(1); }
    expect(col.errors).toEqual([]);
    expect(await pg.metric('peergate_capture_packets_total', { result: 'sent' })).toBeGreaterThanOrEqual(10);
    expect(await pg.metric('peergate_capture_packets_total', { result: 'dropped' })).toBe(0);
  });
});
