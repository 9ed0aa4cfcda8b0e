#!/usr/bin/env node
// Runs the compiled CLI (dist/, from `npm run build`; what the Debian package and the
// container ship) when it is there and not older than the sources; otherwise loads the
// TypeScript sources in this same process through tsx (a development dependency). Either
// way peergate is this process, so signals such as SIGHUP and SIGTERM reach it directly.
// The primary's node options (PRIMARY_NODE_FLAGS in src/app/heap.ts) are given by whoever starts
// node: the systemd unit, the container's ENTRYPOINT, `make start`.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli', 'main.js');
const sources = join(root, 'src');

// A build older than any source file would run yesterday's code after an edit: use the sources.
function buildIsCurrent() {
  if (!existsSync(built)) return false;
  if (!existsSync(sources)) return true;
  const builtAt = statSync(built).mtimeMs;
  for (const f of readdirSync(sources, { recursive: true })) {
    if (String(f).endsWith('.ts') && statSync(join(sources, String(f))).mtimeMs > builtAt) return false;
  }
  return true;
}

if (buildIsCurrent()) {
  await import(pathToFileURL(built).href);
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    console.error(`peergate: no current build in ${join(root, 'dist')} and tsx is not installed: run 'npm run build' (or 'npm ci' for development)`);
    process.exit(1);
  }
  register();
  await import(pathToFileURL(join(sources, 'cli', 'main.ts')).href);
}
