// The transaction layer over a real UDP socket against real SIPp (Debian sip-tester):
// INVITE retransmissions absorbed, 2xx retransmitted until ACK, UAC side with ACK/BYE,
// and a forged response from another port dropped while SIPp's genuine one gets through.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMessage } from '../../../src/engine/message/parser.js';
import { serialize } from '../../../src/engine/message/serialize.js';
import type { HeaderField, SipRequest, SipResponse } from '../../../src/engine/message/types.js';
import {
  TransactionLayer,
  TwoXxRetransmitter,
  buildResponse,
  newBranch,
  newTag,
  type TransactionUser,
} from '../../../src/engine/transaction/index.js';
import { freePort, runSipp, scratchDir, startSipp, stopAll, waitFor, writeFile } from '../../helpers/procs.js';

const sockets: Socket[] = [];
const layers: TransactionLayer[] = [];
afterEach(async () => {
  await stopAll();
  for (const l of layers.splice(0)) l.close();
  for (const s of sockets.splice(0)) s.close();
});

async function udpSocket(): Promise<{ sock: Socket; port: number }> {
  const port = await freePort();
  const sock = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, '127.0.0.1', () => resolve());
  });
  sockets.push(sock);
  return { sock, port };
}

/** A UDP endpoint: real socket → real parser → TransactionLayer. */
async function endpoint(tu: TransactionUser): Promise<{ layer: TransactionLayer; port: number; sock: Socket }> {
  const { sock, port } = await udpSocket();
  const local = { protocol: 'udp' as const, address: '127.0.0.1', port };
  const layer = new TransactionLayer({
    tu,
    send: (t, bytes) =>
      new Promise((resolve) =>
        sock.send(bytes, t.port, t.address, (err) =>
          resolve(err ? { ok: false, reason: 'unreachable', detail: err.message } : { ok: true, local, bytes: bytes.length }),
        ),
      ),
  });
  layers.push(layer);
  sock.on('message', (buf, rinfo) => {
    const parsed = parseMessage(buf);
    if (parsed.ok) layer.receive(parsed.message, { source: { protocol: 'udp', address: rinfo.address, port: rinfo.port }, local });
  });
  return { layer, port, sock };
}

const hv = (m: SipRequest | SipResponse, n: string) => m.headers.find((h) => h.name === n)?.value;
const f = (name: string, raw: string, value: string): HeaderField => ({ name, raw, value });
const noop = () => {};

describe('transaction layer with real SIPp over UDP', () => {
  it('UAS: SIPp INVITE retransmissions are absorbed; 2xx retransmitted until ACK; BYE answered', async () => {
    const invitesSeen: string[] = [];
    const retrans = new Map<string, TwoXxRetransmitter>();
    const holder: { layer?: TransactionLayer } = {};
    const { layer, port } = await endpoint({
      request(txn, req) {
        if (req.method === 'BYE') {
          txn.respond(buildResponse(req, 200, 'OK'));
          return;
        }
        if (req.method !== 'INVITE' || txn.kind !== 'ist') return;
        invitesSeen.push(hv(req, 'call-id')!);
        // Answer late so SIPp retransmits the INVITE (T1 = 500 ms) and the layer must absorb it.
        setTimeout(() => {
          txn.sendTrying();
          const tag = newTag();
          const contact = [f('contact', 'Contact', `<sip:127.0.0.1:${port}>`)];
          txn.respond(buildResponse(req, 180, 'Ringing', { toTag: tag, headers: contact }));
          const ok = buildResponse(req, 200, 'OK', { toTag: tag, headers: contact });
          txn.respond(ok);
          const bytes = serialize(ok);
          const r = new TwoXxRetransmitter({ retransmit: () => holder.layer!.sendStateless(txn.target, bytes), giveUp: noop });
          retrans.set(hv(req, 'call-id')!, r);
          r.start();
        }, 1_100);
      },
      ack(req) {
        retrans.get(hv(req, 'call-id')!)?.stop();
      },
      response: noop,
      retransmitted2xx: noop,
      timeout: noop,
      transportError: noop,
    });
    holder.layer = layer;
    const uacPort = await freePort();
    const res = await runSipp(['-sn', 'uac', `127.0.0.1:${port}`, '-i', '127.0.0.1', '-p', String(uacPort), '-t', 'u1', '-m', '3', '-r', '10', '-l', '3', '-d', '100'], { timeoutS: 20 });
    expect(res.code, res.output.slice(-2000)).toBe(0);
    expect(res.successful).toBe(3);
    // One TU request per call although SIPp sent each INVITE more than once.
    expect(invitesSeen).toHaveLength(3);
    expect(new Set(invitesSeen).size).toBe(3);
    expect(layer.counters.requestRetransmissionsAbsorbed).toBeGreaterThanOrEqual(3);
    expect([...retrans.values()].every((r) => !r.running)).toBe(true);
  });

  it('UAC: INVITE to SIPp uas, ACK for the 2xx, BYE in a new transaction', async () => {
    const statuses: string[] = [];
    let ackBytes: Buffer | undefined;
    let target = { protocol: 'udp' as const, address: '127.0.0.1', port: 0 };
    const { layer, port } = await endpoint({
      request: noop,
      ack: noop,
      response(txn, res) {
        statuses.push(`${txn.method} ${res.status}`);
        if (txn.method !== 'INVITE' || res.status < 200 || res.status >= 300) return;
        const inv = txn.request;
        const common = [f('from', 'From', hv(inv, 'from')!), f('to', 'To', hv(res, 'to')!), f('call-id', 'Call-ID', hv(inv, 'call-id')!), f('max-forwards', 'Max-Forwards', '70')];
        const ack: SipRequest = {
          kind: 'request', method: 'ACK', uri: `sip:service@127.0.0.1:${target.port}`, body: Buffer.alloc(0),
          headers: [f('via', 'Via', `SIP/2.0/UDP 127.0.0.1:${port};branch=${newBranch()};rport`), ...common, f('cseq', 'CSeq', '1 ACK')],
        };
        ackBytes = serialize(ack);
        layer.sendStateless(target, ackBytes);
        const bye: SipRequest = {
          kind: 'request', method: 'BYE', uri: `sip:service@127.0.0.1:${target.port}`, body: Buffer.alloc(0),
          headers: [f('via', 'Via', `SIP/2.0/UDP 127.0.0.1:${port};branch=${newBranch()};rport`), ...common, f('cseq', 'CSeq', '2 BYE')],
        };
        setTimeout(() => layer.sendRequest(bye, target), 50);
      },
      retransmitted2xx() {
        if (ackBytes) layer.sendStateless(target, ackBytes);
      },
      timeout: (txn) => statuses.push(`${txn.method} timeout`),
      transportError: (txn, reason) => statuses.push(`${txn.method} ${reason}`),
    });
    const uasPort = await freePort();
    target = { protocol: 'udp', address: '127.0.0.1', port: uasPort };
    const uas = startSipp(['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-t', 'u1', '-m', '1']);
    await new Promise((r) => setTimeout(r, 400)); // let sipp bind
    const sdp = Buffer.from('v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n');
    const invite: SipRequest = {
      kind: 'request', method: 'INVITE', uri: `sip:service@127.0.0.1:${uasPort}`, body: sdp,
      headers: [
        f('via', 'Via', `SIP/2.0/UDP 127.0.0.1:${port};branch=${newBranch()};rport`),
        f('max-forwards', 'Max-Forwards', '70'),
        f('from', 'From', `<sip:tester@127.0.0.1:${port}>;tag=${newTag()}`),
        f('to', 'To', `<sip:service@127.0.0.1:${uasPort}>`),
        f('call-id', 'Call-ID', `${newTag()}@127.0.0.1`),
        f('cseq', 'CSeq', '1 INVITE'),
        f('contact', 'Contact', `<sip:tester@127.0.0.1:${port}>`),
        f('content-type', 'Content-Type', 'application/sdp'),
      ],
    };
    layer.sendRequest(invite, target);
    await waitFor(() => statuses.includes('BYE 200'), 15_000, 25, `BYE 200 (got ${statuses.join(', ')})`);
    expect(statuses.filter((s) => s.startsWith('INVITE 2'))).toEqual(['INVITE 200']);
    expect(statuses).toContain('INVITE 180');
    // SIPp answers the BYE only after it matched our ACK to its dialog; then it idles 4 s
    // for retransmissions, so stop it instead of waiting.
    await uas.stop();
    expect(layer.counters.forgedResponses).toBe(0);
  });

  it('RFC 6404 §2.3.2.2: a forged 200 from another port is dropped; SIPp\'s genuine 200 is delivered', async () => {
    const dir = scratchDir('txn-forged-');
    const scenario = writeFile(
      dir,
      'slow-options.xml',
      `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="slow OPTIONS responder">
  <recv request="OPTIONS"/>
  <pause milliseconds="900"/>
  <send><![CDATA[

SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=genuine
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
`,
    );
    const delivered: SipResponse[] = [];
    const { layer, port } = await endpoint({
      request: noop, ack: noop, retransmitted2xx: noop, timeout: noop, transportError: noop,
      response: (_txn, res) => void delivered.push(res),
    });
    const uasPort = await freePort();
    const uas = startSipp(['-sf', scenario, '-i', '127.0.0.1', '-p', String(uasPort), '-t', 'u1', '-m', '1'], dir);
    await new Promise((r) => setTimeout(r, 400));
    const branch = newBranch();
    const options: SipRequest = {
      kind: 'request', method: 'OPTIONS', uri: `sip:127.0.0.1:${uasPort}`, body: Buffer.alloc(0),
      headers: [
        f('via', 'Via', `SIP/2.0/UDP 127.0.0.1:${port};branch=${branch}`),
        f('max-forwards', 'Max-Forwards', '70'),
        f('from', 'From', `<sip:probe@127.0.0.1>;tag=${newTag()}`),
        f('to', 'To', `<sip:127.0.0.1:${uasPort}>`),
        f('call-id', 'Call-ID', `${newTag()}@127.0.0.1`),
        f('cseq', 'CSeq', '7 OPTIONS'),
      ],
    };
    layer.sendRequest(options, { protocol: 'udp', address: '127.0.0.1', port: uasPort });
    // The attacker knows the branch and Call-ID (e.g. sniffed) but sends from its own port.
    const rogue = await udpSocket();
    const forged = serialize({ ...buildResponse(options, 200, 'OK', { toTag: 'forged' }) });
    await new Promise<void>((r) => rogue.sock.send(forged, port, '127.0.0.1', () => r()));
    await waitFor(() => layer.counters.forgedResponses === 1, 5_000, 10, 'forged response counted');
    expect(delivered).toHaveLength(0);
    await waitFor(() => delivered.length === 1, 10_000, 25, 'genuine 200');
    expect(hv(delivered[0]!, 'to')).toContain('tag=genuine');
    expect(await uas.exited).toBe(0);
  });
});
