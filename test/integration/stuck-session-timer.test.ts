// Issue #16.2, RFC 4028 with SIPp on both sides of `peergate start` (about a minute: the
// smallest session interval RFC 4028 allows is 90 s):
// * the sides negotiate Session-Expires: 90 and then never refresh: peergate ends the call
//   min(32, 90/3) = 30 s before expiry, i.e. at 60 s, BYE with Reason on both legs;
// * the sides negotiate nothing: peergate refreshes both legs with UPDATE every 45 s; the
//   caller answers 481 (it has forgotten the call), so peergate ends it on both legs.
import { describe, it, expect, afterAll } from 'vitest';
import { freePorts, runSipp, startSipp, stopAll, scratchDir, writeFile, waitFor } from '../helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../helpers/peergate.js';
import { sippByeWithReason, SIPP_OK_TO_LAST, SIPP_SDP_PCMU } from '../helpers/sipp-xml.js';

const SDP = `Content-Type: application/sdp
Content-Length: [len]

${SIPP_SDP_PCMU}`;
const REASON = 'cause=408;text="Session Expired"';
const HDR = (dir: 'req' | 'res') => dir === 'req' ? `Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]` : `[last_Via:]
[last_From:]`;
const BYE_WITH_REASON = sippByeWithReason(REASON, 80000);

function uac(extra: string, middle: string): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
${HDR('req')}
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Allow: INVITE, ACK, BYE, CANCEL, UPDATE
${extra}${SDP}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
${HDR('req')}
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

  ]]></send>
${middle}
${BYE_WITH_REASON}
</scenario>
`;
}

function uas(extra: string, middle: string): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 200 OK
${HDR('res')}
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Allow: INVITE, ACK, BYE, CANCEL, UPDATE
${extra}${SDP}
  ]]></send>
  <recv request="ACK"/>
${middle}
${BYE_WITH_REASON}
</scenario>
`;
}

afterAll(() => stopAll());

async function run(name: string, uacXml: string, uasXml: string, minS: number): Promise<void> {
  const dir = scratchDir(`st-${name}-`);
  const [uasPort, peerPort, corePort, ops] = await freePorts(4) as [number, number, number, number];
  const callee = startSipp(['-sf', writeFile(dir, 'uas.xml', uasXml), '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-m', '1']);
  const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort: ops, coreTarget: `sip:127.0.0.3:${uasPort}`, logLevel: 'error' }, {
    media: { anchoring: false },
    sessions: { session_timer: { expires_s: 90, refresh: 'update' } },
  }));
  try {
    const t0 = Date.now();
    const r = await runSipp(['-sf', writeFile(dir, 'uac.xml', uacXml), `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1'], { timeoutS: 85 });
    expect(r.successful, `${name}: ${r.output.split("\n").filter((l) => /error|unexpected|Aborting|Failed|timeout/i.test(l)).slice(0, 20).join("\n")}`).toBe(1);
    expect(await callee.exited, `${name}: callee`).toBe(0);
    expect((Date.now() - t0) / 1000).toBeGreaterThanOrEqual(minS);
    await waitFor(async () => (await pg.metric('peergate_calls_total', { result: 'session_expired' })) === 1, 5000, 100, `${name}: session_expired`);
    expect(await pg.metric('peergate_active_calls')).toBe(0);
    expect(await pg.metric('peergate_limit_sessions_local')).toBe(0);
  } finally {
    await pg.stop();
    await callee.stop();
  }
}

describe('RFC 4028 session timers (issue #16.2)', () => {
  it('a negotiated session nobody refreshes ends at interval - 30 s; a dead caller fails our UPDATE refresh', async () => {
    const negotiated = run('negotiated',
      uac('Supported: timer\nSession-Expires: 90;refresher=uac\n', ''),
      uas('Require: timer\nSession-Expires: 90;refresher=uac\n', ''),
      55);
    const refreshed = run('refreshed',
      uac('', `  <recv request="UPDATE" timeout="80000"/>
  <send><![CDATA[
SIP/2.0 481 Call/Transaction Does Not Exist
${HDR('res')}
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

  ]]></send>`),
      uas('', `  <recv request="UPDATE" timeout="80000"/>
${SIPP_OK_TO_LAST}`),
      40);
    await Promise.all([negotiated, refreshed]);
    // Each call must end within SIPp's 85 s from its INVITE (runSipp timeoutS); the test's own
    // limit adds the two nodes' start, which a busy machine (this file runs beside others) slows.
  }, 120_000);
});
