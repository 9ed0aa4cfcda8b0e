// Signing toward peers through `peergate start` (RFC 4474 rsa-sha256 and SHAKEN), checked on
// what the peer's SIPp actually received, with node:crypto and jose (not peergate's code).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate, createPublicKey, verify } from 'node:crypto';
import { compactVerify } from 'jose';
import { freePorts, runSipp, startUas, scratchDir, stopInOrder } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, type RunningPeergate } from '../helpers/peergate.js';
import { makeTestPki, type TestPki } from '../helpers/identity.js';

let pg: RunningPeergate;
let pki: TestPki;
let p: { peer: number; core: number; ops: number; legacy: number; shaken: number };
let legacyDir: string, shakenDir: string;

beforeAll(async () => {
  const [peer, core, ops, legacy, shaken] = await freePorts(5);
  p = { peer: peer!, core: core!, ops: ops!, legacy: legacy!, shaken: shaken! };
  pki = makeTestPki();
  legacyDir = scratchDir('legacy-uas-');
  shakenDir = scratchDir('shaken-uas-');
  startUas(PEER_IP, p.legacy, { dir: legacyDir, extra: ['-trace_msg'] });
  startUas(PEER_IP, p.shaken, { dir: shakenDir, extra: ['-trace_msg'] });
  pg = await startPeergate({
    listen: [listener('peer-udp', p.peer), listener('core-udp', p.core)],
    core: { targets: [`sip:${CORE_IP}:9`] },
    media: { rtpengine: 'spawn', embedded: { port_min: 47000 + (p.ops % 50) * 20, port_max: 47000 + (p.ops % 50) * 20 + 19 } },
    ops: { port: p.ops },
    log: { level: 'warn' },
    peers: [
      { id: 'legacy', match: { addresses: [`${PEER_IP}/32`] }, targets: [`sip:${PEER_IP}:${p.legacy}`],
        identity: { sign: { rfc4474: { key: pki.rsa.key, certificate_url: 'https://127.0.0.1/rsa.pem' } } } },
      { id: 'modern', match: { addresses: ['127.0.0.5/32'] }, targets: [`sip:${PEER_IP}:${p.shaken}`],
        identity: { sign: { shaken: { attest: 'A', key: pki.sp.key, certificate_url: 'https://127.0.0.1/sp.pem' } } } },
    ],
    routes: [
      { from: 'core', called_prefix: '+44', to: 'legacy' },
      { from: 'core', called_prefix: '+1', to: 'modern' },
      { from: 'peers', to: 'core' },
    ],
  });
}, 60_000);

afterAll(() => stopInOrder(pg));

/** The first INVITE in a sipp message log, as header lines and body. */
function receivedInvite(dir: string): { headers: Map<string, string>; body: string } {
  const log = readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n').replace(/\r\n/g, '\n');
  const start = log.indexOf('INVITE sip:');
  expect(start).toBeGreaterThanOrEqual(0);
  const msg = log.slice(start);
  const headEnd = msg.indexOf('\n\n');
  const headers = new Map<string, string>();
  for (const line of msg.slice(0, headEnd).split('\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0 && !headers.has(line.slice(0, i).trim().toLowerCase())) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  const len = Number(headers.get('content-length') ?? 0);
  const body = msg.slice(headEnd + 2).replace(/\n/g, '\r\n').slice(0, len);
  return { headers, body };
}

const addrSpec = (v: string) => (v.includes('<') ? v.slice(v.indexOf('<') + 1, v.indexOf('>')) : v.split(';')[0]!.trim());

describe('peergate signs toward peers that require it', () => {
  it('RFC 4474: the signature over the request as received verifies with the certificate', async () => {
    const r = await runSipp(['-sn', 'uac', `127.0.0.1:${p.core}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+442079460000', '-m', '1', '-d', '100'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    const { headers, body } = receivedInvite(legacyDir);
    const identity = headers.get('identity');
    expect(identity).toBeDefined();
    expect(headers.get('identity-info')).toMatch(/^<https:\/\/127\.0\.0\.1\/rsa\.pem>;\s*alg=rsa-sha256/);
    // RFC 4474 §9 digest-string, built here from what arrived.
    const [seq, method] = headers.get('cseq')!.split(/\s+/);
    const digest = [addrSpec(headers.get('from')!), addrSpec(headers.get('to')!), headers.get('call-id')!, `${seq} ${method}`,
      headers.get('date')!, addrSpec(headers.get('contact') ?? ''), body].join('|');
    const key = new X509Certificate(readFileSync(pki.rsa.cert)).publicKey;
    expect(verify('sha256', Buffer.from(digest), key, Buffer.from(identity!.replace(/"/g, ''), 'base64'))).toBe(true);
    // Nothing of our trust domain goes to an untrusted peer.
    expect(headers.has('p-asserted-identity')).toBe(false);
  });

  it('SHAKEN: the PASSporT verifies with jose and names the called number', async () => {
    // A caller with a telephone number (SHAKEN signs only TN to TN).
    const r = await runSipp(['-sf', join(import.meta.dirname, '..', 'fixtures', 'sipp-b2bua', 'uac-tn.xml'), `127.0.0.1:${p.core}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+12025550123', '-m', '1'], { timeoutS: 20 });
    expect(r.successful).toBe(1);
    const { headers } = receivedInvite(shakenDir);
    const identity = headers.get('identity')!;
    expect(identity).toMatch(/;info=<https:\/\/127\.0\.0\.1\/sp\.pem>/);
    const jws = identity.split(';')[0]!;
    const spCert = new X509Certificate(readFileSync(pki.sp.cert));
    const { payload, protectedHeader } = await compactVerify(jws, createPublicKey(spCert.publicKey.export({ format: 'pem', type: 'spki' })));
    expect(protectedHeader).toMatchObject({ alg: 'ES256', ppt: 'shaken', typ: 'passport' });
    const claims = JSON.parse(new TextDecoder().decode(payload)) as { attest: string; dest: { tn: string[] } };
    expect(claims.attest).toBe('A');
    expect(claims.dest.tn).toEqual(['12025550123']);
  });
});
