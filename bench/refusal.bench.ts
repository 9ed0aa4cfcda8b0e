// What one refused INVITE costs `peergate start`, whole: the overload gate refuses every new
// INVITE (one call held, `overload.max_dialogs: 1`, loss straight to 100 %) while SIPp sends
// INVITEs at each rate and ACKs every 503 (test/fixtures/sipp/uac-refused.xml). CPU of the primary (user
// and kernel apart), of the workers (they should see nothing) and of SIPp, per refusal, from
// /proc; the primary's voluntary context switches per refusal say how many datagrams each
// wake-up found. Issue 18 item 3: at 2×/3× overload every refusal comes out of the calls.
// "primary ÷ SIPp" divides the primary's CPU per refusal by SIPp's own for the same refusals:
// SIPp's work per refusal does not change with peergate's code, so the ratio takes out the speed
// of the moment of this shared machine (both move together by 30–50 % between runs) when two
// checkouts are compared. The server transactions left as a step's load ends, and the primary's
// RSS peak through it, show what refusals keep.
//
//   npm run build && nice -n 10 npx tsx bench/refusal.bench.ts [--rates 1000,2000,3000] [--seconds 8] [--rounds 3] [--perf DIR]
//
// --perf DIR: also `perf record -g` the primary (node with --perf-basic-prof) through one step
// per rate in the last round, and print where its CPU went by DSO (kernel, node's C++, V8's
// generated code) and the top symbols; the raw data stays in DIR.
import './require-build.js';
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { childPids, cpuSeconds, freePorts, procStatus, runSipp, scratchDir, startProcess, startUas, stopAll, waitFor, type Proc } from '../test/helpers/procs.js';
import { CORE_IP, PEER_IP, startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';

const { values } = parseArgs({ options: {
  rates: { type: 'string', default: '1000,2000,3000' }, seconds: { type: 'string', default: '8' },
  rounds: { type: 'string', default: '3' }, perf: { type: 'string' },
} });
const RATES = values.rates.split(',').map(Number);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const PERF = values.perf;
const UAC_503 = join(import.meta.dirname, '..', 'test', 'fixtures', 'sipp', 'uac-refused.xml');

interface Row { rate: number; refused: number; failed: number; userUs: number; kernelUs: number; workersUs: number; sippUs: number; wakeups: number; primaryPct: number; txns: number; rssMiB: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}

/** perf's share of samples by `key` (dso or sym), the first `top` lines. */
function perfReport(file: string, key: 'dso' | 'sym', top: number): string {
  const r = spawnSync('perf', ['report', '-i', file, '--no-children', '--sort', key, '--stdio', '-q', '--percent-limit', '0.5'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.stdout.split('\n').filter((l) => /^\s+\d/.test(l)).slice(0, top).map((l) => l.trimEnd()).join('\n');
}

async function main(): Promise<void> {
  const [peerPort, corePort, opsPort, uasPort] = await freePorts(4) as [number, number, number, number];
  const uas = startUas(CORE_IP, uasPort);
  const policy = twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:${CORE_IP}:${uasPort}`, logLevel: 'error' }, {
    media: { anchoring: false },
    // Two dialogs (one call) are over the mark: the stepped law goes to 100 % in one interval and
    // stays there while the call is held (dialogs is not stall-prone: no onset wait). The
    // receive-queue law stays on, as in production; onset_intervals 100 keeps a busy start-up's
    // lag from refusing the held call itself.
    overload: { max_dialogs: 1, step_percent: 100, max_loss_percent: 100, onset_intervals: 100 },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, limits: { cps: 100_000, burst: 100_000, sessions: 1_000_000 } }],
  });
  const pg = await startPeergate(policy, { nodeArgs: PERF ? ['--perf-basic-prof'] : [] });
  const primary = pg.proc.pid;
  const target = `127.0.0.1:${peerPort}`;
  let held: Proc | undefined;
  void runSipp(['-sn', 'uac', target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000', '-m', '1', '-d', '3600000'],
    { timeoutS: 3600, onStart: (p) => { held = p; } });
  // Loss at 100 % counts only once the held call is up (the dialogs mark, not a transient).
  await waitFor(async () => (await pg.metric('peergate_engine_dialogs')) === 2, 15_000, 100, 'the held call up');
  await waitFor(async () => (await pg.metric('peergate_overload_loss_percent')) === 100, 15_000, 100, 'loss at 100 %');
  const workers = childPids(primary).filter((p) => p !== primary);
  console.log(`peergate primary ${primary}, workers ${workers.join(',')}; loss 100 % with one call held; ${SECONDS} s per step`);
  if (PERF) mkdirSync(PERF, { recursive: true });

  const rows: Row[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const rate of RATES) {
      const calls = rate * SECONDS;
      const shed0 = await pg.metric('peergate_shed_total');
      const c0 = cpuSeconds(primary);
      const w0 = workers.reduce((s, p) => s + cpuSeconds(p).total, 0);
      const v0 = procStatus(primary, 'voluntary_ctxt_switches');
      const t0 = Date.now();
      // SIPp's CPU, read while it runs (its /proc entry goes with it).
      let sippCpu = 0;
      let peakRss = procStatus(primary, 'VmRSS') / 1024;
      let poll: NodeJS.Timeout | undefined;
      const perfFile = PERF && round === ROUNDS ? join(PERF, `primary-${rate}.data`) : undefined;
      let perf: Proc | undefined;
      if (perfFile) perf = startProcess('perf', ['record', '-F', '499', '-g', '-p', String(primary), '-o', perfFile, '--', 'sleep', String(SECONDS)]);
      const dir = scratchDir('refusal-uac-');
      const res = await runSipp(['-sf', UAC_503, target, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
        '-r', String(rate), '-m', String(calls), '-l', String(calls), '-buff_size', String(8 << 20)], { dir, timeoutS: SECONDS + 30, onStart: (p) => {
          poll = setInterval(() => {
            peakRss = Math.max(peakRss, procStatus(primary, 'VmRSS') / 1024);
            try { sippCpu = cpuSeconds(p.pid).total; } catch { /* gone */ }
          }, 100);
        } });
      clearInterval(poll);
      const wallS = (Date.now() - t0) / 1000;
      const c1 = cpuSeconds(primary);
      const w1 = workers.reduce((s, p) => s + cpuSeconds(p).total, 0);
      const v1 = procStatus(primary, 'voluntary_ctxt_switches');
      const refused = (await pg.metric('peergate_shed_total')) - shed0;
      // Server transactions left as the load ends: refusals still in a Timer I window, if any.
      const txns = await pg.metric('peergate_engine_server_transactions');
      if (perf) await perf.exited;
      const n = Math.max(1, refused);
      rows.push({
        rate, refused, failed: res.failed + Math.max(0, calls - res.successful - res.failed),
        userUs: (c1.user - c0.user) * 1e6 / n, kernelUs: (c1.system - c0.system) * 1e6 / n, workersUs: (w1 - w0) * 1e6 / n,
        sippUs: sippCpu * 1e6 / n, wakeups: (v1 - v0) / n, primaryPct: (c1.total - c0.total) * 100 / wallS, txns, rssMiB: peakRss,
      });
      const r = rows[rows.length - 1]!;
      console.log(`round ${round} ${String(rate).padStart(5)}/s: ${refused} refused, ${r.failed} failed; primary ${(r.userUs + r.kernelUs).toFixed(1)} µs per refusal (user ${r.userUs.toFixed(1)}, kernel ${r.kernelUs.toFixed(1)}), ${r.primaryPct.toFixed(0)} % of a core; workers ${r.workersUs.toFixed(2)} µs; SIPp ${r.sippUs.toFixed(1)} µs; ${r.wakeups.toFixed(2)} wake-ups per refusal; ${txns} server transactions at the end, primary RSS peak ${peakRss.toFixed(0)} MiB`);
      await new Promise((res2) => setTimeout(res2, 6000)); // Timer I (T4 = 5 s) of the last 503s runs out
    }
  }

  console.log('\nmedians over rounds (µs of CPU per refused INVITE with its ACK):');
  console.log('| offered/s | primary | of it user | of it kernel | workers | SIPp uac | wake-ups per refusal | primary % of a core | primary ÷ SIPp | server transactions at the end | primary RSS peak MiB |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const rate of RATES) {
    const rs = rows.filter((r) => r.rate === rate);
    console.log(`| ${rate} | ${median(rs.map((r) => r.userUs + r.kernelUs)).toFixed(1)} | ${median(rs.map((r) => r.userUs)).toFixed(1)} | ${median(rs.map((r) => r.kernelUs)).toFixed(1)} | ${median(rs.map((r) => r.workersUs)).toFixed(2)} | ${median(rs.map((r) => r.sippUs)).toFixed(1)} | ${median(rs.map((r) => r.wakeups)).toFixed(2)} | ${median(rs.map((r) => r.primaryPct)).toFixed(0)} | ${median(rs.map((r) => (r.userUs + r.kernelUs) / r.sippUs)).toFixed(2)} | ${median(rs.map((r) => r.txns))} | ${median(rs.map((r) => r.rssMiB)).toFixed(0)} |`);
  }
  if (PERF) {
    for (const rate of RATES) {
      const f = join(PERF, `primary-${rate}.data`);
      console.log(`\nperf, primary at ${rate}/s, by DSO:\n${perfReport(f, 'dso', 12)}\n  top symbols:\n${perfReport(f, 'sym', 30)}`);
    }
  }
  held?.child.kill('SIGTERM');
  await pg.stop();
  uas.child.kill('SIGTERM');
  await stopAll();
}

main().catch(async (e) => { console.error(e); await stopAll(); process.exit(1); });
