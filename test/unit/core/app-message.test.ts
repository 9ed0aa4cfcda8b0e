// The lenient reader of the SIP text an app puts in a `sip` frame (src/engine/core/app-message.ts).
import { describe, it, expect } from 'vitest';
import { appHeader, parseAppMessage, type AppMessage } from '../../../src/engine/core/app-message.js';

function ok(text: string): AppMessage {
  const m = parseAppMessage(text);
  if ('error' in m) throw new Error(m.error);
  return m;
}

describe('parseAppMessage', () => {
  it('reads a request: method, URI, headers by long lower-case name with the app\'s spelling kept, and the body', () => {
    const m = ok('INVITE sip:bob@192.0.2.4 SIP/2.0\r\nFrom: <sip:a@x>;tag=1\r\nt: <sip:bob@y>\r\nContent-Type:application/sdp\r\nX-Mixed-Case :  v a l  \r\n\r\nv=0\r\n');
    expect(m).toMatchObject({ kind: 'request', method: 'INVITE', uri: 'sip:bob@192.0.2.4', status: 0 });
    expect(m.headers).toEqual([
      { name: 'from', raw: 'From', value: '<sip:a@x>;tag=1' },
      { name: 'to', raw: 't', value: '<sip:bob@y>' },
      { name: 'content-type', raw: 'Content-Type', value: 'application/sdp' },
      { name: 'x-mixed-case', raw: 'X-Mixed-Case', value: 'v a l' },
    ]);
    expect(m.body.toString()).toBe('v=0\r\n');
    expect(appHeader(m, 'to')).toBe('<sip:bob@y>');
    expect(appHeader(m, 'via')).toBeUndefined();
  });

  it('reads a response, its reason (or "Unknown"), a message with no body, and one ending after its last header', () => {
    expect(ok('SIP/2.0 486 Busy Here\r\nCSeq: 1 INVITE\r\n\r\n')).toMatchObject({ kind: 'response', status: 486, reason: 'Busy Here', headers: [{ name: 'cseq', value: '1 INVITE' }] });
    expect(ok('SIP/2.0 200 \r\n\r\n')).toMatchObject({ status: 200, reason: 'Unknown', headers: [] });
    const m = ok('BYE sip:x@y SIP/2.0\r\nReason: SIP;cause=200\r\n');
    expect(m.headers).toEqual([{ name: 'reason', raw: 'Reason', value: 'SIP;cause=200' }]);
    expect(m.body.length).toBe(0);
    expect(ok('OPTIONS sip:x@y SIP/2.0').headers).toEqual([]);
  });

  it('drops lines that are not `token: value` (spec §7.5) and keeps the rest', () => {
    const m = ok('INFO sip:x@y SIP/2.0\r\nno colon here\r\n: empty name\r\nbad name: v\r\nGood: 1\r\nA:\r\nLF: in\nvalue\r\nB: 2\r\n\r\n');
    expect(m.headers.map((h) => `${h.raw}=${h.value}`)).toEqual(['Good=1', 'A=', 'B=2']);
  });

  it('says why a start line is not one', () => {
    expect(parseAppMessage('SIP/2.0 99 Low\r\n\r\n')).toEqual({ error: 'invalid status line: SIP/2.0 99 Low' });
    expect(parseAppMessage('SIP/2.0 abc Nope\r\n\r\n')).toMatchObject({ error: expect.stringMatching(/invalid status line/) });
    expect(parseAppMessage('INVITE sip:x@y\r\n\r\n')).toEqual({ error: 'invalid request-uri: INVITE sip:x@y' });
    expect(parseAppMessage('IN(VITE sip:x@y SIP/2.0\r\n\r\n')).toMatchObject({ error: expect.stringMatching(/invalid request-uri/) });
    expect(parseAppMessage('INVITE  SIP/2.0\r\n\r\n')).toMatchObject({ error: expect.stringMatching(/invalid request-uri/) });
  });
});
