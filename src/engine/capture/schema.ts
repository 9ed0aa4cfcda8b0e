// Policy schema fragment for SIP capture (top-level `capture`). Owned by src/engine/capture;
// composed into the root policy schema by src/policy/schema.ts.
import { isIP } from 'node:net';
import { z } from 'zod';

export const HepSchema = z.strictObject({
  /** Collector address (Homer/heplify-server, sngrep -L): an IP address. */
  address: z.string().refine((s) => isIP(s) !== 0, { error: (iss) => `not an IP address: '${String(iss.input)}'` }),
  port: z.number().int().min(1, 'port must be 1-65535').max(65535, 'port must be 1-65535'),
  /** HEP capture agent id (chunk 0x000c), tells this node apart at the collector. */
  capture_id: z.number().int().min(0).max(0xffffffff).default(2001),
  /** HEP authentication key (chunk 0x000e), if the collector checks one. */
  password: z.string().min(1).max(512).optional(),
  /** Messages waiting to be sent; beyond this they are dropped and counted (capture never slows calls). */
  queue_max: z.number().int().min(1).max(1_000_000).default(10_000),
});

export const CaptureSchema = z.strictObject({
  /** HEPv3 over UDP of every SIP message sent and received, both legs, TLS plaintext included. */
  hep: HepSchema.optional(),
});

export type HepPolicy = z.infer<typeof HepSchema>;
export type CapturePolicy = z.infer<typeof CaptureSchema>;
