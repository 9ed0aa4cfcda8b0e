// The core's 100 Trying to an INVITE, deferred as RFC 3261 §17.2.1 allows (engine option
// timers.trying, policy engine.trying_delay_ms): sent 200 ms after the INVITE only when the app
// has not answered by then; at once to a retransmission; at once to every INVITE with 0
// (drachtio-server's behaviour, the default of a bare engine). Real parser, core and layer.
import { describe, expect, it } from 'vitest';
import { coreHarness, startLines, token } from './support.js';

const INVITE = (callId: string, to = '<sip:svc@127.0.0.1>') => `INVITE sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${callId}\r\n` +
  `Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: ${to}\r\nCall-ID: ${callId}\r\nCSeq: 10 INVITE\r\n` +
  `Contact: <sip:a@127.0.0.1:6000>\r\nContent-Length: 0\r\n\r\n`;
const at = (h: ReturnType<typeof coreHarness>) => h.sent.map((s) => `${s.at} ${s.text.split('\r\n')[0]}`);

describe('the core\'s 100 Trying, deferred 200 ms (RFC 3261 §17.2.1)', () => {
  it('an app that does not answer within 200 ms: the 100 goes out then, in drachtio\'s layout, to the INVITE\'s source', () => {
    const h = coreHarness({ routes: ['invite'], tryingDelayMs: 200 });
    h.feed(INVITE('slow-1'));
    expect(h.frames).toHaveLength(1); // the app has it at once
    h.clock.advance(199);
    expect(h.sent).toHaveLength(0);
    h.clock.advance(1);
    expect(at(h)).toEqual(['200 SIP/2.0 100 Trying']);
    expect(h.sent[0]!.text).toBe('SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-slow-1;rport=6000\r\n' +
      'From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: slow-1\r\nCSeq: 10 INVITE\r\nContent-Length: 0\r\n\r\n');
    expect(h.sent[0]!.target).toMatchObject({ address: '127.0.0.1', port: 6000 });
    // The app's answers go out as before.
    h.fromApp('m1', token(h.frames[0]!, 8), '', 'SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n');
    h.clock.advance(1_000);
    expect(startLines(h.sent)).toEqual(['SIP/2.0 100 Trying', 'SIP/2.0 180 Ringing']);
  });

  it('an app that answers 180 or a final within 200 ms: no 100 at all', () => {
    const h = coreHarness({ routes: ['invite'], tryingDelayMs: 200 });
    h.feed(INVITE('fast-1'));
    h.feed(INVITE('fast-2'));
    h.clock.advance(40);
    h.fromApp('m1', token(h.frames[0]!, 8), '', 'SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n');
    h.clock.advance(100);
    h.fromApp('m2', token(h.frames[1]!, 8), '', 'SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n');
    h.clock.advance(5_000);
    expect(at(h).filter((l) => !l.endsWith('486 Busy Here'))).toEqual(['40 SIP/2.0 180 Ringing']);
    expect(startLines(h.sent)).not.toContain('SIP/2.0 100 Trying');
  });

  it('a retransmitted INVITE before 200 ms gets the 100 at once; no second one at the deadline; it reaches the app once', () => {
    const h = coreHarness({ routes: ['invite'], tryingDelayMs: 200 });
    h.feed(INVITE('rtx-1'));
    h.clock.advance(150);
    h.feed(INVITE('rtx-1'));
    expect(at(h)).toEqual(['150 SIP/2.0 100 Trying']);
    h.clock.advance(500);
    expect(h.sent).toHaveLength(1);
    expect(h.frames).toHaveLength(1);
  });

  it('no app for the INVITE (503) or a CANCEL first (487): no 100', () => {
    const h = coreHarness({ routes: [], tryingDelayMs: 200 });
    h.feed(INVITE('none-1'));
    h.clock.advance(450); // past the 100's deadline, before Timer G resends the final
    expect(startLines(h.sent)).toEqual(['SIP/2.0 503 Service Unavailable']);
    const c = coreHarness({ routes: ['invite'], tryingDelayMs: 200 });
    c.feed(INVITE('cancel-1'));
    c.clock.advance(50);
    c.feed('CANCEL sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-cancel-1\r\nMax-Forwards: 70\r\n' +
      'From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: cancel-1\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n');
    c.clock.advance(400);
    expect(startLines(c.sent)).toEqual(['SIP/2.0 200 OK', 'SIP/2.0 487 Request Terminated']);
  });

  it('a re-INVITE for a dialog that does not exist gets its 481 and no 100', () => {
    const h = coreHarness({ routes: ['invite'], tryingDelayMs: 200 });
    h.feed(INVITE('gone-1', '<sip:svc@127.0.0.1>;tag=nope'));
    h.clock.advance(450);
    expect(startLines(h.sent)).toEqual(['SIP/2.0 481 Call/Transaction Does Not Exist']);
  });

  it('0 (and a bare engine\'s default): the 100 at once, before the app hears of the INVITE, as drachtio-server', () => {
    for (const tryingDelayMs of [0, undefined]) {
      const h = coreHarness({ routes: ['invite'], tryingDelayMs });
      h.feed(INVITE('now-1'));
      expect(at(h)).toEqual(['0 SIP/2.0 100 Trying']);
      h.feed(INVITE('now-1'));
      expect(h.sent).toHaveLength(1); // not repeated (golden trace 05)
    }
  });
});
