// The warm-up (policy `warmup`, docs/ARCHITECTURE.md "A warm-up before the listeners open"): a
// node straight after its start runs its JavaScript cold, and the first peers' calls pay for V8
// compiling the whole path. Before the policy's listeners open, the node places calls through
// the same code in the same processes:
//
//   caller (ua.ts) → warm-up engine (this process) → a warm-up B2BUA in every B2BUA process
//   (b2bua.ts) → warm-up engine → callee (ua.ts)
//
// Nothing of the node's own state takes part: the engine is a second one on 127.0.0.1 ephemeral
// ports with its own wire secret, the B2BUAs have a policy of the warm-up's own (one peer, one
// route, media not anchored) and memory stores of their own, no metrics, call records, capture
// or probes. All of it is closed before the listeners open. It is bounded by `timeout_s`; a
// warm-up that fails is logged and the node starts cold.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { PolicySchema, type Policy } from '../../policy/schema.js';
import { startEngine, type Engine } from '../../engine/engine.js';
import { MemoryStore } from '../../store/memory.js';
import { Preadmitter } from '../preadmit.js';
import { valueWithin, within } from '../within.js';
import { engineTimers } from '../engine.js';
import { WarmupCallee, WarmupCaller, type Address, type WarmupOutcome } from './ua.js';
import type { WarmupWire } from './b2bua.js';

export type { WarmupOutcome } from './ua.js';

/** Where the node's B2BUA runs: the primary (`workers: 1`) or its worker processes. */
export interface WarmupHost {
  /** Connect a warm-up B2BUA in every B2BUA process; resolves with how many connected. */
  attach(policyText: string, wire: WarmupWire): Promise<number>;
  detach(): Promise<void>;
}

export interface WarmupOptions {
  policy: Policy;
  host: WarmupHost;
  log: Logger;
  /** The engine decides limits before the worker (workers with the memory store): warm that too. */
  preadmit?: { nodeId: string };
}

/** The warm-up's own policy: the caller is its one peer, the callee its core. */
export function warmupPolicy(node: Policy, peerSide: Address, coreSide: Address, callee: Address): Policy {
  return PolicySchema.parse({
    listen: [
      { name: 'warm-up-peer', side: 'peer', transport: 'udp', address: peerSide.address, port: peerSide.port },
      { name: 'warm-up-core', side: 'core', transport: 'udp', address: coreSide.address, port: coreSide.port },
    ],
    core: { targets: [`sip:${callee.address}:${callee.port}`] },
    peers: [{ id: 'warm-up', match: { addresses: [`${callee.address}/32`] } }],
    routes: [{ from: 'peers', to: 'core' }],
    media: { anchoring: false },
    log: { level: node.log.level },
    engine: { trying_delay_ms: node.engine.trying_delay_ms, sip_timers: node.engine.sip_timers },
  });
}

/** Run the warm-up; undefined when the policy asks for none. Never throws: a failure is logged. */
export async function runWarmup(opts: WarmupOptions): Promise<WarmupOutcome | undefined> {
  const w = opts.policy.warmup;
  if (w.calls === 0) return undefined;
  const log = opts.log;
  const deadline = Date.now() + w.timeout_s * 1000;
  let callee: WarmupCallee | undefined;
  let caller: WarmupCaller | undefined;
  let engine: Engine | undefined;
  let attached = false;
  try {
    callee = await WarmupCallee.open();
    const secret = randomBytes(18).toString('base64url');
    engine = await startEngine({
      contacts: ['sip:127.0.0.1:0;transport=udp', 'sip:127.0.0.1:0;transport=udp'],
      wire: { address: '127.0.0.1', port: 0, secret },
      timers: engineTimers(opts.policy),
    });
    const [peerSide, coreSide] = engine.contacts;
    if (!peerSide || !coreSide) throw new Error('the warm-up engine bound no listeners');
    const policy = warmupPolicy(opts.policy, peerSide, coreSide, callee.address);
    if (opts.preadmit) {
      engine.wire.setPreAdmission(new Preadmitter({ policy: () => policy, store: new MemoryStore({ reportUp: false }), nodeId: opts.preadmit.nodeId }));
    }
    attached = true;
    const b2buas = await valueWithin(opts.host.attach(JSON.stringify(policy), { host: engine.wireAddress, port: engine.wirePort, secret }), deadline - Date.now());
    if (!b2buas) throw new Error('no B2BUA connected to the warm-up engine in time');
    caller = await WarmupCaller.open(peerSide);
    const outcome = await caller.run(w.calls, w.rate, deadline);
    log.info({ ...outcome, b2buas }, 'warm-up done');
    return outcome;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'warm-up failed; the node starts cold');
    return undefined;
  } finally {
    caller?.close();
    if (attached) await within(opts.host.detach().catch(() => undefined), 3000);
    await engine?.close();
    callee?.close();
  }
}
