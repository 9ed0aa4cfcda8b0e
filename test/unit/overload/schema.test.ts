// The `overload` policy section: defaults, conversion to gate options, clear errors with
// file:line and key for bad values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatError, parsePolicy } from '../../../src/policy/load.js';
import { DEFAULT_THRESHOLDS, OverloadSchema, overloadOptions } from '../../../src/engine/overload/index.js';

const root = join(import.meta.dirname, '../../..');
const example = readFileSync(join(root, 'policies/example.yaml'), 'utf8');
const withOverload = (yaml: string) => parsePolicy(`${example}\noverload:\n${yaml}`, join(root, 'policies/example.yaml'));

describe('overload policy', () => {
  it('defaults: on, with the detector defaults', () => {
    const r = parsePolicy(example, join(root, 'policies/example.yaml'));
    expect(r.ok).toBe(true);
    const o = overloadOptions(OverloadSchema.parse({}))!;
    expect(o).toMatchObject({ lagHighMs: DEFAULT_THRESHOLDS.lagHighMs, pendingHigh: DEFAULT_THRESHOLDS.pendingHigh, retryAfterS: 2, ocValidityMs: 2000 });
  });

  it('keys map to gate options; enabled: false means no gate', () => {
    const r = withOverload('  lag_high_ms: 80\n  lag_low_ms: 30\n  pending_high: 500\n  pending_low: 100\n  retry_after_s: 0\n');
    expect(r.ok ? [] : r.errors.map(formatError)).toEqual([]);
    expect(overloadOptions(OverloadSchema.parse({ lag_high_ms: 80, lag_low_ms: 30, retry_after_s: 0 }))).toMatchObject({ lagHighMs: 80, lagLowMs: 30, retryAfterS: 0 });
    expect(overloadOptions(OverloadSchema.parse({ enabled: false }))).toBeUndefined();
    // The receive-queue law's delay target (ms); 0 holds queue_low_kib instead.
    expect(overloadOptions(OverloadSchema.parse({}))).toMatchObject({ queueDelayTargetMs: DEFAULT_THRESHOLDS.queueDelayTargetMs });
    expect(withOverload('  queue_delay_target_ms: 0\n').ok).toBe(true);
    expect(overloadOptions(OverloadSchema.parse({ queue_delay_target_ms: 25 }))).toMatchObject({ queueDelayTargetMs: 25 });
  });

  it('bad values: file:line, key path and a message in our words', () => {
    const lines = example.split('\n').length;
    const bad = withOverload('  lag_high_ms: 10\n  lag_low_ms: 20\n');
    expect(bad.ok).toBe(false);
    const msgs = bad.ok ? [] : bad.errors.map(formatError);
    expect(msgs.join('\n')).toMatch(/overload\.lag_low_ms.*must not exceed lag_high_ms/);
    const unknown = withOverload('  shed_everything: true\n');
    expect(unknown.ok).toBe(false);
    const e = unknown.ok ? undefined : unknown.errors[0]!;
    expect(e?.keyPath).toMatch(/^overload/);
    expect(e?.line).toBeGreaterThan(lines - 1);
    expect(withOverload('  step_percent: 0\n').ok).toBe(false);
    expect(withOverload('  queue_delay_target_ms: -1\n').ok).toBe(false);
  });

  it('worker_lag_high_ms / worker_lag_low_ms: defaults, mapping, 0 turns it off, low above high refused', () => {
    expect(overloadOptions(OverloadSchema.parse({}))).toMatchObject({ workerLagHighMs: DEFAULT_THRESHOLDS.workerLagHighMs, workerLagLowMs: DEFAULT_THRESHOLDS.workerLagLowMs });
    expect(overloadOptions(OverloadSchema.parse({ worker_lag_high_ms: 120, worker_lag_low_ms: 40 }))).toMatchObject({ workerLagHighMs: 120, workerLagLowMs: 40 });
    expect(overloadOptions(OverloadSchema.parse({ worker_lag_high_ms: 0, worker_lag_low_ms: 0 }))).toMatchObject({ workerLagHighMs: 0 });
    const bad = withOverload('  worker_lag_high_ms: 30\n  worker_lag_low_ms: 40\n');
    expect(bad.ok).toBe(false);
    expect((bad.ok ? [] : bad.errors.map(formatError)).join('\n')).toMatch(/overload\.worker_lag_low_ms.*must not exceed worker_lag_high_ms/);
    expect(withOverload('  worker_lag_high_ms: -1\n').ok).toBe(false);
  });
});
