// RFC 3261 §12 dialogs: creation at the UAS (§12.1.1) and the UAC (§12.1.2), requests within a
// dialog (§12.2.1.1 route set, strict routers, local CSeq), received requests (§12.2.2 CSeq
// ordering and target refresh) and termination (§12.3). No sockets, no clock: a dialog is state.
import { describe, expect, it } from 'vitest';
import { Dialog, DialogStore, type DialogBinding } from '../../../src/engine/dialog/dialog.js';

const binding = (over: Partial<DialogBinding> = {}): DialogBinding => ({
  protocol: 'udp', address: '192.0.2.10', port: 5062, connectionId: undefined, localKey: 'udp/127.0.0.1:5060', appId: 7, ...over,
});

/** The dialog a UAS creates for an INVITE from alice with two Record-Routes and a Contact. */
function uas(cseq = 314159): Dialog {
  return Dialog.asUas({
    callId: 'a84b4c76e66710', from: '"Alice" <sip:alice@atlanta.example>;tag=1928301774', to: '<sip:bob@biloxi.example>',
    cseq, contact: '<sip:alice@pc33.atlanta.example;transport=udp>, <sip:alice@backup.example>',
    recordRoute: ['<sip:p1.example;lr>', '<sip:p2.example;lr>'], localTag: 'a6c85cf',
  }, binding());
}

/** The dialog a UAC creates from the 2xx (or reliable 1xx) to its INVITE. */
function uac(over: { contact?: string; recordRoute?: string[] } = {}): Dialog {
  return Dialog.asUac({
    callId: 'c-2', from: '<sip:alice@atlanta.example>;tag=ours', cseq: 101, requestUri: 'sip:bob@biloxi.example',
    to: '<sip:bob@biloxi.example>;tag=theirs', contact: 'contact' in over ? over.contact : '<sip:bob@192.0.2.4:5070>',
    recordRoute: over.recordRoute ?? ['<sip:p2.example;lr>', '<sip:p1.example;lr>'],
  }, binding({ appId: 3 }));
}

describe('§12.1.1 UAS dialog', () => {
  it('takes route set in order, remote target from the first Contact, remote CSeq from the request; ids as drachtio keys them', () => {
    const d = uas();
    expect(d.role).toBe('uas');
    expect(d.state).toBe('early');
    expect(d.id).toBe('a84b4c76e66710;from-tag=1928301774');
    expect(d.localTag).toBe('a6c85cf');
    expect(d.remoteTag).toBe('1928301774');
    expect(d.localParty).toBe('<sip:bob@biloxi.example>;tag=a6c85cf');
    expect(d.remoteParty).toBe('"Alice" <sip:alice@atlanta.example>;tag=1928301774');
    expect(d.remoteTarget).toBe('sip:alice@pc33.atlanta.example;transport=udp');
    expect(d.routeSet).toEqual(['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
    expect(d.remoteSeq).toBe(314159);
    // drachtio-server's stack starts our CSeq space at the INVITE's number (trace 03 #51).
    expect(d.localSeq).toBe(314159);
    expect(d.binding).toMatchObject({ appId: 7, address: '192.0.2.10' });
    d.confirm();
    expect(d.state).toBe('confirmed');
  });

  it('no Contact in the request: an empty remote target', () => {
    const d = Dialog.asUas({ callId: 'x', from: '<sip:a@h>;tag=f', to: '<sip:b@h>', cseq: 1, contact: undefined, recordRoute: [], localTag: 't' }, binding());
    expect(d.remoteTarget).toBe('');
    expect(d.routeSet).toEqual([]);
  });
});

describe('§12.1.2 UAC dialog', () => {
  it('reverses the Record-Route, takes the 2xx Contact, our CSeq; remote CSeq is empty', () => {
    const d = uac();
    expect(d.role).toBe('uac');
    expect(d.id).toBe('c-2;from-tag=ours');
    expect(d.localTag).toBe('ours');
    expect(d.remoteTag).toBe('theirs');
    expect(d.routeSet).toEqual(['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
    expect(d.remoteTarget).toBe('sip:bob@192.0.2.4:5070');
    expect(d.localSeq).toBe(101);
    expect(d.inviteSeq).toBe(101);
    expect(d.remoteSeq).toBeUndefined();
  });

  it('no Contact in the response: the Request-URI is the remote target', () => {
    expect(uac({ contact: undefined }).remoteTarget).toBe('sip:bob@biloxi.example');
  });

  it('a later response of the early dialog moves tag and target; the route set only when it records one; a 2xx confirms', () => {
    const d = uac();
    d.updateFromResponse({ to: '<sip:bob@biloxi.example>;tag=fork2', contact: '<sip:bob@192.0.2.5>', recordRoute: [], requestUri: 'sip:bob@biloxi.example' }, false);
    expect(d.state).toBe('early');
    expect(d.remoteTag).toBe('fork2');
    expect(d.remoteParty).toBe('<sip:bob@biloxi.example>;tag=fork2');
    expect(d.remoteTarget).toBe('sip:bob@192.0.2.5');
    expect(d.routeSet).toEqual(['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
    d.updateFromResponse({ to: '<sip:bob@biloxi.example>;tag=fork2', contact: undefined, recordRoute: ['<sip:q.example;lr>'], requestUri: 'sip:bob@biloxi.example' }, true);
    expect(d.state).toBe('confirmed');
    expect(d.routeSet).toEqual(['<sip:q.example;lr>']);
    expect(d.remoteTarget).toBe('sip:bob@biloxi.example');
  });
});

describe('§12.2.1.1 requests within a dialog', () => {
  it('loose routing: Request-URI is the remote target, Routes are the route set, the next hop the first Route', () => {
    const r = uas().route();
    expect(r).toEqual({
      requestUri: 'sip:alice@pc33.atlanta.example;transport=udp',
      routes: ['<sip:p1.example;lr>', '<sip:p2.example;lr>'],
      nextHop: 'sip:p1.example;lr',
    });
  });

  it('strict router first: it becomes the Request-URI, the remote target the last Route', () => {
    const d = uac({ recordRoute: ['<sip:p2.example;lr>', '<sip:strict.example>'] });
    expect(d.route()).toEqual({
      requestUri: 'sip:strict.example',
      routes: ['<sip:p2.example;lr>', '<sip:bob@192.0.2.4:5070>'],
      nextHop: 'sip:strict.example',
    });
    // The route set itself is not changed by building a request.
    expect(d.routeSet).toEqual(['<sip:strict.example>', '<sip:p2.example;lr>']);
  });

  it('no route set: the next hop is the target; the app may name another Request-URI', () => {
    const d = uac({ recordRoute: [] });
    expect(d.route()).toEqual({ requestUri: 'sip:bob@192.0.2.4:5070', routes: [], nextHop: 'sip:bob@192.0.2.4:5070' });
    expect(d.route('sip:other@192.0.2.9').nextHop).toBe('sip:other@192.0.2.9');
  });

  it('each request takes the next local CSeq; the INVITE number is kept for its ACK', () => {
    const d = uac();
    expect(d.nextLocalSeq()).toBe(102);
    expect(d.nextLocalSeq()).toBe(103);
    d.noteInviteSent(103);
    expect(d.inviteSeq).toBe(103);
    expect(d.localSeq).toBe(103);
  });
});

describe('§12.2.2 requests received within a dialog', () => {
  it('UAS dialog: a CSeq lower than the remote one is out of order and leaves it unchanged; equal or higher is in order', () => {
    const d = uas(10);
    expect(d.receiveCSeq(9)).toBe('out-of-order');
    expect(d.remoteSeq).toBe(10);
    expect(d.receiveCSeq(10)).toBe('in-order');
    expect(d.receiveCSeq(12)).toBe('in-order');
    expect(d.remoteSeq).toBe(12);
    expect(d.receiveCSeq(11)).toBe('out-of-order');
    expect(d.remoteSeq).toBe(12);
  });

  it('UAC dialog: an empty remote CSeq takes the first request\'s, whatever it is (even 0)', () => {
    const d = uac();
    expect(d.receiveCSeq(0)).toBe('in-order');
    expect(d.remoteSeq).toBe(0);
    expect(d.receiveCSeq(5)).toBe('in-order');
    expect(d.receiveCSeq(4)).toBe('out-of-order');
  });

  it('target refresh takes the first Contact URI; no Contact keeps the target', () => {
    const d = uas();
    d.refreshTarget('"A" <sip:alice@192.0.2.99:5090;transport=tcp>;expires=60, <sip:x@y>');
    expect(d.remoteTarget).toBe('sip:alice@192.0.2.99:5090;transport=tcp');
    d.refreshTarget(undefined);
    expect(d.remoteTarget).toBe('sip:alice@192.0.2.99:5090;transport=tcp');
  });

  it('ACK copies: the same CSeq again is a copy unless the 2xx was still waiting for it', () => {
    const d = uas();
    expect(d.noteAck(314159, true)).toBe(true);
    expect(d.noteAck(314159, false)).toBe(false);
    expect(d.noteAck(314160, false)).toBe(true);
    expect(d.noteAck(314160, true)).toBe(true);
  });

  it('RFC 3262 RSeq: a random start, then one more for each reliable provisional', () => {
    const d = uas();
    expect(d.nextRseq(() => 4000)).toBe(4000);
    expect(d.nextRseq(() => 1)).toBe(4001);
    expect(d.nextRseq(() => 1)).toBe(4002);
  });
});

describe('§12.3 termination and the store', () => {
  it('finds a dialog by id, by (Call-ID, local tag) and by Call-ID; remove terminates it, forgets it and tells the observer', () => {
    const ended: string[] = [];
    const store = new DialogStore((d) => ended.push(d.id));
    const d = uas();
    store.add(d);
    expect(store.size).toBe(1);
    expect(store.get(d.id)).toBe(d);
    expect(store.findByLocal('a84b4c76e66710', 'a6c85cf')).toBe(d);
    expect(store.findByLocal('a84b4c76e66710', '1928301774')).toBeUndefined();
    expect(store.findByCallId('a84b4c76e66710')).toBe(d);
    store.remove(d);
    expect(d.state).toBe('terminated');
    expect(store.size).toBe(0);
    expect(store.get(d.id)).toBeUndefined();
    expect(store.findByLocal('a84b4c76e66710', 'a6c85cf')).toBeUndefined();
    expect(store.findByCallId('a84b4c76e66710')).toBeUndefined();
    expect(ended).toEqual([d.id]);
    // A terminated dialog is not brought back by a late 2xx.
    d.confirm();
    expect(d.state).toBe('terminated');
  });

  it('removing a dialog another one with the same id replaced leaves the newer one in place', () => {
    const store = new DialogStore();
    const old = uas();
    const newer = uas(314200);
    store.add(old);
    store.add(newer);
    store.remove(old);
    expect(store.get(newer.id)).toBe(newer);
    expect(store.findByCallId(newer.callId)).toBe(newer);
    expect([...store.all()]).toEqual([newer]);
  });

  it('several dialogs of one Call-ID: each found by its local tag; by Call-ID only the latest, and none once it ended', () => {
    const store = new DialogStore();
    const mk = (localTag: string, fromTag: string): Dialog => Dialog.asUas({
      callId: 'shared-call-id-1', from: `<sip:a@x.example>;tag=${fromTag}`, to: '<sip:b@y.example>', cseq: 1,
      contact: '<sip:a@192.0.2.1>', recordRoute: [], localTag,
    }, binding());
    const [a, b, c] = [mk('tag-a', 'f1'), mk('tag-b', 'f2'), mk('tag-c', 'f3')];
    store.add(a); store.add(b); store.add(c);
    expect(store.findByLocal('shared-call-id-1', 'tag-a')).toBe(a);
    expect(store.findByLocal('shared-call-id-1', 'tag-b')).toBe(b);
    expect(store.findByLocal('shared-call-id-1', 'tag-c')).toBe(c);
    expect(store.findByLocal('other-call-id-12', 'tag-a')).toBeUndefined();
    expect(store.findByCallId('shared-call-id-1')).toBe(c);
    // An older one ends: the others stay, the latest is still the latest.
    store.remove(b);
    expect(store.findByLocal('shared-call-id-1', 'tag-b')).toBeUndefined();
    expect(store.findByLocal('shared-call-id-1', 'tag-a')).toBe(a);
    expect(store.findByCallId('shared-call-id-1')).toBe(c);
    // The latest ends: the older one is still found by its tag, but no longer by the Call-ID alone.
    store.remove(c);
    expect(store.findByLocal('shared-call-id-1', 'tag-a')).toBe(a);
    expect(store.findByCallId('shared-call-id-1')).toBeUndefined();
    // A newer one is the latest again; the hidden one stays hidden after it ends too.
    const d = mk('tag-d', 'f4');
    store.add(d);
    expect(store.findByCallId('shared-call-id-1')).toBe(d);
    store.remove(d);
    expect(store.findByCallId('shared-call-id-1')).toBeUndefined();
    expect(store.findByLocal('shared-call-id-1', 'tag-a')).toBe(a);
    store.remove(a);
    expect(store.findByLocal('shared-call-id-1', 'tag-a')).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('a newer dialog with the same Call-ID and local tag takes the older one\'s place, also after it ends', () => {
    const store = new DialogStore();
    const mk = (fromTag: string): Dialog => Dialog.asUas({
      callId: 'shared-call-id-2', from: `<sip:a@x.example>;tag=${fromTag}`, to: '<sip:b@y.example>', cseq: 1,
      contact: undefined, recordRoute: [], localTag: 'same-tag',
    }, binding());
    const [other, older, newer] = [Dialog.asUas({
      callId: 'shared-call-id-2', from: '<sip:a@x.example>;tag=f0', to: '<sip:b@y.example>', cseq: 1, contact: undefined, recordRoute: [], localTag: 'other-tag',
    }, binding()), mk('f1'), mk('f2')];
    store.add(other); store.add(older); store.add(newer);
    expect(store.findByLocal('shared-call-id-2', 'same-tag')).toBe(newer);
    expect(store.findByLocal('shared-call-id-2', 'other-tag')).toBe(other);
    store.remove(newer);
    expect(store.findByLocal('shared-call-id-2', 'same-tag')).toBeUndefined();
    expect(store.get(older.id)).toBe(older);
    store.remove(older);
    expect(store.findByLocal('shared-call-id-2', 'other-tag')).toBe(other);
    expect(store.size).toBe(1);
  });

  it('held dialogs share what they can: no route set, the peer address, the remote tag read from the remote party', () => {
    const a = uac({ recordRoute: [] });
    const b = uac({ recordRoute: [] });
    expect(a.routeSet).toBe(b.routeSet);
    expect(a.routeSet).toEqual([]);
    expect(a.binding.address).toBe('192.0.2.10');
    a.updateFromResponse({ to: '<sip:bob@biloxi.example>;tag=later', contact: undefined, recordRoute: [], requestUri: 'sip:bob@biloxi.example' }, true);
    expect(a.remoteTag).toBe('later');
    expect(a.route().routes).toEqual([]);
  });
});
