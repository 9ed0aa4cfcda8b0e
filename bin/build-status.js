// Whether dist/ (from `npm run build`) holds the current code of a checkout: it exists and no
// source file is newer. bin/peergate.js runs the sources through tsx otherwise; the benchmarks
// refuse to run then (bench/require-build.ts), since tsx costs tens of MiB and CPU per process.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** @param {string} root the checkout (holding dist/ and src/) */
export function buildIsCurrent(root) {
  const built = join(root, 'dist', 'cli', 'main.js');
  const sources = join(root, 'src');
  if (!existsSync(built)) return false;
  if (!existsSync(sources)) return true;
  const builtAt = statSync(built).mtimeMs;
  for (const f of readdirSync(sources, { recursive: true })) {
    if (String(f).endsWith('.ts') && statSync(join(sources, String(f))).mtimeMs > builtAt) return false;
  }
  return true;
}
