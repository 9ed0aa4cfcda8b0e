// The assembled engine: transports (with the shield in front), parser, UA core and dialogs,
// and the drachtio wire-protocol server apps connect to. `startEngine()` is what
// `peergate engine` and `peergate start` call.
import { TransportLayer, type TransportLimits, type TransportTlsOptions, type ListenerSpec, type TransportLogger } from './transport/index.js';
import { Shield, type ShieldConfig, type ShieldCounters } from './shield/index.js';
import { parseMessage } from './message/parser.js';
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from './message/types.js';
import { systemClock, type Clock, type Endpoint, type Protocol, type TlsPeerIdentity } from './transport/types.js';
import { WireServer, type WireCounters } from './wire/server.js';
import { UaCore, type CoreCounters, type Listener } from './core/ua-core.js';
import type { TimerConfig } from './transaction/types.js';
import { isIP } from 'node:net';

export interface EngineTlsOptions {
  key: string | Buffer;
  /** Passphrase of an encrypted `key` (policy tls.key_passphrase). */
  passphrase?: string;
  cert: string | Buffer;
  chain?: string | Buffer;
  /** CAs trusted for client certificates; when set, clients are asked for one. */
  clientCAs?: Array<string | Buffer>;
  crls?: Array<string | Buffer>;
  requireClientCert?: boolean;
  ciphers?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface EngineOptions {
  /** SIP contacts like drachtio-server's: `sip:127.0.0.1:5070;transport=udp,tcp`, `sips:127.0.0.1:5071;transport=tls`. */
  contacts: string[];
  wire: { address?: string; port?: number; secret: string };
  tls?: EngineTlsOptions;
  limits?: { parse?: Partial<ParseLimits>; transport?: TransportLimits };
  /** A ready Shield, or its configuration (default: admit everything, counters only). */
  shield?: Shield | ShieldConfig;
  clock?: Clock;
  /** Generate cdr:* events for apps that routed them. */
  cdrs?: boolean;
  /** Hosts to write into Via/Contact instead of a listener's address (NAT), keyed `address:port`. */
  advertise?: Record<string, string>;
  /** Told of every message that failed to parse (e.g. to count strikes against its source, or
   *  against `tls`, the verified TLS identity it came with). */
  onMalformed?: (source: Endpoint, error: string, tls?: TlsPeerIdentity) => void;
  logger?: TransportLogger;
  /** RFC 3261 T1/T2/T4 overrides (ms) for transactions and the core's 2xx retransmission, and
   *  `trying`: the 100 Trying to an INVITE only if nothing else was sent this many ms after it
   *  (RFC 3261 §17.2.1, 0–200; policy `engine.trying_delay_ms`); 0 (default): at once, as drachtio-server. */
  timers?: Partial<Pick<TimerConfig, 'T1' | 'T2' | 'T4' | 'trying'>>;
  /** Bind the SIP listeners only when `openListeners()` is called (apps may connect to the wire
   *  before): a node warms up before peers can reach it (src/app/warmup). Their ports are checked
   *  free at the start all the same (bound and released). */
  deferListen?: boolean;
}

export interface EngineCounters {
  core: CoreCounters;
  wire: WireCounters;
  shield: ShieldCounters;
  dialogs: number;
  serverTransactions: number;
  clientTransactions: number;
}

export interface Engine {
  /** Where apps connect (drachtio wire protocol). */
  wireAddress: string;
  wirePort: number;
  /** Bound SIP listeners (none before `openListeners()` with `deferListen`). */
  readonly contacts: Endpoint[];
  /** `tcp/127.0.0.1:5070,udp/127.0.0.1:5070` as sent to apps on authenticate. */
  readonly hostports: string;
  /** Bind the listeners (with `deferListen`; otherwise already bound): resolves with them. */
  openListeners(): Promise<Endpoint[]>;
  transports: TransportLayer;
  shield: Shield;
  core: UaCore;
  wire: WireServer;
  counters(): EngineCounters;
  close(): Promise<void>;
}

/** Parse one `--contact` value into listener specs. */
export function parseContact(contact: string): ListenerSpec[] {
  const m = /^(sips?):(?:[^@;]*@)?(\[[^\]]+\]|[^:;]+)(?::(\d+))?((?:;[^;]*)*)$/i.exec(contact.trim());
  if (!m) throw new Error(`invalid contact "${contact}": expected sip:<address>[:<port>][;transport=udp,tcp] or sips:…;transport=tls`);
  const scheme = m[1]!.toLowerCase();
  const address = m[2]!.replace(/^\[|\]$/g, '');
  if (isIP(address) === 0) throw new Error(`invalid contact "${contact}": the host must be an IP address`);
  const port = m[3] !== undefined ? Number(m[3]) : scheme === 'sips' ? 5061 : 5060;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new Error(`invalid contact "${contact}": bad port`);
  let transports: string[] = scheme === 'sips' ? ['tls'] : ['udp', 'tcp'];
  for (const p of (m[4] ?? '').split(';')) {
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === 'transport') {
      transports = p.slice(eq + 1).split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
    }
  }
  return transports.map((t) => {
    if (t !== 'udp' && t !== 'tcp' && t !== 'tls') throw new Error(`invalid contact "${contact}": unknown transport "${t}"`);
    if (scheme === 'sips' && t !== 'tls') throw new Error(`invalid contact "${contact}": sips: needs transport=tls`);
    return { protocol: t as Protocol, address, port };
  });
}

function hostportsOf(eps: Endpoint[]): string {
  // drachtio lists tcp before udp (trace 01 #2); tls last.
  const order: Record<Protocol, number> = { tcp: 0, udp: 1, tls: 2 };
  return [...eps].sort((a, b) => order[a.protocol] - order[b.protocol])
    .map((e) => `${e.protocol}/${isIP(e.address) === 6 ? `[${e.address}]` : e.address}:${e.port}`).join(',');
}

export async function startEngine(options: EngineOptions): Promise<Engine> {
  if (!options.contacts || options.contacts.length === 0) throw new Error('at least one contact is required');
  if (typeof options.wire?.secret !== 'string' || options.wire.secret.length === 0) throw new Error('wire.secret is required');
  const listeners: ListenerSpec[] = options.contacts.flatMap(parseContact);
  const clock = options.clock ?? systemClock;
  const shield = options.shield instanceof Shield ? options.shield : new Shield(options.shield ?? {}, clock);
  let tls: TransportTlsOptions | undefined;
  if (options.tls) {
    tls = {
      key: options.tls.key, passphrase: options.tls.passphrase, cert: options.tls.cert, chain: options.tls.chain, clientCAs: options.tls.clientCAs, crls: options.tls.crls,
      requireClientCert: options.tls.requireClientCert, ciphers: options.tls.ciphers, minVersion: options.tls.minVersion,
    };
  }
  const transports = new TransportLayer({ listeners, tls, limits: options.limits?.transport, shield, logger: options.logger });
  // Deferred listeners are bound later; a port in use must still fail this start, not that one.
  if (options.deferListen) await transports.probe();
  let bound: Endpoint[] = options.deferListen ? [] : await transports.listen();
  let hostports = hostportsOf(bound);
  const wire = new WireServer({
    address: options.wire.address ?? '127.0.0.1', port: options.wire.port ?? 9022, secret: options.wire.secret,
    hostports: () => hostports,
  });
  const limits: ParseLimits = { ...DEFAULT_PARSE_LIMITS, ...(options.limits?.parse ?? {}) };
  const coreListenersOf = (eps: Endpoint[]): Listener[] => eps.map((e) => {
    const advertise = options.advertise?.[`${e.address}:${e.port}`];
    return { protocol: e.protocol, address: e.address, port: e.port, ...(advertise ? { advertise } : {}) };
  });
  const core = new UaCore({
    wire, transport: transports, listeners: coreListenersOf(bound), parse: (b) => parseMessage(b, limits), clock, cdrs: options.cdrs, onMalformed: options.onMalformed,
    ...(options.timers ? { timers: options.timers } : {}),
  });
  transports.on('message', (pkt) => {
    try {
      core.onPacket(pkt);
    } catch (err) {
      // One bad message must never stop the engine.
      process.emitWarning(`engine: error handling SIP message: ${(err as Error).stack ?? String(err)}`);
    }
  });
  let w: { address: string; port: number };
  try {
    w = await wire.listen();
  } catch (e) {
    await transports.close();
    throw e;
  }
  let closed = false;
  let opening: Promise<Endpoint[]> | undefined;
  return {
    wireAddress: w.address,
    wirePort: w.port,
    get contacts() { return bound; },
    get hostports() { return hostports; },
    openListeners() {
      if (!options.deferListen) return Promise.resolve(bound);
      opening ??= transports.listen().then((eps) => {
        bound = eps;
        hostports = hostportsOf(eps);
        core.setListeners(coreListenersOf(eps));
        return eps;
      });
      return opening;
    },
    transports,
    shield,
    core,
    wire,
    counters: () => ({
      core: { ...core.counters }, wire: { ...wire.counters }, shield: { admitted: shield.counters.admitted, dropped: { ...shield.counters.dropped }, bansWithheld: shield.counters.bansWithheld, identity: { ...shield.counters.identity } }, ...core.stats(),
    }),
    async close() {
      if (closed) return;
      closed = true;
      core.close();
      await wire.close();
      await transports.close();
      if (!(options.shield instanceof Shield)) shield.close();
    },
  };
}
