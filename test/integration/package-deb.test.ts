// `make deb` end to end: the package builds, lintian has nothing to say, and installed into a
// throwaway root (scripts/deb-install-check.sh: overlay of / in private namespaces) it creates
// the peergate user and its directories, its unit passes `systemd-analyze verify`, and
// `peergate check` and `peergate start` run as the peergate user and answer /health.
// Needs root (namespaces and mounts), like the CI machine; without it the test fails, it
// does not skip.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** `== name` sections of the install check's output. */
function sections(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of out.split(/^== /m).slice(1)) {
    const nl = part.indexOf('\n');
    m.set(part.slice(0, nl < 0 ? undefined : nl).trim(), nl < 0 ? '' : part.slice(nl + 1));
  }
  return m;
}
const value = (text: string | undefined, key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(text ?? '')?.[1];

describe('Debian package', () => {
  let deb = '';
  let lintian = '';
  let install = new Map<string, string>();

  beforeAll(async () => {
    expect(process.getuid?.(), 'the package test installs into namespaces and needs root').toBe(0);
    const built = await run('bash', [join(ROOT, 'scripts', 'build-deb.sh')], { cwd: ROOT, maxBuffer: 16 << 20, timeout: 240_000 });
    deb = join(ROOT, built.stdout.trim().split('\n').pop()!);
    // lintian and the install check read the same .deb: run them side by side.
    const [l, i] = await Promise.all([
      run('lintian', ['--fail-on', 'none', deb], { maxBuffer: 16 << 20, timeout: 240_000 }),
      run('bash', [join(ROOT, 'scripts', 'deb-install-check.sh'), deb], { maxBuffer: 16 << 20, timeout: 240_000 }),
    ]);
    lintian = l.stdout;
    install = sections(i.stdout);
  }, 420_000);

  it('is named for the version and architecture', () => {
    expect(deb).toMatch(new RegExp(`/build/deb/peergate_${VERSION.replace(/\./g, '\\.')}_[a-z0-9]+\\.deb$`));
  });

  it('has no lintian errors or warnings (nothing overridden)', () => {
    const tags = lintian.split('\n').filter((l) => /^[EWX]: /.test(l));
    expect(tags).toEqual([]);
  });

  it('creates the peergate system user, its directories and a private admin token', () => {
    expect(install.get('install')).toContain('Setting up peergate');
    const user = install.get('user')!.trim().split(':');
    expect(user[0]).toBe('peergate');
    expect(Number(user[2])).toBeLessThan(1000);
    expect(user[5]).toBe('/var/lib/peergate');
    expect(user[6]).toMatch(/nologin$/);
    const modes = install.get('modes')!;
    expect(modes).toContain('/var/lib/peergate peergate:peergate 750');
    expect(modes).toContain('/etc/peergate root:peergate 750');
    expect(modes).toContain('/etc/peergate/admin-token root:peergate 640');
    expect(modes).toContain('/usr/lib/peergate/bin/peergate.js root:root 755');
    // The receive-buffer ceiling for the UDP listeners (docs/operations.md, net.core.rmem_max).
    expect(modes).toContain('/usr/lib/sysctl.d/60-peergate.conf root:root 644');
    expect(modes).toContain('../lib/peergate/bin/peergate.js');
  });

  it('ships a unit that systemd-analyze verify accepts', () => {
    const unit = install.get('unit')!;
    expect(value(unit, 'verify-exit')).toBe('0');
    expect(unit.replace(/^verify-exit=.*$/m, '').trim()).toBe('');
  });

  it('runs check and start as the peergate user; /health, /ready and the admin API answer; SIGTERM stops it cleanly', () => {
    expect(install.get('version')!.trim()).toBe(`peergate ${VERSION}`);
    expect(install.get('check')).toContain('/etc/peergate/policy.yaml: OK');
    expect(value(install.get('check'), 'check-exit')).toBe('0');
    const start = install.get('start');
    expect(JSON.parse(value(start, 'health') || '{}')).toMatchObject({ status: 'ok' });
    expect(value(start, 'user')).toBe('peergate');
    expect(value(start, 'ready')).toBe('200');
    // The token postinst generated, read from admin_token_file by the service.
    expect(value(start, 'admin-with-token')).toBe('200');
    expect(value(start, 'admin-without-token')).toBe('401');
    expect(value(start, 'stop-exit')).toBe('0');
    // The compiled build found its native addon at the packaged path.
    expect(install.get('log')).toContain('"signature_verifier":"native"');
  });

  it('purge removes what it made', () => {
    const purge = install.get('purge')!;
    for (const f of ['/var/lib/peergate', '/etc/peergate/admin-token', '/usr/bin/peergate', '/usr/lib/peergate']) expect(purge).toContain(`gone: ${f}`);
    expect(install.has('done')).toBe(true);
  });
});
