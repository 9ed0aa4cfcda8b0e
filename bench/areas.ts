// Which area of the node a profile frame belongs to (peergate's modules by concern, drachtio-srf,
// other npm packages, node's own I/O), shared by the CPU profile reader (profile-areas.ts) and the
// allocation bench (alloc.bench.ts).
export const SRF_PACKAGES = new Set(['drachtio-srf', 'delegates', 'only', 'debug', 'sdp-transform', 'utils-merge', 'node-noop', 'short-uuid', 'sip-status']);

/** The area a frame belongs to, or undefined when its caller's area counts. */
export function areaOf(url: string, fn: string): string | undefined {
  if (!url) {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(idle)') return 'idle';
    if (fn === '(program)') return 'native, unattributed';
    return fn === '(root)' ? 'node internals' : undefined;
  }
  if (url.startsWith('node:')) {
    if (url.includes('dgram')) return 'UDP sends (node:dgram, kernel)';
    if (/node:(net|internal\/streams?)/.test(url) || url.includes('stream_base')) return 'engine↔drachtio-srf loopback TCP';
    if (url.includes('timers')) return 'timers (node)';
    if (url.includes('crypto')) return 'node:crypto';
    return undefined;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return SRF_PACKAGES.has(pkg[1]!) ? 'drachtio-srf (+ its deps)' : `npm ${pkg[1]}`;
  // The sources through tsx, or the compiled dist/ (what bin/peergate.js runs when it is current).
  const src = /\/(?:src|dist)\/(.*)\.[jt]s$/.exec(url);
  if (!src) return undefined;
  const path = src[1]!;
  if (path.startsWith('engine/message') || path.startsWith('sip/')) return 'SIP parser (engine/message, sip/grammar)';
  if (path.startsWith('engine/transaction')) return 'transaction layer';
  if (path.startsWith('engine/core') || path.startsWith('engine/dialog')) return 'UA core + dialogs';
  if (path.startsWith('engine/wire')) return 'wire protocol (engine side)';
  if (path.startsWith('engine/transport')) return 'transports';
  if (path.startsWith('sbc/cdr')) return 'CDR';
  if (path.startsWith('sbc/session')) return 'session table and timers';
  if (path.startsWith('sbc/')) return 'B2BUA + stages (sbc)';
  return `src/${path.split('/')[0]}`;
}

