// Load a policy file: YAML → schema → resolved, frozen Policy, or a list of errors that
// each name file, line, column and key path. The yaml package's Document keeps source
// ranges, so a zod issue path can be mapped back to the node (or key) it is about.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isSeq, isScalar, isPair, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { PolicySchema, type Policy } from './schema.js';
import { filePathRegistry } from './file-path.js';
import { resolveSecrets } from './secrets.js';
import { deepFreeze } from './freeze.js';

export interface PolicyError {
  file: string;
  /** 1-based; 1 when the error concerns the whole file. */
  line: number;
  /** 1-based. */
  column: number;
  /** e.g. `peers[1].limits.cps`; empty for the document root. */
  keyPath: string;
  message: string;
}

export type LoadResult = { ok: true; policy: Policy } | { ok: false; errors: PolicyError[] };

export interface LoadOptions {
  /** Also report file settings (certificates, keys, CAs) whose file does not exist. */
  checkFiles?: boolean;
  /** Where secrets given by environment variable are read (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/** A policy is hand-written configuration; anything larger is a mistake (or an attack on the loader). */
export const MAX_POLICY_BYTES = 8 * 1024 * 1024;

/** `file:line:column: keyPath: message` */
export function formatError(e: PolicyError): string {
  return `${e.file}:${e.line}:${e.column}: ${e.keyPath ? `${e.keyPath}: ` : ''}${e.message}`;
}

/** `peers[1].limits.cps` from ['peers', 1, 'limits', 'cps']. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

/** Read and validate a policy file. Never throws for bad input. */
export function loadPolicy(path: string, opts: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_POLICY_BYTES) {
      return { ok: false, errors: [{ file: path, line: 1, column: 1, keyPath: '', message: `file is ${size} bytes; a policy may be at most ${MAX_POLICY_BYTES}` }] };
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const msg = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read: ${(err as Error).message}`;
    return { ok: false, errors: [{ file: path, line: 1, column: 1, keyPath: '', message: msg }] };
  }
  return parsePolicy(text, path, opts);
}

/** Validate policy text; `file` names it in errors and anchors relative file paths. */
export function parsePolicy(text: string, file: string, opts: LoadOptions = {}): LoadResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number) => {
    const p = lc.linePos(offset);
    return { line: Math.max(p.line, 1), column: Math.max(p.col, 1) };
  };

  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => ({ file, ...at(e.pos[0]), keyPath: '', message: `YAML: ${firstLine(e.message)}` })),
    };
  }
  let data: unknown;
  try {
    // Alias expansion is bounded (maxAliasCount) so a "billion laughs" file fails instead of hanging.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, errors: [{ file, line: 1, column: 1, keyPath: '', message: `YAML: ${(err as Error).message}` }] };
  }
  if (data === null || data === undefined) {
    return { ok: false, errors: [{ file, line: 1, column: 1, keyPath: '', message: 'the policy file is empty' }] };
  }

  const result = PolicySchema.safeParse(data);
  if (!result.success) {
    const errors = result.error.issues.flatMap((issue) => issueToErrors(issue, doc, file, at));
    errors.sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, errors };
  }

  const policy = result.data;
  const baseDir = dirname(resolve(file));
  const fileErrors: PolicyError[] = [];
  resolveFilePaths(policyShape(), policy, [], (value, path) => {
    const abs = isAbsolute(value) ? value : resolve(baseDir, value);
    if (opts.checkFiles && !existsSync(abs)) {
      fileErrors.push({ file, ...at(nodeFor(doc, path).offset), keyPath: formatKeyPath(path), message: `file not found: ${abs}` });
    }
    return abs;
  });
  if (fileErrors.length > 0) return { ok: false, errors: fileErrors };
  const secretErrors = resolveSecrets(policy, { env: opts.env ?? process.env, requireFiles: opts.checkFiles ?? false });
  if (secretErrors.length > 0) {
    return { ok: false, errors: secretErrors.map((e) => ({ file, ...at(nodeFor(doc, e.path).offset), keyPath: formatKeyPath(e.path), message: e.message })) };
  }
  return { ok: true, policy: deepFreeze(policy) };
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

type At = (offset: number) => { line: number; column: number };

function issueToErrors(issue: z.core.$ZodIssue, doc: Document, file: string, at: At): PolicyError[] {
  const path = issue.path as PropertyKey[];
  if (issue.code === 'unrecognized_keys') {
    // One error per unknown key, pointing at the key itself.
    return issue.keys.map((key) => {
      const loc = nodeFor(doc, [...path, key], true);
      const hint = closest(key, knownKeysAt(policyShape(), path));
      const message = `unknown key '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}`;
      return { file, ...at(loc.offset), keyPath: formatKeyPath([...path, key]), message };
    });
  }
  const loc = nodeFor(doc, path);
  let message = issue.message;
  if (issue.code === 'invalid_type' && !loc.found) {
    message = `missing required key '${String(path[path.length - 1])}'`;
  }
  return [{ file, ...at(loc.offset), keyPath: formatKeyPath(path), message }];
}

/**
 * Walk the YAML document along `path`. Returns the start offset of the deepest node found
 * (the parent map when a key is missing); `key` selects the key instead of its value.
 */
function nodeFor(doc: Document, path: readonly PropertyKey[], key = false): { offset: number; found: boolean } {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    let next: unknown;
    let keyNode: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (pair) { next = pair.value; keyNode = pair.key; }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (next === undefined && keyNode === undefined) return { offset, found: false };
    const last = i === path.length - 1;
    const target = last && key && keyNode ? keyNode : (next ?? keyNode);
    offset = rangeStart(target) ?? rangeStart(keyNode) ?? offset;
    node = next;
  }
  return { offset, found: true };
}

function rangeStart(n: unknown): number | undefined {
  const r = (n as YamlNode | undefined)?.range;
  return r ? r[0] : undefined;
}

// The policy schema as JSON Schema (zod's public z.toJSONSchema, input side), with the
// FilePath registry's `file: true` metadata on every file setting. Walking this documented
// form instead of zod's internal definitions keeps the loader independent of zod's internals;
// schema fragments owned elsewhere only have to use FilePath for their paths to be resolved.
interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
  allOf?: JsonSchemaNode[];
  file?: boolean;
}
let policyJsonSchema: JsonSchemaNode | undefined;
function policyShape(): JsonSchemaNode {
  policyJsonSchema ??= z.toJSONSchema(PolicySchema, { io: 'input', unrepresentable: 'any', metadata: filePathRegistry, reused: 'inline' }) as JsonSchemaNode;
  return policyJsonSchema;
}
const alternatives = (js: JsonSchemaNode): JsonSchemaNode[] => [...(js.anyOf ?? []), ...(js.oneOf ?? []), ...(js.allOf ?? [])];

// Co-walk the schema and the parsed data, replacing every value of a file setting with `fix(value)`.
function resolveFilePaths(js: JsonSchemaNode, data: unknown, path: PropertyKey[], fix: (v: string, path: PropertyKey[]) => string): unknown {
  if (js.file === true && typeof data === 'string') return fix(data, path);
  for (const alt of alternatives(js)) {
    const out = resolveFilePaths(alt, data, path, fix);
    if (out !== data) return out;
  }
  if (js.items && Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) data[i] = resolveFilePaths(js.items, data[i], [...path, i], fix);
  } else if (js.properties && data && typeof data === 'object') {
    const obj = data as Record<string, unknown>;
    for (const [k, sub] of Object.entries(js.properties)) if (obj[k] !== undefined) obj[k] = resolveFilePaths(sub, obj[k], [...path, k], fix);
  }
  return data;
}

/** The keys an object schema at `path` accepts (all options of a union). */
function knownKeysAt(js: JsonSchemaNode, path: readonly PropertyKey[]): string[] {
  const fromAlternatives = alternatives(js).flatMap((alt) => knownKeysAt(alt, path));
  if (path.length === 0) return [...Object.keys(js.properties ?? {}), ...fromAlternatives];
  const [head, ...rest] = path;
  if (typeof head === 'number') return [...(js.items ? knownKeysAt(js.items, rest) : []), ...fromAlternatives];
  const next = js.properties?.[String(head)];
  return [...(next ? knownKeysAt(next, rest) : []), ...fromAlternatives];
}

/** The candidate within edit distance 2 (or sharing a long prefix), for "did you mean". */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) { best = c; bestD = d; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
