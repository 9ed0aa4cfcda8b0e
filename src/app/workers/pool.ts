// The primary's B2BUA workers (worker model, docs/ARCHITECTURE.md "Workers"): it forks N
// worker processes (worker.ts), each a drachtio-srf app on the engine's wire port. The engine
// spreads new calls across them (round-robin per method) and keeps every request of a dialog
// on the app that owns it. The pool
//   - serves the node's one store to the workers (src/store/ipc.ts) and pushes ban changes;
//   - replaces a worker that dies; the engine ends that worker's calls (BYE on both legs) and
//     the pool frees the store slots it held (its sessions are `<node>/w<i>`);
//   - answers for all workers what the in-process B2BUA answers: calls, targets, drain, end
//     every call, policy reload, and /metrics (their registries aggregated with this one's);
//   - hands each serving worker's event-loop delay reports to overload control (`backlog`),
//     and has a dead worker's last report forgotten.
import { fork, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import client from 'prom-client';
import type { Policy } from '../../policy/schema.js';
import type { ActiveCall, Hangup } from '../../sbc/b2bua.js';
import type { PeergateEnding } from '../../sbc/session/index.js';
import { serveStore } from '../../store/ipc.js';
import type { Store, StoreHealth } from '../../store/types.js';
import { counter, gauge } from '../../ops/metrics.js';
import { APPLIED, type Reconfigured, type Subsystem } from '../subsystem.js';
import { locateProblems } from '../locate.js';
import { formatError } from '../../policy/load.js';
import { policyText } from '../../policy/text.js';
import { Channel } from './channel.js';
import { POLICY_FD, PolicyText } from './policy-pipe.js';
import { workerNodeId, type WorkerHello, type WorkerReload } from './hello.js';
import { workerEnv, workerHangTimeoutMs, workerNodeFlags, workerStartTimeoutMs } from './node-flags.js';
import { RestartBackoff } from './restart-backoff.js';
import type { WorkerBacklog } from '../../engine/overload/worker-backlog.js';

const workersUp = gauge('peergate_workers', 'B2BUA worker processes connected and serving (workers > 1)');
const workerRestarts = counter('peergate_worker_restarts_total', 'B2BUA workers that died and were replaced', ['reason']);

/** Gauges of the node as a whole, which every process also exports: the primary's value is the node's. */
const NODE_WIDE = /^peergate_(build_info|draining|policy_|session_limit|store_up|tls_)/;
const ENGINE_CONNECTED = 'peergate_engine_connected';
/**
 * 0/1 gauges each process sets from its own view of one shared thing: the node's value is the
 * worst view (1: every process reaches it), not a sum of ones.
 */
const WORST_VIEW = new Set([ENGINE_CONNECTED, 'peergate_rtpengine_up']);

/** One metric of a registry's getMetricsAsJSON(). */
type MetricJson = { name: string; type?: unknown; aggregator?: string };
const CUMULATIVE = new Set(['counter', 'histogram']);

export interface WorkerPoolOptions {
  count: number;
  nodeId: string;
  policyPath: string;
  /** The policy in force in the primary: what a worker starts with. */
  policy: () => Policy;
  store: Store;
  wire: () => { host: string; port: number; secret: string };
  /** ng address of the rtpengine the primary spawned, if any. */
  rtpengine?: () => string | undefined;
  log: Logger;
  /** Where the workers' event-loop delays and utilisations go (overload control's worker-backlog
   *  signal); what it last heard from each worker also tells a hung one. */
  backlog: Pick<WorkerBacklog, 'report' | 'forget' | 'silentMs'>;
}

interface Slot {
  index: number;
  child: ChildProcess;
  channel: Channel;
  ready: boolean;
  /** When it said it serves (0 until then): how long it served decides its replacement's pause. */
  readyAt: number;
  /** The policy it was handed in its hello (a reload while it starts does not reach it: see `ready`). */
  policy: Policy | undefined;
  /** Where its start is (for the log when it does not start in time): `hello` until it asks for
   *  its hello, then the subsystem it is starting (`b2bua`: connecting to the engine). */
  starting: string;
}

/** Aggregation takes the first list's aggregator: every list says `min` for these. */
function worstView<M extends MetricJson>(m: M): M {
  return WORST_VIEW.has(m.name) ? { ...m, aggregator: 'min' } : m;
}

export { WORKER_NODE_FLAGS, workerEnv, workerNodeFlags } from './node-flags.js';

/** The primary's end of a worker's policy socket (policy-pipe.ts). */
function policySocket(child: ChildProcess): Writable | null {
  return (child.stdio[POLICY_FD] as Writable | null | undefined) ?? null;
}

/** The worker's entry module next to this one (.ts when run from sources through tsx). */
function entry(): { path: string; execArgv: string[] } {
  const url = new URL(import.meta.url.endsWith('.ts') ? './entry.ts' : './entry.js', import.meta.url);
  const execArgv = import.meta.url.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  return { path: fileURLToPath(url), execArgv: [...workerNodeFlags(), ...execArgv] };
}

export class WorkerPool implements Subsystem {
  readonly name = 'workers';
  private readonly slots: (Slot | undefined)[];
  private stopping = false;
  private readonly waiters = new Map<number, (ok: boolean) => void>();
  private healthTimer: NodeJS.Timeout | undefined;
  private lastHealth = '';
  private liveNow = 0;
  private offBans: (() => void) | undefined;
  /** Each live worker's counters and histograms as of the last scrape: what it had counted. */
  private readonly lastCounts = new Map<Slot, MetricJson[]>();
  /** Hops the probing worker has seen down: told to every other worker, and to new ones. */
  private readonly targetsDown = new Set<string>();
  /** What workers that died had counted (as of their last scrape), summed: counters never go down. */
  private carried: MetricJson[] = [];
  /** Replacements of workers that die soon after their start wait longer each time (crash loop). */
  private readonly backoff = new RestartBackoff();
  private readonly startTimeoutMs = workerStartTimeoutMs();
  private readonly hangTimeoutMs = workerHangTimeoutMs();
  /** The policy in force as the frame workers read it: encoded once, for every hello and reload
   *  until the next policy (a replacement worker's start costs no serialisation). */
  private policyFrame: { policy: Policy; text: PolicyText } | undefined;
  private policySeq = 0;
  /** When the health tick last ran: a late one means this process could not listen meanwhile. */
  private lastTickAt = Date.now();
  /** Since when this process has been listening (its start, or its last late tick): a worker's
   *  silence counts only from here. */
  private listeningSince = Date.now();

  constructor(private readonly opts: WorkerPoolOptions) {
    this.slots = new Array<Slot | undefined>(opts.count).fill(undefined);
  }

  get count(): number { return this.opts.count; }

  /** logrotate signals the main process: the workers hold the call record files. */
  private readonly onReopen = (): void => {
    this.opts.log.info('SIGUSR1: workers reopen their call record files');
    this.broadcast('reopen', []);
  };

  async start(): Promise<void> {
    this.offBans = this.opts.store.onBanChange((e) => this.broadcast('ban', [e]));
    process.on('SIGUSR1', this.onReopen);
    this.healthTimer = setInterval(() => { this.pushHealth(); this.killHung(); void this.pollLive(); }, 1000);
    this.healthTimer.unref();
    const up = await Promise.all(this.slots.map((_, i) => this.spawn(i)));
    const failed = up.filter((ok) => !ok).length;
    if (failed) throw new Error(`${failed} of ${this.opts.count} B2BUA workers did not start`);
  }

  private spawn(index: number): Promise<boolean> {
    const e = entry();
    // fd 4: the worker's policy socket (policy-pipe.ts); the IPC channel carries only its frame numbers.
    const child = fork(e.path, [], { execArgv: e.execArgv, serialization: 'json', env: workerEnv(), stdio: ['inherit', 'inherit', 'inherit', 'ipc', 'pipe'] });
    // A write to a worker that just died fails here; its exit is handled below.
    policySocket(child)?.on('error', () => {});
    const slot: Slot = { index, child, ready: false, readyAt: 0, channel: undefined as unknown as Channel, policy: undefined, starting: 'hello' };
    slot.channel = new Channel(child, {
      hello: () => {
        const policy = this.opts.policy();
        const frame = this.frameOf(policy);
        frame.writeTo(policySocket(child));
        slot.policy = policy;
        slot.starting = 'its start after the hello';
        return this.hello(index, frame.seq);
      },
      starting: (subsystem: string) => { if (typeof subsystem === 'string') slot.starting = subsystem; },
      store: (op: string, args: unknown) => serveStore(this.opts.store, op, args),
      targetHealth: (key: string, up: boolean) => {
        if (up) this.targetsDown.delete(key); else this.targetsDown.add(key);
        this.tellTargetHealth(slot, key, up);
      },
      // Every ~100 ms from a busy serving worker, every 300 ms from a calm one (src/engine/overload/worker-backlog.ts).
      load: (lagMs: number, nextWithinMs?: number, utilisation?: number) => { if (slot.ready && this.slots[index] === slot) this.opts.backlog.report(index, lagMs, nextWithinMs, utilisation); },
      ready: () => {
        slot.ready = true;
        slot.readyAt = Date.now();
        // A reload while it started went to the workers serving then, not to it: hand it over now.
        const current = this.opts.policy();
        if (slot.policy !== current) this.handOver([slot], current);
        slot.policy = undefined;
        this.updateGauge();
        this.waiters.get(index)?.(true);
      },
    });
    this.slots[index] = slot;
    child.on('exit', (code, signal) => this.exited(slot, code, signal));
    child.on('error', (err) => this.opts.log.warn({ worker: index, err: err.message }, 'worker process error'));
    return new Promise<boolean>((resolve) => {
      // A worker that does not say it serves in time (stuck on a file, a store, the engine) is
      // killed: its exit replaces it like any death, after the crash-loop pause.
      const timeoutMs = this.startTimeoutMs;
      const timer = setTimeout(() => {
        this.waiters.delete(index);
        resolve(false);
        if (!slot.ready && child.exitCode === null && child.signalCode === null) {
          this.opts.log.error({ worker: index, pid: child.pid, timeout_ms: timeoutMs, waiting_for: slot.starting }, 'worker did not start in time; killing it');
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      this.waiters.set(index, (ok) => { clearTimeout(timer); this.waiters.delete(index); resolve(ok); });
    });
  }

  private frameOf(policy: Policy): PolicyText {
    if (this.policyFrame?.policy !== policy) this.policyFrame = { policy, text: new PolicyText(++this.policySeq, policyText(policy)) };
    return this.policyFrame.text;
  }

  private hello(index: number, policySeq: number): WorkerHello {
    const rtpengine = this.opts.rtpengine?.();
    return {
      index, nodeId: this.opts.nodeId, policySeq, wire: this.opts.wire(),
      storeKind: this.opts.store.kind, storeHealth: this.opts.store.health(),
      ...(rtpengine ? { rtpengine } : {}),
      // Target health is probed once per node, by worker 0; the others hear of it from here.
      probe: index === 0,
      targetsDown: index === 0 ? [] : [...this.targetsDown],
    };
  }

  private exited(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    slot.channel.close();
    // Its last delay report must not keep shedding; its replacement reports once it serves.
    if (this.slots[slot.index] === slot) this.opts.backlog.forget(slot.index);
    const counted = this.lastCounts.get(slot);
    this.lastCounts.delete(slot);
    if (counted) void this.carry(counted);
    // The prober's replacement starts with every hop up and says only what changes from there:
    // the others forget what the dead one saw, or a hop that recovered meanwhile stays down.
    if (slot.index === 0) {
      for (const key of this.targetsDown) this.tellTargetHealth(slot, key, true);
      this.targetsDown.clear();
    }
    if (this.slots[slot.index] === slot) this.slots[slot.index] = undefined;
    this.updateGauge();
    this.waiters.get(slot.index)?.(false);
    if (this.stopping) return;
    const reason = signal ?? `exit_${code ?? 0}`;
    workerRestarts.inc({ reason });
    // A worker that never served counts as short-lived, however long it took to fail.
    const pause = this.backoff.pause(slot.index, slot.ready ? Date.now() - slot.readyAt : 0);
    const said = { worker: slot.index, pid: slot.child.pid, reason, restart_in_ms: pause, ...(pause > 0 ? { short_lived_in_a_row: this.backoff.streak(slot.index) } : {}) };
    // The engine ended its calls (BYE on both legs) when its wire connection closed; its
    // store slots go now, not after their ttl.
    const id = workerNodeId(this.opts.nodeId, slot.index);
    void this.opts.store.reconcileOnStart(id).then(
      (freed) => this.opts.log.warn({ ...said, sessions_freed: freed }, 'worker died; replacing it'),
      (err: Error) => this.opts.log.warn({ ...said, err: err.message }, 'worker died; its store slots expire by ttl'),
    );
    setTimeout(() => {
      if (this.stopping) return;
      void this.spawn(slot.index).then((ok) => {
        if (!ok) this.opts.log.error({ worker: slot.index }, 'replacement worker did not start');
      });
    }, pause).unref();
  }

  /** Every worker but `from`, started or starting (a starting one keeps it until it is up). */
  private tellTargetHealth(from: Slot, key: string, up: boolean): void {
    for (const s of this.slots) if (s && s !== from) s.channel.notify('targetHealth', [key, up]);
  }

  private live(): Slot[] { return this.slots.filter((s): s is Slot => s !== undefined && s.ready); }

  private updateGauge(): void { workersUp.set(this.live().length); }

  /** Every worker runs a memory reduction (src/app/memory-reducer.ts), compacting V8's heap or not: the engine's process found the node quiet after a burst. */
  reduceMemory(opts: { compact: boolean }): void { this.broadcast('reduceMemory', [opts.compact]); }

  private broadcast(m: string, args: unknown[]): void {
    for (const s of this.live()) s.channel.notify(m, args);
  }

  private pushHealth(): void {
    const h: StoreHealth = this.opts.store.health();
    const key = `${h.state}|${h.since}`;
    if (key === this.lastHealth) return;
    this.lastHealth = key;
    this.broadcast('health', [h]);
  }

  /** Ask every serving worker; answers of workers that fail (dying, busy) are left out. */
  private async ask<T>(m: string, args: unknown[] = [], long = false): Promise<T[]> {
    const r = await Promise.allSettled(this.live().map((s) => s.channel.call(m, args, { long }) as Promise<T>));
    return r.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
  }

  /** Every worker connects a warm-up B2BUA to the warm-up engine (src/app/warmup); resolves
   *  with how many did. */
  async warmupAttach(policyText: string, wire: { host: string; port: number; secret: string }): Promise<number> {
    return (await this.ask<true>('warmupAttach', [policyText, wire])).length;
  }

  /** Every worker drops its warm-up B2BUA. */
  async warmupDetach(): Promise<void> { await this.ask('warmupDetach'); }

  // ------------------------------------------------------------ what the in-process B2BUA offers

  /** Every worker's established calls, each with the worker that holds it (index and pid). */
  async calls(): Promise<(ActiveCall & { worker: number; worker_pid: number | undefined })[]> {
    const r = await Promise.allSettled(this.live().map(async (s) => {
      const calls = await s.channel.call('calls') as ActiveCall[];
      return calls.map((c) => ({ ...c, worker: s.index, worker_pid: s.child.pid }));
    }));
    return r.flatMap((x) => (x.status === 'fulfilled' ? x.value : []));
  }

  async targets(): Promise<unknown> {
    const prober = this.slots[0];
    return prober?.ready ? prober.channel.call('targets') : [];
  }

  async endCall(id: string, reason: PeergateEnding): Promise<boolean> {
    return (await this.ask<boolean>('endCall', [id, reason])).some(Boolean);
  }

  /** Calls in progress on every worker, as of the last poll (at most a second old). */
  get liveCalls(): number { return this.liveNow; }

  private async pollLive(): Promise<void> { await this.countLive(); }

  /**
   * A serving worker silent past the hang timeout has its event loop stuck (a loop that never
   * ends, a blocking call): it would keep its share of new calls and answer none. Overload
   * control stops counting it after 2 s (worker-backlog.ts); here it is killed, so its calls get
   * BYE and a replacement takes its share.
   */
  private killHung(): void {
    const now = Date.now();
    // This process was stuck itself (a long GC, a heap snapshot, SIGSTOP): what the workers said
    // meanwhile waits unread in their channels, so their silence is not theirs.
    if (now - this.lastTickAt > 2000) this.listeningSince = now;
    this.lastTickAt = now;
    if (this.stopping || this.hangTimeoutMs === 0) return;
    for (const s of this.slots) {
      if (!s?.ready || s.child.killed || s.child.exitCode !== null || s.child.signalCode !== null) continue;
      // Silent since its last report (or since it said it serves, before its first one).
      const silent = Math.min(this.opts.backlog.silentMs(s.index) ?? now - s.readyAt, now - this.listeningSince);
      if (silent < this.hangTimeoutMs) continue;
      this.opts.log.error({ worker: s.index, pid: s.child.pid, silent_ms: silent }, 'worker silent past its hang timeout; killing it');
      s.child.kill('SIGKILL');
    }
  }

  /** Calls in progress on every worker now: each answers after what it was sent before (a drain). */
  async countLive(): Promise<number> {
    this.liveNow = (await this.ask<number>('live')).reduce((a, b) => a + b, 0);
    return this.liveNow;
  }

  drain(retryAfterS: number): void {
    void this.ask<number>('drain', [retryAfterS]).then((live) => { this.liveNow = live.reduce((a, b) => a + b, 0); });
  }

  /** Every worker has no call left (a worker that dies meanwhile had its calls ended by the engine). */
  async whenIdle(): Promise<void> { await this.ask('whenIdle', [], true); }

  async endAll(h: Hangup): Promise<void> { await this.ask('endAll', [h], true); }

  /**
   * This process's registry with every worker's: counters, histograms and call gauges sum.
   * Gauges that describe the node (policy in force, build, store, TLS, drain) are this
   * process's alone; `peergate_engine_connected` and `peergate_rtpengine_up` are the minimum
   * over the processes (1: all connected).
   */
  async metrics(): Promise<string> {
    const own = (await client.register.getMetricsAsJSON()).filter((m) => m.name !== ENGINE_CONNECTED).map(worstView);
    const answers = await Promise.allSettled(this.live().map(async (s) => [s, await s.channel.call('metrics') as MetricJson[]] as const));
    const theirs: MetricJson[][] = [];
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue;
      const [slot, list] = a.value;
      if (this.slots[slot.index] === slot) this.lastCounts.set(slot, list.filter((m) => CUMULATIVE.has(String(m.type))));
      theirs.push(list.filter((m) => !NODE_WIDE.test(m.name)).map(worstView));
    }
    return client.AggregatorRegistry.aggregate([own, ...theirs, this.carried] as never).metrics();
  }

  /** Add a dead worker's counts to what the node reports from now on (one summed list). */
  private async carry(counted: MetricJson[]): Promise<void> {
    this.carried = await client.AggregatorRegistry.aggregate([this.carried, counted] as never).getMetricsAsJSON() as unknown as MetricJson[];
  }

  // ------------------------------------------------------------ Subsystem

  /**
   * The primary applied `next`: each worker is handed it and applies it too (none reads the
   * file, which may have changed again since). The primary's own subsystems checked it first
   * (the anchor files included), so a worker refusing it means its files changed meanwhile.
   */
  reconfigure(next: Policy): Reconfigured {
    this.handOver(this.live(), next);
    return APPLIED; // a change of `workers` itself is the app's to report (restart needed)
  }

  /** Hand `next` to these workers; what any of them refuses is logged with file:line. */
  private handOver(slots: Slot[], next: Policy): void {
    if (slots.length === 0) return;
    // Serialised once for all of them, on their policy sockets; the IPC channel carries its number.
    const frame = this.frameOf(next);
    for (const s of slots) frame.writeTo(policySocket(s.child));
    void Promise.allSettled(slots.map((s) => s.channel.call('reload', [frame.seq]) as Promise<WorkerReload>)).then((settled) => {
      const answers = settled.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
      const problems = answers.flatMap((a) => (a.ok ? [] : a.problems));
      if (answers.some((a) => !a.ok)) {
        this.opts.log.error({ refused: answers.filter((a) => !a.ok).length, problems: locateProblems(this.opts.policyPath, problems).map(formatError) },
          'policy reload: some workers kept the previous policy');
      }
      // No answer (the worker failed while applying it, or went): say so, not only refusals.
      const failed = settled.flatMap((x) => (x.status === 'rejected' ? [String((x.reason as { message?: unknown } | undefined)?.message ?? x.reason)] : []));
      if (failed.length > 0) this.opts.log.error({ workers: failed.length, errors: failed }, 'policy reload: some workers did not confirm the new policy');
    });
  }

  /** Ready while any worker serves: one being replaced (peergate_workers says so) is no reason to stop taking calls. */
  ready(): true | string {
    return this.live().length > 0 ? true : `none of ${this.opts.count} B2BUA workers up`;
  }

  /** Tell every worker to close (after a drain or stop), wait for them to exit; SIGKILL stragglers. */
  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.healthTimer);
    process.off('SIGUSR1', this.onReopen);
    this.offBans?.();
    const all = this.slots.filter((s): s is Slot => s !== undefined);
    await Promise.all(all.map(async (s) => {
      const exited = new Promise<void>((r) => { if (s.child.exitCode !== null || s.child.signalCode !== null) r(); else s.child.once('exit', () => r()); });
      await s.channel.call('close').catch(() => undefined);
      let t: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((r) => { t = setTimeout(r, 5000); })]);
      clearTimeout(t);
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    }));
    this.updateGauge();
  }
}
