// RFC 3261 §12 dialogs, keyed as drachtio keys them (wire spec §3): id
// `<Call-ID>;from-tag=<tag of the creating request's From>`.
//   §12.1.1  creation at the UAS (from the request and our 1xx/2xx)      → Dialog.asUas
//   §12.1.2  creation at the UAC (from our request and a 1xx/2xx)        → Dialog.asUac, updateFromResponse
//   §12.2.1.1 requests within a dialog: CSeq, route set, strict routers   → nextLocalSeq, route
//   §12.2.2  requests received within a dialog: CSeq ordering, target refresh → receiveCSeq, refreshTarget
//   §12.3    termination                                                   → terminate (DialogStore.remove)
// Besides the RFC's state a dialog carries the engine's binding (peer transport, listener, app)
// and three counters of its INVITE usage (the last INVITE CSeq we sent, the last ACK CSeq
// delivered, RFC 3262 RSeq). Strings and numbers only, so that many thousands fit in memory
// (a held call is two dialogs, issue #18 item 5: nothing is kept that no one reads); every string is a flat copy (../transaction/own.ts), never a slice of
// the message it came from, which would keep that whole text alive for the dialog's life. The core reads a dialog through getters and changes it through the
// methods below, never by assignment.
import type { Protocol } from '../transport/types.js';
// Header readers (one import, to switch when the grammar module lands).
import { addrSpecOf, getTag, parseUri, splitCommaList } from '../../sip/grammar/index.js';
import { own } from '../transaction/own.js';
import { sharedCopies } from '../../flat-string.js';

export type DialogRole = 'uas' | 'uac';
export type DialogState = 'early' | 'confirmed' | 'terminated';

/** Where the dialog's peer is and which app owns it: the engine's, not the RFC's, state. */
export interface DialogBinding {
  /** Transport towards the peer; connectionId keeps requests on the connection the dialog came on. */
  protocol: Protocol;
  address: string;
  port: number;
  connectionId: string | undefined;
  /** Listener the dialog lives on (Via / Contact of our requests). */
  localKey: string;
  /** Which app owns it (id of the wire connection; 0: the core itself). */
  appId: number;
}

/** §12.1.1: what the UAS takes from the dialog-creating request and its own response. */
export interface UasCreation {
  callId: string;
  /** From and To header values of the request (To without our tag). */
  from: string;
  to: string;
  /** The request's CSeq number: the remote sequence number. */
  cseq: number;
  /** The request's Contact header value (the remote target), if any. */
  contact: string | undefined;
  /** The request's Record-Route values, in order. */
  recordRoute: readonly string[];
  /** The To tag of our response. */
  localTag: string;
}

/** §12.1.2: what the UAC takes from its request and the response that creates the dialog. */
export interface UacCreation {
  callId: string;
  /** Our From header value (with our tag). */
  from: string;
  /** The request's CSeq number: the local sequence number. */
  cseq: number;
  /** The request's Request-URI: the remote target when the response has no Contact. */
  requestUri: string;
  /** The response's To (with the peer's tag), Contact and Record-Route values. */
  to: string;
  contact: string | undefined;
  recordRoute: readonly string[];
}

/** §12.2.1.1: where a request within the dialog goes. */
export interface DialogRoute {
  requestUri: string;
  /** Route header values, in order. */
  routes: string[];
  /** The URI the request is sent to (first loose route, strict router, or the target). */
  nextHop: string;
}

/** Where a request claims to come from: its transport, source address and connection. */
export interface RequestOrigin {
  protocol: Protocol;
  address: string;
  connectionId: string | undefined;
}

/** `::ffff:192.0.2.1` and `192.0.2.1` are the same host. */
function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  const strip = (x: string): string => (x.startsWith('::ffff:') && x.includes('.') ? x.slice(7) : x);
  return strip(a) === strip(b);
}

/** The route set of the dialogs that have none (most): one frozen array, not one per dialog. */
const NO_ROUTES: readonly string[] = Object.freeze([]);

/** Flat copies of a route set (a new array: the caller's is never kept; none: NO_ROUTES). */
function ownAll(values: readonly string[]): string[] {
  if (values.length === 0) return NO_ROUTES as string[];
  const out = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = own(values[i]!);
  return out;
}

/**
 * The peer addresses of the binding, one string each: a received packet's source address is a
 * fresh string per packet, and thousands of held dialogs usually have a handful of peers.
 * Bounded: past the limit (an address per caller, say) it starts again rather than grow.
 */
const sharedHost = sharedCopies(1024);

/** First URI of a Contact header value. */
function contactUri(contact: string): string {
  return addrSpecOf(splitCommaList(contact)[0] ?? contact);
}

export class Dialog {
  readonly role: DialogRole;
  readonly callId: string;
  readonly localTag: string;
  /** drachtio dialog id (spec §3). */
  readonly id: string;
  // The binding's fields, kept on the dialog itself (one object per dialog, not two); read
  // through `binding`.
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly connectionId: string | undefined;
  readonly localKey: string;
  readonly appId: number;
  private stateNow: DialogState = 'early';
  /** Local URI header value with our tag, e.g. `<sip:svc@host>;tag=abc` (From of our requests). */
  private local: string;
  /** Remote URI header value with the peer's tag (To of our requests); the tag is read from it. */
  private remote: string;
  /** The peer's Contact URI: the Request-URI of our requests. */
  private target: string;
  /** Route set in the order of the Route headers we send (§12.1). */
  private routes: readonly string[];
  private localSeqNow: number;
  /** Undefined while "empty" (§12.1.2: a UAC dialog until the peer sends a request). */
  private remoteSeqNow: number | undefined;
  /** CSeq of the last INVITE we sent in this dialog (the 2xx ACK reuses it). */
  private inviteSeqNow = 0;
  /** CSeq of the last ACK passed to the app (copies are absorbed). */
  private lastAck = -1;
  /** Last RSeq of a reliable provisional we sent (RFC 3262 §7.1); 0: none yet. */
  private rseqNow = 0;
  /** DialogStore's chain of the live dialogs with this Call-ID, newest first (see there). */
  sameCallId: Dialog | undefined = undefined;
  /** DialogStore: set when a newer dialog with this Call-ID ended, which hides this one from
   *  findByCallId (an app's new request goes into the latest dialog only). */
  callIdHidden = false;

  private constructor(init: {
    role: DialogRole; callId: string; localTag: string; creatorFromTag: string; local: string; remote: string;
    target: string; routes: readonly string[]; localSeq: number; remoteSeq: number | undefined;
  }, binding: DialogBinding) {
    this.role = init.role;
    // Flat copies: the values come from received text and would keep it alive (own.ts).
    this.id = own(`${init.callId};from-tag=${init.creatorFromTag}`);
    this.callId = this.id.slice(0, init.callId.length);
    this.localTag = own(init.localTag);
    this.local = own(init.local);
    this.remote = own(init.remote);
    this.target = own(init.target);
    this.routes = ownAll(init.routes);
    this.localSeqNow = init.localSeq;
    this.remoteSeqNow = init.remoteSeq;
    this.protocol = binding.protocol;
    this.address = sharedHost(binding.address);
    this.port = binding.port;
    this.connectionId = binding.connectionId;
    this.localKey = binding.localKey;
    this.appId = binding.appId;
  }

  /**
   * §12.1.1: the dialog a UAS creates with a 1xx (early) or 2xx to a dialog-creating request.
   * Route set: the Record-Route values in order; remote target: the request's Contact; remote
   * CSeq: the request's. Our own CSeq space starts at the request's number, as drachtio-server's
   * stack does (trace 03 #51), where the RFC leaves it to the UAS.
   */
  static asUas(c: UasCreation, binding: DialogBinding): Dialog {
    const fromTag = getTag(c.from) ?? '';
    return new Dialog({
      role: 'uas', callId: c.callId, localTag: c.localTag, creatorFromTag: fromTag, local: `${c.to};tag=${c.localTag}`,
      remote: c.from, target: c.contact ? contactUri(c.contact) : '', routes: c.recordRoute,
      localSeq: c.cseq, remoteSeq: c.cseq,
    }, binding);
  }

  /**
   * §12.1.2: the dialog a UAC creates from a 1xx with a To tag or a 2xx. Route set: the
   * Record-Route values reversed; remote target: the response's Contact (else the Request-URI);
   * local CSeq: the request's; remote CSeq: empty.
   */
  static asUac(c: UacCreation, binding: DialogBinding): Dialog {
    const ourTag = getTag(c.from) ?? '';
    const d = new Dialog({
      role: 'uac', callId: c.callId, localTag: ourTag, creatorFromTag: ourTag, local: c.from, remote: c.to,
      target: c.contact ? contactUri(c.contact) : c.requestUri,
      routes: [...c.recordRoute].reverse(), localSeq: c.cseq, remoteSeq: undefined,
    }, binding);
    d.inviteSeqNow = c.cseq;
    return d;
  }

  /** Where the dialog's peer is and which app owns it. */
  get binding(): Readonly<DialogBinding> { return this; }
  get state(): DialogState { return this.stateNow; }
  get localParty(): string { return this.local; }
  get remoteParty(): string { return this.remote; }
  /** The peer's tag, read from the remote party when asked (in-dialog responses and ACKs only):
   *  a held dialog keeps no separate copy. */
  get remoteTag(): string { return getTag(this.remote) ?? ''; }
  get remoteTarget(): string { return this.target; }
  get routeSet(): readonly string[] { return this.routes; }
  get localSeq(): number { return this.localSeqNow; }
  /** Undefined while empty. */
  get remoteSeq(): number | undefined { return this.remoteSeqNow; }
  get inviteSeq(): number { return this.inviteSeqNow; }

  /**
   * §12.1.2 at the UAC: a later 1xx/2xx of the early dialog (peer tag, remote target, and the
   * route set when the response records one); `confirm` for a 2xx. The engine keeps one dialog
   * per INVITE: the app sees the last fork's provisional (wire spec §7.9).
   */
  updateFromResponse(r: { to: string; contact: string | undefined; recordRoute: readonly string[]; requestUri: string }, confirm: boolean): void {
    this.remote = own(r.to);
    this.target = own(r.contact ? contactUri(r.contact) : r.requestUri);
    if (r.recordRoute.length > 0) this.routes = ownAll(r.recordRoute).reverse();
    if (confirm) this.confirm();
  }

  /** A 2xx made the dialog confirmed (§12.1); a terminated dialog stays terminated. */
  confirm(): void {
    if (this.stateNow === 'early') this.stateNow = 'confirmed';
  }

  /**
   * §12.2 target refresh (re-INVITE, UPDATE, SUBSCRIBE, NOTIFY, REFER and their 2xx): the
   * first Contact URI becomes the remote target; no Contact leaves it unchanged.
   */
  refreshTarget(contact: string | undefined): void {
    if (contact) this.target = own(contactUri(contact));
  }

  /**
   * §12.2.2: check a request's CSeq against the remote sequence number. An empty remote number
   * takes the request's; a lower one means the request is out of order and must be refused
   * with 500 (the caller answers; the number is not changed); an equal or higher one is in order.
   */
  receiveCSeq(seq: number): 'in-order' | 'out-of-order' {
    if (this.remoteSeqNow !== undefined && seq < this.remoteSeqNow) return 'out-of-order';
    this.remoteSeqNow = seq;
    return 'in-order';
  }

  /** §12.2.1.1: the CSeq of our next request (one more than the last). */
  nextLocalSeq(): number {
    return ++this.localSeqNow;
  }

  /** An INVITE we sent in this dialog (its 2xx ACK reuses the number, §13.2.2.4). */
  noteInviteSent(seq: number): void {
    this.inviteSeqNow = seq;
  }

  /** An ACK for a 2xx arrived: false when it is a copy of the last one passed on (same CSeq). */
  noteAck(seq: number | undefined, expected: boolean): boolean {
    if (!expected && seq !== undefined && seq === this.lastAck) return false;
    if (seq !== undefined) this.lastAck = seq;
    return true;
  }

  /** RFC 3262 §3/§7.1: RSeq of our next reliable provisional: random start, then one more each time. */
  nextRseq(random: () => number): number {
    this.rseqNow = this.rseqNow > 0 ? this.rseqNow + 1 : random();
    return this.rseqNow;
  }

  /**
   * §12.2.1.1: Request-URI, Route headers and next hop of a request in this dialog. `uri` is the
   * Request-URI the app asked for (else the remote target). With a strict router first in the
   * route set, that router becomes the Request-URI and the target the last Route.
   */
  route(uri?: string): DialogRoute {
    let requestUri = uri ?? this.target;
    const routes = [...this.routes];
    let nextHop = requestUri;
    if (routes.length > 0) {
      const first = addrSpecOf(routes[0]!);
      const fu = parseUri(first);
      // A loose router is a sip/sips URI with `lr` (§19.1.1); anything else is routed strictly.
      if (fu && fu.scheme !== 'tel' && fu.port !== 0 && fu.params.has('lr')) {
        nextHop = first;
      } else {
        routes.shift();
        routes.push(`<${requestUri}>`);
        requestUri = first;
        nextHop = first;
      }
    }
    return { requestUri, routes, nextHop };
  }

  /**
   * Whether a request within this dialog (or its ACK) may come from `o` (RFC 6404 §2.3.2.1: a
   * third party that learnt the Call-ID and tags must not end or change the call). The owner is
   * the peer of the binding: the source of the creating request (UAS) or the target we sent to
   * (UAC). Over TCP/TLS it must be the same connection (for TLS that is also the same verified
   * certificate); over UDP the same transport and host address, any port. RFC 3261 lets a
   * request come from wherever the remote target's Contact points; at a peering edge, where
   * peers are configured by address, it may only come from the host the dialog is bound to.
   */
  acceptsFrom(o: RequestOrigin): boolean {
    const b = this.binding;
    if (o.protocol !== b.protocol) return false;
    if (b.protocol !== 'udp' && b.connectionId !== undefined) return o.connectionId === b.connectionId;
    return sameHost(o.address, b.address);
  }

  /** §12.3: the dialog is over (a BYE, a failure of its INVITE, an ACK timeout). */
  terminate(): void {
    this.stateNow = 'terminated';
  }
}

/**
 * Dialogs by drachtio id and by (Call-ID, local tag), which is how in-dialog requests find
 * theirs (§12.2.2: the To tag is ours on requests we receive).
 *
 * The second index is a map by Call-ID to a chain of that Call-ID's live dialogs, newest first
 * (`Dialog.sameCallId`): nearly every Call-ID has one dialog, so a lookup compares one tag, and
 * a held dialog costs one map entry keyed by its own Call-ID rather than an entry and a
 * `Call-ID + tag` key string of its own (issue #18 item 5). The chain's head is also the
 * Call-ID's latest dialog (findByCallId). Semantics as with one map per question: a newer
 * dialog with the same Call-ID and local tag takes the older one's place for findByLocal, and
 * once the latest dialog of a Call-ID ends, findByCallId finds none until a newer one is added.
 */
export class DialogStore {
  /** Told of every dialog that ends, so that its usages (2xx and 1xx retransmission) stop. */
  private readonly onRemove: ((d: Dialog) => void) | undefined;
  private readonly byId = new Map<string, Dialog>();
  /** Head of each Call-ID's chain of live dialogs, newest first. */
  private readonly byCallId = new Map<string, Dialog>();

  constructor(onRemove?: (d: Dialog) => void) {
    this.onRemove = onRemove;
  }

  get size(): number { return this.byId.size; }

  add(d: Dialog): void {
    this.byId.set(d.id, d);
    const head = this.byCallId.get(d.callId);
    // An older dialog with the same local tag is no longer found by it: take it off the chain.
    let prev: Dialog | undefined;
    for (let at = head; at !== undefined; prev = at, at = at.sameCallId) {
      if (at.localTag !== d.localTag) continue;
      if (prev === undefined) d.sameCallId = at.sameCallId;
      else { prev.sameCallId = at.sameCallId; d.sameCallId = head; }
      at.sameCallId = undefined;
      d.callIdHidden = false;
      this.byCallId.set(d.callId, d);
      return;
    }
    d.sameCallId = head;
    d.callIdHidden = false;
    this.byCallId.set(d.callId, d);
  }

  get(id: string): Dialog | undefined { return this.byId.get(id); }

  /** A live dialog with this Call-ID (the most recently created one). */
  findByCallId(callId: string): Dialog | undefined {
    const d = this.byCallId.get(callId);
    return d === undefined || d.callIdHidden ? undefined : d;
  }

  /** The dialog an incoming in-dialog request belongs to. */
  findByLocal(callId: string, localTag: string): Dialog | undefined {
    for (let d = this.byCallId.get(callId); d !== undefined; d = d.sameCallId) if (d.localTag === localTag) return d;
    return undefined;
  }

  /** Terminate the dialog and forget it (§12.3); the observer hears of it even when a newer
   *  dialog with the same id has taken its place in the store. */
  remove(d: Dialog): void {
    d.terminate();
    this.onRemove?.(d);
    if (this.byId.get(d.id) === d) this.byId.delete(d.id);
    const head = this.byCallId.get(d.callId);
    if (head === d) {
      const next = d.sameCallId;
      if (next === undefined) this.byCallId.delete(d.callId);
      else {
        // The latest dialog of this Call-ID ended: the older ones stay found by local tag only.
        next.callIdHidden = true;
        this.byCallId.set(d.callId, next);
      }
    } else {
      for (let at = head; at !== undefined; at = at.sameCallId) {
        if (at.sameCallId === d) { at.sameCallId = d.sameCallId; break; }
      }
    }
    d.sameCallId = undefined;
  }

  *all(): IterableIterator<Dialog> { yield* this.byId.values(); }
}
