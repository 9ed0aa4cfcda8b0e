// Strikes and TLS identities (issue #17.4) at the UA core: a message that fails to parse and a
// CANCEL for another peer's INVITE are reported with the verified TLS identity they came with,
// so the app counts the strike against the certificate rather than the (shareable) address.
import { describe, expect, it } from 'vitest';
import type { Endpoint, TlsPeerIdentity } from '../../../src/engine/transport/types.js';
import type { WireServer } from '../../../src/engine/wire/server.js';
import { UaCore } from '../../../src/engine/core/ua-core.js';
import { parseMessage } from '../../../src/engine/message/parser.js';
import { FakeClock } from '../transaction/support.js';
import { fakeApp, fakeTransport } from '../../helpers/core-fakes.js';

const LOCAL: Endpoint = { protocol: 'tls', address: '127.0.0.1', port: 5061 };
const A: Endpoint = { protocol: 'tls', address: '127.0.0.2', port: 40000 };
const B: Endpoint = { protocol: 'tls', address: '127.0.0.2', port: 40001 };
const id = (fp: string): TlsPeerIdentity => ({ subject: `CN=${fp}`, subjectAltNames: [`DNS:${fp}.test`], fingerprint256: fp });

const INVITE = `INVITE sip:svc@127.0.0.1:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.2:40000;branch=z9hG4bK-inv1\r\n` +
  `Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.2>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: strike-1\r\nCSeq: 1 INVITE\r\n` +
  `Contact: <sip:a@127.0.0.2:40000;transport=tls>\r\nContent-Length: 0\r\n\r\n`;
const CANCEL = INVITE.replace('INVITE sip', 'CANCEL sip').replace('1 INVITE', '1 CANCEL');

function core() {
  const strikes: Array<{ source: Endpoint; why: string; tls: TlsPeerIdentity | undefined }> = [];
  const { app } = fakeApp(1);
  const wire = { setHandler: () => {}, pickApp: (m: string) => (m === 'INVITE' || m === 'invite' ? app : undefined) } as unknown as WireServer;
  const c = new UaCore({
    wire, listeners: [LOCAL], clock: new FakeClock(), parse: (b) => parseMessage(b),
    transport: fakeTransport((_t, bytes) => ({ ok: true, local: LOCAL, bytes: bytes.length })),
    onMalformed: (source, why, tls) => { strikes.push({ source, why, tls }); },
  });
  return { c, strikes };
}

describe('strikes carry the TLS identity of the connection', () => {
  it('a malformed message: its identity, or none without a certificate', () => {
    const { c, strikes } = core();
    const junk = Buffer.from('INVITE \u0000 x SIP/2.0\r\nVia: ;;\r\nContent-Length: 0\r\n\r\n');
    c.onPacket({ data: junk, source: A, local: LOCAL, connectionId: 'tls-1', tls: id('AA') });
    c.onPacket({ data: junk, source: B, local: LOCAL, connectionId: 'tls-2' });
    expect(strikes.map((s) => [s.source.port, s.tls?.fingerprint256])).toEqual([[40000, 'AA'], [40001, undefined]]);
    c.close();
  });

  it('a CANCEL for another connection’s INVITE: the sender’s identity, not the owner’s', () => {
    const { c, strikes } = core();
    c.onPacket({ data: Buffer.from(INVITE), source: A, local: LOCAL, connectionId: 'tls-1', tls: id('AA') });
    c.onPacket({ data: Buffer.from(CANCEL), source: B, local: LOCAL, connectionId: 'tls-2', tls: id('BB') });
    expect(c.counters.foreignDialogRequests).toBe(1);
    expect(strikes).toHaveLength(1);
    expect(strikes[0]!.tls?.fingerprint256).toBe('BB');
    expect(strikes[0]!.why).toMatch(/CANCEL for a dialog of another peer/);
    c.close();
  });
});
