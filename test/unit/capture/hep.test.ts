import { describe, it, expect, afterEach } from 'vitest';
import { encodeHep3, callIdOf, createHepCapture, type HepCapture } from '../../../src/engine/capture/index.js';
import { decodeHep, startHepCollector, type HepCollector } from '../../helpers/hep.js';
import { waitFor } from '../../helpers/procs.js';

const INVITE = Buffer.from([
  'INVITE sip:+15551230000@192.0.2.1 SIP/2.0',
  'Via: SIP/2.0/TLS 198.51.100.7:5061;branch=z9hG4bK-1',
  'From: <sip:+15557654321@198.51.100.7>;tag=a1',
  'To: <sip:+15551230000@192.0.2.1>',
  'Call-ID: 8f3a-ü@198.51.100.7',
  'CSeq: 1 INVITE',
  'Content-Length: 0',
  '', '',
].join('\r\n'));

describe('HEP3 encoding', () => {
  it('encodes every chunk a collector needs, IPv4 over TLS (as TCP)', () => {
    const pkt = encodeHep3({
      transport: 'tls', src: { address: '198.51.100.7', port: 5061 }, dst: { address: '192.0.2.1', port: 5061 },
      timeMs: 1_700_000_000_123.456, captureId: 4242, authKey: 'sekrit', correlationId: '8f3a-ü@198.51.100.7', payload: INVITE,
    })!;
    const p = decodeHep(pkt);
    expect(p.family).toBe(2);
    expect(p.ipProto).toBe(6);
    expect([p.src, p.srcPort, p.dst, p.dstPort]).toEqual(['198.51.100.7', 5061, '192.0.2.1', 5061]);
    expect(p.timeSec).toBe(1_700_000_000);
    expect(p.timeUsec).toBe(123_456);
    expect(p.protoType).toBe(1);
    expect(p.captureId).toBe(4242);
    expect(p.authKey).toBe('sekrit');
    expect(p.correlationId).toBe('8f3a-ü@198.51.100.7');
    expect(p.payload).toBe(INVITE.toString('utf8'));
    expect(p.chunks.every(([vendor]) => vendor === 0)).toBe(true);
    // The reference agent's order: fixed-layout receivers (sngrep 1.x) read the header chunks,
    // the addresses, the auth key and the payload at fixed places.
    expect(p.chunks.map(([, type]) => type)).toEqual([1, 2, 7, 8, 9, 10, 11, 12, 3, 4, 14, 15, 17]);
  });

  it('encodes IPv6 and IPv4-mapped addresses, UDP, no optional chunks', () => {
    const p = decodeHep(encodeHep3({
      transport: 'udp', src: { address: '2001:db8::1', port: 5060 }, dst: { address: '2001:db8:0:0:1::ff', port: 5080 },
      timeMs: 0, captureId: 1, payload: INVITE,
    })!);
    expect(p.family).toBe(10);
    expect(p.ipProto).toBe(17);
    expect(p.src).toBe('2001:db8:0:0:0:0:0:1');
    expect(p.dst).toBe('2001:db8:0:0:1:0:0:ff');
    expect(p.authKey).toBeUndefined();
    expect(p.correlationId).toBeUndefined();
    const m = decodeHep(encodeHep3({ transport: 'tcp', src: { address: '::ffff:10.0.0.1', port: 1 }, dst: { address: '10.0.0.2', port: 2 }, timeMs: 0, captureId: 1, payload: INVITE })!);
    expect([m.family, m.src, m.dst]).toEqual([2, '10.0.0.1', '10.0.0.2']);
  });

  it('refuses what cannot be one packet: mixed families, bad addresses, over 64 KiB', () => {
    const base = { transport: 'udp' as const, timeMs: 0, captureId: 1, payload: INVITE };
    expect(encodeHep3({ ...base, src: { address: '10.0.0.1', port: 1 }, dst: { address: '::1', port: 1 } })).toBeUndefined();
    expect(encodeHep3({ ...base, src: { address: 'host', port: 1 }, dst: { address: '10.0.0.1', port: 1 } })).toBeUndefined();
    expect(encodeHep3({ ...base, src: { address: '10.0.0.1', port: 1 }, dst: { address: '10.0.0.2', port: 1 }, payload: Buffer.alloc(65_500) })).toBeUndefined();
  });

  it('finds the Call-ID by full and compact name, in the headers only', () => {
    expect(callIdOf(INVITE)).toBe('8f3a-ü@198.51.100.7');
    expect(callIdOf(Buffer.from('SIP/2.0 200 OK\r\nv: SIP/2.0/UDP x\r\ni:  abc@h \r\nl: 0\r\n\r\n'))).toBe('abc@h');
    expect(callIdOf(Buffer.from('SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\ncall-id:x1\r\n\r\n'))).toBe('x1');
    expect(callIdOf(Buffer.from('MESSAGE sip:a SIP/2.0\r\nContent-Length: 12\r\n\r\nCall-ID: no\r\n'))).toBe('');
    expect(callIdOf(Buffer.from('garbage'))).toBe('');
  });
});

describe('HEP capture', () => {
  let cap: HepCapture | undefined;
  let col: HepCollector | undefined;
  afterEach(async () => { await cap?.close(); await col?.close(); cap = undefined; col = undefined; });

  const local = { protocol: 'udp' as const, address: '127.0.0.1', port: 5060 };
  const remote = { protocol: 'udp' as const, address: '127.0.0.2', port: 5099 };

  it('sends received and sent messages to the collector with direction-correct addresses', async () => {
    col = await startHepCollector();
    cap = createHepCapture({ hep: { address: '127.0.0.1', port: col.port, capture_id: 77, queue_max: 100, password: 'pw' } });
    // The stamps the transport gives (when read, when handed over) are what the packets carry, to the µs.
    cap.tap.record('in', INVITE, local, remote, 1_780_000_000_123.456);
    cap.tap.record('out', INVITE, local, remote, 1_780_000_000_123.789);
    await waitFor(() => col!.packets.length === 2, 3000);
    const [a, b] = col.packets;
    expect([a!.timeSec, a!.timeUsec, b!.timeSec, b!.timeUsec]).toEqual([1_780_000_000, 123_456, 1_780_000_000, 123_789]);
    expect([a!.src, a!.srcPort, a!.dst, a!.dstPort]).toEqual(['127.0.0.2', 5099, '127.0.0.1', 5060]);
    expect([b!.src, b!.srcPort, b!.dst, b!.dstPort]).toEqual(['127.0.0.1', 5060, '127.0.0.2', 5099]);
    expect(a!.captureId).toBe(77);
    expect(a!.authKey).toBe('pw');
    expect(a!.correlationId).toBe('8f3a-ü@198.51.100.7');
    expect(col.errors).toEqual([]);
  });

  it('never queues more than queue_max; a reload starts and stops capture', async () => {
    col = await startHepCollector();
    cap = createHepCapture(undefined);
    expect(cap.tap.on).toBe(false); // the transports stamp nothing
    cap.tap.record('in', INVITE, local, remote, Date.now());
    cap.configure({ hep: { address: '127.0.0.1', port: col.port, capture_id: 1, queue_max: 5 } });
    expect(cap.tap.on).toBe(true);
    // All in one turn of the event loop: only queue_max can wait.
    for (let i = 0; i < 50; i++) cap.tap.record('in', INVITE, local, remote, Date.now());
    await waitFor(() => col!.packets.length >= 5, 3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(col.packets.length).toBe(5);
    cap.configure({});
    expect(cap.tap.on).toBe(false);
    cap.tap.record('in', INVITE, local, remote, Date.now());
    await new Promise((r) => setTimeout(r, 200));
    expect(col.packets.length).toBe(5);
  });
});
