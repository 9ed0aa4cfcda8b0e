// Issue #18.3: the overload gate's 503 is stateless (RFC 3261 §8.2.7). With one call held over
// `overload.max_dialogs: 1` every new INVITE is refused; SIPp (a real UAC: it ACKs each 503 on the
// INVITE's branch) sends a few hundred. Each gets one 503 with Retry-After and nothing is left
// of it in the node: no server transaction waiting out Timer I, no dialog, and its ACK reaches
// nothing. A stateful refusal would keep every one for T4 = 5 s after its ACK.
import { join } from 'node:path';
import { describe, expect, it, afterAll } from 'vitest';
import { countsLeft, LAG_BACKLOG_SIGNALS_OFF, NOTHING_LEFT, RECEIVE_QUEUE_OFF } from '../helpers/burst.js';
import { freePorts, heldCalls, runSipp, startUas, stopAll, waitFor } from '../helpers/procs.js';
import { PEER_IP, startTwoSided } from '../helpers/peergate.js';

afterAll(stopAll);

const UAC_REFUSED = join(import.meta.dirname, '..', 'fixtures', 'sipp', 'uac-refused.xml');
const CALLS = 300;
/** T1 of the node: the held call's transactions are gone after 64·T1 = 16 s. */
const T1 = 250;

describe('overload control: stateless refusal (issue #18.3)', () => {
  it('every refused INVITE gets one 503 and leaves no transaction; its ACK is dropped', async () => {
    const [uasPort] = await freePorts(1) as [number];
    startUas('127.0.0.3', uasPort);
    const { pg, target } = await startTwoSided(`sip:127.0.0.3:${uasPort}`, {
      media: { anchoring: false },
      engine: { sip_timers: { t1_ms: T1 } },
      // Two dialogs (the held call's legs) are over the mark: loss 100 % from the first interval
      // (dialogs is not a stall-prone signal: no onset wait). Every other signal is kept out of
      // it: a busy machine's start-up lag once pushed loss to 100 % before the held call existed
      // (and refused it), and it then fell while SIPp ran, so calls were admitted.
      overload: { max_dialogs: 1, step_percent: 100, max_loss_percent: 100, retry_after_s: 3, ...LAG_BACKLOG_SIGNALS_OFF, ...RECEIVE_QUEUE_OFF },
    });
    const held = heldCalls(target, PEER_IP, 1, 12_000);
    await waitFor(async () => (await pg.metric('peergate_engine_dialogs')) === 2, 10_000, 50, 'the held call up');
    await waitFor(async () => (await pg.metric('peergate_overload_loss_percent')) === 100, 10_000, 50, 'loss at 100 %');
    const serverBefore = await pg.metric('peergate_engine_server_transactions');

    const refused = await runSipp(['-sf', UAC_REFUSED, target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-r', '200', '-m', String(CALLS), '-l', String(CALLS)], { timeoutS: 20 });
    // Each call got its 503 (anything else fails the scenario) and SIPp sent the ACK.
    expect(refused.failed, refused.output.slice(-2000)).toBe(0);
    expect(refused.successful).toBe(CALLS);
    expect(await pg.metric('peergate_shed_total', { reason: 'dialogs' })).toBe(CALLS);
    // Within T4 of the last ACKs: a stateful refusal would still hold up to CALLS server
    // transactions (Timer I); the stateless one holds only what the held call had before.
    expect(await pg.metric('peergate_engine_server_transactions')).toBeLessThanOrEqual(serverBefore);
    expect(await pg.metric('peergate_engine_dialogs')).toBe(2);
    // No ACK of a 503 reached a worker as a request, and no call was made of one.
    expect(await pg.metric('peergate_calls_total')).toBe(0);

    const heldRun = await held;
    expect(heldRun.failed, heldRun.output.slice(-2000)).toBe(0);
    expect(heldRun.successful).toBe(1);
    expect(await countsLeft(pg, T1)).toEqual(NOTHING_LEFT);
  }, 60_000);
});
