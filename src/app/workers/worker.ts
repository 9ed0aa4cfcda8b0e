// One B2BUA worker process (worker model, docs/ARCHITECTURE.md "Workers"): a drachtio-srf app
// with its stages (limits, identity, media, cdr) connected to the primary's engine over the
// drachtio wire, like the in-process B2BUA of `workers: 1`. What must be one per node stays
// in the primary and is reached over the IPC channel:
//   - the store (limits, bans, replay cache): StoreClient, so limits are exact across workers;
//   - the policy: the primary loads and validates the file, and hands each worker the policy in
//     force at its start and at every reload (a worker never reads the file: see hello.ts);
//   - drain, stop, admin (calls, targets, end a call) and /metrics: answered on request.
// The worker ignores SIGTERM, SIGINT and SIGHUP (a service manager signals the whole group):
// only the primary decides, and a worker whose primary is gone exits.
import type { Logger } from 'pino';
import client from 'prom-client';
import type { Policy } from '../../policy/schema.js';
import { deepFreeze } from '../../policy/freeze.js';
import { createLogger } from '../../log.js';
import { collectDefaultMetrics } from '../../ops/metrics.js';
import type { Hangup } from '../../sbc/b2bua.js';
import type { PeergateEnding } from '../../sbc/session/index.js';
import { StoreClient, type StoreOp } from '../../store/ipc.js';
import type { BanEvent, StoreHealth } from '../../store/types.js';
import { LimitsSubsystem } from '../state.js';
import { MediaSubsystem } from '../media.js';
import { IdentitySubsystem } from '../identity.js';
import { CdrSubsystem } from '../records.js';
import { SbcSubsystem } from '../sbc.js';
import type { Subsystem } from '../subsystem.js';
import { LoopDelayReporter } from '../../engine/overload/worker-backlog.js';
import { dropBinaryPages, reduceAndRecord, reduceMemory } from '../memory-reducer.js';
import { systemClock } from '../../engine/transport/types.js';
import { Channel, type IpcEndpoint } from './channel.js';
import { within } from '../within.js';
import { keepRunningOnStrayRejections } from '../stray.js';
import { workerNodeId, workerTag, type WorkerHello, type WorkerReload } from './hello.js';
import { readPolicyFrames, type PolicyFrames } from './policy-pipe.js';
import { attachWarmupB2bua, type WarmupB2bua, type WarmupWire } from '../warmup/b2bua.js';

export { workerNodeId, type WorkerHello } from './hello.js';

/** The policy as this worker uses it: with the primary's rtpengine in place of `spawn`. */
function forWorker(p: Policy, rtpengine: string | undefined): Policy {
  if (!rtpengine || p.media.rtpengine !== 'spawn') return p;
  return { ...p, media: { ...p.media, rtpengine: [{ address: rtpengine, weight: 1 }] } };
}

const SETTLE_MS = 2000;

class Worker {
  private readonly subsystems: Subsystem[] = [];
  private sbc!: SbcSubsystem;
  private cdr!: CdrSubsystem;
  private policy!: Policy;
  private closing: Promise<void> | undefined;
  private warmup: WarmupB2bua | undefined;

  constructor(private readonly hello: WorkerHello, private readonly started: Policy, private readonly frames: PolicyFrames,
    private readonly store: StoreClient, private readonly log: Logger,
    private readonly toPrimary: (m: string, args: unknown[]) => void = () => {}) {}

  private async add<S extends Subsystem>(s: S): Promise<S> {
    this.subsystems.push(s);
    // The primary names this stage if the start runs out of time.
    this.toPrimary('starting', [s.name]);
    await s.start();
    return s;
  }

  async start(): Promise<void> {
    const h = this.hello;
    this.policy = forWorker(deepFreeze(this.started), h.rtpengine);
    const current = () => this.policy;
    collectDefaultMetrics();
    const limits = await this.add(new LimitsSubsystem(this.store, workerNodeId(h.nodeId, h.index), current, this.log.child({ module: 'limits' })));
    const media = await this.add(new MediaSubsystem(this.policy, this.log.child({ module: 'media' })));
    const identity = await this.add(new IdentitySubsystem(this.store, this.log.child({ module: 'identity' })));
    const cdr = this.cdr = await this.add(new CdrSubsystem(this.policy, this.log, h.nodeId));
    const seam = media.seam;
    this.sbc = await this.add(new SbcSubsystem({
      policy: current,
      stages: { limits: limits.limits, identity: identity.stage, ...(seam ? { media: seam } : {}) },
      recorder: cdr.recorder,
      log: this.log,
      // Tagged: the engine pre-admits INVITEs for this worker (src/app/preadmit.ts).
      wire: () => ({ ...h.wire, tags: [workerTag(h.index)] }),
      refused: (source, reason, tlsIdentity) => limits.refused(source, reason, tlsIdentity),
      probe: h.probe,
    }));
    // One worker probes the targets; the others route by what it sees, through the primary.
    if (h.probe) this.sbc.onTargetHealth((key, up) => this.toPrimary('targetHealth', [key, up]));
    else for (const key of h.targetsDown) this.sbc.applyTargetHealth(key, false);
  }

  /**
   * The primary applied `next` (it checked it first): check it here too (files the policy
   * names may have changed since), then apply it whole, or keep the running one.
   */
  reload(next: Policy): WorkerReload {
    const previous = this.policy;
    const policy = forWorker(deepFreeze(next), this.hello.rtpengine);
    const problems = this.subsystems.flatMap((s) => s.prepare?.(policy, previous) ?? []);
    if (problems.length) return { ok: false, problems };
    this.policy = policy;
    const restart: string[] = [];
    for (const s of this.subsystems) {
      try {
        const r = s.reconfigure(this.policy, previous);
        if ('restartNeeded' in r) restart.push(...r.restartNeeded);
      } catch (err) {
        this.log.error({ subsystem: s.name, err: (err as Error).stack ?? String(err) }, 'reconfigure failed');
      }
    }
    this.log.level = this.policy.log.level;
    return { ok: true, restart_needed: restart };
  }

  handlers(): Record<string, (...args: never[]) => unknown> {
    return {
      calls: () => this.sbc.calls(),
      targets: () => this.sbc.targets(),
      endCall: (id: string, reason: PeergateEnding) => this.sbc.endCall(id, reason),
      live: () => this.sbc.liveCalls,
      metrics: () => client.register.getMetricsAsJSON(),
      drain: (retryAfterS: number) => { this.sbc.drain(retryAfterS); return this.sbc.liveCalls; },
      whenIdle: () => this.sbc.whenIdle(),
      endAll: async (h: Hangup) => {
        await this.sbc.endAll(h);
        await within(this.sbc.whenIdle(), SETTLE_MS);
      },
      // The number of the frame on the policy socket that holds it (policy-pipe.ts).
      reload: async (seq: number) => this.reload(JSON.parse(await this.frames.take(seq)) as Policy),
      reopen: () => this.cdr.reopen(),
      // Answer, then leave: the IPC channel would keep the process alive.
      close: async () => { await this.close(); setTimeout(() => process.exit(0), 50); },
      ban: (e: BanEvent) => this.store.deliverBanEvent(e),
      health: (h: StoreHealth) => this.store.setHealth(h),
      targetHealth: (key: string, up: boolean) => { if (!this.hello.probe) this.sbc.applyTargetHealth(key, up); },
      // The warm-up before the node's listeners open (src/app/warmup): a B2BUA of its own on the
      // warm-up engine, tagged as this worker so that the engine pre-admits for it as it will.
      warmupAttach: async (policyText: string, wire: WarmupWire) => {
        await this.warmup?.detach();
        this.warmup = await attachWarmupB2bua(JSON.parse(policyText) as Policy, { ...wire, tags: [workerTag(this.hello.index)] }, this.log);
        return true;
      },
      warmupDetach: async () => {
        const w = this.warmup;
        this.warmup = undefined;
        await w?.detach();
        // What the warm-up's calls left (≈ 20 MiB a process) is given back before the node serves.
        if (w) reduceMemory({ compact: true });
        return true;
      },
      // The primary found the node quiet after a burst of set-ups: give back what it left here too.
      reduceMemory: (compact: unknown) => {
        const r = reduceAndRecord({ compact: compact === true });
        this.log.debug({ pause_ms: Math.round(r.pauseMs), rss_before_mib: Math.round(r.rssBefore / 1048576), rss_after_mib: Math.round(r.rssAfter / 1048576), how: r.how, compacted: r.compacted }, 'memory reduced');
      },
    };
  }

  /** Close in reverse start order (the B2BUA first, the CDR writer after it). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.warmup?.detach();
      for (const s of [...this.subsystems].reverse()) {
        try { await s.close(); } catch (err) { this.log.warn({ subsystem: s.name, err: String(err) }, 'error while stopping'); }
      }
      await this.store.close();
    })();
    return this.closing;
  }
}

/** The worker process's main: connect to the primary, start, serve until told to close. */
export async function runWorker(end: IpcEndpoint & NodeJS.EventEmitter = process): Promise<void> {
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => { /* the primary decides */ });
  // The primary gone means the engine is gone: nothing left to serve.
  process.on('disconnect', () => process.exit(1));
  // Notices before the worker is up (ban events, store health) are kept and replayed.
  let early: [string, unknown[]][] | undefined = [];
  const handlers: Record<string, (...a: never[]) => unknown> = {
    ban: (...a: unknown[]) => { early?.push(['ban', a]); },
    health: (...a: unknown[]) => { early?.push(['health', a]); },
    targetHealth: (...a: unknown[]) => { early?.push(['targetHealth', a]); },
  };
  const channel = new Channel(end, handlers, 10_000);
  const frames = readPolicyFrames();
  const hello = await channel.call('hello') as WorkerHello;
  const policy = JSON.parse(await frames.take(hello.policySeq)) as Policy;
  const log = createLogger({ level: policy.log.level, name: 'peergate' }).child({ worker: hello.index });
  keepRunningOnStrayRejections(log);
  const store = new StoreClient({ kind: hello.storeKind, call: (op: StoreOp, args) => channel.call('store', [op, args]) });
  store.setHealth(hello.storeHealth);
  const worker = new Worker(hello, policy, frames, store, log, (m, args) => channel.notify(m, args));
  Object.assign(handlers, worker.handlers());
  for (const [m, a] of early ?? []) (handlers[m] as (...x: unknown[]) => unknown)(...a);
  early = undefined;
  try {
    await worker.start();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'worker could not start');
    await worker.close();
    process.exit(1);
  }
  channel.notify('ready', [process.pid]);
  // What only the start ran of the node binary need not stay mapped (memory-reducer.ts).
  dropBinaryPages();
  // Overload control sees this worker's backlog through its event-loop delay (issue #18.3).
  const delay = new LoopDelayReporter(systemClock, (lagMs, nextWithinMs, utilisation) => channel.notify('load', [lagMs, nextWithinMs, utilisation]));
  process.once('exit', () => delay.close());
  log.info({ pid: process.pid }, 'worker started');
}
