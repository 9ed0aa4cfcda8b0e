// `peergate check` as a real process, through bin/peergate.js.
import { describe, it, expect, afterAll } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startProcess, stopAll, scratchDir, writeFile } from '../../helpers/procs.js';

const root = join(import.meta.dirname, '../../..');
const bin = join(root, 'bin/peergate.js');

async function check(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = startProcess(process.execPath, [bin, 'check', ...args], { cwd: root });
  const code = await p.exited;
  return { code, out: p.output() };
}

afterAll(stopAll);

describe('peergate check', () => {
  it('exit 0 and OK for the example policy', async () => {
    const r = await check(['policies/example.yaml']);
    expect(r.out).toContain('policies/example.yaml: OK');
    expect(r.code).toBe(0);
  });

  it('exit 1 and file:line:column: keyPath: message for a bad one', async () => {
    const dir = scratchDir();
    const text = readFileSync(join(root, 'policies/example.yaml'), 'utf8').replace('127.0.0.1/32', '127.0.0.300/32');
    const file = writeFile(dir, 'bad.yaml', text);
    const lines = text.split('\n');
    const line = lines.findIndex((l) => l.includes('127.0.0.300/32')) + 1;
    const column = lines[line - 1]!.indexOf('127.0.0.300/32') + 1;
    const r = await check([file]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${file}:${line}:${column}: peers[0].match.addresses[0]: not a valid CIDR`);
    expect(r.out).not.toContain(': OK');
  });

  it('exit 2 on usage errors', async () => {
    const r = await check(['--bogus', 'x.yaml']);
    expect(r.code).toBe(2);
    expect(r.out).toContain('unknown option --bogus');
  });
});
