// The first step of every request, and the requests answered without a call. Who sent it
// (listener side, core source addresses, peer attribution with its TLS identity, RFC 5922),
// refusals with their Reason (RFC 3326), Retry-After, Allow and Warning headers, and the
// out-of-dialog requests the B2BUA does not relay: OPTIONS answered here (keep-alives between
// SBEs), other known methods 405, unknown methods 501 (RFC 3261 §8.2.1). Also counts every
// final response a request gets, whichever code path sends it.
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { admit, allowedMethods, methodRefusal, SERVED_METHODS } from './admission.js';
import { TLS_IDENTITY_HEADER, parseTlsIdentity } from '../sip/tls-identity.js';
import { ACCEPT_HEADERS } from './validate.js';
import { getHeader, onFinalResponse, requestView, type Req, type Res } from './request-view.js';
import { classifySource, indexOf, sideLabel, type Unattributed } from './sides.js';
import type { LimitsStage, Refusal, RequestView, Side } from './stages.js';
import { LineBudget } from '../log-budget.js';

/** What the request desk reports (part of the B2BUA's observer). */
export interface RequestObserver {
  request(peer: string, method: string): void;
  /** `source`: the address the refused request came from (reputation strikes); `tlsIdentity`: the
   *  SHA-256 fingerprint of the verified client certificate it came with, if any (strikes then
   *  count against that identity, issue #17.4). */
  refusal(peer: string, reason: string, source: string, tlsIdentity?: string): void;
  response(peer: string, status: number): void;
}

export type RefusalWithAllow = Refusal & { allow?: readonly string[] };

export class RequestDesk {
  /** INVITEs the engine answered 487 on CANCEL (responses_total counts that, not the app's). */
  private readonly canceledResponses = new WeakSet<Res>();
  /** The verified TLS identity (certificate fingerprint) each attributed request came with. */
  private readonly tlsIdentityOf = new WeakMap<Res, string>();
  /** 'request refused' lines: ten a second per peer and reason, the rest counted in the next one. */
  private readonly refusalLines = new LineBudget();

  constructor(private readonly opts: { policy: () => Policy; log: Logger; observer: RequestObserver; limits?: LimitsStage }) {}

  /** Who sent the request; a source that is refused is answered (or not) here and gets undefined. */
  attribute(policy: Policy, req: Req, res: Res, view: RequestView): Side | undefined {
    // Only the embedded engine is trusted to have stripped a network copy of the TLS identity header.
    const tls = policy.engine.embedded && req.protocol === 'tls' ? parseTlsIdentity(view.get(TLS_IDENTITY_HEADER)) : null;
    if (tls) this.tlsIdentityOf.set(res, tls.fingerprint256);
    const from = this.classify(policy, req, view, tls);
    // Every final response this request gets, ours or a B-leg's, whichever code path sends it.
    onFinalResponse(res, (status) => {
      if (!this.canceledResponses.has(res)) this.opts.observer.response('refuse' in from ? from.peer ?? 'unknown' : sideLabel(from), status);
    });
    if ('refuse' in from) { this.refuseUnknown(policy, res, from, view.sourceAddress); return undefined; }
    this.opts.observer.request(sideLabel(from), req.method);
    return from;
  }

  /** The engine answered this INVITE 487 on CANCEL: the app's later response is not counted. */
  canceled(res: Res): void {
    this.canceledResponses.add(res);
  }

  refuse(res: Res, peer: string, r: RefusalWithAllow, log: Logger, source: string): void {
    this.opts.observer.refusal(peer, r.label, source, this.tlsIdentityOf.get(res));
    const leftOut = log.isLevelEnabled('info') ? this.refusalLines.take(`${peer}\n${r.label}`) : undefined;
    if (leftOut !== undefined) log.info({ status: r.status, reason: r.label, ...(leftOut > 0 ? { not_logged_before: leftOut } : {}) }, 'request refused');
    if (!res.finalResponseSent) res.send(r.status, r.reason, warningHeaders(r));
  }

  /** The call flow threw: 500 with our own Reason, never the exception's text. */
  internalError(req: Req, res: Res, err: unknown): void {
    this.opts.log.error({ callId: getHeader(req, 'Call-ID'), err: err instanceof Error ? err.stack : String(err) }, 'call flow error');
    try { if (!res.finalResponseSent) res.send(500, 'Internal Error', { headers: { Reason: 'SIP;cause=500;text="peergate internal error"' } }); } catch { /* connection gone */ }
  }

  options(req: Req, res: Res): void {
    const policy = this.opts.policy();
    if (!this.attribute(policy, req, res, requestView(req))) return;
    // Keep-alive pings between SBEs: answered here, never relayed (nothing about the far side leaks).
    res.send(200, { headers: { Allow: 'INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, INFO' } });
  }

  /** REGISTER, MESSAGE, INFO, SUBSCRIBE, NOTIFY, PUBLISH outside a dialog. */
  other(req: Req, res: Res): void {
    const policy = this.opts.policy();
    const view = requestView(req);
    const from = this.attribute(policy, req, res, view);
    if (!from) return;
    const label = sideLabel(from);
    if (from.kind === 'peer') {
      const refusal = admit({ method: req.method, protocol: req.protocol, maxForwards: view.get('Max-Forwards'), vias: view.getAll('Via') }, from.peer, indexOf(policy).own);
      if (refusal) return this.refuse(res, label, refusal, this.opts.log, view.sourceAddress);
    }
    // Out-of-dialog requests other than INVITE and OPTIONS are not relayed across the interconnect.
    const allow = from.kind === 'peer' ? allowedMethods(from.peer) : undefined;
    this.refuse(res, label, { status: 405, reason: 'Method Not Allowed', label: 'method', allow }, this.opts.log, view.sourceAddress);
  }

  /** A method peergate does not recognise (RFC 3261 §8.2.1): 501 to a known peer or our core,
   *  silence to anyone else (attribute() stays silent for unknown sources). */
  unknownMethod(req: Req, res: Res): void {
    const policy = this.opts.policy();
    const view = requestView(req);
    const from = this.attribute(policy, req, res, view);
    if (!from) return;
    const refusal = methodRefusal(req.method, from.kind === 'peer' ? from.peer : { methods: SERVED_METHODS })
      ?? { status: 501, reason: 'Not Implemented', label: 'method' };
    this.refuse(res, sideLabel(from), refusal, this.opts.log, view.sourceAddress);
  }

  private classify(policy: Policy, req: Req, view: RequestView, tls: ReturnType<typeof parseTlsIdentity>): Side | Unattributed {
    return classifySource(policy, req.receivedOn, req.protocol, view.sourceAddress, tls, this.opts.limits);
  }

  /** Unknown sources learn nothing: no answer at all unless the policy asks for 403. */
  private refuseUnknown(policy: Policy, res: Res, r: Unattributed, source: string): void {
    if (r.answer) return this.refuse(res, r.peer ?? 'unknown', r.answer, this.opts.log, source);
    const reason = r.refuse;
    this.opts.observer.refusal('unknown', reason, source, this.tlsIdentityOf.get(res));
    this.opts.log.debug({ reason }, 'request from unknown source');
    if (policy.unknown_source === '403') res.send(403, 'Forbidden', {});
  }
}

/** A refusal's headers: Reason (RFC 3326), Allow, Retry-After, Warning, Accept* on 415. */
export function warningHeaders(r: RefusalWithAllow): { headers: Record<string, string> } {
  const headers: Record<string, string> = { Reason: `SIP;cause=${r.status};text="${r.reason.replace(/"/g, '')}"` };
  if (r.allow !== undefined) headers['Allow'] = r.allow.join(', ');
  if (r.retryAfterS !== undefined) headers['Retry-After'] = String(r.retryAfterS);
  if (r.warning) headers['Warning'] = `399 peergate "${r.warning.replace(/"/g, '')}"`;
  if (r.status === 415) Object.assign(headers, ACCEPT_HEADERS);
  if (r.headers) Object.assign(headers, r.headers);
  return { headers };
}
