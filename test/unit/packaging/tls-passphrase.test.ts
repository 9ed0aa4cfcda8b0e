// An encrypted TLS key with its passphrase from a file (tls.key_passphrase_file): the engine's
// TLS listener comes up with it and completes a handshake; a wrong passphrase is refused at
// start in peergate's words.
import { describe, it, expect, afterEach } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parsePolicy, formatError } from '../../../src/policy/load.js';
import { startEngine, type Engine } from '../../../src/engine/engine.js';
import { freePort, scratchDir, writeFile } from '../../helpers/procs.js';

let engine: Engine | undefined;
afterEach(async () => { await engine?.close(); engine = undefined; });

function material() {
  const dir = scratchDir('tls-pass-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', join(dir, 'sbe.key'),
    '-out', join(dir, 'sbe.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-passout', 'pass:correct horse'], { stdio: 'ignore' });
  expect(readFileSync(join(dir, 'sbe.key'), 'utf8')).toContain('ENCRYPTED');
  return dir;
}

async function engineFor(dir: string, passFile: string) {
  const port = await freePort();
  const text = `listen:
  - { name: peer-tls, side: peer, transport: tls, address: 127.0.0.1, port: ${port} }
  - { name: core-udp, side: core, transport: udp, address: 127.0.0.1, port: ${await freePort()} }
tls: { certificate: sbe.pem, key: sbe.key, key_passphrase_file: ${passFile}, require_client_cert: false }
core: { targets: [ "sip:127.0.0.1:5090" ] }
`;
  const r = parsePolicy(text, join(dir, 'policy.yaml'), { checkFiles: true, env: {} });
  if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
  const t = r.policy.tls!;
  const start = startEngine({
    contacts: [`sips:127.0.0.1:${port};transport=tls`],
    wire: { address: '127.0.0.1', port: await freePort(), secret: 'test-secret' },
    tls: { key: readFileSync(t.key), cert: readFileSync(t.certificate), passphrase: t.key_passphrase, requireClientCert: false },
  });
  return { port, start };
}

describe('encrypted TLS key', () => {
  it('starts with the passphrase from key_passphrase_file and completes a handshake', async () => {
    const dir = material();
    writeFile(dir, 'pass', 'correct horse\n');
    const { port, start } = await engineFor(dir, 'pass');
    engine = await start;
    const peer = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(join(dir, 'sbe.pem')) }, () => {
        resolve(String(s.getPeerCertificate().subject.CN));
        s.destroy();
      });
      s.once('error', reject);
    });
    expect(peer).toBe('localhost');
  });

  it('a wrong passphrase fails the start with a clear error', async () => {
    const dir = material();
    writeFile(dir, 'pass', 'wrong horse\n');
    const { start } = await engineFor(dir, 'pass');
    await expect(start).rejects.toThrow(/invalid TLS material/);
  });
});
