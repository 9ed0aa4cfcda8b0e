// Overload control with real SIPp (issue #18.3): a short burst well above the app's capacity
// gets 503s from the engine quickly, the calls set up before it still end with BYE/200 during
// the burst, and once it is over no call is shed.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterEach, startConnectedApp, startTestEngine } from '../helpers/engine.js';
import { freePort, runSipp, scratchDir, waitFor, writeFile } from '../helpers/procs.js';
import { startOverloadControl, type OverloadGate } from '../../src/engine/overload/index.js';

cleanUpAfterEach();

const FROM = 'From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]T[call_number]';
const VIA = 'Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]';
/** A request of the caller's with no body: `to` ends the To line (the dialog's tag, or none). */
function request(method: string, cseq: number, via: string, to = '[peer_tag_param]', contact = ''): string {
  return `${method} sip:svc@[remote_ip]:[remote_port] SIP/2.0
${via}
${FROM}
To: <sip:svc@[remote_ip]:[remote_port]>${to}
Call-ID: [call_id]
CSeq: ${cseq} ${method}
${contact}Max-Forwards: 70
Content-Length: 0
`;
}

// INVITE; a 503 ends the call after its ACK (logged "shed", its response time in rtd 1);
// a 200 is ACKed and hung up at once.
const BURST_XML = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="overload burst">
  <send retrans="500" start_rtd="1"><![CDATA[
${request('INVITE', 1, VIA, '', 'Contact: <sip:sipp@[local_ip]:[local_port]>\n')}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="503" optional="true" rtd="1" next="shed"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
  <send><![CDATA[
${request('ACK', 1, VIA)}
]]></send>
  <send retrans="500"><![CDATA[
${request('BYE', 2, VIA)}
]]></send>
  <recv response="200" next="end"/>
  <label id="shed"/>
  <send><![CDATA[
${request('ACK', 1, '[last_Via:]')}
]]><action><log message="shed"/></action></send>
  <label id="end"/>
</scenario>
`;

/** Response times (ms) of rtd 1 from a sipp -trace_rtt file in `dir`. */
function rtts(dir: string): number[] {
  const f = readdirSync(dir).find((n) => n.endsWith('_rtt.csv'));
  if (!f) return [];
  return readFileSync(join(dir, f), 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(';')[1])).filter((n) => Number.isFinite(n));
}
const count = (dir: string, what: string) => {
  const f = readdirSync(dir).find((n) => n.endsWith('_logs.log'));
  return f ? readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.trim() === what).length : 0;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

describe('overload control with sipp', () => {
  it('burst above capacity: fast 503s, established calls still hang up, nothing shed after it', async () => {
    const e = await startTestEngine();
    let gate: OverloadGate | undefined;
    try {
      // Capacity is the app's: it answers after 300 ms, so more than 30 unanswered INVITEs means
      // it is behind. Lag is left a high mark and the receive queue off: the test machine is
      // shared, lag and backlog there are not ours.
      gate = startOverloadControl(e, { pendingHigh: 30, pendingLow: 10, lagHighMs: 2000, lagLowMs: 1000, queueHighBytes: 0, queueLowBytes: 0, retryAfterS: 1 });
      await startConnectedApp('slow-uas.mjs', e, { ANSWER_DELAY_MS: '300' }, ['invite']);
      const target = `127.0.0.1:${e.sipPort}`;

      // 10 calls held 4 s: their BYEs arrive in the middle of the burst.
      const held = runSipp(['-sn', 'uac', target, '-i', '127.0.0.1', '-p', String(await freePort()), '-m', '10', '-r', '10', '-d', '4000'], { timeoutS: 30 });
      await new Promise((r) => setTimeout(r, 1500));
      const dir = scratchDir('overload-burst-');
      writeFile(dir, 'burst.xml', BURST_XML);
      const t0 = Date.now();
      // 1,000 calls at 400/s: ≈ 13 times what a 300 ms app with a 30-call backlog can take.
      const burst = await runSipp(['-sf', join(dir, 'burst.xml'), target, '-i', '127.0.0.1', '-p', String(await freePort()),
        '-m', '1000', '-r', '400', '-l', '2000', '-trace_rtt', '-rtt_freq', '1', '-trace_logs'], { dir, timeoutS: 40 });
      const burstMs = Date.now() - t0;
      const heldRun = await held;

      const shedBySipp = count(dir, 'shed');
      const shed = gate.totals();
      expect(burst.failed, burst.output.slice(-2000)).toBe(0);
      expect(burst.successful).toBe(1000);
      // Most of the burst is refused, by the engine, for the app's backlog, and every refusal is one SIPp saw.
      expect(shedBySipp).toBeGreaterThan(500);
      expect(shed.pending_setups).toBe(shedBySipp);
      expect(shed.event_loop_lag + shed.receive_queue + shed.transactions + shed.dialogs).toBe(0);
      // The 503s come fast: the engine answers them itself (no app round trip, no 300 ms wait).
      const times = rtts(dir);
      expect(times.length).toBe(shedBySipp);
      console.log(`burst: ${shedBySipp} of 1000 shed in ${burstMs} ms; 503 response time p50 ${pct(times, 50)} ms, p95 ${pct(times, 95)} ms, max ${Math.max(...times)} ms`);
      expect(pct(times, 50)).toBeLessThan(100);
      expect(pct(times, 95)).toBeLessThan(250); // an answer from the app takes ≥ 300 ms
      // Calls established before the burst: their BYEs, sent during it, were all answered.
      expect(heldRun.failed, heldRun.output.slice(-2000)).toBe(0);
      expect(heldRun.successful).toBe(10);

      // After the burst: back to admitting everything within a few control periods.
      await waitFor(() => gate!.state.loss === 0, 5000, 20, 'loss back to 0');
      const before = gate.totals().pending_setups;
      const after = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.1', '-p', String(await freePort()), '-m', '20', '-r', '20'], { timeoutS: 30 });
      expect(after.failed, after.output.slice(-2000)).toBe(0);
      expect(after.successful).toBe(20);
      expect(gate.totals().pending_setups).toBe(before);

      // The metric: every reason exported, the refusals counted under theirs.
      const text = await client.register.getSingleMetricAsString('peergate_shed_total');
      expect(text).toMatch(/peergate_shed_total\{reason="event_loop_lag"\} 0/);
      expect(text).toMatch(new RegExp(`peergate_shed_total\\{reason="pending_setups"\\} ${before}\\b`));
    } finally {
      gate?.close();
    }
  }, 90_000);
});
