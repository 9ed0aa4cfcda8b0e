// Caller identity (RFC 6404 §4.7): RFC 4474 and RFC 8224/8225/8588 verification and signing.
export { IdentityVerifier, memorySeenOnce, type IdentityResult, type IdentityFailure, type Verstat, type SeenOnce, type VerifierOptions } from './verify.js';
export { IdentitySigner, SignError, type OutgoingRequest } from './sign.js';
export { outwardHeaders, withVerstat, withoutVerstat, type HeaderEdits } from './apply.js';
export { CertFetcher, CertFetchError, type FetchedCert } from './fetch.js';
export { createIdentityStage, toIdentityRequest, type IdentityStageOptions, type IdentityOutcomeWithResult } from './stage.js';
export type { IdentityRequest } from './sipfields.js';
// Types only: the schema (and zod) belongs to the policy loader; a B2BUA worker loads neither.
export type * from './schema.js';
