// A real redis-server on a random loopback port for tests: nothing written to disk, started
// and stopped by PID, restartable on the same port (to test outages and recovery).
import { createConnection } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, scratchDir, startProcess, waitFor, type Proc } from './procs.js';

export interface TestRedis {
  port: number;
  url: string;
  proc: Proc;
  /** Stop (SIGTERM; SIGKILL with `hard`) and wait for the exit. */
  stop(hard?: boolean): Promise<void>;
  /** Start again on the same port, empty (no persistence), like a crashed Redis that came back. */
  restart(): Promise<void>;
  /** Pause / resume the process (a hung Redis: connected, never answering). */
  pause(): void;
  resume(): void;
}

/** One RESP round trip without a client library (PING until PONG). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => { c.destroy(); resolve(ok); };
    c.setTimeout(500, () => done(false));
    c.once('error', () => done(false));
    c.once('connect', () => c.write('PING\r\n'));
    c.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

function spawnRedis(port: number, dir: string, extra: string[]): Proc {
  return startProcess('/usr/bin/redis-server', [
    '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--protected-mode', 'yes', '--dir', dir, '--logfile', '', '--loglevel', 'warning',
    ...extra,
  ]);
}

export async function startRedis(extra: string[] = []): Promise<TestRedis> {
  const port = await freePort();
  const dir = scratchDir('redis-');
  const r: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc: spawnRedis(port, dir, extra),
    async stop(hard = false) { await r.proc.stop(hard ? 'SIGKILL' : 'SIGTERM'); },
    async restart() {
      await r.proc.stop();
      r.proc = spawnRedis(port, dir, extra);
      await waitFor(() => ping(port), 5000, 20, `redis on ${port}`);
    },
    pause() { process.kill(r.proc.pid, 'SIGSTOP'); },
    resume() { process.kill(r.proc.pid, 'SIGCONT'); },
  };
  await waitFor(() => ping(port), 5000, 20, `redis on ${port}`);
  return r;
}

export interface TestRedisCluster {
  /** "127.0.0.1:port" of every master. */
  nodes: string[];
  procs: Proc[];
}

/** Three masters, no replicas, slots spread by redis-cli --cluster create; ready when cluster_state:ok. */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const ports: number[] = [];
  // Cluster bus ports are port + 10000: pick ports whose bus port is also free.
  while (ports.length < 3) {
    const p = await freePort();
    if (p + 10000 <= 65535 && !ports.includes(p)) ports.push(p);
  }
  const dir = scratchDir('redis-cluster-');
  const procs = ports.map((p) => spawnRedis(p, dir, [
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`, '--cluster-node-timeout', '2000',
  ]));
  await Promise.all(ports.map((p) => waitFor(() => ping(p), 5000, 20, `redis cluster node ${p}`)));
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  const create = startProcess('/usr/bin/redis-cli', ['--cluster', 'create', ...nodes, '--cluster-yes']);
  const code = await create.exited;
  if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}): ${create.output()}`);
  await waitFor(async () => {
    const states = await Promise.all(ports.map((p) => info(p, 'CLUSTER INFO')));
    return states.every((s) => s.includes('cluster_state:ok'));
  }, 10_000, 100, 'cluster_state:ok');
  return { nodes, procs };
}

export interface TestRedisSentinel {
  master: TestRedis;
  /** "127.0.0.1:port" of the sentinel. */
  sentinel: string;
  name: string;
  proc: Proc;
}

/** One master and one sentinel monitoring it (quorum 1). */
export async function startRedisSentinel(name = 'pgmaster'): Promise<TestRedisSentinel> {
  const master = await startRedis();
  const port = await freePort();
  const dir = scratchDir('redis-sentinel-');
  writeFileSync(join(dir, 'sentinel.conf'), [
    `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
    `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
    `sentinel down-after-milliseconds ${name} 2000`,
  ].join('\n') + '\n');
  const proc = startProcess('/usr/bin/redis-server', [join(dir, 'sentinel.conf'), '--sentinel']);
  await waitFor(async () => (await info(port, `SENTINEL get-master-addr-by-name ${name}`)).includes(String(master.port)), 10_000, 50, 'sentinel knows the master');
  return { master, sentinel: `127.0.0.1:${port}`, name, proc };
}

/** Send one inline command and return the raw reply text (what arrived within 50 ms of its start; bounded by 1 s). */
function info(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    let out = '';
    let settled = false;
    const done = () => { if (settled) return; settled = true; c.destroy(); resolve(out); };
    setTimeout(done, 1000);
    c.once('error', done);
    c.once('connect', () => c.write(`${command}\r\n`));
    c.on('data', (d) => { if (out === '') setTimeout(done, 50); out += d.toString(); });
  });
}
