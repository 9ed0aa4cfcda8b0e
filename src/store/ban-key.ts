// What a ban (and a strike count) is kept under in the store: a source address, or a TLS peer
// identity. A peer that proved its certificate in a mutual-TLS handshake is known by that
// certificate, not by its address, which NAT or a shared SBE may give to others too (issue #17
// item 4). The identity is the SHA-256 fingerprint of the verified certificate (exactly what
// the handshake proved; a SAN can be on several certificates): `tls:AB:CD:…`. Addresses never
// start with `tls:`, so both kinds share one ban list, one pub/sub channel and one sync.

const IDENTITY_PREFIX = 'tls:';
const HEX64 = /^[0-9A-F]{64}$/;

export type BanTarget =
  | { kind: 'address'; address: string }
  | { kind: 'identity'; fingerprint256: string };

/**
 * A SHA-256 fingerprint in node's form (upper-case hex pairs joined by ':'), from that form or
 * from plain hex in any case; undefined when it is not 32 bytes of hex.
 */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/:/g, '').toUpperCase();
  if (!HEX64.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

/** The store key of a TLS identity ban. */
export function identityBanKey(fingerprint256: string): string {
  return IDENTITY_PREFIX + fingerprint256;
}

/** What a store key names. */
export function banTarget(key: string): BanTarget {
  if (key.startsWith(IDENTITY_PREFIX)) return { kind: 'identity', fingerprint256: key.slice(IDENTITY_PREFIX.length) };
  return { kind: 'address', address: key };
}
