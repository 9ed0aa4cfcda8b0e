// appView (src/engine/message/app-view.ts): the parsed-field successor of core/inbound.ts
// rewriteInbound. Same bytes as the old rewrite for CRLF messages; bare-LF messages, which the
// parser accepts, now get the same treatment instead of a 400.
import { describe, expect, it } from 'vitest';
import { appView } from '../../../src/engine/message/app-view.js';
import { parseMessage, type SipRequest } from '../../../src/engine/message/index.js';
import { rewriteInbound, identityHeaderValue } from '../../../src/engine/core/inbound.js';
import { parseVia } from '../../../src/sip/grammar/index.js';

const msg = (via: string, extra = '', body = '') =>
  `OPTIONS sip:x@h SIP/2.0\r\n${via}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@h>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n${extra}Content-Length:   ${body.length}\r\n\r\n${body}`;

function parsed(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text));
  if (!r.ok || r.message.kind !== 'request') throw new Error(r.ok ? 'not a request' : r.error);
  return r.message;
}

/** Both rewrites of one message; the old one is given the Via host the core computes. */
function both(text: string, src: string, port: number, identity?: string) {
  const req = parsed(text);
  const viaHost = parseVia(req.headers.find((h) => h.name === 'via')!.value)!.host;
  return { now: appView(req, text, src, port, identity), old: rewriteInbound(text, src, port, viaHost, identity) };
}

const id = identityHeaderValue({ subject: 'CN=peer', subjectAltNames: ['DNS:peer.example'], fingerprint256: 'AA:BB' });
const cases: Array<[string, string, string, number, string | undefined]> = [
  ['plain', msg('Via: SIP/2.0/UDP 127.0.0.1:5092;branch=z9hG4bK-1'), '127.0.0.1', 5092, undefined],
  ['compact, valueless rport, second via-parm, NATed source', msg('v: SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK-2, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0'), '192.0.2.1', 40000, undefined],
  ['IPv6 sent-by', msg('Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-6'), '2001:db8::1', 5060, undefined],
  ['network copies of the identity header', msg('Via: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-4', 'X-Peergate-TLS-Identity: subject="CN=evil"\r\nx-peergate-tls-identity : a\r\n b\r\n'), '127.0.0.1', 1, undefined],
  ['our identity added', msg('Via: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK-5', 'X-PEERGATE-TLS-IDENTITY: forged\r\n'), '127.0.0.1', 1, id],
  ['with a body', msg('Via: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK-7', 'Content-Type: text/plain\r\n', 'hello, world'), '127.0.0.1', 5, id],
];

describe('appView: what the app sees of a network request', () => {
  for (const [name, text, src, port, identity] of cases) {
    it(`gives the old rewrite's bytes for CRLF input: ${name}`, () => {
      const { now, old } = both(text, src, port, identity);
      expect(old).toBeDefined();
      expect(now).toEqual(old);
    });
    it(`reads bare-LF input the way the parser does, with CRLF lines out: ${name}`, () => {
      const lf = text.replace(/\r\n/g, '\n');
      const req = parsed(lf);
      const viaHost = parseVia(req.headers.find((h) => h.name === 'via')!.value)!.host;
      // The old rewrite cannot read this message at all (it only splits on CRLF)…
      expect(rewriteInbound(lf, src, port, viaHost, identity)).toBeUndefined();
      // …the new one gives what it gives for the CRLF form (the body is kept as sent).
      const crlfHead = text.slice(0, text.indexOf('\r\n\r\n') + 4);
      const lfBody = lf.slice(lf.indexOf('\n\n') + 2);
      const expected = rewriteInbound(text, src, port, viaHost, identity)!;
      const got = appView(req, lf, src, port, identity)!;
      expect(got.topVia).toBe(expected.topVia);
      expect(got.text).toBe(expected.text.slice(0, expected.text.length - (text.length - crlfHead.length)) + lfBody);
    });
  }

  it('removes every identity field the parser saw, and adds ours once', () => {
    const text = msg('Via: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK-8', 'x-peergate-tls-identity: one\r\nX-Peergate-TLS-Identity\t: two\r\n');
    const v = appView(parsed(text), text, '127.0.0.1', 1, id)!;
    expect(v.text.match(/x-peergate-tls-identity/gi)).toHaveLength(1);
    expect(v.text).toContain(`\r\nX-Peergate-TLS-Identity: ${id}\r\n\r\n`);
    expect(parsed(v.text).headers.filter((h) => h.name === 'x-peergate-tls-identity').map((h) => h.value)).toEqual([id]);
  });

  it('unfolds a folded top Via, so that the echoed top Via keeps its branch', () => {
    const text = msg('Via: SIP/2.0/UDP 127.0.0.1:5092\r\n ;branch=z9hG4bK-3');
    const v = appView(parsed(text), text, '127.0.0.1', 6000, undefined)!;
    expect(v.topVia).toBe('SIP/2.0/UDP 127.0.0.1:5092 ;branch=z9hG4bK-3;rport=6000');
    expect(parseVia(v.topVia)!.params.get('branch')).toBe('z9hG4bK-3');
    expect(v.text).toContain(`Via: ${v.topVia}\r\nFrom:`);
  });

  it('gives undefined when the top Via cannot be read', () => {
    const req = parsed(msg('Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-9'));
    req.headers = req.headers.filter((h) => h.name !== 'via');
    expect(appView(req, msg('Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-9'), '1.2.3.4', 1, undefined)).toBeUndefined();
  });
});
