// Pre-admission with workers (src/app/preadmit.ts, docs/engine.md): the primary decides a new
// INVITE's limits on its memory store before the INVITE goes to a B2BUA worker, and the worker
// takes the decision at its limits stage. Real SIPp on both sides, `workers: 2`, memory store:
//   - a peer's session limit holds (never more than N admitted, the (N+1)th gets 503 with
//     Retry-After, counted once) and nothing leaks: after the calls end, N are admitted again;
//   - INVITEs refused before limits leave no slot behind: Max-Forwards 0 (483) is refused by the
//     primary's stage-2 check and takes none, no Contact (400, validation) takes one that is freed;
//   - an X-Peergate-Admission header from the network is neither trusted nor relayed.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, heldCalls, runSipp, scratchDir, startUas, stopAll, waitFor, writeFile } from '../helpers/procs.js';
import { SIPP_FROM, SIPP_INVITE_HEAD, SIPP_SDP_PCMU, sippAck } from '../helpers/sipp-xml.js';
import { burstInvite, openBurst } from '../helpers/burst.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy } from '../helpers/peergate.js';

const LIMIT = 3;
const FORGED = 'X-Peergate-Admission: refused=sessions;retry-after=9;peer=carrier-a;prio=0';

/** One call with a forged admission header: if the engine trusted it, the call would get 503. */
const UAC_FORGED = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac with a forged admission header">
  <send retrans="500"><![CDATA[
${SIPP_INVITE_HEAD}
${FORGED}
Content-Type: application/sdp
Content-Length: [len]

${SIPP_SDP_PCMU}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
${sippAck({ contact: true })}
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
${SIPP_FROM}
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
`;

/** An ordinary INVITE from 127.0.0.2 (the burst socket), answered by whatever limits say. */
function plainInvite(i: number, port: number): Buffer {
  return Buffer.from(burstInvite('plain', i, port).toString('latin1').replace('Max-Forwards: 0', 'Max-Forwards: 70'));
}

/** An INVITE without Contact: refused 400 by validation (stage 1b), before limits. */
function noContact(i: number, port: number): Buffer {
  return Buffer.from(burstInvite('nocontact', i, port).toString('latin1').replace('Max-Forwards: 0', 'Max-Forwards: 70').replace(/Contact: [^\r]*\r\n/, ''));
}

let uasPort: number;
let uasDir: string;

beforeAll(async () => {
  [uasPort] = await freePorts(1) as [number];
  uasDir = scratchDir('preadmit-uas-');
  // -trace_msg: what the core side received, to check that the engine's header never crosses.
  startUas(CORE_IP, uasPort, { dir: uasDir, extra: ['-trace_msg'] });
}, 30_000);

afterAll(() => stopAll());

describe('pre-admission, workers: 2, memory store', () => {
  it('a session limit holds, early refusals and ended calls leave no slot, a network copy of the header is neither trusted nor relayed', async () => {
    const [peerPort, corePort, opsPort] = await freePorts(3) as [number, number, number];
    const pg = await startPeergate(twoSidedPolicy({
      peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'warn', peer: { limits: { sessions: LIMIT } },
    }, { media: { anchoring: false }, workers: 2, lifecycle: { drain_timeout_s: 0 } }));
    const target = `127.0.0.1:${peerPort}`;
    const burst = await openBurst();
    try {
      expect(await pg.metric('peergate_workers')).toBe(2);
      // Refused at admission (483, stage 2): the primary's check refuses them too, no pre-admission.
      await burst.send(Array.from({ length: 6 }, (_, i) => burstInvite('mf0', i, peerPort)), peerPort);
      await waitFor(async () => burst.answered(483) === 6, 10_000, 100, '6 INVITEs answered 483');
      // Refused by validation (400, no Contact) after the engine pre-admitted them: their slots are freed.
      await burst.send(Array.from({ length: 6 }, (_, i) => noContact(i, peerPort)), peerPort);
      await waitFor(async () => burst.answered(400) === 6, 10_000, 100, '6 INVITEs answered 400');
      await waitFor(async () => (await pg.metric('peergate_limit_preadmissions_total', { result: 'unclaimed' })) === 6, 5000, 100, '6 pre-admissions freed');

      // LIMIT held calls: all admitted (the 483s took nothing), spread over the workers.
      const held = heldCalls(target, PEER_IP, LIMIT, 4000);
      await waitFor(async () => (await pg.metric('peergate_active_calls', { peer: 'carrier-a' })) === LIMIT, 15_000, 100, `${LIMIT} calls up`);
      // The (N+1)th: 503 with Retry-After.
      await burst.send([plainInvite(1, peerPort)], peerPort);
      await waitFor(async () => burst.answered(503) === 1, 10_000, 100, 'the 4th answered 503');
      expect(burst.retryAfter.has('plain-1@127.0.0.2')).toBe(true);
      expect(await pg.metric('peergate_active_calls', { peer: 'carrier-a' })).toBe(LIMIT);
      expect((await held).successful).toBe(LIMIT);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 10_000, 100, 'calls ended');

      // Nothing leaked: exactly LIMIT of LIMIT+1 are admitted again.
      const again = await heldCalls(target, PEER_IP, LIMIT + 1, 1000);
      expect(again.successful).toBe(LIMIT);
      expect(again.failed).toBe(1);
      // Each refusal counted once: the limits' counter (where it was decided) equals the B2BUA's.
      await waitFor(async () => (await pg.metric('peergate_refusals_total', { reason: 'limit_sessions' })) === 2, 5000, 100, '2 limit refusals');
      expect(await pg.metric('peergate_limit_refusals_total', { peer: 'carrier-a', reason: 'sessions' })).toBe(2);
      // They went through pre-admission, not the worker's round trip to the store.
      expect(await pg.metric('peergate_limit_preadmissions_total', { result: 'claimed' })).toBe(2 * LIMIT + 2);
      expect(await pg.metric('peergate_limit_preadmissions_total', { result: 'mismatch' })).toBe(0);

      // A forged header is stripped by the engine (else this call would be refused) and the
      // engine's own never reaches the core side.
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 10_000, 100, 'calls ended');
      const dir = scratchDir('preadmit-uac-');
      const forged = await runSipp(['-sf', writeFile(dir, 'forged.xml', UAC_FORGED), '-s', '+15551230000', target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-m', '1'], { dir, timeoutS: 20 });
      expect(forged.successful).toBe(1);
      await waitFor(async () => (await pg.metric('peergate_active_calls')) === 0, 10_000, 100, 'forged call ended');
      const log = readdirSync(uasDir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(uasDir, f), 'latin1')).join('');
      expect(log.match(/^INVITE sip:/gm)?.length ?? 0).toBeGreaterThanOrEqual(2 * LIMIT + 1);
      expect(log).not.toMatch(/x-peergate-admission/i);
    } finally {
      burst.close();
      await pg.stop();
    }
    expect(pg.proc.child.exitCode).toBe(0);
  }, 120_000);
});
