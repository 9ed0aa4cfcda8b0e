/* global process */
// Preload for bench/alloc.bench.ts (node --import, inherited by the B2BUA workers through
// NODE_OPTIONS). On the first SIGURG (ignored by default, unused by peergate) it starts V8's
// sampling heap profiler counting objects the GC has already collected too, so the profile is
// what the process ALLOCATED (garbage included), not what is live; on the second it stops and
// writes $ALLOC_PROFILE_DIR/<pid>.heapprofile (Chrome DevTools' format).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.ALLOC_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let sampling = false;
  process.on('SIGURG', () => {
    if (!sampling) {
      sampling = true;
      session.post('HeapProfiler.enable', () => session.post('HeapProfiler.startSampling', {
        samplingInterval: Number(process.env.ALLOC_SAMPLING_INTERVAL ?? 16384),
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      }));
      return;
    }
    sampling = false;
    session.post('HeapProfiler.stopSampling', (err, res) => {
      writeFileSync(`${dir}/${process.pid}.heapprofile`, JSON.stringify(err ? { error: String(err) } : res.profile));
    });
  });
}
