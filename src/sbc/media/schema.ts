// Policy schema fragments for the media plane (rtpengine, SRTP). Owned by src/sbc/media;
// composed into the root policy schema by src/policy/schema.ts.
import { z } from 'zod';

export { SDES_SUITES, RTPENGINE_SUITES, DEFAULT_SUITES, type SdesSuite } from './suites.js';
import { SDES_SUITES, DEFAULT_SUITES } from './suites.js';

/** Media policy of one side of a call: a peer (peers[].media) or the own core (core.media). */
export const SideMediaSchema = z.strictObject({
  /** required: this side's leg is SRTP and plain offers from it are refused; forbidden: plain RTP only. */
  srtp: z.enum(['required', 'optional', 'forbidden']).default('optional'),
  /** SDES suites this side may use; others are removed from offers (none left → 488). */
  suites: z.array(z.enum(SDES_SUITES)).min(1).default(DEFAULT_SUITES),
  /** DTLS-SRTP (RFC 5764) on this side's leg. */
  dtls: z.enum(['allowed', 'required', 'refused']).default('allowed'),
  /** ICE attributes toward this side: removed (default; rtpengine is the only media address) or kept. */
  ice: z.enum(['remove', 'keep']).default('remove'),
  /** Codecs (encoding names, e.g. telephone-event, G729) removed from offers on both legs. */
  codecs: z.strictObject({ strip: z.array(z.string().min(1).max(64)).max(64).default([]) }).default({ strip: [] }),
  /** When no rtpengine is reachable, let this side's calls through unanchored instead of 503. */
  allow_unanchored: z.boolean().default(false),
});

const HostPort = z.string().regex(/^[A-Za-z0-9.\-:[\]]+:\d{1,5}$/, 'expected host:port');

export const RtpengineInstanceSchema = z.strictObject({
  /** ng control address, host:port (UDP). */
  address: HostPort,
  weight: z.number().int().positive().default(1),
});

export const EmbeddedRtpengineSchema = z.strictObject({
  binary: z.string().default('/usr/bin/rtpengine'),
  /** Address media is relayed on (rtpengine --interface). */
  interface: z.string().default('127.0.0.1'),
  /** ng control port on 127.0.0.1; 0 picks a free one. */
  ng_port: z.number().int().min(0).max(65535).default(0),
  port_min: z.number().int().min(1024).max(65535).default(30000),
  port_max: z.number().int().min(1024).max(65535).default(39999),
}).refine((e) => e.port_max - e.port_min >= 3, { message: 'port_max must leave room for at least one call (4 ports)' });

export const GlobalMediaSchema = z.strictObject({
  /** Anchor every call's media on rtpengine (default). false passes SDP through untouched and
   *  enforces no SRTP policy: for labs and for measuring what anchoring costs, never for peering. */
  anchoring: z.boolean().default(true),
  /** 'spawn': peergate starts and supervises a local userspace rtpengine; a list: external instances. */
  rtpengine: z.union([z.literal('spawn'), z.array(RtpengineInstanceSchema).min(1)]).default('spawn'),
  embedded: EmbeddedRtpengineSchema.optional(),
  /** Per ng command. */
  timeout_ms: z.number().int().min(50).max(30_000).default(1000),
  health_interval_ms: z.number().int().min(100).max(600_000).default(2000),
  /** Retry-After on the 503 when no rtpengine is reachable. */
  retry_after_s: z.number().int().min(1).max(3600).default(30),
});

export type SideMedia = z.infer<typeof SideMediaSchema>;
export type GlobalMedia = z.infer<typeof GlobalMediaSchema>;
export type RtpengineInstance = z.infer<typeof RtpengineInstanceSchema>;
export type EmbeddedRtpengine = z.infer<typeof EmbeddedRtpengineSchema>;
