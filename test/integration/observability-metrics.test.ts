// peergate's /metrics as an operator's Prometheus sees it: a real `peergate start` (TLS with a
// CRL, Redis, two rtpengines of which one is dead, a peer verifying identity, strikes that
// ban) carries calls and abuse from SIPp and raw sockets; then
//  - the metrics fixed by issue 19 say what their docs say (build info, responses, labels,
//    certificate expiry, session limits);
//  - every metric the dashboard and the alert rules use is exported;
//  - a real Prometheus (Debian's) scrapes peergate, and every dashboard query, evaluated
//    through its HTTP API as Grafana would send it, returns a finite value.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { freePorts, runSipp, scratchDir, startProcess, startSipp, startUas, waitFor, writeFile, stopInOrder, type Proc } from '../helpers/procs.js';
import { CORE_IP, PEER_IP, listener, startPeergate, sumMetric, type RunningPeergate } from '../helpers/peergate.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startRtpengine, type TestRtpengine } from '../helpers/rtpengine.js';
import { makeCrl, makePki, type TestPki } from '../helpers/tls.js';
import {
  NOT_YET_EXPORTED, REGISTERED_NOT_WIRED, RULES_FILE, concreteQuery, dashboardQueries, exposedTypes, family, metricNames, rules,
} from '../helpers/observability.js';

const SCANNER_IP = '127.0.0.5';
const ROGUE_TLS_IP = '127.0.0.6';
const CALLS = 3;
const SCEN = join(import.meta.dirname, '..', 'fixtures', 'sipp-b2bua');

let pg: RunningPeergate;
let redis: TestRedis;
let rtpe: TestRtpengine;
let pki: TestPki;
let crlFile: string;
let prom: Proc;
let promPort: number;
let deadRtpengine: string;
let ports: { peerSip: number; peerTls: number; coreSip: number; ops: number; coreUas: number; peerUas: number };
let answered = 0;

const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const opensslTime = (line: string) => Math.floor(Date.parse(line.slice(line.indexOf('=') + 1).trim()) / 1000);

function udp(from: string, to: number, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, from, () => s.send(text, to, '127.0.0.1', (err) => { s.close(); if (err) reject(err); else resolve(); }));
  });
}

function request(method: string, from: string, n: number): string {
  const branch = `z9hG4bK-obs-${method}-${n}-${Date.now()}`;
  return [`${method} sip:+15550000000@127.0.0.1:${ports.peerSip} SIP/2.0`,
    `Via: SIP/2.0/UDP ${from}:5060;branch=${branch}`, 'Max-Forwards: 70',
    `From: <sip:probe@${from}>;tag=obs${n}`, `To: <sip:+15550000000@127.0.0.1>`, `Call-ID: obs-${method}-${n}-${Date.now()}@${from}`,
    `CSeq: 1 ${method}`, 'Content-Length: 0', '', ''].join('\r\n');
}

async function calls(n: number): Promise<number> {
  const r = await runSipp(['-sn', 'uac', `127.0.0.1:${ports.peerSip}`, '-i', PEER_IP, '-p', '0', '-t', 'u1', '-s', '+15551230000',
    '-m', String(n), '-r', String(n), '-d', '1200'], { timeoutS: 40 });
  return r.successful;
}

async function promQuery(query: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = await r.json() as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  if (body.status !== 'success') throw new Error(`${query}: ${body.error}`);
  return body.data!.result;
}

beforeAll(async () => {
  const [peerSip, peerTls, coreSip, ops, coreUas, dead, prometheusPort, peerUas] = await freePorts(8);
  ports = { peerSip: peerSip!, peerTls: peerTls!, coreSip: coreSip!, ops: ops!, coreUas: coreUas!, peerUas: peerUas! };
  promPort = prometheusPort!;
  deadRtpengine = `127.0.0.1:${dead}`;
  pki = makePki();
  crlFile = writeFile(pki.dir, 'ca.crl.pem', makeCrl(pki.ca));
  [redis, rtpe] = await Promise.all([startRedis(), startRtpengine()]);
  startUas(CORE_IP, ports.coreUas);
  pg = await startPeergate({
    listen: [listener('peer-udp', ports.peerSip), listener('peer-tls', ports.peerTls), listener('core-udp', ports.coreSip)],
    tls: { certificate: pki.server.certFile, key: pki.server.keyFile, client_cas: [pki.ca.certFile], crls: [crlFile], require_client_cert: true },
    core: { targets: [`sip:${CORE_IP}:${ports.coreUas}`] },
    store: { redis: { url: redis.url, on_failure: 'fail_open', timeout_ms: 200 } },
    limits: { sessions: 50, strikes: { threshold: 3, window_s: 60, ban_s: 600 } },
    media: { rtpengine: [{ address: rtpe.address }, { address: deadRtpengine }], health_interval_ms: 300 },
    ops: { port: ports.ops },
    log: { level: 'warn' },
    peers: [{ id: 'carrier-a', match: { addresses: [`${PEER_IP}/32`] }, targets: [`sip:${PEER_IP}:${ports.peerUas}`], limits: { sessions: 10 }, identity: { mode: 'verify' } }],
    routes: [{ from: 'core', to: 'carrier-a' }, { from: 'peers', to: 'core' }],
  });

  // A real Prometheus scraping peergate every second.
  const promDir = scratchDir('prometheus-');
  const config = writeFile(promDir, 'prometheus.yml', [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    `rule_files: [ ${JSON.stringify(RULES_FILE)} ]`,
    'scrape_configs:',
    `  - job_name: peergate`,
    `    static_configs: [ { targets: [ "127.0.0.1:${ports.ops}" ] } ]`, '',
  ].join('\n'));
  prom = startProcess('/usr/bin/prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${promDir}/data`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { cwd: promDir });
  // Scraping before the traffic starts, so rates see it happen.
  await waitFor(async () => (await promQuery('up{job="peergate"} == 1')).length > 0, 30_000, 250, `Prometheus scraping peergate:\n${prom.output().slice(-2000)}`);

  // Calls from the peer (answered by the core's SIPp), an OPTIONS ping and a refused MESSAGE.
  answered += await calls(CALLS);
  await udp(PEER_IP, ports.peerSip, request('OPTIONS', PEER_IP, 1));
  await udp(PEER_IP, ports.peerSip, request('MESSAGE', PEER_IP, 2));
  // A core → peer call the caller cancels while the peer rings.
  const ringing = startSipp(['-sf', join(SCEN, 'uas-ring-forever.xml'), '-i', PEER_IP, '-p', String(ports.peerUas), '-t', 'u1', '-m', '1']);
  const cancel = await runSipp(['-sf', join(SCEN, 'uac-cancel.xml'), `127.0.0.1:${ports.coreSip}`, '-i', CORE_IP, '-p', '0', '-t', 'u1', '-s', '+442079460000', '-m', '1'], { timeoutS: 20 });
  if (cancel.successful !== 1) throw new Error(`cancelled call failed:\n${cancel.output.slice(-2000)}`);
  await ringing.exited;
  // A TLS client whose certificate no trusted CA signed: one failed handshake.
  await new Promise<void>((resolve) => {
    // localAddress: the strike lands on an address of its own, not on 127.0.0.1.
    const s = tlsConnect({ host: '127.0.0.1', port: ports.peerTls, localAddress: ROGUE_TLS_IP, key: pki.rogue.key, cert: pki.rogue.cert, rejectUnauthorized: false } as ConnectionOptions & { localAddress: string });
    s.on('secureConnect', () => { s.write('OPTIONS'); });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    setTimeout(() => { s.destroy(); resolve(); }, 3000).unref();
  });
  // A scanner: unknown-source requests and malformed messages until it is banned, then
  // more, which the shield drops before parsing.
  await waitFor(async () => {
    await udp(SCANNER_IP, ports.peerSip, request('OPTIONS', SCANNER_IP, 3));
    await udp(SCANNER_IP, ports.peerSip, 'INVITE garbage\r\n\r\n');
    return (await pg.metric('peergate_engine_shield_dropped_total', { reason: 'ban' })) > 0;
  }, 20_000, 200, 'the scanner banned and dropped by the shield');
  await waitFor(async () => (await pg.metric('peergate_rtpengine_up', { rtpengine: deadRtpengine })) === 0
    && (await pg.metric('peergate_rtpengine_errors_total', { rtpengine: deadRtpengine })) > 0, 10_000, 100, 'the dead rtpengine seen down');

  // Redis goes away: the store is down, and what the next call does fails over to local state.
  await redis.stop();
  answered += await calls(1);
  await waitFor(async () => (await pg.metric('peergate_store_up')) === 0 && (await pg.metric('peergate_store_errors_total')) > 0, 10_000, 100, 'store down');

  // Prometheus has scraped all of it twice over (the store outage is the last thing that
  // happened), so every rate has two samples after the last event.
  const after = Date.now() / 1000 + 2;
  await waitFor(async () => (await promQuery(`peergate_store_up == 0 and timestamp(peergate_store_up) > ${after}`)).length > 0,
    30_000, 250, `Prometheus scraped peergate:\n${prom.output().slice(-2000)}`);
}, 180_000);

afterAll(() => stopInOrder(pg));

describe('the fixed metrics (issue 19 item 5)', () => {
  it('peergate_build_info is 1 with the package version and the Node.js runtime', async () => {
    const text = await pg.metrics();
    expect(text).toMatch(new RegExp(`^peergate_build_info\\{version="0\\.1\\.0",node="${process.version.replace(/\./g, '\\.')}"\\} 1$`, 'm'));
  });

  it('peergate_responses_total counts every final response to out-of-dialog requests, relayed or ours', async () => {
    expect(answered).toBe(CALLS + 1);
    // The answered INVITEs' 200s came from the core's SIPp through createB2BUA; the OPTIONS 200 is ours.
    expect(await pg.metric('peergate_responses_total', { peer: 'carrier-a', class: '2xx' })).toBe(answered + 1);
    // MESSAGE is refused with 405.
    expect(await pg.metric('peergate_responses_total', { peer: 'carrier-a', class: '4xx' })).toBe(1);
    expect(await pg.metric('peergate_refusals_total', { peer: 'carrier-a', reason: 'method' })).toBe(1);
    // The cancelled call: exactly one final response, the 487 (the engine's, not also srf's).
    expect(await pg.metric('peergate_responses_total', { peer: 'core' })).toBe(1);
    expect(await pg.metric('peergate_responses_total', { peer: 'core', class: '4xx' })).toBe(1);
    expect(await pg.metric('peergate_calls_total', { peer: 'carrier-a', direction: 'outbound', result: 'canceled' })).toBe(1);
    // The scanner was never answered (unknown_source: drop), so no response is counted for it.
    expect(await pg.metric('peergate_responses_total', { peer: 'unknown' })).toBe(0);
    expect(await pg.metric('peergate_refusals_total', { peer: 'unknown' })).toBeGreaterThan(0);
  });

  it('rtpengine metrics label the instance `rtpengine`, so Prometheus keeps it; no peergate series has an `instance` label', async () => {
    const text = await pg.metrics();
    expect(await pg.metric('peergate_rtpengine_up', { rtpengine: rtpe.address })).toBe(1);
    expect(await pg.metric('peergate_rtpengine_up', { rtpengine: deadRtpengine })).toBe(0);
    // One offer per call: the answered ones and the cancelled one.
    expect(sumMetric(text, 'peergate_rtpengine_control_seconds_count', { rtpengine: rtpe.address, command: 'offer' })).toBe(answered + 1);
    expect(text.split('\n').filter((l) => l.startsWith('peergate_') && /[{,]instance="/.test(l))).toEqual([]);
    // What Prometheus stored: its own instance (the scrape target) and ours side by side.
    const up = await promQuery('peergate_rtpengine_up');
    expect(up.map((r) => [r.metric.instance, r.metric.rtpengine]).sort()).toEqual([[`127.0.0.1:${ports.ops}`, deadRtpengine], [`127.0.0.1:${ports.ops}`, rtpe.address]].sort());
  });

  it('certificate expiry and CRL nextUpdate gauges say what openssl reads from the files in force', async () => {
    const text = await pg.metrics();
    const served = openssl(['x509', '-in', pki.server.certFile, '-noout', '-enddate']);
    expect(sumMetric(text, 'peergate_tls_certificate_expiry_seconds', { role: 'served', file: pki.server.certFile })).toBe(opensslTime(served));
    const ca = openssl(['x509', '-in', pki.ca.certFile, '-noout', '-enddate']);
    expect(sumMetric(text, 'peergate_tls_certificate_expiry_seconds', { role: 'client_ca', file: pki.ca.certFile })).toBe(opensslTime(ca));
    expect(sumMetric(text, 'peergate_tls_crl_next_update_seconds', { file: crlFile })).toBe(opensslTime(openssl(['crl', '-in', crlFile, '-noout', '-nextupdate'])));
    expect(sumMetric(text, 'peergate_tls_file_errors')).toBe(0);
  });

  it('session limits of the policy sit beside active calls; TLS failures and strikes are counted', async () => {
    expect(await pg.metric('peergate_session_limit', { peer: 'carrier-a' })).toBe(10);
    expect(await pg.metric('peergate_session_limit', { peer: 'global' })).toBe(50);
    expect(await pg.metric('peergate_tls_handshakes_total', { result: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(await pg.metric('peergate_strike_bans_total')).toBeGreaterThanOrEqual(1);
    expect(await pg.metric('peergate_identity_verifications_total', { peer: 'carrier-a', result: 'none' })).toBe(answered);
  });

  it('post-dial delay and call duration are observed once per answered call', async () => {
    const text = await pg.metrics();
    for (const name of ['peergate_post_dial_delay_seconds', 'peergate_call_duration_seconds']) {
      expect(exposedTypes(text).get(name), name).toBe('histogram');
      if (name in REGISTERED_NOT_WIRED) continue;
      // Once wired: one observation per answered call, and the durations at least SIPp's 1.2 s hold.
      expect(sumMetric(text, `${name}_count`, { peer: 'carrier-a', direction: 'inbound' }), name).toBe(answered);
    }
    if (!('peergate_call_duration_seconds' in REGISTERED_NOT_WIRED)) {
      expect(sumMetric(text, 'peergate_call_duration_seconds_sum', { peer: 'carrier-a' })).toBeGreaterThanOrEqual(1.2 * answered);
    }
  });
});

describe('deploy/: every metric the dashboard and the rules use', () => {
  it('is exported by a running peergate', async () => {
    const types = exposedTypes(await pg.metrics());
    const histograms = new Set([...types].filter(([, t]) => t === 'histogram').map(([n]) => n));
    const used = new Set([...dashboardQueries().flatMap((q) => metricNames(q.expr)), ...rules().flatMap((r) => metricNames(r.expr))]);
    used.delete('up'); // Prometheus' own scrape health
    const missing = [...used].filter((n) => !types.has(family(n, histograms)));
    expect(missing.sort()).toEqual(Object.keys(NOT_YET_EXPORTED).sort());
  });

  it('every dashboard query returns a finite value from a real Prometheus scraping peergate', async () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(30);
    const empty: string[] = [];
    for (const q of queries) {
      // $__rate_interval as Grafana would pick it for a short range; the whole test fits in it.
      const result = await promQuery(concreteQuery(q.expr, '5m'));
      const finite = result.filter((r) => Number.isFinite(Number(r.value[1])));
      const pending = metricNames(q.expr).some((n) => n.replace(/_(bucket|sum|count)$/, '') in REGISTERED_NOT_WIRED);
      if (finite.length === 0 && !pending) empty.push(`${q.panel} ${q.refId}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
  }, 60_000);

  it('the alert rules, loaded by that Prometheus, catch the dead rtpengine and the stopped Redis, and nothing else', async () => {
    const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`);
    const body = await r.json() as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } };
    // Pending (their `for:` has not run out in this short test) or firing: the expression matched real data.
    const active = body.data.alerts.map((a) => `${a.labels.alertname} ${a.labels.rtpengine ?? a.labels.kind ?? ''}`.trim()).sort();
    expect(active).toEqual([`PeergateRtpengineDown ${deadRtpengine}`, 'PeergateStoreDown redis']);
    // Every rule expression evaluates without error on peergate's real series.
    for (const rule of rules()) await promQuery(rule.expr);
  });
});
