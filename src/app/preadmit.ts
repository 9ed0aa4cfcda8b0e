// Pre-admission (issue #18 item 3, docs/engine.md): the limits stage's decision for a new INVITE
// taken in the primary, on the node's memory store, before the INVITE's frame goes to the B2BUA
// worker the engine picked. The worker then finds the decision in the INVITE
// (X-Peergate-Admission, src/sip/admission-header.ts) instead of asking the primary's store over
// IPC (src/store/ipc.ts): no round trip, no wait on a primary busy reading and refusing.
//
// Same rules as the worker's stage, from the same code: attribution (src/sbc/sides.ts
// classifySource), priority (limits/priority.ts), scopes and rates (limits/plan.ts). The slot is
// stored under the worker's own node id (app/workers/hello.ts workerNodeId), so that the worker's
// keepAlive refreshes it and the pool frees it if that worker dies. The worker keeps the order of
// its stages: it uses the decision at stage 3 (limits) when it attributes the call the same way,
// and frees the slot on any other way out (src/sbc/limits/index.ts PreAdmitted).
//
// Only with the memory store: Redis answers asynchronously, and an INVITE held back for it could
// be overtaken by its own CANCEL on the wire. Apps without a worker tag get no header.
import { randomUUID } from 'node:crypto';
import type { Policy } from '../policy/schema.js';
import type { MemoryStore } from '../store/memory.js';
import type { SipRequest } from '../engine/message/types.js';
import type { InboundPacket } from '../engine/transport/types.js';
import type { AppConnection, InvitePreAdmission } from '../engine/wire/server.js';
import { classifySource, indexOf } from '../sbc/sides.js';
import { admit as admitRequest } from '../sbc/admission.js';
import { priorityOf } from '../sbc/limits/priority.js';
import { admissionPlan, refusalOf, sessionTtlMs, tryReserved } from '../sbc/limits/plan.js';
import { formatAdmission, parseAdmission } from '../sip/admission-header.js';
import { formatTlsIdentity, parseTlsIdentity } from '../sip/tls-identity.js';
import { flat } from '../flat-string.js';
import { getHeader, getHeaderList, getHeaders } from '../engine/message/headers.js';
import { workerIndexOfTags, workerNodeId } from './workers/hello.js';

/** A slot's ttl when the policy gives none (the worker's Limits default). */
const DEFAULT_TTL_MS = 30_000;

export interface PreadmitterOptions {
  policy: () => Policy;
  store: MemoryStore;
  /** This node's id; a worker's slots are stored under workerNodeId(nodeId, index). */
  nodeId: string;
}

export class Preadmitter implements InvitePreAdmission {
  /** Each app connection's worker node id ('' for an app that is no tagged worker). */
  private readonly nodeIds = new WeakMap<AppConnection, string>();

  constructor(private readonly opts: PreadmitterOptions) {}

  admit(req: SipRequest, pkt: InboundPacket, app: AppConnection): string | undefined {
    const nodeId = this.nodeIdOf(app);
    if (nodeId === '') return undefined;
    try {
      return this.decide(req, pkt, nodeId);
    } catch {
      return undefined; // a bug here must not lose the INVITE: the worker admits it as without us
    }
  }

  abandoned(value: string): void {
    const a = parseAdmission(value);
    if (a?.admitted) void this.opts.store.release(a.sessionId);
  }

  private nodeIdOf(app: AppConnection): string {
    let id = this.nodeIds.get(app);
    if (id === undefined) {
      const index = workerIndexOfTags(app.tags);
      id = index === undefined ? '' : workerNodeId(this.opts.nodeId, index);
      this.nodeIds.set(app, id);
    }
    return id;
  }

  private decide(req: SipRequest, pkt: InboundPacket, nodeId: string): string | undefined {
    const policy = this.opts.policy();
    if (!policy.engine.embedded) return undefined;
    const protocol = pkt.source.protocol;
    // What the worker reads from the header the engine writes (appView), so both attribute alike.
    const tls = protocol === 'tls' && pkt.tls ? parseTlsIdentity(formatTlsIdentity(pkt.tls)) : null;
    const from = classifySource(policy, `${pkt.local.address}:${pkt.local.port}`, protocol, pkt.source.address, tls);
    if ('refuse' in from) return undefined; // the worker refuses it before limits: no slot to take
    // Stage 2's checks (transport, method, Max-Forwards, loops) are cheap and the worker's verdict
    // the same: an INVITE they refuse takes no slot and no call-rate token, as without us.
    if (from.kind === 'peer' && admitRequest({ method: 'INVITE', protocol, maxForwards: getHeader(req, 'Max-Forwards'), vias: getHeaderList(req, 'Via') }, from.peer, indexOf(policy).own)) return undefined;
    const peerId = from.kind === 'peer' ? from.peer.id : undefined;
    const priority = priorityOf({ policy, from, req: { uri: req.uri, get: (name) => joined(req, name) } }) !== undefined;
    const limits = from.kind === 'peer' ? { peer: from.peer.limits, global: policy.limits } : { global: policy.limits };
    const plan = admissionPlan(peerId, limits, priority);
    const ttlMs = sessionTtlMs(policy.limits, DEFAULT_TTL_MS);
    const sessionId = flat(randomUUID());
    const store = this.opts.store;
    let r = store.admitNow(plan.rate, plan.scopes, sessionId, nodeId, ttlMs);
    if (tryReserved(plan, r)) r = store.admitNow(plan.reserved, plan.scopes, sessionId, nodeId, ttlMs);
    const refusal = refusalOf(plan, r);
    if (refusal === undefined) return formatAdmission({ admitted: true, sessionId, peer: peerId, priority });
    // Counted by the worker when it answers it (an INVITE refused earlier, e.g. by validation, is no limit refusal).
    return formatAdmission({ admitted: false, reason: refusal.reason, retryAfterS: refusal.retryAfterS, peer: peerId, priority });
  }
}

/** A header's values as one comma list, as the worker's view.get gives them; undefined when absent. */
function joined(req: SipRequest, name: string): string | undefined {
  const values = getHeaders(req, name);
  return values.length === 0 ? undefined : values.join(', ');
}
