// Rendering requests inside a dialog (RFC 3261 §12.2.1.1: From/To/Call-ID of the dialog, the
// next local CSeq, the route set with loose or strict routing) and the rules every message the
// core sends shares: which headers an app may set (wire spec §7.5), the made-up reason phrases,
// the echo meta of spec §4.5.
import type { SipRequest } from '../message/types.js';
import type { SendTarget } from '../transport/types.js';
import type { Dialog } from '../dialog/dialog.js';
import { randomToken, sipUriOf } from './fields.js';
import { protocolOf, type Listener, type Listeners } from './listeners.js';
import { OutMessage } from './outgoing.js';
import { isIP } from 'node:net';

/** Names the listener a new request leaves from (`address:port`); consumed by the engine, never sent. */
export const EGRESS_HEADER = 'x-peergate-egress';
/** Outbound TLS name and pin for a new request (docs/routing.md); consumed by the engine, never sent. */
export const TLS_SERVER_NAME_HEADER = 'x-peergate-tls-server-name';
export const TLS_PIN_HEADER = 'x-peergate-tls-pin';
/** Headers an app can never set (spec §7.5), and peergate's engine-only app headers. */
export const APP_FORBIDDEN = new Set(['via', 'route', 'record-route', 'rseq', 'content-length', EGRESS_HEADER, TLS_SERVER_NAME_HEADER, TLS_PIN_HEADER]);
/** Headers the core writes itself from the request/dialog. */
export const CORE_OWNED = new Set(['from', 'to', 'call-id', 'cseq']);

export const REASONS: Record<number, string> = {
  100: 'Trying', 200: 'OK', 400: 'Bad Request', 408: 'Request Timeout', 481: 'Call/Transaction Does Not Exist',
  487: 'Request Terminated', 491: 'Request Pending', 500: 'Server Internal Error', 503: 'Service Unavailable',
};

export const EMPTY = Buffer.alloc(0);

/** The route set of a request outside any dialog: shared, never written to (an INVITE's
 *  ClientCtx keeps its `routes` for the 32 s of Accepted). */
export const NO_ROUTES: string[] = [];

/** A request the core rendered, with what the layer and the dialog need of it. */
export interface Built {
  bytes: Buffer;
  request: SipRequest;
  target: SendTarget;
  local: Listener;
  seq: number;
  topVia: string;
  routes: string[];
  requestUri: string;
}

/** An extra header for a request: lower-case name, value, spelling. */
export type ExtraHeader = [string, string, string];

/**
 * A request inside dialog `d` (§12.2.1.1). `uri` overrides the remote target as Request-URI;
 * `seq` reuses a CSeq number (the ACK of a 2xx), else the dialog's next one is taken. The next
 * hop is the first Route (or the target) when it is an IP literal, else the dialog's peer.
 */
export function buildInDialog(listeners: Listeners, d: Dialog, method: string, uri: string | undefined, extra: ExtraHeader[], body: Buffer, seq?: number): Built | undefined {
  const b = d.binding;
  const local = listeners.byKey(b.localKey) ?? listeners.forProtocol(b.protocol);
  if (!local) return undefined;
  const { requestUri, routes, nextHop } = d.route(uri);
  const nu = sipUriOf(nextHop);
  // The listener itself is the target's `local` (address, port): one shared object, where a
  // fresh copy per request stayed alive with each waiting transaction and kept ACK (40 B each).
  const from = local;
  let target: SendTarget = { protocol: b.protocol, address: b.address, port: b.port, connectionId: b.connectionId, local: from };
  if (nu && isIP(nu.host.replace(/^\[|\]$/g, ''))) {
    const proto = protocolOf(nu);
    const port = nu.port ?? (proto === 'tls' ? 5061 : 5060);
    const host = nu.host.replace(/^\[|\]$/g, '');
    target = { protocol: proto, address: host, port, connectionId: proto === b.protocol && proto !== 'udp' ? b.connectionId : undefined, local: from };
  }
  const topVia = listeners.via(local, `z9hG4bK${randomToken()}`);
  const cseqNum = seq ?? d.nextLocalSeq();
  const out = new OutMessage();
  out.add('via', topVia);
  for (const r of routes) out.add('route', r);
  out.add('max-forwards', '70');
  out.add('from', d.localParty);
  out.add('to', d.remoteParty);
  out.add('call-id', d.callId);
  out.add('cseq', `${cseqNum} ${method}`);
  let hasContact = false;
  for (const [n, v, raw] of extra) { if (n === 'contact') hasContact = true; out.add(n, v, raw); }
  if (!hasContact && (method === 'INVITE' || method === 'SUBSCRIBE' || method === 'REFER')) out.add('contact', listeners.contact(local));
  const bytes = out.render(`${method} ${requestUri} SIP/2.0`, body);
  return { bytes, request: out.asRequest(method, requestUri, body), target, local, seq: cseqNum, topVia, routes, requestUri };
}

/** Echo meta (spec §4.5): over UDP our own address, over TCP/TLS the remote end. */
export function echoMeta(local: Listener, target: SendTarget, bytes: number, txnId: string): { bytes: number; protocol: string; address: string; port: number; txnId: string } {
  if (target.protocol === 'udp') return { bytes, protocol: 'udp', address: local.address, port: local.port, txnId };
  return { bytes, protocol: target.protocol, address: target.address, port: target.port, txnId };
}
