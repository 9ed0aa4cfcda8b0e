// Start real components (sipp, redis, rtpengine, kamailio, peergate) on loopback for tests,
// and stop exactly the processes we started, by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, createConnection } from 'node:net';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A port free on 127.0.0.1 for both UDP and TCP at the time of the call. */
// Ports come from below the kernel's ephemeral range (32768–60999 here) and below the
// rtpengine helpers' media ranges (20000+): a port the OS handed out as "free" (listen on 0) is
// an ephemeral port, which any process's next outgoing socket may take before the test binds it
// (a pool test lost a node to EADDRINUSE that way: another node's wire connection had it).
// Each vitest fork walks its own slice, from a random start, so parallel files do not collide.
const PORT_FLOOR = 10_000;
const SLICE = 2_500;
const slice = (Number(process.env.VITEST_POOL_ID ?? 1) - 1) % 4;
let nextPort = Math.floor(Math.random() * SLICE);

/** A TCP and UDP port on 127.0.0.1 that nothing holds right now. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_FLOOR + slice * SLICE + (nextPort++ % SLICE);
    const tcpFree = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!tcpFree) continue;
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port found');
}

/** User and system CPU of a running process so far, in seconds (/proc/<pid>/stat fields 14
 *  and 15, in USER_HZ = 100 ticks a second), and its minor page faults (field 10); throws when the process is gone. */
export function cpuSeconds(pid: number): { user: number; system: number; total: number; minorFaults: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = Number(f[11]) / 100;
  const system = Number(f[12]) / 100;
  return { user, system, total: user + system, minorFaults: Number(f[7]) };
}

/** The cgroup v1 root's run time of every task (ns): the scheduler's exact count. */
const CPUACCT_USAGE = '/sys/fs/cgroup/cpuacct/cpuacct.usage';
const exactMachine = existsSync(CPUACCT_USAGE);

/** The whole machine's busy CPU so far, in seconds over every core (every process, other users'
 *  too). Exact from the cgroup root where the kernel has it. Else /proc/stat's busy ticks (idle
 *  and iowait are not busy), a sample taken at each tick on a kernel with tick accounting: it
 *  misses processes that wake for a packet and sleep again between two ticks, as Kamailio's
 *  workers do at low load, and reads the machine less busy than its own processes. */
export function machineBusySeconds(): number {
  if (exactMachine) return Number(readFileSync(CPUACCT_USAGE, 'utf8').trim()) / 1e9;
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3]! - (f[4] ?? 0)) / 100;
}

/**
 * SIGSTOP `pid` and resolve once every thread of it is stopped (state T in /proc/<pid>/task/<tid>/stat).
 * kill() only queues the signal: the group stop starts when the thread the kernel picked runs,
 * and on a loaded machine another thread (rtpengine's ng thread) may meanwhile read and answer
 * a request sent after kill() returned. Bounded: rejects after `timeoutMs`.
 */
export async function stopProcessNow(pid: number, timeoutMs = 2000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = readdirSync(`/proc/${pid}/task`).map((t) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        return stat[stat.lastIndexOf(')') + 2];
      } catch { return 'T'; } // a thread that ended meanwhile
    });
    if (states.every((st) => st === 'T' || st === 't')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} not stopped after ${timeoutMs} ms (thread states ${states.join('')})`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A number from /proc/<pid>/status, e.g. `VmRSS` (kB) or `voluntary_ctxt_switches`; NaN when
 *  the field is absent. Throws when the process is gone. */
export function procStatus(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const at = text.indexOf(`\n${field}:`);
  return at < 0 ? NaN : Number.parseInt(text.slice(at + field.length + 2).trimStart(), 10);
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < count) out.add(await freePort());
  return [...out];
}

/** A fresh scratch directory under the OS temp dir. */
export function scratchDir(prefix = 'peergate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** stdout+stderr collected so far. */
  output(): string;
  /** Resolves with the exit code (or null when killed by a signal). */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const started = new Set<Proc>();

/** Spawn a program; its PID is recorded so `stopAll()` can stop it (and only it). */
export function startProcess(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { if (out.length < 4_000_000) out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { if (out.length < 4_000_000) out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => { out += `\nspawn error: ${err.message}`; resolve(-1); });
  });
  let done = false;
  void exited.then(() => { done = true; });
  const proc: Proc = {
    child,
    pid: child.pid ?? -1,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM', graceMs = 3000) {
      started.delete(proc);
      if (done || child.pid === undefined) return;
      try { process.kill(child.pid, signal); } catch { return; }
      const t = setTimeout(() => { if (!done) try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  started.add(proc);
  return proc;
}

/** Stop every process this test file started and has not stopped yet. */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((p) => p.stop()));
}

/** Something a test file started: a process or component (`stop()`), or a client (`close()`). */
export type Stoppable = { stop(): unknown } | { close(): unknown } | null | undefined;

/**
 * Stop `first` one after the other, in the order given (a peergate before the Redis or
 * rtpengine it uses, so it does not log their loss; each with its own grace time), then
 * stopAll(). `afterAll(() => stopInOrder(pg, redis))`.
 */
export async function stopInOrder(...first: Stoppable[]): Promise<void> {
  for (const s of first) {
    if (s) await ('stop' in s ? s.stop() : s.close());
  }
  await stopAll();
}

/** A process's exit code (null when a signal ended it), or 'still running' once `ms` have passed. */
export function exitWithin(proc: Proc, ms: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((res) => { timer = setTimeout(() => res('still running'), ms); });
  return Promise.race([proc.exited, late]).finally(() => clearTimeout(timer));
}

/** The state letter and parent of a process from /proc/<pid>/stat ("pid (comm) state ppid …":
 *  comm may hold spaces, so read after its closing parenthesis); undefined when it is gone. */
function statOf(pid: number | string): { state: string; ppid: number } | undefined {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: f[0]!, ppid: Number(f[1]) };
}

/** PIDs of a process's live children (e.g. the embedded rtpengine or the B2BUA workers a
 *  peergate node started); a zombie waiting for its reaper is not counted. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = statOf(d);
    if (s !== undefined && s.ppid === pid && s.state !== 'Z') out.push(Number(d));
  }
  return out;
}

/** One line per process of `pid`'s tree (it and its children): state, kernel wait channel, CPU
 *  seconds so far, and the machine's load average. What a process that never got ready was doing
 *  (stuck in a wait, or starved of CPU) when a test gave up on it. */
export function describeTree(pid: number): string {
  const line = (p: number): string => {
    try {
      const s = statOf(p);
      let wchan = '';
      try { wchan = readFileSync(`/proc/${p}/wchan`, 'utf8'); } catch { /* not readable */ }
      const cpu = cpuSeconds(p);
      return `pid ${p}: state ${s?.state ?? '?'}, waiting in ${wchan || '-'}, CPU ${cpu.user.toFixed(2)} s user + ${cpu.system.toFixed(2)} s system`;
    } catch {
      return `pid ${p}: gone`;
    }
  };
  let load = '';
  try { load = readFileSync('/proc/loadavg', 'utf8').trim(); } catch { /* no /proc */ }
  return [...[pid, ...childPids(pid)].map(line), `load average ${load}`].join('\n');
}

/** Whether process `pid` runs (a zombie does not). */
export function isRunning(pid: number): boolean {
  const s = statOf(pid);
  return s !== undefined && s.state !== 'Z';
}

/** Whether a peergate node's child runs the B2BUA worker's entry module (its other child: rtpengine). */
export function isWorkerProcess(pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('entry.'); } catch { return false; }
}

/** Poll `check` until it returns truthy or `timeoutMs` passes (bounded loop). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 25, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Resolves once a TCP listener accepts on 127.0.0.1:port. */
export function waitForTcp(port: number, timeoutMs = 10_000): Promise<boolean> {
  return waitFor(() => new Promise<boolean>((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  }), timeoutMs, 50, `tcp port ${port}`);
}

// ---------- SIPp ----------

export interface SippResult { code: number | null; successful: number; failed: number; output: string; statFile?: string }

/** Read `SuccessfulCall(C)` and `FailedCall(C)` from the last row of a sipp -trace_stat CSV. */
export function readSippStats(file: string): { successful: number; failed: number } {
  if (!existsSync(file)) return { successful: 0, failed: 0 };
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const head = (lines[0] ?? '').split(';');
  const last = (lines[lines.length - 1] ?? '').split(';');
  const col = (name: string) => Number(last[head.indexOf(name)] ?? 0);
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)') };
}

/** Run sipp to completion (client side) with a bounded global timeout. */
export async function runSipp(args: string[], opts: { dir?: string; timeoutS?: number; onStart?: (p: Proc) => void } = {}): Promise<SippResult> {
  const dir = opts.dir ?? scratchDir('sipp-');
  const statFile = join(dir, `stat-${Date.now()}-${Math.random().toString(16).slice(2)}.csv`);
  const t = opts.timeoutS ?? 30;
  const p = startProcess('sipp', [...args, '-nostdin', '-timeout', `${t}s`, '-timeout_error', '-trace_stat', '-stf', statFile, '-fd', '1'], { cwd: dir });
  opts.onStart?.(p);
  const code = await p.exited;
  started.delete(p);
  const s = readSippStats(statFile);
  return { code, ...s, output: p.output(), statFile };
}

/** SIPp's built-in uac from `sourceIp`: `n` calls to +15551230000 started at once, each held `holdMs`. */
export function heldCalls(target: string, sourceIp: string, n: number, holdMs: number, timeoutS = 30): Promise<SippResult> {
  return runSipp(['-sn', 'uac', target, '-i', sourceIp, '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-m', String(n), '-r', String(n), '-l', String(n), '-d', String(holdMs)], { timeoutS });
}

/** Start a long-running sipp (e.g. a UAS) in the background. */
export function startSipp(args: string[], dir?: string): Proc {
  return startProcess('sipp', [...args, '-nostdin'], { cwd: dir ?? scratchDir('sipp-') });
}

/** SIPp's built-in uas on `ip`:`port` over UDP (`-t u1`), in the background; `extra` adds options (`-trace_msg`, `-m 1`...). */
export function startUas(ip: string, port: number, o: { dir?: string; extra?: string[] } = {}): Proc {
  return startSipp(['-sn', 'uas', '-i', ip, '-p', String(port), '-t', 'u1', ...(o.extra ?? [])], o.dir);
}

/** Write a file in `dir` and return its path. */
export function writeFile(dir: string, name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/**
 * Benchmarks: SIPp uac (127.0.0.2, no hold time) to `target` at each rate in turn for `seconds`;
 * the result is the highest rate whose calls all succeeded AND kept up: all done within the
 * step's duration plus 2 s (a saturated path queues calls and finishes late).
 */
export async function sweepRates(label: string, target: string, o: { rates: number[]; seconds: number; labelWidth?: number }): Promise<number> {
  let best = 0;
  for (const rate of o.rates) {
    const t0 = Date.now();
    const r = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
      '-r', String(rate), '-m', String(rate * o.seconds), '-l', String(rate * 4), '-d', '0', '-max_socket', '5000'], { timeoutS: o.seconds * 4 + 10 });
    const elapsedS = (Date.now() - t0) / 1000;
    const keptUp = elapsedS <= o.seconds + 2;
    const ok = r.failed === 0 && r.successful === rate * o.seconds && keptUp;
    console.log(`${label.padEnd(o.labelWidth ?? 9)} ${String(rate).padStart(5)} calls/s: ${r.successful} ok, ${r.failed} failed, ${elapsedS.toFixed(1)} s${ok ? '' : keptUp ? '  <- failures' : '  <- fell behind'}`);
    if (!ok) break;
    best = rate;
  }
  return best;
}
