// UA core timers with a fake clock (RFC 3261 §13.3.1.4, §17.1.1.2, spec §7.10): the transport
// is a recorder, the app a raw wire client; the clock moves only when the test says so.
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { WireServer } from '../../../src/engine/wire/server.js';
import { FrameDecoder, encodeFrame } from '../../../src/engine/wire/framing.js';
import { UaCore } from '../../../src/engine/core/ua-core.js';
import { parseMessage } from '../../../src/engine/message/parser.js';
import type { SendTarget } from '../../../src/engine/transport/types.js';
import { FakeClock } from '../../helpers/engine-golden.js';
import { waitFor } from '../../helpers/procs.js';
import { fakeTransport } from '../../helpers/core-fakes.js';

const LOCAL = { protocol: 'udp' as const, address: '127.0.0.1', port: 5070 };
const PEER = { protocol: 'udp' as const, address: '127.0.0.1', port: 6000 };

let wire: WireServer | undefined;
let sock: Socket | undefined;
afterEach(async () => { sock?.destroy(); await wire?.close(); });

async function setup(routes: string[]) {
  const clock = new FakeClock();
  const sent: Array<{ at: number; text: string; target: SendTarget }> = [];
  wire = new WireServer({ address: '127.0.0.1', port: 0, secret: 's', hostports: () => 'udp/127.0.0.1:5070' });
  const core = new UaCore({
    wire, listeners: [LOCAL], clock, parse: (b) => parseMessage(b),
    transport: fakeTransport((target, bytes) => {
      sent.push({ at: clock.now(), text: bytes.toString('utf8'), target });
      return { ok: true, local: LOCAL, bytes: bytes.length };
    }),
  });
  const { port } = await wire.listen();
  sock = connect({ host: '127.0.0.1', port });
  await new Promise((r) => sock!.once('connect', r));
  const frames: string[] = [];
  const dec = new FrameDecoder();
  sock.on('data', (b) => frames.push(...dec.push(b).frames));
  sock.write(encodeFrame('a|authenticate|s|'));
  for (const r of routes) sock.write(encodeFrame(`r-${r}|route|${r}`));
  await waitFor(() => frames.length === 1 + routes.length, 3000, 5, 'auth+routes');
  frames.length = 0;
  const feed = (text: string) => core.onPacket({ data: Buffer.from(text), source: PEER, local: LOCAL });
  const app = (payload: string) => sock!.write(encodeFrame(payload));
  return { clock, sent, core, frames, feed, app };
}

const INVITE = 'INVITE sip:svc@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-t1\r\nMax-Forwards: 70\r\n' +
  'From: <sip:a@127.0.0.1>;tag=fa\r\nTo: <sip:svc@127.0.0.1>\r\nCall-ID: timers-1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:6000>\r\nContent-Length: 0\r\n\r\n';

describe('UA core timers (fake clock)', () => {
  it('un-ACKed 2xx: retransmitted at +0.5, +1.5, +3.5, +7.5 s then every 4 s; at 32 s BYE and an unsolicited BYE frame', async () => {
    const { clock, sent, frames, feed, app } = await setup(['invite']);
    feed(INVITE);
    await waitFor(() => frames.length === 1, 3000, 5, 'INVITE frame');
    const txnId = frames.shift()!.split('|')[8]!;
    app(`m1|sip|${txnId}|\r\nSIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n`);
    await waitFor(() => sent.some((s) => s.text.startsWith('SIP/2.0 200')), 3000, 5, '200 sent');
    const t0 = clock.now();
    while (clock.advanceToNext() && !sent.some((s) => s.text.startsWith('BYE '))) { /* run timers */ }
    await waitFor(() => frames.some((f) => f.includes('|unsolicited|')), 3000, 5, 'unsolicited BYE frame');
    const retrans = sent.filter((s) => s.text.startsWith('SIP/2.0 200')).slice(1).map((s) => s.at - t0);
    expect(retrans.slice(0, 6)).toEqual([500, 1500, 3500, 7500, 11500, 15500]);
    expect(retrans.every((t) => t < 32_000)).toBe(true);
    const bye = sent.find((s) => s.text.startsWith('BYE '))!;
    expect(bye.at - t0).toBe(32_000);
    expect(bye.text).toContain('Reason: SIP;cause=200;text="ACK timeout"');
    expect(bye.text).toMatch(/^BYE sip:a@127\.0\.0\.1:6000 SIP\/2\.0/);
    const f = frames.find((x) => x.includes('|unsolicited|'))!.split('|');
    expect(f.slice(1, 3)).toEqual(['sip', 'application']);
    expect(f[9]).toBe('timers-1;from-tag=fa');
  });

  it('app INVITE without answer: Timer A doubles from 500 ms, Timer B makes up a 408 at 32 s', async () => {
    const { clock, sent, frames, app } = await setup([]);
    app('u1|sip||\r\nINVITE sip:b@127.0.0.1:6000 SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => frames.length === 1 && sent.length === 1, 3000, 5, 'echo');
    const txnId = frames.shift()!.split('|')[10];
    const t0 = sent[0]!.at;
    while (frames.length === 0 && clock.advanceToNext()) await new Promise((r) => setImmediate(r));
    await waitFor(() => frames.length === 1, 3000, 5, '408 frame');
    expect(sent.slice(1).map((s) => s.at - t0)).toEqual([500, 1500, 3500, 7500, 15500, 31500]);
    const f = frames[0]!;
    expect(f.split('|')[8]).toBe(txnId);
    expect(f).toContain('\r\nSIP/2.0 408 Request Timeout\r\n');
    expect(f.split('|').slice(3, 7)).toEqual(['0', 'udp', '', '0']);
  });

  it('a request the app never answers is forgotten after 64 s: a late response gets NOK', async () => {
    const { clock, sent, frames, feed, app } = await setup(['invite']);
    feed(INVITE);
    await waitFor(() => frames.length === 1, 3000, 5, 'INVITE frame');
    const txnId = frames.shift()!.split('|')[8]!;
    const t0 = clock.now();
    while (clock.now() - t0 < 64_000 && clock.advanceToNext()) { /* run timers */ }
    expect(clock.now() - t0).toBe(64_000);
    app(`late|sip|${txnId}|\r\nSIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n`);
    await waitFor(() => frames.length === 1, 3000, 5, 'NOK');
    expect(frames[0]).toMatch(/\|response\|late\|NOK\|Response not sent due to unknown transaction$/);
    expect(sent.filter((s) => s.text.startsWith('SIP/2.0 200'))).toHaveLength(0);
  });
});

describe('UA core dialogs', () => {
  /** A 200 OK from the far end for the INVITE in `invite` (its top Via copied), with To-tag `tag`. */
  const okFor = (invite: string, tag: string, contactPort: number) => {
    const line = (name: string) => invite.split('\r\n').find((l) => l.startsWith(`${name}: `))!;
    return `SIP/2.0 200 OK\r\n${line('Via')}\r\n${line('From')}\r\n${line('To')};tag=${tag}\r\n${line('Call-ID')}\r\n${line('CSeq')}\r\n` +
      `Contact: <sip:b@127.0.0.1:${contactPort}>\r\nContent-Length: 0\r\n\r\n`;
  };

  it('a 2xx from a second fork is ACKed and released with BYE by the core; the app sees one 2xx; each 2xx copy gets its own ACK again', async () => {
    const { sent, frames, feed, app, core } = await setup([]);
    app('u1|sip||\r\nINVITE sip:b@127.0.0.1:6000 SIP/2.0\r\nCall-ID: fork-1\r\nFrom: <sip:app@localhost>;tag=ft\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => frames.length === 1 && sent.length === 1, 3000, 5, 'echo');
    frames.length = 0;
    const invite = sent[0]!.text;
    feed(okFor(invite, 'fork-a', 6001));
    feed(okFor(invite, 'fork-b', 6002));
    await waitFor(() => sent.some((s) => s.text.startsWith('BYE ')), 3000, 5, 'BYE to the extra fork');
    await new Promise((r) => setTimeout(r, 50));
    // The app hears of the first fork only.
    expect(frames.filter((f) => f.includes('SIP/2.0 200 OK'))).toHaveLength(1);
    expect(frames[0]).toContain(';tag=fork-a');
    const ackB = sent.find((s) => s.text.startsWith('ACK '))!;
    expect(ackB.text).toMatch(/^ACK sip:b@127\.0\.0\.1:6002 SIP\/2\.0/);
    expect(ackB.text).toContain(';tag=fork-b');
    expect(ackB.text).toMatch(/\r\nCSeq: \d+ ACK\r\n/);
    const bye = sent.find((s) => s.text.startsWith('BYE '))!;
    expect(bye.text).toMatch(/^BYE sip:b@127\.0\.0\.1:6002 SIP\/2\.0/);
    expect(bye.text).toContain(';tag=fork-b');
    expect(bye.text).toContain('Reason: SIP;cause=200;text="Call completed elsewhere"');
    expect(core.counters.extraForksReleased).toBe(1);
    // The app ACKs its own dialog; retransmitted 2xx of each fork get that fork's ACK again.
    app('a1|sip||fork-1;from-tag=ft\r\nACK sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => sent.filter((s) => s.text.startsWith('ACK ')).length === 2, 3000, 5, 'app ACK sent');
    const acksBefore = sent.filter((s) => s.text.startsWith('ACK ')).length;
    feed(okFor(invite, 'fork-b', 6002));
    feed(okFor(invite, 'fork-a', 6001));
    await waitFor(() => sent.filter((s) => s.text.startsWith('ACK ')).length === acksBefore + 2, 3000, 5, 're-ACKs');
    const reAcks = sent.filter((s) => s.text.startsWith('ACK ')).slice(-2).map((s) => s.text.split('\r\n')[0]);
    expect(reAcks).toEqual(['ACK sip:b@127.0.0.1:6002 SIP/2.0', 'ACK sip:b@127.0.0.1:6001 SIP/2.0']);
    expect(frames.filter((f) => f.includes('SIP/2.0 200 OK'))).toHaveLength(1);
  });

  it('after the call ended, its INVITE waiting out Timer M still re-ACKs a 2xx copy, and ACKs and ends a late fork from the 2xx alone', async () => {
    const { sent, frames, feed, app, core } = await setup([]);
    app('u1|sip||\r\nINVITE sip:b@127.0.0.1:6000 SIP/2.0\r\nCall-ID: ended-1\r\nFrom: <sip:app@localhost>;tag=et\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => frames.length === 1 && sent.length === 1, 3000, 5, 'echo');
    const invite = sent[0]!.text;
    feed(okFor(invite, 'fork-a', 6001));
    app('a1|sip||ended-1;from-tag=et\r\nACK sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    app('b1|sip||ended-1;from-tag=et\r\nBYE sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => sent.some((s) => s.text.startsWith('BYE ')), 3000, 5, 'the app\'s BYE');
    const bye = sent.find((s) => s.text.startsWith('BYE '))!.text;
    const line = (name: string) => bye.split('\r\n').find((l) => l.startsWith(`${name}: `))!;
    // From the fork's Contact, where the BYE went (a response from elsewhere would be dropped).
    const byeOk = `SIP/2.0 200 OK\r\n${line('Via')}\r\n${line('From')}\r\n${line('To')}\r\n${line('Call-ID')}\r\n${line('CSeq')}\r\nContent-Length: 0\r\n\r\n`;
    core.onPacket({ data: Buffer.from(byeOk), source: { ...PEER, port: 6001 }, local: LOCAL });
    await waitFor(() => frames.filter((f) => f.includes('SIP/2.0 200 OK')).length === 2, 3000, 5, 'the BYE\'s 200 to the app');
    const framesBefore = frames.length;
    const sentBefore = sent.length;
    feed(okFor(invite, 'fork-a', 6001));
    feed(okFor(invite, 'fork-c', 6003));
    await waitFor(() => sent.length === sentBefore + 3, 3000, 5, 're-ACK, then ACK and BYE to the late fork');
    const after = sent.slice(sentBefore).map((s) => s.text);
    expect(after[0]).toMatch(/^ACK sip:b@127\.0\.0\.1:6001 SIP\/2\.0\r\n/);
    expect(after[1]).toMatch(/^ACK sip:b@127\.0\.0\.1:6003 SIP\/2\.0\r\n/);
    expect(after[1]).toContain(';tag=fork-c');
    expect(after[1]).toContain('Call-ID: ended-1\r\n');
    expect(after[1]).toMatch(/\r\nFrom: [^\r]*;tag=et\r\n/);
    expect(after[1]).toMatch(/\r\nCSeq: \d+ ACK\r\n/);
    expect(after[2]).toMatch(/^BYE sip:b@127\.0\.0\.1:6003 SIP\/2\.0\r\n/);
    expect(after[2]).toContain('Reason: SIP;cause=200;text="Call completed elsewhere"');
    // A copy of the late fork's 2xx gets its ACK again; the app hears of none of this.
    feed(okFor(invite, 'fork-c', 6003));
    await waitFor(() => sent.length === sentBefore + 4, 3000, 5, 'the late fork\'s re-ACK');
    expect(sent[sentBefore + 3]!.text).toBe(after[1]);
    await new Promise((r) => setTimeout(r, 30));
    expect(frames.length).toBe(framesBefore);
  });

  it('a new request from the app with a live dialog\'s Call-ID is sent inside that dialog', async () => {
    const { sent, frames, feed, app } = await setup([]);
    app('u1|sip||\r\nINVITE sip:b@127.0.0.1:6000 SIP/2.0\r\nCall-ID: dup-1\r\nFrom: <sip:app@localhost>;tag=dt\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => frames.length === 1 && sent.length === 1, 3000, 5, 'echo');
    feed(okFor(sent[0]!.text, 'd-a', 6001));
    await waitFor(() => frames.length === 2, 3000, 5, '200 frame');
    app('u2|sip||\r\nINFO sip:elsewhere@127.0.0.1:7000 SIP/2.0\r\nCall-ID: dup-1\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => frames.length === 3 && sent.length === 2, 3000, 5, 'INFO echo');
    expect(frames[2]).toMatch(/^[^|]+\|response\|u2\|OK\|/);
    const info = sent[1]!.text;
    // In the dialog: its tags and the next CSeq of our side (the app's Request-URI is kept).
    expect(info).toMatch(/^INFO sip:elsewhere@127\.0\.0\.1:7000 SIP\/2\.0\r\n/);
    expect(info).toContain('From: <sip:app@127.0.0.1:5070>;tag=dt\r\n');
    expect(info).toContain(';tag=d-a\r\n');
    expect(sent[1]!.target).toMatchObject({ address: '127.0.0.1', port: 7000 });
    const inviteSeq = Number(/CSeq: (\d+) INVITE/.exec(sent[0]!.text)![1]);
    expect(info).toContain(`CSeq: ${inviteSeq + 1} INFO\r\n`);
  });

  it('the app CANCELs but the 2xx wins the race: when the app ACKs it the core sends BYE and tells the app', async () => {
    const { sent, frames, feed, app } = await setup([]);
    app('u1|sip||\r\nINVITE sip:b@127.0.0.1:6000 SIP/2.0\r\nCall-ID: race-1\r\nFrom: <sip:app@localhost>;tag=rt\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => frames.length === 1 && sent.length === 1, 3000, 5, 'echo');
    const txnId = frames[0]!.split('|')[10];
    feed(okFor(sent[0]!.text, 'r-a', 6001)); // the 2xx is in before the app's CANCEL
    app(`c1|sip|${txnId}|\r\nCANCEL sip:b@127.0.0.1:6000 SIP/2.0\r\nContent-Length: 0\r\n\r\n`);
    await waitFor(() => frames.length === 3, 3000, 5, '200 frame and CANCEL NOK');
    expect(frames.find((f) => f.includes('|c1|'))).toMatch(/\|NOK\|INVITE already answered/);
    app('a1|sip||race-1;from-tag=rt\r\nACK sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => sent.some((s) => s.text.startsWith('BYE ')), 3000, 5, 'BYE');
    const lines = sent.map((s) => s.text.split('\r\n')[0]);
    expect(lines.slice(1)).toEqual(['ACK sip:b@127.0.0.1:6001 SIP/2.0', 'BYE sip:b@127.0.0.1:6001 SIP/2.0']);
    expect(sent[2]!.text).toContain('Reason: SIP ;cause=200 ;text="ACK-BYE due to cancel race condition"');
    await waitFor(() => frames.some((f) => f.includes('|unsolicited|race-1;from-tag=rt|')), 3000, 5, 'unsolicited BYE frame');
  });

  it('a CANCEL the app sent loses the race to a 2xx: the same release on ACK', async () => {
    const { sent, frames, feed, app } = await setup([]);
    app('u1|sip||\r\nINVITE sip:b@127.0.0.1:6000 SIP/2.0\r\nCall-ID: race-2\r\nFrom: <sip:app@localhost>;tag=rt2\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => frames.length === 1 && sent.length === 1, 3000, 5, 'echo');
    const txnId = frames[0]!.split('|')[10];
    app(`c1|sip|${txnId}|\r\nCANCEL sip:b@127.0.0.1:6000 SIP/2.0\r\nContent-Length: 0\r\n\r\n`);
    await waitFor(() => sent.length === 2, 3000, 5, 'CANCEL sent');
    expect(sent[1]!.text).toMatch(/^CANCEL /);
    feed(okFor(sent[0]!.text, 'r-b', 6001));
    await waitFor(() => frames.some((f) => f.includes('SIP/2.0 200 OK')), 3000, 5, '200 frame');
    app('a1|sip||race-2;from-tag=rt2\r\nACK sip:placeholder SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    await waitFor(() => sent.some((s) => s.text.startsWith('BYE ')), 3000, 5, 'BYE');
    expect(sent.find((s) => s.text.startsWith('BYE '))!.text).toContain('text="ACK-BYE due to cancel race condition"');
  });
});
