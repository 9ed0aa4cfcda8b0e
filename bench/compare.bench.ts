// Side by side with Kamailio (issue #18 item 4): the same SIPp load through Kamailio 5.6 as a
// stateful proxy with SBC checks (bench/compare/kamailio.cfg: pike, a dialog-profile session
// limit, topoh, record-routing) and through `peergate start` with its policy on, in one run.
//
//   nice -n 10 npx tsx bench/compare.bench.ts [--rates 300,600,1000,1500,2000,2500,3000]
//     [--seconds 8] [--recover-rate N (default 30% of the max)] [--recover-seconds 10] [--warmup-seconds 10] [--kamailio-children 4]
//     [--only kamailio|peergate] [--no-overload] [--no-shedding] [--media] [--tls [--stateless-relay]] [--tries 1]
//     [--ladders N (the ladder N times over on the same running systems; each ladder's maximum and their median,
//      which then stands for the system in the summary and sets its overload steps: one ladder is a sample on a shared machine)]
//     [--workers N|auto (peergate's `workers`; default: the policy's default)]
//     [--peergate-policy JSON (merged into peergate's policy, e.g. '{"overload":{"queue_high":0.05}}')]
//     [--overload-of N (2× and 3× of N calls/s instead of the ladder's max: runs of different code compare at the same rates)]
//     [--idle-before-overload S (no calls for S s before each overload step, as the full comparison leaves each system)]
//     [--node-args=FLAGS (node/V8 flags for peergate's primary, e.g. --node-args='--trace-gc'; its workers take PEERGATE_WORKER_NODE_FLAGS from the environment)]
//     [--peergate-output FILE (what peergate's processes printed, e.g. a --trace-gc log, written at its stop)]
//     [--trace-dir DIR (peergate: the loss and receive-queue gauges every 100 ms of each overload step, into DIR/NAME-Nx.csv,
//      and their summary printed; without it nothing scrapes peergate during the step: 10 scrapes a
//      second cost its processes ≈ 4–7 ms of CPU each, which Kamailio is not charged)]
//     [--pcap DIR (each overload step's loopback traffic to/from SIPp, captured by tcpdump into
//      DIR/NAME-RATE.pcap, and where the answered calls' setup time went, hop by hop: bench/compare/hops.ts)]
//     [--cpu-prof DIR (peergate's primary under node --cpu-prof, written to DIR at its exit; read
//      it with `npx tsx bench/profile-areas.ts DIR/CPU.*.cpuprofile --marker shed`)]
//
// uac (SIPp, 127.0.0.2) → system → uas (SIPp, 127.0.0.3), UDP, INVITE/200/ACK/BYE, no hold time
// (bench/compare/uac.xml, uas.xml). For each system:
// * its idle CPU (3 s, once it has run 25 s), then a warm-up at the lowest rate (--warmup-seconds, default 10, not counted);
// * the highest rate of the ladder that passes: every call answered and ended, no failure, all
//   done within the step plus 2 s, and p99 setup time (INVITE → 200, SIPp's rtd) < 100 ms.
//   Rates are interleaved across the systems, so machine load drifts over both alike; a system
//   leaves the ladder at its first failing step (after --tries attempts at it).
// * CPU ms per call at that rate: utime+stime from /proc/PID/stat of the system's process and
//   all its descendants (every Kamailio child; rtpengine's, with --media, reported apart), and
//   each process's share of a core (root first, then the busiest).
// * SIPp's own CPU (uac, uas: % of a core) per step, and in each overload window the system's
//   processes and SIPp's together against the machine's cores: what was left for the system.
// * overload at 2× and 3× that rate for one step each: goodput (200s to INVITE received during
//   the offered window, per second), p99 setup of the calls that were answered, and the time to
//   recover: when the overload window ends a second caller starts at --recover-rate; recovered
//   is the first second after which every second's calls are answered (≥ 90% of the rate) with
//   p99 < 100 ms.
// Calls refused (a 503, e.g. peergate's overload control shedding) are counted apart from calls
// that timed out; --no-shedding turns peergate's overload control off (policy `overload.enabled`).
// With --media both anchor media on a real rtpengine each (peergate's media stage; Kamailio's
// rtpengine module): the SDP offer/answer goes through rtpengine (no RTP is sent).
//
// With --tls the peer side is mutual TLS (RFC 6404 §4.5): Debian's SIPp has no TLS, so SIPp's UDP
// goes through a Kamailio relay (bench/compare/tls-relay.cfg, its CPU not counted) that opens one
// TLS connection with a client certificate to the system; the core side stays UDP.
//
// Everything started (SIPp, Kamailio, peergate, rtpengine) is stopped by PID at the end.
import './require-build.js';
import { parseArgs } from 'node:util';
import { existsSync, readdirSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { cpuSeconds, freePorts, machineBusySeconds, runSipp, scratchDir, startProcess, startSipp, stopAll, waitFor, writeFile, type Proc, type SippResult } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';
import { startRtpengine, type TestRtpengine } from '../test/helpers/rtpengine.js';
import { createFederationCa, createPeerCertificate, type Written } from '../src/pki/files.js';
import { describe, OverloadTrace, saveTrace, summarise, type TraceSummary } from './compare/overload-trace.js';
import { describeHops, hops, readPcap } from './compare/hops.js';
import { percentile, rtts, type Rtt } from './sipp-rtt.js';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '300,600,1000,1500,2000,2500,3000' },
    seconds: { type: 'string', default: '8' },
    'recover-rate': { type: 'string' },
    'recover-seconds': { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '10' },
    'kamailio-children': { type: 'string', default: '4' },
    only: { type: 'string' },
    'no-overload': { type: 'boolean', default: false },
    'no-shedding': { type: 'boolean', default: false },
    media: { type: 'boolean', default: false },
    tls: { type: 'boolean', default: false },
    'stateless-relay': { type: 'boolean', default: false },
    tries: { type: 'string', default: '1' },
    ladders: { type: 'string', default: '1' },
    workers: { type: 'string' },
    'peergate-policy': { type: 'string' },
    'overload-of': { type: 'string' },
    'trace-dir': { type: 'string' },
    'cpu-prof': { type: 'string' },
    pcap: { type: 'string' },
    'idle-before-overload': { type: 'string', default: '0' },
    'node-args': { type: 'string' },
    'peergate-output': { type: 'string' },
  },
});
const RATES = values.rates.split(',').map(Number).filter((r) => r > 0).sort((a, b) => a - b);
const SECONDS = Number(values.seconds);
/** Recovery caller's rate: fixed, or 30% of each system's own maximum (300 after 1,000). */
const RECOVER_RATE = values['recover-rate'] === undefined ? undefined : Number(values['recover-rate']);
const RECOVER_SECONDS = Number(values['recover-seconds']);
const KAM_CHILDREN = Number(values['kamailio-children']);
const MEDIA = values.media;
const TLS = values.tls;
/** Attempts per ladder step: on a shared machine a second try tells a blip from a limit. */
const TRIES = Number(values.tries);
/** Ladders run one after the other on the same systems; the median maximum represents each. */
const LADDERS = Number(values.ladders);
/** --overload-of: the overload steps' base rate, fixed (else each system's ladder maximum). */
const OVERLOAD_OF = values['overload-of'] === undefined ? undefined : Number(values['overload-of']);
/** --idle-before-overload S: no calls for S seconds before each overload step (in the full
 *  comparison the other system's steps leave each one idle ≈ 30–40 s before its own). */
const IDLE_BEFORE_OVERLOAD_S = Number(values['idle-before-overload']);
const HERE = join(import.meta.dirname, 'compare');
const UAC_XML = join(HERE, 'uac.xml');
const UAS_XML = join(HERE, 'uas.xml');
/** Limits high enough never to refuse the bench's calls: both systems pay for the checks. */
const LIMIT_CPS = 100_000;
const LIMIT_SESSIONS = 100_000;
// pike keeps its limit in 16 bits (modules/pike/ip_tree.h: `unsigned short max_hits`): 200,000
// became 3,392, and the bench saw Kamailio refuse most calls from 2,000 calls/s on.
// 60,000 per 2 s is 30,000 requests/s, 10,000 calls/s: above any rate of the ladder.
const PIKE_DENSITY = 60_000;
const P99_MAX_MS = 100;
// SIPp's sockets get the system's largest buffers (net.core.rmem_max): with its default ≈ 208 KiB
// the uac and uas, starved of CPU in the overload steps, dropped 30–60 datagrams a step in their own
// kernel queues, and each drop cost a call 500 ms of retransmission timer that the system under
// test did not cause.
const SIPP_BUFFERS = ['-buff_size', String(4 * 1024 * 1024)];
const IDLE_SECONDS = 3;
const IDLE_AFTER_S = 25;
// A fresh node process compiles for its first seconds (a 3-s warm-up left peergate's first
// counted step at p99 112 ms on an idle machine); both systems get the same warm-up.
const WARMUP_SECONDS = Number(values['warmup-seconds']);

if (!RATES.length || !(SECONDS > 0) || !(RECOVER_RATE === undefined || RECOVER_RATE > 0) || !(RECOVER_SECONDS > 0) || !(KAM_CHILDREN > 0) || !(TRIES >= 1) || !(Number.isInteger(LADDERS) && LADDERS >= 1 && LADDERS <= 20) || !(OVERLOAD_OF === undefined || OVERLOAD_OF > 0) || !(IDLE_BEFORE_OVERLOAD_S >= 0 && IDLE_BEFORE_OVERLOAD_S <= 600)) {
  throw new Error('bad options: --rates a,b,c (calls/s) --seconds N --recover-rate N --recover-seconds N --kamailio-children N --tries N --ladders N (1–20) --overload-of N --idle-before-overload S (0–600)');
}

// ---------- processes and their CPU ----------

/** `root` and all its descendants that are alive now (from /proc/N/stat's ppid field). */
function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* exited meanwhile */ }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parent) if (ppid === out[i]) out.push(pid);
  return out;
}

/** utime+stime in seconds of the processes of `root`'s tree, per PID (fields 14 and 15). */
function cpuByPid(root: number): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of processTree(root)) {
    try {
      m.set(pid, cpuSeconds(pid).total);
    } catch { /* exited meanwhile */ }
  }
  return m;
}

/** CPU seconds spent by `root`'s tree between two samples (processes alive at the end). */
function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, t] of after) s += t - (before.get(pid) ?? 0);
  return s;
}

/** Each process's share of a core over `wallS`, root first, then the busiest: shows a process
 *  pinned at one core (a design limit) while the tree's total looks modest. */
function coreShares(before: Map<number, number>, after: Map<number, number>, wallS: number): number[] {
  const shares = [...after].map(([pid, t]) => ({ pid, pct: (100 * (t - (before.get(pid) ?? 0))) / wallS }));
  const [root, ...rest] = shares;
  return [root!, ...rest.sort((a, b) => b.pct - a.pct)].map((x) => Math.round(x.pct));
}

/**
 * CPU of processes that may exit before the end of what is measured (SIPp's uac): their
 * utime+stime is read every `everyMs`, so an exited process keeps its last reading (it loses at
 * most one period, while it mostly waits for its last answers). `mark()` closes the window.
 */
class CpuWatch {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(pids: readonly number[], everyMs = 200) {
    for (const pid of pids) this.add(pid);
    this.timer = setInterval(() => this.read(), everyMs);
  }

  /** Watch `pid` from now (a process started now counts from 0: its CPU so far is its own start). */
  add(pid: number, fromZero = false): void {
    if (this.first.has(pid)) return;
    let t = 0;
    try { t = cpuSeconds(pid).total; } catch { /* gone */ }
    this.first.set(pid, fromZero ? 0 : t);
    this.last.set(pid, t);
  }

  private read(): void {
    for (const pid of this.first.keys()) {
      try { this.last.set(pid, cpuSeconds(pid).total); } catch { /* exited: keep its last reading */ }
    }
  }

  /** % of a core of each watched process since it was added, over `wallS`; stops the watch. */
  mark(wallS: number): Map<number, number> {
    this.read();
    clearInterval(this.timer);
    const out = new Map<number, number>();
    for (const [pid, t0] of this.first) out.set(pid, (100 * (this.last.get(pid)! - t0)) / wallS);
    return out;
  }
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** The kernel's UDP counter (/proc/net/snmp) of datagrams dropped because a socket's receive
 *  buffer was full (RcvbufErrors, every socket on the machine: SIPp's too). */
function udpDrops(): { rcvbuf: number } {
  const rows = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const head = (rows[0] ?? '').split(/\s+/);
  const vals = (rows[1] ?? '').split(/\s+/);
  const get = (n: string) => Number(vals[head.indexOf(n)] ?? 0) || 0;
  return { rcvbuf: get('RcvbufErrors') };
}

/** Drops per UDP socket ("ip:port" → count, /proc/net/udp's last column): which receiver overflowed. */
function udpSocketDrops(): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    const [hexIp, hexPort] = f[1]!.split(':') as [string, string];
    const ip = [3, 2, 1, 0].map((i) => parseInt(hexIp.slice(2 * i, 2 * i + 2), 16)).join('.');
    m.set(`${ip}:${parseInt(hexPort, 16)}`, (m.get(`${ip}:${parseInt(hexPort, 16)}`) ?? 0) + Number(f[f.length - 1]));
  }
  return m;
}

function dropsBetween(before: Map<string, number>, after: Map<string, number>): string {
  const out: string[] = [];
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) out.push(`${k} ${v - (before.get(k) ?? 0)}`);
  return out.join(', ') || 'none';
}

// ---------- the systems under test ----------

interface System {
  name: string;
  /** host:port SIPp sends to. */
  target: string;
  /** With --tls: the relay's PID (load generation, reported apart, not counted). */
  relayPid?: number;
  /** PID whose process tree is the system. */
  pid: number;
  /** The SIPp uas the system sends calls to (its CPU is load generation, reported apart). */
  uasPid: number;
  rtpengine?: TestRtpengine;
  /** New INVITEs the system refused on its own by overload control so far, if it counts them. */
  shed?: () => Promise<number>;
  /** peergate: memory reductions run so far (policy memory: once a burst is over and the node
   *  quiet, every process compacts and gives memory back; the next load grows it again). */
  reductions?: () => Promise<number>;
  /** Its /metrics text (peergate): the overload trace reads the loss and queue gauges from it. */
  metrics?: () => Promise<string>;
  /** peergate over TLS: inbound TLS handshakes so far (more than one: the relay reconnected). */
  tlsHandshakes?: () => Promise<number>;
  stop(): Promise<void>;
}

/** Resolves once something answers a SIP OPTIONS on 127.0.0.1:port (any response). */
async function sipAnswers(port: number, timeoutMs: number): Promise<void> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  let answered = false;
  sock.on('message', () => { answered = true; });
  const local = sock.address().port;
  try {
    await waitFor(() => {
      const msg = `OPTIONS sip:ping@127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${Date.now()}${Math.random().toString(16).slice(2)}\r\n`
        + `Max-Forwards: 70\r\nFrom: <sip:bench@127.0.0.1>;tag=b1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: ready-${Date.now()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
      sock.send(msg, port, '127.0.0.1');
      return answered;
    }, timeoutMs, 200, `a SIP answer on 127.0.0.1:${port}`);
  } finally {
    sock.close();
  }
}

interface Pki { ca: Written; server: Written; client: Written }

/** The federation CA, the systems' server certificate and the relay's client certificate. */
function makePki(): Pki {
  const dir = scratchDir('compare-pki-');
  return {
    ca: createFederationCa(dir),
    server: createPeerCertificate(dir, 'sbe', { cn: 'localhost', san: ['localhost', '127.0.0.1'] }),
    client: createPeerCertificate(dir, 'peer-a', { cn: 'sbc.carrier-a.example', san: ['sbc.carrier-a.example'] }),
  };
}

/** A kamailio tls module configuration: server side requires a client certificate from `ca`. */
function kamailioTlsCfg(dir: string, pki: Pki, side: 'server' | 'client'): string {
  const own = side === 'server' ? pki.server : pki.client;
  return writeFile(dir, 'tls.cfg', [
    '[server:default]', 'method = TLSv1.2+', `verify_certificate = ${side === 'server' ? 'yes' : 'no'}`,
    `require_certificate = ${side === 'server' ? 'yes' : 'no'}`,
    `private_key = ${own.keyPath}`, `certificate = ${own.certPath}`, `ca_list = ${pki.ca.certPath}`, '',
    '[client:default]', 'method = TLSv1.2+', 'verify_certificate = yes', 'require_certificate = yes',
    `private_key = ${own.keyPath}`, `certificate = ${own.certPath}`, `ca_list = ${pki.ca.certPath}`, '',
  ].join('\n'));
}

/** Start kamailio with `cfg` and the extra arguments; resolves once it answers on UDP `port`. */
async function kamailio(cfg: string, port: number, extra: string[]): Promise<Proc> {
  const run = join(scratchDir('compare-kamailio-'), 'run');
  mkdirSync(run, { recursive: true });
  // -x/-X tlsf: Kamailio's TLSF allocator for shared and private memory. With Debian's default
  // (q_malloc) perf put 70 % of each child's time in qm_malloc and Kamailio spent 2.3–2.7 ms of CPU
  // per call here; with TLSF, 0.45–0.63 ms.
  const proc = startProcess('kamailio', ['-f', join(HERE, cfg), '-DD', '-E', '-n', String(KAM_CHILDREN), '-l', `udp:127.0.0.1:${port}`,
    ...extra, '-Y', run, '-P', join(run, 'kamailio.pid'), '-w', run, '-m', '512', '-M', '16', '-x', 'tlsf', '-X', 'tlsf']);
  await sipAnswers(port, 15_000).catch((e: Error) => { throw new Error(`${e.message}\n${proc.output().slice(-2000)}`); });
  return proc;
}

/** With --tls: a relay from SIPp's UDP to `sys` over mutual TLS; SIPp then sends to the relay. */
async function behindTlsRelay(sys: System, tlsPort: number, pki: Pki): Promise<System> {
  const [udp, tls] = await freePorts(2) as [number, number];
  const proc = await kamailio('tls-relay.cfg', udp, ['-l', `tls:127.0.0.1:${tls}`,
    '-A', `FWD_DST="sip:127.0.0.1:${tlsPort};transport=tls"`, '-A', `TLS_CFG="${kamailioTlsCfg(scratchDir('compare-relay-'), pki, 'client')}"`,
    ...(values['stateless-relay'] ? ['-A', 'STATELESS'] : [])]);
  return { ...sys, target: `127.0.0.1:${udp}`, relayPid: proc.pid, async stop() { await proc.stop(); await sys.stop(); } };
}

async function startKamailio(uasTarget: string, uasPid: number, pki?: Pki): Promise<System> {
  const [port, tlsPort] = await freePorts(2) as [number, number];
  const rtp = MEDIA ? await startRtpengine({ portSpan: 10_000 }) : undefined;
  const proc = await kamailio('kamailio.cfg', port, [
    '-A', `FWD_DST="sip:${uasTarget}"`, '-A', `PIKE_DENSITY=${PIKE_DENSITY}`, '-A', `SESSION_LIMIT=${LIMIT_SESSIONS}`,
    ...(rtp ? ['-A', 'WITH_RTPENGINE', '-A', `RTPENGINE_SOCK="udp:${rtp.address}"`] : []),
    ...(pki ? ['-l', `tls:127.0.0.1:${tlsPort}`, '-A', 'WITH_TLS', '-A', `TLS_CFG="${kamailioTlsCfg(scratchDir('compare-kamailio-tls-'), pki, 'server')}"`] : []),
  ]);
  const sys: System = {
    name: 'Kamailio', target: `127.0.0.1:${port}`, pid: proc.pid, uasPid, rtpengine: rtp,
    async stop() { await proc.stop(); await rtp?.stop(); },
  };
  return pki ? behindTlsRelay(sys, tlsPort, pki) : sys;
}

async function startPeergateSystem(uasTarget: string, uasPid: number, pki?: Pki): Promise<System> {
  const [peerPort, corePort, opsPort] = await freePorts(3) as [number, number, number];
  const rtp = MEDIA ? await startRtpengine({ portSpan: 10_000 }) : undefined;
  const limits = { cps: LIMIT_CPS, burst: LIMIT_CPS, sessions: LIMIT_SESSIONS };
  const policy = twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${uasTarget}`, logLevel: 'error' }, {
    media: rtp ? { anchoring: true, rtpengine: [{ address: rtp.address }] } : { anchoring: false },
    // As operators run it: the built-in warm-up before the listeners open (policy warmup).
    warmup: {},
    ...(values['no-shedding'] ? { overload: { enabled: false } } : {}),
    ...(values.workers === undefined ? {} : { workers: values.workers === 'auto' ? 'auto' : Number(values.workers) }),
    ...(values['peergate-policy'] === undefined ? {} : JSON.parse(values['peergate-policy']) as Record<string, unknown>),
    peers: [pki
      // Over TLS the peer is the relay: its address and its verified certificate.
      ? { id: 'carrier-a', transport: 'tls', match: { addresses: ['127.0.0.1/32'], certificate: { subject_alt_names: ['sbc.carrier-a.example'] } }, limits }
      : { id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits }],
  });
  if (pki) {
    policy.listen[0] = { name: 'peer-tls', side: 'peer', transport: 'tls', address: '127.0.0.1', port: peerPort };
    policy.tls = { certificate: pki.server.certPath, key: pki.server.keyPath, client_cas: [pki.ca.certPath], require_client_cert: true };
  }
  const prof = values['cpu-prof'];
  const nodeArgs = [...(values['node-args'] ? values['node-args'].split(' ').filter(Boolean) : []),
    ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])];
  const pg = await startPeergate(policy, { nodeArgs });
  const sys: System = {
    name: 'peergate', target: `127.0.0.1:${peerPort}`, pid: pg.proc.pid, uasPid, rtpengine: rtp,
    shed: () => pg.metric('peergate_shed_total'),
    reductions: () => pg.metric('peergate_memory_reductions_total'),
    ...(pki ? { tlsHandshakes: () => pg.metric('peergate_tls_handshakes_total') } : {}),
    metrics: pg.metrics,
    async stop() {
      await pg.stop();
      if (values['peergate-output']) writeFileSync(values['peergate-output'], pg.proc.output());
      await rtp?.stop();
    },
  };
  return pki ? behindTlsRelay(sys, peerPort, pki) : sys;
}

// ---------- SIPp load and its figures ----------

interface Load { rate: number; calls: number; result: SippResult; wallS: number; rtt: Rtt[]; refused: number; timedOut: number; retransmissions: number }

/** Last value of some cumulative columns of a SIPp -trace_stat file. */
function statColumns(file: string | undefined, names: string[]): number[] {
  const rows = file && existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
  const head = (rows[0] ?? '').split(';');
  const last = (rows[rows.length - 1] ?? '').split(';');
  return names.map((n) => Number(last[head.indexOf(n)] ?? 0) || 0);
}

/** `rate` calls/s for `seconds` from 127.0.0.2 to `target`, no cap on calls in progress. */
async function load(target: string, rate: number, seconds: number, timeoutS: number, onStart?: (p: Proc) => void): Promise<Load> {
  const dir = scratchDir('compare-uac-');
  const calls = Math.round(rate * seconds);
  const t0 = Date.now();
  const result = await runSipp(['-sf', UAC_XML, target, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-r', String(rate), '-m', String(calls), '-l', String(calls), '-trace_rtt', '-rtt_freq', '1', ...SIPP_BUFFERS], { dir, timeoutS, ...(onStart ? { onStart } : {}) });
  // A final response other than 200 is an "unexpected message" to the scenario; no answer at all
  // ends in SIPp's retransmission or global timeouts.
  const [refused, retrans, recvTimeout, retransmissions] = statColumns(result.statFile, ['FailedUnexpectedMessage(C)', 'FailedMaxUDPRetrans(C)', 'FailedTimeoutOnRecv(C)', 'Retransmissions(C)']);
  const timedOut = retrans! + recvTimeout! + Math.max(0, calls - result.successful - result.failed);
  return { rate, calls, result, wallS: (Date.now() - t0) / 1000, rtt: rtts(dir), refused: refused!, timedOut, retransmissions: retransmissions! };
}

/** SIPp's own share of a core (uac, uas): the load generator shares the machine with the system. */
interface SippCpu { uac: number; uas: number }
const sippCpu = (c: SippCpu) => `SIPp uac/uas ${c.uac.toFixed(0)}/${c.uas.toFixed(0)} % of a core`;

interface Step {
  rate: number; ok: number; failed: number; refused: number; timedOut: number; wallS: number; p50: number; p99: number; cpuMsPerCall: number; rtpCpuMsPerCall?: number; shares: number[]; sipp: SippCpu;
  /** The TLS relay's share of a core, and the whole machine's busy share of all its cores (everything running, other users too). */
  relayPct?: number; machinePct: number; pass: boolean; why: string;
}

async function step(sys: System, rate: number): Promise<Step> {
  const before = cpuByPid(sys.pid);
  const rtpBefore = sys.rtpengine ? cpuByPid(sys.rtpengine.proc.pid) : undefined;
  const watch = new CpuWatch([sys.uasPid]);
  let uacPid = -1;
  const relayBefore = sys.relayPid === undefined ? undefined : cpuByPid(sys.relayPid);
  const m0 = machineBusySeconds();
  const l = await load(sys.target, rate, SECONDS, SECONDS * 3 + 10, (p) => { uacPid = p.pid; watch.add(p.pid, true); });
  const m1 = machineBusySeconds();
  const relayCpu = sys.relayPid === undefined || !relayBefore ? undefined : cpuDelta(relayBefore, cpuByPid(sys.relayPid));
  const after = cpuByPid(sys.pid);
  const sc = watch.mark(l.wallS);
  const cpu = cpuDelta(before, after);
  const rtpCpu = sys.rtpengine && rtpBefore ? cpuDelta(rtpBefore, cpuByPid(sys.rtpengine.proc.pid)) : undefined;
  const ms = l.rtt.map((r) => r.ms);
  const p99 = percentile(ms, 0.99);
  const why = l.result.failed > 0 || l.result.successful !== l.calls ? `${l.calls - l.result.successful} of ${l.calls} not completed`
    : l.wallS > SECONDS + 2 ? `fell behind (${l.wallS.toFixed(1)} s)`
      : !(p99 < P99_MAX_MS) ? `p99 ${p99} ms` : '';
  return {
    rate, ok: l.result.successful, failed: l.result.failed, refused: l.refused, timedOut: l.timedOut, wallS: l.wallS, p50: percentile(ms, 0.5), p99,
    cpuMsPerCall: (cpu / l.calls) * 1000, rtpCpuMsPerCall: rtpCpu === undefined ? undefined : (rtpCpu / l.calls) * 1000,
    shares: coreShares(before, after, l.wallS), sipp: { uac: sc.get(uacPid) ?? NaN, uas: sc.get(sys.uasPid) ?? NaN }, pass: why === '', why,
    ...(relayCpu === undefined ? {} : { relayPct: Math.round((100 * relayCpu) / l.wallS) }),
    machinePct: Math.round((100 * (m1 - m0)) / (l.wallS * availableParallelism())),
  };
}

interface Overload {
  offered: number; goodput: number; answered: number; refused: number; timedOut: number; shed?: number;
  /** peergate: memory reductions run before this step, in the whole run so far. */
  reductionsBefore?: number;
  p50: number; p99: number; recoverRate: number; recoverS: number | null; recoverFailed: number;
  /** Over the offered window: the system's processes (% of a core, root first) and SIPp's; all of
   *  it against the machine's cores shows how much was left for the system (the ceiling). */
  windowShares: number[]; windowSipp: SippCpu;
  /** The whole machine's busy CPU over the window (% of a core, all processes). */
  windowMachine: number;
  /** peergate: the loss and queue swing in the window's last 7 s, and in the recovery's first 3 s. */
  trace?: { window: TraceSummary; after: TraceSummary };
  /** Why admitted calls were slow: the uac's retransmissions (its timer fires at 500 ms: a lost
   *  or late answer), the kernel's UDP drops on full receive buffers (any socket), and how many
   *  answered calls took over 450 ms. */
  retransmissions: number; rcvbufDrops: number; over450: number; dropsBySocket: string;
  /** --pcap: the answered calls of the window, hop by hop, and what tcpdump said at its end. */
  hops?: string;
  /** Each second of the window, by when its INVITEs were sent: calls answered, their setup p99 (ms). */
  perSecond: { answered: number; p99: number }[];
}

/** The setup times of the answered calls, by the second (from SIPp's start) their INVITE was sent. */
function bySecondSent(rtt: Rtt[], seconds: number): number[][] {
  const buckets: number[][] = Array.from({ length: seconds }, () => []);
  for (const r of rtt) {
    const sentS = Math.floor((r.atMs - r.ms) / 1000);
    if (sentS >= 0 && sentS < seconds) buckets[sentS]!.push(r.ms);
  }
  return buckets;
}

/** Seconds until every later second of the recovery caller's calls was answered with p99 < 100 ms. */
function recoveryTime(rtt: Rtt[], rate: number, seconds: number): number | null {
  const buckets = bySecondSent(rtt, seconds);
  const good = buckets.map((b) => b.length >= 0.9 * rate && percentile(b, 0.99) < P99_MAX_MS);
  let lastBad = -1;
  good.forEach((g, i) => { if (!g) lastBad = i; });
  return lastBad === seconds - 1 ? null : lastBad + 1;
}

async function overload(sys: System, rate: number, recoverRate: number): Promise<Overload> {
  if (IDLE_BEFORE_OVERLOAD_S > 0) await new Promise((r) => setTimeout(r, IDLE_BEFORE_OVERLOAD_S * 1000));
  const shedBefore = await sys.shed?.();
  const reductionsBefore = await sys.reductions?.();
  // Only when asked: the scrapes are work the system under test does and its rival does not.
  const trace = sys.metrics && values['trace-dir'] ? new OverloadTrace(sys.metrics) : undefined;
  const sysBefore = cpuByPid(sys.pid);
  const busyBefore = machineBusySeconds();
  const dropsBefore = udpDrops();
  const socketDropsBefore = udpSocketDrops();
  const pcapFile = values.pcap ? join(values.pcap, `${sys.name}-${rate}.pcap`) : undefined;
  const dump = pcapFile ? startProcess('tcpdump', ['-i', 'lo', '-n', '-s', '0', '-B', '32768', '-w', pcapFile, '(udp and (host 127.0.0.2 or host 127.0.0.3)) or (tcp and host 127.0.0.1)']) : undefined;
  if (dump) await waitFor(() => /listening on/.test(dump.output()), 5000);
  const watch = new CpuWatch([sys.uasPid]);
  let uacPid = -1;
  const t0 = Date.now();
  const pending = load(sys.target, rate, SECONDS, SECONDS + RECOVER_SECONDS + 20, (p) => { uacPid = p.pid; watch.add(p.pid, true); });
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const windowS = (Date.now() - t0) / 1000;
  const windowShares = coreShares(sysBefore, cpuByPid(sys.pid), windowS);
  const windowMachine = (100 * (machineBusySeconds() - busyBefore)) / windowS;
  const sc = watch.mark(windowS);
  const recovering = load(sys.target, recoverRate, RECOVER_SECONDS, RECOVER_SECONDS + 40);
  await new Promise((r) => setTimeout(r, 3000));
  const points = await trace?.stop();
  const rec = await recovering;
  const l = await pending;
  const rcvbufDrops = udpDrops().rcvbuf - dropsBefore.rcvbuf;
  if (dump) await dump.stop('SIGINT', 10_000);
  const dropsBySocket = dropsBetween(socketDropsBefore, udpSocketDrops());
  if (points && values['trace-dir']) saveTrace(join(values['trace-dir'], `${sys.name}-${rate}.csv`), points);
  const inWindow = l.rtt.filter((r) => r.atMs <= SECONDS * 1000);
  const ms = l.rtt.map((r) => r.ms);
  return {
    ...(reductionsBefore === undefined ? {} : { reductionsBefore }),
    offered: rate, goodput: inWindow.length / SECONDS, answered: l.rtt.length, refused: l.refused, timedOut: l.timedOut,
    shed: shedBefore === undefined ? undefined : (await sys.shed!()) - shedBefore,
    p50: percentile(ms, 0.5), p99: percentile(ms, 0.99),
    recoverRate, recoverS: recoveryTime(rec.rtt, recoverRate, RECOVER_SECONDS), recoverFailed: rec.result.failed,
    windowShares, windowMachine, windowSipp: { uac: sc.get(uacPid) ?? NaN, uas: sc.get(sys.uasPid) ?? NaN },
    ...(points ? { trace: { window: summarise(points, 1000, SECONDS * 1000), after: summarise(points, SECONDS * 1000, SECONDS * 1000 + 3000) } } : {}),
    retransmissions: l.retransmissions, rcvbufDrops, over450: ms.filter((x) => x > 450).length, dropsBySocket,
    perSecond: bySecondSent(l.rtt, SECONDS).map((b) => ({ answered: b.length, p99: percentile(b, 0.99) })),
    ...(dump && pcapFile ? { hops: `${describeHops(hops(readPcap(pcapFile), 1000, SECONDS * 1000))}; tcpdump: ${dump.output().split('\n').filter((l) => /dropped|captured/.test(l)).join(', ')}` } : {}),
  };
}

const settle = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

// ---------- the run ----------

async function main(): Promise<void> {
  const names = values.only ? [values.only] : ['kamailio', 'peergate'];
  if (names.some((n) => n !== 'kamailio' && n !== 'peergate')) throw new Error('--only kamailio|peergate');
  const systems: System[] = [];
  const pki = TLS ? makePki() : undefined;
  const loadBefore = loadavg();
  try {
    const systemsStartedAt = Date.now();
    for (const n of names) {
      const [uasPort] = await freePorts(1) as [number];
      const uas = startSipp(['-sf', UAS_XML, '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1', ...SIPP_BUFFERS]);
      systems.push(n === 'kamailio' ? await startKamailio(`127.0.0.3:${uasPort}`, uas.pid, pki) : await startPeergateSystem(`127.0.0.3:${uasPort}`, uas.pid, pki));
    }
    console.log(`# ${SECONDS} s per step, rates ${RATES.join(', ')}; media ${MEDIA ? 'anchored on rtpengine' : 'not anchored'}; `
      + `peer side ${TLS ? `mutual TLS (SIPp UDP → Kamailio TLS relay${values['stateless-relay'] ? ', stateless' : ''})` : 'UDP'}; `
      + `Kamailio children ${KAM_CHILDREN}; peergate workers ${values.workers ?? 'policy default'}`
      + `${values['peergate-policy'] ? `, policy + ${values['peergate-policy']}` : ''}; load average before ${loadBefore}; node ${process.version}`);

    // Idle CPU (timers, housekeeping) and a warm-up (JIT, pools) before anything is measured.
    // Idle is read once a system has run IDLE_AFTER_S: in its first seconds V8 collects what the
    // start left behind (≈ 100–170 ms of CPU per node process 8–16 s after start), which is a
    // start, not what the system costs while it waits.
    const idle = new Map<System, number>();
    for (const sys of systems) {
      const upS = (Date.now() - systemsStartedAt) / 1000;
      if (upS < IDLE_AFTER_S) await settle(IDLE_AFTER_S - upS);
      const before = cpuByPid(sys.pid);
      await settle(IDLE_SECONDS);
      idle.set(sys, (100 * cpuDelta(before, cpuByPid(sys.pid))) / IDLE_SECONDS);
      const w = await load(sys.target, RATES[0]!, WARMUP_SECONDS, WARMUP_SECONDS * 3 + 10);
      console.log(`${sys.name.padEnd(9)} idle: ${idle.get(sys)!.toFixed(1)}% of a core; warm-up ${RATES[0]} calls/s for ${WARMUP_SECONDS} s: `
        + `${w.result.successful} ok, ${w.result.failed} failed (not counted)`);
      await settle(1);
    }

    // Ladder, interleaved: each rate for every system still passing; --ladders times over.
    const ladders = new Map<System, (Step | undefined)[]>(systems.map((s) => [s, []]));
    for (let ladder = 1; ladder <= LADDERS; ladder++) {
      if (LADDERS > 1) console.log(`# ladder ${ladder} of ${LADDERS}`);
      const passed = new Map<System, Step | undefined>(systems.map((s) => [s, undefined]));
      const alive = new Set(systems);
      for (const rate of RATES) {
        for (const sys of systems) {
          if (!alive.has(sys)) continue;
          for (let attempt = 1; attempt <= TRIES; attempt++) {
            const s = await step(sys, rate);
            console.log(`${sys.name.padEnd(9)} ${String(rate).padStart(5)} calls/s: ${s.ok} ok, ${s.failed} failed (${s.refused} refused, ${s.timedOut} timed out), ${s.wallS.toFixed(1)} s, `
              + `setup p50/p99 ${s.p50}/${s.p99} ms, CPU ${s.cpuMsPerCall.toFixed(3)} ms/call`
              + `${s.rtpCpuMsPerCall === undefined ? '' : ` (+ rtpengine ${s.rtpCpuMsPerCall.toFixed(3)})`}, % of a core: ${s.shares.slice(0, 5).join('/')}; ${sippCpu(s.sipp)}`
              + `${s.relayPct === undefined ? '' : `, TLS relay ${s.relayPct}%`}, machine busy ${s.machinePct}% of ${availableParallelism()} cores`
              + `${sys.tlsHandshakes ? `, TLS handshakes so far ${await sys.tlsHandshakes()}` : ''}`
              + `${s.pass ? '' : `  <- ${s.why}`}`);
            await settle(1);
            if (s.pass) { passed.set(sys, s); break; }
            if (attempt === TRIES) alive.delete(sys);
          }
        }
        if (alive.size === 0) break;
      }
      for (const sys of systems) ladders.get(sys)!.push(passed.get(sys));
    }
    // Each system stands for the median of its ladders' maxima (the lower middle of an even
    // count): one ladder on a shared machine moves a step or two from the next.
    const best = new Map<System, Step | undefined>(systems.map((sys) => {
      // Wrapped: Array#sort puts undefined elements (no step passed) last, unasked.
      const sorted = ladders.get(sys)!.map((step) => ({ step })).sort((a, b) => (a.step?.rate ?? 0) - (b.step?.rate ?? 0));
      return [sys, sorted[Math.floor((sorted.length - 1) / 2)]!.step];
    }));
    if (LADDERS > 1) {
      for (const sys of systems) {
        const maxima = ladders.get(sys)!.map((b) => b?.rate ?? `< ${RATES[0]}`);
        console.log(`${sys.name.padEnd(9)} maximum of each ladder: ${maxima.join(', ')}; median ${best.get(sys)?.rate ?? `< ${RATES[0]}`}`);
      }
    }

    const over = new Map<System, Overload[]>(systems.map((s) => [s, []]));
    if (!values['no-overload']) {
      for (const factor of [2, 3] as const) {
        for (const sys of systems) {
          const base = OVERLOAD_OF ?? best.get(sys)?.rate;
          if (!base) continue;
          await settle(5);
          const o = await overload(sys, base * factor, RECOVER_RATE ?? Math.max(10, Math.round(base * 0.3)));
          console.log(`${sys.name.padEnd(9)} ${factor}× = ${o.offered} calls/s offered: goodput ${o.goodput.toFixed(0)} answered/s in the window, `
            + `${o.answered} answered, ${o.refused} refused${o.shed === undefined ? '' : ` (${o.shed} shed by overload control, with the recovery caller's)`}, ${o.timedOut} timed out, setup p50/p99 ${o.p50}/${o.p99} ms; `
            + `after it, ${o.recoverRate} calls/s: ${o.recoverS === null ? `not recovered in ${RECOVER_SECONDS} s` : `p99 < ${P99_MAX_MS} ms after ${o.recoverS} s`}, ${o.recoverFailed} failed`);
          const total = o.windowShares.reduce((a, b) => a + b, 0) + o.windowSipp.uac + o.windowSipp.uas;
          console.log(`${''.padEnd(9)} CPU in the window, % of a core: ${sys.name} ${o.windowShares.slice(0, 5).join('/')}, ${sippCpu(o.windowSipp)}; `
            + `together ${total.toFixed(0)}, every process on the machine ${o.windowMachine.toFixed(0)}, of ${availableParallelism() * 100}`);
          console.log(`${''.padEnd(9)} slow calls: ${o.over450} answered after > 450 ms; uac retransmissions ${o.retransmissions}; UDP receive-buffer drops (kernel, all sockets) ${o.rcvbufDrops}: ${o.dropsBySocket} (${sys.name} at ${sys.target}, uas 127.0.0.3, uac 127.0.0.2)`);
          if (o.reductionsBefore !== undefined) console.log(`${''.padEnd(9)} peergate_memory_reductions_total before this step: ${o.reductionsBefore}`);
          console.log(`${''.padEnd(9)} each second of the window, by when its INVITEs were sent, answered (setup p99 ms): ${o.perSecond.map((b) => `${b.answered} (${b.p99})`).join(', ')}`);
          if (o.hops) console.log(`${''.padEnd(9)} hops of the calls answered, sent from 1 s to the window's end: ${o.hops}`);
          if (o.trace) console.log(`${''.padEnd(9)} in the window (from 1 s): ${describe(o.trace.window)}\n${''.padEnd(9)} first 3 s after it: ${describe(o.trace.after)}`);
          over.get(sys)!.push(o);
        }
      }
    }

    for (const sys of systems) {
      if (!sys.metrics) continue;
      const shed = (await sys.metrics()).split('\n').filter((l) => l.startsWith('peergate_shed_total{') && !/ 0$/.test(l));
      console.log(`${sys.name} shed by reason, whole run: ${shed.map((l) => l.replace(/^peergate_shed_total\{reason="([^"]+)"\} /, '$1 ')).join(', ') || 'none'}`);
    }
    const loadAfter = loadavg();
    console.log(`\nload average before ${loadBefore}, after ${loadAfter}\n`);
    console.log('| system | idle CPU | max calls/s (0 failures, p99 < 100 ms) | setup p50 / p99 at max | CPU ms per call at max | '
      + 'goodput at 2× (answered/s) | p99 at 2× | recovered after 2× | goodput at 3× | p99 at 3× | recovered after 3× |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const sys of systems) {
      const b = best.get(sys);
      const o = over.get(sys);
      const rec = (x: Overload) => `${x.recoverS === null ? `> ${RECOVER_SECONDS} s` : `${x.recoverS} s`} at ${x.recoverRate}/s${x.recoverFailed ? ` (${x.recoverFailed} failed)` : ''}`;
      const ov = (x: Overload | undefined) => x && (OVERLOAD_OF ?? b)
        ? [`${x.goodput.toFixed(0)} of ${x.offered} offered (${((100 * x.goodput) / (OVERLOAD_OF ?? b!.rate)).toFixed(0)}% of ${OVERLOAD_OF ? '--overload-of' : 'max'}); ${x.refused} refused, ${x.timedOut} timed out`, `${x.p99} ms`, rec(x)]
        : ['n/a', 'n/a', 'n/a'];
      const cpu = b ? `${b.cpuMsPerCall.toFixed(3)}${b.rtpCpuMsPerCall === undefined ? '' : ` + rtpengine ${b.rtpCpuMsPerCall.toFixed(3)}`}` : 'n/a';
      console.log(`| ${sys.name} | ${idle.get(sys)!.toFixed(1)}% | ${b?.rate ?? `< ${RATES[0]}`} | ${b ? `${b.p50} / ${b.p99} ms` : 'n/a'} | ${cpu} | ${[...ov(o?.[0]), ...ov(o?.[1])].join(' | ')} |`);
    }
    for (const sys of systems) {
      if (!sys.rtpengine) continue;
      await settle(2);
      console.log(`${sys.name}'s rtpengine holds ${(await sys.rtpengine.calls()).length} calls after the run `
        + '(a call that ended with its BYE is deleted; one that failed before it stays until rtpengine\'s 60 s timeout)');
    }
  } finally {
    for (const sys of systems) await sys.stop();
    await stopAll();
  }
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
