// The media stage's API edges that need no live rtpengine: bad input, no relay reachable,
// answer without offer, idempotent delete, and a clear error when the embedded binary is missing.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { MediaStage } from '../../../src/sbc/media/index.js';
import { SideMediaSchema } from '../../../src/sbc/media/schema.js';
import { freePort } from '../../helpers/procs.js';

const side = (p: Record<string, unknown> = {}) => SideMediaSchema.parse(p);
const SDP = 'v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
let stage: MediaStage;

beforeAll(async () => {
  // An instance that never answers: the stage starts anyway and refuses calls with 503.
  stage = await MediaStage.create({ rtpengine: [{ address: `127.0.0.1:${await freePort()}`, weight: 1 }], timeout_ms: 1000, health_interval_ms: 60_000, retry_after_s: 12 });
});
afterAll(async () => { await stage.close(); });

describe('MediaStage without a reachable rtpengine', () => {
  it('is not ready and answers 503 with Retry-After, without waiting for the ng timeout', async () => {
    expect(stage.ready()).toBe(false);
    const t0 = Date.now();
    const r = await stage.offer({ callId: 'c1', fromTag: 'a', from: 'peer', fromPolicy: side(), toPolicy: side(), sdp: SDP });
    expect(r).toMatchObject({ ok: false, status: 503, reason: 'no_rtpengine', retryAfterS: 12 });
    // At most the on-demand probe's short wait (100 ms), far below the 1 s ng timeout.
    expect(Date.now() - t0).toBeLessThan(600);
    expect(stage.activeCalls()).toBe(0);
  });

  it('refuses bad SDP with 488 and a Warning, and policy violations before any relay is asked', async () => {
    for (const sdp of ['', 'hello', 'v=0\r\nm=audio x RTP/AVP 0\r\n', 'x'.repeat(100_000)]) {
      const r = await stage.offer({ callId: 'c2', fromTag: 'a', from: 'peer', fromPolicy: side(), toPolicy: side(), sdp });
      expect(r).toMatchObject({ ok: false, status: 488, reason: 'bad_sdp' });
      if (!r.ok) expect(r.warning).toMatch(/^399 peergate "/);
    }
    const r = await stage.offer({ callId: 'c3', fromTag: 'a', from: 'peer', fromPolicy: side({ srtp: 'required' }), toPolicy: side(), sdp: SDP });
    expect(r).toMatchObject({ ok: false, status: 488, reason: 'srtp_required' });
  });

  it('answer without an offer is a 500; delete and query of unknown calls are harmless', async () => {
    expect(await stage.answer({ callId: 'nope', fromTag: 'a', toTag: 'b', sdp: SDP })).toMatchObject({ ok: false, status: 500, reason: 'no_offer' });
    await expect(stage.delete('nope')).resolves.toBeUndefined();
    await expect(stage.delete('nope')).resolves.toBeUndefined();
    await expect(stage.query('nope')).resolves.toBeUndefined();
  });

  it('a peer that allows it goes unanchored, media lines untouched, only when no translation is needed', async () => {
    const lax = side({ allow_unanchored: true });
    const r = await stage.offer({ callId: 'u1', fromTag: 'a', from: 'peer', fromPolicy: lax, toPolicy: side(), sdp: SDP });
    expect(r).toMatchObject({ ok: true, anchored: false });
    // Media flows directly: c=/m= and attributes cross as sent; only identity fields (o=, s=…) are ours (sdp-topology.ts).
    const media = (s: string) => s.split(/\r?\n/).filter((l) => /^[cmat]=/.test(l));
    expect(r.ok && media(r.sdp)).toEqual(media(SDP));
    expect(r.ok && r.sdp).toMatch(/\r\no=- \d+ 1 /);
    expect(await stage.answer({ callId: 'u1', fromTag: 'a', toTag: 'b', sdp: SDP })).toMatchObject({ ok: true, anchored: false });
    await stage.delete('u1');
    const core = await stage.offer({ callId: 'u2', fromTag: 'a', from: 'core', fromPolicy: lax, toPolicy: side(), sdp: SDP });
    expect(core).toMatchObject({ ok: false, status: 503 }); // the core's own setting does not count: the peer's does
  });
});

describe('embedded rtpengine', () => {
  it('fails with a clear error when the binary is missing', async () => {
    await expect(MediaStage.create({ rtpengine: 'spawn', embedded: { binary: '/nonexistent/rtpengine' }, timeout_ms: 100 }))
      .rejects.toThrow(/embedded rtpengine did not start.*ENOENT/s);
  });
});
