// `peergate start`: the whole SBE in one process — the embedded SIP engine (or an external
// drachtio-server), the B2BUA with its stages, shared state, the media relay and ops.
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { PolicyHolder, PolicyLoadError } from '../policy/reload.js';
import type { Policy } from '../policy/schema.js';
import { createLogger, type Logger } from '../log.js';
import { startEngine, type Engine } from '../engine/engine.js';
import { B2bua } from '../sbc/b2bua.js';
import { LocationRouting } from '../routing/index.js';
import { srfProbeSender } from '../routing/probe.js';
import { mediaSeam } from '../sbc/wiring.js';
import { MediaStage } from '../sbc/media/index.js';
import { Limits } from '../sbc/limits/index.js';
import { createIdentityStage } from '../sbc/identity/index.js';
import { createStore, syncBans, type Store } from '../store/index.js';
import { ensureDevCertificates } from '../pki/files.js';
import { startOpsServer, resolveAdminToken, type OpsServer } from '../ops/server.js';
import * as m from '../ops/metrics.js';
import { bindEngineMetrics } from '../ops/engine-metrics.js';
import type { Stages } from '../sbc/stages.js';
import { verifierImplementation } from '../sbc/identity/sigverify.js';
import { createCdrWriter } from '../sbc/cdr/index.js'; // [cdr] wiring for the app's composition root
import { createHepCapture } from '../engine/capture/index.js'; // [cdr]

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEFAULT_POLICY = join(ROOT, 'policies', 'example.yaml');

const HELP = `usage: peergate start [--policy <file>] [--node-id <id>]
  Runs the SBE: embedded SIP engine, B2BUA, limits, identity, media relay, ops server.
  --policy <file>   policy YAML (default: policies/example.yaml; development
                    certificates are created under certs/dev/ when it is used)
  --node-id <id>    this node's id in a pool of SBEs, stable across restarts (default:
                    $PEERGATE_NODE_ID, else <hostname>:<ops port>)
  Signals: SIGHUP reloads the policy (so does editing the file); SIGTERM/SIGINT stop.`;

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: argv, options: { policy: { type: 'string' }, 'node-id': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  } catch (err) {
    console.error(`peergate start: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (args.values.help) { console.log(HELP); return 0; }
  const policyPath = resolve(args.values.policy ?? DEFAULT_POLICY);
  if (policyPath === DEFAULT_POLICY || !args.values.policy) ensureDevCertificates(join(ROOT, 'certs', 'dev'));

  let holder: PolicyHolder;
  try {
    holder = PolicyHolder.load(policyPath, { checkFiles: true });
  } catch (err) {
    if (err instanceof PolicyLoadError) { console.error(err.message); return 1; }
    throw err;
  }
  const policy = holder.current;
  const log = createLogger({ level: policy.log.level, name: 'peergate' });
  const nodeId = args.values['node-id'] ?? process.env.PEERGATE_NODE_ID ?? `${hostname()}:${policy.ops.port}`;
  const sbe = await startSbe(holder, log, nodeId);
  await new Promise<void>((resolveStop) => {
    const stop = (sig: string) => { log.info({ signal: sig }, 'stopping'); resolveStop(); };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await sbe.close();
  return 0;
}

export interface RunningSbe {
  engine: Engine | undefined;
  b2bua: B2bua;
  ops: OpsServer;
  close(): Promise<void>;
}

/** Start every part in dependency order; on failure, stop what was started. */
export async function startSbe(holder: PolicyHolder, log: Logger, nodeId: string): Promise<RunningSbe> {
  const policy = holder.current;
  const closers: Array<() => Promise<void> | void> = [];
  const close = async () => { for (const c of closers.reverse()) { try { await c(); } catch (err) { log.warn({ err: String(err) }, 'error while stopping'); } } };
  try {
    m.collectDefaultMetrics();

    // Shared state: in-memory for one node, Redis for a pool.
    const store: Store = createStore(policy.store);
    closers.push(() => store.close());
    const limits = new Limits({ store, nodeId });
    await limits.start();
    closers.push(() => limits.stop());

    // Media relay: every call anchored on rtpengine.
    const media = policy.media.anchoring ? await MediaStage.create(policy.media, { log: log.child({ module: 'media' }) }) : undefined;
    if (media) closers.push(() => media.close());
    else log.warn('media.anchoring is false: SDP crosses untouched and no SRTP policy is enforced');
    // Caller identity: replay cache shared across the pool through the store.
    const identity = createIdentityStage({
      seenOnce: (key, ttlMs) => store.seenOnce(key, ttlMs),
      baseDir: dirname(holder.path),
      onSignError: (peer, err) => log.warn({ peer, err: err.message }, 'cannot sign toward peer; sending unsigned'),
    });
    const stages: Stages = { limits, identity, ...(media ? { media: mediaSeam(media) } : {}) };

    // [cdr] Call records (file reopened on SIGUSR1, Redis stream) and HEP capture.
    const cdr = createCdrWriter(policy.cdr, { log, node: nodeId });
    closers.push(() => cdr.close());
    const capture = createHepCapture(policy.capture, { log: log.child({ module: 'capture' }) });
    closers.push(() => capture.close());

    // Reputation (RFC 5765 §5.1.2): garbage, refusals and failed TLS handshakes are strikes
    // against their source; past the policy's threshold the source is banned across the pool.
    const strike = (source: string, kind: string) => {
      void limits.strike(source, kind, holder.current.limits).catch(() => undefined);
    };

    // The SIP engine: embedded by default, else an external drachtio-server.
    let engine: Engine | undefined;
    let wire: { host: string; port: number; secret: string };
    if (policy.engine.embedded) {
      const secret = policy.engine.wire.secret ?? randomBytes(18).toString('base64url');
      engine = await startEngine({
        contacts: contactsOf(policy),
        wire: { address: '127.0.0.1', port: 0, secret },
        ...(policy.tls ? { tls: tlsOf(policy) } : {}),
        shield: shieldConfigOf(policy),
        // The parser's detail (input in it cut short) goes to the debug log only, never on the wire.
        onMalformed: (source, error) => { log.debug({ source: source.address, error }, 'malformed SIP message'); strike(source.address, 'malformed'); },
        advertise: Object.fromEntries(policy.listen.filter((l) => l.advertise).map((l) => [`${l.address}:${l.port}`, l.advertise!])),
        // A deep UDP receive buffer rides out floods: what the kernel drops never reaches the
        // shield and would include real peers' datagrams (capped by net.core.rmem_max).
        limits: { transport: { udpReceiveBufferBytes: 4 * 1024 * 1024 } },
        logger: log.child({ module: 'engine' }),
      });
      closers.push(() => engine!.close());
      engine.transports.setCapture(capture.tap); // [cdr]
      const running = engine;
      bindEngineMetrics(() => running.counters());
      engine.transports.on('tls-handshake', (e: { result: string }) => m.tlsHandshakesTotal.inc({ result: e.result }));
      wire = { host: '127.0.0.1', port: engine.wirePort, secret };
      const bans = await syncBans(store, engine.shield);
      closers.push(() => bans.stop());
    } else {
      wire = { host: policy.engine.wire.address, port: policy.engine.wire.port, secret: policy.engine.wire.secret! };
    }

    engine?.transports.on('tls-handshake', (e: { result: string; source?: { address: string } }) => {
      if (e.result === 'failed' && e.source) strike(e.source.address, 'tls');
    });
    // Location routing: RFC 3263 / ENUM / DNSSEC, and OPTIONS probing of targets (docs/routing.md).
    const routing = new LocationRouting(log.child({ module: 'routing' }), (t, ms) => probe(t, ms));
    const b2bua = new B2bua({ policy: () => holder.current, stages, log, observer: metricsObserver(strike), recorder: cdr.recorder /* [cdr] */, routing });
    const probe = srfProbeSender(b2bua.srf, () => holder.current);
    let engineUp = false;
    b2bua.srf.on('disconnect', () => { engineUp = false; m.engineConnected.set(0); });
    b2bua.srf.on('connect', () => { engineUp = true; m.engineConnected.set(1); });
    await b2bua.connect(wire);
    engineUp = true;
    m.engineConnected.set(1);
    closers.push(() => b2bua.disconnect());
    routing.startProbing(() => holder.current);
    closers.push(() => routing.stop());

    holder.on('policy', (next) => {
      if (engine) engine.shield.configure(shieldConfigOf(next));
      void cdr.configure(next.cdr); // [cdr]
      capture.configure(next.capture); // [cdr]
    });
    holder.watch();
    closers.push(() => holder.close());

    const ops = await startOpsServer({
      address: policy.ops.address,
      port: policy.ops.port,
      adminToken: resolveAdminToken(policy.ops),
      ready: async () => {
        const checks: Record<string, boolean | string> = {
          engine: engineUp ? true : 'not connected',
          rtpengine: !media || media.ready() ? true : 'no rtpengine answers',
        };
        const health = store.health();
        // fail_open keeps taking calls on local state while Redis is down, so only fail_closed makes us unready.
        const storeMatters = policy.store.redis?.on_failure === 'fail_closed';
        checks['store'] = health.state === 'up' || !storeMatters ? true : `store down: ${health.lastError ?? 'unreachable'}`;
        return { ready: Object.values(checks).every((v) => v === true), checks };
      },
      admin: {
        peers: () => holder.current.peers.map((p) => ({ id: p.id, match: p.match, transport: p.transport, targets: p.targets ?? [], limits: p.limits })),
        calls: () => [...b2bua.calls.values()],
        targets: () => routing.health.snapshot(),
        bans: {
          list: () => store.listBans(),
          add: (address, ttlMs, reason) => store.ban(address, ttlMs, reason ?? 'admin'),
          remove: (address) => store.unban(address),
        },
        reload: () => ({ ok: holder.reload() }),
      },
    });
    closers.push(() => ops.close());
    // Says whether signatures are checked by the native addon or the slower node:crypto fallback.
    log.info({ node: nodeId, policy: holder.path, contacts: engine?.hostports, ops: `${policy.ops.address}:${ops.port}`, signature_verifier: verifierImplementation }, 'peergate started');
    return { engine, b2bua, ops, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Listeners grouped into drachtio-style contacts: `sip:addr:port;transport=udp,tcp`, `sips:addr:port;transport=tls`. */
export function contactsOf(policy: Policy): string[] {
  const groups = new Map<string, string[]>();
  for (const l of policy.listen) {
    const host = l.address.includes(':') ? `[${l.address}]` : l.address;
    const key = `${l.transport === 'tls' ? 'sips' : 'sip'}:${host}:${l.port}`;
    groups.set(key, [...(groups.get(key) ?? []), l.transport]);
  }
  return [...groups].map(([k, t]) => `${k};transport=${t.join(',')}`);
}

function tlsOf(policy: Policy) {
  const t = policy.tls!;
  return {
    key: readFileSync(t.key),
    cert: readFileSync(t.certificate),
    ...(t.chain ? { chain: readFileSync(t.chain) } : {}),
    clientCAs: t.client_cas.map((f) => readFileSync(f)),
    crls: t.crls.map((f) => readFileSync(f)),
    requireClientCert: t.require_client_cert,
    minVersion: t.min_version,
    ...(t.ciphers ? { ciphers: t.ciphers } : {}),
  };
}

/**
 * The engine's pre-parse allowlist: when every peer is known by address, anything else is
 * dropped before parsing (core-side sources too, when core.addresses is set).
 */
export function shieldConfigOf(policy: Policy) {
  const peerRanges: string[] = [];
  let everyPeerHasAddresses = policy.peers.length > 0;
  for (const p of policy.peers) {
    if (p.match.addresses) peerRanges.push(...p.match.addresses);
    else everyPeerHasAddresses = false;
  }
  const allow = everyPeerHasAddresses && policy.core.addresses ? [...peerRanges, ...policy.core.addresses] : [];
  // The shield has one bucket size for every source, so it is the ceiling: the highest of
  // the global rate (sources that are no peer) and each peer's own. Finer per-peer rates
  // need the source attributed first, which parsing does.
  const rates = [policy.limits.per_source_pps, ...policy.peers.map((p) => p.limits.per_source_pps)].filter((x): x is number => x !== undefined);
  const pps = rates.length ? Math.max(...rates) : undefined;
  return { allow, deny: [], rate: pps ? { ratePerSec: pps, burst: pps * 2 } : null };
}

/** Refusals that say nothing about the sender's intent are not strikes. */
const NOT_STRIKES = new Set(['no_route', 'limit_cps', 'limit_sessions', 'limit_global_sessions', 'limit_store_unavailable', 'no_rtpengine', 'source_rate']);

function metricsObserver(strike: (source: string, kind: string) => void) {
  return {
    request: (peer: string, method: string) => m.requestsTotal.inc({ peer, method }),
    refusal: (peer: string, reason: string, source: string) => {
      m.refusalsTotal.inc({ peer, reason });
      if (!NOT_STRIKES.has(reason)) strike(source, reason.startsWith('identity') ? 'identity' : 'refused');
    },
    response: (peer: string, status: number) => m.responsesTotal.inc({ peer, class: m.responseClass(status) }),
    callStarted: (peer: string) => m.activeCalls.inc({ peer }),
    callEnded: (peer: string) => m.activeCalls.dec({ peer }),
    callFinished: (peer: string, direction: 'inbound' | 'outbound', result: string) => m.callsTotal.inc({ peer, direction, result }),
    callSetup: (peer: string, direction: 'inbound' | 'outbound', seconds: number) => m.callSetupSeconds.observe({ peer, direction }, seconds),
  };
}
