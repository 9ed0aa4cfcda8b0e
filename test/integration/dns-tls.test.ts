// RFC 5922 outbound TLS for targets found through DNS: a sips: URI is located (NAPTR/SRV/A on
// a real nsd+unbound), and the TLS connection to the address DNS gave checks the server's
// certificate against the URI's host — sending it as SNI — never against the IP. Also: pinning
// to a peer's policy identity, CRLs on outbound connections, no reuse of a connection checked
// for another name.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { TransportLayer } from '../../src/engine/transport/index.js';
import type { InboundPacket, SendTarget } from '../../src/engine/transport/types.js';
import { DnsClient } from '../../src/routing/dns-client.js';
import { Locator, type NextHop } from '../../src/routing/rfc3263.js';
import { makePki, issueCert, makeCrl, type TestPki, type TestCert } from '../helpers/tls.js';
import { startDns, type RunningDns } from '../helpers/dns.js';
import { freePorts, waitFor, stopInOrder } from '../helpers/procs.js';

let pki: TestPki;
let dns: RunningDns;
let named: TestCert;
let ipOnly: TestCert;
let revoked: TestCert;
let crl: string;
let ports: { good: number; ip: number; sni: number; revoked: number };
const cleanups: Array<() => Promise<unknown> | void> = [];

function options(n: number): Buffer {
  return Buffer.from(`OPTIONS sip:good.tls.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-${n}\r\n` +
    `From: <sip:t@127.0.0.1>;tag=${n}\r\nTo: <sip:good.tls.test>\r\nCall-ID: tls-${n}\r\nCSeq: ${n} OPTIONS\r\nContent-Length: 0\r\n\r\n`);
}

async function server(cert: TestCert, port: number) {
  const t = new TransportLayer({ listeners: [{ protocol: 'tls', address: '127.0.0.1', port }], tls: { key: cert.key, cert: cert.cert, requireClientCert: false } });
  const received: InboundPacket[] = [];
  t.on('message', (p) => received.push(p));
  await t.listen();
  cleanups.push(() => t.close());
  return { t, received };
}

async function client(over: { crls?: string[] } = {}) {
  const a = new TransportLayer({ listeners: [], tls: { key: pki.client.key, cert: pki.client.cert, ca: [pki.ca.cert], ...over } });
  await a.listen();
  cleanups.push(() => a.close());
  return a;
}

async function locate(uri: string): Promise<NextHop> {
  const client = new DnsClient({ resolvers: [{ address: '127.0.0.1', port: dns.resolverPort }], trusted: () => true, timeoutMs: 2000, attempts: 1 });
  const r = await new Locator({ client, cache: { maxEntries: 10, minTtlS: 0, maxTtlS: 60, negativeTtlS: 5 } }).locate(uri, { dnssec: 'off' });
  if (!r.ok) throw new Error(r.detail);
  return r.hops[0]!;
}

const toTarget = (h: NextHop, extra: Partial<SendTarget> = {}): SendTarget => ({ protocol: h.transport, address: h.address, port: h.port, ...(h.serverName ? { serverName: h.serverName } : {}), ...extra });

beforeAll(async () => {
  pki = makePki();
  named = issueCert(pki.ca, 'named', { san: ['DNS:good.tls.test'], subject: '/O=Carrier A/CN=good.tls.test' });
  ipOnly = issueCert(pki.ca, 'iponly', { san: ['IP:127.0.0.1'] });
  revoked = issueCert(pki.ca, 'revoked', { san: ['DNS:revoked.tls.test'] });
  crl = makeCrl(pki.ca, [revoked]);
  const [good, ip, sni, rev] = await freePorts(4);
  ports = { good: good!, ip: ip!, sni: sni!, revoked: rev! };
  dns = await startDns([{
    origin: 'tls.test', signed: false,
    records: [
      '@ IN A 127.0.0.1',
      'good IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.good',
      `_sips._tcp.good IN SRV 10 0 ${ports.good} box`,
      `_sips._tcp.ipcert IN SRV 10 0 ${ports.ip} box`,
      `_sips._tcp.sni IN SRV 10 0 ${ports.sni} box`,
      `_sips._tcp.revoked IN SRV 10 0 ${ports.revoked} box`,
      'box IN A 127.0.0.1',
    ].join('\n'),
  }]);
}, 90_000);

afterEach(async () => { while (cleanups.length) await cleanups.pop()!(); });
afterAll(() => stopInOrder(dns));

describe('outbound TLS to DNS-located targets (RFC 5922)', () => {
  it('a certificate naming the URI host passes; one naming only the IP fails', async () => {
    const good = await server(named, ports.good);
    const hop = await locate('sips:good.tls.test');
    expect(hop).toEqual({ transport: 'tls', address: '127.0.0.1', port: ports.good, serverName: 'good.tls.test' });
    const ok = await (await client()).send(toTarget(hop), options(1));
    expect(ok.ok).toBe(true);
    await waitFor(() => good.received.length === 1, 3000, 20, 'OPTIONS at the named server');

    await server(ipOnly, ports.ip);
    const ipHop = await locate('sips:ipcert.tls.test');
    expect(ipHop.address).toBe('127.0.0.1');
    const bad = await (await client()).send(toTarget(ipHop), options(2));
    expect(bad).toMatchObject({ ok: false, reason: 'tls-failed' });
    expect(bad.ok ? '' : bad.detail).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('sends the URI host as SNI', async () => {
    let sni: string | false | undefined;
    // Seen in the ClientHello, whatever the client then thinks of the certificate.
    const srv = createTlsServer({ key: named.key, cert: named.cert, SNICallback: (name, cb) => { sni = name; cb(null); } }, (s: TLSSocket) => s.destroy());
    await new Promise<void>((r) => srv.listen(ports.sni, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise((r) => srv.close(() => r(undefined))));
    const hop = await locate('sips:sni.tls.test');
    await (await client()).send(toTarget(hop), options(3));
    await waitFor(() => sni !== undefined, 3000, 20, 'SNI');
    expect(sni).toBe('sni.tls.test');
  });

  it('a connection checked for one name is not reused for another', async () => {
    const good = await server(named, ports.good);
    const a = await client();
    const hop = await locate('sips:good.tls.test');
    expect((await a.send(toTarget(hop), options(4))).ok).toBe(true);
    // Same address and port, other name: a new handshake, which this certificate fails.
    const other = await a.send(toTarget(hop, { serverName: 'other.tls.test' }), options(5));
    expect(other).toMatchObject({ ok: false, reason: 'tls-failed' });
    expect((await a.send(toTarget(hop), options(6))).ok).toBe(true);
    await waitFor(() => good.received.length === 2, 3000);
  });

  it('pins to the peer identity: a CA-valid certificate of someone else fails', async () => {
    await server(named, ports.good);
    const hop = await locate('sips:good.tls.test');
    const a = await client();
    const pinned = await a.send(toTarget(hop, { pin: (id) => id.subjectAltNames.some((s) => s.replace(/^DNS:/, '') === 'sbc.carrier-b.test') }), options(7));
    expect(pinned).toMatchObject({ ok: false, reason: 'tls-failed' });
    expect(pinned.ok ? '' : pinned.detail).toMatch(/pinned identity/);
    const b = await client();
    const right = await b.send(toTarget(hop, { pin: (id) => id.subject.includes('CN=good.tls.test') }), options(8));
    expect(right.ok).toBe(true);
  });

  it('CRLs apply to outbound connections', async () => {
    await server(revoked, ports.revoked);
    const hop = await locate('sips:revoked.tls.test');
    const withoutCrl = await (await client()).send(toTarget(hop), options(9));
    expect(withoutCrl.ok).toBe(true);
    const withCrl = await (await client({ crls: [crl] })).send(toTarget(hop), options(10));
    expect(withCrl).toMatchObject({ ok: false, reason: 'tls-failed' });
    expect(withCrl.ok ? '' : withCrl.detail).toMatch(/CERT_REVOKED|revoked/i);
  });
});
