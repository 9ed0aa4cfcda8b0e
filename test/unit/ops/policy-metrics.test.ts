// Gauges from the policy in force, checked against the openssl binary's reading of the same
// files: certificate notAfter, CRL nextUpdate, and the policy's session limits.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadPolicy } from '../../../src/policy/load.js';
import type { Policy } from '../../../src/policy/schema.js';
import { recordPolicyInForce, certificateExpiry, crlNextUpdateGauge, tlsFileErrors } from '../../../src/ops/policy-metrics.js';
import { sessionLimit, policyLoadedTimestamp, registry } from '../../../src/ops/metrics.js';
import { crlNextUpdate } from '../../../src/pki/der.js';
import { makePki, makeCrl, type TestPki } from '../../helpers/tls.js';
import { scratchDir } from '../../helpers/procs.js';

const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** `notAfter=Jan  2 03:04:05 2027 GMT` → unix seconds. */
const opensslTime = (line: string) => Math.floor(Date.parse(line.slice(line.indexOf('=') + 1).trim()) / 1000);

let pki: TestPki;
let crlFile: string;
let longLived: string;

function policyWith(dir: string, tls: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): Policy {
  const file = join(dir, `policy-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify({
    listen: [{ name: 'p', side: 'peer', transport: tls ? 'tls' : 'udp', address: '127.0.0.1', port: 5999 },
      { name: 'c', side: 'core', transport: 'udp', address: '127.0.0.1', port: 5998 }],
    ...(tls ? { tls } : {}),
    core: { targets: ['sip:127.0.0.1:5997'] },
    media: { anchoring: false },
    peers: [
      { id: 'carrier-a', match: { addresses: ['192.0.2.1/32'] }, limits: { sessions: 40 } },
      { id: 'carrier-b', match: { addresses: ['192.0.2.2/32'] } },
    ],
    routes: [{ from: 'peers', to: 'core' }],
    ...extra,
  }));
  const r = loadPolicy(file);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.policy;
}

beforeAll(() => {
  pki = makePki();
  const crl = makeCrl(pki.ca);
  crlFile = join(pki.dir, 'ca.crl.pem');
  writeFileSync(crlFile, crl);
  // notAfter past 2049 is written as GeneralizedTime (RFC 5280 §4.1.2.5).
  longLived = join(pki.dir, 'long.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(pki.dir, 'long.key'),
    '-out', longLived, '-days', '10000', '-subj', '/CN=long lived CA']);
}, 60_000);

describe('recordPolicyInForce', () => {
  it('exposes notAfter of the served certificate and every client CA, and the CRL nextUpdate, as openssl reads them', async () => {
    const bundle = join(pki.dir, 'cas.pem');
    writeFileSync(bundle, readFileSync(pki.otherCa.certFile, 'utf8') + readFileSync(longLived, 'utf8'));
    const policy = policyWith(pki.dir, {
      certificate: pki.server.certFile, key: pki.server.keyFile, client_cas: [pki.ca.certFile, bundle], crls: [crlFile],
    });
    recordPolicyInForce(policy, 1_700_000_000_000);

    const values = (await certificateExpiry.get()).values;
    const find = (role: string, file: string, cn: string) => values.find((v) => v.labels.role === role && v.labels.file === file && String(v.labels.subject).includes(cn));
    expect(find('served', pki.server.certFile, 'server.sbc.test')?.value).toBe(opensslTime(openssl(['x509', '-in', pki.server.certFile, '-noout', '-enddate'])));
    expect(find('client_ca', pki.ca.certFile, 'Peergate Test CA')?.value).toBe(opensslTime(openssl(['x509', '-in', pki.ca.certFile, '-noout', '-enddate'])));
    // Both certificates of a bundle file, the second one with a GeneralizedTime notAfter.
    expect(find('client_ca', bundle, 'Other Test CA')?.value).toBe(opensslTime(openssl(['x509', '-in', pki.otherCa.certFile, '-noout', '-enddate'])));
    const long = find('client_ca', bundle, 'long lived CA')!.value;
    expect(long).toBe(opensslTime(openssl(['x509', '-in', longLived, '-noout', '-enddate'])));
    expect(new Date(long * 1000).getUTCFullYear()).toBeGreaterThanOrEqual(2050);
    expect(values).toHaveLength(4);

    const crl = (await crlNextUpdateGauge.get()).values;
    expect(crl).toEqual([expect.objectContaining({ labels: { file: crlFile }, value: opensslTime(openssl(['crl', '-in', crlFile, '-noout', '-nextupdate'])) })]);
    expect((await tlsFileErrors.get()).values[0]!.value).toBe(0);
    expect((await policyLoadedTimestamp.get()).values[0]!.value).toBe(1_700_000_000);
  });

  it('the served file’s extra certificates count as its chain; unreadable files are counted, not thrown', async () => {
    const fullchain = join(pki.dir, 'fullchain.pem');
    writeFileSync(fullchain, pki.server.cert + pki.ca.cert);
    const broken = join(pki.dir, 'broken-ca.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const brokenCrl = join(pki.dir, 'broken.crl');
    writeFileSync(brokenCrl, Buffer.from([0x30, 0x82, 0xff]));
    recordPolicyInForce(policyWith(pki.dir, { certificate: fullchain, key: pki.server.keyFile, client_cas: [broken], crls: [brokenCrl] }));
    const values = (await certificateExpiry.get()).values;
    expect(values.map((v) => v.labels.role).sort()).toEqual(['chain', 'served']);
    expect((await crlNextUpdateGauge.get()).values).toEqual([]);
    expect((await tlsFileErrors.get()).values[0]!.value).toBe(2);
  });

  it('session limits follow the policy, and a reload without TLS clears the certificate series', async () => {
    recordPolicyInForce(policyWith(scratchDir(), undefined, { limits: { sessions: 100 } }));
    const limits = (await sessionLimit.get()).values.map((v) => [v.labels.peer, v.value]).sort();
    expect(limits).toEqual([['carrier-a', 40], ['global', 100]]);
    expect((await certificateExpiry.get()).values).toEqual([]);
    const text = await registry.metrics();
    expect(text).toMatch(/^peergate_session_limit\{peer="carrier-a"\} 40$/m);
    expect(text).not.toMatch(/peergate_session_limit\{peer="carrier-b"\}/);
  });
});

describe('crlNextUpdate', () => {
  it('reads a DER CRL openssl wrote, and says no for what is not a CRL', () => {
    const der = execFileSync('openssl', ['crl', '-in', crlFile, '-outform', 'DER']);
    expect(crlNextUpdate(der)!.getTime() / 1000).toBe(opensslTime(openssl(['crl', '-in', crlFile, '-noout', '-nextupdate'])));
    expect(() => crlNextUpdate(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]))).toThrow(/not a CRL/);
    expect(() => crlNextUpdate(Buffer.from([0x30, 0x05, 0x30, 0x03]))).toThrow(/DER/);
  });
});
