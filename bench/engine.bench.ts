// Engine benchmark (issue 2): sipp uac → engine → trivial drachtio-srf B2BUA → sipp uas over
// UDP, stepping the call rate up until a step has failed calls; the same steps with sipp uac →
// sipp uas directly, in the same run, for the ratio. Then memory per established dialog.
//
//   node --expose-gc --import tsx bench/engine.bench.ts [--seconds 3] [--start 250] [--max 4000] [--dialogs 2000] [--settle 33]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { startEngine } from '../src/engine/engine.js';
import { freePort, runSipp, startProcess, startSipp, stopAll, waitFor } from '../test/helpers/procs.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, max: { type: 'string' }, dialogs: { type: 'string' }, start: { type: 'string' }, settle: { type: 'string' } },
});
const seconds = Number(values.seconds ?? 3);
const maxRate = Number(values.max ?? 4000);
const startRate = Number(values.start ?? 250);
const heldDialogs = Number(values.dialogs ?? 2000);
/** Seconds to wait for 64*T1 transaction state to expire before measuring memory. */
const settleMs = Number(values.settle ?? 33) * 1000;
const ROOT = join(import.meta.dirname, '..');

async function step(target: string, rate: number, callMs = 0): Promise<{ ok: number; failed: number; wallMs: number }> {
  const calls = Math.max(1, Math.round(rate * seconds));
  const t0 = Date.now();
  const r = await runSipp(['-sn', 'uac', target, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1',
    '-m', String(calls), '-r', String(rate), '-l', String(rate * 4), '-d', String(callMs), '-max_socket', '1000'], { timeoutS: seconds * 4 + 20 });
  return { ok: r.successful, failed: r.failed + (calls - r.successful - r.failed), wallMs: Date.now() - t0 };
}

/** A step passes when no call failed and the calls completed at ≥ 80 % of the offered rate
 *  (sipp throttles at its concurrency limit, so a slow path would otherwise "pass" slowly). */
async function sweep(label: string, target: string): Promise<{ rate: number; achieved: number }> {
  let best = { rate: 0, achieved: 0 };
  for (let rate = startRate; rate <= maxRate; rate = Math.round(rate * 1.5)) {
    const r = await step(target, rate);
    // ~0.4 s of the wall time is sipp start-up and the last call's teardown.
    const achieved = Math.round(r.ok / Math.max(seconds, r.wallMs / 1000 - 0.4));
    console.log(`${label}: offered ${rate}/s → ok ${r.ok}, failed ${r.failed}, ${r.wallMs} ms, achieved ${achieved} calls/s`);
    if (r.failed > 0 || achieved < 0.8 * rate) break;
    best = { rate, achieved };
  }
  return best;
}

async function main(): Promise<void> {
  const uasPort = await freePort();
  startSipp(['-sf', join(ROOT, 'test/fixtures/sipp/uas-bench.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-t', 'u1', '-max_socket', '1000']);
  const sipPort = await freePort();
  const engine = await startEngine({
    contacts: [`sip:127.0.0.1:${sipPort};transport=udp`],
    wire: { address: '127.0.0.1', port: await freePort(), secret: 'cymru' },
  });
  startProcess(process.execPath, [join(ROOT, 'test/fixtures/apps/b2bua.mjs')], {
    env: { ...process.env, WIRE_PORT: String(engine.wirePort), WIRE_SECRET: 'cymru', B_TARGET: `sip:uas@127.0.0.1:${uasPort}`, QUIET: '1' },
  });
  await waitFor(() => engine.wire.hasRoute('invite'), 15_000, 50, 'b2bua app route');
  try {
    // Direct first, so that leftovers of the engine run (timers, un-ACKed calls) cannot slow it.
    const direct = await sweep('direct uac→uas', `127.0.0.1:${uasPort}`);
    const viaEngine = await sweep('engine+b2bua', `127.0.0.1:${sipPort}`);
    console.log(`RESULT highest sustained zero-failure rate: engine+B2BUA ${viaEngine.rate} calls/s (achieved ${viaEngine.achieved}); ` +
      `direct uac→uas ${direct.rate} calls/s (achieved ${direct.achieved}); ratio ${direct.rate ? (viaEngine.rate / direct.rate).toFixed(2) : 'n/a'}`);

    // Memory per established dialog: hold calls open and measure the engine's heap.
    const gc = (globalThis as { gc?: () => void }).gc;
    await new Promise((r) => setTimeout(r, settleMs)); // let 64*T1 transaction state of the sweep expire
    gc?.(); gc?.();
    const base = process.memoryUsage().heapUsed;
    const baseDialogs = engine.core.dialogs.size;
    const calls = Math.round(heldDialogs / 2);
    const hold = runSipp(['-sn', 'uac', `127.0.0.1:${sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1',
      '-m', String(calls), '-r', '400', '-l', String(calls), '-d', '60000'], { timeoutS: 120 });
    await waitFor(() => engine.core.dialogs.size - baseDialogs >= calls * 2, 60_000, 100, 'dialogs established');
    // Wait out the 64*T1 transaction timers so only dialogs remain, as in a long call.
    await new Promise((r) => setTimeout(r, settleMs));
    gc?.(); gc?.();
    const used = process.memoryUsage().heapUsed - base;
    const n = engine.core.dialogs.size - baseDialogs;
    console.log(`RESULT memory: ${n} established dialogs, heap +${(used / 1024 / 1024).toFixed(1)} MiB → ${(used / n / 1024).toFixed(2)} KiB per dialog${gc ? '' : ' (no --expose-gc: noisy)'}`);
    console.log(`stats: ${JSON.stringify({ ...engine.core.stats(), ...engine.counters().core })}`);
    void hold;
  } finally {
    await stopAll();
    await engine.close();
  }
}

main().then(() => process.exit(0), (e: unknown) => { console.error(e); process.exit(1); });
