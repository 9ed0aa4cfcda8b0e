// The overload control law seen from outside (bench/compare.bench.ts, peergate only): during an
// overload step, read every `everyMs` the loss gauge and the receive-queue bytes gauge from
// /metrics (the gate's own values: the queue as its last control interval read it), then
// summarise the swing. One scrape costs the primary a fraction of a millisecond of CPU; every
// run pays it alike.
import '../require-build.js';
import { writeFileSync } from 'node:fs';
import { sumMetric } from '../../test/helpers/peergate.js';

export interface TracePoint { atMs: number; loss: number; queueBytes: number; queueDelayMs: number; workerLagMs: number; utilisation: number }

export interface TraceSummary {
  samples: number;
  /** Mean and standard deviation of the loss (%) over the window. */
  lossMean: number; lossSd: number;
  /** Share of samples with loss ≤ 5 % and ≥ 80 %. */
  atZero: number; atTop: number;
  /** Swings: moves from ≤ 10 % to ≥ 60 % or back (with that hysteresis), per second. */
  swingsPerS: number;
  /** Mean absolute change of the loss between consecutive samples (points). */
  meanStep: number;
  queueP50: number; queueP90: number; queueMax: number;
  /** The gate's queue delay (ms; 0 where the code has none). */
  delayP50: number; delayP90: number;
  /** The slowest worker's event-loop delay (ms) as the gate saw it. */
  workerLagP50: number; workerLagP90: number;
}

export class OverloadTrace {
  private readonly points: TracePoint[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly metrics: () => Promise<string>, everyMs = 100) {
    const t0 = Date.now();
    this.done = (async () => {
      for (let next = t0; this.running; ) {
        try {
          const text = await this.metrics();
          this.points.push({ atMs: Date.now() - t0, loss: sumMetric(text, 'peergate_overload_loss_percent'), queueBytes: sumMetric(text, 'peergate_udp_receive_queue_bytes'), queueDelayMs: 1000 * sumMetric(text, 'peergate_udp_receive_queue_delay_seconds'), workerLagMs: 1000 * sumMetric(text, 'peergate_worker_event_loop_delay_seconds'), utilisation: sumMetric(text, 'peergate_overload_loop_utilisation_ratio') });
        } catch { /* a scrape that failed under load: a gap in the trace */ }
        next += everyMs;
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else next = Date.now();
      }
    })();
  }

  async stop(): Promise<TracePoint[]> {
    this.running = false;
    await this.done;
    return this.points;
  }
}

/** The swing of the loss and the queue between `fromMs` and `toMs` of a trace. */
export function summarise(points: readonly TracePoint[], fromMs: number, toMs: number): TraceSummary {
  const w = points.filter((p) => p.atMs >= fromMs && p.atMs < toMs);
  const n = w.length || 1;
  const mean = w.reduce((s, p) => s + p.loss, 0) / n;
  const sd = Math.sqrt(w.reduce((s, p) => s + (p.loss - mean) ** 2, 0) / n);
  let swings = 0;
  let high: boolean | undefined;
  let step = 0;
  for (let i = 0; i < w.length; i++) {
    const l = w[i]!.loss;
    if (i > 0) step += Math.abs(l - w[i - 1]!.loss);
    if (l <= 10) { if (high === true) swings++; high = false; } else if (l >= 60) { if (high === false) swings++; high = true; }
  }
  const q = w.map((p) => p.queueBytes).sort((a, b) => a - b);
  const at = (f: number) => q.length ? q[Math.min(q.length - 1, Math.floor(f * q.length))]! : 0;
  const dl = w.map((p) => p.queueDelayMs).sort((a, b) => a - b);
  const atD = (f: number) => dl.length ? dl[Math.min(dl.length - 1, Math.floor(f * dl.length))]! : 0;
  const wl = w.map((p) => p.workerLagMs).sort((a, b) => a - b);
  const atW = (f: number) => wl.length ? wl[Math.min(wl.length - 1, Math.floor(f * wl.length))]! : 0;
  return {
    workerLagP50: atW(0.5), workerLagP90: atW(0.9),
    samples: w.length, lossMean: mean, lossSd: sd,
    atZero: w.filter((p) => p.loss <= 5).length / n, atTop: w.filter((p) => p.loss >= 80).length / n,
    swingsPerS: swings / Math.max(0.001, (toMs - fromMs) / 1000), meanStep: w.length > 1 ? step / (w.length - 1) : 0,
    queueP50: at(0.5), queueP90: at(0.9), queueMax: q[q.length - 1] ?? 0, delayP50: atD(0.5), delayP90: atD(0.9),
  };
}

export function describe(s: TraceSummary): string {
  return `loss mean ${s.lossMean.toFixed(0)}% sd ${s.lossSd.toFixed(0)}, ≤5% ${(100 * s.atZero).toFixed(0)}% of samples, ≥80% ${(100 * s.atTop).toFixed(0)}%, `
    + `${s.swingsPerS.toFixed(2)} swings/s, mean step ${s.meanStep.toFixed(1)} points; queue p50/p90/max ${(s.queueP50 / 1024).toFixed(0)}/${(s.queueP90 / 1024).toFixed(0)}/${(s.queueMax / 1024).toFixed(0)} KiB , delay p50/p90 ${s.delayP50.toFixed(1)}/${s.delayP90.toFixed(1)} ms; worker delay p50/p90 ${s.workerLagP50.toFixed(0)}/${s.workerLagP90.toFixed(0)} ms (${s.samples} samples)`;
}

export function saveTrace(file: string, points: readonly TracePoint[]): void {
  writeFileSync(file, points.map((p) => `${p.atMs};${p.loss};${p.queueBytes};${p.queueDelayMs.toFixed(1)};${p.workerLagMs.toFixed(1)};${p.utilisation.toFixed(2)}`).join('\n') + '\n');
}
