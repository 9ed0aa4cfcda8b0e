// The command line an operator meets: --version, usage on a bare call, a failed start in one
// line without a stack trace, and secrets taken from files and the environment by a running
// peergate (a real Redis with a password; the admin API behind a token from a file).
import { describe, it, expect, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createConnection, createServer, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { listener, PEERGATE_BIN, startPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { freePorts, scratchDir, startProcess, stopAll, waitFor, waitForTcp, writeFile } from '../helpers/procs.js';

const ROOT = join(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function peergate(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [PEERGATE_BIN, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A minimal runnable policy: loopback listeners on the given ports, no media relay. */
function policy(ports: { sip: number; core: number; ops: number }, extra: Record<string, unknown> = {}): Record<string, any> {
  return {
    listen: [listener('peer-udp', ports.sip), listener('core-udp', ports.core)],
    core: { targets: [`sip:127.0.0.1:${ports.core + 1}`] },
    media: { anchoring: false },
    log: { level: 'warn' },
    ...extra,
    ops: { address: '127.0.0.1', port: ports.ops, ...((extra.ops as object | undefined) ?? {}) },
  };
}

/** CONFIG SET requirepass over RESP (the helper's readiness PING must run before a password is set). */
function setRedisPassword(port: number, password: string): Promise<void> {
  const args = ['CONFIG', 'SET', 'requirepass', password];
  const cmd = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.setTimeout(2000, () => { c.destroy(); reject(new Error('redis CONFIG SET timed out')); });
    c.once('error', reject);
    c.once('connect', () => c.write(cmd));
    c.once('data', (d) => { c.destroy(); if (d.toString().startsWith('+OK')) resolve(); else reject(new Error(d.toString())); });
  });
}

let redis: TestRedis | undefined;
let blocker: Server | undefined;
afterEach(async () => {
  await stopAll();
  await redis?.stop();
  redis = undefined;
  await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
  blocker = undefined;
});

describe('peergate command line', () => {
  it('--version prints the package version', () => {
    const r = peergate(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `peergate ${VERSION}\n`, stderr: '' });
  });

  it('bare `peergate` prints usage to stderr and exits 2; an unknown command too', () => {
    const bare = peergate([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toMatch(/^usage: peergate <command>/);
    for (const c of ['start', 'check', 'engine', 'certs']) expect(bare.stderr).toContain(`  ${c} `);
    const unknown = peergate(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^peergate: unknown command 'frobnicate'/);
  });

  it('a start that fails (ops port taken) says why in one line, no stack trace, exit 1', async () => {
    const [sip, core, ops] = await freePorts(3);
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(ops, '127.0.0.1', r));
    const dir = scratchDir('cli-fail-');
    // The default warm-up, and info lines: the ops server opens after the warm-up, yet a taken
    // port fails the start before any warm-up call.
    const file = writeFile(dir, 'policy.yaml', stringify(policy({ sip: sip!, core: core!, ops: ops! }, { log: { level: 'info' }, warmup: {} })));
    const r = peergate(['start', '--policy', file]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^peergate start: ops listen 127\\.0\\.0\\.1:${ops}: .*(EADDRINUSE|in use)`));
    expect(r.stdout).not.toContain('warm-up');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    // PEERGATE_DEBUG brings the stack back for a bug report.
    const debug = peergate(['start', '--policy', file], { PEERGATE_DEBUG: '1' });
    expect(debug.code).toBe(1);
    expect(debug.stderr).toMatch(/^\s+at /m);
  });

  it('a SIP port in use fails the start before the warm-up, in one line naming it, exit 1', async () => {
    const [sip, core, ops] = await freePorts(3);
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(sip, '127.0.0.1', r));
    try {
      const file = writeFile(scratchDir('cli-sip-taken-'), 'policy.yaml', stringify(policy({ sip: sip!, core: core!, ops: ops! }, { log: { level: 'info' }, warmup: {} })));
      const r = peergate(['start', '--policy', file]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^peergate start: udp listen 127\\.0\\.0\\.1:${sip}: bind EADDRINUSE`))]);
      // Found before the warm-up: no warm-up call placed, no worker's B2BUA asked to attach.
      expect(r.stdout).not.toContain('warm-up');
    } finally {
      taken.close();
    }
  });

  it('a bad PEERGATE_HEAP_GROWING_PERCENT stops the start with one line naming it, exit 2', () => {
    const r = peergate(['start'], { PEERGATE_HEAP_GROWING_PERCENT: 'lots' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['peergate start: PEERGATE_HEAP_GROWING_PERCENT must be an integer from 0 (V8\'s own sizing) to 1000, got "lots"']);
  });

  it('PEERGATE_WORKER_NODE_FLAGS that node refuses, or that are not options, stop the start with one line naming it, exit 2', () => {
    const refused = peergate(['start'], { PEERGATE_WORKER_NODE_FLAGS: '--max-semi-space-size=lots' });
    expect(refused.code).toBe(2);
    const lines = refused.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^peergate start: PEERGATE_WORKER_NODE_FLAGS: node refuses "--max-semi-space-size=lots": .*bad option/);
    const notOption = peergate(['start'], { PEERGATE_WORKER_NODE_FLAGS: 'semi=2' });
    expect(notOption.code).toBe(2);
    expect(notOption.stderr.trim().split('\n')).toEqual(['peergate start: PEERGATE_WORKER_NODE_FLAGS must be node options separated by spaces (--name or --name=value), got "semi=2"']);
  });

  it('a worker start or hang timeout that is not a number of seconds stops the start with one line naming it, exit 2', () => {
    // Which values are refused is test/unit/app/worker-flags.test.ts; here, that a refusal stops the start.
    const start = peergate(['start'], { PEERGATE_WORKER_START_TIMEOUT_S: '0' });
    expect(start.code).toBe(2);
    expect(start.stderr.trim().split('\n')).toEqual(['peergate start: PEERGATE_WORKER_START_TIMEOUT_S must be a number of seconds above 0 and at most 3600, got "0"']);
    const hang = peergate(['start'], { PEERGATE_WORKER_HANG_TIMEOUT_S: 'never' });
    expect(hang.code).toBe(2);
    expect(hang.stderr.trim().split('\n')).toEqual(['peergate start: PEERGATE_WORKER_HANG_TIMEOUT_S must be a number of seconds from 0 and at most 3600, got "never"']);
  });

  it('a start with a broken policy names file:line and key, no stack trace, exit 1', () => {
    const dir = scratchDir('cli-fail-');
    const file = writeFile(dir, 'policy.yaml', 'listen: []\ncore: { targets: [ "sip:127.0.0.1:5090" ] }\nops: { port: 70000 }\n');
    const r = peergate(['start', '--policy', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:3:`);
    expect(r.stderr).toContain('ops.port');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('secrets at run time: Redis password from the environment, admin token from a file', async () => {
    const password = 'red:is p@ss%word';
    redis = await startRedis();
    await setRedisPassword(redis.port, password);
    const [sip, core, ops] = await freePorts(3);
    const dir = scratchDir('cli-secrets-');
    writeFile(dir, 'admin-token', 'file-admin-token-0123456789\n');
    // fail_closed: /ready says whether the store (Redis, behind its password) is up.
    const p = policy({ sip: sip!, core: core!, ops: ops! }, {
      store: { redis: { url: `redis://127.0.0.1:${redis.port}/0`, on_failure: 'fail_closed' } },
      ops: { admin_token_file: 'admin-token' },
    });
    // startPeergate adds an inline admin_token; this policy takes it from the file instead.
    const running = await startPeergate({ ...p, ops: { ...p.ops, admin_token: undefined } }, { dir, env: { PEERGATE_REDIS_PASSWORD: password } });
    const ready = await fetch(`http://127.0.0.1:${ops}/ready`);
    expect(ready.status).toBe(200);
    const base = `http://127.0.0.1:${ops}/admin/peers`;
    expect((await fetch(base, { headers: { authorization: 'Bearer file-admin-token-0123456789' } })).status).toBe(200);
    expect((await fetch(base, { headers: { authorization: 'Bearer wrong-token-0123456789abc' } })).status).toBe(401);
    // The token file rotated (no signal): the new token is taken, the old one refused.
    writeFile(dir, 'admin-token', 'rotated-admin-token-0123456789\n');
    await waitFor(async () => (await fetch(base, { headers: { authorization: 'Bearer rotated-admin-token-0123456789' } })).status === 200, 5000, 100, 'the rotated token taken');
    expect((await fetch(base, { headers: { authorization: 'Bearer file-admin-token-0123456789' } })).status).toBe(401);
    await running.stop();

    // The same policy without the password: Redis refuses the connection, so not ready.
    const [sip2, core2, ops2] = await freePorts(3);
    const q = policy({ sip: sip2!, core: core2!, ops: ops2! }, { store: p.store, ops: { admin_token_file: 'admin-token' } });
    const file = writeFile(dir, 'nopass.yaml', stringify(q));
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.PEERGATE_REDIS_PASSWORD;
    const proc = startProcess(process.execPath, [PEERGATE_BIN, 'start', '--policy', file], { env });
    const status = await waitFor(async () => {
      if (proc.child.exitCode !== null) return `exited ${proc.child.exitCode}`;
      const r = await fetch(`http://127.0.0.1:${ops2}/ready`).catch(() => null);
      return r ? String(r.status) : undefined;
    }, 30_000, 100, 'peergate answering /ready');
    expect(status, proc.output().slice(-2000)).toBe('503');
    expect(await (await fetch(`http://127.0.0.1:${ops2}/ready`)).text()).toMatch(/store down/);
  });

  it('secrets at run time: the wire secret of an external engine from the environment', async () => {
    const [sip, core, ops, wire] = await freePorts(4);
    const secret = 'wire-secret-from-env';
    const engine = startProcess(process.execPath, [PEERGATE_BIN, 'engine', '--contact', `sip:127.0.0.1:${sip};transport=udp`, '--port', String(wire), '--secret', secret]);
    await waitForTcp(wire!, 30_000);
    const p = policy({ sip: sip!, core: core!, ops: ops! }, { engine: { embedded: false, wire: { address: '127.0.0.1', port: wire } } });
    const running = await startPeergate(p, { env: { PEERGATE_WIRE_SECRET: secret } });
    const ready = await (await fetch(`http://127.0.0.1:${ops}/ready`)).json() as { checks: Record<string, unknown> };
    expect(ready.checks.engine).toBe(true);
    await running.stop();

    // A different secret: the engine refuses the B2BUA and the start fails in one line.
    const dir = scratchDir('cli-wire-');
    const file = writeFile(dir, 'policy.yaml', stringify(p));
    const wrong = peergate(['start', '--policy', file], { PEERGATE_WIRE_SECRET: 'not-the-secret' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^peergate start: /)]);
    await engine.stop();
  });
});
