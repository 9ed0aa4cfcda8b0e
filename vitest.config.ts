import { defineConfig } from 'vitest/config';

// Two cores. Unit files run in parallel; integration files start real sipp, redis, rtpengine,
// kamailio and peergate processes and some measure rates (flood, call-rate limits), so they
// run one file at a time to keep their timing honest.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 90_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], fileParallelism: false } },
    ],
  },
});
