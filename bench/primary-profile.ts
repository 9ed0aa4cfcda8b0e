// CPU per call of each process of `peergate start` (workers: auto) under SIPp load, and with
// PROF=DIR a --cpu-prof profile of the primary alone (the engine's process: the part that does
// not split across workers); read it with `bench/profile-areas.ts DIR/CPU.*.cpuprofile --marker shed`.
// With WPROF=DIR, a --cpu-prof profile of each B2BUA worker too (through PEERGATE_WORKER_NODE_FLAGS).
// On demand only:
//   npm run build; RATE=300 SECS=20 PROF=/tmp/prof [WPROF=/tmp/wprof] nice -n 10 npx tsx bench/primary-profile.ts
import './require-build.js';
import { cpuSeconds, childPids, freePorts, runSipp, startSipp, stopAll, scratchDir } from '../test/helpers/procs.js';
import { startPeergate, twoSidedPolicy } from '../test/helpers/peergate.js';
const [peerPort, corePort, opsPort, uasPort] = await freePorts(4) as [number, number, number, number];
const rate = Number(process.env.RATE ?? 300), secs = Number(process.env.SECS ?? 20);
startSipp(['-sn', 'uas', '-i', '127.0.0.3', '-p', String(uasPort), '-t', 'u1'], scratchDir('pm-uas-'));
const pg = await startPeergate(twoSidedPolicy({ peerPort, corePort, opsPort, coreTarget: `sip:127.0.0.3:${uasPort}`, logLevel: 'error' }, {
  media: { anchoring: false },
  peers: [{ id: 'carrier-a', match: { addresses: ['127.0.0.2/32'] }, limits: { cps: 100000, burst: 100000, sessions: 100000 } }],
  overload: { enabled: true, lag_high_ms: 10000, lag_low_ms: 10000, queue_high_kib: 0, queue_low_kib: 0 },
}), {
  nodeArgs: process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : [],
  ...(process.env.WPROF ? { env: { PEERGATE_WORKER_NODE_FLAGS: `--cpu-prof --cpu-prof-dir=${process.env.WPROF}` } } : {}),
});
const pids = [pg.proc.pid, ...childPids(pg.proc.pid)];
await runSipp(['-sn', 'uac', `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-r', String(rate), '-m', String(rate * 3), '-l', String(rate * 3)], { dir: scratchDir('pm-w-'), timeoutS: 60 });
const c0 = pids.map((p) => cpuSeconds(p).total); const t0 = Date.now();
const r = await runSipp(['-sn', 'uac', `127.0.0.1:${peerPort}`, '-i', '127.0.0.2', '-p', '0', '-t', 'u1', '-s', '+15551230000', '-r', String(rate), '-m', String(rate * secs), '-l', String(rate * secs)], { dir: scratchDir('pm-uac-'), timeoutS: 120 });
const wall = (Date.now() - t0) / 1000;
const per = pids.map((p, i) => cpuSeconds(p).total - c0[i]!);
console.log(`${rate}/s: ${r.successful} ok ${r.failed} failed, wall ${wall.toFixed(1)} s; CPU ms per call by process: ${per.map((c) => (1000 * c / (rate * secs)).toFixed(3)).join(' / ')}; % of a core: ${per.map((c) => (100 * c / wall).toFixed(0)).join(' / ')}`);
// A long profile takes seconds to write at exit: more than pg.stop()'s 5 s before SIGKILL.
await (process.env.PROF || process.env.WPROF ? pg.proc.stop('SIGTERM', 60_000) : pg.stop()); await stopAll();
