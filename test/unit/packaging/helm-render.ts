// A small renderer for the subset of Helm's Go templates that deploy/helm/peergate uses, for
// tests on machines without helm (Debian has no helm package). Supported: `{{ .Values.a.b }}`,
// `.Release.Name`, `.Chart.*`, trim markers `{{-` / `-}}`, `if` / `else` / `end`, and the
// functions default, quote, toYaml, nindent (piped value last, as in Go templates). Anything
// else throws, so a template that grows beyond the subset fails the test instead of
// rendering differently from helm.
import { stringify } from 'yaml';

type Node = { kind: 'text'; text: string } | { kind: 'expr'; expr: string } | { kind: 'if'; cond: string; then: Node[]; else: Node[] };

export interface RenderContext {
  Values: unknown;
  Release: { Name: string; Namespace: string };
  Chart: Record<string, unknown>;
}

function tokenize(src: string): Array<{ text: string } | { action: string }> {
  const out: Array<{ text: string } | { action: string }> = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) { out.push({ text: src.slice(i) }); break; }
    let text = src.slice(i, open);
    const close = src.indexOf('}}', open);
    if (close < 0) throw new Error('unterminated action');
    let action = src.slice(open + 2, close);
    let next = close + 2;
    if (action.startsWith('-')) { text = text.replace(/\s+$/, ''); action = action.slice(1); }
    if (action.endsWith('-')) {
      action = action.slice(0, -1);
      while (next < src.length && /\s/.test(src[next]!)) next++;
    }
    out.push({ text }, { action: action.trim() });
    i = next;
  }
  return out;
}

function parse(tokens: Array<{ text: string } | { action: string }>): Node[] {
  let pos = 0;
  const block = (stopAt: string[]): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos++]!;
      if ('text' in t) { if (t.text) nodes.push({ kind: 'text', text: t.text }); continue; }
      const a = t.action;
      if (a.startsWith('/*') || a.startsWith('#')) continue;
      if (stopAt.includes(a)) return { nodes, stop: a };
      if (a.startsWith('if ')) {
        const then = block(['else', 'end']);
        const otherwise = then.stop === 'else' ? block(['end']).nodes : [];
        nodes.push({ kind: 'if', cond: a.slice(3).trim(), then: then.nodes, else: otherwise });
        continue;
      }
      if (/^(range|with|define|template|include|block|else if)\b/.test(a)) throw new Error(`helm-render: unsupported action '${a}'`);
      nodes.push({ kind: 'expr', expr: a });
    }
    if (stopAt.length) throw new Error(`helm-render: missing {{ end }}`);
    return { nodes, stop: '' };
  };
  return block([]).nodes;
}

function lookup(ctx: RenderContext, path: string): unknown {
  if (!path.startsWith('.')) throw new Error(`helm-render: expected a field path, got '${path}'`);
  let v: unknown = ctx;
  for (const seg of path.slice(1).split('.')) v = v === null || v === undefined ? undefined : (v as Record<string, unknown>)[seg];
  return v;
}

function atom(ctx: RenderContext, s: string): unknown {
  if (s.startsWith('.')) return lookup(ctx, s);
  if (/^-?\d+$/.test(s)) return Number(s);
  if (/^".*"$/.test(s)) return JSON.parse(s);
  throw new Error(`helm-render: unsupported argument '${s}'`);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

const toYaml = (v: unknown) => (v === undefined || v === null ? 'null' : stringify(v, { lineWidth: 0 }).replace(/\n$/, ''));

function call(fn: string, args: unknown[]): unknown {
  switch (fn) {
    case 'default': return truthy(args[1]) ? args[1] : args[0];
    case 'quote': return JSON.stringify(String(args[0] ?? ''));
    case 'toYaml': return toYaml(args[0]);
    case 'nindent': return `\n${String(args[1]).split('\n').map((l) => (l ? ' '.repeat(Number(args[0])) + l : l)).join('\n')}`;
    default: throw new Error(`helm-render: unsupported function '${fn}'`);
  }
}

function evaluate(ctx: RenderContext, expr: string): unknown {
  let value: unknown;
  expr.split('|').map((c) => c.trim().split(/\s+/)).forEach((words, i) => {
    const [head, ...rest] = words as [string, ...string[]];
    const args = rest.map((w) => atom(ctx, w));
    if (head.startsWith('.') || /^["\d-]/.test(head)) {
      if (i > 0 || rest.length) throw new Error(`helm-render: cannot pipe into '${head}'`);
      value = atom(ctx, head);
    } else {
      value = call(head, i === 0 ? args : [...args, value]);
    }
  });
  return value;
}

function run(ctx: RenderContext, nodes: Node[]): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'expr') { const v = evaluate(ctx, n.expr); out += v === undefined || v === null ? '' : String(v); }
    else out += run(ctx, truthy(evaluate(ctx, n.cond)) ? n.then : n.else);
  }
  return out;
}

export function renderTemplate(src: string, ctx: RenderContext): string {
  return run(ctx, parse(tokenize(src)));
}
