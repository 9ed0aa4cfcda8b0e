// A real userspace rtpengine for tests: started on loopback with free ports, stopped by PID,
// restartable on the same ng port, and asked over ng how many sessions it holds.
import { createRequire } from 'node:module';
import { freePort, scratchDir, startProcess, waitFor, type Proc } from './procs.js';

const require = createRequire(import.meta.url);
const { Client } = require('rtpengine-client') as {
  Client: new (o: Record<string, unknown>) => {
    on(e: 'error', cb: (e: unknown) => void): void;
    ping(d: { host: string; port: number }): Promise<Record<string, any>>;
    list(d: { host: string; port: number }, o: Record<string, unknown>): Promise<Record<string, any>>;
    query(d: { host: string; port: number }, o: Record<string, unknown>): Promise<Record<string, any>>;
    close(): void;
  };
};

export interface TestRtpengine {
  ngPort: number;
  /** host:port for the media stage's `rtpengine` list. */
  address: string;
  proc: Proc;
  portMin: number;
  portMax: number;
  /** Call-ids rtpengine currently holds. */
  calls(): Promise<string[]>;
  /** Raw ng query for a call. */
  query(callId: string): Promise<Record<string, any>>;
  /** Kill it (SIGKILL, as a crash would). */
  kill(): Promise<void>;
  /** Start again on the same ng port and port range. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

/** Spawn rtpengine and wait for its ng pong (bounded). */
export async function startRtpengine(opts: { portSpan?: number } = {}): Promise<TestRtpengine> {
  const ngPort = await freePort();
  const span = opts.portSpan ?? 60;
  // A random even base in 20000–59999: tests of other areas use the OS's ephemeral range.
  const portMin = 20000 + 2 * Math.floor(Math.random() * (20000 - span));
  const portMax = portMin + span - 1;
  const dir = scratchDir('rtpengine-');
  const args = [
    '--config-file=none', '--foreground', '--log-stderr', '--log-level=6', '--table=-1',
    '--interface=127.0.0.1', `--listen-ng=127.0.0.1:${ngPort}`, `--port-min=${portMin}`, `--port-max=${portMax}`,
    '--num-threads=2', '--delete-delay=0', '--timeout=60', `--pidfile=${dir}/rtpengine.pid`,
  ];
  const client = new Client({ localAddress: '127.0.0.1', localPort: 0, timeout: 500 });
  client.on('error', () => undefined);
  const ng = { host: '127.0.0.1', port: ngPort };
  let proc = startProcess('/usr/bin/rtpengine', args, { cwd: dir });
  let prevOut = '';
  const ready = async () => {
    await waitFor(async () => (await client.ping(ng)).result === 'pong', 5000, 50, `rtpengine ng pong on ${ngPort}`);
  };
  await ready();
  const handle: TestRtpengine = {
    ngPort, portMin, portMax,
    address: `127.0.0.1:${ngPort}`,
    get proc() { return proc; },
    async calls() {
      const r = await client.list(ng, { limit: 1000 });
      return (r.calls ?? []) as string[];
    },
    query: (callId) => client.query(ng, { 'call-id': callId }),
    async kill() { await proc.stop('SIGKILL'); },
    async restart() {
      await proc.stop();
      prevOut += proc.output();
      proc = startProcess('/usr/bin/rtpengine', args, { cwd: dir });
      await ready();
    },
    async stop() {
      await proc.stop();
      client.close();
    },
    log: () => prevOut + proc.output(),
  };
  return handle;
}
