// The UAS side of the core without sockets (server.ts, invite-server.ts, app-responses.ts):
// RFC 3261 §12.2.2 CSeq ordering and target refresh, §13.3.1.4 2xx retransmission until the ACK
// and the ACK timeout BYE, RFC 3262 reliable provisionals until the PRACK, §9.2 CANCEL.
import { describe, expect, it } from 'vitest';
import { coreHarness, startLines, token } from './support.js';

const INVITE = (callId: string, extra = '') => `INVITE sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${callId}\r\n` +
  `Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 10 INVITE\r\n` +
  `Contact: <sip:a@127.0.0.1:6000>\r\n${extra}Content-Length: 0\r\n\r\n`;

/** A request from the caller inside the dialog (To tag `tag`). */
const inDialog = (method: string, callId: string, tag: string, cseq: number, branch: string, extra = '') =>
  `${method} sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-${branch}\r\nMax-Forwards: 70\r\n` +
  `From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>;tag=${tag}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} ${method}\r\n${extra}Content-Length: 0\r\n\r\n`;

/** Deliver the INVITE and let the app answer it with `status`; returns the txnId and our To tag. */
function answered(h: ReturnType<typeof coreHarness>, callId: string, status = 200, appExtra = '', inviteExtra = '') {
  h.feed(INVITE(callId, inviteExtra));
  const txnId = token(h.frames.shift()!, 8);
  h.fromApp('m1', txnId, '', `SIP/2.0 ${status} X\r\n${appExtra}Content-Length: 0\r\n\r\n`);
  const resp = h.sent.filter((s) => s.text.startsWith(`SIP/2.0 ${status}`)).pop()!;
  const tag = /\r\nTo: [^\r]*;tag=([^;\r]+)/.exec(resp.text)![1]!;
  h.frames.length = 0;
  return { txnId, tag, dialogId: `${callId};from-tag=fa` };
}

describe('RFC 3261 §12.2.2 requests within a dialog', () => {
  it('a CSeq lower than the last one gets 500 and never reaches the app; in-order requests do', () => {
    const h = coreHarness({ routes: ['invite'] });
    const { tag } = answered(h, 'cseq-1');
    h.feed(inDialog('ACK', 'cseq-1', tag, 10, 'ack1'));
    expect(h.frames).toHaveLength(1);
    h.frames.length = 0;
    h.feed(inDialog('INFO', 'cseq-1', tag, 12, 'info12'));
    expect(h.frames).toHaveLength(1);
    expect(h.frames[0]).toContain('\r\nINFO sip:svc@127.0.0.1:5070 SIP/2.0\r\n');
    const infoTxn = token(h.frames.shift()!, 8);
    h.fromApp('m2', infoTxn, '', 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n');
    h.frames.length = 0;
    const before = h.sent.length;
    h.feed(inDialog('INFO', 'cseq-1', tag, 11, 'info11'));
    expect(h.frames).toHaveLength(0);
    const refusal = h.sent.slice(before);
    expect(startLines(refusal)).toEqual(['SIP/2.0 500 Server Internal Error']);
    expect(refusal[0]!.text).toContain('\r\nCSeq: 11 INFO\r\n');
    expect(refusal[0]!.text).toContain(`;tag=${tag}\r\n`);
    expect(refusal[0]!.target).toMatchObject({ address: '127.0.0.1', port: 6000 });
    // An out-of-order BYE does not end the dialog; an in-order one does.
    h.feed(inDialog('BYE', 'cseq-1', tag, 5, 'bye5'));
    expect(startLines(h.sent).pop()).toBe('SIP/2.0 500 Server Internal Error');
    expect(h.core.dialogs.size).toBe(1);
    h.feed(inDialog('BYE', 'cseq-1', tag, 13, 'bye13'));
    expect(h.frames).toHaveLength(1);
    expect(h.frames[0]).toContain('\r\nBYE sip:svc@127.0.0.1:5070 SIP/2.0\r\n');
    expect(h.core.dialogs.size).toBe(0);
  });

  it('a target refresh (UPDATE) moves the remote target of our next request; INFO does not', () => {
    const h = coreHarness({ routes: ['invite'] });
    const { tag, dialogId } = answered(h, 'refresh-1');
    h.feed(inDialog('ACK', 'refresh-1', tag, 10, 'ack1'));
    h.feed(inDialog('INFO', 'refresh-1', tag, 11, 'info', 'Contact: <sip:a@127.0.0.1:6999>\r\n'));
    h.feed(inDialog('UPDATE', 'refresh-1', tag, 12, 'upd', 'Contact: <sip:a@127.0.0.1:6001>\r\n'));
    h.fromApp('b1', '', dialogId, 'BYE sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    const bye = h.sent.find((s) => s.text.startsWith('BYE '))!;
    expect(bye.text).toMatch(/^BYE sip:a@127\.0\.0\.1:6001 SIP\/2\.0\r\n/);
    expect(bye.target).toMatchObject({ address: '127.0.0.1', port: 6001 });
    // Our CSeq space starts at the INVITE's number (drachtio-server, trace 03 #51).
    expect(bye.text).toContain('\r\nCSeq: 11 BYE\r\n');
  });

  it('a request for a dialog that does not exist gets 481', () => {
    const h = coreHarness({ routes: ['invite'] });
    h.feed(inDialog('INFO', 'nope', 'x', 3, 'i'));
    expect(startLines(h.sent)).toEqual(['SIP/2.0 481 Call/Transaction Does Not Exist']);
    expect(h.frames).toHaveLength(0);
  });
});

describe('RFC 3261 §13.3.1.4 the 2xx until its ACK', () => {
  it('retransmits at T1 doubling to T2; the ACK stops it and reaches the app with the INVITE transaction id; a copy is absorbed', () => {
    const h = coreHarness({ routes: ['invite'] });
    const { txnId, tag, dialogId } = answered(h, 'ack-1');
    const t0 = h.clock.now();
    h.clock.advance(4000);
    const oks = () => h.sent.filter((s) => s.text.startsWith('SIP/2.0 200')).map((s) => s.at - t0);
    expect(oks()).toEqual([0, 500, 1500, 3500]);
    h.feed(inDialog('ACK', 'ack-1', tag, 10, 'ack1'));
    expect(h.frames).toHaveLength(1);
    expect(token(h.frames[0]!, 8)).toBe(txnId);
    expect(token(h.frames[0]!, 9)).toBe(dialogId);
    h.feed(inDialog('ACK', 'ack-1', tag, 10, 'ack1'));
    expect(h.frames).toHaveLength(1);
    expect(h.core.counters.retransmissionsAbsorbed).toBeGreaterThanOrEqual(1);
    h.clock.advance(60_000);
    expect(oks()).toEqual([0, 500, 1500, 3500]);
    expect(h.sent.some((s) => s.text.startsWith('BYE '))).toBe(false);
    expect(h.core.dialogs.size).toBe(1);
  });

  it('no ACK in 64*T1: BYE with the ACK-timeout Reason, the unsolicited BYE frame, the dialog is gone', () => {
    const h = coreHarness({ routes: ['invite'] });
    const { dialogId } = answered(h, 'ack-2');
    const t0 = h.clock.now();
    h.clock.advance(32_000);
    const bye = h.sent.find((s) => s.text.startsWith('BYE '))!;
    expect(bye.at - t0).toBe(32_000);
    expect(bye.text).toContain('Reason: SIP;cause=200;text="ACK timeout"');
    expect(h.frames.some((f) => token(f, 8) === 'unsolicited' && token(f, 9) === dialogId)).toBe(true);
    expect(h.core.dialogs.size).toBe(0);
    const n = h.sent.length;
    h.clock.advance(10_000);
    expect(h.sent.slice(n).some((s) => s.text.startsWith('SIP/2.0 200'))).toBe(false);
  });

  it('a CANCEL after the 2xx but before the ACK: 481 to it and the call is ended with BYE', () => {
    const h = coreHarness({ routes: ['invite'] });
    answered(h, 'cancel-late');
    h.feed('CANCEL sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-cancel-late\r\nMax-Forwards: 70\r\n' +
      'From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: cancel-late\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n');
    const lines = startLines(h.sent);
    expect(lines).toContain('SIP/2.0 481 Call/Transaction Does Not Exist');
    expect(h.sent.find((s) => s.text.startsWith('BYE '))!.text).toContain('text="CANCEL after 200 OK"');
    expect(h.core.dialogs.size).toBe(0);
  });
});

describe('RFC 3262 reliable provisionals', () => {
  // RFC 3262 §3 doubles the interval without a cap; the engine caps it at T2 like the 2xx (as
  // before the split: reported, not changed here).
  it('retransmitted from T1 (doubling, capped at T2) until the PRACK that names its RSeq; another RAck does not stop it', () => {
    const h = coreHarness({ routes: ['invite'] });
    h.feed(INVITE('rel-1', 'Supported: 100rel\r\n'));
    const txnId = token(h.frames.shift()!, 8);
    h.fromApp('p1', txnId, '', 'SIP/2.0 183 Session Progress\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n');
    const first = h.sent.find((s) => s.text.startsWith('SIP/2.0 183'))!;
    const rseq = Number(/\r\nRSeq: (\d+)\r\n/.exec(first.text)![1]);
    expect(rseq).toBeGreaterThan(0);
    const tag = /\r\nTo: [^\r]*;tag=([^;\r]+)/.exec(first.text)![1]!;
    const t0 = first.at;
    h.clock.advance(8000);
    h.feed(inDialog('PRACK', 'rel-1', tag, 11, 'pr1', `RAck: ${rseq + 5} 10 INVITE\r\n`));
    h.clock.advance(8000);
    const times = () => h.sent.filter((s) => s.text.startsWith('SIP/2.0 183')).map((s) => s.at - t0);
    expect(times()).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500]);
    h.feed(inDialog('PRACK', 'rel-1', tag, 12, 'pr2', `RAck: ${rseq} 10 INVITE\r\n`));
    h.clock.advance(30_000);
    expect(times()).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500]);
    // The next reliable provisional takes the next RSeq.
    h.fromApp('p2', txnId, '', 'SIP/2.0 180 Ringing\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n');
    expect(h.sent.find((s) => s.text.startsWith('SIP/2.0 180'))!.text).toContain(`\r\nRSeq: ${rseq + 1}\r\n`);
  });

  it('the app asks for 100rel but the caller did not offer it: NOK, nothing sent', () => {
    const h = coreHarness({ routes: ['invite'] });
    h.feed(INVITE('rel-2'));
    const txnId = token(h.frames.shift()!, 8);
    const n = h.sent.length;
    h.fromApp('p1', txnId, '', 'SIP/2.0 183 Session Progress\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n');
    expect(h.frames[0]).toMatch(/\|NOK\|Remote endpoint does not support 100rel$/);
    expect(h.sent.length).toBe(n);
  });
});

describe('RFC 3261 §9.2 CANCEL', () => {
  it('before a final response: 200 to the CANCEL, 487 to the INVITE, the early dialog ends, the app is told', () => {
    const h = coreHarness({ routes: ['invite'] });
    h.feed(INVITE('can-1'));
    const txnId = token(h.frames.shift()!, 8);
    h.fromApp('r1', txnId, '', 'SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n');
    expect(h.core.dialogs.size).toBe(1);
    h.frames.length = 0;
    h.feed('CANCEL sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-can-1\r\nMax-Forwards: 70\r\n' +
      'From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: can-1\r\nCSeq: 10 CANCEL\r\nContent-Length: 0\r\n\r\n');
    expect(startLines(h.sent).slice(-2)).toEqual(['SIP/2.0 200 OK', 'SIP/2.0 487 Request Terminated']);
    expect(h.core.dialogs.size).toBe(0);
    expect(h.frames).toHaveLength(1);
    expect(token(h.frames[0]!, 8)).toBe(txnId);
    h.fromApp('late', txnId, '', 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n');
    expect(h.frames[1]).toMatch(/\|NOK\|Response not sent due to unknown transaction$/);
  });
});
