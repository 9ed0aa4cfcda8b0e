// file:line:column for a key path of a policy file, for problems found after the schema
// passed (an unreadable certificate, a bad CRL): the same form as the loader's errors.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isPair, isNode } from 'yaml';
import { formatKeyPath, type PolicyError } from '../policy/load.js';
import type { PolicyProblem } from './subsystem.js';

export function locateProblems(file: string, problems: PolicyProblem[]): PolicyError[] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { /* reported at line 1 */ }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  return problems.map((p) => {
    let offset = 0;
    // The deepest node of the path that exists in the file (defaults have none).
    for (let n = p.keyPath.length; n > 0; n--) {
      const node: unknown = doc.getIn(p.keyPath.slice(0, n), true);
      const range = isNode(node) ? node.range : isPair(node) && isNode(node.key) ? node.key.range : undefined;
      if (range) { offset = range[0]; break; }
    }
    const pos = lc.linePos(offset);
    return { file, line: Math.max(pos.line, 1), column: Math.max(pos.col, 1), keyPath: formatKeyPath(p.keyPath), message: p.message };
  });
}
