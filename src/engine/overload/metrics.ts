// Overload metrics on prom-client's default registry (scraped by src/ops). Read from the gate
// at scrape time: shedding costs a Map update per refused INVITE, never prom-client work.
import client from 'prom-client';
import { SHED_REASONS, type ShedReason } from './detector.js';

interface GateView { totals(): Record<ShedReason, number>; readonly state: { loss: number; queueFill: number; queueBytes: number; queueDelayMs?: number | undefined; kernelDrops: number; workerLagMs: number; utilisation?: number | undefined } }

let current: GateView | undefined;
/** What earlier gates (closed or replaced) had counted: counters never go down. */
const carried = new Map<ShedReason, number>(SHED_REASONS.map((r) => [r, 0]));
const reported = new Map<ShedReason, number>(SHED_REASONS.map((r) => [r, 0]));

function metric<T>(name: string, make: () => T): T {
  // Reuse an existing registration (tests and hot reload may import this module twice).
  return (client.register.getSingleMetric(name) as T | undefined) ?? make();
}

export const shedTotal = metric('peergate_shed_total', () => new client.Counter({
  name: 'peergate_shed_total',
  help: 'New INVITEs refused with 503 by overload control, by reason (event_loop_lag, receive_queue, pending_setups, transactions, dialogs, worker_backlog; queue_sojourn: waited in the priority ingress past its target)',
  labelNames: ['reason'],
  collect(this: client.Counter<string>) {
    const t = current?.totals();
    for (const r of SHED_REASONS) {
      const total = carried.get(r)! + (t?.[r] ?? 0);
      const delta = total - reported.get(r)!;
      // inc(0) too: every reason is exported from the start, so alerts see the first event.
      this.inc({ reason: r }, Math.max(0, delta));
      reported.set(r, Math.max(total, reported.get(r)!));
    }
  },
}));

export const lossGauge = metric('peergate_overload_loss_percent', () => new client.Gauge({
  name: 'peergate_overload_loss_percent',
  help: 'Share of new INVITEs overload control refuses now (RFC 7339 loss value), 0-100',
  collect(this: client.Gauge) { this.set(current?.state.loss ?? 0); },
}));

export const receiveQueueGauge = metric('peergate_udp_receive_queue_ratio', () => new client.Gauge({
  name: 'peergate_udp_receive_queue_ratio',
  help: "Share of the UDP listeners' kernel receive buffers holding datagrams not read yet, at the last control interval (Linux)",
  collect(this: client.Gauge) { this.set(current?.state.queueFill ?? 0); },
}));

export const receiveQueueBytesGauge = metric('peergate_udp_receive_queue_bytes', () => new client.Gauge({
  name: 'peergate_udp_receive_queue_bytes',
  help: "Bytes (as the kernel charges them) waiting in the fullest UDP listener's receive queue, at the last control interval (Linux); overload.queue_high_kib is its mark",
  collect(this: client.Gauge) { this.set(current?.state.queueBytes ?? 0); },
}));

export const receiveQueueDelayGauge = metric('peergate_udp_receive_queue_delay_seconds', () => new client.Gauge({
  name: 'peergate_udp_receive_queue_delay_seconds',
  help: "That queue's delay at the last control interval: its bytes over the rate the listeners read at (Linux; estimated kernel charges); overload.queue_delay_target_ms is what the law holds",
  collect(this: client.Gauge) { this.set((current?.state.queueDelayMs ?? 0) / 1000); },
}));

export const kernelDropsGauge = metric('peergate_udp_kernel_drops', () => new client.Gauge({
  name: 'peergate_udp_kernel_drops',
  help: "Datagrams the kernel dropped on the UDP listeners' sockets since they opened, for want of receive-buffer room (Linux; raise net.core.rmem_max)",
  collect(this: client.Gauge) { this.set(current?.state.kernelDrops ?? 0); },
}));

export const workerLagGauge = metric('peergate_worker_event_loop_delay_seconds', () => new client.Gauge({
  name: 'peergate_worker_event_loop_delay_seconds',
  help: "The slowest B2BUA worker's event-loop delay as overload control last saw it (its mean over the worker's last report, or how long it has been silent); overload.worker_lag_high_ms is its mark. 0 without workers",
  collect(this: client.Gauge) { this.set((current?.state.workerLagMs ?? 0) / 1000); },
}));

export const utilisationGauge = metric('peergate_overload_loop_utilisation_ratio', () => new client.Gauge({
  name: 'peergate_overload_loop_utilisation_ratio',
  help: "The busiest event loop's utilisation (the primary's or a B2BUA worker's) over overload control's last interval (the share of time it was not waiting for I/O): near 1 while shedding, the node is at its ceiling; well under it, the share refused is more than the node needs",
  collect(this: client.Gauge) { this.set(current?.state.utilisation ?? 0); },
}));

/** Report this gate's counts from now on (the previous gate's totals are kept). */
export function reportGate(gate: GateView | undefined): void {
  if (current && current !== gate) {
    const t = current.totals();
    for (const r of SHED_REASONS) carried.set(r, carried.get(r)! + t[r]);
  }
  current = gate;
}
