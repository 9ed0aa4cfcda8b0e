// The substitution expression of a NAPTR record (RFC 3402 §3.2), applied safely.
//
//   subst-expr = delim ere delim repl delim *flags      (flags: "i" only)
//
// The answer comes from the network, so the ERE is not handed to the JS regex engine as is.
// It is parsed against a subset of POSIX ERE that keeps matching cheap, and rewritten into an
// equivalent JS pattern only when it fits:
//   - atoms: literal characters, `\`-escaped characters, `.`, bracket expressions with
//     literal members and ranges (no POSIX classes, no collating elements);
//   - groups `( … )` (capturing, at most 9, nested at most 3 deep) and `|` alternatives
//     (at most 8); a group may not carry a quantifier (no `(a+)+`);
//   - quantifiers `* + ? {m} {m,} {m,n}` (n ≤ 32) on a single atom, at most 3 in all;
//   - anchors `^` first and `$` last only.
// With at most 3 quantifiers over an input of at most 32 characters, any backtracking is
// bounded by 33³ steps per alternative: no catastrophic case exists. The expression (256)
// and the result (512) are bounded in size.
export const MAX_EXPRESSION = 256;
export const MAX_RESULT = 512;
export const MAX_INPUT = 32;
const MAX_QUANTIFIERS = 3;
const MAX_GROUPS = 9;
const MAX_DEPTH = 3;
const MAX_ALTERNATIVES = 8;

export interface NaptrSubstitution {
  readonly re: RegExp;
  /** The replacement split into literal text and back-reference numbers. */
  readonly parts: ReadonlyArray<string | number>;
}

/** Parse and check a NAPTR regexp field; a string error says why it is refused. */
export function compileNaptrRegexp(field: string): NaptrSubstitution | string {
  if (field.length === 0) return 'empty regexp';
  if (field.length > MAX_EXPRESSION) return 'regexp too long';
  const delim = field[0]!;
  // RFC 3402: the delimiter is any non-digit, non-flag character other than backslash.
  if (/[0-9i\\]/.test(delim) || delim.charCodeAt(0) < 0x21 || delim.charCodeAt(0) > 0x7e) return 'bad delimiter';
  const pieces: string[] = [];
  let cur = '';
  for (let i = 1; i < field.length; i++) {
    const c = field[i]!;
    if (c === '\\' && i + 1 < field.length) {
      // An escaped delimiter is the delimiter itself; other escapes stay for the next stage.
      if (field[i + 1] === delim) { cur += delim === '\\' ? '\\\\' : delim; i++; continue; }
      cur += c + field[i + 1]!;
      i++;
      continue;
    }
    if (c === delim) { pieces.push(cur); cur = ''; continue; }
    cur += c;
  }
  pieces.push(cur);
  if (pieces.length !== 3) return 'not delim-ere-delim-repl-delim';
  const [ere, repl, flags] = pieces as [string, string, string];
  if (flags !== '' && flags !== 'i') return 'unknown regexp flag';
  const js = ereToJs(ere);
  if (typeof js !== 'string') return js.error;
  const parts = parseReplacement(repl, countGroups(ere));
  if (typeof parts === 'string') return parts;
  return { re: new RegExp(js, flags === 'i' ? 'i' : ''), parts };
}

/** Apply to the application unique string (the E.164 number); undefined when it does not match. */
export function applyNaptrRegexp(s: NaptrSubstitution, input: string): string | undefined {
  if (input.length > MAX_INPUT) return undefined;
  const m = s.re.exec(input);
  if (!m) return undefined;
  let out = '';
  for (const p of s.parts) {
    out += typeof p === 'number' ? (m[p] ?? '') : p;
    if (out.length > MAX_RESULT) return undefined;
  }
  return out;
}

function countGroups(ere: string): number {
  let n = 0;
  for (let i = 0; i < ere.length; i++) {
    if (ere[i] === '\\') { i++; continue; }
    if (ere[i] === '[') { const end = bracketEnd(ere, i); if (end < 0) return n; i = end; continue; }
    if (ere[i] === '(') n++;
  }
  return n;
}

/** Index of the `]` closing the bracket expression opened at `start`, or -1. */
function bracketEnd(ere: string, start: number): number {
  let i = start + 1;
  if (ere[i] === '^') i++;
  if (ere[i] === ']') i++;
  for (; i < ere.length; i++) if (ere[i] === ']') return i;
  return -1;
}

const JS_SPECIAL = /[\\^$.*+?()[\]{}|/-]/;

function escapeJs(c: string): string {
  return JS_SPECIAL.test(c) ? `\\${c}` : c;
}

function ereToJs(ere: string): string | { error: string } {
  let out = '';
  let quantifiers = 0, groups = 0, depth = 0, alternatives = 0;
  // What the previous token was: an atom may take a quantifier, nothing else may.
  let prev: 'none' | 'atom' | 'group' | 'quantifier' | 'anchor' = 'none';
  for (let i = 0; i < ere.length; i++) {
    const c = ere[i]!;
    if (c === '^') {
      if (i !== 0) return { error: 'anchor ^ only at the start' };
      out += '^'; prev = 'anchor'; continue;
    }
    if (c === '$') {
      if (i !== ere.length - 1) return { error: 'anchor $ only at the end' };
      out += '$'; prev = 'anchor'; continue;
    }
    if (c === '\\') {
      const n = ere[i + 1];
      if (n === undefined) return { error: 'trailing backslash' };
      // Back-references and class escapes (\d, \w, \b …) are not ERE literals: refuse them.
      if (/[0-9A-Za-z]/.test(n)) return { error: `escape \\${n} not allowed` };
      out += escapeJs(n); i++; prev = 'atom'; continue;
    }
    if (c === '.') { out += '.'; prev = 'atom'; continue; }
    if (c === '[') {
      const end = bracketEnd(ere, i);
      if (end < 0) return { error: 'unclosed [' };
      const body = ere.slice(i + 1, end);
      if (body.includes('[:') || body.includes('[=') || body.includes('[.')) return { error: 'character classes not allowed' };
      let neg = false, k = 0, members = '';
      if (body[0] === '^') { neg = true; k = 1; }
      for (; k < body.length; k++) {
        const ch = body[k]!;
        if (ch === '-' && k > (neg ? 1 : 0) && k < body.length - 1) { members += '-'; continue; }
        members += ch === '\\' || ch === ']' || ch === '[' || ch === '^' || ch === '-' ? `\\${ch}` : ch;
      }
      out += `[${neg ? '^' : ''}${members}]`;
      i = end; prev = 'atom'; continue;
    }
    if (c === '(') {
      if (++groups > MAX_GROUPS) return { error: 'too many groups' };
      if (++depth > MAX_DEPTH) return { error: 'groups nested too deep' };
      out += '('; prev = 'none'; continue;
    }
    if (c === ')') {
      if (depth-- === 0) return { error: 'unbalanced )' };
      out += ')'; prev = 'group'; continue;
    }
    if (c === '|') {
      if (++alternatives > MAX_ALTERNATIVES) return { error: 'too many alternatives' };
      out += '|'; prev = 'none'; continue;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{') {
      if (prev === 'group') return { error: 'a group may not be repeated' };
      if (prev !== 'atom') return { error: `quantifier ${c} without an atom` };
      if (++quantifiers > MAX_QUANTIFIERS) return { error: 'too many quantifiers' };
      if (c === '{') {
        const m = /^\{(\d{1,2})(,(\d{0,2}))?\}/.exec(ere.slice(i));
        if (!m) return { error: 'bad {m,n}' };
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? undefined : Number(m[3]);
        if (min > 32 || (max !== undefined && (max > 32 || max < min))) return { error: '{m,n} out of range' };
        out += m[0]; i += m[0].length - 1;
      } else out += c;
      prev = 'quantifier'; continue;
    }
    // A literal: printable ASCII only.
    const code = c.charCodeAt(0);
    if (code < 0x20 || code > 0x7e) return { error: 'non-printable character' };
    out += escapeJs(c); prev = 'atom';
  }
  if (depth !== 0) return { error: 'unbalanced (' };
  return out;
}

function parseReplacement(repl: string, groups: number): Array<string | number> | string {
  const parts: Array<string | number> = [];
  let lit = '';
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i]!;
    if (c !== '\\') { lit += c; continue; }
    const n = repl[i + 1];
    if (n === undefined) return 'trailing backslash in replacement';
    i++;
    if (n >= '1' && n <= '9') {
      const g = Number(n);
      if (g > groups) return `back-reference \\${n} to a group that does not exist`;
      if (lit) { parts.push(lit); lit = ''; }
      parts.push(g);
    } else lit += n;
  }
  if (lit) parts.push(lit);
  return parts;
}
