// rtpengine as a component: weighted pool, failover when an instance dies, 503 when none is
// left, recovery after restart without restarting the stage, and the embedded (spawned,
// supervised) rtpengine.
import { describe, it, expect, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { MediaStage, type SideMedia } from '../../src/sbc/media/index.js';
import { SideMediaSchema } from '../../src/sbc/media/schema.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';
import { stopAll, waitFor, freePort } from '../helpers/procs.js';
import { RtpEndpoint, audioSdp, makeStream, parseRtp, sdpMediaAddress, sendAll } from '../helpers/rtp.js';

const side = (p: Record<string, unknown> = {}): SideMedia => SideMediaSchema.parse(p);
const peer = side({ srtp: 'optional' });
const core = side({ srtp: 'forbidden' });
const stages: MediaStage[] = [];
const engines: TestRtpengine[] = [];

afterAll(async () => {
  await Promise.all(stages.map((s) => s.close()));
  await Promise.all(engines.map((e) => e.stop()));
  await stopAll();
});

function offerReq(port: number, extra: Partial<Parameters<MediaStage['offer']>[0]> = {}) {
  return { callId: `fo-${randomBytes(6).toString('hex')}`, fromTag: 'p', from: 'peer' as const, fromPolicy: peer, toPolicy: core, sdp: audioSdp({ port }), ...extra };
}

describe('rtpengine pool', () => {
  it('spreads new calls by weight, fails over when an instance dies, 503s when none is left, recovers after restart', async () => {
    const [a, b] = await Promise.all([startRtpengine(), startRtpengine()]);
    engines.push(a!, b!);
    const stage = await MediaStage.create({
      rtpengine: [{ address: a!.address, weight: 3 }, { address: b!.address, weight: 1 }],
      timeout_ms: 1000, health_interval_ms: 200, retry_after_s: 7,
    });
    stages.push(stage);
    const P = await RtpEndpoint.open();
    try {
      // Smooth weighted round robin: 8 calls → 6 on A, 2 on B.
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const req = offerReq(P.port);
        const r = await stage.offer(req);
        expect(r.ok).toBe(true);
        ids.push(req.callId);
      }
      expect((await a!.calls()).length).toBe(6);
      expect((await b!.calls()).length).toBe(2);
      const onA = (await a!.calls())[0]!;
      for (const id of ids.filter((x) => x !== onA)) await stage.delete(id);
      expect(await b!.calls()).toEqual([]);

      // A dies with a call on it: new calls go to B, the old call's delete does not throw.
      await a!.kill();
      const t0 = Date.now();
      const r1 = offerReq(P.port);
      expect((await stage.offer(r1)).ok).toBe(true);
      expect(Date.now() - t0).toBeLessThan(4000);
      expect(await b!.calls()).toEqual([r1.callId]);
      await expect(stage.delete(onA)).resolves.toBeUndefined();
      await stage.delete(r1.callId);

      // Both down: 503 with Retry-After from policy; a peer allowing it goes unanchored.
      await b!.kill();
      await waitFor(() => !stage.ready(), 8000, 50, 'stage to notice both rtpengines are down');
      const refused = await stage.offer(offerReq(P.port));
      expect(refused).toMatchObject({ ok: false, status: 503, reason: 'no_rtpengine', retryAfterS: 7 });
      const lax = offerReq(P.port, { fromPolicy: side({ allow_unanchored: true }) });
      const unanchored = await stage.offer(lax);
      // Unanchored: the media lines cross as offered; only the o= identity is peergate's (sdp-topology.ts).
      expect(unanchored).toMatchObject({ ok: true, anchored: false, sdp: lax.sdp.replace(/^o=.*$/m, (unanchored as { sdp: string }).sdp.match(/^o=- \d+ 1 .*$/m)?.[0] ?? 'o= not rewritten') });
      expect(await stage.answer({ callId: lax.callId, fromTag: 'p', toTag: 'c', sdp: audioSdp({ port: P.port + 2 }) })).toMatchObject({ ok: true, anchored: false });
      await stage.delete(lax.callId);
      // SRTP translation cannot happen without a relay: still 503 even when unanchored is allowed.
      const needsRelay = await stage.offer(offerReq(P.port, { fromPolicy: side({ allow_unanchored: true }), toPolicy: side({ srtp: 'required' }), from: 'core' }));
      expect(needsRelay).toMatchObject({ ok: false, status: 503 });

      // A comes back: the stage finds it by health check, no restart of the stage.
      await a!.restart();
      await waitFor(() => stage.ready(), 3000, 50, 'stage to see rtpengine A again');
      const C = await RtpEndpoint.open();
      try {
        const r2 = offerReq(P.port);
        const off = await stage.offer(r2);
        if (!off.ok) throw new Error(`offer after restart refused: ${off.warning}`);
        const ans = await stage.answer({ callId: r2.callId, fromTag: 'p', toTag: 'c', sdp: audioSdp({ port: C.port }) });
        if (!ans.ok) throw new Error('answer refused');
        expect(await a!.calls()).toEqual([r2.callId]);
        const pkts = makeStream(3, 0xabcdef01);
        await sendAll(P, pkts, sdpMediaAddress(ans.sdp).port);
        const got = await C.waitFor(3);
        expect(got.map((g) => parseRtp(g.data).seq)).toEqual([1000, 1001, 1002]);
        await stage.delete(r2.callId);
        expect(await a!.calls()).toEqual([]);
      } finally {
        await C.close();
      }
    } finally {
      await P.close();
    }
  });

  it('a new call finding every rtpengine down pings them at once: refused promptly while down, served as soon as one is back', async () => {
    const a = await startRtpengine();
    engines.push(a);
    // A health tick too slow to matter here: only the call path's own probe can find A again.
    const stage = await MediaStage.create({ rtpengine: [{ address: a.address, weight: 1 }], timeout_ms: 200, health_interval_ms: 600_000, retry_after_s: 7 });
    stages.push(stage);
    const P = await RtpEndpoint.open();
    try {
      await a.kill();
      // Two unanswered offers take A out of rotation.
      for (let i = 0; i < 2; i++) expect(await stage.offer(offerReq(P.port))).toMatchObject({ ok: false, status: 503 });
      expect(stage.ready()).toBe(false);
      const t0 = Date.now();
      expect(await stage.offer(offerReq(P.port))).toMatchObject({ ok: false, status: 503, reason: 'no_rtpengine' });
      expect(Date.now() - t0).toBeLessThan(1000);

      await a.restart();
      const req = offerReq(P.port);
      const r = await stage.offer(req);
      expect(r.ok).toBe(true);
      expect(stage.ready()).toBe(true);
      expect(await a.calls()).toEqual([req.callId]);
      await stage.delete(req.callId);
    } finally {
      await P.close();
    }
  });

  it('embedded mode spawns and supervises its own rtpengine and stops it on close', async () => {
    const base = 20000 + 2 * Math.floor(Math.random() * 19000);
    const stage = await MediaStage.create({
      rtpengine: 'spawn', embedded: { port_min: base, port_max: base + 39, ng_port: await freePort() },
      timeout_ms: 1000, health_interval_ms: 200,
    });
    stages.push(stage);
    const pid = stage.embeddedPid!;
    expect(pid).toBeGreaterThan(0);
    const P = await RtpEndpoint.open();
    try {
      const r = offerReq(P.port);
      const off = await stage.offer(r);
      if (!off.ok) throw new Error(`offer refused: ${off.warning}`);
      const port = sdpMediaAddress(off.sdp).port;
      expect(port).toBeGreaterThanOrEqual(base);
      expect(port).toBeLessThanOrEqual(base + 39);
      await stage.delete(r.callId);

      // It crashes: the stage restarts it and carries on.
      process.kill(pid, 'SIGKILL');
      await waitFor(() => stage.embeddedPid !== undefined && stage.embeddedPid !== pid && stage.ready(), 8000, 50, 'embedded rtpengine restarted');
      const r2 = offerReq(P.port);
      await waitFor(async () => (await stage.offer(r2)).ok, 3000, 100, 'offer after embedded restart');
      await stage.delete(r2.callId);
    } finally {
      await P.close();
    }
    const last = stage.embeddedPid!;
    await stage.close();
    stages.splice(stages.indexOf(stage), 1);
    expect(() => process.kill(last, 0)).toThrow();
  });
});
