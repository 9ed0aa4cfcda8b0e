// The composition root: assembles the SBE from its subsystems, in dependency order, and owns
// the process lifecycle around them.
//
//   store → limits → media → identity → cdr → capture → engine → b2bua → warm-up → listeners
//   → ops → memory
//
// - The engine starts with its SIP listeners closed when the policy asks for a warm-up
//   (src/app/warmup): calls through the node's own processes first, then the listeners open,
//   then ops (so /ready says 200 only once peers can reach the node).
// - Workers (policy `workers` > 1, src/app/workers): this process keeps the store, the engine,
//   ops and the policy; the B2BUA with identity, media and cdr runs in N worker processes
//   on the engine's wire port (store → limits → media if spawned → capture → engine →
//   workers → ops → memory). `workers: 1` is the in-process B2BUA below, unchanged.
// - Reload (SIGHUP, a change of the policy file or of the TLS material it names, POST
//   /admin/reload): the new file is validated by the schema, then every subsystem checks what
//   it needs (prepare: read certificates and CRLs, token files) and only when none objects is
//   the policy swapped in and each subsystem reconfigured. Keys a subsystem cannot change
//   while running are reported "restart needed" (log, admin answer, metric).
// - Drain (SIGTERM, POST /admin/drain): /ready answers 503 at once, new INVITEs get 503 with
//   Retry-After, calls in progress go on; when the last one ends, or at
//   lifecycle.drain_timeout_s (then every remaining call gets BYE on both legs), everything
//   closes and run() resolves with exit code 0.
// - Stop now (a second SIGTERM, SIGINT): BYE on both legs of every call, then close.
import type { Logger } from 'pino';
import type { LevelWithSilent } from 'pino';
import type { Policy } from '../policy/schema.js';
import type { PolicyHolder } from '../policy/reload.js';
import { formatError, type PolicyError } from '../policy/load.js';
import { collectDefaultMetrics } from '../ops/metrics.js';
import type { Readiness, ReloadAnswer, DrainAnswer } from '../ops/server.js';
import type { ActiveCall, Hangup } from '../sbc/b2bua.js';
import { verifierImplementation } from '../sbc/identity/sigverify.js';
import type { PeergateEnding } from '../sbc/session/index.js';
import { locateProblems } from './locate.js';
import { draining as drainingGauge, restartNeeded as restartNeededGauge } from './metrics.js';
import { EngineSubsystem } from './engine.js';
import { StoreSubsystem, LimitsSubsystem } from './state.js';
import { MediaSubsystem } from './media.js';
import { IdentitySubsystem } from './identity.js';
import type { SbcSubsystem } from './sbc.js';
import { OpsSubsystem } from './ops.js';
import { MemorySubsystem, dropBinaryPages, reduceMemory } from './memory-reducer.js';
import { CdrSubsystem, CaptureSubsystem } from './records.js';
import type { PolicyProblem, Subsystem } from './subsystem.js';
import { WorkerPool } from './workers/pool.js';
import { heardWorkers } from './workers/heard.js';
import { Preadmitter } from './preadmit.js';
import { MemoryStore } from '../store/memory.js';
import { workerCount } from './workers/schema.js';
import { within } from './within.js';
import { probeBind } from '../engine/transport/probe.js';
import { runWarmup, type WarmupHost } from './warmup/index.js';
import type { WarmupB2bua } from './warmup/b2bua.js';

export interface AppOptions {
  holder: PolicyHolder;
  /** Root logger; its level (and that of every module logger) follows log.level. */
  log: Logger;
  nodeId: string;
}

/** Ending calls because this node goes away (RFC 3326 Reason on both legs' BYE). */
export const DRAIN_DEADLINE: Hangup = 'drain_deadline';
export const SHUTDOWN: Hangup = 'shutdown';

/** RFC 3326 Reason on the BYEs that end the calls of a B2BUA worker that died. */
export const WORKER_GONE_REASON = 'SIP;cause=500;text="peergate worker restarted"';

/** Where calls live: the in-process B2BUA (workers: 1) or the worker pool; what the lifecycle needs. */
interface CallHost {
  calls(): ActiveCall[] | Promise<ActiveCall[]>;
  targets(): unknown;
  /** Calls in progress (with workers, as of the last poll: at most a second old). */
  readonly liveCalls: number;
  /** Calls in progress now (with workers, asked of each after what it was told before). */
  countLive(): number | Promise<number>;
  drain(retryAfterS: number): void;
  whenIdle(): Promise<void>;
  endAll(h: Hangup): Promise<void>;
}

/** After the BYEs, how long calls still being set up get to finish before the engine closes. */
const SETTLE_MS = 2000;
/** How long the BYEs sent at the drain deadline or a stop may wait for their answers. Each
 *  call's slots and media are released as its BYEs go out; a peer that is gone would otherwise
 *  hold the exit for Timer F (32 s), past a service manager's stop timeout. */
const BYE_WAIT_MS = 3000;

export class App {
  private readonly holder: PolicyHolder;
  private readonly log: Logger;
  private readonly moduleLogs: Logger[] = [];
  private readonly subsystems: Subsystem[] = [];
  private readonly started: Policy;
  private store!: StoreSubsystem;
  private limits!: LimitsSubsystem;
  private media: MediaSubsystem | undefined;
  private pool: WorkerPool | undefined;
  private engine!: EngineSubsystem;
  /** The in-process B2BUA (workers: 1); undefined with workers. */
  private sbc: SbcSubsystem | undefined;
  private host!: CallHost;
  private ops!: OpsSubsystem;
  private pendingRestart: string[] = [];
  /** How long each subsystem's start took (ms), in start order: a slow start names its part. */
  private readonly startMs: Record<string, number> = {};
  private drainState: { deadline: number; done: Promise<number> } | undefined;
  private forceStop: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private resolveStopped!: (code: number) => void;
  /** Resolves with the process exit code once a drain or stop has closed everything. */
  readonly stopped = new Promise<number>((resolve) => { this.resolveStopped = resolve; });

  private constructor(opts: AppOptions) {
    this.holder = opts.holder;
    this.log = opts.log;
    this.started = opts.holder.current;
  }

  /** Start every subsystem in dependency order; on failure, close what was started and throw. */
  static async start(opts: AppOptions): Promise<App> {
    const app = new App(opts);
    try {
      await app.assemble(opts.nodeId);
    } catch (err) {
      await app.closeAll();
      throw err;
    }
    return app;
  }

  private moduleLog(module: string): Logger {
    const l = this.log.child({ module });
    this.moduleLogs.push(l);
    return l;
  }

  private async add<S extends Subsystem>(s: S): Promise<S> {
    this.subsystems.push(s);
    const t0 = performance.now();
    await s.start();
    this.startMs[s.name] = Math.round(performance.now() - t0);
    return s;
  }

  private async assemble(nodeId: string): Promise<void> {
    const policy = this.started;
    const current = () => this.holder.current;
    // The ops server opens after the warm-up: a taken ops port fails the start now, as a taken
    // SIP port does (the engine checks its deferred listeners the same way).
    if (this.warmsUp() && policy.ops.port !== 0) await probeBind('tcp', policy.ops.address, policy.ops.port, 'ops');
    collectDefaultMetrics();
    this.store = await this.add(new StoreSubsystem(policy));
    this.limits = await this.add(new LimitsSubsystem(this.store.store, nodeId, current, this.moduleLog('limits')));
    const workers = workerCount(policy.workers);
    if (workers > 1) await this.assembleWithWorkers(nodeId, workers);
    else await this.assembleInProcess(nodeId);
    // Peers reach the node only once it has run its hot path (policy warmup).
    await this.warmUp(nodeId);
    await this.engine.openListeners();
    this.ops = await this.add(new OpsSubsystem(policy, () => this.readiness(), {
      peers: () => this.holder.current.peers.map((p) => ({ id: p.id, match: p.match, transport: p.transport, targets: p.targets ?? [], limits: p.limits })),
      calls: () => this.host.calls(),
      targets: () => this.host.targets(),
      bans: {
        list: () => this.store.store.listBans(),
        add: (address, ttlMs, reason) => this.store.store.ban(address, ttlMs, reason ?? 'admin'),
        remove: (address) => this.store.store.unban(address),
      },
      reload: () => this.reload(),
      // The answer counts the calls as the drain found them, asked after the drain began.
      drain: async () => ({ ...this.drain('admin'), calls: await this.host.countLive() }),
    }, this.pool ? () => this.pool!.metrics() : undefined));

    // After a burst of set-ups, this process and every worker give back what it left (policy memory).
    await this.add(new MemorySubsystem({
      policy, log: this.moduleLog('memory'),
      transactions: () => {
        const s = this.engine.embedded?.core.stats();
        return s ? s.serverTransactions + s.clientTransactions : undefined;
      },
      ...(this.pool ? { others: (opts) => this.pool!.reduceMemory(opts) } : {}),
    }));

    this.holder.setGate((next, previous) => this.prepare(next, previous));
    this.holder.on('policy', (next, previous) => this.apply(next, previous));
    this.holder.watchMaterial(materialFiles(policy));
    this.holder.watch();
    this.applyLogLevel(policy.log.level);
    // Says whether signatures are checked by the native addon or the slower node:crypto fallback.
    this.log.info({
      node: nodeId, policy: this.holder.path, contacts: this.engine.hostports, ops: `${policy.ops.address}:${this.ops.port}`,
      signature_verifier: verifierImplementation, workers,
      // From node's launch (policy read and checked, TLS material loaded, then each subsystem).
      started_in_ms: Math.round(process.uptime() * 1000), start_ms: this.startMs,
    }, 'peergate started');
    // What only the start ran of the node binary need not stay mapped (memory-reducer.ts).
    dropBinaryPages();
  }

  /** Calls through this node's own processes before its listeners open (src/app/warmup). */
  private async warmUp(nodeId: string): Promise<void> {
    if (!this.warmsUp()) return;
    const t0 = performance.now();
    const pool = this.pool;
    let inProcess: WarmupB2bua | undefined;
    const host: WarmupHost = pool
      ? { attach: (text, wire) => pool.warmupAttach(text, wire), detach: () => pool.warmupDetach() }
      : {
        attach: async (text, wire) => {
          const { attachWarmupB2bua } = await import('./warmup/b2bua.js');
          inProcess = await attachWarmupB2bua(JSON.parse(text) as Policy, wire, this.log);
          return 1;
        },
        detach: async () => { await inProcess?.detach(); inProcess = undefined; },
      };
    const done = await runWarmup({
      policy: this.started, host, log: this.moduleLog('warmup'),
      // The engine decides limits before the workers (memory store): warm that path as well.
      ...(pool && this.store.store instanceof MemoryStore ? { preadmit: { nodeId } } : {}),
    });
    // What its calls left here (the workers reduce as they detach): ≈ 70 MiB of a 2-worker node
    // idle. Compacting: unlike after a burst of real calls (memory.compact_heap), a start with and
    // without it showed no difference in the first seconds' refusals (BENCHMARKS.md "A reduction
    // without the compacting GC").
    if (done) reduceMemory({ compact: true });
    this.startMs['warmup'] = Math.round(performance.now() - t0);
  }

  /** The embedded engine's listeners wait for a warm-up; an external drachtio-server's are its own. */
  private warmsUp(): boolean {
    return this.started.engine.embedded && this.started.warmup.calls > 0;
  }

  private engineSubsystem(capture: CaptureSubsystem): EngineSubsystem {
    return new EngineSubsystem({
      ...(this.warmsUp() ? { deferListen: true } : {}),
      policy: this.started, log: this.moduleLog('engine'), store: this.store.store,
      strike: (source, kind, tlsIdentity) => this.limits.strike(source, kind, tlsIdentity),
      ...(capture.tap ? { capture: capture.tap } : {}),
    });
  }

  /** workers: 1 — the B2BUA and its stages in this process. */
  private async assembleInProcess(nodeId: string): Promise<void> {
    const policy = this.started;
    const current = () => this.holder.current;
    const mediaSubsystem = await this.add(new MediaSubsystem(policy, this.moduleLog('media')));
    this.media = mediaSubsystem;
    const identity = await this.add(new IdentitySubsystem(this.store.store, this.moduleLog('identity')));
    const cdr = await this.add(new CdrSubsystem(policy, this.log, nodeId));
    const capture = await this.add(new CaptureSubsystem(policy, this.moduleLog('capture')));
    this.engine = await this.add(this.engineSubsystem(capture));
    const media = mediaSubsystem.seam;
    // Imported here: with workers the primary never runs the B2BUA (drachtio-srf and the call
    // flow stay out of its memory, BENCHMARKS.md "Idle footprint").
    const { SbcSubsystem } = await import('./sbc.js');
    const sbc: SbcSubsystem = await this.add(new SbcSubsystem({
      policy: current,
      stages: { limits: this.limits.limits, identity: identity.stage, ...(media ? { media } : {}) },
      recorder: cdr.recorder,
      log: this.log,
      wire: () => this.engine.wire,
      refused: (source, reason, tlsIdentity) => this.limits.refused(source, reason, tlsIdentity),
      // Reconciliation (issue #16.2): a call whose dialog the engine no longer holds is ended.
      ...(this.engine.embedded ? { dialogExists: (id: string) => this.engine.embedded!.core.dialogs.get(id) !== undefined } : {}),
    }));
    this.sbc = sbc;
    this.host = {
      calls: () => sbc.calls(), targets: () => sbc.targets(), get liveCalls() { return sbc.liveCalls; }, countLive: () => sbc.liveCalls,
      drain: (s) => sbc.drain(s), whenIdle: () => sbc.whenIdle(), endAll: (h) => sbc.endAll(h),
    };
  }

  /**
   * workers > 1 — the B2BUA runs in `count` worker processes on the engine's wire port. Only a
   * spawned rtpengine stays here (one per node); identity and cdr live in the workers.
   */
  private async assembleWithWorkers(nodeId: string, count: number): Promise<void> {
    const policy = this.started;
    if (policy.media.anchoring && policy.media.rtpengine === 'spawn') this.media = await this.add(new MediaSubsystem(policy, this.moduleLog('media')));
    // The workers verify identity; its prepare() checks the anchor files here as well, so a
    // reload they would refuse is refused as a whole, with file:line, and none applies it.
    await this.add(new IdentitySubsystem(this.store.store, this.moduleLog('identity')));
    const capture = await this.add(new CaptureSubsystem(policy, this.moduleLog('capture')));
    this.engine = await this.add(this.engineSubsystem(capture));
    // A worker that dies leaves its calls in the engine: end them on both legs (RFC 3326 Reason).
    this.engine.embedded?.core.endDialogsOfGoneApps(WORKER_GONE_REASON);
    // A worker that stopped reporting gets no new calls while another does (workers/heard.ts).
    this.engine.embedded?.wire.setHeard(heardWorkers(this.engine.workerBacklog));
    // Limits decided here for each new INVITE, before its worker sees it (memory store only: the
    // wire must not wait on Redis). Set before the workers connect, so that none goes without.
    const store = this.store.store;
    if (store instanceof MemoryStore && this.engine.embedded) {
      this.engine.embedded.wire.setPreAdmission(new Preadmitter({ policy: () => this.holder.current, store, nodeId }));
    }
    const media = this.media;
    this.pool = await this.add(new WorkerPool({
      count, nodeId, policyPath: this.holder.path, policy: () => this.holder.current, store: this.store.store,
      wire: () => this.engine.wire, rtpengine: () => media?.spawnedAddress, log: this.moduleLog('workers'),
      backlog: this.engine.workerBacklog,
    }));
    this.host = this.pool;
  }

  /** Established calls of the in-process B2BUA (workers: 1); with workers, see /admin/calls. */
  calls(): ActiveCall[] { return this.sbc?.calls() ?? []; }

  /** Established calls, of every worker. */
  allCalls(): Promise<ActiveCall[]> { return Promise.resolve(this.host.calls()); }

  /** End one established call from peergate's side: BYE on both legs; `reason` is its result. */
  endCall(id: string, reason: PeergateEnding): boolean | Promise<boolean> { return this.sbc ? this.sbc.endCall(id, reason) : this.pool!.endCall(id, reason); }

  /** The ops server's port (policy port 0 picks one). */
  get opsPort(): number | undefined { return this.ops.port; }

  // ---------------------------------------------------------------- reload

  /** Every subsystem checks `next`; any problem refuses the whole policy (file:line, key). */
  private prepare(next: Policy, previous: Policy): PolicyError[] {
    const problems: PolicyProblem[] = [];
    for (const s of this.subsystems) if (s.prepare) problems.push(...s.prepare(next, previous));
    return problems.length ? locateProblems(this.holder.path, problems) : [];
  }

  /** The policy is in force: each subsystem applies it or says which keys need a restart. */
  private apply(next: Policy, previous: Policy): void {
    const restart: string[] = [];
    for (const s of this.subsystems) {
      try {
        const r = s.reconfigure(next, previous);
        if ('restartNeeded' in r) restart.push(...r.restartNeeded);
      } catch (err) {
        // prepare() vetted `next`, so this is a bug; the other subsystems still get the policy.
        this.log.error({ subsystem: s.name, err: (err as Error).stack ?? String(err) }, 'reconfigure failed');
      }
    }
    // The worker processes are forked at start (src/app/workers).
    if (next.workers !== this.started.workers) restart.push('workers');
    if (next.log.level !== previous.log.level) this.applyLogLevel(next.log.level);
    this.holder.watchMaterial(materialFiles(next));
    this.pendingRestart = [...new Set(restart)].sort();
    restartNeededGauge.reset();
    for (const k of this.pendingRestart) restartNeededGauge.set({ key: k }, 1);
    if (this.pendingRestart.length) this.log.warn({ restart_needed: this.pendingRestart }, 'policy applied; these keys changed and take effect only after a restart');
  }

  private applyLogLevel(level: LevelWithSilent): void {
    // pino children copy the level when created: set it on every module logger we made.
    this.log.level = level;
    for (const l of this.moduleLogs) l.level = level;
  }

  /** Reload now (POST /admin/reload); SIGHUP and file changes go the same way through the holder. */
  async reload(): Promise<ReloadAnswer> {
    const ok = await this.holder.reload();
    return {
      ok,
      ...(ok ? {} : { errors: this.holder.lastErrors.map(formatError) }),
      restart_needed: this.pendingRestart,
    };
  }

  // ---------------------------------------------------------------- readiness, drain, stop

  private async readiness(): Promise<Readiness> {
    const checks: Record<string, boolean | string> = {};
    if (this.drainState) checks['drain'] = 'draining: no new calls';
    for (const s of this.subsystems) checks[s.name] = s.ready();
    return { ready: Object.values(checks).every((v) => v === true), checks };
  }

  /**
   * Start draining (idempotent): resolves with the exit code once every call has ended (or
   * was ended at the deadline) and every subsystem is closed.
   */
  drain(source: string): DrainAnswer {
    if (!this.drainState) {
      const policy = this.holder.current;
      const deadline = Date.now() + policy.lifecycle.drain_timeout_s * 1000;
      drainingGauge.set(1);
      this.host.drain(policy.lifecycle.retry_after_s);
      this.log.info({ source, calls: this.host.liveCalls, deadline: new Date(deadline).toISOString() }, 'draining: refusing new calls, waiting for calls in progress');
      const forced = new Promise<'now'>((resolve) => { this.forceStop = () => resolve('now'); });
      let timer: NodeJS.Timeout | undefined;
      const atDeadline = new Promise<'deadline'>((resolve) => { timer = setTimeout(() => resolve('deadline'), deadline - Date.now()); });
      const done = (async () => {
        const why = await Promise.race([this.host.whenIdle().then(() => 'idle' as const), atDeadline, forced]);
        clearTimeout(timer);
        if (why !== 'idle') {
          this.log.warn({ calls: this.host.liveCalls, why }, why === 'deadline' ? 'drain deadline: ending the remaining calls' : 'stopping now: ending every call');
          await this.endCalls(why === 'deadline' ? DRAIN_DEADLINE : SHUTDOWN);
        } else {
          this.log.info('drained: no call left');
        }
        await this.engine.settle(SETTLE_MS);
        await this.closeAll();
        return 0;
      })();
      void done.then(this.resolveStopped);
      this.drainState = { deadline, done };
    }
    return { draining: true, calls: this.host.liveCalls, deadline: this.drainState.deadline };
  }

  /** Stop at once: BYE on both legs of every call, clean media and store state, close. */
  stopNow(source: string): Promise<number> {
    this.log.info({ source }, 'stopping now');
    const state = this.drainState ?? (this.drain(source), this.drainState!);
    this.forceStop?.();
    return state.done;
  }

  private async endCalls(h: Hangup): Promise<void> {
    await within(this.host.endAll(h), BYE_WAIT_MS);
    // Calls still being set up are hung up as they get answered; give them a moment.
    await within(this.host.whenIdle(), SETTLE_MS);
  }

  /** Close in reverse start order; errors are logged, never stop the others from closing. */
  private closeAll(): Promise<void> {
    this.closing ??= (async () => {
      this.holder.close();
      for (const s of [...this.subsystems].reverse()) {
        try { await s.close(); } catch (err) { this.log.warn({ subsystem: s.name, err: String(err) }, 'error while stopping'); }
      }
      drainingGauge.set(0);
      this.log.info('peergate stopped');
    })();
    return this.closing;
  }
}

/** The files a policy names whose change reloads it: TLS certificate, key, its passphrase file, chain, client CAs, CRLs,
 *  the admin token file, identity trust anchors. */
function materialFiles(policy: Policy): string[] {
  const t = policy.tls;
  const tls = t ? [t.certificate, t.key, ...(t.chain ? [t.chain] : []), ...(t.key_passphrase_file ? [t.key_passphrase_file] : []), ...t.client_cas, ...t.crls] : [];
  // A rotated admin token file applies as a rotated certificate does (the token follows reloads).
  const token = policy.ops.admin_token_file ? [policy.ops.admin_token_file] : [];
  // The STIR/SHAKEN trust anchors too: an STI-PA list refreshed by a cron job applies without a
  // signal, as a renewed CRL does. All of these are absolute: the policy loader resolved them.
  const id = policy.identity;
  const anchors = [...id.trust_anchors, ...(id.rfc4474_trust_anchors ?? [])];
  return [...tls, ...token, ...anchors];
}
