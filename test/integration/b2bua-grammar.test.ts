// End to end (issue #17 item 2): what a running peergate answers to malformed header text and to
// methods it does not serve. `peergate start` as a real process; the peer is 127.0.0.2, an
// unknown source 127.0.0.9, peergate 127.0.0.1. Requests are raw UDP datagrams so that the
// bytes on the wire are exactly the hostile ones.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createSocket } from 'node:dgram';
import { freePorts, stopInOrder } from '../helpers/procs.js';
import { startSignallingTwoSided, type RunningPeergate } from '../helpers/peergate.js';

const PEER_IP = '127.0.0.2';
const STRANGER_IP = '127.0.0.9';

let pg: RunningPeergate;
let peerSip: number;

beforeAll(async () => {
  const [core] = await freePorts(1) as [number];
  // Nothing listens at the core target: no request of these tests may get that far.
  ({ pg, peerPort: peerSip } = await startSignallingTwoSided(`sip:127.0.0.3:${core}`, PEER_IP));
}, 60_000);

afterAll(() => stopInOrder(pg));

/** Send one datagram from `from` and collect what comes back within `ms`. */
async function exchange(from: string, payload: Buffer | string, ms = 1500): Promise<Buffer[]> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  const got: Buffer[] = [];
  s.on('message', (m) => got.push(m));
  const port = String(s.address().port);
  const bytes = typeof payload === 'string' ? Buffer.from(payload.replace(/\{port\}/g, port), 'latin1') : payload;
  s.send(bytes, peerSip, '127.0.0.1');
  await new Promise((r) => setTimeout(r, ms));
  s.close();
  return got;
}

const request = (method: string, from: string, opts: { extra?: string; fromHeader?: string } = {}) =>
  `${method} sip:+15551230000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP ${from}:{port};branch=z9hG4bK-${Math.random().toString(16).slice(2)}\r\n` +
  `Max-Forwards: 70\r\nFrom: ${opts.fromHeader ?? `<sip:x@${from}>;tag=t1`}\r\nTo: <sip:+15551230000@127.0.0.1>\r\n` +
  `Call-ID: ${Math.random().toString(16).slice(2)}@${from}\r\nCSeq: 1 ${method}\r\nContact: <sip:x@${from}:{port}>\r\n${opts.extra ?? ''}Content-Length: 0\r\n\r\n`;

/** Status line and headers of the only response (asserts there is exactly one final one). */
function finalResponse(got: Buffer[]): { status: string; text: string } {
  const finals = got.map((b) => b.toString('latin1')).filter((t) => /^SIP\/2\.0 [2-6]\d\d /.test(t));
  expect(finals).toHaveLength(1);
  const text = finals[0]!;
  return { status: text.slice(0, text.indexOf('\r\n')), text };
}

describe('control characters in header values (RFC 3261 §25.1)', () => {
  const cases: Array<[string, string]> = [
    ['NUL in Subject', 'Subject: call\u0000me\r\n'],
    ['NUL in the From display name', ''],
    ['bare CR in a header value', 'Subject: a\rb\r\n'],
    ['vertical tab in User-Agent', 'User-Agent: x\u000by\r\n'],
    ['DEL in Call-Info', 'Call-Info: <http://x.example/a>;purpose=info\u007f\r\n'],
    ['ESC in an extension header', 'X-Thing: \u001b[2J\r\n'],
  ];
  for (const [name, extra] of cases) {
    it(`answers an INVITE with ${name} 400 Bad Request, in peergate's words, without routing it`, async () => {
      const before = await pg.metric('peergate_calls_total');
      const fromHeader = name.includes('From') ? `"Al\u0000ice" <sip:x@${PEER_IP}>;tag=t1` : undefined;
      const got = await exchange(PEER_IP, request('INVITE', PEER_IP, { extra, fromHeader }));
      const r = finalResponse(got);
      expect(r.status).toBe('SIP/2.0 400 Bad Request');
      // The answer echoes none of the control characters back.
      expect([...r.text].some((ch) => { const c = ch.charCodeAt(0); return (c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 127; })).toBe(false);
      expect(await pg.metric('peergate_calls_total')).toBe(before);
    });
  }

  it('still accepts HTAB inside a value (it is LWS, not a control character to refuse)', async () => {
    const got = await exchange(PEER_IP, request('OPTIONS', PEER_IP, { extra: 'Subject: a\tb\r\n' }));
    expect(finalResponse(got).status).toBe('SIP/2.0 200 OK');
  });
});

describe('methods peergate does not serve (RFC 3261 §8.2.1)', () => {
  it('answers a method the peer\'s policy does not allow 405 with Allow', async () => {
    const got = await exchange(PEER_IP, request('MESSAGE', PEER_IP));
    const r = finalResponse(got);
    expect(r.status).toBe('SIP/2.0 405 Method Not Allowed');
    const allow = /^Allow:\s*(.*)$/im.exec(r.text)?.[1]?.split(/\s*,\s*/);
    expect(allow).toContain('INVITE');
    expect(allow).not.toContain('MESSAGE');
  });

  it('gives an unknown method from an unknown source no answer at all', async () => {
    expect(await exchange(STRANGER_IP, request('FROBNICATE', STRANGER_IP))).toEqual([]);
  });

  // The UA core hands out-of-dialog requests of unknown methods to the B2BUA's `*` route.
  it('answers an unknown method from a known peer 501 Not Implemented with Allow', async () => {
    const got = await exchange(PEER_IP, request('FROBNICATE', PEER_IP));
    const r = finalResponse(got);
    expect(r.status).toBe('SIP/2.0 501 Not Implemented');
    expect(/^Allow:\s*INVITE/im.test(r.text)).toBe(true);
  });
});
