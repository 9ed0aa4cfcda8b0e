// The SRTP suites the media policy names, apart from the schema (and zod): the media stage
// reads them at run time, also in B2BUA workers, which load no schema.
/**
 * SDES crypto-suites (RFC 4568, RFC 6188, RFC 7714) that rtpengine 10.5 implements and that
 * encrypt: NULL_HMAC_SHA1_* are deliberately absent, SRTP in peergate is always encrypted.
 */
export const SDES_SUITES = [
  'AEAD_AES_256_GCM',
  'AEAD_AES_128_GCM',
  'AES_256_CM_HMAC_SHA1_80',
  'AES_256_CM_HMAC_SHA1_32',
  'AES_192_CM_HMAC_SHA1_80',
  'AES_192_CM_HMAC_SHA1_32',
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
  'F8_128_HMAC_SHA1_80',
  'F8_128_HMAC_SHA1_32',
] as const;
export type SdesSuite = (typeof SDES_SUITES)[number];

/** Every suite rtpengine knows, so flags can switch off the ones a policy does not allow. */
export const RTPENGINE_SUITES: readonly string[] = [...SDES_SUITES, 'NULL_HMAC_SHA1_80', 'NULL_HMAC_SHA1_32'];

export const DEFAULT_SUITES: SdesSuite[] = ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_256_CM_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];
