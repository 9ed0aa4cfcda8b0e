// RFC 5922 outbound TLS through `peergate start`: a peer's `sips:` target is found in DNS
// (SRV on a real nsd+unbound) and reached at an address; the B2BUA hands the engine the name
// the server must prove (X-Peergate-TLS-Server-Name) and, with `tls_pin`, the peer's identity
// (X-Peergate-TLS-Pin). The engine checks the certificate against the name (not the IP), sends
// it as SNI, enforces the pin, and never puts either header on the wire.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer as createTlsServer, type Server, type TLSSocket } from 'node:tls';
import { dnsRoutingPolicy, startDns, type RunningDns } from '../helpers/dns.js';
import { freePorts, stopInOrder } from '../helpers/procs.js';
import { coreRoutesByPrefix, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { StreamReader, header, inviteAndAck } from '../helpers/engine-sip.js';
import { makePki, issueCert, type TestPki, type TestCert } from '../helpers/tls.js';

let pki: TestPki;
let dns: RunningDns;
let pg: RunningPeergate;
let ports: { core: number; peerTls: number; ops: number; good: number; ip: number };
const servers: Server[] = [];

/** A TLS UAS: answers INVITE/BYE/OPTIONS with 200, keeps every message and the SNI it saw. */
interface TlsUas { messages: string[]; sni: Array<string | false | null> }

async function tlsUas(cert: TestCert, port: number): Promise<TlsUas> {
  const uas: TlsUas = { messages: [], sni: [] };
  const srv = createTlsServer({ key: cert.key, cert: cert.cert }, (s: TLSSocket) => {
    uas.sni.push(s.servername);
    const r = new StreamReader(s);
    const answer = (m: string) => {
      uas.messages.push(m);
      const method = /^(\w+) /.exec(m)?.[1];
      if (!method || method === 'ACK' || m.startsWith('SIP/')) return;
      const to = header(m, 'To') ?? '';
      const lines = [
        'SIP/2.0 200 OK', ...m.split('\r\n').filter((l) => /^Via\s*:/i.test(l)),
        `From: ${header(m, 'From')}`, `To: ${/;tag=/.test(to) ? to : `${to};tag=uas${port}`}`,
        `Call-ID: ${header(m, 'Call-ID')}`, `CSeq: ${header(m, 'CSeq')}`,
        `Contact: <sips:uas@127.0.0.1:${port};transport=tls>`, 'Content-Length: 0', '', '',
      ];
      s.write(lines.join('\r\n'));
    };
    const poll = setInterval(() => { while (r.messages.length) answer(r.messages.shift()!); }, 10);
    s.on('close', () => clearInterval(poll));
  });
  await new Promise<void>((res) => srv.listen(port, '127.0.0.1', () => res()));
  servers.push(srv);
  return uas;
}

/** An INVITE from the core side; resolves with the final response's text (ACKed). */
const callFromCore = (called: string): Promise<string> => inviteAndAck(ports.core, called);

let good: TlsUas;
let ipOnly: TlsUas;
const invitesTo = (u: TlsUas, called: string) => u.messages.filter((m) => m.startsWith(`INVITE sips:${called}@`));

beforeAll(async () => {
  pki = makePki();
  const named = issueCert(pki.ca, 'named', { san: ['DNS:good.tls.test'], subject: '/O=Carrier A/CN=good.tls.test' });
  const ipCert = issueCert(pki.ca, 'iponly', { san: ['IP:127.0.0.1'], subject: '/CN=127.0.0.1' });
  const [core, peerTls, ops, goodPort, ipPort] = await freePorts(5);
  ports = { core: core!, peerTls: peerTls!, ops: ops!, good: goodPort!, ip: ipPort! };
  good = await tlsUas(named, ports.good);
  ipOnly = await tlsUas(ipCert, ports.ip);
  dns = await startDns([{
    origin: 'tls.test', signed: false,
    records: [
      `_sips._tcp.good IN SRV 10 0 ${ports.good} box`,
      `_sips._tcp.ipcert IN SRV 10 0 ${ports.ip} box`,
      'box IN A 127.0.0.1',
    ].join('\n'),
  }]);
  const peer = (id: string, last: number, targets: string[], extra: Record<string, unknown> = {}) =>
    ({ id, transport: 'tls', match: { addresses: [`127.0.0.${last}/32`] }, targets, ...extra });
  pg = await startPeergate({
    listen: [listener('peer-tls', ports.peerTls), listener('core-udp', ports.core)],
    // The test CA vouches for the servers we connect to (server CAs default to client_cas).
    tls: { certificate: pki.server.certFile, key: pki.server.keyFile, client_cas: [pki.ca.certFile], require_client_cert: false },
    ...dnsRoutingPolicy(dns, ports.ops),
    core: { targets: ['sip:127.0.0.3:5060'] },
    peers: [
      peer('carrier-a', 21, ['sips:good.tls.test']),
      peer('carrier-b', 22, ['sips:ipcert.tls.test']),
      peer('carrier-c', 23, ['sips:ipcert.tls.test', 'sips:good.tls.test']),
      { ...peer('carrier-p', 24, ['sips:good.tls.test'], { tls_pin: true }), match: { addresses: ['127.0.0.24/32'], certificate: { subject_alt_names: ['sbc.someone-else.test'] } } },
      { ...peer('carrier-q', 25, ['sips:good.tls.test'], { tls_pin: true }), match: { addresses: ['127.0.0.25/32'], certificate: { subject_alt_names: ['good.tls.test'] } } },
    ],
    routes: [
      ...coreRoutesByPrefix({ '+44': 'carrier-a', '+33': 'carrier-b', '+34': 'carrier-c', '+35': 'carrier-p', '+36': 'carrier-q' }),
      { from: 'peers', to: 'core' },
    ],
  });
}, 90_000);

afterAll(async () => {
  await pg?.stop();
  for (const s of servers) await new Promise((r) => s.close(() => r(undefined)));
  await stopInOrder(dns);
});

/** Nothing internal in a failure response: no TLS error text, no names or addresses of the targets. */
function expectOpaque(final: string): void {
  expect(final).toMatch(/^SIP\/2\.0 5\d\d /);
  expect(final).not.toMatch(/tls|cert|altname|ipcert|good\.tls|pin|x-peergate/i);
  expect(final).not.toContain(String(ports.ip));
  expect(final).not.toContain(String(ports.good));
}

describe('outbound TLS to a DNS-named sips: peer through peergate (RFC 5922)', () => {
  it('the server whose certificate names the URI host gets the call, with that name as SNI', async () => {
    const final = await callFromCore('+441234');
    expect(final).toMatch(/^SIP\/2\.0 200 /);
    const inv = invitesTo(good, '+441234');
    expect(inv).toHaveLength(1);
    // The Request-URI keeps the name; the packets went to the SRV target's address.
    expect(inv[0]).toMatch(/^INVITE sips:\+441234@good\.tls\.test SIP\/2\.0/);
    expect(good.sni).toContain('good.tls.test');
  });

  it('a server whose certificate names only the IP is refused: an opaque 5xx, nothing sent to it', async () => {
    const final = await callFromCore('+331234');
    expectOpaque(final);
    expect(ipOnly.messages).toHaveLength(0);
  });

  it('fails over from the IP-only certificate to the next target', async () => {
    const final = await callFromCore('+341234');
    expect(final).toMatch(/^SIP\/2\.0 200 /);
    expect(invitesTo(good, '+341234')).toHaveLength(1);
    expect(ipOnly.messages).toHaveLength(0);
  });

  it('tls_pin: a CA-valid certificate of someone else is refused; the pinned identity gets the call', async () => {
    expectOpaque(await callFromCore('+351234'));
    expect(invitesTo(good, '+351234')).toHaveLength(0);
    expect(await callFromCore('+361234')).toMatch(/^SIP\/2\.0 200 /);
    expect(invitesTo(good, '+361234')).toHaveLength(1);
  });

  it('the X-Peergate TLS headers never reach the target', () => {
    expect(good.messages.length).toBeGreaterThan(0);
    for (const m of good.messages) expect(m).not.toMatch(/^X-Peergate-/im);
  });
});
