// bin/peergate.js picks the compiled build when it is current, the TypeScript sources (tsx)
// when they are newer or there is no build, and says what to do when it can run neither.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../../helpers/procs.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

/** A fake checkout: the real bin/peergate.js, a src/ and a dist/ that say which one ran. */
function checkout(opts: { dist: boolean; src: boolean; nodeModules: boolean }): string {
  const dir = scratchDir('bin-');
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin', 'peergate.js'), join(dir, 'bin', 'peergate.js'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  if (opts.src) {
    mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
    // TypeScript only tsx can load (a type annotation), so running it proves tsx was used.
    writeFileSync(join(dir, 'src', 'cli', 'main.ts'), "const from: string = 'src';\nconsole.log(from, process.argv.slice(2).join(' '));\n");
  }
  if (opts.dist) {
    mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'cli', 'main.js'), "console.log('dist', process.argv.slice(2).join(' '));\n");
  }
  if (opts.nodeModules) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}
const run = (dir: string) => spawnSync(process.execPath, [join(dir, 'bin', 'peergate.js'), 'check', 'x.yaml'], { encoding: 'utf8', timeout: 30_000 });
const age = (file: string, secondsAgo: number) => { const t = new Date(Date.now() - secondsAgo * 1000); utimesSync(file, t, t); };

describe('bin/peergate.js', () => {
  it('runs dist/ when it is newer than every source, passing the arguments', () => {
    const dir = checkout({ dist: true, src: true, nodeModules: true });
    age(join(dir, 'src', 'cli', 'main.ts'), 60);
    const r = run(dir);
    expect(r.stdout).toBe('dist check x.yaml\n');
    expect(r.status).toBe(0);
  });

  it('runs the sources through tsx when a source is newer than the build (an edit after `npm run build`)', () => {
    const dir = checkout({ dist: true, src: true, nodeModules: true });
    age(join(dir, 'dist', 'cli', 'main.js'), 60);
    expect(run(dir).stdout).toBe('src check x.yaml\n');
  });

  it('runs dist/ with no sources at all (the Debian package and the image ship none)', () => {
    const dir = checkout({ dist: true, src: false, nodeModules: false });
    expect(run(dir).stdout).toBe('dist check x.yaml\n');
  });

  it('without a build and without tsx, says what to run in one line and exits 1', () => {
    const dir = checkout({ dist: false, src: true, nodeModules: false });
    const r = run(dir);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^peergate: no current build in .*dist and tsx is not installed: run 'npm run build'/)]);
  });
});
