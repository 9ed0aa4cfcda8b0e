// Wire server behaviour over a real TCP socket (spec §1, §4.1–§4.4, §4.7, §7.1 round-robin).
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { WireServer, type AppConnection } from '../../../src/engine/wire/server.js';
import { FrameDecoder, encodeFrame } from '../../../src/engine/wire/framing.js';
import { waitFor } from '../../helpers/procs.js';

class Client {
  frames: string[] = [];
  closed = false;
  private d = new FrameDecoder();
  constructor(readonly sock: Socket) {
    sock.on('data', (b) => this.frames.push(...this.d.push(b).frames));
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => undefined);
  }
  send(payload: string) { this.sock.write(encodeFrame(payload)); }
  raw(s: string) { this.sock.write(s); }
  async reply(msgId: string): Promise<string[]> {
    const f = await waitFor(() => this.frames.find((x) => x.split('|')[2] === msgId), 3000, 10, `reply to ${msgId}`);
    return f!.split('|');
  }
}

let server: WireServer | undefined;
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients) c.sock.destroy();
  clients.length = 0;
  await server?.close();
  server = undefined;
});

async function setup(handler: Partial<{ onSip: (a: AppConnection, t: string[], s: string) => void; onAppGone: (a: AppConnection) => void }> = {}) {
  server = new WireServer({ address: '127.0.0.1', port: 0, secret: 'cymru', hostports: () => 'tcp/127.0.0.1:5060,udp/127.0.0.1:5060' });
  server.setHandler({ onSip: handler.onSip ?? (() => undefined), onProxy: () => undefined, onAppGone: handler.onAppGone ?? (() => undefined) });
  const { port } = await server.listen();
  const client = async () => {
    const s = connect({ host: '127.0.0.1', port });
    await new Promise((r) => s.once('connect', r));
    const c = new Client(s);
    clients.push(c);
    return c;
  };
  return { port, client };
}

describe('wire server', () => {
  it('authenticates with hostports, a version drachtio-srf accepts, and localHostports', async () => {
    const { client } = await setup();
    const c = await client();
    c.send('a1|authenticate|cymru|');
    const t = await c.reply('a1');
    expect(t[1]).toBe('response');
    expect(t.slice(3)).toEqual(['OK', 'tcp/127.0.0.1:5060,udp/127.0.0.1:5060', 'v0.9.10-peergate', 'tcp/127.0.0.1:5060,udp/127.0.0.1:5060']);
    expect(/^v(\d+)\.(\d+)\.(\d+)/.exec(t[5]!)).not.toBeNull();
  });

  it('keeps the tags an app authenticates with (drachtio-srf `tags`: a worker\'s index), none without', async () => {
    let seen: AppConnection[] = [];
    const { client } = await setup({ onSip: (a) => { seen.push(a); } });
    for (const [id, tags] of [['t1', 'peergate-worker:1,other'], ['t2', '']] as const) {
      const c = await client();
      c.send(`${id}|authenticate|cymru|${tags}`);
      await c.reply(id);
      c.send(`${id}x|sip|x|y|\r\nSIP/2.0 200 OK\r\n\r\n`);
    }
    await waitFor(() => seen.length === 2, 3000, 10, 'two frames');
    expect(seen.map((a) => [...a.tags]).sort()).toEqual([[], ['peergate-worker:1', 'other']]);
    seen = [];
  });

  it('wrong secret: NO|incorrect secret, then close', async () => {
    const { client } = await setup();
    const c = await client();
    c.send('m1|authenticate|wrong|');
    expect((await c.reply('m1')).slice(3)).toEqual(['NO', 'incorrect secret']);
    await waitFor(() => c.closed, 3000, 10, 'close');
  });

  it('refuses anything before authenticate (stricter than v0.9.10)', async () => {
    const { client } = await setup();
    const c = await client();
    c.send('r1|ping');
    expect((await c.reply('r1'))[3]).toBe('NO');
    await waitFor(() => c.closed, 3000, 10, 'close');
  });

  it('ping → pong; unknown type → NO + close', async () => {
    const { client } = await setup();
    const c = await client();
    c.send('a|authenticate|cymru|');
    await c.reply('a');
    c.send('p1|ping');
    expect((await c.reply('p1')).slice(3)).toEqual(['OK', 'pong']);
    c.send('m2|bogus|x');
    expect((await c.reply('m2')).slice(3)).toEqual(['NO', 'Unknown message type']);
    await waitFor(() => c.closed, 3000, 10, 'close');
  });

  it('handles partial and coalesced frames; closes on a six-digit length without reply', async () => {
    const { client } = await setup();
    const c = await client();
    c.send('a|authenticate|cymru|');
    await c.reply('a');
    c.raw('8');
    await new Promise((r) => setTimeout(r, 50));
    c.raw('#p10|ping8#p11|ping8#p12|ping');
    await c.reply('p10'); await c.reply('p11'); await c.reply('p12');
    const before = c.frames.length;
    c.raw('123456#q1|ping');
    await waitFor(() => c.closed, 3000, 10, 'close');
    expect(c.frames.length).toBe(before);
  });

  it('sip response frame without txnId: NO|transaction id missing + close', async () => {
    const { client } = await setup();
    const c = await client();
    c.send('a|authenticate|cymru|');
    await c.reply('a');
    c.send('p13|sip||\r\nSIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n');
    expect((await c.reply('p13')).slice(3)).toEqual(['NO', 'transaction id missing']);
    await waitFor(() => c.closed, 3000, 10, 'close');
  });

  it('route is per verb, repeated route is a no-op, round-robin alternates, remove_route removes only that verb', async () => {
    const { client } = await setup();
    const a = await client();
    const b = await client();
    for (const [c, n] of [[a, 'A'], [b, 'B']] as const) {
      c.send(`${n}0|authenticate|cymru|`); await c.reply(`${n}0`);
      c.send(`${n}1|route|options`); expect((await c.reply(`${n}1`)).slice(3)).toEqual(['OK']);
      c.send(`${n}2|route|invite`); await c.reply(`${n}2`);
    }
    a.send('A3|route|options'); await a.reply('A3'); // repeated
    const picks = [0, 1, 2, 3].map(() => server!.pickApp('OPTIONS')!.id);
    expect(picks[0]).not.toBe(picks[1]);
    expect(picks[0]).toBe(picks[2]);
    expect(picks[1]).toBe(picks[3]);
    a.send('A4|remove_route|options'); await a.reply('A4');
    b.send('B4|remove_route|options'); await b.reply('B4');
    expect(server!.pickApp('options')).toBeUndefined();
    expect(server!.pickApp('invite')).toBeDefined();
  });

  it('passes over apps that are not heard from while another is; round-robin among all when none is', async () => {
    const { client } = await setup();
    const apps = [await client(), await client(), await client()];
    for (const [i, c] of apps.entries()) {
      c.send(`c${i}|authenticate|cymru|peergate-worker:${i}`); await c.reply(`c${i}`);
      c.send(`r${i}|route|invite`); await c.reply(`r${i}`);
    }
    const pick = (n: number) => Array.from({ length: n }, () => server!.pickApp('invite')!.tags[0]);
    expect(new Set(pick(3)).size).toBe(3);
    const silent = new Set(['peergate-worker:1']);
    server!.setHeard((app) => !silent.has(app.tags[0]!));
    const some = pick(6);
    expect(some).not.toContain('peergate-worker:1');
    expect(new Set(some)).toEqual(new Set(['peergate-worker:0', 'peergate-worker:2']));
    // None heard from (the primary itself was stuck, say): every app in turn, as before.
    silent.add('peergate-worker:0').add('peergate-worker:2');
    expect(new Set(pick(3)).size).toBe(3);
    server!.setHeard(undefined);
    silent.clear();
    expect(new Set(pick(3)).size).toBe(3);
  });

  it('passes sip frames to the core and reports disconnects; skips gone apps in round-robin', async () => {
    const sips: string[][] = [];
    const gone: number[] = [];
    const { client } = await setup({ onSip: (_a, t) => sips.push(t), onAppGone: (a) => gone.push(a.id) });
    const a = await client();
    const b = await client();
    a.send('a|authenticate|cymru|'); await a.reply('a');
    b.send('b|authenticate|cymru|'); await b.reply('b');
    a.send('a1|route|invite'); await a.reply('a1');
    b.send('b1|route|invite'); await b.reply('b1');
    a.send('s1|sip|txn|\r\nSIP/2.0 200 OK\r\n\r\n');
    await waitFor(() => sips.length === 1, 3000, 10, 'sip frame');
    expect(sips[0]!.slice(0, 4)).toEqual(['s1', 'sip', 'txn', '']);
    a.sock.destroy();
    await waitFor(() => gone.length === 1, 3000, 10, 'gone');
    const ids = new Set([0, 1, 2].map(() => server!.pickApp('invite')!.id));
    expect(ids.size).toBe(1);
  });
});
