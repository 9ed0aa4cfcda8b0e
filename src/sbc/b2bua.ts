// The peergate B2BUA on drachtio-srf. The call flow reads top to bottom in `onInvite`:
//
//   who sent it (peers) → admission → limits → identity → routing
//     → media offer → B-leg (ordered failover) → media answer → relay in-dialog → end
//
// Each countermeasure is a stage with its own module; this file only composes them. Around
// the flow: requests.ts (who sent it, refusals, requests answered without a call), b-leg.ts
// (targets, the B-leg INVITE, one attempt), relay.ts (in-dialog requests of an established
// call), sides.ts (per-policy lookups, RFC 3325 trust), request-view.ts (reading srf messages).
// Topology hiding happens on every message that leaves: the engine gives each leg its own
// Call-ID, tags, branches, Via and Contact, and topology.ts decides which other headers cross.
import { randomUUID } from 'node:crypto';
import Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import { admit, KNOWN_METHODS } from './admission.js';
import { userPart } from './topology.js';
import { selectRoute } from './routing.js';
import { hopUri, type LocationRouting } from '../routing/index.js';
import { uriHost } from '../sip/grammar/index.js';
import { TLS_IDENTITY_HEADER, parseTlsIdentity } from '../sip/tls-identity.js';
import type { Side, Refusal, Stages, IdentityOutcome, PreAdmittedCall, RequestView } from './stages.js';
import { CallRegistry, type ActiveCall, type Hangup } from './calls.js';
import { noCallRecorder, refusalEnd, answerOf, identityVerdictOf, type CallRecorder } from './cdr/events.js';
import { validateInvite } from './validate.js';
import { unanchoredSdpSeam } from './media/sdp-topology.js';
import { sessionTable, establish, intervalTooSmall, systemClock, type SessionTable, type Clock, type LegDialog, type PeergateEnding, PEERGATE_ENDINGS } from './session/index.js';
import { onFinalResponse, requestView, type Req, type Res, type Dialog } from './request-view.js';
import { indexOf, sideLabel } from './sides.js';
import { RequestDesk, type RequestObserver } from './requests.js';
import { attemptTarget, expandTargets, outgoingHeaders, signForTarget, type Target } from './b-leg.js';
import { relayInDialog, relayReinvites } from './relay.js';
import { watchNewDialogs } from './new-dialogs.js';
import { CallOutcome, type OutcomeSinks } from './outcome.js';
import { slimDialog, fastListenerTable, ownCallId, restoreListeners } from './slim-dialog.js';
import { EstablishedCall, type EstablishedSinks } from './established.js';
import { flat } from '../flat-string.js';

export type { ActiveCall, Hangup } from './calls.js';
/** The engine's header for a verified client certificate (parsed by src/sip/tls-identity.ts). */
export { TLS_IDENTITY_HEADER, parseTlsIdentity };
/** Tells the embedded engine which listener a new request leaves from (b-leg.ts, docs/engine.md). */

/** Everything the B2BUA reports; the ops module turns these into Prometheus metrics. */
export interface B2buaObserver extends RequestObserver {
  /** An established call (both legs up). */
  callStarted(peer: string, direction: 'inbound' | 'outbound'): void;
  /** An established call ended. */
  callEnded(peer: string, direction: 'inbound' | 'outbound'): void;
  /** Every INVITE's outcome: refused, no_route, failed, canceled, error, or how an established
   *  call ended: caller_bye, callee_bye, session_expired, max_duration, media_timeout, dialog_gone, shutdown. */
  callFinished(peer: string, direction: 'inbound' | 'outbound', result: string): void;
  /** INVITE received → final response sent to the caller (answered or failed), seconds. */
  callSetup(peer: string, direction: 'inbound' | 'outbound', seconds: number): void;
  /** Routed INVITE → first ringing, progress or final response sent to the caller (RFC 6076 SRD), seconds. */
  postDialDelay?(peer: string, direction: 'inbound' | 'outbound', seconds: number): void;
  /** An established call ended: answer → hang-up, seconds. */
  callDuration?(peer: string, direction: 'inbound' | 'outbound', seconds: number): void;
}

const noopObserver: B2buaObserver = { request() {}, refusal() {}, response() {}, callStarted() {}, callEnded() {}, callFinished() {}, callSetup() {} };

export interface B2buaOptions {
  /** The running policy; each call captures the one current when it starts. */
  policy: () => Policy;
  stages?: Stages;
  log: Logger;
  observer?: B2buaObserver;
  /** RFC 3263 / ENUM location and target health; absent: targets go to the engine as written. */
  routing?: LocationRouting;
  /** Call records (src/sbc/cdr): told how each INVITE goes, from attribution to its end. */
  recorder?: CallRecorder;
  /** With the embedded engine: whether it still holds a dialog (reconciliation, src/sbc/session). */
  dialogExists?: (dialogId: string) => boolean;
  clock?: Clock;
}

const FAILOVER_STATUSES = new Set([408, 503]);

export class B2bua {
  readonly srf: Srf;
  private readonly calls = new CallRegistry();
  /** Established calls and their timers; swept periodically (src/sbc/session/table.ts). */
  readonly sessions: SessionTable;
  /** Attribution, refusals and the requests answered without a call (requests.ts). */
  private readonly desk: RequestDesk;
  private readonly observer: B2buaObserver;
  private readonly stages: Stages;
  private readonly recorder: CallRecorder;
  /** Where every call's outcome is reported (outcome.ts). */
  private readonly sinks: OutcomeSinks;
  /** Where established calls report (established.ts). */
  private readonly heldSinks: EstablishedSinks;

  constructor(private readonly opts: B2buaOptions) {
    this.srf = new Srf();
    watchNewDialogs(this.srf, relayReinvites);
    this.observer = opts.observer ?? noopObserver;
    const stages = opts.stages ?? {};
    // Without rtpengine, SDP identity fields are still rewritten (media/sdp-topology.ts).
    this.stages = stages.media ? stages : { ...stages, media: unanchoredSdpSeam() };
    this.recorder = opts.recorder ?? noCallRecorder;
    this.sinks = { observer: this.observer, calls: this.calls, media: this.stages.media };
    this.heldSinks = { observer: this.observer, media: this.stages.media };
    this.desk = new RequestDesk({ policy: opts.policy, log: opts.log, observer: this.observer, limits: this.stages.limits });
    // Media inactivity is asked of rtpengine only: the unanchored seam has no activity to report.
    this.sessions = sessionTable(opts.clock ?? systemClock, opts.policy, opts.dialogExists, stages.media);
    // drachtio-srf crashes the process on an unhandled 'error' (e.g. ECONNREFUSED while reconnecting).
    this.srf.on('error', (err: Error) => opts.log.warn({ err: err.message }, 'engine connection error'));
    this.srf.invite((req, res) => { void this.onInvite(req as Req, res).catch((err: unknown) => this.desk.internalError(req as Req, res, err)); });
    const srfAny = this.srf as unknown as Record<string, (cb: (req: Req, res: Res) => void) => void>;
    srfAny.options!((req, res) => this.desk.options(req, res));
    for (const m of ['register', 'message', 'info', 'subscribe', 'notify', 'publish']) {
      srfAny[m]!((req, res) => this.desk.other(req, res));
    }
    // Methods no handler above names (extension methods) reach this middleware; see connect().
    (this.srf as unknown as { use(fn: (req: Req, res: Res, next: () => void) => void): void }).use((req, res, next) => {
      if (KNOWN_METHODS.has(req.method)) next();
      else this.desk.unknownMethod(req, res);
    });
  }

  /** Connect to the engine (embedded or an external drachtio-server). `tags`: what this app says
   *  of itself to the engine (a worker's index, app/workers/hello.ts). */
  connect(target: { host: string; port: number; secret: string; tags?: string[] }): Promise<string> {
    return new Promise((resolve, reject) => {
      const onErr = (err: Error) => reject(err);
      this.srf.once('error', onErr);
      this.srf.once('connect', (err: Error | null, hostport: string) => {
        this.srf.removeListener('error', onErr);
        // Ask the engine for requests of every method, so that an unknown method from a peer can
        // be answered 501 (the embedded engine's `*` route; drachtio-srf routes named verbs only).
        if (!err && this.opts.policy().engine.embedded) (this.srf as unknown as { reregisterForMessages(v: string): void }).reregisterForMessages('*');
        if (err) reject(err); else resolve(hostport);
      });
      void this.srf.connect({ host: target.host, port: target.port, secret: target.secret, ...(target.tags?.length ? { tags: target.tags } : {}) });
    });
  }

  disconnect(): void {
    this.sessions.stop();
    try { this.srf.disconnect(); } catch { /* never connected */ }
  }

  // ---------------------------------------------------------------- lifecycle (calls.ts)

  /** Established calls, for /admin/calls. */
  activeCalls(): ActiveCall[] { return this.calls.list(); }
  /** INVITEs in progress: setting up or established. */
  get liveCalls(): number { return this.calls.liveCount; }
  /** Refuse new INVITEs (503 + Retry-After); calls in progress and their in-dialog requests go on. */
  drain(retryAfterS: number): void { this.calls.drain(retryAfterS); }
  /** Resolves when no INVITE is in progress any more. */
  whenIdle(): Promise<void> { return this.calls.whenIdle(); }
  /** BYE (with h's Reason) on both legs of every established call; CANCEL + 503 for calls being set up. */
  endAll(h: Hangup): Promise<void> { return this.calls.endAll(h); }

  /**
   * End an established call from peergate's side (drain, maximum duration …): BYE on both legs.
   * `reason` is the calls_total result and the call record's end_reason. false: no such call.
   */
  endCall(id: string, reason: PeergateEnding): boolean {
    return this.sessions.end(id, reason);
  }

  // ---------------------------------------------------------------- the call flow

  private async onInvite(req: Req, res: Res): Promise<void> {
    const policy = this.opts.policy();
    const view = requestView(req);
    // The engine may have decided limits already (src/app/preadmit.ts): its slot is the call's
    // only if stage 3 claims it; every other way out of the flow frees it.
    const pre = this.stages.limits?.preadmitted?.(policy, view);
    if (pre === undefined) return this.callFlow(req, res, policy, view, undefined);
    try {
      await this.callFlow(req, res, policy, view, pre);
    } finally {
      pre.settle();
    }
  }

  private async callFlow(req: Req, res: Res, policy: Policy, view: RequestView, pre: PreAdmittedCall | undefined): Promise<void> {
    const c = indexOf(policy);

    // 1. Who sent it. Nothing from the message itself can change the answer.
    const from = this.desk.attribute(policy, req, res, view);
    if (!from) return;
    const fromLabel = sideLabel(from);
    const receivedAt = performance.now();
    // Flat: randomUUID() builds its text by concatenation (a tree of ≈ 30 strings), and this id is kept everywhere the call is.
    const callId = flat(randomUUID());
    this.calls.begin(callId);
    const callerCallId = flat(view.callId);
    const log = this.opts.log.child({ call: callId, call_id: callerCallId });
    let canceled = false;
    // The engine answers the INVITE 487 itself when the caller cancels: that is the final
    // response counted; whatever the app sends after it never reaches the caller.
    req.on('cancel', () => { canceled = true; this.desk.canceled(res); this.observer.response(fromLabel, 487); });
    // Every INVITE ends exactly once with a result (calls_total{result}), however it ends.
    const direction = from.kind === 'peer' ? 'inbound' : 'outbound';
    const initialPeer = from.kind === 'peer' ? from.peer.id : 'none';
    const trace = this.recorder.begin({
      id: callId, callId: callerCallId, peer: initialPeer, direction, calling: userPart(view.get('From')), called: userPart(req.uri),
      source: { address: view.sourceAddress, port: view.sourcePort }, transport: req.protocol,
      tls: policy.engine.embedded && req.protocol === 'tls' ? parseTlsIdentity(view.get(TLS_IDENTITY_HEADER)) : null,
    });
    // `call.finish(result, end)`: the result for metrics, `end` (status, who, why) for the call
    // record. An object, not a closure: an established call keeps it, not this setup scope (outcome.ts).
    const call = new CallOutcome(this.sinks, callId, direction, initialPeer, trace, this.opts.log, callerCallId);

    // 1b. Everything the A-leg needs to be answered, before limits or any B-leg (validate.ts).
    const invalid = validateInvite(view);
    if (invalid) { call.finish('refused'); return this.desk.refuse(res, fromLabel, invalid, log, view.sourceAddress); }

    // 2. Admission: a draining node (SIGTERM, POST /admin/drain) sends peers and DNS SRV to the
    //    pool's other nodes; then methods, REGISTER, Max-Forwards, loops, transport.
    const draining = this.calls.refusing();
    if (draining) {
      const refusal: Refusal = { status: 503, reason: 'Service Unavailable', label: 'draining', retryAfterS: draining.retryAfterS, warning: 'node draining' };
      call.finish('refused', refusalEnd(refusal));
      return this.desk.refuse(res, fromLabel, refusal, log, view.sourceAddress);
    }
    if (from.kind === 'peer') {
      const refusal = admit({ method: 'INVITE', protocol: req.protocol, maxForwards: view.get('Max-Forwards'), vias: view.getAll('Via') }, from.peer, c.own);
      if (refusal) { call.finish('refused', refusalEnd(refusal)); return this.desk.refuse(res, fromLabel, refusal, log, view.sourceAddress); }
    }

    // RFC 4028 §6: a session interval below our Min-SE is refused before any slot is taken.
    const tooSmall = intervalTooSmall(view.get('Session-Expires') ?? view.get('x'), policy.sessions.session_timer.min_se_s);
    if (tooSmall) { const refusal = { ...tooSmall, label: 'session_interval' }; call.finish('refused', refusalEnd(refusal)); this.desk.refuse(res, fromLabel, refusal, log, view.sourceAddress); return; }

    // 3. Limits: per-peer call rate, concurrent sessions (peer and global).
    if (this.stages.limits) {
      // Every INVITE ends with a result, an exception here too (the try below starts later).
      const r = await Promise.resolve().then(() => this.stages.limits!.admitCall(policy, from, view, pre)).catch((err: unknown) => { call.finish('error'); throw err; });
      if (!r.ok) { call.finish('refused', refusalEnd(r.refusal)); return this.desk.refuse(res, fromLabel, r.refusal, log, view.sourceAddress); }
      call.slot = r;
    }

    try {
      // 4. Caller identity (RFC 4474 / RFC 8224), per the sending peer's policy.
      let identity: IdentityOutcome = { addHeaders: {} };
      if (this.stages.identity) {
        const r = await this.stages.identity.verify(policy, from, view);
        if (!r.ok) { trace.identity({ verdict: 'fail' }); call.finish('refused', refusalEnd(r.refusal)); return this.desk.refuse(res, fromLabel, r.refusal, log, view.sourceAddress); }
        identity = r.outcome;
        const verdict = identityVerdictOf(r.outcome);
        if (verdict) trace.identity(verdict);
      }

      // 5. Routing: first matching rule, destinations in failover order.
      const called = userPart(req.uri);
      const route = selectRoute(policy.routes, { origin: from.kind === 'core' ? 'core' : from.peer.id, called, domain: uriHost(req.uri) });
      let targets: Target[];
      if (this.opts.routing && route) {
        const r = await this.opts.routing.targets(policy, route.rule, route.destinations, called);
        if (!r.ok) {
          const peerDest = from.kind === 'core' ? route.destinations.find((d) => d !== 'core') : undefined;
          if (peerDest) call.peer = peerDest;
          call.finish(r.refusal.label === 'no_route' ? 'no_route' : 'failed', { status: r.refusal.status });
          return this.desk.refuse(res, fromLabel, r.refusal, log, view.sourceAddress);
        }
        targets = r.targets;
      } else targets = expandTargets(policy, route?.destinations ?? []);
      const firstTarget = targets.find((t) => t.side.kind === 'peer')?.side;
      if (from.kind === 'core' && firstTarget?.kind === 'peer') call.peer = firstTarget.peer.id;
      if (targets.length === 0) {
        call.finish('no_route', { status: 404 });
        return this.desk.refuse(res, fromLabel, { status: 404, reason: 'No Route To Destination', label: 'no_route' }, log, view.sourceAddress);
      }
      log.info({ from: fromLabel, called, targets: targets.map((t) => t.uri) }, 'new call');
      let progressed = false;
      const progress = (): void => {
        if (!progressed) { progressed = true; this.observer.postDialDelay?.(call.peer, direction, (performance.now() - receivedAt) / 1000); }
      };
      onFinalResponse(res, progress);

      // 6. Media offer toward the first destination side (re-done if failover changes side).
      // 7. B-leg with ordered failover on 408, 503 or no answer.
      let lastFailure: { status: number; reason: string; noAnswer?: boolean } = { status: 480, reason: 'Temporarily Unavailable' };
      for (let i = 0; i < targets.length; i++) {
        if (canceled) { call.finish('canceled'); return; }
        const target = targets[i]!;
        let localSdpB: string | undefined = req.body || undefined;
        let anchored = false;
        if (this.stages.media && req.body) {
          const o = await this.stages.media.offer({ callId, sdp: req.body, leg: 'A', from, to: target.side, policy });
          if (!o.ok) { call.finish('refused', refusalEnd(o.refusal)); return this.desk.refuse(res, fromLabel, o.refusal, log, view.sourceAddress); }
          localSdpB = o.sdp;
          anchored = o.anchored ?? localSdpB !== req.body;
        }
        const headers = outgoingHeaders(policy, req, view, from, target, identity);
        if (this.stages.identity) await signForTarget(this.stages.identity, policy, target, view, headers, localSdpB);
        // A CANCEL read while the offer or the signature was on its way: no B-leg (finish ends the media session).
        if (canceled) { call.finish('canceled'); return; }
        const attempt = await attemptTarget({
          srf: this.srf, calls: this.calls, media: this.stages.media, log: this.opts.log,
          req, res, target, headers, localSdpB, from, policy, callId, responseAllow: c.allowlist(from),
          isCanceled: () => canceled, onProgress: progress, onSent: (b) => trace.bLeg(b, target.uri),
        });
        if (attempt.ok) {
          this.observer.callSetup(call.peer, direction, (performance.now() - receivedAt) / 1000);
          // One flat copy of the B-leg's Call-ID, for the dialog and the call record alike.
          const bCallId = ownCallId(attempt.uac);
          // A delayed offer was anchored by the target's offer in its 2xx (b-leg.ts).
          if (!req.body && this.opts.stages?.media !== undefined) anchored = true;
          trace.answered(answerOf(target.uri, anchored, attempt.uas, attempt.uac));
          // Both legs are up: if wiring them fails, hang up both rather than leave a call no one tracks.
          try { this.established(call, from, target, attempt.uas, attempt.uac, policy, bCallId); } catch (err) { attempt.uas.destroy(); attempt.uac.destroy(); throw err; }
          return;
        }
        if (attempt.noAck) {
          // The caller had our 2xx: no failover, no other answer; the call ends here.
          log.warn({ target: target.uri }, 'no ACK for the 2xx: call ended');
          call.finish('failed', { status: 408, endedBy: 'peergate', reason: 'no_ack' });
          return;
        }
        lastFailure = attempt;
        const stopping = this.calls.stopping;
        if (stopping) {
          call.finish(stopping);
          if (!res.finalResponseSent) res.send(503, 'Service Unavailable', { headers: { Reason: PEERGATE_ENDINGS[stopping] } });
          return;
        }
        if (canceled || attempt.status === 487 && !attempt.noAnswer) { call.finish('canceled'); return; }
        const failover = attempt.noAnswer || FAILOVER_STATUSES.has(attempt.status);
        log.info({ target: target.uri, hop: target.hop && hopUri(target.hop), status: attempt.status, noAnswer: attempt.noAnswer, failover: failover && i + 1 < targets.length }, 'target failed');
        if (!failover) break;
        await this.stages.media?.end(callId).catch(() => undefined);
      }
      // 8. Every target failed: pass the last failure back, with a Reason saying it is ours.
      call.finish('failed', lastFailure.noAnswer
        ? { status: lastFailure.status, endedBy: 'peergate', reason: 'no_answer' }
        : { status: lastFailure.status >= 300 ? lastFailure.status : 480, endedBy: 'callee', reason: `status_${lastFailure.status}` });
      if (!res.finalResponseSent && !canceled) {
        const status = lastFailure.status >= 300 ? lastFailure.status : 480;
        this.observer.callSetup(call.peer, direction, (performance.now() - receivedAt) / 1000);
        res.send(status, lastFailure.reason, { headers: { Reason: `SIP;cause=${status};text="${lastFailure.reason.replace(/"/g, '')}"` } });
      }
    } catch (err) {
      call.finish('error');
      throw err;
    }
  }

  /**
   * Both legs are up: relay in-dialog requests across, end both together. What the call keeps
   * for its life is one record (established.ts: the outcome, the session, both dialogs, the
   * sides), not the setup scope of onInvite; the Dialogs let go of the INVITE and its 2xx
   * (slim-dialog.ts) and every listener on them is shared by all calls.
   */
  private established(call: CallOutcome, from: Side, target: Target, uas: Dialog, uac: Dialog, policy: Policy, bCallId: string): void {
    const { id: callId, direction } = call;
    const peer = from.kind === 'peer' ? from.peer.id : target.side.kind === 'peer' ? target.side.peer.id : 'core';
    this.observer.callStarted(peer, direction);
    call.info({ target: target.uri }, 'call established');
    const held = new EstablishedCall(call, this.heldSinks, peer, from, target, policy, uas, uac);
    // Both legs' endings, timers and reconciliation live in the session (src/sbc/session).
    const farPeer = from.kind === 'peer' ? from.peer : target.side.kind === 'peer' ? target.side.peer : undefined;
    const listenersA = fastListenerTable(uas);
    const listenersB = fastListenerTable(uac);
    try {
      held.session = establish(this.sessions, {
        id: callId, uas: uas as unknown as LegDialog, uac: uac as unknown as LegDialog, policy, peer: farPeer,
        anchored: this.opts.stages?.media !== undefined && !!uas.remote?.sdp, clock: this.opts.clock ?? systemClock, owner: held,
      });
      // The session has read the INVITE's and the 2xx's headers: nothing needs them any more.
      slimDialog(uas, call.callerCallId);
      slimDialog(uac, bCallId);
      if (held.session.isEnded) return;
      relayInDialog(held);
    } finally {
      restoreListeners(uas, listenersA);
      restoreListeners(uac, listenersB);
    }
    this.calls.up(callId, held);
  }
}
