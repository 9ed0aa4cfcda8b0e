// End to end: `peergate start` routing by DNS. nsd serves carrier.test and e164.test signed
// (ldns-signzone) and plain.test unsigned; unbound validates. SIPp plays the core (127.0.0.3)
// and a peer's SBE (127.0.0.2); DNS names are all that the policy says about where they are.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dnsRoutingPolicy, startDns, type RunningDns } from '../helpers/dns.js';
import { freePorts, runSipp, startSipp, scratchDir, waitFor, stopInOrder } from '../helpers/procs.js';
import { coreRoutesByPrefix, CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { inviteAndAck } from '../helpers/engine-sip.js';

let dns: RunningDns;
let pg: RunningPeergate;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number; peerUas: number; dead: number; peerUas6: number; peerUasTcp: number; deadTcp: number };
let peerUasDir: string;
let coreUasDir: string;
let peerUas6Dir: string;

function messageLog(dir: string): string {
  return readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
}

/** An INVITE from the core side; resolves with the final response's text (ACKed). */
const callFromCore = (called: string): Promise<string> => inviteAndAck(ports.coreSip, called, 15_000);

beforeAll(async () => {
  const [peerSip, coreSip, ops, coreUas, peerUas, dead, peerUas6, peerUasTcp, deadTcp] = await freePorts(9);
  ports = { peerSip: peerSip!, coreSip: coreSip!, ops: ops!, coreUas: coreUas!, peerUas: peerUas!, dead: dead!, peerUas6: peerUas6!, peerUasTcp: peerUasTcp!, deadTcp: deadTcp! };
  dns = await startDns([
    {
      origin: 'carrier.test', signed: true,
      records: [
        '@ IN NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp',
        `_sip._udp IN SRV 10 0 ${ports.dead} dead`,
        `_sip._udp IN SRV 20 0 ${ports.peerUas} live`,
        `dead IN A ${PEER_IP}`, `live IN A ${PEER_IP}`, `forged IN A ${PEER_IP}`,
      ].join('\n'),
      tamper: (z) => z.replace(/(forged\.carrier\.test\.\s+\d+\s+IN\s+A\s+)127\.0\.0\.2\b/, '$1127.0.0.66'),
    },
    {
      origin: 'e164.test', signed: true,
      records: [
        '0.3.9.4 IN NAPTR 10 10 "u" "E2U+sip" "!^\\\\+49(.*)$!sip:\\\\1@carrier.test!" .',
        '1.3.9.4 IN NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:victim@evil.test!" .',
      ].join('\n'),
    },
    {
      origin: 'plain.test', signed: false,
      records: [`_sip._udp IN SRV 10 0 ${ports.peerUas} live`, `live IN A ${PEER_IP}`, `_sip._udp.core IN SRV 10 0 ${ports.coreUas} corebox`, `corebox IN A ${CORE_IP}`,
        `_sip._udp.v6 IN SRV 10 0 ${ports.peerUas6} v6host`, 'v6host IN AAAA ::1',
        `_sip._tcp.tcp IN SRV 10 0 ${ports.deadTcp} live`, `_sip._tcp.tcp IN SRV 20 0 ${ports.peerUasTcp} live`].join('\n'),
    },
  ]);
  peerUasDir = scratchDir('peer-uas-');
  coreUasDir = scratchDir('core-uas-');
  // -aa: the UAS answers OPTIONS probes with 200.
  startSipp(['-sn', 'uas', '-i', PEER_IP, '-p', String(ports.peerUas), '-aa', '-trace_msg'], peerUasDir);
  startSipp(['-sn', 'uas', '-i', CORE_IP, '-p', String(ports.coreUas), '-aa', '-trace_msg'], coreUasDir);
  startSipp(['-sn', 'uas', '-i', PEER_IP, '-p', String(ports.peerUasTcp), '-t', 't1', '-aa'], scratchDir('peer-uas-tcp-'));
  peerUas6Dir = scratchDir('peer-uas6-');
  startSipp(['-sn', 'uas', '-i', '::1', '-p', String(ports.peerUas6), '-aa', '-trace_msg'], peerUas6Dir);
  pg = await startPeergate({
    listen: [
      listener('peer-udp', ports.peerSip),
      { name: 'peer-udp6', side: 'peer', transport: 'udp', address: '::1', port: ports.peerSip },
      listener('peer-tcp', ports.peerSip),
      listener('core-udp', ports.coreSip),
    ],
    ...dnsRoutingPolicy(dns, ports.ops),
    core: { targets: ['sip:core.plain.test'] },
    peers: [
      {
        id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, targets: ['sip:carrier.test'], dnssec: 'required',
        health: { probe: true, interval_ms: 400, timeout_ms: 300, failure_threshold: 2, success_threshold: 1 },
      },
      { id: 'carrier-b', match: { addresses: ['127.0.0.4/32'] }, targets: ['sip:plain.test'], dnssec: 'required' },
      { id: 'carrier-c', match: { addresses: ['127.0.0.5/32'] }, targets: ['sip:forged.carrier.test:5060'], dnssec: 'required' },
      { id: 'carrier-6', match: { addresses: ['::1/128'] }, targets: ['sip:v6.plain.test'] },
      { id: 'carrier-t', match: { addresses: ['127.0.0.6/32'] }, targets: ['sip:tcp.plain.test;transport=tcp'] },
    ],
    routes: [
      { from: 'core', called_prefix: '+49', to: 'carrier-a', dnssec: 'required', enum: { suffixes: ['e164.test'], allow: { 'carrier-a': ['carrier.test'] }, otherwise: 'reject' } },
      { from: 'core', called_prefix: '+48', to: 'carrier-a', enum: { suffixes: ['e164.test'], allow: { 'carrier-a': ['carrier.test'] }, otherwise: 'static' } },
      ...coreRoutesByPrefix({ '+44': 'carrier-a', '+33': 'carrier-b', '+34': 'carrier-c', '+81': 'carrier-6', '+82': 'carrier-t' }),
      { from: 'peers', to: 'core' },
    ],
  });
}, 90_000);

afterAll(() => stopInOrder(pg, dns));

describe('routing by DNS through peergate', () => {
  it('peer → core: the core target is an SRV name (unsigned zone, dnssec off)', async () => {
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-s', '+15551230000', '-m', '1', '-d', '100'], { timeoutS: 30 });
    expect(r.successful, r.output.slice(-1500)).toBe(1);
    // The B-leg's Request-URI keeps the name; the packets went to the SRV target's address and port.
    expect(messageLog(coreUasDir)).toMatch(/INVITE sip:\+15551230000@core\.plain\.test SIP\/2\.0/);
  });

  it('OPTIONS probing marks the dead SRV target down; calls skip it without waiting', async () => {
    const deadKey = `udp:${PEER_IP}:${ports.dead}`;
    const liveKey = `udp:${PEER_IP}:${ports.peerUas}`;
    await waitFor(async () => (await pg.metric('peergate_target_up', { target: deadKey })) === 0
      && (await pg.metric('peergate_target_up', { target: liveKey })) === 1, 15_000, 200, 'dead target probed down');
    // Both hops listed with their states (a probe round may be in flight: wait for it).
    const admin = await waitFor(async () => {
      const a = await (await pg.admin('/admin/targets')).json() as { targets: Array<{ target: string; up: boolean; side: string }> };
      return a.targets.some((t) => t.target === deadKey && !t.up) && a.targets.some((t) => t.target === liveKey && t.up) ? a : undefined;
    }, 5000, 100, '/admin/targets with the dead hop down and the live hop up');
    expect(admin!.targets).toEqual(expect.arrayContaining([
      expect.objectContaining({ target: deadKey, up: false, side: 'carrier-a' }),
      expect.objectContaining({ target: liveKey, up: true, side: 'carrier-a' }),
    ]));
    const probeLatency = await pg.metric('peergate_target_probe_seconds_count', { target: liveKey });
    expect(probeLatency).toBeGreaterThan(0);
    const skippedBefore = await pg.metric('peergate_route_skipped_down_total', { side: 'carrier-a' });
    const t0 = Date.now();
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-s', '+442079460000', '-m', '1', '-d', '100'], { timeoutS: 30 });
    expect(r.successful, r.output.slice(-1500)).toBe(1);
    // Far below failover.no_answer_ms (4000): the dead hop was never tried.
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await pg.metric('peergate_route_skipped_down_total', { side: 'carrier-a' })).toBeGreaterThan(skippedBefore);
    const peerSaw = messageLog(peerUasDir);
    expect(peerSaw).toMatch(/INVITE sip:\+442079460000@carrier\.test SIP\/2\.0/);
    // Probes carry nothing of the core (media anchoring is off here, so only the probes are checked).
    const probes = peerSaw.split(/\n-{20,}[^\n]*\n/).map((m) => m.replace(/^[^\n]*\n\s*/, '')).filter((m) => m.startsWith('OPTIONS '));
    expect(probes.length).toBeGreaterThan(0);
    for (const p of probes) {
      expect(p).not.toContain(CORE_IP);
      expect(p).not.toContain(`${ports.coreSip}`);
      expect(p).toMatch(/^OPTIONS sip:carrier\.test SIP\/2\.0/);
    }
  });

  it('ENUM (signed) maps +4930 to the peer; an answer naming a host outside the allowlist is not routed', async () => {
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-s', '+4930', '-m', '1', '-d', '100'], { timeoutS: 30 });
    expect(r.successful, r.output.slice(-1500)).toBe(1);
    expect(messageLog(peerUasDir)).toMatch(/INVITE sip:30@carrier\.test SIP\/2\.0/);
    const evil = await callFromCore('+4931');
    expect(evil).toMatch(/^SIP\/2\.0 404 /);
    expect(evil).not.toContain('evil.test');
    expect(await pg.metric('peergate_enum_rejected_total', { reason: 'not_allowed' })).toBeGreaterThan(0);
    // A number ENUM does not know, on a route with otherwise: static, goes to the route's peers.
    const notFound = await pg.metric('peergate_enum_lookups_total', { result: 'not_found' });
    const s = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-s', '+4812', '-m', '1', '-d', '100'], { timeoutS: 30 });
    expect(s.successful, s.output.slice(-1500)).toBe(1);
    expect(messageLog(peerUasDir)).toMatch(/INVITE sip:\+4812@carrier\.test SIP\/2\.0/);
    expect(await pg.metric('peergate_enum_lookups_total', { result: 'not_found' })).toBe(notFound + 1);
  });

  it('RFC 3263 §4.3: a transport error (TCP refused) on the first SRV target fails over to the next at once', async () => {
    const t0 = Date.now();
    const final = await callFromCore('+8212345');
    // The TCP UAS answers (200 OK → ACK sent by callFromCore); no probing on this peer, and
    // far less than no_answer_ms (4000): the refused connection came back as 503 at once.
    expect(final).toMatch(/^SIP\/2\.0 200 /);
    expect(Date.now() - t0).toBeLessThan(3000);
    // The first hop was tried and failed with the engine's 503 for a transport error.
    expect(pg.proc.output()).toMatch(new RegExp(`"hop":"sip:127\\.0\\.0\\.2:${ports.deadTcp};transport=tcp","status":503[^\n]*"target failed"`));
  });

  it('IPv6: an SRV target with only an AAAA record is reached from the IPv6 listener', async () => {
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-s', '+81312345678', '-m', '1', '-d', '100'], { timeoutS: 30 });
    expect(r.successful, r.output.slice(-1500)).toBe(1);
    const saw = messageLog(peerUas6Dir);
    expect(saw).toMatch(/INVITE sip:\+81312345678@v6\.plain\.test SIP\/2\.0/);
    expect(saw).toMatch(/Via: SIP\/2\.0\/UDP \[::1\]/);
  });

  it('dnssec: required — an unsigned answer and a forged (bogus) one do not route; the caller learns nothing', async () => {
    const before = await pg.metric('peergate_route_unresolved_total', { side: 'carrier-b', reason: 'dnssec' });
    const unsigned = await callFromCore('+33123');
    expect(unsigned).toMatch(/^SIP\/2\.0 503 Service Unavailable/);
    expect(await pg.metric('peergate_route_unresolved_total', { side: 'carrier-b', reason: 'dnssec' })).toBe(before + 1);
    const forged = await callFromCore('+34123');
    expect(forged).toMatch(/^SIP\/2\.0 503 Service Unavailable/);
    expect(await pg.metric('peergate_route_unresolved_total', { side: 'carrier-c', reason: 'dns_error' })).toBeGreaterThan(0);
    for (const resp of [unsigned, forged]) {
      expect(resp).not.toMatch(/plain\.test|carrier\.test|dnssec|resolve|127\.0\.0\.2/i);
    }
    expect(pg.proc.output()).toMatch(/route target not located/);
    expect(messageLog(peerUasDir)).not.toMatch(/INVITE sip:\+3[34]123/);
  });
});
