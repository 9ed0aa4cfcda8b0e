// Policy schema fragment for overload control (top-level `overload`). Owned by
// src/engine/overload; composed into the root policy schema by src/policy/schema.ts.
import { z } from 'zod';
import { DEFAULT_THRESHOLDS } from './detector.js';
import type { OverloadOptions } from './gate.js';
import { DEFAULT_INGRESS } from './ingress.js';

const ms = (max: number) => z.number().int().min(1).max(max);
const count = z.number().int().min(0).max(100_000_000);
const D = DEFAULT_THRESHOLDS;

export const OverloadSchema = z.strictObject({
  /** Shed new INVITEs when overloaded (503 + Retry-After, RFC 7339 feedback). */
  enabled: z.boolean().default(true),
  /** Mean event-loop lag (ms) over `interval_ms` that means overload, and the calm mark. */
  lag_high_ms: ms(10_000).default(D.lagHighMs),
  lag_low_ms: ms(10_000).default(D.lagLowMs),
  /** Mean event-loop delay (ms) of the slowest B2BUA worker that means overload (its backlog),
   *  and the calm mark; worker_lag_high_ms 0: not a signal. Without workers: no effect. */
  worker_lag_high_ms: z.number().int().min(0).max(10_000).default(D.workerLagHighMs),
  worker_lag_low_ms: z.number().int().min(0).max(10_000).default(D.workerLagLowMs),
  /** KiB waiting in the fullest UDP listener's kernel receive queue that start shedding (kernel
   *  drops too), and the queue the receive-queue law then holds (its target; 0: a quarter of the
   *  high mark); queue_high_kib 0: not a signal. */
  queue_high_kib: z.number().int().min(0).max(1_048_576).default(D.queueHighBytes / 1024),
  queue_low_kib: z.number().int().min(0).max(1_048_576).default(D.queueLowBytes / 1024),
  /** Queueing delay (ms) the receive-queue law holds once shedding: the queue's bytes over the
   *  rate the listeners read them at (RFC 8033's PIE). 0: it holds queue_low_kib instead. */
  queue_delay_target_ms: z.number().int().min(0).max(10_000).default(D.queueDelayTargetMs),
  /** INVITEs handed to the B2BUA without a provisional or final response yet; 0: not a signal
   *  (the default: the count includes every call waiting for its callee to ring). */
  pending_high: count.default(D.pendingHigh),
  pending_low: count.default(D.pendingLow),
  /** Live transactions / dialogs that mean overload; 0 = not a signal. */
  max_transactions: count.default(D.maxTransactions),
  max_dialogs: count.default(D.maxDialogs),
  /** Control period, increase of the refused share per overloaded period (%), its ceiling (%). */
  interval_ms: ms(60_000).default(D.intervalMs),
  /** Overloaded periods in a row before shedding starts (a lone stall is not overload). */
  onset_intervals: z.number().int().min(1).max(100).default(D.onsetIntervals),
  step_percent: z.number().int().min(1).max(100).default(D.stepPercent),
  /** Decrease of the refused share per calm period (%); 0 halves it (the receive-queue law: 30 % off per idle interval). */
  calm_step_percent: z.number().int().min(0).max(100).default(D.calmStepPercent),
  max_loss_percent: z.number().int().min(1).max(100).default(D.maxLossPercent),
  /** Retry-After of the 503 (s); 0 leaves it out. Keep it short: a proxy may avoid us that long (RFC 3263). */
  retry_after_s: z.number().int().min(0).max(3600).default(2),
  /** oc-validity sent to RFC 7339 clients while shedding (ms). */
  oc_validity_ms: ms(3_600_000).default(2000),
  /** Priority ingress on UDP: responses and requests inside dialogs are processed as read; new
   *  INVITEs wait in a queue of at most `ingress_queue_max`, `ingress_slice` per event-loop turn;
   *  once every one for `ingress_interval_ms` had waited over `ingress_sojourn_ms`, those that
   *  did are refused (503, reason queue_sojourn) until one has not (RFC 8289's CoDel idea). */
  priority_ingress: z.boolean().default(false),
  ingress_sojourn_ms: ms(10_000).default(DEFAULT_INGRESS.sojournMs),
  ingress_interval_ms: z.number().int().min(0).max(10_000).default(DEFAULT_INGRESS.intervalMs),
  ingress_queue_max: z.number().int().min(1).max(1_000_000).default(DEFAULT_INGRESS.maxQueue),
  ingress_slice: z.number().int().min(1).max(10_000).default(DEFAULT_INGRESS.slice),
}).refine((o) => o.lag_low_ms <= o.lag_high_ms, { error: 'overload.lag_low_ms must not exceed lag_high_ms', path: ['lag_low_ms'] })
  .refine((o) => o.worker_lag_low_ms <= o.worker_lag_high_ms, { error: 'overload.worker_lag_low_ms must not exceed worker_lag_high_ms', path: ['worker_lag_low_ms'] })
  .refine((o) => o.queue_low_kib <= o.queue_high_kib, { error: 'overload.queue_low_kib must not exceed queue_high_kib', path: ['queue_low_kib'] })
  .refine((o) => o.pending_low <= o.pending_high, { error: 'overload.pending_low must not exceed pending_high', path: ['pending_low'] });

export type OverloadPolicy = z.infer<typeof OverloadSchema>;

/** Gate options from the policy section; undefined when overload control is off. */
export function overloadOptions(p: OverloadPolicy): OverloadOptions | undefined {
  if (!p.enabled) return undefined;
  return {
    lagHighMs: p.lag_high_ms, lagLowMs: p.lag_low_ms, workerLagHighMs: p.worker_lag_high_ms, workerLagLowMs: p.worker_lag_low_ms, queueHighBytes: p.queue_high_kib * 1024, queueLowBytes: p.queue_low_kib * 1024, queueDelayTargetMs: p.queue_delay_target_ms, pendingHigh: p.pending_high, pendingLow: p.pending_low,
    maxTransactions: p.max_transactions, maxDialogs: p.max_dialogs, intervalMs: p.interval_ms, onsetIntervals: p.onset_intervals,
    stepPercent: p.step_percent, calmStepPercent: p.calm_step_percent, maxLossPercent: p.max_loss_percent, retryAfterS: p.retry_after_s, ocValidityMs: p.oc_validity_ms,
    ingress: p.priority_ingress ? { sojournMs: p.ingress_sojourn_ms, intervalMs: p.ingress_interval_ms, maxQueue: p.ingress_queue_max, slice: p.ingress_slice } : undefined,
  };
}
