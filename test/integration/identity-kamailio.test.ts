// Interop: Kamailio from Debian signs INVITEs (auth_identity: RFC 4474 RSA; secsipid: SHAKEN
// PASSporT, EC P-256) sent by SIPp; the test captures the signed INVITE on a UDP socket and
// verifies it with peergate's verifier, certificates served by a local HTTPS server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdentityVerifier } from '../../src/sbc/identity/verify.js';
import { GlobalIdentitySchema, PeerIdentitySchema } from '../../src/sbc/identity/schema.js';
import { freePorts, runSipp, scratchDir, startProcess, stopAll, waitFor, writeFile, type Proc } from '../helpers/procs.js';
import { kamailioSignerConfig, makeTestPki, parseRawRequest, startCertServer, type CertServer, type TestPki } from '../helpers/identity.js';

const SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="identity interop">
  <send retrans="500">
    <![CDATA[
INVITE sip:+14155550123@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Alice" <sip:+12025550142@127.0.0.1>;tag=[pid]SIPpTag00[call_number]
To: <sip:+14155550123@127.0.0.1>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:+12025550142@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 6000 RTP/AVP 0

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="486"/>
  <send>
    <![CDATA[
ACK sip:+14155550123@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Alice" <sip:+12025550142@127.0.0.1>;tag=[pid]SIPpTag00[call_number]
To: <sip:+14155550123@127.0.0.1>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
</scenario>
`;

/** A UDP "UAS" that records INVITEs and answers 486 so the transaction ends cleanly. */
function captureInvites(sock: Socket): Buffer[] {
  const got: Buffer[] = [];
  sock.on('message', (msg, rinfo) => {
    const text = msg.toString('latin1');
    if (!text.startsWith('INVITE ')) return;
    got.push(msg);
    const head = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
    const keep = head.filter((l) => /^(via|from|call-id|cseq|to)\s*:/i.test(l)).map((l) => (/^to\s*:/i.test(l) ? `${l};tag=uas486` : l));
    sock.send(Buffer.from(`SIP/2.0 486 Busy Here\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`), rinfo.port, rinfo.address);
  });
  return got;
}

let pki: TestPki;
let srv: CertServer;

beforeAll(async () => {
  pki = makeTestPki();
  srv = await startCertServer(pki, {
    '/stir.pem': { body: readFileSync(pki.sp.cert) },
    '/rsa.pem': { body: readFileSync(pki.rsa.cert) },
  });
});
afterAll(async () => { await stopAll(); await srv?.close(); });

async function signedThroughKamailio(mode: 'rfc4474' | 'shaken'): Promise<ReturnType<typeof parseRawRequest>> {
  const dir = scratchDir(`kam-${mode}-`);
  const run = join(dir, 'run');
  mkdirSync(run);
  const [kPort, uasPort, sippPort] = await freePorts(3) as [number, number, number];
  const certUrl = srv.url(mode === 'rfc4474' ? '/rsa.pem' : '/stir.pem');
  const cfg = writeFile(dir, 'kamailio.cfg', kamailioSignerConfig({ listen: `127.0.0.1:${kPort}`, forwardTo: `127.0.0.1:${uasPort}`, pki, certUrl, mode }));
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(uasPort, '127.0.0.1', r));
  const got = captureInvites(sock);
  let kam: Proc | undefined;
  try {
    kam = startProcess('kamailio', ['-f', cfg, '-DD', '-E', '-Y', run, '-P', join(run, 'kamailio.pid'), '-m', '64', '-M', '8', '-w', run]);
    await waitFor(() => kam!.output().includes('INFO: <core>') || kam!.output().includes('listening on'), 5000, 50, 'kamailio start').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 400));
    const scen = writeFile(dir, 'uac.xml', SCENARIO);
    const res = await runSipp(['127.0.0.1:' + kPort, '-sf', scen, '-m', '1', '-i', '127.0.0.1', '-p', String(sippPort), '-t', 'u1'], { dir, timeoutS: 10 });
    await waitFor(() => got.length > 0, 3000, 25, `signed INVITE from kamailio (sipp code ${res.code}; kamailio: ${kam.output().slice(-1500)})`);
    return parseRawRequest(got[0]!);
  } finally {
    await kam?.stop();
    sock.close();
  }
}

function verifier(): IdentityVerifier {
  return new IdentityVerifier({
    global: GlobalIdentitySchema.parse({
      trust_anchors: [pki.stiRoot], rfc4474_trust_anchors: [pki.rsa.cert],
      fetch: { allow_hosts: ['127.0.0.1'], tls_ca: [pki.https.ca], timeout_ms: 2000 },
    }),
  });
}

describe('interop: Kamailio signs, peergate verifies', () => {
  it('verifies an RFC 4474 Identity added by auth_identity (rsa-sha1)', async () => {
    const req = await signedThroughKamailio('rfc4474');
    expect(req.headers('Identity-Info')[0]).toMatch(/alg=rsa-sha1/);
    const r = await verifier().verify(req, PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc4474'], max_age_s: 60 }), 'kamailio');
    expect(r.detail).toBeUndefined();
    expect(r).toMatchObject({ verdict: 'pass', standard: 'rfc4474', verstat: 'TN-Validation-Passed', origTn: '12025550142' });
    // The same INVITE with its body changed no longer verifies.
    const tampered = { ...req, body: Buffer.from(req.body.toString().replace('6000', '6002')) };
    expect(await verifier().verify(tampered, PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc4474'] }))).toMatchObject({ status: 438 });
  });

  it('verifies a SHAKEN PASSporT added by secsipid (ES256)', async () => {
    const req = await signedThroughKamailio('shaken');
    expect(req.headers('Identity')[0]).toMatch(/ppt=shaken/);
    const v = verifier();
    const pol = PeerIdentitySchema.parse({ mode: 'required', standards: ['rfc8224'] });
    const r = await v.verify(req, pol, 'kamailio');
    expect(r.detail).toBeUndefined();
    expect(r).toMatchObject({ verdict: 'pass', standard: 'rfc8224', attest: 'A', origTn: '12025550142', destTns: ['14155550123'] });
    expect(r.origid).toBeTruthy();
    // Replayed as is: refused.
    expect(await v.verify(req, pol)).toMatchObject({ status: 403, reason: 'Replayed Identity' });
  });
});
