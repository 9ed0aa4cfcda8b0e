// A real redis-server on a random loopback port for tests: nothing written to disk, started
// and stopped by PID, restartable on the same port (to test outages and recovery).
import { createConnection } from 'node:net';
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
