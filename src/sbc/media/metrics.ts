// Media-plane metrics on prom-client's default registry. Created once per process; the
// getSingleMetric lookup keeps a second import (e.g. tests) from registering twice.
// The rtpengine instance label is `rtpengine` (its ng address), not `instance`: Prometheus
// sets `instance` to the scraped peergate at scrape time and would overwrite ours.
import client from 'prom-client';

function metric<T>(name: string, make: () => T): T {
  return (client.register.getSingleMetric(name) as T | undefined) ?? make();
}

export const controlSeconds = metric('peergate_rtpengine_control_seconds', () => new client.Histogram({
  name: 'peergate_rtpengine_control_seconds',
  help: 'rtpengine ng command round trip time',
  labelNames: ['rtpengine', 'command'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
}));

export const rtpengineErrors = metric('peergate_rtpengine_errors_total', () => new client.Counter({
  name: 'peergate_rtpengine_errors_total',
  help: 'rtpengine ng commands that timed out, failed to send, or were answered with an error',
  labelNames: ['rtpengine'] as const,
}));

export const rtpengineUp = metric('peergate_rtpengine_up', () => new client.Gauge({
  name: 'peergate_rtpengine_up',
  help: '1 when the rtpengine instance answered its last health ping',
  labelNames: ['rtpengine'] as const,
}));

export const mediaCalls = metric('peergate_media_calls_total', () => new client.Counter({
  name: 'peergate_media_calls_total',
  help: 'Calls whose media was set up, by mode (offerer keying > answerer keying, or unanchored)',
  labelNames: ['mode'] as const,
}));

export const mediaRefusals = metric('peergate_media_refusals_total', () => new client.Counter({
  name: 'peergate_media_refusals_total',
  help: 'Offers and answers refused by the media stage, by reason',
  labelNames: ['reason'] as const,
}));

export const mediaSessions = metric('peergate_media_sessions', () => new client.Gauge({
  name: 'peergate_media_sessions',
  help: 'Calls anchored on rtpengine by this process, counting each until rtpengine has answered its delete',
}));

export const mediaPackets = metric('peergate_media_packets_total', () => new client.Counter({
  name: 'peergate_media_packets_total',
  help: 'RTP packets relayed, from rtpengine totals at call end',
}));

export const mediaBytes = metric('peergate_media_bytes_total', () => new client.Counter({
  name: 'peergate_media_bytes_total',
  help: 'RTP bytes relayed, from rtpengine totals at call end',
}));

export const mediaPacketErrors = metric('peergate_media_packet_errors_total', () => new client.Counter({
  name: 'peergate_media_packet_errors_total',
  help: 'Packets rtpengine discarded (failed SRTP authentication, foreign source, …), from totals at call end',
}));
