// The media stage the B2BUA calls: anchor a call's media on rtpengine, enforce each side's
// SRTP/DTLS/ICE/codec policy on offers and answers, and make sure rtpengine holds no session
// once the call is over. Independent of drachtio-srf: it sees SDP bodies and tags only.
//
// `callId` is the key of the whole B2BUA call (both legs); the stage uses it as rtpengine's
// call-id. Tags are the SIP tags of the two sides, as rtpengine's from-tag/to-tag.
import { parseSdp, writeSdp, SdpError, type Sdp } from './sdp.js';
import { SdpOrigins } from './sdp-topology.js';
import {
  checkAnswer, checkOffer, offerOptions, answerOptions, refuse, satisfiesWithoutAnchor, sdpKeying,
  type MediaRefusal, type Side, type Keying,
} from './policy.js';
import {
  EmbeddedRtpengineProcess, NgRejected, NgUnavailable, RtpenginePool, silentLog,
  type LogLike, type NgReply, type RtpengineInstance,
} from './rtpengine.js';
import type { z } from 'zod';
// Types only: the schema (and zod) is loaded by create() alone, so a B2BUA worker, which is
// handed a validated policy (src/app/workers/hello.ts), does not load it.
import type { GlobalMediaSchema, GlobalMedia, SideMedia } from './schema.js';
import { mediaBytes, mediaCalls, mediaPacketErrors, mediaPackets, mediaRefusals, mediaSessions } from './metrics.js';

export type { MediaRefusal, Side, RefusalReason, Keying } from './policy.js';
export type { SideMedia, GlobalMedia } from './schema.js';

export interface MediaOk {
  ok: true;
  /** The SDP to put in the message toward the other side. */
  sdp: string;
  /** false only for a call let through without rtpengine (allow_unanchored). */
  anchored: boolean;
}
export type MediaResult = MediaOk | MediaRefusal;

export interface OfferRequest {
  callId: string;
  /** Tag of the side sending this offer (the caller for the initial INVITE). */
  fromTag: string;
  /** Tag of the other side, for re-offers (re-INVITE/UPDATE) once it is known. */
  toTag?: string;
  sdp: string;
  /** Which side sent the offer. */
  from: Side;
  fromPolicy: SideMedia;
  toPolicy: SideMedia;
}

export interface AnswerRequest {
  callId: string;
  /** The from-tag of the offer being answered. */
  fromTag: string;
  /** Tag of the answering side (a 183's or 200's To tag). */
  toTag: string;
  sdp: string;
}

export interface MediaStats {
  packets: number;
  bytes: number;
  errors: number;
  /** Per rtpengine leg (tag), for diagnosis. */
  legs: Record<string, { packets: number; bytes: number; errors: number }>;
}

interface CallState {
  /** undefined for an unanchored call. */
  instance: RtpengineInstance | undefined;
  /** The offer an answer will answer. */
  pending?: { fromTag: string; from: Side; fromPolicy: SideMedia; toPolicy: SideMedia; offered: Keying; toward: Keying };
  counted: boolean;
}

export interface MediaStageOptions {
  log?: LogLike;
}

const NO_ENGINE_WARNING = 'no media relay available';
/**
 * How long a new call waits for an on-demand ping when every rtpengine is marked down: long
 * enough for a local or nearby relay that came back to answer, short enough that an outage
 * still refuses calls promptly.
 */
const REVIVE_WAIT_MS = 100;

export class MediaStage {
  private readonly calls = new Map<string, CallState>();
  /** Initial offers still waiting for rtpengine: a delete (CANCEL) must wait for them, or the
   *  session created by the late reply would be left behind. */
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** Deletes sent and not yet answered: rtpengine may still hold those sessions, so the
   *  sessions gauge counts them until the reply (or its timeout). */
  private releasing = 0;
  private readonly log: LogLike;
  /** SDP identity fields (s=, o=, i=…) rewritten on every body that leaves (sdp-topology.ts). */
  private readonly origins = new SdpOrigins();
  private readonly started: GlobalMedia;
  private constructor(
    private config: GlobalMedia,
    readonly pool: RtpenginePool,
    private readonly embedded: EmbeddedRtpengineProcess | undefined,
    opts: MediaStageOptions,
  ) {
    this.log = opts.log ?? silentLog;
    this.started = config;
  }

  /**
   * Start the stage: spawn the embedded rtpengine if configured, and wait (bounded) for the
   * first health check. External instances that are down at start are retried by the
   * health checks; the stage answers 503 until one is up.
   */
  static async create(config: z.input<typeof GlobalMediaSchema> = {}, opts: MediaStageOptions = {}): Promise<MediaStage> {
    const { GlobalMediaSchema } = await import('./schema.js');
    return MediaStage.start(GlobalMediaSchema.parse(config), opts);
  }

  /** The same from a validated policy's `media` (the app's path: nothing parsed again). */
  static async start(cfg: GlobalMedia, opts: MediaStageOptions = {}): Promise<MediaStage> {
    let embedded: EmbeddedRtpengineProcess | undefined;
    let instances: { address: string; weight: number }[];
    if (cfg.rtpengine === 'spawn') {
      embedded = new EmbeddedRtpengineProcess(cfg.embedded ?? (await import('./schema.js')).EmbeddedRtpengineSchema.parse({}), opts.log);
      await embedded.start();
      instances = [{ address: embedded.address, weight: 1 }];
    } else {
      instances = cfg.rtpengine;
    }
    const pool = new RtpenginePool(instances, { timeoutMs: cfg.timeout_ms, healthIntervalMs: cfg.health_interval_ms, log: opts.log });
    const stage = new MediaStage(cfg, pool, embedded, opts);
    if (embedded) {
      // The embedded daemon answers pings ~0.1 s after start; give it up to 5 s.
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && !(await pool.check(pool.instances[0]!))) {
        if (embedded.pid === undefined) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!pool.anyHealthy()) {
        await embedded.stop();
        pool.close();
        throw new Error(`embedded rtpengine did not start: ${embedded.recentOutput.slice(-2000)}`);
      }
      embedded.markHealthy();
    }
    await pool.start();
    return stage;
  }

  /**
   * Policy reload: a new list of external rtpengine instances and Retry-After apply to new
   * calls at once. Returns the keys that only a restart applies (spawn ↔ list, the embedded
   * daemon's settings, timeouts). Calls in progress keep their instance.
   */
  reconfigure(config: GlobalMedia): string[] {
    const restart: string[] = [];
    // Restart-needed keys are judged against what the stage started with, not a later reload.
    const was = this.started;
    if ((was.rtpengine === 'spawn') !== (config.rtpengine === 'spawn')) restart.push('media.rtpengine');
    if (JSON.stringify(was.embedded) !== JSON.stringify(config.embedded)) restart.push('media.embedded');
    if (was.timeout_ms !== config.timeout_ms) restart.push('media.timeout_ms');
    if (was.health_interval_ms !== config.health_interval_ms) restart.push('media.health_interval_ms');
    if (config.rtpengine !== 'spawn' && was.rtpengine !== 'spawn') this.pool.setInstances(config.rtpengine);
    this.config = { ...was, retry_after_s: config.retry_after_s, rtpengine: restart.includes('media.rtpengine') ? was.rtpengine : config.rtpengine };
    return restart;
  }

  /** At least one rtpengine answers pings (for /ready). */
  ready(): boolean { return this.pool.anyHealthy(); }

  /** Calls this stage currently holds state for. */
  activeCalls(): number { return this.calls.size; }

  /** ng address of the rtpengine this stage spawned (media.rtpengine: spawn), for B2BUA workers. */
  get embeddedAddress(): string | undefined { return this.embedded?.address; }

  /** PID of the embedded rtpengine, if peergate started one. */
  get embeddedPid(): number | undefined { return this.embedded?.pid; }

  private refused(r: MediaRefusal): MediaRefusal {
    mediaRefusals.inc({ reason: r.reason });
    return r;
  }

  private noEngine(): MediaRefusal {
    return this.refused({ ...refuse(503, 'no_rtpengine', NO_ENGINE_WARNING), retryAfterS: this.config.retry_after_s });
  }

  /** An initial offer (INVITE), or a re-offer (re-INVITE, UPDATE) for a call already set up. */
  async offer(req: OfferRequest): Promise<MediaResult> {
    if (this.calls.has(req.callId) || this.inflight.has(req.callId)) return this.doOffer(req);
    const p = this.doOffer(req);
    this.inflight.set(req.callId, p);
    try {
      return await p;
    } finally {
      if (this.inflight.get(req.callId) === p) this.inflight.delete(req.callId);
    }
  }

  private async doOffer(req: OfferRequest): Promise<MediaResult> {
    let sdp: Sdp;
    try {
      sdp = parseSdp(req.sdp);
    } catch (e) {
      return this.refused(refuse(488, 'bad_sdp', e instanceof SdpError ? e.message : 'unparsable SDP', 399));
    }
    const bad = checkOffer(sdp, req.from, req.fromPolicy, req.toPolicy);
    if (bad) return this.refused(bad);
    const offered = sdpKeying(sdp);
    const opts = offerOptions(sdp, req.fromPolicy, req.toPolicy);
    const params: Record<string, unknown> = { ...opts, 'call-id': req.callId, 'from-tag': req.fromTag, sdp: writeSdp(sdp) };
    if (req.toTag) params['to-tag'] = req.toTag;
    const existing = this.calls.get(req.callId);

    if (existing && !existing.instance) {
      // Re-offer on an unanchored call stays unanchored.
      if (!satisfiesWithoutAnchor(sdp, req.toPolicy)) return this.refused(refuse(488, 'srtp_required_toward', 'offer not acceptable to the other side without a media relay', 302));
      existing.pending = { fromTag: req.fromTag, from: req.from, fromPolicy: req.fromPolicy, toPolicy: req.toPolicy, offered, toward: offered };
      return { ok: true, sdp: this.hide(req.callId, req.fromTag, sdp), anchored: false };
    }

    if (!existing && !this.pool.anyHealthy()) await this.pool.revive(REVIVE_WAIT_MS);
    const tryOn = existing ? [existing.instance!] : this.pool.candidates();
    for (const inst of tryOn) {
      let reply: NgReply;
      try {
        reply = await this.pool.command(inst, 'offer', params);
      } catch (e) {
        if (e instanceof NgRejected) {
          return this.refused(refuse(488, 'rtpengine_rejected', `media relay refused the offer: ${e.message}`, 399));
        }
        this.log.warn({ callId: req.callId, rtpengine: inst.name, err: String(e) }, 'offer failed; trying next rtpengine');
        // The offer may have reached it and only the reply got lost: remove that session
        // (best effort) so a slow instance is not left holding it.
        if (!existing) this.release(inst, req.callId);
        continue;
      }
      const out = this.rewriteOut(reply);
      if (!out) return this.refused(refuse(488, 'rtpengine_rejected', 'media relay returned no SDP', 399));
      const state: CallState = existing ?? { instance: inst, counted: false };
      state.pending = { fromTag: req.fromTag, from: req.from, fromPolicy: req.fromPolicy, toPolicy: req.toPolicy, offered, toward: sdpKeying(out) };
      if (!existing) {
        this.calls.set(req.callId, state);
        this.countSessions();
      }
      return { ok: true, sdp: this.hide(req.callId, req.fromTag, out), anchored: true };
    }

    if (!existing && this.unanchoredAllowed(req) && satisfiesWithoutAnchor(sdp, req.toPolicy)) {
      this.log.warn({ callId: req.callId }, 'no rtpengine reachable; call proceeds unanchored as policy allows');
      this.calls.set(req.callId, { instance: undefined, counted: false, pending: { fromTag: req.fromTag, from: req.from, fromPolicy: req.fromPolicy, toPolicy: req.toPolicy, offered, toward: offered } });
      return { ok: true, sdp: this.hide(req.callId, req.fromTag, sdp), anchored: false };
    }
    return this.noEngine();
  }

  /** The peer side of the call decides whether it may go unanchored. */
  private unanchoredAllowed(req: OfferRequest): boolean {
    const peerPolicy = req.from === 'peer' ? req.fromPolicy : req.toPolicy;
    return peerPolicy.allow_unanchored;
  }

  /** An answer: 183 with SDP (early media), 200 to INVITE, or the answer to a re-offer. */
  async answer(req: AnswerRequest): Promise<MediaResult> {
    const state = this.calls.get(req.callId);
    const pending = state?.pending;
    if (!state || !pending) return this.refused(refuse(500, 'no_offer', 'answer without an offer', 399));
    let sdp: Sdp;
    try {
      sdp = parseSdp(req.sdp);
    } catch (e) {
      return this.refused(refuse(488, 'bad_sdp', e instanceof SdpError ? e.message : 'unparsable SDP', 399));
    }
    const bad = checkAnswer(sdp, pending.toPolicy);
    if (bad) return this.refused(bad);
    if (!state.instance) {
      this.count(state, 'unanchored');
      return { ok: true, sdp: this.hide(req.callId, req.toTag, sdp), anchored: false };
    }
    const params = { ...answerOptions(pending.fromPolicy), 'call-id': req.callId, 'from-tag': req.fromTag, 'to-tag': req.toTag, sdp: writeSdp(sdp) };
    let reply: NgReply;
    try {
      reply = await this.pool.command(state.instance, 'answer', params);
    } catch (e) {
      if (e instanceof NgRejected) return this.refused(refuse(488, 'rtpengine_rejected', `media relay refused the answer: ${e.message}`, 399));
      return this.noEngine();
    }
    const out = this.rewriteOut(reply);
    if (!out) return this.refused(refuse(488, 'rtpengine_rejected', 'media relay returned no SDP', 399));
    this.count(state, `${pending.offered}>${sdpKeying(sdp)}`);
    return { ok: true, sdp: this.hide(req.callId, req.toTag, out), anchored: true };
  }

  private hide(callId: string, producer: string, sdp: Sdp): string {
    return writeSdp(this.origins.hide(callId, producer, sdp));
  }

  private count(state: CallState, mode: string): void {
    if (state.counted) return;
    state.counted = true;
    mediaCalls.inc({ mode });
  }

  private rewriteOut(reply: NgReply): Sdp | undefined {
    if (typeof reply.sdp !== 'string') return undefined;
    try {
      return parseSdp(reply.sdp);
    } catch {
      return undefined;
    }
  }

  /**
   * End of call (BYE, CANCEL, failure, timeout): remove the session from rtpengine. Idempotent,
   * never throws; returns the call's final counters when rtpengine gave them.
   */
  async delete(callId: string): Promise<MediaStats | undefined> {
    const pending = this.inflight.get(callId);
    if (pending) await pending.catch(() => undefined);
    this.origins.end(callId);
    const state = this.calls.get(callId);
    if (!state) return undefined;
    this.calls.delete(callId);
    const inst = state.instance;
    if (!inst) {
      this.countSessions();
      return undefined;
    }
    // An instance marked down may only have glitched: still send the delete, but do not make
    // the caller wait for a timeout.
    if (!inst.healthy) {
      this.release(inst, callId);
      return undefined;
    }
    return this.counted(async () => {
      try {
        // rtpengine 10.5's delete reply carries no totals, so the final counters come from a
        // query just before it.
        let stats: MediaStats | undefined;
        try {
          stats = statsOf(await this.pool.command(inst, 'query', { 'call-id': callId }));
        } catch (e) {
          if (e instanceof NgUnavailable) throw e;
        }
        const r = await this.pool.command(inst, 'delete', { 'call-id': callId });
        stats ??= statsOf(r);
        if (stats) {
          mediaPackets.inc(stats.packets);
          mediaBytes.inc(stats.bytes);
          mediaPacketErrors.inc(stats.errors);
        }
        return stats;
      } catch (e) {
        // "Unknown call-id": rtpengine already dropped it (timeout, restart): nothing left to free.
        if (!(e instanceof NgRejected || e instanceof NgUnavailable)) this.log.warn({ callId, err: String(e) }, 'delete failed');
        return undefined;
      }
    });
  }

  /** A best-effort delete nobody waits for (an unknown call-id or no reply: nothing more to do). */
  private release(inst: RtpengineInstance, callId: string): void {
    this.counted(() => this.pool.command(inst, 'delete', { 'call-id': callId })).catch(() => undefined);
  }

  /** Runs a delete's round trips with its session still counted in the gauge: until rtpengine
   *  has answered, it may still hold the session. */
  private async counted<T>(work: () => Promise<T>): Promise<T> {
    this.releasing++;
    this.countSessions();
    try {
      return await work();
    } finally {
      this.releasing--;
      this.countSessions();
    }
  }

  /** Sessions rtpengine may hold for this process: calls anchored, and deletes not yet answered. */
  private countSessions(): void {
    mediaSessions.set(this.calls.size + this.releasing);
  }

  /** Packet and error counters of a live call, or undefined when unknown / not anchored. */
  async query(callId: string): Promise<MediaStats | undefined> {
    const inst = this.calls.get(callId)?.instance;
    if (!inst) return undefined;
    try {
      return statsOf(await this.pool.command(inst, 'query', { 'call-id': callId }));
    } catch {
      return undefined;
    }
  }

  /**
   * Media inactivity (issue #16.2): when rtpengine last relayed a packet of this call, in ms
   * since the epoch (its `last packet` per stream, else the call's creation); `gone` when
   * rtpengine answers that it no longer knows the call (its own --timeout deleted it);
   * undefined when the call is not anchored or rtpengine cannot be asked now.
   */
  async activity(callId: string): Promise<{ lastPacketMs: number } | 'gone' | undefined> {
    const inst = this.calls.get(callId)?.instance;
    if (!inst) return undefined;
    try {
      const last = lastPacketOf(await this.pool.command(inst, 'query', { 'call-id': callId }));
      return last === undefined ? undefined : { lastPacketMs: last * 1000 };
    } catch (e) {
      return e instanceof NgRejected ? 'gone' : undefined;
    }
  }

  /** Stop health checks, delete every call still held, and stop the embedded rtpengine. */
  async close(): Promise<void> {
    await Promise.all([...this.calls.keys()].map((id) => this.delete(id)));
    this.pool.close();
    await this.embedded?.stop();
  }
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Totals from a query/delete reply (`totals.RTP`), plus per-tag stream counters. */
export function statsOf(r: NgReply): MediaStats | undefined {
  const rtp = r.totals?.RTP;
  if (!rtp) return undefined;
  const legs: MediaStats['legs'] = {};
  const tags = (r.tags ?? {}) as Record<string, { medias?: { streams?: { stats?: Record<string, unknown> }[] }[] }>;
  for (const [tag, t] of Object.entries(tags)) {
    const leg = { packets: 0, bytes: 0, errors: 0 };
    for (const m of t.medias ?? []) for (const s of m.streams ?? []) {
      leg.packets += num(s.stats?.packets); leg.bytes += num(s.stats?.bytes); leg.errors += num(s.stats?.errors);
    }
    legs[tag] = leg;
  }
  return { packets: num(rtp.packets), bytes: num(rtp.bytes), errors: num(rtp.errors), legs };
}

/** Latest `last packet` (unix seconds) over every stream of a query reply, else the call's `created`. */
export function lastPacketOf(r: NgReply): number | undefined {
  let last = 0;
  const tags = (r.tags ?? {}) as Record<string, { medias?: { streams?: Record<string, unknown>[] }[] }>;
  for (const t of Object.values(tags)) for (const m of t.medias ?? []) for (const s of m.streams ?? []) {
    last = Math.max(last, num(s['last packet']));
  }
  if (last > 0) return last;
  const created = num((r as Record<string, unknown>)['created']);
  return created > 0 ? created : undefined;
}
