// RFC 3261 §12 dialogs as drachtio keys them: id `<Call-ID>;from-tag=<tag of the creating
// request's From>`. Kept small (strings and numbers only) so that many thousands fit in memory.
import type { Protocol } from '../transport/types.js';

export type DialogRole = 'uas' | 'uac';

export class Dialog {
  readonly role: DialogRole;
  readonly callId: string;
  readonly localTag: string;
  /** drachtio dialog id (spec §3). */
  readonly id: string;
  state: 'early' | 'confirmed' | 'terminated' = 'early';
  /** Local URI header value with our tag, e.g. `<sip:svc@host>;tag=abc`. Used as From of our requests. */
  localParty: string;
  /** Remote URI header value with the peer's tag. Used as To of our requests. */
  remoteParty: string;
  remoteTag: string;
  /** Peer's Contact URI: the request-URI of our in-dialog requests. */
  remoteTarget: string;
  /** Route set in the order of Route headers we send (RFC 3261 §12.1). */
  routeSet: string[] = [];
  localSeq: number;
  remoteSeq = 0;
  /** CSeq number of the last INVITE we sent in this dialog (the 2xx ACK reuses it). */
  inviteSeq = 0;
  /** Transport towards the peer; connectionId keeps requests on the connection the dialog came on. */
  protocol: Protocol;
  address: string;
  port: number;
  connectionId: string | undefined;
  /** Listener the dialog lives on (Via / Contact of our requests). */
  localKey: string;
  /** Which app owns it (id of the wire connection). */
  appId: number;
  /** txnId of the INVITE that created it (spec §3: the 2xx ACK reuses it). */
  inviteTxnId: string;
  /** CSeq of the last ACK passed to the app (copies are absorbed). */
  lastAckSeq = -1;
  /** Next RSeq for reliable provisionals we send (RFC 3262 §7.1: random start). */
  rseq = 0;

  constructor(init: {
    role: DialogRole; callId: string; localTag: string; remoteTag: string; creatorFromTag: string;
    localParty: string; remoteParty: string; remoteTarget: string; localSeq: number;
    protocol: Protocol; address: string; port: number; connectionId: string | undefined; localKey: string;
    appId: number; inviteTxnId: string;
  }) {
    this.role = init.role;
    this.callId = init.callId;
    this.localTag = init.localTag;
    this.id = `${init.callId};from-tag=${init.creatorFromTag}`;
    this.localParty = init.localParty;
    this.remoteParty = init.remoteParty;
    this.remoteTag = init.remoteTag;
    this.remoteTarget = init.remoteTarget;
    this.localSeq = init.localSeq;
    this.protocol = init.protocol;
    this.address = init.address;
    this.port = init.port;
    this.connectionId = init.connectionId;
    this.localKey = init.localKey;
    this.appId = init.appId;
    this.inviteTxnId = init.inviteTxnId;
  }
}

/** Dialogs by drachtio id and by (Call-ID, local tag), which is how in-dialog requests find
 *  theirs (RFC 3261 §12.2.2: To tag is ours on requests we receive). */
export class DialogStore {
  private readonly byId = new Map<string, Dialog>();
  private readonly byLocal = new Map<string, Dialog>();
  /** The latest dialog of each Call-ID: an app's new request with that Call-ID goes into it. */
  private readonly byCallId = new Map<string, Dialog>();

  get size(): number { return this.byId.size; }

  add(d: Dialog): void {
    this.byId.set(d.id, d);
    this.byLocal.set(`${d.callId}\n${d.localTag}`, d);
    this.byCallId.set(d.callId, d);
  }

  get(id: string): Dialog | undefined { return this.byId.get(id); }

  /** A live dialog with this Call-ID (the most recently created one). */
  findByCallId(callId: string): Dialog | undefined { return this.byCallId.get(callId); }

  /** The dialog an incoming in-dialog request belongs to. */
  findByLocal(callId: string, localTag: string): Dialog | undefined {
    return this.byLocal.get(`${callId}\n${localTag}`);
  }

  remove(d: Dialog): void {
    d.state = 'terminated';
    if (this.byId.get(d.id) === d) this.byId.delete(d.id);
    const k = `${d.callId}\n${d.localTag}`;
    if (this.byLocal.get(k) === d) this.byLocal.delete(k);
    if (this.byCallId.get(d.callId) === d) this.byCallId.delete(d.callId);
  }

  *all(): IterableIterator<Dialog> { yield* this.byId.values(); }
}
