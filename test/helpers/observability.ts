// What the Grafana dashboard and the Prometheus rules in deploy/ ask of peergate's /metrics:
// their queries, and the metric names those queries use.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
export const RULES_FILE = join(ROOT, 'deploy', 'prometheus', 'peergate-rules.yml');
export const RULES_TEST_FILE = join(ROOT, 'deploy', 'prometheus', 'peergate-rules.test.yml');
export const DASHBOARD_FILE = join(ROOT, 'deploy', 'grafana', 'peergate.json');

/**
 * Metrics that the rules (or dashboard) use but that features not merged yet will add.
 * The tests check they are still absent, so the first merge that adds one fails here and
 * its entry must be removed: the list only shrinks.
 */
export const NOT_YET_EXPORTED: Record<string, string> = {};

/**
 * Metrics that peergate registers but does not observe yet (their dashboard queries return no
 * data until it does). Empty: post-dial delay and call duration are observed by the B2BUA
 * subsystem (src/app/sbc.ts).
 */
export const REGISTERED_NOT_WIRED: Record<string, string> = {};

export interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string> }

export function rules(): Rule[] {
  const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

export interface PanelQuery { panel: string; refId: string; expr: string }

interface Panel { type: string; title: string; targets?: Array<{ refId: string; expr: string }>; panels?: Panel[] }

/** Every query of every panel (rows' nested panels too). */
export function dashboardQueries(): PanelQuery[] {
  const dash = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as { panels: Panel[] };
  const out: PanelQuery[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push({ panel: p.title, refId: t.refId, expr: t.expr });
      if (p.panels) walk(p.panels);
    }
  };
  walk(dash.panels);
  return out;
}

/** A dashboard query as Grafana would send it with every variable at "All". */
export function concreteQuery(expr: string, rateInterval: string): string {
  return expr.replace(/\$__rate_interval/g, rateInterval).replace(/\$(job|instance|peer)\b/g, '.*');
}

const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;
const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless']);

/** Metric names an expression reads (label names, functions and keywords left out). */
export function metricNames(expr: string): string[] {
  // Drop label matchers, strings and durations so only identifiers outside braces remain.
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const id = m[0];
    const after = bare.slice(m.index! + id.length).trimStart();
    if (after.startsWith('(') || PROMQL_WORDS.has(id) || id === 'time') continue; // a function or keyword
    if (!/^(peergate|nodejs|process)_/.test(id) && id !== 'up') continue;
    names.add(id);
  }
  return [...names];
}

/** The family a sample name belongs to (`x_bucket` → `x` when `x` is a histogram). */
export function family(name: string, histograms: Set<string>): string {
  const base = name.replace(HISTOGRAM_SUFFIX, '');
  return base !== name && histograms.has(base) ? base : name;
}

/** `# TYPE name kind` lines of a Prometheus text exposition. */
export function exposedTypes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}
