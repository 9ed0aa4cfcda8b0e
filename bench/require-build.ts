// Imported first by every benchmark that starts `peergate start`: it refuses to run on a stale
// build. bin/peergate.js runs the TypeScript sources through tsx when dist/ is older than src/
// (a development convenience), which adds tens of MiB and much CPU to every process and would
// be measured as peergate's own.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain ESM module of the launcher, without type declarations
import { buildIsCurrent } from '../bin/build-status.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Exit 2 with what to do when `root`'s dist/ is missing or older than its src/. */
export function requireCurrentBuild(root: string = ROOT): void {
  if ((buildIsCurrent as (r: string) => boolean)(resolve(root))) return;
  console.error(`bench: ${join(resolve(root), 'dist')} is missing or older than src/: peergate would run the sources through tsx, ` +
    `which costs tens of MiB and CPU per process. Run 'npm run build' in ${resolve(root)} first (and edit no source while a benchmark runs).`);
  process.exit(2);
}

requireCurrentBuild();
