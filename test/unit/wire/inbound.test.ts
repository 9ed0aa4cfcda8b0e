import { describe, expect, it } from 'vitest';
import { rewriteInbound, identityHeaderValue } from '../../../src/engine/core/inbound.js';

const msg = (via: string, extra = '') => `OPTIONS sip:x@h SIP/2.0\r\n${via}\r\nFrom: <sip:a@b>;tag=1\r\n${extra}Content-Length:   0\r\n\r\n`;

describe('inbound rewrite (what the app sees)', () => {
  it('adds rport=<port> to the top Via, keeps every other byte', () => {
    const r = rewriteInbound(msg('Via: SIP/2.0/UDP 127.0.0.1:5092;branch=z9hG4bK-1'), '127.0.0.1', 5092, '127.0.0.1', undefined)!;
    expect(r.text).toBe(msg('Via: SIP/2.0/UDP 127.0.0.1:5092;branch=z9hG4bK-1;rport=5092'));
    expect(r.topVia).toBe('SIP/2.0/UDP 127.0.0.1:5092;branch=z9hG4bK-1;rport=5092');
  });

  it('fills a valueless rport and adds received= when the source differs from the Via host', () => {
    const r = rewriteInbound(msg('v: SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK-2, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0'), '192.0.2.1', 40000, '10.0.0.1', undefined)!;
    expect(r.text).toContain('v: SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bK-2;received=192.0.2.1, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0\r\n');
  });

  it('handles a folded top Via (slow path) the same way', () => {
    const r = rewriteInbound(msg('Via: SIP/2.0/UDP 127.0.0.1:5092\r\n ;branch=z9hG4bK-3'), '127.0.0.1', 6000, '127.0.0.1', undefined)!;
    expect(r.text).toContain('Via: SIP/2.0/UDP 127.0.0.1:5092;rport=6000\r\n ;branch=z9hG4bK-3\r\n');
  });

  it('removes every network copy of the identity header (any case, folded) and adds ours only when given', () => {
    const extra = 'X-Peergate-TLS-Identity: subject="CN=evil"\r\nx-peergate-tls-identity : a\r\n b\r\n';
    const plain = rewriteInbound(msg('Via: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-4', extra), '127.0.0.1', 1, '127.0.0.1', undefined)!;
    expect(plain.text.toLowerCase()).not.toContain('x-peergate-tls-identity');
    expect(plain.text).toContain('Content-Length:   0\r\n\r\n');
    const id = identityHeaderValue({ subject: 'O=A\\, B, CN="q"', subjectAltNames: ['DNS:a', 'URI:sip:x,y%'], fingerprint256: 'AA:BB' });
    expect(id).toBe('subject="O=A\\\\, B, CN=\\"q\\"";san="DNS:a,URI:sip:x%2Cy%25";fp256=AA:BB');
    const tls = rewriteInbound(msg('Via: SIP/2.0/TLS 127.0.0.1:1;branch=z9hG4bK-5', extra), '127.0.0.1', 1, '127.0.0.1', id)!;
    expect(tls.text.match(/x-peergate-tls-identity/gi)).toHaveLength(1);
    expect(tls.text).toContain(`\r\nX-Peergate-TLS-Identity: ${id}\r\n\r\n`);
  });

  it('returns undefined without a Via', () => {
    expect(rewriteInbound('OPTIONS sip:x SIP/2.0\r\nFrom: a\r\n\r\n', '1.2.3.4', 1, 'h', undefined)).toBeUndefined();
  });
});
