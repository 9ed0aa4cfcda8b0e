// An unhandled promise rejection is logged and counted, and the process goes on (Node's default
// would end it): checked in a real child process, since the default is process-wide.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function run(script: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout + stderr });
    });
  });
}

describe('keepRunningOnStrayRejections', () => {
  it('logs the rejection with its stack, counts it, and the process goes on', async () => {
    const r = await run(`
      import { keepRunningOnStrayRejections } from './src/app/stray.ts';
      import { registry } from './src/ops/metrics.ts';
      const lines = [];
      keepRunningOnStrayRejections({ error: (o, m) => lines.push(JSON.stringify({ ...o, msg: m })) });
      void Promise.reject(new Error('lost in a library'));
      void Promise.reject('a bare string');
      await new Promise((r) => setTimeout(r, 50));
      const text = await registry.metrics();
      console.log(lines.join('\\n'));
      console.log(text.split('\\n').find((l) => l.startsWith('peergate_unhandled_rejections_total')));
      console.log('still running');
    `);
    expect(r.code, r.out).toBe(0);
    expect(r.out.split('\n')).toContain('still running');
    expect(r.out).toMatch(/"message":"lost in a library","stack":"Error: lost in a library/);
    expect(r.out).toContain('"message":"a bare string"');
    expect(r.out).toContain('peergate_unhandled_rejections_total 2');
  });

  it('without it, the same rejection ends the process (what it guards against)', async () => {
    const r = await run(`void Promise.reject(new Error('lost in a library')); await new Promise((r) => setTimeout(r, 50)); console.log('still running');`);
    expect(r.code).not.toBe(0);
    expect(r.out.split('\n')).not.toContain('still running');
    expect(r.out).toContain('Error: lost in a library');
  });
});
