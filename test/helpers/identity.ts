// Identity test helpers: a throwaway PKI (via peergate's own src/pki, checked elsewhere with
// openssl), an HTTPS certificate server on loopback with per-path behaviour (slow, oversized,
// status), and a request view built from a header list.
import { createServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createFederationCa, createPeerCertificate, createRfc4474Certificate, createSpCertificate, createStiCa,
} from '../../src/pki/files.js';
import type { IdentityRequest } from '../../src/sbc/identity/sipfields.js';
import { scratchDir } from './procs.js';

export interface TestPki {
  dir: string;
  /** STI-CA root PEM path (the trust anchor). */
  stiRoot: string;
  /** SP signing bundle (leaf + intermediate) and key, TNAuthList RANGE:12025550100+100. */
  sp: { cert: string; key: string };
  /** SP certificate from a foreign STI-CA (not chained to stiRoot). */
  rogueSp: { cert: string; key: string };
  /** SP certificate whose TNAuthList covers other numbers only. */
  otherTnSp: { cert: string; key: string };
  /** SP certificate with an SPC entry only. */
  spcSp: { cert: string; key: string };
  /** RSA certificate for RFC 4474 covering 127.0.0.1 and example.com (self-signed: its own anchor). */
  rsa: { cert: string; key: string };
  /** RSA certificate for another domain. */
  rsaOther: { cert: string; key: string };
  /** HTTPS server certificate for the certificate server and its CA. */
  https: { cert: string; key: string; ca: string };
}

const read = (p: string) => readFileSync(p, 'utf8');

export function makeTestPki(): TestPki {
  const dir = scratchDir('identity-pki-');
  createStiCa(dir);
  const sp = createSpCertificate(dir, 'sp', { tnAuthList: [{ range: { start: '12025550100', count: 100 } }] });
  const otherTn = createSpCertificate(dir, 'sp-other', { tnAuthList: [{ tn: '14155550100' }] });
  const spc = createSpCertificate(dir, 'sp-spc', { tnAuthList: [{ spc: '709J' }] });
  const rogueDir = join(dir, 'rogue');
  createStiCa(rogueDir);
  const rogue = createSpCertificate(rogueDir, 'sp', { tnAuthList: [{ range: { start: '12025550100', count: 100 } }] });
  const rsa = createRfc4474Certificate(dir, 'rsa', { domain: '127.0.0.1' });
  const rsaOther = createRfc4474Certificate(dir, 'rsa-other', { domain: 'other.example' });
  createFederationCa(dir);
  const web = createPeerCertificate(dir, 'web', { cn: 'localhost', san: ['localhost', '127.0.0.1'] });
  return {
    dir,
    stiRoot: join(dir, 'sti-ca-root.pem'),
    sp: { cert: sp.certPath, key: sp.keyPath },
    rogueSp: { cert: rogue.certPath, key: rogue.keyPath },
    otherTnSp: { cert: otherTn.certPath, key: otherTn.keyPath },
    spcSp: { cert: spc.certPath, key: spc.keyPath },
    rsa: { cert: rsa.certPath, key: rsa.keyPath },
    rsaOther: { cert: rsaOther.certPath, key: rsaOther.keyPath },
    https: { cert: web.certPath, key: web.keyPath, ca: join(dir, 'federation-ca.pem') },
  };
}

export interface Route { body: string | Buffer; delayMs?: number; status?: number; headers?: Record<string, string>; }

export interface CertServer {
  port: number;
  url(path: string): string;
  routes: Map<string, Route>;
  hits: Map<string, number>;
  /** Most requests the server had in progress at once. */
  maxInFlight(): number;
  resetMaxInFlight(): void;
  close(): Promise<void>;
}

/** HTTPS server on 127.0.0.1 serving `routes` (path → behaviour). */
export async function startCertServer(pki: TestPki, routes: Record<string, Route> = {}): Promise<CertServer> {
  const map = new Map(Object.entries(routes));
  const hits = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let maxInFlight = 0;
  const server: Server = createServer({ cert: read(pki.https.cert), key: read(pki.https.key) }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const r = map.get(path);
    if (!r) { res.writeHead(404).end(); return; }
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.once('close', () => { inFlight--; });
    const send = () => { res.writeHead(r.status ?? 200, { 'content-type': 'application/x-pem-file', ...r.headers }); res.end(r.body); };
    if (r.delayMs) { const t = setTimeout(() => { timers.delete(t); send(); }, r.delayMs); timers.add(t); } else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port, routes: map, hits, maxInFlight: () => maxInFlight, resetMaxInFlight: () => { maxInFlight = inFlight; },
    url: (path) => `https://127.0.0.1:${port}${path}`,
    close: () => new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** An IdentityRequest from `[name, value]` pairs (names matched case-insensitively). */
export function requestOf(uri: string, headers: Array<[string, string]>, body: string | Buffer = ''): IdentityRequest {
  // Indexed by lower-case name once, as a parsed SIP message is: the benchmark measures the
  // verifier, not a linear header search.
  const byName = new Map<string, string[]>();
  for (const [k, v] of headers) {
    const key = k.toLowerCase();
    const list = byName.get(key);
    if (list) list.push(v); else byName.set(key, [v]);
  }
  const none: string[] = [];
  return { method: 'INVITE', uri, body, headers: (n) => byName.get(n.toLowerCase()) ?? none };
}

/** Parse a raw SIP message (as captured from the wire) into an IdentityRequest. */
export function parseRawRequest(raw: Buffer): IdentityRequest & { all: Array<[string, string]> } {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = text.slice(0, end).split('\r\n');
  const body = raw.subarray(end + 4);
  const [method, uri] = head[0]!.split(' ');
  const all: Array<[string, string]> = [];
  for (const line of head.slice(1)) {
    if (/^[ \t]/.test(line) && all.length) { all[all.length - 1]![1] += ` ${line.trim()}`; continue; }
    const c = line.indexOf(':');
    all.push([line.slice(0, c).trim(), line.slice(c + 1).trim()]);
  }
  return {
    method: method!, uri: uri!, body, all,
    headers: (n) => all.filter(([k]) => k.toLowerCase() === n.toLowerCase()).map(([, v]) => v),
  };
}

/** Kamailio config that signs INVITEs (auth_identity: RFC 4474 RSA, or secsipid: SHAKEN) and
 *  relays every request to `forwardTo` (components.md §5.1, §5.2). */
export function kamailioSignerConfig(o: { listen: string; forwardTo: string; pki: TestPki; certUrl: string; mode: 'rfc4474' | 'shaken' }): string {
  const sign = o.mode === 'rfc4474'
    ? 'auth_date_proc(); auth_add_identity();'
    : `secsipid_add_identity("$fU", "$rU", "A", "", "${o.certUrl}", "${o.pki.sp.key}");`;
  const mods = o.mode === 'rfc4474'
    ? `loadmodule "auth_identity.so"
modparam("auth_identity", "privatekey_path", "${o.pki.rsa.key}")
modparam("auth_identity", "certificate_path", "${o.pki.rsa.cert}")
modparam("auth_identity", "certificate_url", "${o.certUrl}")`
    : 'loadmodule "secsipid.so"';
  return `#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
auto_aliases=no
listen=udp:${o.listen}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
${mods}
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (is_method("INVITE")) { ${sign} }
    $du = "sip:${o.forwardTo}";
    if (!t_relay()) sl_reply_error();
}
`;
}
