// Imported first by every benchmark that starts `peergate start`: it refuses to run on a stale
// build. bin/peergate.js runs the TypeScript sources through tsx when dist/ is older than src/
// (a development convenience), which adds tens of MiB and much CPU to every process and would
// be measured as peergate's own. Stricter than the launcher: each source against its own
// compiled file, so a partial build is caught too.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Sources of `root` whose compiled file in dist/ is missing or older (the first few). */
export function staleSources(root: string, limit = 3): string[] {
  const src = join(root, 'src');
  const stale: string[] = [];
  for (const f of readdirSync(src, { recursive: true }).map(String)) {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue;
    const js = join(root, 'dist', f.slice(0, -3) + '.js');
    if (!existsSync(js) || statSync(js).mtimeMs < statSync(join(src, f)).mtimeMs) {
      stale.push(f);
      if (stale.length >= limit) break;
    }
  }
  return stale;
}

/** Exit 2 with what to do when `root`'s dist/ is missing or older than its src/. */
export function requireCurrentBuild(root: string = ROOT): void {
  const stale = staleSources(resolve(root));
  if (stale.length === 0) return;
  console.error(`bench: ${join(resolve(root), 'dist')} is older than src/ (${stale.join(', ')}…): peergate would run the sources through tsx, ` +
    `which costs tens of MiB and CPU per process. Run 'npm run build' in ${resolve(root)} first (and edit no source while a benchmark runs).`);
  process.exit(2);
}

requireCurrentBuild();
