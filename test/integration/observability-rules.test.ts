// deploy/prometheus/peergate-rules.yml and deploy/grafana/peergate.json, checked by Prometheus'
// own tool (promtool, Debian's prometheus package) and by their structure. Whether their
// metrics exist and their queries return data is observability-metrics.test.ts (a running
// peergate and a real Prometheus).
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse } from 'yaml';
import { DASHBOARD_FILE, RULES_FILE, RULES_TEST_FILE, dashboardQueries, metricNames, rules } from '../helpers/observability.js';

const promtool = (args: string[]) => execFileSync('promtool', args, { cwd: dirname(RULES_FILE), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });

describe('Prometheus rules', () => {
  it('promtool check rules accepts the file', () => {
    expect(promtool(['check', 'rules', RULES_FILE])).toMatch(new RegExp(`SUCCESS: ${rules().length} rules found`));
  });

  it('promtool test rules passes', () => {
    expect(promtool(['test', 'rules', RULES_TEST_FILE])).toMatch(/SUCCESS/);
  });

  it('every alert has a unit test where it fires and one where it must not', () => {
    const doc = parse(readFileSync(RULES_TEST_FILE, 'utf8')) as { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }> };
    const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    const alerts = rules().map((r) => r.alert).filter((a): a is string => a !== undefined);
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a} fires in some test`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a} stays quiet in some test`).toBe(true);
    }
    // No test names an alert that does not exist (a renamed alert would test nothing).
    for (const c of cases) expect(alerts).toContain(c.alertname);
  });

  it('every alert has a severity and a summary', () => {
    for (const r of rules().filter((x) => x.alert)) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels?.severity);
      expect((r as { annotations?: { summary?: string } }).annotations?.summary, r.alert).toBeTruthy();
    }
  });
});

describe('Grafana dashboard', () => {
  const dash = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as {
    uid: string; panels: Array<{ id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string } }>;
    templating: { list: Array<{ name: string }> };
  };

  it('has unique panel ids, panels inside the 24-column grid that do not overlap, all on the datasource variable', () => {
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dash.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
      if (p.type !== 'row') expect(p.datasource?.uid, p.title).toBe('${datasource}');
    }
    expect(dash.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'instance', 'peer']);
  });

  it('covers what an operator of an SBE watches', () => {
    const used = new Set(dashboardQueries().flatMap((q) => metricNames(q.expr)));
    for (const m of [
      'peergate_calls_total', 'peergate_active_calls', 'peergate_session_limit', 'peergate_call_setup_seconds_bucket',
      'peergate_post_dial_delay_seconds_bucket', 'peergate_refusals_total', 'peergate_engine_shield_dropped_total',
      'peergate_strike_bans_total', 'peergate_tls_handshakes_total', 'peergate_tls_certificate_expiry_seconds',
      'peergate_identity_verifications_total', 'peergate_rtpengine_up', 'peergate_store_up', 'nodejs_eventloop_lag_p99_seconds',
    ]) expect(used, m).toContain(m);
  });

  it('metricNames() reads metric names, not labels, functions or keywords', () => {
    expect(metricNames('sum by (job, peer) (rate(peergate_calls_total{result=~"failed|error"}[5m])) / on (job) max by (job) (peergate_session_limit{peer="x"}) > 0.9 unless up offset 5m'))
      .toEqual(['peergate_calls_total', 'peergate_session_limit', 'up']);
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(peergate_call_setup_seconds_bucket[$__rate_interval])))')).toEqual(['peergate_call_setup_seconds_bucket']);
    expect(metricNames('peergate_tls_certificate_expiry_seconds - time() < 14 * 86400')).toEqual(['peergate_tls_certificate_expiry_seconds']);
  });
});
