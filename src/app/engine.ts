// The SIP engine as a subsystem: the embedded engine (transports, shield, TLS) or, with
// `engine.embedded: false`, only the address of an external drachtio-server. Reload: shield
// and TLS material apply at once (established TLS connections keep their session); listeners
// and the engine's own wiring need a restart.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Policy, Tls } from '../policy/schema.js';
import { startEngine, type Engine, type EngineOptions } from '../engine/engine.js';
import { overloadOptions, startOverloadControl, WorkerBacklog, type OverloadGate } from '../engine/overload/index.js';
import { isEmergencyUri } from '../sbc/limits/priority.js';
import { peerUdpSources } from '../sbc/peers.js';
import type { TlsHandshakeEvent } from '../engine/transport/index.js';
import { systemClock } from '../engine/transport/types.js';
import type { CaptureTap } from '../engine/capture/index.js';
import { bindEngineMetrics } from '../ops/engine-metrics.js';
import { tlsHandshakesTotal } from '../ops/metrics.js';
import { crlNextUpdateGauge } from '../ops/policy-metrics.js';
import { syncBans, type BanSync, type Store } from '../store/index.js';
import { materialDigest, readTlsMaterial, type TlsMaterial } from './tls-material.js';
import { crlStale, tlsReloadsTotal } from './metrics.js';
import { APPLIED, changedKeys, type PolicyProblem, type Reconfigured, type Subsystem } from './subsystem.js';

/** Keys the engine reads only when it starts. */
const RESTART_KEYS = ['listen', 'engine', 'overload'];

export interface EngineSubsystemOptions {
  policy: Policy;
  log: Logger;
  /** The shared ban list the shield follows. */
  store: Store;
  /** A source did something that counts against its reputation (malformed SIP, failed TLS
   *  handshake); `tlsIdentity`: the verified client certificate's fingerprint it came with. */
  strike: (source: string, kind: string, tlsIdentity?: string) => void;
  /** SIP capture: told of every message sent and received (TLS plaintext included). */
  capture?: CaptureTap;
  now?: () => number;
  /** Open the SIP listeners only on `openListeners()` (the node warms up first: src/app/warmup). */
  deferListen?: boolean;
}

export class EngineSubsystem implements Subsystem {
  readonly name = 'engine';
  private engine: Engine | undefined;
  private bans: BanSync | undefined;
  private tls: TlsMaterial | undefined;
  /** Material read by prepare() for the policy about to be applied. */
  private readonly prepared = new WeakMap<Policy, TlsMaterial | undefined>();
  private readonly started: Policy;
  private wireTarget: { host: string; port: number; secret: string } | undefined;
  private readonly now: () => number;
  /**
   * The periodic recheck (tls.recheck_s): a CRL goes stale while it is loaded, without any
   * reload, and files can change on disk without a file-system event.
   */
  private recheckTimer: NodeJS.Timeout | undefined;
  private recheckMs = 0;
  /** What the recheck last refused, so a broken file is logged once, not every period. */
  private recheckRefused: string | undefined;
  private readonly staleFiles = new Set<string>();
  private current: Policy;
  private overload: OverloadGate | undefined;
  /** What the B2BUA worker processes report of their event loops (workers > 1), for the gate. */
  readonly workerBacklog = new WorkerBacklog(systemClock);

  constructor(private readonly opts: EngineSubsystemOptions) {
    this.started = opts.policy;
    this.current = opts.policy;
    this.now = opts.now ?? Date.now;
  }

  /** Where the B2BUA connects (drachtio wire protocol). */
  get wire(): { host: string; port: number; secret: string } {
    if (!this.wireTarget) throw new Error('engine not started');
    return this.wireTarget;
  }

  /** Engine counters for /metrics; undefined with an external drachtio-server. */
  get embedded(): Engine | undefined {
    return this.engine;
  }

  async start(): Promise<void> {
    const policy = this.opts.policy;
    if (!policy.engine.embedded) {
      this.wireTarget = { host: policy.engine.wire.address, port: policy.engine.wire.port, secret: policy.engine.wire.secret! };
      return;
    }
    if (policy.tls) {
      const r = readTlsMaterial(policy.tls);
      if (!r.ok) throw new Error(`TLS material: ${r.problems.map((p) => `${p.keyPath.join('.')}: ${p.message}`).join('; ')}`);
      this.tls = r.material;
      this.watchCrls(policy);
    }
    const secret = policy.engine.wire.secret ?? randomBytes(18).toString('base64url');
    const engine = await startEngine({
      contacts: contactsOf(policy),
      wire: { address: '127.0.0.1', port: 0, secret },
      ...(this.tls ? { tls: this.tls.options } : {}),
      shield: { ...shieldConfigOf(policy), onBanWithheld: (address) => this.opts.log.warn({ address }, 'ban withheld: strikes came from a configured peer\'s UDP address (spoofable); limits.strikes.ban_peers allows it') },
      // The parser's detail (input in it cut short) goes to the debug log only, never on the wire.
      onMalformed: (source, error, tls) => { this.opts.log.debug({ source: source.address, error }, 'malformed SIP message'); this.opts.strike(source.address, 'malformed', tls?.fingerprint256); },
      advertise: Object.fromEntries(policy.listen.filter((l) => l.advertise).map((l) => [`${l.address}:${l.port}`, l.advertise!])),
      // A deep UDP receive buffer rides out floods: what the kernel drops never reaches the
      // shield and would include real peers' datagrams (capped by net.core.rmem_max).
      limits: { transport: { udpReceiveBufferBytes: 4 * 1024 * 1024 } },
      logger: this.opts.log,
      timers: engineTimers(policy),
      ...(this.opts.deferListen ? { deferListen: true } : {}),
    });
    this.engine = engine;
    if (this.opts.capture) engine.transports.setCapture(this.opts.capture);
    // With the listeners still closed its receive-queue probe would watch no socket.
    if (!this.opts.deferListen) this.startOverload(engine);
    bindEngineMetrics(() => engine.counters());
    engine.transports.on('tls-handshake', (e: TlsHandshakeEvent) => {
      tlsHandshakesTotal.inc({ result: e.result });
      // A failed handshake is a strike against its source (RFC 5765 §5.1.2).
      if (e.result === 'failed' && e.direction === 'inbound' && e.source.address) this.opts.strike(e.source.address, 'tls');
    });
    this.wireTarget = { host: '127.0.0.1', port: engine.wirePort, secret };
    // Identity bans (issue #17.4): the transports close the identity's connections and refuse its
    // handshakes; this is the log line that goes with them.
    engine.shield.onIdentityBan((fingerprint256, ttlMs) => {
      this.opts.log.warn({ fingerprint256, ttl_s: Math.round(ttlMs / 1000) }, 'TLS identity banned: its connections are closed and its handshakes refused');
    });
    this.bans = await syncBans(this.opts.store, engine.shield);
    this.scheduleRecheck(policy);
  }

  /** Bind the policy's SIP listeners, if start() left them closed: peers can reach the node from now. */
  async openListeners(): Promise<void> {
    if (!this.engine) return;
    await this.engine.openListeners();
    if (this.opts.deferListen && !this.overload) this.startOverload(this.engine);
  }

  /**
   * Overload control (docs/engine.md): new INVITEs shed early; emergency calls never are.
   * Resource-Priority needs peer attribution, which the engine does not have: the B2BUA's
   * limits honour it; here only the Request-URI decides. Started once the UDP listeners are
   * bound: the receive-queue signal reads their sockets' queues.
   */
  private startOverload(engine: Engine): void {
    const overload = overloadOptions(this.started.overload);
    if (!overload) return;
    this.overload = startOverloadControl(engine, overload, systemClock, this.workerBacklog);
    this.overload.setPriorityPredicate((req) => isEmergencyUri(this.current, req.uri));
  }

  private scheduleRecheck(policy: Policy): void {
    const ms = this.tls && policy.tls ? policy.tls.recheck_s * 1000 : 0;
    if (ms === this.recheckMs) return;
    clearInterval(this.recheckTimer);
    this.recheckTimer = undefined;
    this.recheckMs = ms;
    if (ms > 0) {
      this.recheckTimer = setInterval(() => this.recheck(), ms);
      this.recheckTimer.unref();
    }
  }

  /**
   * Material changed on disk that no file event reported (a Kubernetes Secret swaps a symlink
   * above the files; network file systems send none) is re-read and applied, as a reload would;
   * a file that does not pass is logged once and the running material stays. Then CRL freshness.
   */
  private recheck(): void {
    const tls = this.current.tls;
    if (!tls || !this.engine || !this.tls) return;
    if (materialDigest(tls) === this.tls.digest) this.recheckRefused = undefined;
    else {
      const r = readTlsMaterial(tls);
      if (r.ok) {
        this.recheckRefused = undefined;
        this.applyTls(r.material, tls, 'recheck');
      } else {
        const why = r.problems.map((p) => `${p.keyPath.join('.')}: ${p.message}`).join('; ');
        if (why !== this.recheckRefused) this.opts.log.error({ problems: why }, 'TLS material changed on disk but is refused; keeping the running material');
        this.recheckRefused = why;
      }
    }
    this.watchCrls(this.current, true);
  }

  private applyTls(material: TlsMaterial, tls: Tls, trigger: 'reload' | 'recheck'): void {
    try {
      this.engine!.transports.reloadTls(material.options);
      this.tls = material;
      tlsReloadsTotal.inc({ result: 'ok' });
      this.opts.log.info({ certificate: tls.certificate, crls: tls.crls.length, trigger }, 'TLS material reloaded; established connections keep their session');
    } catch (err) {
      // The same contexts were built when the material was read, so this is not expected; the old material stays.
      tlsReloadsTotal.inc({ result: 'error' });
      this.opts.log.error({ err: (err as Error).message }, 'TLS reload failed; keeping the running material');
    }
  }

  /** `sip:…;transport=udp` / `tls/127.0.0.1:5061` strings for the startup log. */
  get hostports(): string | undefined {
    return this.engine?.hostports;
  }

  prepare(next: Policy): PolicyProblem[] {
    if (!this.engine || !next.tls) { this.prepared.set(next, undefined); return []; }
    const r = readTlsMaterial(next.tls);
    if (!r.ok) return r.problems;
    this.prepared.set(next, r.material);
    return [];
  }

  reconfigure(next: Policy): Reconfigured {
    this.current = next;
    const restart = changedKeys(this.started, next, RESTART_KEYS);
    if (this.started.tls === undefined !== (next.tls === undefined)) restart.push('tls');
    if (!this.engine) return restart.length ? { restartNeeded: restart } : APPLIED;
    this.engine.shield.configure(shieldConfigOf(next));
    const material = this.prepared.get(next);
    if (material && this.tls && material.digest !== this.tls.digest) this.applyTls(material, next.tls!, 'reload');
    if (this.tls) this.watchCrls(next);
    this.scheduleRecheck(next);
    return restart.length ? { restartNeeded: restart } : APPLIED;
  }

  /**
   * Flag each loaded CRL past its nextUpdate (peergate_tls_crl_next_update_seconds, from
   * src/ops/policy-metrics.ts, says when); log it (`onlyNew`: only those that just went stale).
   */
  private watchCrls(policy: Policy, onlyNew = false): void {
    if (!onlyNew) crlStale.reset();
    for (const c of this.tls?.crls ?? []) {
      if (!c.nextUpdate) continue;
      // Set at each policy load too; the recheck may have loaded a newer CRL since.
      crlNextUpdateGauge.set({ file: c.file }, Math.floor(c.nextUpdate.getTime() / 1000));
      const stale = c.nextUpdate.getTime() <= this.now();
      const was = this.staleFiles.has(c.file);
      crlStale.set({ file: c.file }, stale ? 1 : 0);
      if (stale) this.staleFiles.add(c.file); else this.staleFiles.delete(c.file);
      if (stale && (!onlyNew || !was)) {
        this.opts.log.warn({ file: c.file, next_update: c.nextUpdate.toISOString(), stale_crl: policy.tls?.stale_crl },
          policy.tls?.stale_crl === 'serve'
            ? 'CRL is past its nextUpdate: serving clients of its CA anyway (tls.stale_crl: serve) until a fresh CRL is loaded'
            : 'CRL is past its nextUpdate: clients of its CA are refused until a fresh CRL is loaded');
      }
    }
  }

  ready(): true | string {
    return true;
  }

  /**
   * Before closing: let requests the B2BUA just sent (BYE of the last calls) get their answer,
   * and responses in flight go out. Bounded by `maxMs`. Transactions that have their final
   * response and only wait out Timer D/J/K/M are not waited for: nothing of a call is left to
   * them once it has ended (before, a node that had just carried calls took the whole 2 s).
   */
  async settle(maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    await sleep(Math.min(200, maxMs)); // what the B2BUA sent is still on the wire protocol
    while (this.engine && this.engine.core.clientsAwaitingFinal() > 0 && Date.now() < deadline) await sleep(50);
  }

  async close(): Promise<void> {
    clearInterval(this.recheckTimer);
    this.overload?.close();
    this.bans?.stop();
    await this.engine?.close();
  }
}

/** The engine's RFC 3261 timers and deferred 100 Trying from the policy (engine.sip_timers, engine.trying_delay_ms). */
export function engineTimers(policy: Policy): NonNullable<EngineOptions['timers']> {
  const t = policy.engine.sip_timers;
  return { T1: t.t1_ms, T2: t.t2_ms, T4: t.t4_ms, trying: policy.engine.trying_delay_ms };
}

/** Listeners grouped into drachtio-style contacts: `sip:addr:port;transport=udp,tcp`, `sips:addr:port;transport=tls`. */
export function contactsOf(policy: Policy): string[] {
  const groups = new Map<string, string[]>();
  for (const l of policy.listen) {
    const host = l.address.includes(':') ? `[${l.address}]` : l.address;
    const key = `${l.transport === 'tls' ? 'sips' : 'sip'}:${host}:${l.port}`;
    groups.set(key, [...(groups.get(key) ?? []), l.transport]);
  }
  return [...groups].map(([k, t]) => `${k};transport=${t.join(',')}`);
}

/**
 * The engine's pre-parse allowlist: when every peer is known by address, anything else is
 * dropped before parsing (core-side sources too, when core.addresses is set).
 */
export function shieldConfigOf(policy: Policy) {
  const peerRanges: string[] = [];
  let everyPeerHasAddresses = policy.peers.length > 0;
  for (const p of policy.peers) {
    if (p.match.addresses) peerRanges.push(...p.match.addresses);
    else everyPeerHasAddresses = false;
  }
  const allow = everyPeerHasAddresses && policy.core.addresses ? [...peerRanges, ...policy.core.addresses] : [];
  // The shield has one bucket size for every source, so it is the ceiling: the highest of
  // the global rate (sources that are no peer) and each peer's own. Finer per-peer rates
  // need the source attributed first, which parsing does.
  const rates = [policy.limits.per_source_pps, ...policy.peers.map((p) => p.limits.per_source_pps)].filter((x): x is number => x !== undefined);
  const pps = rates.length ? Math.max(...rates) : undefined;
  // Strikes from a configured peer's UDP address may be spoofed: no ban on them (docs/pool.md).
  return { allow, deny: [], rate: pps ? { ratePerSec: pps, burst: pps * 2 } : null, protect: peerUdpSources(policy) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
