// appView (src/engine/message/app-view.ts): what the app sees of a network request. It replaced
// core/inbound.ts rewriteInbound; the expected bytes below are what that rewrite gave for CRLF
// messages. Bare-LF messages, which the parser accepts, get the same treatment (the old rewrite
// could not read them at all).
import { describe, expect, it } from 'vitest';
import { appView } from '../../../src/engine/message/app-view.js';
import { parseMessage, type SipRequest } from '../../../src/engine/message/index.js';
import { formatTlsIdentity } from '../../../src/sip/tls-identity.js';
import { parseVia } from '../../../src/sip/grammar/index.js';

const msg = (via: string, extra = '', body = '') =>
  `OPTIONS sip:x@h SIP/2.0\r\n${via}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@h>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n${extra}Content-Length:   ${body.length}\r\n\r\n${body}`;

function parsed(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text));
  if (!r.ok || r.message.kind !== 'request') throw new Error(r.ok ? 'not a request' : r.error);
  return r.message;
}

/** `text` with our identity header added as the last header field. */
const withId = (text: string, identity: string) => text.replace('\r\n\r\n', `\r\nX-Peergate-TLS-Identity: ${identity}\r\n\r\n`);

const id = formatTlsIdentity({ subject: 'CN=peer', subjectAltNames: ['DNS:peer.example'], fingerprint256: 'AA:BB' });
const V1 = 'SIP/2.0/UDP 127.0.0.1:5092;branch=z9hG4bK-1';
const V2 = 'SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK-2, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0';
const V2S = 'SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bK-2;received=192.0.2.1';
const V6 = 'SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-6';
const V4 = 'SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-4';
const V5 = 'SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK-5';
const V7 = 'SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK-7';
const BODY = ['Content-Type: text/plain\r\n', 'hello, world'] as const;
/** name, request, source address and port, identity, expected top Via, expected text. */
const cases: Array<[string, string, string, number, string | undefined, string, string]> = [
  ['plain', msg(`Via: ${V1}`), '127.0.0.1', 5092, undefined, `${V1};rport=5092`, msg(`Via: ${V1};rport=5092`)],
  ['compact, valueless rport, second via-parm, NATed source', msg(`v: ${V2}`), '192.0.2.1', 40000, undefined, V2S,
    msg(`v: ${V2S}, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0`)],
  ['IPv6 sent-by', msg(`Via: ${V6}`), '2001:db8::1', 5060, undefined, `${V6};rport=5060`, msg(`Via: ${V6};rport=5060`)],
  ['network copies of the identity header', msg(`Via: ${V4}`, 'X-Peergate-TLS-Identity: subject="CN=evil"\r\nx-peergate-tls-identity : a\r\n b\r\n'),
    '127.0.0.1', 1, undefined, `${V4};rport=1`, msg(`Via: ${V4};rport=1`)],
  ['our identity added', msg(`Via: ${V5}`, 'X-PEERGATE-TLS-IDENTITY: forged\r\n'), '127.0.0.1', 1, id, `${V5};rport=1`, withId(msg(`Via: ${V5};rport=1`), id)],
  ['with a body', msg(`Via: ${V7}`, ...BODY), '127.0.0.1', 5, id, `${V7};rport=5`, withId(msg(`Via: ${V7};rport=5`, ...BODY), id)],
];

describe('appView: what the app sees of a network request', () => {
  for (const [name, text, src, port, identity, topVia, expected] of cases) {
    it(`completes the top Via and keeps every other byte of CRLF input: ${name}`, () => {
      expect(appView(parsed(text), text, src, port, identity)).toEqual({ text: expected, topVia });
    });
    it(`reads bare-LF input the way the parser does, with CRLF lines out: ${name}`, () => {
      const lf = text.replace(/\r\n/g, '\n');
      // The same as for the CRLF form; the body is kept as sent.
      const lfBody = lf.slice(lf.indexOf('\n\n') + 2);
      const crlfBody = text.slice(text.indexOf('\r\n\r\n') + 4);
      const got = appView(parsed(lf), lf, src, port, identity)!;
      expect(got.topVia).toBe(topVia);
      expect(got.text).toBe(expected.slice(0, expected.length - crlfBody.length) + lfBody);
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
