// Run `peergate start` as a real process with a generated policy, for end-to-end tests.
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describeTree, freePorts, startProcess, scratchDir, writeFile, type Proc } from './procs.js';
import { PRIMARY_NODE_FLAGS } from '../../src/app/heap.js';

const ROOT = join(import.meta.dirname, '..', '..');
export const PEERGATE_BIN = join(ROOT, 'bin', 'peergate.js');

export interface RunningPeergate {
  proc: Proc;
  dir: string;
  policyPath: string;
  opsPort: number;
  adminToken: string;
  metrics(): Promise<string>;
  /** Value of one sample, e.g. metric('peergate_calls_total', {result: 'answered'}); sums matching samples. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  admin(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

/** Where the end-to-end tests put the two sides on loopback: a peer's SBE (peer `carrier-a`
 *  sends from here) and the core (SIPp's UAS listens here). */
export const PEER_IP = '127.0.0.2';
export const CORE_IP = '127.0.0.3';

/** Start peergate with `policy` (an object written as YAML). `ops.port` must be set by the caller. */
export async function startPeergate(policy: Record<string, any>, opts: { dir?: string; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number; nodeArgs?: string[]; /** Another checkout's bin/peergate.js (benches comparing two). */ bin?: string } = {}): Promise<RunningPeergate> {
  const dir = opts.dir ?? scratchDir('peergate-run-');
  // No warm-up unless the policy has the key (`warmup: {}` is the default's 1,500 calls): its 3 s
  // would be paid by every start in the suite (test/integration/warmup.test.ts tests it).
  const full = { ...policy, warmup: policy.warmup ?? { calls: 0 }, ops: { admin_token: ADMIN_TOKEN, ...(policy.ops ?? {}) } };
  const policyPath = writeFile(dir, 'policy.yaml', stringify(full));
  const opsPort: number = full.ops.port;
  // The node options the systemd unit, the container and `make start` give the primary (PRIMARY_NODE_FLAGS), so tests run what operators run.
  const proc = startProcess(process.execPath, [...PRIMARY_NODE_FLAGS, ...(opts.nodeArgs ?? []), opts.bin ?? PEERGATE_BIN, 'start', '--policy', policyPath], { cwd: dir, env: { ...process.env, ...opts.env } });
  const base = `http://127.0.0.1:${opsPort}`;
  // Bounded: the ready timeout; an early exit fails at once, with the process's own words. Longer
  // than a worker's start timeout (30 s), so a worker that does not start shows as the node's own
  // error (which stage it was stuck in) rather than as silence.
  const readyTimeoutMs = opts.readyTimeoutMs ?? 40_000;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`peergate exited early (code ${proc.child.exitCode}):\n${proc.output().slice(-4000)}`);
    const r = await fetch(`${base}/ready`).catch(() => null);
    if (r?.status === 200) break;
    const body = r ? await r.text().catch(() => '') : 'no answer';
    if (Date.now() > deadline) {
      const tree = proc.child.pid === undefined ? '' : describeTree(proc.child.pid);
      await proc.stop('SIGKILL');
      throw new Error(`peergate not ready on ${base}/ready within ${readyTimeoutMs} ms (last answer: ${body}):\n${proc.output().slice(-4000)}\n${tree}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  const metrics = async () => (await fetch(`${base}/metrics`)).text();
  return {
    proc, dir, policyPath, opsPort, adminToken: ADMIN_TOKEN, metrics,
    async metric(name, labels = {}) {
      return sumMetric(await metrics(), name, labels);
    },
    admin: (path, init = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.headers ?? {}) } }),
    stop: () => proc.stop('SIGTERM', 5000),
  };
}

/** Sum of the samples of `name` whose labels include `labels` (Prometheus text format). */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const labelText = rest[0] === '{' ? rest.slice(1, rest.indexOf('}')) : '';
    const ok = Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`));
    if (ok) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/**
 * One `listen` entry on 127.0.0.1, named `<side>-<transport>` as the tests name them:
 * listener('peer-tls', port) → { name: 'peer-tls', side: 'peer', transport: 'tls', address: '127.0.0.1', port }.
 */
export function listener(name: `${'peer' | 'core'}-${'udp' | 'tcp' | 'tls'}`, port: number, more: Record<string, unknown> = {}): Record<string, unknown> {
  const [side, transport] = name.split('-') as [string, string];
  return { name, side, transport, address: '127.0.0.1', port, ...more };
}

/** Routes for calls from the core, one a called-number prefix: { '+44': 'carrier-a' } →
 *  [{ from: 'core', called_prefix: '+44', to: 'carrier-a' }], in the order given. */
export function coreRoutesByPrefix(to: Record<string, string>): Array<Record<string, unknown>> {
  return Object.entries(to).map(([prefix, peer]) => ({ from: 'core', called_prefix: prefix, to: peer }));
}

export interface TwoSidedPorts {
  /** UDP port of the peer-side listener on 127.0.0.1. */
  peerPort: number;
  /** UDP port of the core-side listener on 127.0.0.1. */
  corePort: number;
  /** The core target, e.g. `sip:127.0.0.3:5070`. */
  coreTarget: string;
  /** ops port; left out for a B2BUA run in-process (no ops server). */
  opsPort?: number;
  /** log level; left out with opsPort for an in-process B2BUA. */
  logLevel?: string;
  /** The source address of peer `carrier-a` (default 127.0.0.2). */
  peerIp?: string;
  /** More keys of peer `carrier-a` (targets, limits...). */
  peer?: Record<string, unknown>;
}

/**
 * The policy most end-to-end tests use: one UDP listener per side on 127.0.0.1, peer
 * `carrier-a` matched by its source address, routed to one core target. Top-level keys in
 * `extra` (media, sessions, peers, core, limits...) replace the defaults.
 */
export function twoSidedPolicy(p: TwoSidedPorts, extra: Record<string, unknown> = {}): Record<string, any> {
  return {
    listen: [listener('peer-udp', p.peerPort), listener('core-udp', p.corePort)],
    core: { targets: [p.coreTarget] },
    ...(p.opsPort === undefined ? {} : { ops: { port: p.opsPort } }),
    ...(p.logLevel === undefined ? {} : { log: { level: p.logLevel } }),
    peers: [{ id: 'carrier-a', match: { addresses: [`${p.peerIp ?? PEER_IP}/32`] }, ...p.peer }],
    routes: [{ from: 'peers', to: 'core' }],
    ...extra,
  };
}

/** `peergate start` with twoSidedPolicy on fresh ports; `target` is its peer-side address for SIPp. */
export async function startTwoSided(coreTarget: string, extra: Record<string, unknown> = {}, o: Pick<TwoSidedPorts, 'logLevel' | 'peerIp' | 'peer'> = {}): Promise<{ pg: RunningPeergate; target: string; peerPort: number }> {
  const [peerPort, corePort, opsPort] = await freePorts(3) as [number, number, number];
  const pg = await startPeergate(twoSidedPolicy({ logLevel: 'error', ...o, peerPort, corePort, opsPort, coreTarget }, extra));
  return { pg, target: `127.0.0.1:${peerPort}`, peerPort };
}

/** startTwoSided without media anchoring, log level warn, peer `carrier-a` at `peerIp` (target `sip:<peerIp>:5060`): for signalling-only tests. */
export function startSignallingTwoSided(coreTarget: string, peerIp: string): ReturnType<typeof startTwoSided> {
  return startTwoSided(coreTarget, { media: { anchoring: false } }, { logLevel: 'warn', peerIp, peer: { targets: [`sip:${peerIp}:5060`] } });
}
