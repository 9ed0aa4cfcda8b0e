// A call ended by peergate itself (drain, maximum duration …) through B2bua.endCall: both
// legs get BYE and the call record says who and why. peergate runs in the test's process
// (App.start) so the test can call endCall; with the default `workers` (auto) the calls and
// their records are in the worker processes, reached through App.allCalls/endCall. The
// callers and callees are real SIPp processes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { stringify } from 'yaml';
import { pino } from 'pino';
import { freePorts, runSipp, startUas, stopAll, scratchDir, waitFor, writeFile } from '../helpers/procs.js';
import { PolicyHolder } from '../../src/policy/reload.js';
import { App } from '../../src/app/app.js';
import { CORE_IP, PEER_IP, twoSidedPolicy } from '../helpers/peergate.js';

const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-b2bua');
let sbe: App;
let holder: PolicyHolder;
let ports: { peerSip: number; coreSip: number; ops: number; coreUas: number };
let cdrFile: string;
let coreDir: string;

beforeAll(async () => {
  const [peerSip, coreSip, ops, coreUas] = await freePorts(4);
  ports = { peerSip: peerSip!, coreSip: coreSip!, ops: ops!, coreUas: coreUas! };
  const dir = scratchDir('cdr-drain-');
  cdrFile = join(dir, 'cdr.jsonl');
  coreDir = scratchDir('core-uas-');
  startUas(CORE_IP, ports.coreUas, { dir: coreDir, extra: ['-trace_msg'] });
  const path = writeFile(dir, 'policy.yaml', stringify(twoSidedPolicy(
    { peerPort: ports.peerSip, corePort: ports.coreSip, opsPort: ports.ops, coreTarget: `sip:${CORE_IP}:${ports.coreUas}`, peerIp: PEER_IP, logLevel: 'silent' },
    { media: { anchoring: false }, cdr: { file: cdrFile } },
  )));
  holder = PolicyHolder.load(path, { checkFiles: true });
  sbe = await App.start({ holder, log: pino({ level: 'silent' }), nodeId: 'drain-test' });
}, 60_000);

afterAll(async () => { await sbe?.stopNow('test'); await stopAll(); });

describe('calls ended by peergate', () => {
  it('endCall sends BYE to both legs and records ended_by peergate with the given reason', async () => {
    const dir = scratchDir('uac-drain-');
    const run = runSipp(['-sf', join(SCEN, 'uac-recv-bye.xml'), `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1',
      '-s', '+15551230000', '-m', '1', '-trace_msg'], { dir, timeoutS: 30 });
    const call = (await waitFor(async () => (await sbe.allCalls())[0], 10_000, 50, 'call established'))!;
    const id = call.id;
    // On more than one core the default puts the call in a worker process.
    if (availableParallelism() > 1) expect(call).toHaveProperty('worker');
    expect(await sbe.endCall('no-such-call', 'drain')).toBe(false);
    expect(await sbe.endCall(id, 'drain')).toBe(true);
    const r = await run;
    // The caller's scenario only succeeds when it receives a BYE.
    expect(r.successful).toBe(1);
    const log = readdirSync(dir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    const callId = /^Call-ID:\s*(.*)$/im.exec(log)![1]!.trim();
    const rec = (await waitFor(() => existsSync(cdrFile)
      && readFileSync(cdrFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>).find((x) => x.call_id === callId), 10_000, 50, 'CDR')) as Record<string, any>;
    expect(rec).toMatchObject({ id, result: 'drain', ended_by: 'peergate', end_reason: 'drain', status: 200 });
    expect(rec.answer_time).not.toBeNull();
    // The called side got its BYE too, on its own Call-ID.
    await waitFor(() => {
      const core = readdirSync(coreDir).filter((f) => f.endsWith('_messages.log')).map((f) => readFileSync(join(coreDir, f), 'utf8')).join('\n');
      return core.split(/\n(?=-{10,}|\S+ message (?:received|sent))/).some((m) => /^BYE sip:/m.test(m) && m.includes(`Call-ID: ${rec.b_call_id as string}`));
    }, 5000, 50, 'BYE at the core');
    expect(await sbe.allCalls()).toHaveLength(0);
    // A second end of the same call does nothing (and writes no second record).
    expect(await sbe.endCall(id, 'drain')).toBe(false);
    await new Promise((res) => setTimeout(res, 200));
    expect(readFileSync(cdrFile, 'utf8').split('\n').filter((l) => l.includes(callId))).toHaveLength(1);
  });
});
