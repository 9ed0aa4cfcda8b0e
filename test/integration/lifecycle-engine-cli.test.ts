// `peergate engine` (the engine alone) re-reads its TLS files on SIGHUP: `openssl s_client`
// sees the new certificate, a connection opened before keeps going, broken files keep the
// running material.
import { describe, it, expect, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { freePort, startProcess, stopAll, waitFor, waitForTcp } from '../helpers/procs.js';
import { makePki, issueCert } from '../helpers/tls.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'peergate.js');

afterAll(() => stopAll());

function servedSubject(port: number): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`], { timeout: 10_000 }, (_e, out, err) => {
      resolve(/subject=([^\n]*)/.exec(out + err)?.[1] ?? 'none');
    });
    child.stdin?.end();
  });
}

describe('peergate engine: SIGHUP', () => {
  it('serves a new certificate after SIGHUP; an open connection keeps going; a broken file keeps the old one', async () => {
    const pki = makePki();
    const next = issueCert(pki.ca, 'server2');
    const cert = join(pki.dir, 'e-cert.pem');
    const key = join(pki.dir, 'e-key.pem');
    copyFileSync(pki.server.certFile, cert);
    copyFileSync(pki.server.keyFile, key);
    const [tls, wire] = [await freePort(), await freePort()];
    const eng = startProcess(process.execPath, [BIN, 'engine', '--contact', `sips:127.0.0.1:${tls};transport=tls`, '--port', String(wire), '--secret', 'cymru',
      '--key-file', key, '--cert-file', cert], { cwd: ROOT });
    await waitForTcp(tls, 15_000);
    expect(await servedSubject(tls)).toMatch(/CN ?= ?server\.sbc\.test/);
    const open = tlsConnect({ host: '127.0.0.1', port: tls, rejectUnauthorized: false });
    await new Promise<void>((r) => open.once('secureConnect', () => r()));
    let closed = false;
    open.on('close', () => { closed = true; });
    open.on('error', () => undefined);

    copyFileSync(next.certFile, cert);
    copyFileSync(next.keyFile, key);
    process.kill(eng.pid, 'SIGHUP');
    await waitFor(() => eng.output().includes('SIGHUP: TLS material reloaded'), 5000, 50, 'reload logged');
    expect(await servedSubject(tls)).toMatch(/CN ?= ?server2\.sbc\.test/);
    expect(closed).toBe(false);

    writeFileSync(cert, 'broken\n');
    process.kill(eng.pid, 'SIGHUP');
    await waitFor(() => eng.output().includes('SIGHUP: keeping the running TLS material'), 5000, 50, 'refusal logged');
    expect(await servedSubject(tls)).toMatch(/CN ?= ?server2\.sbc\.test/);
    open.destroy();
    await eng.stop('SIGTERM', 5000);
  }, 60_000);
});
