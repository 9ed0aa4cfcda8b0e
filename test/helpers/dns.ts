// Real DNS on loopback for tests: nsd serving zones (signed with ldns-signzone, or plain) and
// unbound validating with the signed zones' trust anchors, both on free ports, started and
// stopped by PID (recipe: docs/routing.md "Testing").
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import * as packet from 'dns-packet';
import { freePorts, scratchDir, startProcess, waitFor, type Proc } from './procs.js';

export interface ZoneSpec {
  /** e.g. carrier.test */
  origin: string;
  /** Records after the SOA/NS, relative to the origin, in zone-file syntax. */
  records: string;
  /** Sign with ldns-signzone and give unbound its trust anchor. */
  signed: boolean;
  /** Edit the signed text after signing (a forged record: unbound must call it bogus). */
  tamper?: (signedZone: string) => string;
  ttl?: number;
}

export interface RunningDns {
  dir: string;
  /** unbound: the validating resolver peergate asks. */
  resolverPort: number;
  /** nsd: the authoritative server (unbound's stub). */
  authPort: number;
  /** Replace a zone's records and restart nsd (unbound keeps its cache until TTLs run out). */
  reloadZone(origin: string, records: string): Promise<void>;
  stop(): Promise<void>;
}

function zoneText(z: ZoneSpec, serial: number): string {
  return `$ORIGIN ${z.origin}.\n$TTL ${z.ttl ?? 300}\n@ IN SOA ns1 hostmaster ${serial} 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n${z.records}\n`;
}

function writeZone(dir: string, z: ZoneSpec, serial: number): string | undefined {
  const file = join(dir, `${z.origin}.zone`);
  writeFileSync(file, zoneText(z, serial));
  if (!z.signed) return undefined;
  const run = (args: string[]) => execFileSync(args[0]!, args.slice(1), { cwd: dir, encoding: 'utf8' }).trim();
  const ksk = run(['ldns-keygen', '-a', 'ECDSAP256SHA256', '-k', z.origin]);
  const zsk = run(['ldns-keygen', '-a', 'ECDSAP256SHA256', z.origin]);
  run(['ldns-signzone', '-n', '-f', `${file}.signed`, file, ksk, zsk]);
  if (z.tamper) writeFileSync(`${file}.signed`, z.tamper(readFileSync(`${file}.signed`, 'utf8')));
  return readFileSync(join(dir, `${ksk}.key`), 'utf8').split('\n').filter((l) => /\sDNSKEY\s/.test(l)).join('\n');
}

/** A UDP query for `zone` SOA to 127.0.0.1:port answered at all (nsd/unbound up). */
function answers(port: number, zone: string): Promise<boolean> {
  return soaQuery(port, zone).then((r) => r !== undefined);
}

/** The SOA serial `zone` is served with at 127.0.0.1:port (undefined: no answer, or not NOERROR). */
async function servedSerial(port: number, zone: string): Promise<number | undefined> {
  const r = await soaQuery(port, zone);
  if (!r || (r as { rcode?: string }).rcode !== 'NOERROR') return undefined;
  const soa = (r.answers ?? []).find((a) => a.type === 'SOA') as { data: { serial: number } } | undefined;
  return soa?.data.serial;
}

function soaQuery(port: number, zone: string): Promise<packet.Packet | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => { s.close(); resolve(undefined); }, 300);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      try { resolve(packet.decode(m)); } catch { resolve(undefined); }
    });
    const q = packet.encode({ type: 'query', id: 1, flags: packet.RECURSION_DESIRED, questions: [{ type: 'SOA', name: zone }] });
    s.send(q, port, '127.0.0.1', (err) => { if (err) { clearTimeout(t); s.close(); resolve(undefined); } });
  });
}

export async function startDns(zones: ZoneSpec[]): Promise<RunningDns> {
  const dir = scratchDir('peergate-dns-');
  const [authPort, resolverPort] = await freePorts(2) as [number, number];
  const anchors: string[] = [];
  let serial = 1;
  const current = new Map<string, ZoneSpec>();
  for (const z of zones) {
    current.set(z.origin, z);
    const ta = writeZone(dir, z, serial);
    if (ta) anchors.push(ta);
  }
  writeFileSync(join(dir, 'ta.key'), `${anchors.join('\n')}\n`);
  const nsdConf = () => [
    'server:', `  ip-address: 127.0.0.1@${authPort}`, `  zonesdir: "${dir}"`, `  pidfile: "${dir}/nsd.pid"`,
    '  database: ""', '  username: ""', '  chroot: ""', `  xfrdfile: "${dir}/xfrd.state"`, `  zonelistfile: "${dir}/zone.list"`,
    `  logfile: "${dir}/nsd.log"`, '  verbosity: 1', 'remote-control:', '  control-enable: no',
    ...[...current.values()].flatMap((z) => ['zone:', `  name: ${z.origin}`, `  zonefile: ${z.origin}.zone${z.signed ? '.signed' : ''}`]),
  ].join('\n');
  writeFileSync(join(dir, 'nsd.conf'), nsdConf());
  writeFileSync(join(dir, 'unbound.conf'), [
    'server:', `  interface: 127.0.0.1@${resolverPort}`, `  port: ${resolverPort}`, '  do-daemonize: no', '  username: ""', '  chroot: ""',
    `  directory: "${dir}"`, `  pidfile: "${dir}/unbound.pid"`, '  use-syslog: no', '  do-not-query-localhost: no', '  num-threads: 1',
    anchors.length > 0 ? `  trust-anchor-file: "${dir}/ta.key"` : '', '  local-zone: "test." nodefault', '  module-config: "validator iterator"',
    '  val-log-level: 2', '  verbosity: 1', '  serve-expired: no',
    ...zones.flatMap((z) => ['stub-zone:', `  name: "${z.origin}"`, `  stub-addr: 127.0.0.1@${authPort}`]),
  ].join('\n'));
  execFileSync('unbound-checkconf', [join(dir, 'unbound.conf')]);

  let nsd: Proc = startProcess('nsd', ['-c', join(dir, 'nsd.conf'), '-d', '-P', join(dir, 'nsd.pid')]);
  await waitFor(() => answers(authPort, zones[0]!.origin), 10_000, 100, `nsd on ${authPort}: ${nsd.output()}`);
  const unbound = startProcess('unbound', ['-d', '-c', join(dir, 'unbound.conf')]);
  await waitFor(() => answers(resolverPort, zones[0]!.origin), 10_000, 100, `unbound on ${resolverPort}: ${unbound.output()}`);

  return {
    dir, resolverPort, authPort,
    async reloadZone(origin, records) {
      const z = current.get(origin);
      if (!z) throw new Error(`no zone ${origin}`);
      if (z.signed) throw new Error('reloadZone re-serves plain zones only');
      const next = { ...z, records };
      current.set(origin, next);
      writeZone(dir, next, ++serial);
      await nsd.stop();
      nsd = startProcess('nsd', ['-c', join(dir, 'nsd.conf'), '-d', '-P', join(dir, 'nsd.pid')]);
      // nsd answers before every zone is loaded: wait for this zone's new serial, or unbound
      // may be handed a SERVFAIL or the old data in the gap.
      const want = serial;
      await waitFor(async () => (await servedSerial(authPort, origin)) === want, 10_000, 50, `nsd serving ${origin} serial ${want} on ${authPort}`);
    },
    async stop() {
      await unbound.stop();
      await nsd.stop();
    },
  };
}

/**
 * The policy keys the end-to-end DNS routing tests share: `dns` asks this resolver, with a
 * generous timeout (a loaded CI machine must not turn a slow answer into a failure) and no TTL
 * floor; signalling only; a 4 s no-answer failover; the ops port; log level info.
 */
export function dnsRoutingPolicy(dns: RunningDns, opsPort: number): Record<string, unknown> {
  return {
    dns: { resolvers: [`127.0.0.1:${dns.resolverPort}`], timeout_ms: 2000, cache: { min_ttl_s: 0 } },
    media: { anchoring: false },
    failover: { no_answer_ms: 4000 },
    ops: { port: opsPort },
    log: { level: 'info' },
  };
}
