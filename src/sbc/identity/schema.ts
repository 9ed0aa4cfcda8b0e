// Policy schema fragments for caller identity (RFC 4474, RFC 8224/8225/8588). Owned by
// src/sbc/identity; composed into the root policy schema by src/policy/schema.ts. File settings
// are FilePath: the loader resolves them against the policy file's directory, so the stage and
// the subsystem only ever see absolute paths.
import { z } from 'zod';
import { FilePath } from '../../policy/file-path.js';

const host = z.string().min(1).regex(/^(\*\.)?[A-Za-z0-9.:[\]-]+$/, 'a host name, IP address or *.domain');

/** Signing toward a peer (peers[].identity.sign): SHAKEN PASSporT or RFC 4474. */
export const ShakenSigningSchema = z.strictObject({
  /** Attestation for calls from the originating side (RFC 8588 §4): A full, B partial, C gateway. */
  attest: z.enum(['A', 'B', 'C']),
  /** Origination identifier (UUID); generated per call when omitted. */
  origid: z.string().min(1).optional(),
  /** PEM private key file (EC P-256). */
  key: FilePath,
  /** Where verifiers fetch the certificate (x5u / info). */
  certificate_url: z.url(),
});

export const Rfc4474SigningSchema = z.strictObject({
  /** PEM private key file (RSA). */
  key: FilePath,
  certificate_url: z.url(),
  alg: z.enum(['rsa-sha256', 'rsa-sha1']).default('rsa-sha256'),
});

export const IdentitySigningSchema = z.union([
  z.strictObject({ shaken: ShakenSigningSchema }),
  z.strictObject({ rfc4474: Rfc4474SigningSchema }),
]);

export const PeerIdentitySchema = z.strictObject({
  /** off: ignore; verify: annotate (verstat) and pass; required: refuse unsigned or failed requests. */
  mode: z.enum(['off', 'verify', 'required']).default('off'),
  standards: z.array(z.enum(['rfc4474', 'rfc8224'])).min(1).default(['rfc8224']),
  /** Freshness window for iat (RFC 8224 §6.2.4) and Date (RFC 4474 §6.2), seconds. */
  max_age_s: z.number().int().positive().max(86_400).default(60),
  /** What to do with the Identity header(s) on the way to the core. */
  inbound_header: z.enum(['keep', 'strip']).default('keep'),
  /** Where the verstat parameter goes (ATIS-1000074): P-Asserted-Identity, or From. */
  verstat_on: z.enum(['pai', 'from']).default('pai'),
  /** Certificate hosts for this peer; replaces identity.fetch.allow_hosts when given. */
  allow_hosts: z.array(host).optional(),
  /** Accepted service provider codes in TNAuthList; omitted = any SPC the STI-CA vouched for. */
  spcs: z.array(z.string().min(1)).optional(),
  /** Sign requests sent to this peer. */
  sign: IdentitySigningSchema.optional(),
});

export const IdentityFetchSchema = z.strictObject({
  /** Hosts (or *.domain) certificates may be fetched from; empty = none. */
  allow_hosts: z.array(host).default([]),
  /** Allow http:// certificate URLs (tests, labs); https only otherwise. */
  allow_http: z.boolean().default(false),
  timeout_ms: z.number().int().positive().max(30_000).default(1000),
  max_bytes: z.number().int().positive().max(1_048_576).default(16_384),
  /** Concurrent fetches per certificate host (a slow host delays only its own calls). */
  max_concurrent: z.number().int().positive().max(256).default(4),
  /** Upper bound for Cache-Control max-age (and the lifetime when a server sends none). */
  cache_max_age_s: z.number().int().nonnegative().max(86_400 * 7).default(3600),
  /** How long a failed fetch is remembered, so a broken server is not hammered. */
  negative_cache_s: z.number().int().nonnegative().max(3600).default(5),
  /** Extra CA files trusted for the HTTPS connection to certificate servers. */
  tls_ca: z.array(FilePath).default([]),
});

export const GlobalIdentitySchema = z.strictObject({
  /** PEM files of STI-CA roots: PASSporT certificates must chain to one of them. */
  trust_anchors: z.array(FilePath).default([]),
  /** PEM files of roots for RFC 4474 certificates; defaults to trust_anchors. */
  rfc4474_trust_anchors: z.array(FilePath).optional(),
  fetch: IdentityFetchSchema.prefault({}),
});

export type PeerIdentity = z.infer<typeof PeerIdentitySchema>;
export type GlobalIdentity = z.infer<typeof GlobalIdentitySchema>;
export type IdentityFetch = z.infer<typeof IdentityFetchSchema>;
export type IdentitySigning = z.infer<typeof IdentitySigningSchema>;
