// file:line:column for a key path of a policy file, for problems found after the schema
// passed (an unreadable certificate, a bad CRL): the same form as the loader's errors.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isNode, isScalar } from 'yaml';
import { formatKeyPath, type PolicyError } from '../policy/load.js';
import type { PolicyProblem } from './subsystem.js';

export function locateProblems(file: string, problems: PolicyProblem[]): PolicyError[] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { /* reported at line 1 */ }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  return problems.map((p) => {
    let offset = 0;
    const full: unknown = doc.getIn(p.keyPath, true);
    if (isNode(full) && full.range) offset = full.range[0];
    else {
      // The deepest key of the path that is in the file (defaults have no line): point at it.
      for (let n = p.keyPath.length - 1; n > 0; n--) {
        const parent: unknown = n > 1 ? doc.getIn(p.keyPath.slice(0, n - 1), true) : doc.contents;
        const pair = isMap(parent) ? parent.items.find((i) => isScalar(i.key) && i.key.value === p.keyPath[n - 1]) : undefined;
        if (pair && isNode(pair.key) && pair.key.range) { offset = pair.key.range[0]; break; }
      }
    }
    const pos = lc.linePos(offset);
    return { file, line: Math.max(pos.line, 1), column: Math.max(pos.col, 1), keyPath: formatKeyPath(p.keyPath), message: p.message };
  });
}
