// Policy schema fragments for caller identity (RFC 4474, RFC 8224/8225/8588). Owned by
// src/sbc/identity; composed into the root policy schema by src/policy/schema.ts.
import { z } from 'zod';

export const PeerIdentitySchema = z.strictObject({
  mode: z.enum(['off', 'verify', 'required']).default('off'),
  standards: z.array(z.enum(['rfc4474', 'rfc8224'])).default(['rfc8224']),
  max_age_s: z.number().int().positive().default(60),
});

export const GlobalIdentitySchema = z.strictObject({
  trust_anchors: z.array(z.string()).default([]),
});

export type PeerIdentity = z.infer<typeof PeerIdentitySchema>;
export type GlobalIdentity = z.infer<typeof GlobalIdentitySchema>;
