// The peergate B2BUA on drachtio-srf. The call flow reads top to bottom in `onInvite`:
//
//   who sent it (peers) → admission → limits → identity → routing
//     → media offer → B-leg (ordered failover) → media answer → relay in-dialog → end
//
// Each countermeasure is a stage with its own module; this file only composes them.
// Topology hiding happens on every message that leaves: the engine gives each leg its own
// Call-ID, tags, branches, Via and Contact, and topology.ts decides which other headers cross.
import { randomUUID } from 'node:crypto';
import { isIPv4, BlockList, isIPv6 } from 'node:net';
import Srf from 'drachtio-srf';
import type { Logger } from 'pino';
import type { Peer, Policy } from '../policy/schema.js';
import { PeerDirectory } from './peers.js';
import { applyResourcePriority } from './limits/priority.js';
import { admit, allowedMethods, KNOWN_METHODS, methodRefusal, nextMaxForwards, SERVED_METHODS } from './admission.js';
import { HeaderAllowlist, newFrom, userPart, escapeUser, anonymizeFrom, ANONYMOUS_FROM } from './topology.js';
import { selectRoute } from './routing.js';
import { hopUri, engineTlsHeaders, type LocationRouting, type NextHop } from '../routing/index.js';
import { parseUri, splitCommaList, uriHost, uriUser } from '../sip/grammar/index.js';
import { TLS_IDENTITY_HEADER, parseTlsIdentity } from '../sip/tls-identity.js';
import type { RequestView, Side, Refusal, Stages, Leg, IdentityOutcome } from './stages.js';
import { CallRegistry, type ActiveCall, type Hangup } from './calls.js';

export type { ActiveCall, Hangup } from './calls.js';
import { noCallRecorder, refusalEnd, answerOf, identityVerdictOf, dialogCallId, type CallRecorder, type CallEnd } from './cdr/events.js';
import { validateInvite, ACCEPT_HEADERS } from './validate.js';
import { unanchoredSdpSeam } from './media/sdp-topology.js';
import { sessionTable, establish, intervalTooSmall, systemClock, type SessionTable, type Clock, type CallSession, type LegDialog, type PeergateEnding } from './session/index.js';

/** The header the embedded engine adds for a verified TLS client certificate (docs/engine.md). */
/** The engine's header for a verified client certificate (parsed by src/sip/tls-identity.ts). */
export { TLS_IDENTITY_HEADER, parseTlsIdentity };
/** Tells the embedded engine which listener (`address:port`) a new request leaves from (docs/engine.md). */
export const EGRESS_HEADER = 'X-Peergate-Egress';

/** Everything the B2BUA reports; the ops module turns these into Prometheus metrics. */
export interface B2buaObserver {
  request(peer: string, method: string): void;
  /** `source`: the address the refused request came from (reputation strikes). */
  refusal(peer: string, reason: string, source: string): void;
  response(peer: string, status: number): void;
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

/** Per-policy compiled lookups, built once per policy object. */
interface Compiled {
  peers: PeerDirectory<Peer>;
  listenerSide: Map<string, 'peer' | 'core'>;
  own: Set<string>;
  coreSources: BlockList | null;
  allow: Map<string, HeaderAllowlist>;
}

type Req = Srf.SrfRequest & { receivedOn?: string; source_port: string | number; canceled?: boolean };
type Res = Srf.SrfResponse;
type Dialog = Srf.Dialog;

const FAILOVER_STATUSES = new Set([408, 503]);

/** drachtio-srf's Response emits 'end' with the status of the final response it sends. */
function onFinalResponse(res: Res, cb: (status: number) => void): void {
  (res as unknown as NodeJS.EventEmitter).once('end', (e: { status: number }) => cb(e.status));
}

export class B2bua {
  readonly srf: Srf;
  private readonly calls = new CallRegistry();
  /** Established calls and their timers; swept periodically (src/sbc/session/table.ts). */
  readonly sessions: SessionTable;
  private readonly compiled = new WeakMap<Policy, Compiled>();
  /** INVITEs the engine answered 487 on CANCEL (responses_total counts that, not the app's). */
  private readonly canceledResponses = new WeakSet<Res>();
  private readonly observer: B2buaObserver;
  private readonly stages: Stages;
  private readonly recorder: CallRecorder;

  constructor(private readonly opts: B2buaOptions) {
    this.srf = new Srf();
    this.observer = opts.observer ?? noopObserver;
    const stages = opts.stages ?? {};
    // Without rtpengine, SDP identity fields are still rewritten (media/sdp-topology.ts).
    this.stages = stages.media ? stages : { ...stages, media: unanchoredSdpSeam() };
    this.recorder = opts.recorder ?? noCallRecorder;
    // Media inactivity is asked of rtpengine only: the unanchored seam has no activity to report.
    this.sessions = sessionTable(opts.clock ?? systemClock, opts.policy, opts.dialogExists, stages.media);
    // drachtio-srf crashes the process on an unhandled 'error' (e.g. ECONNREFUSED while reconnecting).
    this.srf.on('error', (err: Error) => opts.log.warn({ err: err.message }, 'engine connection error'));
    this.srf.invite((req, res) => { void this.onInvite(req as Req, res).catch((err: unknown) => this.internalError(req as Req, res, err)); });
    const srfAny = this.srf as unknown as Record<string, (cb: (req: Req, res: Res) => void) => void>;
    srfAny.options!((req, res) => this.onOptions(req, res));
    for (const m of ['register', 'message', 'info', 'subscribe', 'notify', 'publish']) {
      srfAny[m]!((req, res) => this.onOtherRequest(req, res));
    }
    // Methods no handler above names (extension methods) reach this middleware; see connect().
    (this.srf as unknown as { use(fn: (req: Req, res: Res, next: () => void) => void): void }).use((req, res, next) => {
      if (KNOWN_METHODS.has(req.method)) next();
      else this.onUnknownMethod(req, res);
    });
  }

  /** Connect to the engine (embedded or an external drachtio-server). */
  connect(target: { host: string; port: number; secret: string }): Promise<string> {
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
      void this.srf.connect({ host: target.host, port: target.port, secret: target.secret });
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
  /** BYE (with `h.reason`) on both legs of every established call; CANCEL + 503 for calls being set up. */
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
    const c = this.compile(policy);
    const view = requestView(req);

    // 1. Who sent it. Nothing from the message itself can change the answer.
    const from = this.attribute(policy, c, req, res, view);
    if (!from) return;
    const fromLabel = sideLabel(from);
    const receivedAt = performance.now();
    const callId = randomUUID();
    this.calls.begin(callId);
    const log = this.opts.log.child({ call: callId, call_id: view.callId });
    let canceled = false;
    // The engine answers the INVITE 487 itself when the caller cancels: that is the final
    // response counted; whatever the app sends after it never reaches the caller.
    req.on('cancel', () => { canceled = true; this.canceledResponses.add(res); this.observer.response(fromLabel, 487); });
    // Every INVITE ends exactly once with a result (calls_total{result}), however it ends.
    const direction = from.kind === 'peer' ? 'inbound' : 'outbound';
    let callPeer = from.kind === 'peer' ? from.peer.id : 'none';
    let release = (): void => {};
    let ended = false;
    const trace = this.recorder.begin({
      id: callId, callId: view.callId, peer: callPeer, direction, calling: userPart(view.get('From')), called: userPart(req.uri),
      source: { address: view.sourceAddress, port: view.sourcePort }, transport: req.protocol,
      tls: policy.engine.embedded && req.protocol === 'tls' ? parseTlsIdentity(view.get(TLS_IDENTITY_HEADER)) : null,
    });
    // `end` says how (status, who, why) for the call record; the result says it for metrics.
    const finish = (result: string, end: Omit<CallEnd, 'result' | 'peer'> = {}): void => {
      if (ended) return;
      ended = true;
      trace.ended({ ...end, result, peer: callPeer });
      release();
      void this.stages.media?.end(callId).catch((err: unknown) => log.warn({ err: String(err) }, 'media end failed'));
      this.calls.end(callId);
      this.observer.callFinished(callPeer, direction, result);
      log.info({ result }, 'call ended');
    };

    // 1b. Everything the A-leg needs to be answered, before limits or any B-leg (validate.ts).
    const invalid = validateInvite(view);
    if (invalid) { finish('refused'); return this.refuse(res, fromLabel, invalid, log, view.sourceAddress); }

    // 2. Admission: a draining node (SIGTERM, POST /admin/drain) sends peers and DNS SRV to the
    //    pool's other nodes; then methods, REGISTER, Max-Forwards, loops, transport.
    const draining = this.calls.refusing();
    if (draining) {
      const refusal: Refusal = { status: 503, reason: 'Service Unavailable', label: 'draining', retryAfterS: draining.retryAfterS, warning: 'node draining' };
      finish('refused', refusalEnd(refusal));
      return this.refuse(res, fromLabel, refusal, log, view.sourceAddress);
    }
    if (from.kind === 'peer') {
      const refusal = admit({ method: 'INVITE', protocol: req.protocol, maxForwards: view.get('Max-Forwards'), vias: view.getAll('Via') }, from.peer, c.own);
      if (refusal) { finish('refused', refusalEnd(refusal)); return this.refuse(res, fromLabel, refusal, log, view.sourceAddress); }
    }

    // RFC 4028 §6: a session interval below our Min-SE is refused before any slot is taken.
    const tooSmall = intervalTooSmall(view.get('Session-Expires') ?? view.get('x'), policy.sessions.session_timer.min_se_s);
    if (tooSmall) { const refusal = { ...tooSmall, label: 'session_interval' }; finish('refused', refusalEnd(refusal)); this.refuse(res, fromLabel, refusal, log, view.sourceAddress); return; }

    // 3. Limits: per-peer call rate, concurrent sessions (peer and global).
    if (this.stages.limits) {
      // Every INVITE ends with a result, an exception here too (the try below starts later).
      const r = await Promise.resolve().then(() => this.stages.limits!.admitCall(policy, from, view)).catch((err: unknown) => { finish('error'); throw err; });
      if (!r.ok) { finish('refused', refusalEnd(r.refusal)); return this.refuse(res, fromLabel, r.refusal, log, view.sourceAddress); }
      release = r.release;
    }

    try {
      // 4. Caller identity (RFC 4474 / RFC 8224), per the sending peer's policy.
      let identity: IdentityOutcome = { addHeaders: {} };
      if (this.stages.identity) {
        const r = await this.stages.identity.verify(policy, from, view);
        if (!r.ok) { trace.identity({ verdict: 'fail' }); finish('refused', refusalEnd(r.refusal)); return this.refuse(res, fromLabel, r.refusal, log, view.sourceAddress); }
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
          if (peerDest) callPeer = peerDest;
          finish(r.refusal.label === 'no_route' ? 'no_route' : 'failed', { status: r.refusal.status });
          return this.refuse(res, fromLabel, r.refusal, log, view.sourceAddress);
        }
        targets = r.targets;
      } else targets = expandTargets(policy, route?.destinations ?? []);
      const firstPeer = targets.find((t) => t.side.kind === 'peer')?.side;
      if (from.kind === 'core' && firstPeer?.kind === 'peer') callPeer = firstPeer.peer.id;
      if (targets.length === 0) {
        finish('no_route', { status: 404 });
        return this.refuse(res, fromLabel, { status: 404, reason: 'No Route To Destination', label: 'no_route' }, log, view.sourceAddress);
      }
      log.info({ from: fromLabel, called, targets: targets.map((t) => t.uri) }, 'new call');
      let progressed = false;
      const progress = (): void => {
        if (!progressed) { progressed = true; this.observer.postDialDelay?.(callPeer, direction, (performance.now() - receivedAt) / 1000); }
      };
      onFinalResponse(res, progress);

      // 6. Media offer toward the first destination side (re-done if failover changes side).
      // 7. B-leg with ordered failover on 408, 503 or no answer.
      let lastFailure: { status: number; reason: string; noAnswer?: boolean } = { status: 480, reason: 'Temporarily Unavailable' };
      for (let i = 0; i < targets.length; i++) {
        if (canceled) { finish('canceled'); return; }
        const target = targets[i]!;
        let localSdpB: string | undefined = req.body || undefined;
        let anchored = false;
        if (this.stages.media && req.body) {
          const o = await this.stages.media.offer({ callId, sdp: req.body, leg: 'A', from, to: target.side, policy });
          if (!o.ok) { finish('refused', refusalEnd(o.refusal)); return this.refuse(res, fromLabel, o.refusal, log, view.sourceAddress); }
          localSdpB = o.sdp;
          anchored = o.anchored ?? localSdpB !== req.body;
        }
        const headers = this.outgoingHeaders(policy, c, req, view, from, target, identity);
        if (this.stages.identity && target.side.kind === 'peer' && target.side.peer.identity.sign) {
          // RFC 4474's digest covers Call-ID, CSeq, Contact and body: fix them here so the engine keeps them.
          headers['Call-ID'] = randomUUID();
          headers['CSeq'] = '1 INVITE';
          const l = listenerFor(policy, target);
          const contact = l ? `<${l.scheme}:${l.hostport}${l.params}>` : undefined;
          if (contact) headers['Contact'] = contact;
          // The engine would rewrite `@localhost` after signing; write our host now.
          if (l) headers['From'] = headers['From']!.replace('@localhost>', `@${l.hostport}>`);
          Object.assign(headers, await this.stages.identity.sign(policy, target.side, view, {
            from: headers['From']!, to: headers['To']!, callId: headers['Call-ID'], cseq: headers['CSeq'],
            ...(contact ? { contact } : {}), ...(localSdpB ? { body: localSdpB } : {}),
          }));
        }
        const toAllow = c.allow.get(allowKey(from))!;
        const attempt = await this.tryTarget(req, res, target, headers, localSdpB, from, policy, callId, toAllow, () => canceled, progress, (b) => trace.bLeg(b, target.uri));
        if (attempt.ok) {
          this.observer.callSetup(callPeer, direction, (performance.now() - receivedAt) / 1000);
          trace.answered(answerOf(target.uri, anchored, attempt.uas, attempt.uac));
          // Both legs are up: if wiring them fails, hang up both rather than leave a call no one tracks.
          try { this.established(callId, from, target, attempt.uas, attempt.uac, policy, c, finish, log); } catch (err) { attempt.uas.destroy(); attempt.uac.destroy(); throw err; }
          return;
        }
        lastFailure = attempt;
        const stopping = this.calls.stopping;
        if (stopping) {
          finish(stopping.result);
          if (!res.finalResponseSent) res.send(503, 'Service Unavailable', { headers: { Reason: stopping.reason } });
          return;
        }
        if (canceled || attempt.status === 487 && !attempt.noAnswer) { finish('canceled'); return; }
        const failover = attempt.noAnswer || FAILOVER_STATUSES.has(attempt.status);
        log.info({ target: target.uri, hop: target.hop && hopUri(target.hop), status: attempt.status, noAnswer: attempt.noAnswer, failover: failover && i + 1 < targets.length }, 'target failed');
        if (!failover) break;
        await this.stages.media?.end(callId).catch(() => undefined);
      }
      // 8. Every target failed: pass the last failure back, with a Reason saying it is ours.
      finish('failed', lastFailure.noAnswer
        ? { status: lastFailure.status, endedBy: 'peergate', reason: 'no_answer' }
        : { status: lastFailure.status >= 300 ? lastFailure.status : 480, endedBy: 'callee', reason: `status_${lastFailure.status}` });
      if (!res.finalResponseSent && !canceled) {
        const status = lastFailure.status >= 300 ? lastFailure.status : 480;
        this.observer.callSetup(callPeer, direction, (performance.now() - receivedAt) / 1000);
        res.send(status, lastFailure.reason, { headers: { Reason: `SIP;cause=${status};text="${lastFailure.reason.replace(/"/g, '')}"` } });
      }
    } catch (err) {
      finish('error');
      throw err;
    }
  }

  /** One B-leg attempt. Resolves instead of throwing so the failover loop stays flat. */
  private async tryTarget(
    req: Req, res: Res, target: Target, headers: Record<string, string>, localSdpB: string | undefined,
    from: Side, policy: Policy, callId: string, responseAllow: HeaderAllowlist, isCanceled: () => boolean, onProgress: () => void,
    onSent: (bCallId: string) => void,
  ): Promise<{ ok: true; uas: Dialog; uac: Dialog } | { ok: false; status: number; reason: string; noAnswer: boolean }> {
    let heardBack = false;
    let uacReq: Srf.SrfRequest | undefined;
    const media = this.stages.media;
    type Attempt = { ok: true; uas: Dialog; uac: Dialog } | { ok: false; status: number; reason: string; noAnswer: boolean };
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      const settle = (a: Attempt): void => { if (!settled) { settled = true; clearTimeout(timer); unregister(); resolve(a); } };
      // Shutdown while this attempt is in progress: CANCEL the B-leg, the caller gets 503.
      const unregister = this.calls.attempting(callId, () => {
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
      this.srf.createB2BUA(req, res, requestUriFor(target.uri, userPart(req.uri)), {
        headers,
        // A hop found through DNS (RFC 3263): the engine sends there, the Request-URI keeps the name.
        ...(target.hop ? { proxy: hopUri(target.hop) } : {}),
        proxyRequestHeaders: [],
        proxyResponseHeaders: [],
        passFailure: false,
        ...(localSdpB !== undefined ? { localSdpB } : {}),
        localSdpA: async (sdpB: string) => {
          if (!media || !sdpB) return sdpB;
          const a = await media.answer({ callId, sdp: sdpB, leg: 'B', from: target.side, to: from, policy });
          if (!a.ok) throw Object.assign(new Error(a.refusal.reason), { status: a.refusal.status });
          return a.sdp;
        },
        responseHeaders: ((uacRes: Srf.SrfResponse) => {
          heardBack = true;
          return responseAllow.requestHeaders((n) => getHeader(uacRes, n), trustBetween(policy, target.side, from), 'response');
        }) as unknown as Srf.CreateB2BUAOptions['responseHeaders'],
      }, {
        cbRequest: (...args: unknown[]) => {
          uacReq = args[args.length - 1] as Srf.SrfRequest;
          const b = getHeader(uacReq, 'Call-ID');
          if (b) onSent(b);
        },
        cbProvisional: (p: { status: number }) => { heardBack = true; if (p.status > 100) onProgress(); },
      }).then(({ uas, uac }) => {
        // An abandoned target that answers late gets hung up at once.
        if (settled) { uac.destroy(); uas.destroy(); return; }
        settle({ ok: true, uas, uac });
      }, (err: { status?: number; reason?: string; message?: string }) => {
        // A SIP failure from the target keeps its status; anything else (a library error) is a
        // plain 500 whose text never reaches the network.
        if (typeof err.status !== 'number') this.opts.log.error({ call: callId, err: String(err.message ?? err) }, 'B-leg error');
        settle(typeof err.status === 'number' ? { ok: false, status: err.status, reason: err.reason ?? 'Call Failed', noAnswer: false } : { ok: false, status: 500, reason: 'Server Internal Error', noAnswer: false });
      });
    });
  }

  /** Both legs are up: relay in-dialog requests across, end both together. */
  private established(callId: string, from: Side, target: Target, uas: Dialog, uac: Dialog, policy: Policy, c: Compiled, finish: (r: string, end?: Omit<CallEnd, 'result' | 'peer'>) => void, log: Logger): void {
    const peer = from.kind === 'peer' ? from.peer.id : target.side.kind === 'peer' ? target.side.peer.id : 'core';
    const direction = from.kind === 'peer' ? 'inbound' : 'outbound';
    const info: ActiveCall = { id: callId, call_id: dialogCallId(uas) ?? '', peer, direction, from: sideLabel(from), to: sideLabel(target.side), target: target.uri, startedAt: new Date().toISOString() };
    this.observer.callStarted(peer, direction);
    const answeredAt = performance.now();
    log.info({ target: target.uri }, 'call established');
    // Both legs' endings, timers and reconciliation live in the session (src/sbc/session).
    const farPeer = from.kind === 'peer' ? from.peer : target.side.kind === 'peer' ? target.side.peer : undefined;
    const session = establish(this.sessions, {
      id: callId, uas: uas as unknown as LegDialog, uac: uac as unknown as LegDialog, policy, peer: farPeer,
      anchored: this.opts.stages?.media !== undefined && !!uas.remote?.sdp, clock: this.opts.clock ?? systemClock,
      onEnd: (result) => {
        this.observer.callEnded(peer, direction);
        this.observer.callDuration?.(peer, direction, (performance.now() - answeredAt) / 1000);
        if (result === 'caller_bye' || result === 'callee_bye') finish(result);
        else finish(result, { endedBy: 'peergate', reason: result });
      },
      onRefreshFailed: (leg, err) => log.info({ leg, err: String(err) }, 'session refresh failed'),
    });
    if (session.isEnded) return;
    this.relayInDialog(uas, uac, 'A', from, target.side, policy, c, callId, log, session);
    this.relayInDialog(uac, uas, 'B', target.side, from, policy, c, callId, log, session);
    // Our own ending (drain deadline, shutdown): BYE on both legs with the Reason (RFC 3326).
    this.calls.up(callId, info, (h: Hangup) => { log.info({ result: h.result }, 'ending call'); return session.end(h.result); });
  }

  /** Requests arriving on `a` are re-originated on `b` with the receiving side's allowlist. */
  private relayInDialog(a: Dialog, b: Dialog, aLeg: Leg, aSide: Side, bSide: Side, policy: Policy, c: Compiled, callId: string, log: Logger, session: CallSession): void {
    const allow = c.allow.get(allowKey(bSide))!;
    const trust = trustBetween(policy, aSide, bSide);
    const media = this.stages.media;
    a.on('modify', (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
      void (async () => {
        let sdp = req.body;
        if (media && sdp) {
          const o = await media.offer({ callId, sdp, leg: aLeg, from: aSide, to: bSide, policy });
          if (!o.ok) return res.send(o.refusal.status, o.refusal.reason, warningHeaders(o.refusal));
          sdp = o.sdp;
        }
        const answer = await b.modify(sdp);
        let back = answer;
        if (media && answer) {
          const r = await media.answer({ callId, sdp: answer, leg: aLeg === 'A' ? 'B' : 'A', from: bSide, to: aSide, policy });
          if (!r.ok) return res.send(r.refusal.status, r.refusal.reason, warningHeaders(r.refusal));
          back = r.sdp;
        }
        res.send(200, { body: back });
        session.refreshed();
      })().catch((err: { status?: number }) => {
        log.info({ err: String(err) }, 're-INVITE relay failed');
        if (!res.finalResponseSent) res.send(err.status && err.status >= 400 ? err.status : 500);
      });
    });
    for (const method of ['info', 'update', 'message', 'notify'] as const) {
      (a as unknown as NodeJS.EventEmitter).on(method, (req: Srf.SrfRequest, res: Srf.SrfResponse) => {
        const headers = applyResourcePriority(allow.requestHeaders((n) => getHeader(req, n), trust), aSide, getHeader(req, 'Resource-Priority'));
        const ct = getHeader(req, 'Content-Type');
        if (ct && req.body) headers['Content-Type'] = ct;
        (b.request({ method: method.toUpperCase(), headers, body: req.body } as unknown as Srf.SrfRequest) as Promise<Srf.SrfResponse>)
          .then((r) => {
            res.send(r.status, r.reason, { headers: allow.requestHeaders((n) => getHeader(r, n), trust, 'response'), ...(r.body ? { body: r.body } : {}) });
            if (method === 'update' && r.status >= 200 && r.status < 300) session.refreshed();
          })
          .catch((err: unknown) => { log.info({ err: String(err), method }, 'in-dialog relay failed'); if (!res.finalResponseSent) res.send(500); });
      });
    }
    // REFER across an interconnect would let a peer steer our core: not relayed.
    a.on('refer', (_req: Srf.SrfRequest, res: Srf.SrfResponse) => res.send(403, 'REFER Not Allowed', {}));
  }

  // ---------------------------------------------------------------- other requests

  private onOptions(req: Req, res: Res): void {
    const policy = this.opts.policy();
    const c = this.compile(policy);
    if (!this.attribute(policy, c, req, res, requestView(req))) return;
    // Keep-alive pings between SBEs: answered here, never relayed (nothing about the far side leaks).
    res.send(200, { headers: { Allow: 'INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, INFO' } });
  }

  private onOtherRequest(req: Req, res: Res): void {
    const policy = this.opts.policy();
    const c = this.compile(policy);
    const view = requestView(req);
    const from = this.attribute(policy, c, req, res, view);
    if (!from) return;
    const label = sideLabel(from);
    if (from.kind === 'peer') {
      const refusal = admit({ method: req.method, protocol: req.protocol, maxForwards: view.get('Max-Forwards'), vias: view.getAll('Via') }, from.peer, c.own);
      if (refusal) return this.refuse(res, label, refusal, this.opts.log, view.sourceAddress);
    }
    // Out-of-dialog requests other than INVITE and OPTIONS are not relayed across the interconnect.
    const allow = from.kind === 'peer' ? allowedMethods(from.peer) : undefined;
    this.refuse(res, label, { status: 405, reason: 'Method Not Allowed', label: 'method', allow }, this.opts.log, view.sourceAddress);
  }

  /** A method peergate does not recognise (RFC 3261 §8.2.1): 501 to a known peer or our core,
   *  silence to anyone else (attribute() stays silent for unknown sources). */
  private onUnknownMethod(req: Req, res: Res): void {
    const policy = this.opts.policy();
    const c = this.compile(policy);
    const view = requestView(req);
    const from = this.attribute(policy, c, req, res, view);
    if (!from) return;
    const refusal = methodRefusal(req.method, from.kind === 'peer' ? from.peer : { methods: SERVED_METHODS })
      ?? { status: 501, reason: 'Not Implemented', label: 'method' };
    this.refuse(res, sideLabel(from), refusal, this.opts.log, view.sourceAddress);
  }

  // ---------------------------------------------------------------- helpers

  /** Who sent the request; a source that is refused is answered (or not) here and gets undefined. */
  private attribute(policy: Policy, c: Compiled, req: Req, res: Res, view: RequestView): Side | undefined {
    const from = this.classify(policy, c, req, view);
    // Every final response this request gets, ours or a B-leg's, whichever code path sends it.
    onFinalResponse(res, (status) => {
      if (!this.canceledResponses.has(res)) this.observer.response('refuse' in from ? from.peer ?? 'unknown' : sideLabel(from), status);
    });
    if ('refuse' in from) { this.refuseUnknown(policy, res, from, view.sourceAddress); return undefined; }
    this.observer.request(sideLabel(from), req.method);
    return from;
  }

  private classify(policy: Policy, c: Compiled, req: Req, view: RequestView): Side | { refuse: string; answer?: Refusal; peer?: string } {
    const side = listenerSideOf(c, req.receivedOn);
    if (side === 'core') {
      if (c.coreSources && !c.coreSources.check(view.sourceAddress, isIPv4(view.sourceAddress) ? 'ipv4' : 'ipv6')) return { refuse: 'core_source' };
      return { kind: 'core' };
    }
    // Only the embedded engine is trusted to have stripped a network copy of the TLS identity header.
    const tls = policy.engine.embedded && req.protocol === 'tls' ? parseTlsIdentity(view.get(TLS_IDENTITY_HEADER)) : null;
    const a = c.peers.attribute(view.sourceAddress, tls);
    if (a.kind === 'peer') {
      const side: Side = { kind: 'peer', peer: a.peer };
      // Over its packet rate (external engine only: the embedded shield did it already): silence.
      if (this.stages.limits?.sourceAllowed && !this.stages.limits.sourceAllowed(policy, side, view.sourceAddress)) return { refuse: 'source_rate' };
      return side;
    }
    // A known peer's address on a transport that cannot carry its certificate: that peer
    // is told to use TLS (it learns nothing it does not know); anyone else gets silence.
    if (a.reason === 'address-without-required-certificate' && req.protocol !== 'tls') {
      return { refuse: 'transport', answer: { status: 403, reason: 'TLS Required For This Peer', label: 'transport' }, peer: a.candidate.id };
    }
    return { refuse: a.reason.replace(/-/g, '_') };
  }

  /** Unknown sources learn nothing: no answer at all unless the policy asks for 403. */
  private refuseUnknown(policy: Policy, res: Res, r: { refuse: string; answer?: Refusal; peer?: string }, source: string): void {
    if (r.answer) return this.refuse(res, r.peer ?? 'unknown', r.answer, this.opts.log, source);
    const reason = r.refuse;
    this.observer.refusal('unknown', reason, source);
    this.opts.log.debug({ reason }, 'request from unknown source');
    if (policy.unknown_source === '403') res.send(403, 'Forbidden', {});
  }

  private refuse(res: Res, peer: string, r: Refusal & { allow?: readonly string[] }, log: Logger, source: string): void {
    this.observer.refusal(peer, r.label, source);
    log.info({ status: r.status, reason: r.label }, 'request refused');
    if (!res.finalResponseSent) res.send(r.status, r.reason, warningHeaders(r));
  }

  private internalError(req: Req, res: Res, err: unknown): void {
    this.opts.log.error({ callId: getHeader(req, 'Call-ID'), err: err instanceof Error ? err.stack : String(err) }, 'call flow error');
    try { if (!res.finalResponseSent) res.send(500, 'Internal Error', { headers: { Reason: 'SIP;cause=500;text="peergate internal error"' } }); } catch { /* connection gone */ }
  }

  private outgoingHeaders(policy: Policy, c: Compiled, req: Req, view: RequestView, from: Side, target: Target, identity: IdentityOutcome): Record<string, string> {
    const allow = c.allow.get(allowKey(target.side))!;
    const headers = applyResourcePriority(allow.requestHeaders((n) => view.get(n), trustBetween(policy, from, target.side)), from, view.get('Resource-Priority'));
    const toTopology = target.side.kind === 'core' ? policy.core.topology : target.side.peer.topology;
    const scheme = target.uri.startsWith('sips:') ? 'sips' : 'sip';
    const anonymous = anonymizeFrom(view.get('Privacy'), toTopology.privacy, trustBetween(policy, from, target.side).trustedReceiver);
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
    if (trustBetween(policy, from, target.side).trustedReceiver) {
      Object.assign(headers, identity.addHeaders);
      if (identity.decorateFrom && !anonymous) headers['From'] = identity.decorateFrom(headers['From']!);
    }
    return headers;
  }

  private compile(policy: Policy): Compiled {
    let c = this.compiled.get(policy);
    if (c) return c;
    const listenerSide = new Map<string, 'peer' | 'core'>();
    const own = new Set<string>();
    for (const l of policy.listen) {
      listenerSide.set(`${l.address}:${l.port}`, l.side);
      listenerSide.set(`*:${l.port}`, l.side);
      own.add(`${l.advertise ?? l.address}:${l.port}`);
    }
    let coreSources: BlockList | null = null;
    if (policy.core.addresses) {
      coreSources = new BlockList();
      for (const cidr of policy.core.addresses) {
        const [a, b] = cidr.split('/');
        const fam = isIPv6(a!) ? 'ipv6' : 'ipv4';
        if (b === undefined) coreSources.addAddress(a!, fam); else coreSources.addSubnet(a!, Number(b), fam);
      }
    }
    const allow = new Map<string, HeaderAllowlist>();
    allow.set('core', new HeaderAllowlist(policy.core.topology));
    for (const p of policy.peers) allow.set(`peer:${p.id}`, new HeaderAllowlist(p.topology));
    c = { peers: new PeerDirectory(policy.peers), listenerSide, own, coreSources, allow };
    this.compiled.set(policy, c);
    return c;
  }
}

// ---------------------------------------------------------------- pure helpers

interface Target { side: Side; uri: string; hop?: NextHop }

function expandTargets(policy: Policy, destinations: string[]): Target[] {
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

function sideLabel(s: Side): string {
  return s.kind === 'core' ? 'core' : s.peer.id;
}

function allowKey(s: Side): string {
  return s.kind === 'core' ? 'core' : `peer:${s.peer.id}`;
}

/** RFC 3325 trust: our own core is inside the trust domain; a peer is when its policy says so. */
function trustBetween(_policy: Policy, sender: Side, receiver: Side): { trustedSender: boolean; trustedReceiver: boolean } {
  const trusted = (s: Side) => s.kind === 'core' || s.peer.topology.trust_pai;
  return { trustedSender: trusted(sender), trustedReceiver: trusted(receiver) };
}

function warningHeaders(r: Refusal & { allow?: readonly string[] }): { headers: Record<string, string> } {
  const headers: Record<string, string> = { Reason: `SIP;cause=${r.status};text="${r.reason.replace(/"/g, '')}"` };
  if (r.allow !== undefined) headers['Allow'] = r.allow.join(', ');
  if (r.retryAfterS !== undefined) headers['Retry-After'] = String(r.retryAfterS);
  if (r.warning) headers['Warning'] = `399 peergate "${r.warning.replace(/"/g, '')}"`;
  if (r.status === 415) Object.assign(headers, ACCEPT_HEADERS);
  if (r.headers) Object.assign(headers, r.headers);
  return { headers };
}

function listenerSideOf(c: Compiled, receivedOn: string | undefined): 'peer' | 'core' | undefined {
  if (!receivedOn) return undefined;
  const exact = c.listenerSide.get(receivedOn);
  if (exact) return exact;
  const port = receivedOn.slice(receivedOn.lastIndexOf(':') + 1);
  return c.listenerSide.get(`*:${port}`);
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

function getHeader(msg: { has(n: string): boolean; get(n: string): string }, name: string): string | undefined {
  try { return msg.has(name) ? msg.get(name) : undefined; } catch { return undefined; }
}

export function requestView(req: Req): RequestView {
  return {
    method: req.method,
    uri: req.uri,
    callId: getHeader(req, 'Call-ID') ?? '',
    protocol: req.protocol,
    sourceAddress: req.source_address,
    sourcePort: Number(req.source_port),
    get: (n) => getHeader(req, n),
    getAll: (n) => splitHeaderValues(getHeader(req, n)),
    body: req.body ?? '',
  };
}

/** drachtio-srf joins repeated headers with ', '; split them back outside quotes and <>. */
export function splitHeaderValues(v: string | undefined): string[] {
  return v === undefined || v === '' ? [] : splitCommaList(v);
}
