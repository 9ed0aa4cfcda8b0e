// The one reload path: a valid file that a subsystem objects to is refused with file:line and
// key and the running policy stays; a change of a TLS file the policy names reloads it;
// restart-needed keys are computed against the policy the process started with.
import { describe, it, expect, afterEach } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PolicyHolder } from '../../../src/policy/reload.js';
import { createLogger } from '../../../src/log.js';
import { locateProblems } from '../../../src/app/locate.js';
import { changedKeys } from '../../../src/app/subsystem.js';
import { formatError } from '../../../src/policy/load.js';
import { scratchDir, waitFor } from '../../helpers/procs.js';

const yaml = (port: number, extra = '') => `listen:
  - { name: p, side: peer, transport: udp, address: 127.0.0.1, port: ${port} }
  - { name: c, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core: { targets: [ "sip:127.0.0.1:5090" ] }
ops:
  port: 9090
${extra}`;

const logger = createLogger({ destination: new Writable({ write(_c, _e, cb) { cb(); } }) });
let holder: PolicyHolder | undefined;
afterEach(() => { holder?.close(); holder = undefined; });

describe('reload gate', () => {
  it('a problem from prepare refuses the file with file:line:column and key; the running policy stays', async () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, yaml(5060));
    holder = PolicyHolder.load(file, { logger });
    const running = holder.current;
    holder.setGate((next) => (next.ops.port === 9999 ? locateProblems(file, [{ keyPath: ['ops', 'port'], message: 'port taken' }]) : []));
    writeFileSync(file, yaml(5060).replace('port: 9090', 'port: 9999'));
    expect(await holder.reload()).toBe(false);
    expect(holder.current).toBe(running);
    expect(holder.lastErrors.map(formatError)).toEqual([`${file}:6:9: ops.port: port taken`]);
    writeFileSync(file, yaml(5070));
    expect(await holder.reload()).toBe(true);
    expect(holder.current.listen[0]!.port).toBe(5070);
  });

  it('locates the deepest key present in the file (defaults have no line)', () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    writeFileSync(file, yaml(5060, 'tls:\n  certificate: a.pem\n  key: b.pem\n  crls: [ x.pem, y.pem ]\n'));
    const [crl, absent] = locateProblems(file, [
      { keyPath: ['tls', 'crls', 1], message: 'bad' },
      { keyPath: ['tls', 'client_cas', 0], message: 'missing' },
    ]);
    expect(crl).toMatchObject({ line: 10, column: 18, keyPath: 'tls.crls[1]' });
    // Only `tls` exists: the error points at it.
    expect(absent).toMatchObject({ line: 7, keyPath: 'tls.client_cas[0]' });
  });

  it('a change of a material file (same policy text) reloads; an unchanged one does not', async () => {
    const dir = scratchDir();
    const file = join(dir, 'p.yaml');
    const crl = join(dir, 'crl.pem');
    writeFileSync(file, yaml(5060));
    writeFileSync(crl, 'one');
    holder = PolicyHolder.load(file, { logger, debounceMs: 50 });
    let reloads = 0;
    holder.on('policy', () => { reloads++; });
    holder.watchMaterial([crl]);
    holder.watch();
    writeFileSync(crl, readFileSync(crl)); // same bytes: no reload
    await new Promise((r) => setTimeout(r, 300));
    expect(reloads).toBe(0);
    writeFileSync(crl, 'two');
    await waitFor(() => reloads === 1, 3000, 20, 'reload on material change');
  });

  it('changedKeys compares dotted keys against the started policy', () => {
    const a = { listen: [1], ops: { address: '127.0.0.1', port: 1 }, store: {} } as never;
    const b = { listen: [1], ops: { address: '127.0.0.1', port: 2 }, store: {} } as never;
    expect(changedKeys(a, b, ['listen', 'ops.address', 'ops.port', 'store'])).toEqual(['ops.port']);
  });
});
