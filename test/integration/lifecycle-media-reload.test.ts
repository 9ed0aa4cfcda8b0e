// Reload of the rtpengine list (issue #16.4) against two real rtpengines: new calls go to the
// new list at once, a call in progress keeps (and is deleted on) the instance it started on,
// and what only a restart changes is reported as such.
import { describe, it, expect, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { MediaStage } from '../../src/sbc/media/index.js';
import { SideMediaSchema, GlobalMediaSchema } from '../../src/sbc/media/schema.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';
import { stopAll, waitFor } from '../helpers/procs.js';
import { RtpEndpoint, audioSdp } from '../helpers/rtp.js';

const peer = SideMediaSchema.parse({ srtp: 'optional' });
const core = SideMediaSchema.parse({ srtp: 'forbidden' });
const engines: TestRtpengine[] = [];
let stage: MediaStage | undefined;

afterAll(async () => {
  await stage?.close();
  await Promise.all(engines.map((e) => e.stop()));
  await stopAll();
});

describe('rtpengine list reload', () => {
  it('new calls go to the new list at once; a call in progress stays on its instance', async () => {
    const [a, b] = await Promise.all([startRtpengine(), startRtpengine()]);
    engines.push(a!, b!);
    const cfg = (address: string, extra: Record<string, unknown> = {}) => GlobalMediaSchema.parse({ rtpengine: [{ address }], timeout_ms: 1000, health_interval_ms: 200, ...extra });
    stage = await MediaStage.create(cfg(a!.address));
    const P = await RtpEndpoint.open();
    try {
      const offer = (callId: string) => stage!.offer({ callId, fromTag: 'p', from: 'peer', fromPolicy: peer, toPolicy: core, sdp: audioSdp({ port: P.port }) });
      const first = `mr-${randomBytes(4).toString('hex')}`;
      expect((await offer(first)).ok).toBe(true);
      expect(await a!.calls()).toEqual([first]);

      expect(stage.reconfigure(cfg(b!.address))).toEqual([]);
      await waitFor(() => stage!.ready(), 3000, 20, 'new instance healthy');
      const second = `mr-${randomBytes(4).toString('hex')}`;
      expect((await offer(second)).ok).toBe(true);
      expect(await b!.calls()).toEqual([second]);
      expect(await a!.calls()).toEqual([first]);

      // The old call ends on the instance it started on.
      await stage.delete(first);
      expect(await a!.calls()).toEqual([]);
      await stage.delete(second);
      expect(await b!.calls()).toEqual([]);

      // Settings the running pool cannot take are reported, not applied.
      expect(stage.reconfigure(cfg(b!.address, { timeout_ms: 500, health_interval_ms: 300 }))).toEqual(['media.timeout_ms', 'media.health_interval_ms']);
      expect(stage.reconfigure(GlobalMediaSchema.parse({ rtpengine: 'spawn', timeout_ms: 1000, health_interval_ms: 200 }))).toEqual(['media.rtpengine']);
      // Back to what it runs: nothing pending.
      expect(stage.reconfigure(cfg(b!.address))).toEqual([]);
    } finally {
      P.close();
    }
  }, 40_000);
});
