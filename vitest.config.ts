import { defineConfig } from 'vitest/config';

// Two cores. Integration files start real sipp, redis, rtpengine, kamailio and peergate
// processes and some measure rates or latency (flood, overload, call-rate limits, pool expiry,
// stage timing), so most run one file at a time (the 'integration' project: vitest runs such a
// project as a group of its own, after every other, alone on the machine).
// PARALLEL are integration files that mostly wait (RFC 4028 session timers, held calls, drain
// deadlines, one-shot CLI runs) and assert no rate or upper time bound that a busy second core
// could break: they run two at a time beside the unit files, in the first group. Their ports come
// from per-worker slices (test/helpers/procs.ts freePort), so two files never collide.
// Not here: package-deb (rebuilds dist/, which running peergates load); engine-sipp (it reads
// its app's events as soon as SIPp ends, which a busy second core can delay); held-calls-release
// (its 40 calls must be up within 20 s, which failed once beside the unit files at the run's start).
const PARALLEL = [
  'test/integration/call-orderings.test.ts',
  'test/integration/stuck-session-timer.test.ts',
  'test/integration/lifecycle-drain.test.ts',
  'test/integration/package-cli.test.ts',
  'test/integration/stuck-endings.test.ts',
  'test/integration/b2bua-grammar.test.ts',
  // One node (or in-process app) each, a handful of calls or requests, no rate or latency bound
  // (only waits of 5-15 s), short, and most of their time waiting on their processes:
  'test/integration/workers-preadmit.test.ts',
  'test/integration/lifecycle-reload.test.ts',
  'test/integration/reload-identity.test.ts',
  'test/integration/cdr-drain.test.ts',
  'test/integration/workers-default.test.ts',
  'test/integration/validate-hostile.test.ts',
  'test/integration/refusal-log.test.ts',
];

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 90_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration-parallel', include: PARALLEL } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], exclude: PARALLEL, fileParallelism: false } },
    ],
  },
});
