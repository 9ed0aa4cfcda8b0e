// The transaction layer on the engine's real TCP transport against real SIPp: responses ride
// the request's connection, and a response on any other connection is dropped as forged.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMessage } from '../../../src/engine/message/parser.js';
import { serialize } from '../../../src/engine/message/serialize.js';
import type { HeaderField, SipRequest, SipResponse } from '../../../src/engine/message/types.js';
import { TransportLayer } from '../../../src/engine/transport/index.js';
import {
  TransactionLayer,
  TwoXxRetransmitter,
  buildResponse,
  newBranch,
  newTag,
  type TransactionUser,
} from '../../../src/engine/transaction/index.js';
import { freePort, runSipp, scratchDir, startSipp, stopAll, waitFor, writeFile } from '../../helpers/procs.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await stopAll();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const hv = (m: SipRequest | SipResponse, n: string) => m.headers.find((h) => h.name === n)?.value;
const f = (name: string, raw: string, value: string): HeaderField => ({ name, raw, value });
const noop = () => {};

async function tcpEndpoint(tu: TransactionUser) {
  const port = await freePort();
  const transport = new TransportLayer({ listeners: [{ protocol: 'tcp', address: '127.0.0.1', port }] });
  await transport.listen();
  const layer = new TransactionLayer({ tu, send: (t, b) => transport.send(t, b) });
  transport.on('message', (packet) => {
    const parsed = parseMessage(packet.data);
    if (parsed.ok) layer.receive(parsed.message, packet);
  });
  transport.on('connection-close', (ev) => layer.connectionClosed(ev.connectionId));
  cleanups.push(() => transport.close(), () => layer.close());
  return { layer, transport, port };
}

describe('transaction layer on the TCP transport with real SIPp', () => {
  it('UAS: SIPp uac over one TCP connection; every response goes back on it', async () => {
    const retrans = new Map<string, TwoXxRetransmitter>();
    const holder: { layer?: TransactionLayer } = {};
    const { layer, transport, port } = await tcpEndpoint({
      request(txn, req) {
        if (req.method === 'BYE') {
          txn.respond(buildResponse(req, 200, 'OK'));
          return;
        }
        if (txn.kind !== 'ist') return;
        txn.sendTrying();
        const tag = newTag();
        const contact = [f('contact', 'Contact', `<sip:127.0.0.1:${port};transport=tcp>`)];
        const ok = buildResponse(req, 200, 'OK', { toTag: tag, headers: contact });
        txn.respond(ok);
        const bytes = serialize(ok);
        const r = new TwoXxRetransmitter({ retransmit: () => void holder.layer!.sendStateless(txn.target, bytes), giveUp: noop });
        retrans.set(hv(req, 'call-id')!, r);
        r.start();
      },
      ack: (req) => retrans.get(hv(req, 'call-id')!)?.stop(),
      response: noop, retransmitted2xx: noop, timeout: noop, transportError: noop,
    });
    holder.layer = layer;
    const uacPort = await freePort();
    const res = await runSipp(['-sn', 'uac', `127.0.0.1:${port}`, '-i', '127.0.0.1', '-p', String(uacPort), '-t', 't1', '-m', '3', '-r', '10', '-l', '3', '-d', '50'], { timeoutS: 20 });
    expect(res.code, res.output.slice(-2000)).toBe(0);
    expect(res.successful).toBe(3);
    expect(transport.stats.stream.opened).toBe(0); // never a new connection towards SIPp
    expect(transport.stats.stream.accepted).toBe(1);
    expect(layer.counters.serverTransactionsCreated).toBe(6); // 3 INVITE + 3 BYE
    expect([...retrans.values()].every((r) => !r.running)).toBe(true);
  });

  it('UAC: a forged 200 on another TCP connection is dropped; SIPp\'s 200 on ours is delivered', async () => {
    const dir = scratchDir('txn-tcp-forged-');
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
    const { layer, port } = await tcpEndpoint({
      request: noop, ack: noop, retransmitted2xx: noop, timeout: noop, transportError: noop,
      response: (_t, res) => void delivered.push(res),
    });
    const uasPort = await freePort();
    startSipp(['-sf', scenario, '-i', '127.0.0.1', '-p', String(uasPort), '-t', 't1', '-m', '1'], dir);
    await new Promise((r) => setTimeout(r, 400));
    const options: SipRequest = {
      kind: 'request', method: 'OPTIONS', uri: `sip:127.0.0.1:${uasPort};transport=tcp`, body: Buffer.alloc(0),
      headers: [
        f('via', 'Via', `SIP/2.0/TCP 127.0.0.1:${port};branch=${newBranch()}`),
        f('max-forwards', 'Max-Forwards', '70'),
        f('from', 'From', `<sip:probe@127.0.0.1>;tag=${newTag()}`),
        f('to', 'To', `<sip:127.0.0.1:${uasPort}>`),
        f('call-id', 'Call-ID', `${newTag()}@127.0.0.1`),
        f('cseq', 'CSeq', '9 OPTIONS'),
      ],
    };
    const txn = layer.sendRequest(options, { protocol: 'tcp', address: '127.0.0.1', port: uasPort });
    await waitFor(() => txn.connectionId !== undefined, 5_000, 10, 'connection id learnt from the transport');
    // The attacker opens its own connection to us and sends a matching 200.
    const rogue = connect({ host: '127.0.0.1', port });
    cleanups.push(() => void rogue.destroy());
    await new Promise<void>((r) => rogue.once('connect', () => r()));
    rogue.write(serialize(buildResponse(options, 200, 'OK', { toTag: 'forged' })));
    await waitFor(() => layer.counters.forgedResponses === 1, 5_000, 10, 'forged response counted');
    expect(delivered).toHaveLength(0);
    await waitFor(() => delivered.length === 1, 10_000, 25, 'genuine 200');
    expect(hv(delivered[0]!, 'to')).toContain('tag=genuine');
    expect(txn.state).toBe('Terminated'); // Timer K = 0 over TCP
  });
});
