// A small SDP (RFC 8866) reader/writer for what the media stage must inspect before asking
// rtpengine: transport protocol, SDES crypto lines (RFC 4568), DTLS fingerprints (RFC 8122),
// ICE attributes. Lines are kept verbatim so anything peergate does not understand passes
// through untouched (RFC 6271 requirement #17); only the lines we deliberately remove change.

/** Bounded so a hostile body cannot make us allocate without limit. */
export const SDP_MAX_BYTES = 64 * 1024;
export const SDP_MAX_LINES = 2000;

export class SdpError extends Error {
  override readonly name = 'SdpError';
}

export interface MediaSection {
  /** The m= line's fields. */
  media: string;
  port: number;
  proto: string;
  formats: string[];
  /** Every line of the section, the m= line first, verbatim. */
  lines: string[];
}

export interface Sdp {
  /** Session-level lines (v=, o=, s=, c=, a=…), verbatim. */
  session: string[];
  media: MediaSection[];
}

export interface CryptoLine {
  tag: string;
  suite: string;
  keyParams: string;
  /** RFC 4568 §6.3 session parameters, e.g. UNENCRYPTED_SRTCP, KDR=…, FEC_ORDER=… */
  sessionParams: string[];
}

// One regex per line shape, compiled once.
const LINE = /^([a-z])=(.*)$/;
const MLINE = /^m=(\S+) (\d+)(?:\/\d+)? (\S+)(?: (.*))?$/;
const CRYPTO = /^a=crypto:(\d{1,9}) (\S+) (\S+)(?: (.*))?$/;
const SPLIT_LINES = /\r?\n/;
const SPACES = / +/;

// The same body is parsed more than once per call (validation, then the media stage): the last
// body parsed is remembered, and a copy of it returned (callers change what they get).
let lastText: string | undefined;
let lastSdp: Sdp | undefined;

function copySdp(sdp: Sdp): Sdp {
  return { session: sdp.session.slice(), media: sdp.media.map((m) => ({ ...m, formats: m.formats.slice(), lines: m.lines.slice() })) };
}

/** Parse an SDP body. Throws SdpError on anything that is not a plausible SDP. */
export function parseSdp(text: string): Sdp {
  if (text === lastText && lastSdp !== undefined) return copySdp(lastSdp);
  const sdp = parseSdpText(text);
  lastText = text;
  lastSdp = copySdp(sdp);
  return sdp;
}

function parseSdpText(text: string): Sdp {
  if (typeof text !== 'string' || text.length === 0) throw new SdpError('empty SDP');
  if (text.length > SDP_MAX_BYTES) throw new SdpError(`SDP larger than ${SDP_MAX_BYTES} bytes`);
  const raw = text.split(SPLIT_LINES);
  if (raw.length > SDP_MAX_LINES) throw new SdpError(`SDP has more than ${SDP_MAX_LINES} lines`);
  const session: string[] = [];
  const media: MediaSection[] = [];
  let current: MediaSection | undefined;
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i]!;
    if (line.length === 0) continue; // trailing CRLF, or a tolerated blank line
    if (!LINE.test(line)) throw new SdpError(`malformed SDP line ${i + 1}`);
    if (session.length === 0 && line !== 'v=0') throw new SdpError('SDP must start with v=0');
    if (line.charCodeAt(0) === 109 /* m */) {
      const m = MLINE.exec(line);
      if (!m) throw new SdpError(`malformed m= line ${i + 1}`);
      current = { media: m[1]!, port: Number(m[2]), proto: m[3]!, formats: m[4] ? m[4].split(SPACES) : [], lines: [line] };
      if (current.port > 65535) throw new SdpError(`m= port out of range on line ${i + 1}`);
      media.push(current);
    } else if (current) {
      current.lines.push(line);
    } else {
      session.push(line);
    }
  }
  if (session.length === 0) throw new SdpError('empty SDP');
  if (!session.some((l) => l.startsWith('o='))) throw new SdpError('SDP has no o= line');
  return { session, media };
}

/** Serialize with CRLF line ends (RFC 8866 §5). */
export function writeSdp(sdp: Sdp): string {
  let out = '';
  for (const l of sdp.session) out += l + '\r\n';
  for (const m of sdp.media) for (const l of m.lines) out += l + '\r\n';
  return out;
}

/** An answer that declines every stream of `offer` (RFC 3264 §6: port 0, one format kept),
 *  for a 2xx we must ACK with an answer (RFC 3261 §13.2.2.4) on a call that is already over.
 *  Undefined when the offer does not parse: the ACK then goes without a body. */
export function decliningAnswer(offer: string): string | undefined {
  let sdp: Sdp;
  try { sdp = parseSdp(offer); } catch { return undefined; }
  let out = 'v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n';
  for (const m of sdp.media) out += `m=${m.media} 0 ${m.proto} ${m.formats[0] ?? '0'}\r\n`;
  return out;
}

/** A media section that carries media (port 0 = rejected/disabled stream, RFC 3264 §6). */
export function isActive(m: MediaSection): boolean {
  return m.port !== 0;
}

/** RTP-based profiles; other m= lines (e.g. `application … TCP/BFCP`) are not ours to judge. */
export function isRtp(m: MediaSection): boolean {
  return m.proto.includes('RTP/');
}

/** SAVP/SAVPF: the profile says SRTP (RFC 3711 / RFC 5124). */
export function isSecureProfile(proto: string): boolean {
  return proto.endsWith('/SAVP') || proto.endsWith('/SAVPF');
}

/** DTLS-SRTP transport (RFC 5764): UDP/TLS/RTP/SAVP(F). */
export function isDtlsProfile(proto: string): boolean {
  return proto.startsWith('UDP/TLS/') || proto.startsWith('TCP/TLS/');
}

export function isFeedbackProfile(proto: string): boolean {
  return proto.endsWith('F');
}

export function attrs(m: MediaSection, name: string): string[] {
  const prefix = `a=${name}`;
  const out: string[] = [];
  for (const l of m.lines) {
    if (l.startsWith(prefix) && (l.length === prefix.length || l.charCodeAt(prefix.length) === 58 /* : */)) out.push(l);
  }
  return out;
}

/** Session-level attribute lines named `name`. */
export function sessionAttrs(sdp: Sdp, name: string): string[] {
  const prefix = `a=${name}`;
  return sdp.session.filter((l) => l.startsWith(prefix) && (l.length === prefix.length || l.charCodeAt(prefix.length) === 58));
}

export function parseCrypto(line: string): CryptoLine | undefined {
  const m = CRYPTO.exec(line);
  if (!m) return undefined;
  return { tag: m[1]!, suite: m[2]!, keyParams: m[3]!, sessionParams: m[4] ? m[4].split(SPACES) : [] };
}

export function cryptoLines(m: MediaSection): CryptoLine[] {
  const out: CryptoLine[] = [];
  for (const l of m.lines) {
    if (!l.startsWith('a=crypto:')) continue;
    const c = parseCrypto(l);
    if (c) out.push(c);
  }
  return out;
}

/** A DTLS fingerprint offered for this section, at media or session level (RFC 8122 §5). */
export function hasFingerprint(sdp: Sdp, m: MediaSection): boolean {
  return attrs(m, 'fingerprint').length > 0 || sessionAttrs(sdp, 'fingerprint').length > 0;
}

/** Remove the lines of a media section that match `drop` (never the m= line). */
export function removeLines(m: MediaSection, drop: (line: string) => boolean): number {
  const before = m.lines.length;
  m.lines = [m.lines[0]!, ...m.lines.slice(1).filter((l) => !drop(l))];
  return before - m.lines.length;
}

/** The connection address of a section (media-level c= wins over session-level). */
export function connectionAddress(sdp: Sdp, m: MediaSection): string | undefined {
  const c = m.lines.find((l) => l.startsWith('c=')) ?? sdp.session.find((l) => l.startsWith('c='));
  if (!c) return undefined;
  const parts = c.slice(2).split(' ');
  return parts[2]?.split('/')[0];
}

/**
 * Replace the o= username with "-" (RFC 8866 §5.2 allows it): rtpengine's `replace origin`
 * rewrites only the address, and a username often names an internal host or product.
 */
export function anonymizeOrigin(sdp: Sdp): void {
  const i = sdp.session.findIndex((l) => l.startsWith('o='));
  if (i < 0) return;
  const parts = sdp.session[i]!.slice(2).split(' ');
  if (parts.length === 6) sdp.session[i] = `o=- ${parts.slice(1).join(' ')}`;
}
