// The B-leg of a call: the targets a route names, the request sent to one of them (Request-URI,
// From/To per RFC 3261 §8.1.1, headers by the receiving side's allowlist, RFC 3325 identity,
// RFC 8224 signature, egress listener) and one attempt at it, with the no-answer timer that
// lets the call flow fail over (RFC 3263 §4.3 ordered targets) and CANCEL on shutdown.
import { randomUUID } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { applyResourcePriority } from './limits/priority.js';
import { nextMaxForwards } from './admission.js';
import { newFrom, userPart, escapeUser, anonymizeFrom, ANONYMOUS_FROM, type HeaderAllowlist } from './topology.js';
import { hopUri, engineTlsHeaders, type NextHop } from '../routing/index.js';
import { parseUri, uriUser } from '../sip/grammar/index.js';
import { getHeader, headerReader, onFinalResponse, type Dialog, type Req, type Res } from './request-view.js';
import { indexOf, trustBetween } from './sides.js';
import type { CallRegistry } from './calls.js';
import { decliningAnswer } from './media/sdp.js';
import type { IdentityOutcome, IdentityStage, MediaStage, RequestView, Side } from './stages.js';

/** Tells the embedded engine which listener (`address:port`) a new request leaves from (docs/engine.md). */
export const EGRESS_HEADER = 'X-Peergate-Egress';

/** One place a call may go: a side, its target URI and, when found through DNS, the next hop. */
export interface Target { side: Side; uri: string; hop?: NextHop }

/** The targets of a route's destinations, in order (targets go to the engine as written). */
export function expandTargets(policy: Policy, destinations: string[]): Target[] {
  const out: Target[] = [];
  for (const d of destinations) {
    if (d === 'core') for (const uri of policy.core.targets) out.push({ side: { kind: 'core' }, uri });
    else {
      const peer = policy.peers.find((p) => p.id === d);
      for (const uri of peer?.targets ?? []) out.push({ side: { kind: 'peer', peer: peer! }, uri });
    }
  }
  return out;
}

/** The B-leg Request-URI: the target, carrying the called number when the target names no user. */
export function requestUriFor(targetUri: string, called: string): string {
  if (!called || uriUser(targetUri) !== undefined) return targetUri;
  const colon = targetUri.indexOf(':');
  return `${targetUri.slice(0, colon + 1)}${escapeUser(called)}@${targetUri.slice(colon + 1)}`;
}

/** The headers of the B-leg INVITE toward `target`, from the A-leg request `view`. */
export function outgoingHeaders(policy: Policy, req: Req, view: RequestView, from: Side, target: Target, identity: IdentityOutcome): Record<string, string> {
  const trust = trustBetween(from, target.side);
  const headers = applyResourcePriority(indexOf(policy).allowlist(target.side).requestHeaders((n) => view.get(n), trust), from, view.get('Resource-Priority'));
  const toTopology = target.side.kind === 'core' ? policy.core.topology : target.side.peer.topology;
  const scheme = target.uri.startsWith('sips:') ? 'sips' : 'sip';
  const anonymous = anonymizeFrom(view.get('Privacy'), toTopology.privacy, trust.trustedReceiver);
  headers['From'] = anonymous ? ANONYMOUS_FROM : newFrom(view.get('From'), scheme);
  const called = userPart(req.uri);
  headers['To'] = `<${scheme}:${called ? `${escapeUser(called)}@` : ''}${hostPortOf(target.uri)}>`;
  headers['Max-Forwards'] = String(nextMaxForwards(view.get('Max-Forwards')));
  const ct = view.get('Content-Type');
  if (ct && req.body) headers['Content-Type'] = ct;
  // The B-leg leaves from our listener on the target's side (the embedded engine consumes this
  // header; an external drachtio-server would send it on, so it is only set for ours).
  const egress = policy.engine.embedded ? listenerFor(policy, target) : undefined;
  if (egress) headers[EGRESS_HEADER] = egress.bound;
  if (policy.engine.embedded) Object.assign(headers, engineTlsHeaders(target));
  // The verification result is for our trust domain: the core, or a peer we trust (RFC 3325).
  if (trust.trustedReceiver) {
    Object.assign(headers, identity.addHeaders);
    if (identity.decorateFrom && !anonymous) headers['From'] = identity.decorateFrom(headers['From']!);
  }
  return headers;
}

/** Toward a peer that requires it, sign the B-leg INVITE (RFC 8224) and add Identity to `headers`. */
export async function signForTarget(identity: IdentityStage, policy: Policy, target: Target, view: RequestView, headers: Record<string, string>, body: string | undefined): Promise<void> {
  if (target.side.kind !== 'peer' || !target.side.peer.identity.sign) return;
  // RFC 4474's digest covers Call-ID, CSeq, Contact and body: fix them here so the engine keeps them.
  headers['Call-ID'] = randomUUID();
  headers['CSeq'] = '1 INVITE';
  const l = listenerFor(policy, target);
  const contact = l ? `<${l.scheme}:${l.hostport}${l.params}>` : undefined;
  if (contact) headers['Contact'] = contact;
  // The engine would rewrite `@localhost` after signing; write our host now.
  if (l) headers['From'] = headers['From']!.replace('@localhost>', `@${l.hostport}>`);
  Object.assign(headers, await identity.sign(policy, target.side, view, {
    from: headers['From']!, to: headers['To']!, callId: headers['Call-ID'], cseq: headers['CSeq'],
    ...(contact ? { contact } : {}), ...(body ? { body } : {}),
  }));
}

export type Attempt = { ok: true; uas: Dialog; uac: Dialog } | { ok: false; status: number; reason: string; noAnswer: boolean; noAck?: true };

export interface AttemptArgs {
  srf: Srf;
  calls: CallRegistry;
  media?: MediaStage;
  log: Logger;
  req: Req;
  res: Res;
  target: Target;
  headers: Record<string, string>;
  localSdpB: string | undefined;
  from: Side;
  policy: Policy;
  callId: string;
  /** The caller's side allowlist, for the B-leg's responses. */
  responseAllow: HeaderAllowlist;
  isCanceled: () => boolean;
  /** A provisional response beyond 100 Trying came back. */
  onProgress: () => void;
  /** The B-leg INVITE went out with this Call-ID. */
  onSent: (bCallId: string) => void;
}

/** After the ACK window, how long the engine's own ending of the caller's leg gets first. */
const ACK_WATCH_MARGIN_MS = 2_000;

/** One B-leg attempt. Resolves instead of throwing so the failover loop stays flat. */
export function attemptTarget(x: AttemptArgs): Promise<Attempt> {
  const { req, res, target, headers, localSdpB, from, policy, callId, responseAllow, isCanceled, onProgress, onSent, media } = x;
  let heardBack = false;
  let uacReq: Srf.SrfRequest | undefined;
  // The callee's 2xx: in a delayed-offer call drachtio-srf ACKs it only with the caller's answer.
  let answered: Srf.SrfResponse | undefined;
  return new Promise<Attempt>((resolve) => {
    let settled = false;
    let ackWatch: NodeJS.Timeout | undefined;
    const settle = (a: Attempt): void => { if (!settled) { settled = true; clearTimeout(timer); clearTimeout(ackWatch); unregister(); resolve(a); } };
    // An offer-less INVITE (delayed offer) makes drachtio-srf finish the B-leg only when the
    // caller's ACK brings the answer, and it hears of that ACK a turn late (setImmediate): a BYE
    // read in the same turn removes its listener, and the attempt would wait for ever (the
    // call counted in progress, its limits slot held). Once our 2xx is out the ACK has RFC 3261's
    // 64×T1 (§13.3.1.4: then the engine ends the caller's leg itself); past that the attempt ends
    // here and the callee's leg is ACKed and hung up (hangUpAnswered). With an offer in the
    // INVITE drachtio-srf finishes at the 2xx's echo: no watch (no timer per answered call).
    if (localSdpB === undefined) onFinalResponse(res, (status) => {
      if (settled || status < 200 || status >= 300) return;
      ackWatch = setTimeout(() => {
        if (answered) hangUpAnswered(x.srf, answered, x.log, callId, true);
        settle({ ok: false, status: 408, reason: 'No ACK', noAnswer: false, noAck: true });
      }, 64 * policy.engine.sip_timers.t1_ms + ACK_WATCH_MARGIN_MS);
    });
    // Shutdown while this attempt is in progress: CANCEL the B-leg, the caller gets 503.
    const unregister = x.calls.attempting(callId, () => {
      try { uacReq?.cancel(() => undefined); } catch { /* already final */ }
      settle({ ok: false, status: 503, reason: 'Service Unavailable', noAnswer: false });
    });
    // A target that sends nothing at all is dead: move on now rather than wait for Timer B
    // (32 s), and CANCEL it so its transaction ends.
    const timer = setTimeout(() => {
      if (heardBack || isCanceled()) return;
      try { uacReq?.cancel(() => undefined); } catch { /* already final */ }
      settle({ ok: false, status: 408, reason: 'No Answer', noAnswer: true });
    }, policy.failover.no_answer_ms);
    x.srf.createB2BUA(req, res, requestUriFor(target.uri, userPart(req.uri)), {
      headers,
      // A hop found through DNS (RFC 3263): the engine sends there, the Request-URI keeps the name.
      ...(target.hop ? { proxy: hopUri(target.hop) } : {}),
      proxyRequestHeaders: [],
      proxyResponseHeaders: [],
      passFailure: false,
      // With an offer from the caller, the target's SDP is the answer. Without one (delayed
      // offer) the target's 2xx carries the offer, which goes to the caller as ours, and the
      // caller's ACK carries the answer, which goes to the target in our ACK: both through the
      // media stage (anchored, or the identity rewrite), as docs/media.md "Late offer" says.
      ...(localSdpB !== undefined ? { localSdpB } : media ? {
        localSdpB: async (sdpA: string) => {
          if (!sdpA) return sdpA;
          const a = await media.answer({ callId, sdp: sdpA, leg: 'A', from, to: target.side, policy });
          if (!a.ok) throw Object.assign(new Error(a.refusal.reason), { status: a.refusal.status });
          return a.sdp;
        },
      } : {}),
      localSdpA: async (sdpB: string) => {
        if (!media || !sdpB) return sdpB;
        const lateOffer = localSdpB === undefined;
        const m = lateOffer
          ? await media.offer({ callId, sdp: sdpB, leg: 'B', from: target.side, to: from, policy })
          : await media.answer({ callId, sdp: sdpB, leg: 'B', from: target.side, to: from, policy });
        if (!m.ok) throw Object.assign(new Error(m.refusal.reason), { status: m.refusal.status });
        return m.sdp;
      },
      responseHeaders: ((uacRes: Srf.SrfResponse) => {
        heardBack = true;
        if (uacRes.status === 200) answered = uacRes;
        return responseAllow.requestHeaders(headerReader(uacRes), trustBetween(target.side, from), 'response');
      }) as unknown as Srf.CreateB2BUAOptions['responseHeaders'],
    }, {
      cbRequest: (...args: unknown[]) => {
        uacReq = args[args.length - 1] as Srf.SrfRequest;
        // The caller's CANCEL came before drachtio-srf listened for it (it does once this
        // INVITE is out): pass it on now, or the target would ring on with nobody to stop it.
        if (isCanceled()) { try { uacReq.cancel(() => undefined); } catch { /* already final */ } }
        const b = getHeader(uacReq, 'Call-ID');
        if (b) onSent(b);
      },
      cbProvisional: (p: { status: number }) => { heardBack = true; if (p.status > 100) onProgress(); },
    }).then(({ uas, uac }) => {
      // An abandoned target that answers late gets hung up at once.
      // (drachtio-srf's destroy() returns a promise its types do not show; a leg already gone rejects it.)
      if (settled) { for (const d of [uac, uas]) void Promise.resolve(d.destroy() as unknown).catch(() => undefined); return; }
      settle({ ok: true, uas, uac });
    }, (err: { status?: number; reason?: string; message?: string; res?: Srf.SrfResponse }) => {
      // A 2xx drachtio-srf formed no dialog from (no Contact, RFC 3261 §12.1.2): it ACKed it and
      // gave up. The target's leg is up all the same, in the engine and at the target: hang it
      // up, and tell the caller the target answered wrongly (502), in our words.
      const res = err.res;
      if (res && res.status >= 200 && res.status < 300) {
        x.log.warn({ call: callId, target: target.uri }, 'the target answered without a Contact: its leg hung up, the call refused with 502');
        hangUpAnswered(x.srf, res, x.log, callId, false);
        settle({ ok: false, status: 502, reason: 'Bad Gateway', noAnswer: false });
        return;
      }
      // A SIP failure from the target keeps its status; anything else (a library error) is a
      // plain 500 whose text never reaches the network. A caller's CANCEL that crossed the
      // target's 2xx is such an error too (drachtio-srf cannot answer the canceled INVITE; it
      // ACKs and BYEs the target): an ordinary race, not worth an error line.
      if (typeof err.status !== 'number') {
        if (isCanceled()) x.log.info({ call: callId, err: String(err.message ?? err) }, 'the caller canceled as the target answered: target hung up');
        else x.log.error({ call: callId, err: String(err.message ?? err) }, 'B-leg error');
      }
      settle(typeof err.status === 'number' ? { ok: false, status: err.status, reason: err.reason ?? 'Call Failed', noAnswer: false } : { ok: false, status: 500, reason: 'Server Internal Error', noAnswer: false });
    });
  });
}

/** What drachtio-srf's response to our INVITE carries beyond its published types. */
interface AnsweredInvite { body?: string; stackDialogId?: string; socket?: unknown; sendAck(dialogId: string, opts: { body?: string; headers?: Record<string, string> }): void }
interface InDialogRequests { request(uri: string, opts: { method: string; stackDialogId: string; headers: Record<string, string>; _socket: unknown }, cb: (err: unknown) => void): unknown }

/** Hang up a target's leg that answered (2xx) but that drachtio-srf keeps no dialog of, through
 *  the engine's dialog (`res.stackDialogId`). Two cases: a delayed-offer call whose caller's ACK
 *  never reached drachtio-srf (it holds the target's ACK for the caller's answer, so `ack`:
 *  ACK first, with an answer declining every stream, RFC 3261 §13.2.2.4: a valid answer, then
 *  BYE); and a 2xx without Contact (drachtio-srf ACKed it). Nothing else would end such a leg:
 *  RFC 3261 §13.3.1.4 leaves it to the target's BYE, which many never send. */
function hangUpAnswered(srf: Srf, res: Srf.SrfResponse, log: Logger, callId: string, ack: boolean): void {
  const r = res as unknown as AnsweredInvite;
  const id = r.stackDialogId;
  if (!id) return;
  try {
    if (ack) {
      const answer = r.body ? decliningAnswer(r.body) : undefined;
      r.sendAck(id, answer ? { body: answer, headers: { 'Content-Type': 'application/sdp' } } : {});
    }
    // The engine reads `sip:placeholder` as "the dialog's remote target" (as drachtio-server does).
    (srf as unknown as InDialogRequests).request('sip:placeholder', { method: 'BYE', stackDialogId: id, headers: { Reason: ack ? 'SIP ;cause=408 ;text="no ACK from the caller"' : 'SIP ;cause=502 ;text="2xx without Contact"' }, _socket: r.socket }, (err) => {
      if (err) log.warn({ call: callId, err: String(err) }, 'BYE to an answered target leg not sent');
    });
  } catch (err) {
    log.warn({ call: callId, err: String(err) }, 'answered target leg not hung up');
  }
}

/** Our listener on the target's side: the address requests whose signature covers From and Contact (RFC 4474) must carry. */
function listenerFor(policy: Policy, target: Target): { scheme: string; hostport: string; params: string; bound: string } | undefined {
  const parsed = target.hop ? undefined : parseUri(target.uri);
  const want = target.hop?.transport ?? (parsed?.params.get('transport')?.toLowerCase() || (parsed?.scheme === 'sips' ? 'tls' : 'udp'));
  const side = target.side.kind === 'core' ? 'core' : 'peer';
  // A hop found through DNS leaves from a listener of its address family (IPv6 hops from an IPv6 listener).
  const fam = target.hop ? isIPv6(target.hop.address) : undefined;
  const l = policy.listen.find((x) => x.side === side && x.transport === want && (fam === undefined || isIPv6(x.address) === fam))
    ?? policy.listen.find((x) => x.side === side && x.transport === want) ?? policy.listen.find((x) => x.side === side);
  if (!l) return undefined;
  const host = l.advertise ?? (l.address.includes(':') ? `[${l.address}]` : l.address);
  return { scheme: l.transport === 'tls' ? 'sips' : 'sip', hostport: `${host}:${l.port}`, params: l.transport === 'udp' ? '' : `;transport=${l.transport}`, bound: `${l.address}:${l.port}` };
}

/** `sip:user@host:port;transport=udp` → `host:port;transport=udp` (what goes after the @ of the
 *  new To: the URI without scheme, userinfo and `?headers`). */
function hostPortOf(uri: string): string {
  const u = parseUri(uri);
  if (u === null || u.scheme === 'tel') return uri.slice(uri.indexOf(':') + 1);
  let s = u.port === undefined ? u.host : `${u.host}:${u.port}`;
  for (const [k, v] of u.params) s += v === '' ? `;${k}` : `;${k}=${v}`;
  return s;
}
