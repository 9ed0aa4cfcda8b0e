// Issue #16.2: nothing holds a slot for ever. Real SIPp on both sides of `peergate start`:
// a call longer than the maximum duration, and an anchored call with no media, are ended by
// peergate with BYE on both legs carrying an RFC 3326 Reason, counted by result, and their
// slots freed; a Session-Expires below our Min-SE gets 422 with Min-SE (RFC 4028 §6).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePorts, runSipp, startSipp, stopAll, scratchDir, writeFile, waitFor, type Proc } from '../helpers/procs.js';
import { startTwoSided, type RunningPeergate } from '../helpers/peergate.js';
import { sippAck, sippByeWithReason, SIPP_INVITE_HEAD, SIPP_SDP_PCMU } from '../helpers/sipp-xml.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';

const SDP = SIPP_SDP_PCMU;

/** A caller that holds the call until the far end hangs up; the BYE it gets must carry `reason`. */
function uacWaitsForBye(reason: string, extraHeader = ''): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac waits for BYE">
  <send retrans="500"><![CDATA[
${SIPP_INVITE_HEAD}
${extraHeader}Content-Type: application/sdp
Content-Length: [len]

${SDP}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
${sippAck({ contact: true })}
${sippByeWithReason(reason, 20000)}
</scenario>
`;
}

/** A callee that answers and waits for BYE, which must carry `reason`. */
function uasWaitsForBye(reason: string): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas waits for BYE">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

${SDP}
  ]]></send>
  <recv request="ACK"/>
${sippByeWithReason(reason)}
</scenario>
`;
}

const UAC_422 = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac asks for a too small session interval">
  <send retrans="500"><![CDATA[
${SIPP_INVITE_HEAD}
Supported: timer
Session-Expires: 30
Content-Type: application/sdp
Content-Length: [len]

${SDP}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="422">
    <action><ereg regexp="^ *90" search_in="hdr" header="Min-SE:" check_it="true" assign_to="m"/></action>
  </recv>
${sippAck({ uri: 'sip:[service]@[remote_ip]:[remote_port]' })}
  <Reference variables="m"/>
</scenario>
`;

const N = 5;
let dir: string;

beforeAll(() => { dir = scratchDir('stuck-endings-'); });
afterAll(() => stopAll());

function node(uasPort: number, extra: Record<string, unknown>): Promise<{ pg: RunningPeergate; target: string }> {
  return startTwoSided(`sip:127.0.0.3:${uasPort}`, extra);
}

async function endedByPeergate(extra: Record<string, unknown>, reason: string, result: string): Promise<void> {
  const [uasPort] = await freePorts(1) as [number];
  const uasXml = writeFile(dir, `uas-${result}.xml`, uasWaitsForBye(reason));
  const uacXml = writeFile(dir, `uac-${result}.xml`, uacWaitsForBye(reason));
  const uas: Proc = startSipp(['-sf', uasXml, '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', '-m', String(N)]);
  const { pg, target } = await node(uasPort, extra);
  try {
    const t0 = Date.now();
    const r = await runSipp(['-sf', uacXml, target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', String(N), '-r', String(N), '-l', String(N)], { timeoutS: 30 });
    expect(r.failed, r.output.slice(-2000)).toBe(0);
    expect(r.successful, r.output.slice(-2000)).toBe(N);
    expect(await uas.exited).toBe(0); // the callee got its BYE with the Reason too
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    await waitFor(async () => (await pg.metric('peergate_calls_total', { result })) === N, 5000, 100, `${N} calls ended ${result}`);
    expect(await pg.metric('peergate_active_calls')).toBe(0);
    expect(await pg.metric('peergate_limit_sessions_local')).toBe(0);
    await waitFor(async () => (await pg.metric('peergate_engine_dialogs')) === 0, 5000, 100, 'no engine dialog');
  } finally {
    await pg.stop();
    await uas.stop();
  }
}

describe('peergate ends calls nobody ends (issue #16.2)', () => {
  it('maximum call duration: BYE on both legs with Reason, counted max_duration, slot freed', async () => {
    await endedByPeergate({ media: { anchoring: false }, sessions: { max_duration_s: 2 } }, 'cause=200;text="Maximum Call Duration"', 'max_duration');
  }, 60_000);

  it('a per-peer max duration overrides the global one', async () => {
    await endedByPeergate({
      media: { anchoring: false }, sessions: { max_duration_s: 3600 },
      peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, sessions: { max_duration_s: 2 } }],
    }, 'cause=200;text="Maximum Call Duration"', 'max_duration');
  }, 60_000);

  describe('media anchored', () => {
    let rtp: TestRtpengine;
    beforeAll(async () => { rtp = await startRtpengine({ portSpan: 200 }); });
    afterAll(async () => { await rtp?.stop(); });

    it('no media for media_timeout_s (rtpengine last packet): BYE on both legs, counted media_timeout, rtpengine freed', async () => {
      await endedByPeergate({
        media: { anchoring: true, rtpengine: [{ address: rtp.address }] },
        sessions: { media_timeout_s: 2, reconcile_interval_s: 1 },
      }, 'cause=408;text="Media Timeout"', 'media_timeout');
      await waitFor(async () => (await rtp.calls()).length === 0, 5000, 100, 'rtpengine holds no call');
    }, 60_000);
  });

  it('Session-Expires below our Min-SE gets 422 with Min-SE (RFC 4028 §6), no slot taken', async () => {
    const [uasPort] = await freePorts(1) as [number];
    const uacXml = writeFile(dir, 'uac-422.xml', UAC_422);
    const { pg, target } = await node(uasPort, { media: { anchoring: false } });
    try {
      const r = await runSipp(['-sf', uacXml, target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1'], { timeoutS: 15 });
      expect(r.failed, r.output.slice(-2000)).toBe(0);
      expect(r.successful, r.output.slice(-2000)).toBe(1);
      expect(await pg.metric('peergate_refusals_total', { reason: 'session_interval' })).toBe(1);
      expect(await pg.metric('peergate_limit_sessions_local')).toBe(0);
    } finally { await pg.stop(); }
  }, 30_000);
});
