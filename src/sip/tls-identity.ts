// The X-Peergate-TLS-Identity header (docs/engine.md): how the embedded engine tells the app
// which verified client certificate a request came with. Written by the engine for requests
// that arrived over TLS, after removing any copy a sender put on the wire; read by the SBE for
// peer attribution. Both sides work on header fields (name and value), never on raw text, and
// the value is a list of generic-params (RFC 3261 §25.1), read with the grammar's param reader.
//
// Value: `subject="…";san="a,b";fp256=AA:BB:…`. subject and san are quoted-strings (`"` and `\`
// escaped as quoted-pairs, CR/LF replaced by SP); SAN entries are joined by ',' with a ',' or
// '%' inside one percent-encoded; fp256 is the SHA-256 fingerprint as upper-case hex pairs.
import { paramValue, quote } from './grammar/index.js';

/** The header's name as written on the wire. */
export const TLS_IDENTITY_HEADER = 'X-Peergate-TLS-Identity';
/** The header's canonical (lower-case) name, as parsed header fields carry it. */
export const TLS_IDENTITY_NAME = 'x-peergate-tls-identity';

export interface TlsIdentityFields {
  subject: string;
  subjectAltNames: string[];
  fingerprint256: string;
}

/** The header value for a verified certificate. */
export function formatTlsIdentity(id: TlsIdentityFields): string {
  const q = (s: string): string => quote(s.replace(/[\r\n]/g, ' '));
  const san = id.subjectAltNames.map((s) => s.replace(/%/g, '%25').replace(/,/g, '%2C')).join(',');
  return `subject=${q(id.subject)};san=${q(san)};fp256=${id.fingerprint256}`;
}

/** Parse a header value; null when subject or fingerprint is missing. The older spelling
 *  `fingerprint256=` is accepted for fp256. */
export function parseTlsIdentity(value: string | undefined): TlsIdentityFields | null {
  if (!value) return null;
  // The value starts with a parameter, not with ';': read it as if one preceded it.
  const v = `;${value}`;
  const subject = unescapePairs(paramValue(v, 0, 'subject'));
  const fp = paramValue(v, 0, 'fp256') ?? paramValue(v, 0, 'fingerprint256');
  if (subject === undefined || fp === undefined || fp === '') return null;
  const san = unescapePairs(paramValue(v, 0, 'san')) ?? '';
  const sans = san
    ? san.split(',').map((s) => s.trim().replace(/%2C/gi, ',').replace(/%25/g, '%')).filter((s) => s.length > 0)
    : [];
  return { subject, fingerprint256: fp, subjectAltNames: sans };
}

/** paramValue returns a quoted value without its quotes but with its quoted-pairs. */
function unescapePairs(s: string | undefined): string | undefined {
  return s === undefined || s.indexOf('\\') < 0 ? s : s.replace(/\\(.)/g, '$1');
}

/** Whether a parsed header field is the TLS identity header, whatever its spelling on the wire. */
export function isTlsIdentityField(field: { name: string }): boolean {
  return field.name === TLS_IDENTITY_NAME;
}

/** Whether a header name (any case) is the TLS identity header. */
export function isTlsIdentityName(name: string): boolean {
  return name.toLowerCase() === TLS_IDENTITY_NAME; // an X- name has no compact form
}
