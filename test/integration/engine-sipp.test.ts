// drachtio-srf apps on the engine with real SIPp over UDP and TCP (issue 2 "Tests").
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { freePort, runSipp, startSipp, stopAll, waitFor } from '../helpers/procs.js';
import { SIPP_DIR, startConnectedApp, startTestEngine } from '../helpers/engine.js';
import type { Engine } from '../../src/engine/engine.js';

const sf = (name: string) => join(SIPP_DIR, name);
let engine: Engine | undefined;

afterEach(async () => {
  await stopAll();
  await engine?.close();
  engine = undefined;
});

for (const transport of ['udp', 'tcp'] as const) {
  const t = transport === 'udp' ? 'u1' : 't1';
  describe(`engine with sipp over ${transport}`, () => {
    it('OPTIONS is answered by the app (To-tag added, app header kept)', async () => {
      const e = await startTestEngine(); engine = e;
      await startConnectedApp('uas.mjs', e, {}, ['options']);
      const r = await runSipp(['-sf', sf('options-uac.xml'), `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '3', '-r', '10'], { timeoutS: 15 });
      expect(r.output).not.toMatch(/Aborting/);
      expect(r.successful).toBe(3);
      expect(r.failed).toBe(0);
    });

    it('sipp uac -> engine -> app createUAS: calls complete, BYE from the caller reaches the app', async () => {
      const e = await startTestEngine(); engine = e;
      const app = await startConnectedApp('uas.mjs', e, {}, ['invite']);
      const r = await runSipp(['-sn', 'uac', `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '5', '-r', '20', '-d', '100'], { timeoutS: 20 });
      expect(r.successful).toBe(5);
      expect(r.failed).toBe(0);
      await waitFor(() => app.events().filter((x) => x.event === 'destroy').length === 5, 5000, 25, 'five destroys');
      expect(app.events().filter((x) => x.event === 'uas-dialog')).toHaveLength(5);
      await waitFor(() => e.core.dialogs.size === 0, 3000, 25, 'dialogs gone');
    });

    it('app hangs up a createUAS dialog: BYE from the app reaches sipp', async () => {
      const e = await startTestEngine(); engine = e;
      await startConnectedApp('uas.mjs', e, { APP_BYE_MS: '200' }, ['invite']);
      const r = await runSipp(['-sf', sf('uac-recv-bye.xml'), `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '2', '-r', '10'], { timeoutS: 15 });
      expect(r.successful).toBe(2);
      expect(r.failed).toBe(0);
    });

    it('app createUAC -> sipp uas: answered, ACKed and hung up by the app', async () => {
      const e = await startTestEngine(); engine = e;
      const uasPort = await freePort();
      const uas = startSipp(['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-t', t, '-m', '3']);
      const app = await startConnectedApp('uac.mjs', e, { UAC_TARGET: `sip:uas@127.0.0.1:${uasPort};transport=${transport}`, CALLS: '3', HOLD_MS: '100' });
      await app.waitEvent((x) => x.event === 'done', 20_000, 'uac done');
      expect(app.events().filter((x) => x.event === 'answered')).toHaveLength(3);
      expect(app.events().filter((x) => x.event === 'uac-failed')).toHaveLength(0);
      const code = await Promise.race([uas.exited, new Promise((r) => setTimeout(() => r('running'), 5000))]);
      expect(code).toBe(0);
    });

    it('sipp uac -> app createB2BUA -> sipp uas: call, BYE from the caller', async () => {
      const e = await startTestEngine(); engine = e;
      const uasPort = await freePort();
      startSipp(['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-t', t]);
      const app = await startConnectedApp('b2bua.mjs', e, { B_TARGET: `sip:uas@127.0.0.1:${uasPort};transport=${transport}` }, ['invite']);
      const r = await runSipp(['-sn', 'uac', `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '4', '-r', '20', '-d', '100'], { timeoutS: 20 });
      expect(r.successful).toBe(4);
      expect(r.failed).toBe(0);
      await waitFor(() => app.events().filter((x) => x.event === 'a-bye').length === 4, 5000, 25, 'a-leg byes');
      await waitFor(() => e.core.dialogs.size === 0, 5000, 25, 'dialogs gone');
    });

    it('B2BUA: BYE from the callee side ends the caller leg', async () => {
      const e = await startTestEngine(); engine = e;
      const uasPort = await freePort();
      startSipp(['-sf', sf('uas-sends-bye.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-t', t]);
      const app = await startConnectedApp('b2bua.mjs', e, { B_TARGET: `sip:uas@127.0.0.1:${uasPort};transport=${transport}` }, ['invite']);
      const r = await runSipp(['-sf', sf('uac-recv-bye.xml'), `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '2', '-r', '10'], { timeoutS: 20 });
      expect(r.successful).toBe(2);
      expect(r.failed).toBe(0);
      expect(app.events().filter((x) => x.event === 'b-bye')).toHaveLength(2);
    });

    it('B2BUA: 486 from the callee reaches the caller', async () => {
      const e = await startTestEngine(); engine = e;
      const uasPort = await freePort();
      startSipp(['-sf', sf('uas-busy.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-t', t]);
      const app = await startConnectedApp('b2bua.mjs', e, { B_TARGET: `sip:uas@127.0.0.1:${uasPort};transport=${transport}` }, ['invite']);
      const r = await runSipp(['-sf', sf('uac-busy.xml'), `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '2', '-r', '10'], { timeoutS: 20 });
      expect(r.successful).toBe(2);
      expect(r.failed).toBe(0);
      expect(app.events().filter((x) => x.event === 'failed' && x.status === 486)).toHaveLength(2);
    });

    it('B2BUA: CANCEL before answer is passed on to the callee', async () => {
      const e = await startTestEngine(); engine = e;
      const uasPort = await freePort();
      startSipp(['-sf', sf('uas-ring-cancel.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-t', t]);
      await startConnectedApp('b2bua.mjs', e, { B_TARGET: `sip:uas@127.0.0.1:${uasPort};transport=${transport}` }, ['invite']);
      const r = await runSipp(['-sf', sf('uac-cancel.xml'), `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '2', '-r', '10'], { timeoutS: 20 });
      expect(r.successful).toBe(2);
      expect(r.failed).toBe(0);
    });

    it('B2BUA: re-INVITE from the caller goes through to the callee', async () => {
      const e = await startTestEngine(); engine = e;
      const uasPort = await freePort();
      startSipp(['-sf', sf('uas-reinvite.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-t', t]);
      const app = await startConnectedApp('b2bua.mjs', e, { B_TARGET: `sip:uas@127.0.0.1:${uasPort};transport=${transport}` }, ['invite']);
      const r = await runSipp(['-sf', sf('uac-reinvite.xml'), `127.0.0.1:${e.sipPort}`, '-i', '127.0.0.1', '-p', String(await freePort()), '-t', t, '-m', '2', '-r', '10'], { timeoutS: 20 });
      expect(r.successful).toBe(2);
      expect(r.failed).toBe(0);
      expect(app.events().filter((x) => x.event === 'reinvite')).toHaveLength(2);
    });
  });
}
