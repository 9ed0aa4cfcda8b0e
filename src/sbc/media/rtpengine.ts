// rtpengine as a component: the ng control client, a weighted pool of instances with ping
// health checks, and an embedded (spawned, supervised) local userspace rtpengine.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { controlSeconds, rtpengineErrors, rtpengineUp } from './metrics.js';
import type { EmbeddedRtpengine } from './schema.js';
import { lazyPackage } from '../../lazy-package.js';

/** The part of rtpengine-client 0.4.12's UDP Client we use (it ships no types). */
interface NgClient {
  on(event: 'error', cb: (err: unknown) => void): void;
  offer(dest: NgDest, opts: Record<string, unknown>): Promise<NgReply>;
  answer(dest: NgDest, opts: Record<string, unknown>): Promise<NgReply>;
  delete(dest: NgDest, opts: Record<string, unknown>): Promise<NgReply>;
  query(dest: NgDest, opts: Record<string, unknown>): Promise<NgReply>;
  list(dest: NgDest, opts: Record<string, unknown>): Promise<NgReply>;
  statistics(dest: NgDest, opts: Record<string, unknown>): Promise<NgReply>;
  ping(dest: NgDest): Promise<NgReply>;
  close(): void;
}
interface NgDest { host: string; port: number }
export type NgReply = Record<string, any> & { result?: string };
export type NgCommand = 'offer' | 'answer' | 'delete' | 'query' | 'list' | 'statistics' | 'ping';

// Loaded when the first rtpengine instance is made (media anchoring on), not at start.
const ngClient = lazyPackage<{ Client: new (opts: Record<string, unknown>) => NgClient }>('rtpengine-client');

/** rtpengine answered the command with result=error (the instance itself is fine). */
export class NgRejected extends Error {
  override readonly name = 'NgRejected';
}
/** No answer in time, or the datagram could not be sent: the instance is treated as down. */
export class NgUnavailable extends Error {
  override readonly name = 'NgUnavailable';
}

export interface LogLike {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}
export const silentLog: LogLike = { info() {}, warn() {} };

export class RtpengineInstance {
  readonly host: string;
  readonly port: number;
  /** Label for metrics and logs. */
  readonly name: string;
  healthy = false;
  /** Consecutive commands (pings included) that got no answer. */
  failures = 0;
  /** Smooth weighted round robin state (nginx's algorithm). */
  current = 0;
  constructor(address: string, readonly weight: number) {
    const i = address.lastIndexOf(':');
    this.host = address.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(address.slice(i + 1));
    if (!this.host || !Number.isInteger(this.port) || this.port < 1 || this.port > 65535) throw new Error(`bad rtpengine address ${address}`);
    this.name = address;
  }
}

/**
 * Consecutive unanswered commands before an instance is taken out of rotation. One lost
 * datagram or one slow reply on a loaded host must not turn every new call into a 503; the
 * call that saw the timeout fails over on its own regardless.
 */
export const DOWN_AFTER_FAILURES = 2;

/** At most one on-demand probe round of down instances this often (see revive()). */
export const REVIVE_EVERY_MS = 100;

export interface PoolOptions {
  timeoutMs: number;
  healthIntervalMs: number;
  log?: LogLike;
}

/**
 * Instances with weights. A new call goes to the next healthy instance by smooth weighted
 * round robin, failing over to the others on a timeout; the caller keeps the instance for
 * the rest of the call. Health: a ping per instance every `healthIntervalMs`.
 */
export class RtpenginePool {
  readonly instances: RtpengineInstance[];
  private readonly client: NgClient;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: LogLike;

  constructor(instances: { address: string; weight: number }[], private readonly opts: PoolOptions) {
    if (instances.length === 0) throw new Error('no rtpengine instances configured');
    this.instances = instances.map((i) => new RtpengineInstance(i.address, i.weight));
    this.log = opts.log ?? silentLog;
    for (const i of this.instances) rtpengineUp.set({ rtpengine: i.name }, 0);
    // rejectOnError: an ng error reply rejects (with the error-reason string) instead of resolving.
    this.client = new (ngClient().Client)({ localAddress: '127.0.0.1', localPort: 0, timeout: opts.timeoutMs, rejectOnError: true });
    // A reply arriving after its timeout, or a socket error, is emitted here; without a
    // listener it would crash the process.
    this.client.on('error', (err) => this.log.warn({ err: String(err) }, 'rtpengine client error'));
  }

  /**
   * Replace the instance list (policy reload). Instances kept by address keep their health
   * and weight state; calls already on a removed instance keep using it to the end.
   */
  setInstances(list: { address: string; weight: number }[]): void {
    if (list.length === 0) throw new Error('no rtpengine instances configured');
    const old = new Map(this.instances.map((i) => [i.name, i]));
    const next = list.map((i) => {
      const kept = old.get(i.address);
      return kept && kept.weight === i.weight ? kept : new RtpengineInstance(i.address, i.weight);
    });
    for (const i of this.instances) if (!next.includes(i)) rtpengineUp.remove({ rtpengine: i.name });
    for (const i of next) if (!old.has(i.name)) rtpengineUp.set({ rtpengine: i.name }, 0);
    this.instances.splice(0, this.instances.length, ...next);
    for (const i of next) if (!i.healthy) void this.check(i);
  }

  /** Ping everything once, then keep checking in the background. */
  async start(): Promise<void> {
    await this.checkAll();
    this.timer = setInterval(() => { void this.checkAll(); }, this.opts.healthIntervalMs);
    this.timer.unref();
  }

  private checking = false;

  async checkAll(): Promise<void> {
    // A slow round (timeouts longer than the interval) must not pile up pings.
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all(this.instances.map((i) => this.check(i)));
    } finally {
      this.checking = false;
    }
  }

  async check(inst: RtpengineInstance): Promise<boolean> {
    let ok = false;
    try {
      const r = await this.command(inst, 'ping', {});
      ok = r.result === 'pong';
    } catch { ok = false; }
    if (this.closed) return ok;
    if (ok && !inst.healthy) {
      inst.healthy = true;
      rtpengineUp.set({ rtpengine: inst.name }, 1);
      this.log.info({ rtpengine: inst.name }, 'rtpengine up');
    }
    return inst.healthy;
  }

  private reviving: Promise<void> | undefined;
  private revivedAt = 0;

  /**
   * Used when a new call finds no healthy instance: ping the instances that are down now, not
   * at the next health tick, and wait at most `waitMs` for an answer. An rtpengine that came
   * back is used by the very next call (each worker has its own pool, so a probe that only ran
   * on the health interval left a worker refusing calls after /ready had turned 200). One
   * probe round per `REVIVE_EVERY_MS` at most, shared by the calls waiting on it, so an outage
   * costs each refused call at most `waitMs` and costs rtpengine nothing more than pings.
   */
  async revive(waitMs: number): Promise<void> {
    if (this.closed || this.anyHealthy()) return;
    const now = Date.now();
    if (!this.reviving && now - this.revivedAt >= REVIVE_EVERY_MS) {
      this.revivedAt = now;
      const round = Promise.all(this.instances.filter((i) => !i.healthy).map((i) => this.check(i))).then(() => undefined);
      this.reviving = round;
      void round.finally(() => { if (this.reviving === round) this.reviving = undefined; });
    }
    if (!this.reviving) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.reviving, new Promise<void>((resolve) => { timer = setTimeout(resolve, waitMs); })]);
    clearTimeout(timer);
  }

  /** Healthy instances in the order to try them for a new call. */
  candidates(): RtpengineInstance[] {
    const healthy = this.instances.filter((i) => i.healthy);
    if (healthy.length <= 1) return healthy;
    let total = 0;
    let best: RtpengineInstance | undefined;
    for (const i of healthy) {
      i.current += i.weight;
      total += i.weight;
      if (!best || i.current > best.current) best = i;
    }
    best!.current -= total;
    return [best!, ...healthy.filter((i) => i !== best).sort((a, b) => b.weight - a.weight)];
  }

  anyHealthy(): boolean {
    return this.instances.some((i) => i.healthy);
  }

  /**
   * One ng command with latency and error metrics. Throws NgRejected for an error reply and
   * NgUnavailable (after marking the instance down) for a timeout or send failure.
   */
  async command(inst: RtpengineInstance, cmd: NgCommand, params: Record<string, unknown>): Promise<NgReply> {
    if (this.closed) throw new NgUnavailable('media stage closed');
    const end = controlSeconds.startTimer({ rtpengine: inst.name, command: cmd });
    const dest = { host: inst.host, port: inst.port };
    try {
      const r = cmd === 'ping' ? await this.client.ping(dest) : await this.client[cmd](dest, params);
      end();
      inst.failures = 0;
      return r;
    } catch (err) {
      end();
      rtpengineErrors.inc({ rtpengine: inst.name });
      if (typeof err === 'string') {
        inst.failures = 0;
        throw new NgRejected(err);
      }
      inst.failures++;
      if (inst.healthy && inst.failures >= DOWN_AFTER_FAILURES && !this.closed) {
        inst.healthy = false;
        rtpengineUp.set({ rtpengine: inst.name }, 0);
        this.log.warn({ rtpengine: inst.name, err: String(err) }, 'rtpengine down');
      }
      throw new NgUnavailable(`rtpengine ${inst.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    try { this.client.close(); } catch { /* already closed */ }
  }
}

/** A UDP port free on 127.0.0.1 right now (the OS picks it). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** rtpengine's command line for a loopback, userspace-only instance. */
export function embeddedArgs(cfg: EmbeddedRtpengine, ngPort: number): string[] {
  return [
    '--config-file=none', // else /etc/rtpengine/rtpengine.conf opens TCP 2224/2225 and uses the kernel table
    '--foreground', '--log-stderr', '--log-level=5',
    '--table=-1',
    `--interface=${cfg.interface}`,
    `--listen-ng=127.0.0.1:${ngPort}`,
    `--port-min=${cfg.port_min}`, `--port-max=${cfg.port_max}`,
    '--num-threads=2', '--delete-delay=0', '--timeout=60',
  ];
}

const SETPRIV = '/usr/bin/setpriv';

/**
 * Run `binary` so the kernel stops it when peergate dies, even by SIGKILL (Linux
 * PR_SET_PDEATHSIG through util-linux setpriv, which then execs it: same PID). Otherwise
 * a killed node leaves an orphan rtpengine holding its ng port and media ports.
 */
function withParentDeathSignal(binary: string, args: string[]): [string, string[]] {
  // A missing binary is spawned directly, so its error stays ENOENT (not setpriv's text).
  if (process.platform !== 'linux' || !existsSync(SETPRIV) || !existsSync(binary)) return [binary, args];
  return [SETPRIV, ['--pdeathsig', 'TERM', '--', binary, ...args]];
}

/**
 * A local rtpengine started and supervised by peergate: restarted (with back-off) when it
 * dies, stopped by its PID on close. The ng port stays the same across restarts so the
 * pool's instance address does not change.
 */
export class EmbeddedRtpengineProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private backoffMs = 500;
  private output = '';
  ngPort = 0;

  constructor(private readonly cfg: EmbeddedRtpengine, private readonly log: LogLike = silentLog) {}

  get pid(): number | undefined { return this.child?.pid; }
  get address(): string { return `127.0.0.1:${this.ngPort}`; }
  /** The last few KB of rtpengine's log, for error messages. */
  get recentOutput(): string { return this.output; }

  async start(): Promise<void> {
    this.ngPort = this.cfg.ng_port || await freeUdpPort();
    this.spawnOnce();
  }

  private spawnOnce(): void {
    const [cmd, args] = withParentDeathSignal(this.cfg.binary, embeddedArgs(this.cfg, this.ngPort));
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (d: Buffer) => { this.output = (this.output + d.toString()).slice(-8192); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('error', (err) => { this.output += `\nspawn error: ${err.message}`; });
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      this.log.warn({ code, signal, backoffMs: this.backoffMs }, 'embedded rtpengine exited; restarting');
      this.restartTimer = setTimeout(() => { if (!this.stopping) this.spawnOnce(); }, this.backoffMs);
      this.restartTimer.unref();
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    });
    this.log.info({ pid: child.pid, ng: this.address }, 'embedded rtpengine started');
  }

  /** Called once a ping succeeds, so the next crash restarts quickly again. */
  markHealthy(): void { this.backoffMs = 500; }

  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.pid === undefined || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try { process.kill(child.pid, 'SIGTERM'); } catch { return; }
    const t = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
    await exited;
    clearTimeout(t);
  }
}
