// Releasing what a drachtio-srf Dialog keeps of the INVITE once the call is established.
//
// Why: a drachtio-srf `Dialog` keeps `req` and `res` of the INVITE (its Request and Response,
// each with a parsed SipMessage and the received text) for the dialog's whole life: ≈ 16 KB
// per held call, both legs (issue #18 item 5, BENCHMARKS.md "held calls"). drachtio-srf is used
// unchanged from npm, so once both legs are up (and the session has read what it needs of the
// INVITE and the 2xx, session/index.ts) the B2BUA swaps them for small frozen stand-ins.
//
// Contract with drachtio-srf (lib/dialog.js, checked by test/unit/sbc/slim-dialog.test.ts,
// which fails when a drachtio-srf version reads anything else): after its constructor, a
// Dialog reads only
//   this.req.method        (get dialogType: INVITE or SUBSCRIBE)
//   this.req.get('Event')  (get subscribeEvent, SUBSCRIBE dialogs only)
//   this.req.socket        (get socket: the engine connection in-dialog requests go out on)
//   this.res.stackDialogId (get id: the key of srf's dialog map and of every in-dialog request)
// Nothing else of drachtio-srf reaches a Dialog's req or res once createB2BUA has resolved.
// srf's own map of dialogs (`srf._dialogs`, keyed by the id) is re-keyed with the flat copy of
// the id: its key was a slice of the 2xx's wire message, which kept that whole text alive.
// Of the strings the Dialog keeps itself, drachtio-srf reads only `local.sdp`, `local.contact`
// and `remote.sdp` after its constructor (re-INVITEs, checked by the same test) and peergate
// `sip.callId` (/admin/calls): those are replaced by flat copies, so that none keeps the
// received text alive as a V8 sliced string (src/flat-string.ts); the tags and URIs, which
// nothing reads, are dropped (set undefined, not deleted: a delete would turn the objects into
// dictionaries).
//
// `fastListenerTable` / `restoreListeners` keep the Dialog's EventEmitter table a fast-mode
// object (Node's is a null-prototype dictionary, ≈ 450 B once the session and the relay listen).
import { flat, sharedCopies } from '../flat-string.js';
import type { Dialog } from './request-view.js';

/** The member reads of a Dialog's `req` / `res` after its constructor that the stand-ins serve. */
export const SERVED_READS = { req: ['get', 'method', 'socket'], res: ['stackDialogId'] } as const;

/** What stays of the INVITE request: its method, the engine socket and the Event header. */
class SlimRequest {
  constructor(readonly method: string, readonly socket: unknown, private readonly event: string | undefined) {
    Object.freeze(this);
  }

  /** Only the Event header is kept (SUBSCRIBE dialogs); any other name is a broken contract. */
  get(name: string): string | undefined {
    if (name.toLowerCase() === 'event') return this.event;
    throw new Error(`slim-dialog: drachtio-srf read header ${name} of a released INVITE (src/sbc/slim-dialog.ts)`);
  }
}

/** What stays of the INVITE's final response: the engine's dialog id. */
class SlimResponse {
  constructor(readonly stackDialogId: string) { Object.freeze(this); }
}

/**
 * Our Contact in a dialog (`local.contact`: the one we sent) is peergate's own address, the same
 * for every call on a listener: one copy for all held dialogs, not one each. Bounded, since an
 * app could put anything there: past the limit it starts again.
 */
const sharedContact = sharedCopies(256);
const ourContact = (contact: string | undefined): string | undefined => (contact === undefined ? undefined : sharedContact(contact));

/**
 * drachtio-srf keeps its dialogs in `srf._dialogs`, a Map keyed by `dialog.id` as the wire
 * message gave it: a V8 slice of that message's whole text (≈ 0.7 KB per leg, kept for the
 * call's life). Put the entry under the flat copy instead: an equal string, so every lookup by
 * a request's `stackDialogId` still finds it (checked on srf.js by the slim-dialog test).
 */
function rekey(dialogs: unknown, id: string, keptId: string, dialog: Dialog): void {
  if (!(dialogs instanceof Map) || dialogs.get(id) !== dialog) return;
  dialogs.delete(id);
  dialogs.set(keptId, dialog);
}

interface HeldParts {
  srf?: { _dialogs?: unknown };
  req: { method: string; socket: unknown; get(name: string): string | undefined };
  res: { stackDialogId: string };
  sip: { callId: string; remoteTag: string; localTag: string };
  local: { uri?: string; sdp?: string; contact?: string };
  remote: { uri?: string; sdp?: string };
  _events?: Record<string, unknown>;
}

/** Swap the dialog's INVITE request and response for stand-ins; idempotent. `callId`: a flat
 *  copy of the dialog's Call-ID already kept for the call (shared rather than copied again). */
export function slimDialog(dialog: Dialog, callId?: string): void {
  const d = dialog as unknown as HeldParts;
  if (d.req instanceof SlimRequest) return;
  const id = d.res.stackDialogId;
  const method = d.req.method;
  const event = method === 'SUBSCRIBE' ? d.req.get('Event') : undefined;
  // The method as a literal of this module (INVITE nearly always): not a copy per dialog.
  d.req = new SlimRequest(method === 'INVITE' ? 'INVITE' : method === 'SUBSCRIBE' ? 'SUBSCRIBE' : flat(method), d.req.socket, flat(event));
  const keptId = flat(id);
  d.res = new SlimResponse(keptId);
  rekey(d.srf?._dialogs, id, keptId, dialog);
  d.sip.callId = callId !== undefined && callId === d.sip.callId ? callId : flat(d.sip.callId);
  (d.sip as { remoteTag?: string }).remoteTag = undefined;
  (d.sip as { localTag?: string }).localTag = undefined;
  d.local.uri = undefined;
  d.local.sdp = flat(d.local.sdp);
  d.local.contact = ourContact(d.local.contact);
  d.remote.uri = undefined;
  d.remote.sdp = flat(d.remote.sdp);
}

/** Make the dialog's Call-ID a flat copy now and return it, so that what else keeps it for the
 *  call (its record) shares that copy; `slimDialog(dialog, sameCopy)` then keeps it too. */
export function ownCallId(dialog: Dialog): string {
  const sip = (dialog as unknown as HeldParts).sip;
  sip.callId = flat(sip.callId);
  return sip.callId;
}

/** A dialog's EventEmitter table in fast mode: a constructor's objects get V8 maps shared by
 *  every dialog with the same listeners, where Node's `{ __proto__: null }` literal is a
 *  dictionary. Its prototype is an empty frozen object without a prototype, so an event named
 *  like an Object.prototype member finds nothing, as before. */
function ListenerTable(): void {}
ListenerTable.prototype = Object.freeze(Object.create(null) as object);

/**
 * Before the call's listeners are added (session, relay): give the dialog a fast-mode listener
 * table, and return the entries it had (drachtio-srf's one-time 'ack' listener) for
 * `restoreListeners` to put back after ours. Appended last, the 'ack' entry is the table's last
 * property, and deleting the last property keeps V8's fast mode (any other delete would turn
 * the table back into a dictionary). Listeners added or removed later work as before
 * (EventEmitter only reads and writes the table's entries).
 */
export function fastListenerTable(dialog: Dialog): Record<string, unknown> | undefined {
  const d = dialog as unknown as HeldParts;
  const old = d._events;
  if (!old || Object.getPrototypeOf(old) !== null) return undefined;
  d._events = new (ListenerTable as unknown as new () => Record<string, unknown>)();
  return old;
}

/** Put back what `fastListenerTable` took, after the listeners added since. */
export function restoreListeners(dialog: Dialog, old: Record<string, unknown> | undefined): void {
  const d = dialog as unknown as HeldParts;
  const table = d._events;
  // removeAllListeners() (a BYE meanwhile) replaced the table: what was taken is gone with it.
  if (!old || !table || !(table instanceof (ListenerTable as unknown as new () => object))) return;
  for (const k in old) {
    const prev = table[k];
    // An event both had (none today): srf's listeners first, as they were registered first.
    table[k] = prev === undefined ? old[k] : ([] as unknown[]).concat(old[k], prev);
  }
}

/** Whether `slimDialog` has released this dialog's INVITE (tests, admin checks). */
export function isSlim(dialog: Dialog): boolean {
  return (dialog as unknown as HeldParts).req instanceof SlimRequest;
}
