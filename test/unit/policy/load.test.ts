import { describe, it, expect } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join, isAbsolute } from 'node:path';
import { loadPolicy, parsePolicy, formatError, formatKeyPath, MAX_POLICY_BYTES, type PolicyError } from '../../../src/policy/load.js';
import { scratchDir, writeFile } from '../../helpers/procs.js';

const BASE = `listen:
  - { name: peer-udp, side: peer, transport: udp, address: 127.0.0.1, port: 5060 }
  - { name: core-udp, side: core, transport: udp, address: 127.0.0.1, port: 5080 }
core:
  targets: [ "sip:127.0.0.1:5090" ]
peers:
  - id: alpha
    match: { addresses: [ 192.0.2.0/24 ] }
    targets: [ "sip:192.0.2.10:5060" ]
    limits: { cps: 10 }
  - id: beta
    match:
      addresses: [ 198.51.100.7 ]
    targets: [ "sip:198.51.100.7:5060" ]
routes:
  - { from: core, called_prefix: "+44", to: alpha }
  - { from: core, to: [ alpha, beta ] }
  - { from: peers, to: core }
`;

/** 1-based line/column of the first occurrence of `needle` (after `after`, if given). */
function pos(text: string, needle: string, after = ''): { line: number; column: number } {
  const start = after ? text.indexOf(after) : 0;
  const i = text.indexOf(needle, start);
  if (i < 0 || start < 0) throw new Error(`test bug: '${needle}' not in text`);
  const before = text.slice(0, i);
  const line = before.split('\n').length;
  return { line, column: i - before.lastIndexOf('\n') };
}

function errorsOf(text: string, file = '/etc/peergate/p.yaml'): PolicyError[] {
  const r = parsePolicy(text, file);
  if (r.ok) throw new Error('expected errors, policy loaded');
  return r.errors;
}

function expectErrorAt(errors: PolicyError[], expected: { line: number; column: number; keyPath: string; message: RegExp }) {
  const hit = errors.find((e) => e.keyPath === expected.keyPath);
  expect(hit, `no error for ${expected.keyPath}; got ${errors.map(formatError).join(' | ')}`).toBeDefined();
  expect(hit!.line).toBe(expected.line);
  expect(hit!.column).toBe(expected.column);
  expect(hit!.message).toMatch(expected.message);
}

describe('policy loader: valid files', () => {
  it('loads the base policy with defaults filled in and routes normalised to lists', () => {
    const r = parsePolicy(BASE, '/x/p.yaml');
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    const p = r.policy;
    expect(p.unknown_source).toBe('drop');
    expect(p.ops.address).toBe('127.0.0.1');
    expect(p.engine.embedded).toBe(true);
    expect(p.peers[0]!.methods).toContain('INVITE');
    expect(p.peers[0]!.methods).not.toContain('REGISTER');
    expect(p.peers[0]!.transport).toBe('any');
    expect(p.peers[1]!.topology.user_agent).toBe('remove');
    expect(p.routes[0]!.to).toEqual(['alpha']);
    expect(p.routes[1]!.to).toEqual(['alpha', 'beta']);
    expect(p.store.redis).toBeUndefined();
  });

  it('returns a deep-frozen policy', () => {
    const r = parsePolicy(BASE, '/x/p.yaml');
    if (!r.ok) throw new Error('failed');
    expect(Object.isFrozen(r.policy)).toBe(true);
    expect(Object.isFrozen(r.policy.peers[0]!.match.addresses)).toBe(true);
    expect(() => { (r.policy.peers as unknown as unknown[]).push({}); }).toThrow();
  });

  it('resolves relative file paths against the policy file directory, keeps absolute ones', () => {
    const text = BASE.replace('core:\n', `tls:
  certificate: certs/sbe.pem
  key: /abs/key.pem
  client_cas: [ ca/fed.pem ]
  require_client_cert: false
core:
`);
    const r = parsePolicy(text, '/srv/pg/policy.yaml');
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.tls!.certificate).toBe('/srv/pg/certs/sbe.pem');
    expect(r.policy.tls!.key).toBe('/abs/key.pem');
    expect(r.policy.tls!.client_cas).toEqual(['/srv/pg/ca/fed.pem']);
    expect(isAbsolute(r.policy.tls!.certificate)).toBe(true);
  });

  it('normalises certificate fingerprints to Node fingerprint256 form', () => {
    const fp = 'ab'.repeat(32);
    const text = BASE.replace('listen:\n', 'listen:\n  - { name: peer-tls, side: peer, transport: tls, address: 127.0.0.1, port: 5061 }\n')
      .replace('core:\n', 'tls: { certificate: a.pem, key: b.pem, client_cas: [ ca.pem ] }\ncore:\n')
      .replace('match: { addresses: [ 192.0.2.0/24 ] }', `match: { certificate: { fingerprints_sha256: [ "${fp}" ] } }`);
    const r = parsePolicy(text, '/x/p.yaml');
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.peers[0]!.match.certificate!.fingerprints_sha256[0]).toBe(Array(32).fill('AB').join(':'));
  });

  it('accepts unknown_source: 403 written as a YAML number', () => {
    const r = parsePolicy(`${BASE}unknown_source: 403\n`, '/x/p.yaml');
    expect(r.ok && r.policy.unknown_source).toBe('403');
  });

  it('the example policy checks OK', () => {
    const r = loadPolicy(join(import.meta.dirname, '../../../policies/example.yaml'));
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.listen.some((l) => l.side === 'core')).toBe(true);
    expect(r.policy.peers.length).toBeGreaterThan(0);
  });
});

describe('policy loader: every error names file, line, column and key path', () => {
  it('YAML syntax error', () => {
    const text = BASE.replace('targets: [ "sip:127.0.0.1:5090" ]', 'targets: [ "sip:127.0.0.1:5090"\n  bad: {');
    const errors = errorsOf(text);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.message).toMatch(/^YAML: /);
    expect(errors[0]!.file).toBe('/etc/peergate/p.yaml');
    expect(errors[0]!.line).toBeGreaterThanOrEqual(pos(text, 'targets').line);
    expect(formatError(errors[0]!)).toMatch(/^\/etc\/peergate\/p\.yaml:\d+:\d+: YAML: /);
  });

  it('duplicate YAML keys are an error', () => {
    const text = BASE.replace('core:\n', 'core:\n  targets: [ "sip:a" ]\n');
    const errors = errorsOf(text);
    expect(errors[0]!.message).toMatch(/YAML: .*(unique|duplicate)/i);
    expect(errors[0]!.line).toBe(pos(text, 'targets', 'core:').line + 1);
  });

  it('unknown key points at the key itself', () => {
    const text = BASE.replace('limits: { cps: 10 }', 'limits: { cps: 10 }\n    colour: blue');
    const errors = errorsOf(text);
    expectErrorAt(errors, { ...pos(text, 'colour'), keyPath: 'peers[0].colour', message: /unknown key 'colour'/ });
    expect(errors[0]!.message).not.toMatch(/did you mean/);
    const typo = BASE.replace('  targets: [ "sip:127.0.0.1:5090" ]', '  target: [ "sip:127.0.0.1:5090" ]');
    expect(errorsOf(typo).map(formatError)).toContain(`/etc/peergate/p.yaml:${pos(typo, 'target:').line}:3: core.target: unknown key 'target' (did you mean 'targets'?)`);
  });

  it('unknown key in a fragment owned by another stage (limits)', () => {
    const text = BASE.replace('limits: { cps: 10 }', 'limits: { cps: 10, cpss: 3 }');
    expectErrorAt(errorsOf(text), { ...pos(text, 'cpss'), keyPath: 'peers[0].limits.cpss', message: /unknown key 'cpss' \(did you mean 'cps'\?\)/ });
  });

  it('wrong type', () => {
    const text = BASE.replace('limits: { cps: 10 }', 'limits: { cps: ten }');
    expectErrorAt(errorsOf(text), { ...pos(text, 'ten }'), keyPath: 'peers[0].limits.cps', message: /number/ });
  });

  it('bad CIDR', () => {
    const text = BASE.replace('192.0.2.0/24', '192.0.2.0/33');
    expectErrorAt(errorsOf(text), { ...pos(text, '192.0.2.0/33'), keyPath: 'peers[0].match.addresses[0]', message: /not a valid CIDR/ });
  });

  it('dangling route target, in a list', () => {
    const text = BASE.replace('to: [ alpha, beta ]', 'to: [ alpha, gamma ]');
    expectErrorAt(errorsOf(text), { ...pos(text, 'gamma'), keyPath: 'routes[1].to[1]', message: /unknown peer 'gamma'/ });
  });

  it('dangling route source', () => {
    const text = BASE.replace('{ from: peers, to: core }', '{ from: delta, to: core }');
    expectErrorAt(errorsOf(text), { ...pos(text, 'delta'), keyPath: 'routes[2].from', message: /unknown peer 'delta'/ });
  });

  it('a route shadowed by an earlier one, and a target listed twice', () => {
    const text = BASE.replace('  - { from: peers, to: core }\n', '  - { from: peers, to: core }\n  - { from: beta, called_prefix: "+1", to: core }\n')
      .replace('to: [ alpha, beta ]', 'to: [ alpha, beta, alpha ]');
    const errors = errorsOf(text);
    expectErrorAt(errors, { ...pos(text, '{ from: beta'), keyPath: 'routes[3]', message: /unreachable: routes\[2\]/ });
    expectErrorAt(errors, { ...pos(text, 'alpha ]'), keyPath: 'routes[1].to[2]', message: /listed twice/ });
    // Narrower first, broader later is fine (the BASE file does that).
    expect(parsePolicy(BASE, '/x/p.yaml').ok).toBe(true);
  });

  it('finds shadowed routes as the pairwise definition does, on random tables', () => {
    type R = { from: string; called_prefix?: string; domain?: string };
    // The definition: an earlier route covers a later one when its from is the same (or peers,
    // and the later one is not from core), its prefix absent or a prefix, its domain absent or equal.
    const covers = (e: R, l: R) => (e.from === l.from || (e.from === 'peers' && l.from !== 'core'))
      && (e.called_prefix === undefined || (l.called_prefix?.startsWith(e.called_prefix) ?? false))
      && (e.domain === undefined || e.domain.toLowerCase() === l.domain?.toLowerCase());
    let seed = 99;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    let shadowed = 0;
    for (let t = 0; t < 60; t++) {
      const routes: R[] = Array.from({ length: 2 + rnd(12) }, () => ({
        from: ['core', 'peers', 'alpha', 'beta'][rnd(4)]!,
        ...(rnd(4) > 0 ? { called_prefix: `+${Array.from({ length: rnd(3) }, () => rnd(2)).join('')}` } : {}),
        ...(rnd(3) === 0 ? { domain: ['A.example', 'a.EXAMPLE', 'b.example'][rnd(3)]! } : {}),
      }));
      const yaml = routes.map((r) => `  - { from: ${r.from}${r.called_prefix === undefined ? '' : `, called_prefix: "${r.called_prefix}"`}`
        + `${r.domain === undefined ? '' : `, domain: ${r.domain}`}, to: ${r.from === 'core' ? 'alpha' : 'core'} }`).join('\n');
      const text = BASE.slice(0, BASE.indexOf('routes:\n')) + `routes:\n${yaml}\n`;
      const want = routes.map((r, i) => routes.findIndex((e, k) => k < i && covers(e, r)));
      const r = parsePolicy(text, '/x/p.yaml');
      const got = routes.map((_, i) => {
        const e = r.ok ? undefined : r.errors.find((x) => x.keyPath === `routes[${i}]`);
        return e ? Number(/routes\[(\d+)\] already/.exec(e.message)![1]) : -1;
      });
      expect(got, text).toEqual(want);
      shadowed += want.filter((k) => k >= 0).length;
    }
    expect(shadowed).toBeGreaterThan(50);
  });

  it('overlapping peer address ranges without certificates to tell them apart', () => {
    const text = BASE.replace('addresses: [ 198.51.100.7 ]', 'addresses: [ 198.51.100.7, 192.0.2.128/25 ]');
    expectErrorAt(errorsOf(text), { ...pos(text, '192.0.2.128/25'), keyPath: 'peers[1].match.addresses[1]', message: /overlaps 192\.0\.2\.0\/24 of peer 'alpha'/ });
    const wider = BASE.replace('addresses: [ 198.51.100.7 ]', 'addresses: [ 192.0.0.0/16 ]');
    expectErrorAt(errorsOf(wider), { ...pos(wider, '192.0.0.0/16'), keyPath: 'peers[1].match.addresses[0]', message: /overlaps/ });
    const v6 = BASE.replace('addresses: [ 198.51.100.7 ]', 'addresses: [ "2001:db8::/32" ]').replace('addresses: [ 192.0.2.0/24 ]', 'addresses: [ 192.0.2.0/24, "2001:db8:0:1::5" ]');
    expectErrorAt(errorsOf(v6), { ...pos(v6, '"2001:db8::/32"'), keyPath: 'peers[1].match.addresses[0]', message: /overlaps 2001:db8:0:1::5 of peer 'alpha'/ });
    const v6apart = v6.replace('"2001:db8:0:1::5"', '"2001:db9::5"');
    expect(parsePolicy(v6apart, '/x/p.yaml').ok).toBe(true);
    const adjacent = BASE.replace('addresses: [ 198.51.100.7 ]', 'addresses: [ 192.0.3.0/24, 192.0.1.255 ]');
    expect(parsePolicy(adjacent, '/x/p.yaml').ok).toBe(true);
  });

  it('duplicate peer id', () => {
    const text = BASE.replace('- id: beta', '- id: alpha');
    const second = pos(text, 'alpha', 'targets: [ "sip:192.0.2.10');
    expectErrorAt(errorsOf(text), { ...second, keyPath: 'peers[1].id', message: /duplicate peer id 'alpha'/ });
  });

  it('missing required key points at the enclosing map', () => {
    const text = BASE.replace('    match: { addresses: [ 192.0.2.0/24 ] }\n', '');
    expectErrorAt(errorsOf(text), { ...pos(text, 'id: alpha'), keyPath: 'peers[0].match', message: /missing required key 'match'/ });
  });

  it('port out of range', () => {
    const text = BASE.replace('port: 5080', 'port: 70000');
    expectErrorAt(errorsOf(text), { ...pos(text, '70000'), keyPath: 'listen[1].port', message: /1-65535/ });
  });

  it('listeners that would take the same socket', () => {
    const text = BASE.replace('listen:\n', 'listen:\n  - { name: any-udp, side: peer, transport: udp, address: 0.0.0.0, port: 5080 }\n');
    expectErrorAt(errorsOf(text), { ...pos(text, '5080', 'name: core-udp'), keyPath: 'listen[2].port', message: /udp port 5080 on 127\.0\.0\.1 is already taken by listen\[0\]/ });
    const tcpTls = BASE.replace('listen:\n', 'listen:\n  - { name: t, side: peer, transport: tcp, address: 127.0.0.1, port: 5080 }\n');
    expect(errorsOf(tcpTls.replace('name: core-udp', 'name: core-tcp').replace('side: core, transport: udp', 'side: core, transport: tcp')).map((e) => e.keyPath)).toContain('listen[2].port');
    expect(parsePolicy(tcpTls, '/x/p.yaml').ok).toBe(true); // tcp and udp share a port
  });

  it('a tls listener without tls material', () => {
    const text = BASE.replace('listen:\n', 'listen:\n  - { name: t, side: peer, transport: tls, address: 127.0.0.1, port: 5061 }\n');
    expectErrorAt(errorsOf(text), { ...pos(text, 'tls', 'name: t'), keyPath: 'listen[0].transport', message: /needs the top-level tls section/ });
  });

  it('unquoted called_prefix gets a hint', () => {
    const text = BASE.replace('called_prefix: "+44"', 'called_prefix: +44');
    expectErrorAt(errorsOf(text), { ...pos(text, '+44'), keyPath: 'routes[0].called_prefix', message: /quoted string/ });
  });

  it('reports several errors at once, in file order', () => {
    const text = BASE.replace('port: 5060', 'port: 0').replace('192.0.2.0/24', 'nope');
    const errors = errorsOf(text);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < errors.length; i++) expect(errors[i]!.line).toBeGreaterThanOrEqual(errors[i - 1]!.line);
  });

  it('missing file, empty file, non-mapping document', () => {
    const dir = scratchDir();
    const missing = loadPolicy(join(dir, 'nope.yaml'));
    expect(!missing.ok && missing.errors[0]!.message).toBe('file not found');
    const empty = loadPolicy(writeFile(dir, 'empty.yaml', '# nothing\n'));
    expect(!empty.ok && empty.errors[0]!.message).toMatch(/empty/);
    const huge = loadPolicy(writeFile(dir, 'huge.yaml', Buffer.alloc(MAX_POLICY_BYTES + 1, 0x20)));
    expect(!huge.ok && huge.errors[0]!.message).toMatch(/at most/);
    const isDir = loadPolicy(dir);
    expect(!isDir.ok && isDir.errors[0]!.message).toMatch(/cannot read/);
    const list = errorsOf('- a\n- b\n');
    expect(list[0]!.message).toMatch(/expected object/);
    expect(list[0]).toMatchObject({ line: 1, column: 1 });
  });

  it('a YAML alias bomb fails fast instead of hanging', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    const t0 = Date.now();
    const errors = errorsOf(lines.join('\n'));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(errors[0]!.message).toMatch(/YAML/);
  });

  it('checkFiles reports missing certificate files at their key', () => {
    const dir = scratchDir();
    writeFile(dir, 'ca.pem', 'x');
    const text = BASE.replace('core:\n', 'tls: { certificate: sbe.pem, key: sbe.pem, client_cas: [ ca.pem ], require_client_cert: false }\ncore:\n');
    const file = writeFile(dir, 'p.yaml', text);
    expect(loadPolicy(file).ok).toBe(true);
    const r = loadPolicy(file, { checkFiles: true });
    if (r.ok) throw new Error('expected missing files');
    expect(r.errors.map((e) => e.keyPath).sort()).toEqual(['tls.certificate', 'tls.key']);
    expect(r.errors[0]).toMatchObject({ ...pos(text, 'sbe.pem'), file });
  });

  it('identity files (anchors, fetch CAs, signing keys) resolve against the policy file directory; checkFiles names a missing one', () => {
    const dir = scratchDir();
    const text = BASE
      .replace('core:\n', `identity:
  trust_anchors: [ anchors/sti-root.pem ]
  rfc4474_trust_anchors: [ /abs/legacy-root.pem ]
  fetch: { tls_ca: [ fed-ca.pem ] }
core:
`)
      .replace('    limits: { cps: 10 }\n', `    limits: { cps: 10 }
    identity: { sign: { shaken: { attest: A, key: keys/sp.key, certificate_url: "https://cr.example/sp.pem" } } }
`)
      .replace('    targets: [ "sip:198.51.100.7:5060" ]\n', `    targets: [ "sip:198.51.100.7:5060" ]
    identity: { sign: { rfc4474: { key: rsa.key, certificate_url: "https://sbe.example/cert.pem" } } }
`);
    const file = writeFile(dir, 'p.yaml', text);
    const r = loadPolicy(file);
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.identity.trust_anchors).toEqual([join(dir, 'anchors/sti-root.pem')]);
    expect(r.policy.identity.rfc4474_trust_anchors).toEqual(['/abs/legacy-root.pem']);
    expect(r.policy.identity.fetch.tls_ca).toEqual([join(dir, 'fed-ca.pem')]);
    const sign0 = r.policy.peers[0]!.identity.sign;
    const sign1 = r.policy.peers[1]!.identity.sign;
    expect(sign0 && 'shaken' in sign0 && sign0.shaken.key).toBe(join(dir, 'keys/sp.key'));
    expect(sign1 && 'rfc4474' in sign1 && sign1.rfc4474.key).toBe(join(dir, 'rsa.key'));

    // All but the STI root exist (the absolute legacy root is replaced by one that does).
    mkdirSync(join(dir, 'keys'));
    for (const f of ['fed-ca.pem', 'keys/sp.key', 'rsa.key', 'legacy-root.pem']) writeFile(dir, f, 'x');
    const checked = writeFile(dir, 'p.yaml', text.replace('/abs/legacy-root.pem', join(dir, 'legacy-root.pem')));
    const missing = loadPolicy(checked, { checkFiles: true });
    if (missing.ok) throw new Error('expected the missing anchor to be reported');
    expect(missing.errors.map(formatError)).toEqual([
      `${checked}:${pos(text, 'anchors/sti-root.pem').line}:${pos(text, 'anchors/sti-root.pem').column}: identity.trust_anchors[0]: file not found: ${join(dir, 'anchors/sti-root.pem')}`,
    ]);
  });

  it('formatKeyPath and formatError', () => {
    expect(formatKeyPath(['peers', 1, 'limits', 'cps'])).toBe('peers[1].limits.cps');
    expect(formatKeyPath([])).toBe('');
    expect(formatError({ file: 'p.yaml', line: 3, column: 7, keyPath: 'a.b', message: 'bad' })).toBe('p.yaml:3:7: a.b: bad');
    expect(formatError({ file: 'p.yaml', line: 1, column: 1, keyPath: '', message: 'empty' })).toBe('p.yaml:1:1: empty');
  });
});

// engine.sip_timers: RFC 3261 Table 4 base values of the embedded engine. The defaults are the
// RFC's; a smaller T1 (§17.1.1.1) is accepted within bounds, and a bad value names its key.
const withEngine = (engine: string) => parsePolicy(`${BASE}${engine}`, '/etc/peergate/p.yaml');
function engineErrors(engine: string): string[] {
  const r = withEngine(engine);
  if (r.ok) throw new Error('expected errors, policy loaded');
  return r.errors.map(formatError);
}

describe('engine.sip_timers', () => {
  it('defaults to RFC 3261 Table 4: T1 500 ms, T2 4 s, T4 5 s', () => {
    const r = withEngine('');
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.engine.sip_timers).toEqual({ t1_ms: 500, t2_ms: 4000, t4_ms: 5000 });
  });

  it('takes a smaller T1 and keeps the other defaults', () => {
    const r = withEngine('engine: { sip_timers: { t1_ms: 100 } }\n');
    if (!r.ok) throw new Error(r.errors.map(formatError).join('\n'));
    expect(r.policy.engine.sip_timers).toEqual({ t1_ms: 100, t2_ms: 4000, t4_ms: 5000 });
  });

  it('refuses T1 below 50 ms, naming the key', () => {
    expect(engineErrors('engine: { sip_timers: { t1_ms: 10 } }\n').join('\n')).toMatch(/engine\.sip_timers\.t1_ms: t1_ms must be at least 50 ms/);
  });

  it('refuses T2 below T1, naming t2_ms', () => {
    expect(engineErrors('engine: { sip_timers: { t1_ms: 1000, t2_ms: 500 } }\n').join('\n')).toMatch(/engine\.sip_timers\.t2_ms: t2_ms must be at least t1_ms/);
  });

  it('refuses a fraction, a string and an unknown key', () => {
    expect(engineErrors('engine: { sip_timers: { t1_ms: 100.5 } }\n').join('\n')).toMatch(/engine\.sip_timers\.t1_ms/);
    expect(engineErrors('engine: { sip_timers: { t4_ms: "5s" } }\n').join('\n')).toMatch(/engine\.sip_timers\.t4_ms/);
    expect(engineErrors('engine: { sip_timers: { t3_ms: 100 } }\n').join('\n')).toMatch(/engine\.sip_timers.*t3_ms/);
  });
});

describe('engine.trying_delay_ms', () => {
  it("defaults to RFC 3261 §17.2.1's 200 ms and takes 0 (at once)", () => {
    const d = withEngine('');
    if (!d.ok) throw new Error(d.errors.map(formatError).join('\n'));
    expect(d.policy.engine.trying_delay_ms).toBe(200);
    const z = withEngine('engine: { trying_delay_ms: 0 }\n');
    if (!z.ok) throw new Error(z.errors.map(formatError).join('\n'));
    expect(z.policy.engine.trying_delay_ms).toBe(0);
  });

  it('refuses more than 200 ms (the RFC allows no longer), naming the key', () => {
    expect(engineErrors('engine: { trying_delay_ms: 250 }\n').join('\n')).toMatch(/engine\.trying_delay_ms/);
  });
});
