// The contract of src/sbc/slim-dialog.ts with drachtio-srf (used unchanged from npm): once a
// call is established, a Dialog's `req` and `res` are swapped for stand-ins that serve only the
// reads drachtio-srf makes of them after the Dialog's constructor. These tests read
// drachtio-srf's own source, so that a drachtio-srf version that reads anything else of them
// fails here rather than in a held call; and they run real drachtio-srf Dialogs on stand-ins.
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVED_READS, fastListenerTable, isSlim, restoreListeners, slimDialog } from '../../../src/sbc/slim-dialog.js';
import { flat } from '../../../src/flat-string.js';
import type { Dialog } from '../../../src/sbc/request-view.js';

const require = createRequire(import.meta.url);
setFlagsFromString('--expose-gc');
const lib = dirname(require.resolve('drachtio-srf/lib/dialog.js'));
const source = (file: string): string => readFileSync(join(lib, file), 'utf8');

/** The text of `class Dialog`'s constructor body and the rest of dialog.js without it. */
function splitConstructor(js: string): { ctor: string; rest: string } {
  const start = js.indexOf('constructor(srf, type, opts) {');
  expect(start).toBeGreaterThan(0);
  let depth = 0;
  let i = js.indexOf('{', start);
  for (; i < js.length; i++) {
    if (js[i] === '{') depth++;
    else if (js[i] === '}' && --depth === 0) break;
  }
  return { ctor: js.slice(start, i + 1), rest: js.slice(0, start) + js.slice(i + 1) };
}

/** `this.req.x` / `this.res.x` member reads, as "req.x". */
const memberReads = (js: string): string[] => [...new Set([...js.matchAll(/this\.(req|res)\.(\w+)/g)].map((m) => `${m[1]}.${m[2]}`))].sort();

describe('drachtio-srf reads of a Dialog\'s req and res (slim-dialog contract)', () => {
  const { ctor, rest } = splitConstructor(source('dialog.js'));

  it('after the constructor, dialog.js reads exactly the members the stand-ins serve', () => {
    const served = [...SERVED_READS.req.map((m) => `req.${m}`), ...SERVED_READS.res.map((m) => `res.${m}`)].sort();
    expect(memberReads(rest)).toEqual(served);
    // Nor does it hand the whole request or response on (only `this.req.` / `this.res.` reads).
    expect([...rest.matchAll(/this\.(req|res)\b(?!\.)/g)].map((m) => m[0])).toEqual([]);
    expect(rest).not.toMatch(/\{[^}]*\b(req|res)\b[^}]*\}\s*=\s*this\b/);
    // get() is asked for the Event header only (subscribeEvent).
    expect([...rest.matchAll(/this\.req\.get\(([^)]*)\)/g)].map((m) => m[1])).toEqual(["'Event'"]);
  });

  it('after the constructor, dialog.js reads only the SDPs and our Contact of sip/local/remote', () => {
    // slimDialog drops the tags and URIs (nothing reads them) and keeps flat copies of these.
    const reads = [...new Set([...rest.matchAll(/this\.(sip|local|remote)\.(\w+)/g)].map((m) => `${m[1]}.${m[2]}`))].sort();
    expect(reads).toEqual(['local.contact', 'local.sdp', 'remote.sdp']);
    expect([...rest.matchAll(/this\.sip\b/g)]).toEqual([]);
  });

  it('the constructor is where the rest is read (before any slimming)', () => {
    // The control: the constructor reads much more of them, so the split above is meaningful.
    expect(memberReads(ctor)).toEqual(expect.arrayContaining(['req.getParsedHeader', 'req.body', 'res.get', 'res.agent']));
  });

  it('no other drachtio-srf module reads a dialog\'s req or res after createB2BUA resolves', () => {
    // srf.js reads `uac.res` once, while createB2BUA builds the A-leg (before it resolves).
    const dialogReads = (js: string) => [...js.matchAll(/\b(dialog|dlg|uas|uac|other)\.(req|res)\b/g)].map((m) => m[0]);
    expect(dialogReads(source('srf.js'))).toEqual(['uac.res']);
    for (const f of ['drachtio-agent.js', 'request.js', 'response.js', 'connect.js', 'proto.js']) expect(dialogReads(source(f)), f).toEqual([]);
    const b2bua = source('srf.js');
    const readAt = b2bua.indexOf('finalResponse = uac.res');
    expect(readAt).toBeGreaterThan(0);
    expect(readAt).toBeLessThan(b2bua.indexOf('return callback(null, {uac, uas});  // successfully connected!', readAt));
  });
});

describe('drachtio-srf\'s map of dialogs (slimDialog re-keys it)', () => {
  it('srf.js keys `_dialogs` by dialog.id and only sets, gets, tests, deletes and counts it', () => {
    const srf = source('srf.js');
    const uses = [...srf.matchAll(/this\._dialogs(\.\w+\([^)]*\)|\s*=\s*new Map\(\)|\.size)/g)].map((m) => m[1]!.replace(/\s+/g, ' '));
    expect(new Set(uses)).toEqual(new Set([' = new Map()', '.has(req.stackDialogId)', '.get(req.stackDialogId)', '.get(stackDialogId)', '.set(dialog.id, dialog)', '.size', '.delete(dialog.id)']));
    // No other module reaches it (an iteration would see the re-keyed entry last, which is harmless too).
    for (const f of ['dialog.js', 'drachtio-agent.js', 'request.js', 'response.js', 'connect.js', 'proto.js']) expect(source(f), f).not.toMatch(/_dialogs/);
  });
});

describe('slimDialog on real drachtio-srf Dialogs', () => {
  const DrachtioDialog = require('drachtio-srf/lib/dialog.js') as new (srf: unknown, type: string, opts: unknown) => Dialog;
  const SipMessage = require('drachtio-srf/lib/sip-parser/message.js') as new (text: string) => object;
  /** drachtio-srf's own parsed message (what its Request and Response wrap) of real SIP text. */
  const parsed = (text: string): object => new SipMessage(text);

  const sdp = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const invite = (method = 'INVITE') => `${method} sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-abcdefgh-12345\r\n` +
    'From: <sip:alice@192.0.2.1>;tag=from-tag-abcdefghijkl\r\nTo: <sip:bob@192.0.2.2>\r\nCall-ID: call-id-abcdefghijklmnop@192.0.2.1\r\n' +
    `CSeq: 1 ${method}\r\nContact: <sip:alice@192.0.2.1:5060>\r\nEvent: presence\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`;
  const ok = (method = 'INVITE') => `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-abcdefgh-12345\r\n` +
    'From: <sip:alice@192.0.2.1>;tag=from-tag-abcdefghijkl\r\nTo: <sip:bob@192.0.2.2>;tag=to-tag-abcdefghijklmn\r\nCall-ID: call-id-abcdefghijklmnop@192.0.2.1\r\n' +
    `CSeq: 1 ${method}\r\nContact: <sip:bob@192.0.2.2:5060>\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`;

  function uac(method = 'INVITE'): { dialog: Dialog; socket: object; agent: object } {
    const socket = { name: 'engine connection' };
    const agent = { name: 'agent' };
    const req = Object.assign(parsed(invite(method)), { socket });
    const res = Object.assign(parsed(ok(method)), { agent, socket, stackDialogId: 'stack-dialog-id-0123456789;uac' });
    return { dialog: new DrachtioDialog({}, 'uac', { req, res }), socket, agent };
  }

  it('keeps what drachtio-srf reads later: id, socket, dialogType, subscribeEvent, agent, sip, local, remote', () => {
    for (const method of ['INVITE', 'SUBSCRIBE']) {
      const { dialog, socket, agent } = uac(method);
      const d = dialog as unknown as Record<string, any>;
      const before = { id: d.id, type: d.dialogType, event: d.subscribeEvent, sip: { ...d.sip }, local: { ...d.local }, remote: { ...d.remote } };
      expect(before.id).toBe('stack-dialog-id-0123456789;uac');
      expect(isSlim(dialog)).toBe(false);
      slimDialog(dialog);
      slimDialog(dialog); // idempotent
      expect(isSlim(dialog)).toBe(true);
      expect(d.id).toBe(before.id);
      expect(d.dialogType).toBe(method);
      expect(d.subscribeEvent).toBe(method === 'SUBSCRIBE' ? 'presence' : null);
      expect(d.socket).toBe(socket);
      expect(d.agent).toBe(agent);
      // What drachtio-srf and peergate read later is kept; the tags and URIs are dropped.
      expect(d.sip.callId).toBe(before.sip.callId);
      expect(d.local.sdp).toBe(before.local.sdp);
      expect(d.local.contact).toBe(before.local.contact);
      expect(d.remote.sdp).toBe(before.remote.sdp);
      expect([d.sip.localTag, d.sip.remoteTag, d.local.uri, d.remote.uri]).toEqual([undefined, undefined, undefined, undefined]);
      expect(before.sip.localTag && before.local.uri && before.remote.uri).toBeTruthy();
      expect(d.toJSON()).toMatchObject({ id: before.id, type: 'uac', sip: { callId: before.sip.callId } });
      // The INVITE and its 2xx are gone: stand-ins, frozen, with no message text.
      expect(Object.isFrozen(d.req) && Object.isFrozen(d.res)).toBe(true);
      expect(d.req.body).toBeUndefined();
      expect(d.res.get).toBeUndefined();
      expect(() => d.req.get('Call-ID')).toThrow(/slim-dialog/);
    }
  });

  it('srf\'s dialog map still finds the dialog by its id after slimming, and only it', () => {
    const socket = { name: 'engine connection' };
    const srf = { _dialogs: new Map<string, unknown>() };
    const wire = `0123|sip|network|stack-dialog-id-0123456789;uac|\r\n${ok()}`;
    const id = wire.slice(wire.indexOf('stack-'), wire.indexOf('|\r\n'));
    const req = Object.assign(parsed(invite()), { socket });
    const res = Object.assign(parsed(ok()), { agent: {}, socket, stackDialogId: id });
    const dialog = new DrachtioDialog(srf, 'uac', { req, res });
    srf._dialogs.set((dialog as unknown as { id: string }).id, dialog);
    srf._dialogs.set('another;id', 'another dialog');
    slimDialog(dialog);
    expect(srf._dialogs.get('stack-dialog-id-0123456789;uac')).toBe(dialog);
    expect(srf._dialogs.get('another;id')).toBe('another dialog');
    expect(srf._dialogs.size).toBe(2);
    // A dialog srf does not hold under its id (another one is there) is left alone.
    const { dialog: other } = uac();
    const theirs = { _dialogs: new Map<string, unknown>([['stack-dialog-id-0123456789;uac', 'someone else']]) };
    (other as unknown as { srf: unknown }).srf = theirs;
    slimDialog(other);
    expect(theirs._dialogs.get('stack-dialog-id-0123456789;uac')).toBe('someone else');
  });

  it('srf\'s dialog map no longer keeps the wire message its key was cut from', () => {
    // Each id is a slice of a 40 KB wire text: kept, that text costs ≈ 40 KB per dialog.
    const gc = runInNewContext('gc') as () => void;
    const heap = (): number => { gc(); gc(); return process.memoryUsage().heapUsed; };
    const srf = { _dialogs: new Map<string, unknown>() };
    const make = (i: number): Dialog => {
      const wire = `${i}|sip|network|stack-dialog-id-${String(i).padStart(8, '0')};uac|${'x'.repeat(40_000)}\r\n`;
      const id = wire.slice(wire.indexOf('stack-'), wire.indexOf('|x'));
      const res = Object.assign(parsed(ok()), { agent: {}, socket: {}, stackDialogId: id });
      const d = new DrachtioDialog(srf, 'uac', { req: Object.assign(parsed(invite()), { socket: {} }), res });
      srf._dialogs.set(id, d);
      slimDialog(d);
      return d;
    };
    make(-1);
    const before = heap();
    const kept = Array.from({ length: 200 }, (_, i) => make(i));
    const per = (heap() - before) / kept.length;
    expect(srf._dialogs.size).toBe(201);
    expect(per).toBeLessThan(10_000);
  });

  it('in-dialog requests still go out through the agent on the dialog\'s socket and id', async () => {
    const { dialog, socket, agent } = uac();
    const sent: Array<Record<string, any>> = [];
    Object.assign(agent, {
      request: (opts: Record<string, any>, cb: (err: unknown, req: unknown) => void) => {
        sent.push(opts);
        cb(null, { on: (_e: string, f: (r: unknown) => void) => f({ status: 200, get: () => '', has: () => false, body: '' }) });
      },
    });
    slimDialog(dialog);
    await (dialog as unknown as { request(o: object): Promise<unknown> }).request({ method: 'INFO', body: 'x' });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ method: 'INFO', stackDialogId: 'stack-dialog-id-0123456789;uac', _socket: socket });
  });

  it('shares the Call-ID copy the call already keeps when it is the same text', () => {
    const { dialog } = uac();
    const d = dialog as unknown as Record<string, any>;
    const kept = flat(`${d.sip.callId}`);
    slimDialog(dialog, kept);
    expect(d.sip.callId).toBe(kept);
  });

  it('fastListenerTable: the call\'s listeners, then srf\'s one-time ACK listener last; emit, on, removeAllListeners as before', () => {
    const { dialog } = uac();
    const e = dialog as unknown as import('node:events').EventEmitter & { _events: object };
    const heard: string[] = [];
    e.once('ack', () => heard.push('srf ack'));
    const taken = fastListenerTable(dialog);
    e.on('destroy', () => heard.push('destroy'));
    e.on('info', () => heard.push('info'));
    e.on('info', () => heard.push('info 2'));
    restoreListeners(dialog, taken);
    expect(Object.keys(e._events)).toEqual(['destroy', 'info', 'ack']);
    expect(Object.getPrototypeOf(Object.getPrototypeOf(e._events))).toBeNull();
    expect(e.emit('toString')).toBe(false);
    expect(e.listenerCount('constructor')).toBe(0);
    e.emit('ack');
    e.emit('ack');
    e.emit('destroy');
    e.emit('info');
    e.on('refer', () => heard.push('refer'));
    e.emit('refer');
    expect(heard).toEqual(['srf ack', 'destroy', 'info', 'info 2', 'refer']);
    expect(Object.keys(e._events)).toEqual(['destroy', 'info', 'refer']);
    expect(e.listenerCount('info')).toBe(2);
    e.removeAllListeners();
    expect(e.emit('info')).toBe(false);
  });

  it('restoreListeners after removeAllListeners (a BYE meanwhile) puts nothing back', () => {
    const { dialog } = uac();
    const e = dialog as unknown as import('node:events').EventEmitter;
    e.once('ack', () => undefined);
    const taken = fastListenerTable(dialog);
    e.on('destroy', () => undefined);
    e.removeAllListeners();
    restoreListeners(dialog, taken);
    expect(e.eventNames()).toEqual([]);
  });

  it('flat() copies are equal to their input', () => {
    const text = invite();
    const cut = text.slice(text.indexOf('call-id-'), text.indexOf('\r\nCSeq'));
    expect(flat(cut)).toBe(cut);
    expect(flat(undefined)).toBeUndefined();
    expect(flat('short')).toBe('short');
    // Non-ASCII and a lone surrogate (which a UTF-8 round trip would turn into U+FFFD) stay equal.
    const wide = `${cut}-\u00e9\u{1f4de}`;
    expect(flat(wide)).toBe(wide);
    const lone = `${cut}\ud800`;
    expect(flat(lone)).toBe(lone);
  });
});
