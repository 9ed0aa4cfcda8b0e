// Policy schema fragments for the media plane (rtpengine, SRTP). Owned by src/sbc/media;
// composed into the root policy schema by src/policy/schema.ts.
import { z } from 'zod';

export const SideMediaSchema = z.strictObject({
  srtp: z.enum(['required', 'optional', 'forbidden']).default('optional'),
});

export const GlobalMediaSchema = z.strictObject({
  rtpengine: z.union([z.literal('spawn'), z.array(z.strictObject({ address: z.string(), weight: z.number().int().positive().default(1) }))]).default('spawn'),
});

export type SideMedia = z.infer<typeof SideMediaSchema>;
export type GlobalMedia = z.infer<typeof GlobalMediaSchema>;
