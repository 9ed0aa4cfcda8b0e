// The embedded engine keeps plain-number counters on its hot paths (no prom-client calls per
// packet); they become Prometheus metrics here, read at scrape time.
import client from 'prom-client';
import type { EngineCounters } from '../engine/engine.js';

let source: (() => EngineCounters) | undefined;

/** Counters that only grow: exposed as *_total, advanced by the delta since the last scrape. */
function monotonic(name: string, help: string, labelNames: string[], read: (c: EngineCounters) => Array<[Record<string, string>, number]>): void {
  if (client.register.getSingleMetric(name)) return;
  const last = new Map<string, number>();
  new client.Counter({
    name, help, labelNames,
    collect() {
      if (!source) return;
      for (const [labels, value] of read(source())) {
        const key = JSON.stringify(labels);
        const delta = value - (last.get(key) ?? 0);
        if (delta > 0) this.inc(labels, delta);
        last.set(key, value);
      }
    },
  });
}

function level(name: string, help: string, read: (c: EngineCounters) => number): void {
  if (client.register.getSingleMetric(name)) return;
  new client.Gauge({ name, help, collect() { if (source) this.set(read(source())); } });
}

monotonic('peergate_engine_shield_admitted_total', 'Datagrams, connections and stream messages the shield admitted', [], (c) => [[{}, c.shield.admitted]]);
monotonic('peergate_engine_shield_dropped_total', 'Dropped by the shield before parsing, by reason', ['reason'], (c) => [
  [{ reason: 'ban' }, c.shield.dropped.ban], [{ reason: 'deny' }, c.shield.dropped.deny],
  [{ reason: 'not_allowed' }, c.shield.dropped.notAllowed], [{ reason: 'rate_limited' }, c.shield.dropped.rateLimited],
]);
monotonic('peergate_engine_shield_bans_withheld_total', 'Bans not applied because the address is a configured peer\'s UDP source (spoofable; limits.strikes.ban_peers)', [], (c) => [[{}, c.shield.bansWithheld]]);
monotonic('peergate_engine_tls_identity_bans_total', 'TLS peer identities (client certificate fingerprints) banned in this node\'s shield, from strikes or the admin API', [], (c) => [[{}, c.shield.identity.bans]]);
monotonic('peergate_engine_tls_identity_refused_total', 'A banned TLS identity refused: its handshakes after the certificate verified, its connections closed when the ban was set', ['stage'], (c) => [
  [{ stage: 'handshake' }, c.shield.identity.handshakesRefused], [{ stage: 'connection' }, c.shield.identity.connectionsClosed],
]);
monotonic('peergate_engine_parse_errors_total', 'SIP messages that failed to parse (requests get 400, responses are dropped)', [], (c) => [[{}, c.core.parseErrors]]);
monotonic('peergate_engine_forged_responses_total', 'Responses dropped: no matching client transaction, from elsewhere than the request went (RFC 6404 §2.3.2.2), or a 2xx from more forks than one INVITE accepts (16)', [], (c) => [[{}, c.core.forgedResponses]]);
monotonic('peergate_engine_retransmissions_absorbed_total', 'Retransmissions absorbed by the transaction layer', [], (c) => [[{}, c.core.retransmissionsAbsorbed]]);
monotonic('peergate_engine_unrouted_requests_total', 'Requests no connected app routed (answered 503)', [], (c) => [[{}, c.core.unroutedRequests]]);
monotonic('peergate_engine_send_failures_total', 'Messages the engine could not send', [], (c) => [[{}, c.core.sendFailures]]);
monotonic('peergate_engine_client_timeouts_total', 'Requests sent that got no final response (Timer B/F)', [], (c) => [[{}, c.core.clientTimeouts]]);
monotonic('peergate_engine_extra_forks_released_total', 'A 2xx from a second fork of an INVITE we sent: ACKed and ended with BYE (RFC 3261 §13.2.2.4)', [], (c) => [[{}, c.core.extraForksReleased]]);
monotonic('peergate_engine_foreign_dialog_requests_total', 'Requests within a dialog, CANCELs and ACKs from another source than the peer that owns the dialog: 481 or dropped, a strike (RFC 6404 §2.3.2.1)', [], (c) => [[{}, c.core.foreignDialogRequests]]);
monotonic('peergate_engine_wire_auth_failures_total', 'Wire-protocol connections refused for a wrong secret or a command before authenticate', [], (c) => [[{}, c.wire.authFailures]]);
level('peergate_engine_dialogs', 'Dialogs the engine holds', (c) => c.dialogs);
level('peergate_engine_server_transactions', 'Live server transactions', (c) => c.serverTransactions);
level('peergate_engine_client_transactions', 'Live client transactions', (c) => c.clientTransactions);

/** Expose this engine's counters (one engine per process). */
export function bindEngineMetrics(read: () => EngineCounters): void {
  source = read;
}
