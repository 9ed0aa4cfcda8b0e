// Every secret of the policy can come inline, from its *_file key or from its environment
// variable, exactly one of them; errors name file:line and the key (src/policy/secrets.ts).
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { parsePolicy, formatError, type LoadResult } from '../../../src/policy/load.js';
import { SECRET_ENV } from '../../../src/policy/secrets.js';
import { scratchDir, writeFile } from '../../helpers/procs.js';

const BASE = `listen:
  - { name: peer-udp, side: peer, transport: udp, address: 127.0.0.1, port: 5060 }
  - { name: core-udp, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core:
  targets: [ "sip:127.0.0.1:5090" ]
`;
const TOKEN = 'admin-token-0123456789abcdef';

function load(extra: string, dir: string, env: NodeJS.ProcessEnv = {}): LoadResult {
  return parsePolicy(BASE + extra, join(dir, 'policy.yaml'), { checkFiles: true, env });
}
function ok(r: LoadResult) {
  if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
  return r.policy;
}
function errors(r: LoadResult): string[] {
  if (r.ok) throw new Error('expected errors, policy loaded');
  return r.errors.map(formatError);
}

describe('secrets from files and the environment', () => {
  it('admin token: inline, file (first line, trimmed, relative to the policy), environment', () => {
    const dir = scratchDir('secrets-');
    writeFile(dir, 'token', `  ${TOKEN}  \nsecond line ignored\n`);
    expect(ok(load(`ops: { admin_token: ${TOKEN} }\n`, dir)).ops.admin_token).toBe(TOKEN);
    expect(ok(load('ops: { admin_token_file: token }\n', dir)).ops.admin_token).toBe(TOKEN);
    expect(ok(load('', dir, { [SECRET_ENV.adminToken]: TOKEN })).ops.admin_token).toBe(TOKEN);
    expect(ok(load('', dir)).ops.admin_token).toBeUndefined();
  });

  it('admin token: two sources, a short token and a missing file are errors at the key', () => {
    const dir = scratchDir('secrets-');
    writeFile(dir, 'token', `${TOKEN}\n`);
    writeFile(dir, 'short', 'tooshort\n');
    writeFile(dir, 'empty', '\n');
    const file = join(dir, 'policy.yaml');
    expect(errors(load('ops: { admin_token_file: token }\n', dir, { PEERGATE_ADMIN_TOKEN: TOKEN })))
      .toEqual([`${file}:6:26: ops.admin_token_file: the admin token is given more than once (admin_token_file and $PEERGATE_ADMIN_TOKEN); keep one`]);
    expect(errors(load('ops: { admin_token_file: short }\n', dir))).toEqual([`${file}:6:26: ops.admin_token_file: admin token must be at least 16 characters`]);
    expect(errors(load('ops: { admin_token_file: empty }\n', dir))[0]).toContain(`ops.admin_token_file: ${join(dir, 'empty')} is empty`);
    expect(errors(load('ops: { admin_token_file: nope }\n', dir))[0]).toContain(`ops.admin_token_file: file not found: ${join(dir, 'nope')}`);
    // Without checkFiles (plain `peergate check`), a missing secret file is not an error.
    expect(parsePolicy(`${BASE}ops: { admin_token_file: nope }\n`, file, { env: {} }).ok).toBe(true);
  });

  it('wire secret: file or environment satisfy an external drachtio-server; none is an error', () => {
    const dir = scratchDir('secrets-');
    writeFile(dir, 'wire', 'cymru\n');
    const external = 'engine: { embedded: false, wire: { address: 127.0.0.1, port: 9022 } }\n';
    expect(ok(load('engine: { embedded: false, wire: { secret_file: wire } }\n', dir)).engine.wire.secret).toBe('cymru');
    expect(ok(load(external, dir, { PEERGATE_WIRE_SECRET: 'from-env' })).engine.wire.secret).toBe('from-env');
    expect(errors(load(external, dir))).toEqual([
      `${join(dir, 'policy.yaml')}:6:34: engine.wire.secret: an external drachtio-server (embedded: false) needs the wire secret (secret, secret_file or $PEERGATE_WIRE_SECRET)`,
    ]);
    expect(errors(load('engine: { wire: { secret: a, secret_file: wire } }\n', dir))[0]).toContain('engine.wire.secret_file: the wire secret is given more than once');
    // An empty variable counts as unset (a container's `FOO=` default).
    expect(ok(load('', dir, { PEERGATE_WIRE_SECRET: '' })).engine.wire.secret).toBeUndefined();
  });

  it('TLS key passphrase: the value from the file decrypts an encrypted key', () => {
    const dir = scratchDir('secrets-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', join(dir, 'sbe.key'),
      '-out', join(dir, 'sbe.pem'), '-days', '1', '-subj', '/CN=sbe.test', '-passout', 'pass:s3cret phrase'], { stdio: 'ignore' });
    writeFile(dir, 'pass', 's3cret phrase\n');
    const tls = 'tls: { certificate: sbe.pem, key: sbe.key, require_client_cert: false, key_passphrase_file: pass }\n';
    const policy = ok(load(tls, dir));
    expect(policy.tls!.key_passphrase).toBe('s3cret phrase');
    const key = readFileSync(policy.tls!.key);
    const cert = readFileSync(policy.tls!.certificate);
    expect(() => createSecureContext({ key, cert, passphrase: policy.tls!.key_passphrase })).not.toThrow();
    expect(() => createSecureContext({ key, cert, passphrase: 'wrong' })).toThrow();
    const fromEnv = ok(load(tls.replace(', key_passphrase_file: pass', ''), dir, { PEERGATE_TLS_KEY_PASSPHRASE: 's3cret phrase' }));
    expect(fromEnv.tls!.key_passphrase).toBe('s3cret phrase');
  });

  it('Redis password: written where the url, sentinel or cluster mode reads it, percent-encoded in a url', () => {
    const dir = scratchDir('secrets-');
    writeFile(dir, 'redis-pass', 'p@ss:w/rd%#\n');
    const url = ok(load('store: { redis: { url: "redis://127.0.0.1:6379/2", password_file: redis-pass } }\n', dir)).store.redis!;
    expect(new URL(url.url!).password).toBe(encodeURIComponent('p@ss:w/rd%#'));
    expect(decodeURIComponent(new URL(url.url!).password)).toBe('p@ss:w/rd%#');
    const sentinel = ok(load('store: { redis: { sentinel: { sentinels: ["127.0.0.1:26379"], name: m } } }\n', dir, { PEERGATE_REDIS_PASSWORD: 'pw' })).store.redis!;
    expect(sentinel.sentinel!.password).toBe('pw');
    const cluster = ok(load('store: { redis: { cluster: { nodes: ["127.0.0.1:7000"] }, password: pw2 } }\n', dir)).store.redis!;
    expect(cluster.cluster!.password).toBe('pw2');
    expect(errors(load('store: { redis: { url: "redis://:x@127.0.0.1:6379", password: y } }\n', dir))[0])
      .toContain('store.redis.password: the Redis url already has a password; keep one');
    expect(errors(load('store: { redis: { cluster: { nodes: ["127.0.0.1:7000"], password: a }, password_file: redis-pass } }\n', dir))[0])
      .toContain('store.redis.password_file: store.redis.cluster.password is also set; keep one');
  });
});
