// `peergate engine` as a process: drachtio-server's options, an app connects and answers, and
// SIGTERM closes it cleanly (exit 0).
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { freePort, runSipp, startProcess, stopAll, waitFor, waitForTcp } from '../helpers/procs.js';
import { ROOT, SECRET, SIPP_DIR, startApp } from '../helpers/engine.js';

const BIN = join(ROOT, 'bin', 'peergate.js');
afterEach(async () => { await stopAll(); });

describe('peergate engine (CLI)', () => {
  it('--help lists the drachtio-server options', async () => {
    const p = startProcess(process.execPath, [BIN, 'engine', '--help'], { cwd: ROOT });
    expect(await p.exited).toBe(0);
    for (const o of ['--contact', '--address', '--port', '--secret', '--key-file', '--cert-file', '--chain-file', '--client-ca-file', '--crl-file', '--require-client-cert', '--loglevel']) {
      expect(p.output()).toContain(o);
    }
  });

  it('bad contact: exit 1; unknown option: exit 2; both with a clear message', async () => {
    const p = startProcess(process.execPath, [BIN, 'engine', '--contact', 'sip:not-an-ip:5060', '--port', '1'], { cwd: ROOT });
    expect(await p.exited).toBe(1); // a bad contact fails at start-up
    expect(p.output()).toMatch(/invalid contact/);
    const q = startProcess(process.execPath, [BIN, 'engine', '--bogus'], { cwd: ROOT });
    expect(await q.exited).toBe(2);
    expect(q.output()).toMatch(/bogus/);
  });

  it('serves an app, answers OPTIONS through it, and exits 0 on SIGTERM', async () => {
    const sip = await freePort();
    const wire = await freePort();
    const eng = startProcess(process.execPath, [BIN, 'engine', '--contact', `sip:127.0.0.1:${sip};transport=udp,tcp`, '--port', String(wire), '--secret', SECRET], { cwd: ROOT });
    await waitForTcp(wire, 20_000);
    const app = startApp('uas.mjs', wire);
    await app.waitEvent((e) => e.event === 'connect', 15_000);
    await waitFor(() => eng.output().includes('engine listening'), 5000, 25, 'log line');
    await new Promise((r) => setTimeout(r, 300)); // routes registered
    const r = await runSipp(['-sf', join(SIPP_DIR, 'options-uac.xml'), `127.0.0.1:${sip}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1', '-m', '2'], { timeoutS: 15 });
    expect(r.successful).toBe(2);
    await app.stop();
    process.kill(eng.pid, 'SIGTERM');
    expect(await eng.exited).toBe(0);
    expect(eng.output()).toContain('engine stopped');
  });
});
