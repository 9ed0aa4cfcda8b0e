// Target health: OPTIONS probing (RFC 3261 §11) of the next hops of the core and of peers
// whose policy asks for it. A hop that fails `failure_threshold` probes in a row is down and
// calls skip it (no waiting for no_answer_ms); `success_threshold` answered probes bring it up.
//
// Contract:
//   isUp(key)            false only for a hop probed down (here, or by the node's prober when
//                        this process does not probe: applyRemote); unknown hops are up.
//   onChange(fn)         every up/down change this process's probes make (to share them).
//   sync(policy-ish)     start/stop one probe loop per side that asks for probing.
//   snapshot()           what /admin/targets shows.
// A probe is "answered" by any final response except 408 and 503 (the engine makes those up
// for a timeout or a transport error); no final response within timeout_ms is a failure.
// What a probe carries is built by the caller's `send` (nothing of the other side: no
// Call-ID, From or Via of any call, no header of the core).
import type { Health } from './schema.js';
import type { Peer } from '../policy/schema.js';
import type { NextHop } from './rfc3263.js';
import { gauge, histogram, counter } from '../ops/metrics.js';

export const targetUp = gauge('peergate_target_up', '1 while a probed next hop is up, 0 while down', ['target']);
export const probeSeconds = histogram('peergate_target_probe_seconds', 'OPTIONS probe round trip', ['target'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
export const probesTotal = counter('peergate_target_probes_total', 'OPTIONS probes by result', ['result']);

/** The metric label and map key of a hop: `udp:192.0.2.1:5060`, `tls:[2001:db8::1]:5061`. */
export function hopKey(h: Pick<NextHop, 'transport' | 'address' | 'port'>): string {
  return `${h.transport}:${h.address.includes(':') ? `[${h.address}]` : h.address}:${h.port}`;
}

export interface ProbeTarget {
  /** The target URI of the policy the hop came from (the probe's Request-URI). */
  uri: string;
  hop: NextHop;
  /** Which of our sides the hop is on (the probe leaves from a listener of that side). */
  side: 'core' | 'peer';
  /** The peer (for its tls_pin); absent for the core. */
  peer?: Peer;
}

export interface HealthSide {
  /** `core` or a peer id. */
  side: string;
  health: Health;
  /** The side's hops now (resolved through DNS by the caller); complete: false when a lookup failed. */
  hops(): Promise<{ targets: ProbeTarget[]; complete: boolean }>;
}

/** Sends one OPTIONS; resolves with the final status, or 'timeout' after timeoutMs. */
export type ProbeSender = (t: ProbeTarget, timeoutMs: number) => Promise<number | 'timeout'>;

interface State {
  key: string;
  side: string;
  uri: string;
  up: boolean;
  okInRow: number;
  failInRow: number;
  lastStatus: number | 'timeout' | undefined;
  lastRttMs: number | undefined;
  lastProbeAt: number;
  changedAt: number;
  /** Complete rounds in a row that did not list this hop. */
  absentRounds: number;
}

const MAX_HOPS_PER_SIDE = 64;
/** A hop missing from this many complete rounds in a row is forgotten. One short answer (a
 *  DNS reply that lost a record, an SRV target whose A lookup timed out) must not forget a
 *  dead hop: forgotten hops count as up. */
export const FORGET_AFTER_ROUNDS = 3;

export class TargetHealth {
  private readonly states = new Map<string, State>();
  private readonly loops = new Map<string, { timer: NodeJS.Timeout; side: HealthSide; stop: boolean }>();
  /** Hops probed by another process of this node (a B2BUA worker that probes): key → up. */
  private readonly remote = new Map<string, boolean>();
  private readonly listeners: ((key: string, up: boolean) => void)[] = [];

  constructor(private readonly send: ProbeSender, onChange: (key: string, up: boolean) => void = () => {}) {
    this.listeners.push(onChange);
  }

  isUp(key: string): boolean {
    return this.states.get(key)?.up ?? this.remote.get(key) ?? true;
  }

  /** Be told of every up/down change this process's probes make. */
  onChange(fn: (key: string, up: boolean) => void): void { this.listeners.push(fn); }

  /** The node's prober says a hop is up or down (workers that do not probe route by this). */
  applyRemote(key: string, up: boolean): void {
    if (up) this.remote.delete(key);
    else this.remote.set(key, false);
  }

  /** A hop no longer probed counts as up again, here and for those told of its state. */
  private forget(key: string, s: State): void {
    this.states.delete(key);
    targetUp.remove({ target: key });
    if (!s.up) this.changed(key, true);
  }

  private changed(key: string, up: boolean): void {
    for (const fn of this.listeners) fn(key, up);
  }

  /** Run one loop per side that probes; stop loops of sides gone or no longer probing. */
  sync(sides: HealthSide[]): void {
    const wanted = new Map(sides.filter((s) => s.health.probe).map((s) => [s.side, s]));
    for (const [name, loop] of this.loops) {
      const w = wanted.get(name);
      if (!w || JSON.stringify(w.health) !== JSON.stringify(loop.side.health)) { loop.stop = true; clearTimeout(loop.timer); this.loops.delete(name); }
      // Same schedule: keep the loop and its state, probe the side's targets as the new policy says.
      else loop.side = w;
    }
    for (const [name, side] of wanted) {
      if (this.loops.has(name)) continue;
      const loop = { timer: undefined as unknown as NodeJS.Timeout, side, stop: false };
      const tick = async (): Promise<void> => {
        if (loop.stop) return;
        await this.probeSide(loop.side).catch(() => undefined);
        if (!loop.stop) loop.timer = setTimeout(() => void tick(), loop.side.health.interval_ms);
      };
      this.loops.set(name, loop);
      loop.timer = setTimeout(() => void tick(), 0);
    }
    // Hops of sides no longer probed are forgotten (and count as up again).
    for (const [key, s] of this.states) if (!wanted.has(s.side)) this.forget(key, s);
  }

  /** One round over a side's hops, all probes in parallel. */
  async probeSide(side: HealthSide): Promise<void> {
    const { targets, complete } = await side.hops();
    const hops = targets.slice(0, MAX_HOPS_PER_SIDE);
    await Promise.all(hops.map((t) => this.probeOne(side, t)));
    // Hops the side no longer has (policy or DNS changed) are forgotten after FORGET_AFTER_ROUNDS
    // complete rounds without them — never on a failed lookup: a DNS hiccup must not bring a
    // dead hop back up.
    if (!complete) return;
    const now = new Set(hops.map((t) => hopKey(t.hop)));
    for (const [key, s] of this.states) {
      if (s.side !== side.side) continue;
      if (now.has(key)) { s.absentRounds = 0; continue; }
      if (++s.absentRounds >= FORGET_AFTER_ROUNDS) this.forget(key, s);
    }
  }

  private async probeOne(side: HealthSide, t: ProbeTarget): Promise<void> {
    const key = hopKey(t.hop);
    const t0 = performance.now();
    let status: number | 'timeout';
    try { status = await this.send(t, side.health.timeout_ms); } catch { status = 503; }
    const rtt = performance.now() - t0;
    const ok = status !== 'timeout' && status !== 408 && status !== 503;
    probesTotal.inc({ result: ok ? 'answered' : status === 'timeout' ? 'timeout' : String(status) });
    if (ok) probeSeconds.observe({ target: key }, rtt / 1000);
    const now = Date.now();
    let s = this.states.get(key);
    if (!s) {
      s = { key, side: side.side, uri: t.uri, up: true, okInRow: 0, failInRow: 0, lastStatus: undefined, lastRttMs: undefined, lastProbeAt: now, changedAt: now, absentRounds: 0 };
      this.states.set(key, s);
    }
    s.lastStatus = status;
    s.lastRttMs = ok ? rtt : undefined;
    s.lastProbeAt = now;
    if (ok) { s.okInRow++; s.failInRow = 0; } else { s.failInRow++; s.okInRow = 0; }
    const was = s.up;
    if (s.up && s.failInRow >= side.health.failure_threshold) s.up = false;
    else if (!s.up && s.okInRow >= side.health.success_threshold) s.up = true;
    if (was !== s.up) { s.changedAt = now; this.changed(key, s.up); }
    targetUp.set({ target: key }, s.up ? 1 : 0);
  }

  snapshot(): Array<{ target: string; side: string; uri: string; up: boolean; last_status: number | 'timeout' | null; last_rtt_ms: number | null; last_probe: string; since: string }> {
    return [...this.states.values()].map((s) => ({
      target: s.key, side: s.side, uri: s.uri, up: s.up,
      last_status: s.lastStatus ?? null, last_rtt_ms: s.lastRttMs === undefined ? null : Math.round(s.lastRttMs * 100) / 100,
      last_probe: new Date(s.lastProbeAt).toISOString(), since: new Date(s.changedAt).toISOString(),
    }));
  }

  stop(): void {
    for (const loop of this.loops.values()) { loop.stop = true; clearTimeout(loop.timer); }
    this.loops.clear();
  }
}
