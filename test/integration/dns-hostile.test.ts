// Bad DNS input: a hostile "resolver" on loopback (the party under test is peergate's stub
// resolver, not this server) answers with garbage, oversize answers, truncation followed by a
// stream that never ends, spoofed sources and regexp bombs. Every case ends in a bounded
// error with a metric, never a crash or a hang.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import * as packet from 'dns-packet';
import { DnsClient, dnsErrorsTotal, type DnsErrorKind } from '../../src/routing/dns-client.js';
import { Locator } from '../../src/routing/rfc3263.js';
import { lookupEnum, enumRejectedTotal, enumDomain } from '../../src/routing/enum.js';
import { freePort } from '../helpers/procs.js';

let udp: UdpSocket;
let spoofer: UdpSocket;
let tcp: Server;
let port: number;

function answer(q: packet.DecodedPacket, answers: packet.Answer[], flags = 0): Buffer {
  return packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_AVAILABLE | flags, questions: q.questions, answers });
}

function respond(q: packet.DecodedPacket): Buffer | undefined {
  const qq = q.questions![0]!;
  const name = qq.name;
  if (name.startsWith('malformed.')) { const b = Buffer.alloc(40, 0xff); b.writeUInt16BE(q.id!, 0); return b; }
  if (name.startsWith('huge.')) return answer(q, Array.from({ length: 300 }, (_, i) => ({ type: 'A', name, ttl: 60, data: `10.0.${i >> 8}.${i & 255}` }) as packet.Answer));
  if (name.startsWith('tc.')) return answer(q, [], packet.TRUNCATED_RESPONSE);
  if (name.startsWith('wrongq.')) return packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_AVAILABLE, questions: [{ type: 'A', name: 'elsewhere.test' }], answers: [{ type: 'A', name: 'elsewhere.test', ttl: 60, data: '203.0.113.66' }] });
  if (name.startsWith('loop.')) return answer(q, [{ type: 'CNAME', name, ttl: 60, data: 'loop2.x.test' }, { type: 'CNAME', name: 'loop2.x.test', ttl: 60, data: name }]);
  // halfdead.: two SRV targets; the A lookup of one is never answered (silent.*).
  if (name.startsWith('_sip._udp.halfdead.')) return answer(q, [1, 2].map((w) => ({ type: 'SRV', name, ttl: 60, data: { priority: 1, weight: w, port: 5060, target: w === 1 ? 'ok.x.test' : 'silent.x.test' } }) as packet.Answer));
  if (name === 'ok.x.test' && qq.type === 'A') return answer(q, [{ type: 'A', name, ttl: 60, data: '192.0.2.7' }]);
  if (name.startsWith('silent.')) return undefined;
  if (name.startsWith('badtarget.')) return answer(q, [{ type: 'SRV', name, ttl: 60, data: { priority: 1, weight: 1, port: 5060, target: 'bad name with spaces' } }]);
  if (qq.type === 'NAPTR' && name.endsWith('.e164.x.test')) {
    const bombs = ['!^(1+)+$!sip:a@carrier.test!', `!${'(.*)'.repeat(40)}!sip:a@carrier.test!`, '!^.*$!sip:a@carrier.test!'];
    return answer(q, bombs.map((regexp, i) => ({ type: 'NAPTR', name, ttl: 60, data: { order: 10, preference: i, flags: 'u', services: 'E2U+sip', regexp, replacement: '.' } }) as packet.Answer));
  }
  return answer(q, []);
}

beforeAll(async () => {
  port = await freePort();
  udp = createSocket('udp4');
  spoofer = createSocket('udp4');
  await new Promise<void>((r) => spoofer.bind(0, '127.0.0.1', () => r()));
  udp.on('message', (m, rinfo) => {
    let q: packet.DecodedPacket;
    try { q = packet.decode(m); } catch { return; }
    const name = q.questions?.[0]?.name ?? '';
    // spoof.*: the right id and question from the wrong port — must be ignored (then: timeout).
    if (name.startsWith('spoof.')) { spoofer.send(answer(q, [{ type: 'A', name, ttl: 60, data: '203.0.113.66' }]), rinfo.port, rinfo.address); return; }
    const out = respond(q);
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));
  // TCP (after truncation): announces 65535 bytes, then sends more than that, slowly.
  tcp = createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => {
      const len = Buffer.alloc(2); len.writeUInt16BE(65_535);
      s.write(len);
      const chunk = Buffer.alloc(16_384, 0x41);
      let n = 0;
      const t = setInterval(() => { if (s.destroyed || n++ > 8) { clearInterval(t); s.destroy(); return; } s.write(chunk); }, 10);
    });
  });
  await new Promise<void>((r) => tcp.listen(port, '127.0.0.1', () => r()));
});

afterAll(async () => {
  udp?.close();
  spoofer?.close();
  await new Promise((r) => tcp?.close(() => r(undefined)));
});

const client = () => new DnsClient({ resolvers: [{ address: '127.0.0.1', port }], trusted: () => true, timeoutMs: 500, attempts: 1 });

async function errorsOf(reason: DnsErrorKind): Promise<number> {
  return (await dnsErrorsTotal.get()).values.filter((v) => v.labels.reason === reason).reduce((s, v) => s + v.value, 0);
}

describe('hostile DNS answers', () => {
  const cases: Array<[string, DnsErrorKind]> = [
    ['malformed.x.test', 'malformed'],
    ['huge.x.test', 'too_large'],
    ['tc.x.test', 'too_large'],
    ['spoof.x.test', 'timeout'],
    ['wrongq.x.test', 'malformed'],
    ['loop.x.test', 'cname_loop'],
  ];
  for (const [name, reason] of cases) {
    it(`${name} → ${reason}, counted, bounded in time`, async () => {
      const before = await errorsOf(reason);
      const t0 = Date.now();
      const r = await client().query(name, 'A', { dnssec: false });
      expect(r).toEqual({ ok: false, error: reason });
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(await errorsOf(reason)).toBe(before + 1);
    });
  }

  it('an SRV target that is not a host name is skipped, not followed', async () => {
    const loc = new Locator({ client: client(), cache: { maxEntries: 10, minTtlS: 0, maxTtlS: 60, negativeTtlS: 5 } });
    const r = await loc.locate('sip:badtarget.x.test;transport=udp', { dnssec: 'off' });
    expect(r).toMatchObject({ ok: false, reason: 'not_found' });
  });

  it('an SRV answer one of whose targets could not be looked up is marked partial (health keeps its hops)', async () => {
    const loc = new Locator({ client: client(), cache: { maxEntries: 10, minTtlS: 0, maxTtlS: 60, negativeTtlS: 5 } });
    const r = await loc.locate('sip:halfdead.x.test;transport=udp', { dnssec: 'off', families: new Set([4]) });
    expect(r).toMatchObject({ ok: true, partial: true, hops: [{ transport: 'udp', address: '192.0.2.7', port: 5060 }] });
    // A plain unknown name is a complete (negative) answer, not a partial one.
    const whole = await loc.locate('sip:ok.x.test:5070', { dnssec: 'off', families: new Set([4]) });
    expect(whole.ok && whole.partial).toBeFalsy();
  });

  it('names that are not DNS names are never sent', async () => {
    expect(await client().query('a..b', 'A', { dnssec: false })).toEqual({ ok: false, error: 'bad_name' });
    expect(await client().query(`${'a'.repeat(64)}.test`, 'A', { dnssec: false })).toEqual({ ok: false, error: 'bad_name' });
  });

  it('ENUM regexp bombs are refused without running; the safe answer still routes', async () => {
    const loc = new Locator({ client: client(), cache: { maxEntries: 10, minTtlS: 0, maxTtlS: 60, negativeTtlS: 5 } });
    expect(enumDomain('+4930', 'e164.x.test')).toBe('0.3.9.4.e164.x.test');
    const before = (await enumRejectedTotal.get()).values.filter((v) => v.labels.reason === 'bad_regexp').reduce((s, v) => s + v.value, 0);
    const t0 = Date.now();
    const r = await lookupEnum(loc, '+1111111111111111'.slice(0, 16), { suffixes: ['e164.x.test'], allow: { 'carrier-a': ['carrier.test'] }, otherwise: 'reject' }, 'off');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r).toEqual({ ok: true, targets: [{ peer: 'carrier-a', uri: 'sip:a@carrier.test' }] });
    const after = (await enumRejectedTotal.get()).values.filter((v) => v.labels.reason === 'bad_regexp').reduce((s, v) => s + v.value, 0);
    expect(after - before).toBe(2);
  });
});
